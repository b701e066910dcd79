#include "catalog/catalog.h"

#include <gtest/gtest.h>

namespace mailscope::catalog {
namespace {

constexpr std::string_view kHeader =
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n";

DataFiles Files(std::string_view stalwart, std::string_view map,
                std::string_view dovecot = kHeader) {
  static std::string s, m, d;
  s = std::string(stalwart);
  m = std::string(map);
  d = std::string(dovecot);
  return {
      {"events.stalwart.tsv", s},
      {"events.dovecot.tsv", d},
      {"events.exim.tsv", kHeader},
      {"events.qmail.tsv", kHeader},
      {"taxonomy.tsv",
       "kind\toutcomes\tfields\tdescription\nauth\tsuccess,failure\tuser,remote_ip\tLogins\n"},
      {"taxonomy_map.tsv", m},
  };
}

constexpr std::string_view kStalwart =
    "# a comment before the header\n"
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n"
    "auth.failed\tauth\tdebug\taccountName,remoteIp\t\t\tA failed login\n"
    "queue.message-queued\tqueue\tinfo\t\tqueue.queue-message\tera=0.16\t\n";
constexpr std::string_view kMap =
    "system\tname\tkind\toutcome\tfields\n"
    "stalwart\tauth.failed\tauth\tfailure\tuser=accountName;remote_ip=remoteIp\n"
    "stalwart\tqueue.message-queued\t-\t\t\n"
    "dovecot\tauth_request_finished\tauth\tfield:success=yes>success,*>failure\tuser=user\n";
constexpr std::string_view kDovecot =
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n"
    "auth_request_finished\tauth\t\tsuccess,user\t\tsince=2.3.0;origin=core\t\n";

TEST(CatalogTest, ParsesEventsAliasesAndTaxonomy) {
  auto c = Catalog::Parse(Files(kStalwart, kMap, kDovecot));
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->events().size(), 3u);
  const EventInfo* failed = c->Find(System::kStalwart, "auth.failed");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->level, Level::kDebug);
  EXPECT_EQ(failed->fields, (std::vector<std::string>{"accountName", "remoteIp"}));
  EXPECT_EQ(failed->kind, "auth");
  EXPECT_EQ(failed->outcome, "failure");
  EXPECT_EQ(c->Find(System::kStalwart, "queue.queue-message"),
            c->Find(System::kStalwart, "queue.message-queued"));
  EXPECT_EQ(c->Find(System::kStalwart, "queue.queue-message")->Attribute("era"), "0.16");
  EXPECT_EQ(c->Find(System::kStalwart, "nope"), nullptr);
  EXPECT_EQ(c->Find(System::kDovecot, "auth.failed"), nullptr);
  const EventInfo* dovecot = c->Find(System::kDovecot, "auth_request_finished");
  ASSERT_NE(dovecot, nullptr);
  EXPECT_FALSE(dovecot->level.has_value());
  EXPECT_EQ(dovecot->Attribute("since"), "2.3.0");
  EXPECT_EQ(dovecot->outcome_field, "success");
  ASSERT_EQ(dovecot->outcome_rules.size(), 2u);
  EXPECT_TRUE(dovecot->outcome_rules[0].Matches("yes"));
  EXPECT_FALSE(dovecot->outcome_rules[0].Matches("Yes"));
  EXPECT_FALSE(dovecot->outcome_rules[0].Matches(""));
  EXPECT_EQ(dovecot->outcome_rules[1].outcome, "failure");
  EXPECT_TRUE(dovecot->outcome_rules[1].Matches(""));
  EXPECT_TRUE(failed->outcome_rules.empty());
  EXPECT_TRUE(c->Find(System::kStalwart, "queue.message-queued")->kind.empty());
  auto counterparts = c->Counterparts(*failed);
  ASSERT_EQ(counterparts.size(), 1u);
  EXPECT_EQ(counterparts[0], dovecot);
  EXPECT_EQ(c->Closest(System::kStalwart, "auth.faild", 1),
            (std::vector<std::string>{"auth.failed"}));
}

TEST(CatalogTest, DataErrorsNameFileAndLine) {
  struct Case {
    std::string_view stalwart, map, message;
  } cases[] = {
      {"name\tsubsystem\n", kMap, "events.stalwart.tsv:1: header must be"},
      {std::string_view("name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\nx\ty\n"),
       kMap, "events.stalwart.tsv:2: 2 columns, expected 7"},
      {std::string_view("name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\nx\ty\tlo"
                        "ud\t\t\t\t\n"),
       kMap, "events.stalwart.tsv:2: unknown level \"loud\""},
      {std::string_view("name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n"
                        "a\ts\t\t\tb\t\t\nb\ts\t\t\t\t\t\n"),
       kMap, "\"b\" names two events"},
      {kStalwart, "system\tname\tkind\toutcome\tfields\nstalwart\tauth.failed\tauth\tfailure\t\n",
       "is not mapped (use kind -)"},
      {kStalwart, "system\tname\tkind\toutcome\tfields\nstalwart\tauth.failed\tmagic\t\t\n",
       "taxonomy_map.tsv:2: unknown kind \"magic\""},
      {kStalwart, "system\tname\tkind\toutcome\tfields\nstalwart\tqueue.queue-message\t-\t\t\n",
       "is an alias; map the main name"},
      {kStalwart, "system\tname\tkind\toutcome\tfields\nstalwart\tauth.failed\tauth\tmaybe\t\n",
       "taxonomy_map.tsv:2: \"maybe\" is not an outcome of kind auth"},
      {kStalwart,
       "system\tname\tkind\toutcome\tfields\nstalwart\tauth.failed\tauth\tfield:ok=1>success,"
       "*>maybe\t\n",
       "taxonomy_map.tsv:2: outcome rule \"*>maybe\""},
      {kStalwart, "system\tname\tkind\toutcome\tfields\nstalwart\tauth.failed\tauth\tfield:ok\t\n",
       "taxonomy_map.tsv:2: expected field:<name>=<rules>"},
  };
  for (const Case& c : cases) {
    auto parsed = Catalog::Parse(Files(c.stalwart, c.map, kDovecot));
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos)
        << parsed.status().message();
  }
}

TEST(CatalogTest, CompiledInCatalogLoads) {
  const Catalog& c = Catalog::Get();
  for (System s : kSystems) EXPECT_FALSE(c.OfSystem(s).empty()) << SystemName(s);
  EXPECT_FALSE(c.kinds().empty());
}

}  // namespace
}  // namespace mailscope::catalog
