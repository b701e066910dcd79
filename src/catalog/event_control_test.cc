#include "catalog/event_control.h"

#include <gtest/gtest.h>

namespace mailscope::catalog {
namespace {

constexpr std::string_view kHeader =
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n";
constexpr std::string_view kStalwart =
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n"
    "auth.success\tauth\tinfo\t\t\t\t\n"
    "auth.failed\tauth\tdebug\t\t\t\t\n"
    "smtp.mail-from\tsmtp\tinfo\t\t\t\t\n"
    "smtp.rcpt-to\tsmtp\tinfo\t\t\t\t\n"
    "queue.message-queued\tqueue\tinfo\t\tqueue.queue-message\t\t\n"
    "acme.error\tacme\terror\t\t\t\t\n";
constexpr std::string_view kExim =
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n"
    "msg:delivery\tmsg\t\t\t\t\t\n"
    "msg:defer\tmsg\t\t\t\t\t\n";

const Catalog& TestCatalog() {
  static const Catalog c = [] {
    std::string map = "system\tname\tkind\toutcome\tfields\n";
    for (const char* n : {"auth.success", "auth.failed", "smtp.mail-from", "smtp.rcpt-to",
                          "queue.message-queued", "acme.error"})
      map += std::string("stalwart\t") + n + "\t-\t\t\n";
    map += "exim\tmsg:delivery\t-\t\t\nexim\tmsg:defer\t-\t\t\n";
    static const std::string m = map;
    DataFiles files = {{"events.stalwart.tsv", kStalwart},
                       {"events.dovecot.tsv", kHeader},
                       {"events.exim.tsv", kExim},
                       {"events.qmail.tsv", kHeader},
                       {"taxonomy.tsv", "kind\toutcomes\tfields\tdescription\n"},
                       {"taxonomy_map.tsv", m}};
    auto parsed = Catalog::Parse(files);
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    return std::move(*parsed);
  }();
  return c;
}

const EventInfo& Ev(System s, std::string_view name) { return *TestCatalog().Find(s, name); }

TEST(EventControlTest, StalwartSemantics) {
  EventControlOptions o;
  o.disabled = {"stalwart:acme.*"};
  o.levels = {{"stalwart:auth.failed", Level::kWarn}, {"exim:msg:defer", Level::kDebug}};
  o.outputs["tail"] = {Level::kInfo, {"*rcpt-to"}};
  o.outputs["metrics"] = {Level::kTrace, {}};
  auto c = EventControl::Build(TestCatalog(), o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->EffectiveLevel(Ev(System::kStalwart, "auth.failed")), Level::kWarn);
  EXPECT_EQ(c->EffectiveLevel(Ev(System::kStalwart, "auth.success")), Level::kInfo);
  EXPECT_EQ(c->EffectiveLevel(Ev(System::kExim, "msg:delivery")), kDefaultEventLevel);
  EXPECT_FALSE(c->Enabled(Ev(System::kStalwart, "acme.error")));
  EXPECT_FALSE(c->Wanted("metrics", Ev(System::kStalwart, "acme.error")));
  EXPECT_TRUE(c->Wanted("tail", Ev(System::kStalwart, "auth.failed")));    // raised to warn
  EXPECT_FALSE(c->Wanted("tail", Ev(System::kStalwart, "smtp.rcpt-to")));  // suffix pattern
  EXPECT_TRUE(c->Wanted("metrics", Ev(System::kStalwart, "smtp.rcpt-to")));
  EXPECT_FALSE(c->Wanted("tail", Ev(System::kExim, "msg:defer")));  // lowered to debug
  EXPECT_TRUE(c->Wanted("metrics", Ev(System::kExim, "msg:defer")));
  EXPECT_TRUE(c->Wanted("exporters", Ev(System::kExim, "msg:delivery")));  // unconfigured
}

TEST(EventControlTest, PatternsMatchAliasesAndAllSystems) {
  EventControlOptions o;
  o.disabled = {"queue.queue-message", "msg:*"};  // an alias; a bare pattern over every system
  auto c = EventControl::Build(TestCatalog(), o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(c->Enabled(Ev(System::kStalwart, "queue.message-queued")));
  EXPECT_FALSE(c->Enabled(Ev(System::kExim, "msg:delivery")));
  EXPECT_TRUE(c->Enabled(Ev(System::kStalwart, "smtp.mail-from")));
}

TEST(EventControlTest, UnknownNamesAreErrorsWithClosestNames) {
  EventControlOptions o;
  o.disabled = {"stalwart:auth.faild"};
  auto c = EventControl::Build(TestCatalog(), o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(
                "unknown event \"stalwart:auth.faild\"; closest: stalwart:auth.failed"),
            std::string::npos)
      << c.status().message();
  EXPECT_NE(
      EventControl::CheckPattern(TestCatalog(), "nothing.*").message().find("no event matches"),
      std::string::npos);
  EXPECT_TRUE(EventControl::CheckPattern(TestCatalog(), "exim:msg:delivery").ok());
  EXPECT_FALSE(EventControl::CheckPattern(TestCatalog(), "exim:").ok());
}

static_assert(IsOutputName("old_stats") && IsOutputName("exporters") && !IsOutputName("log"));
static_assert(DefaultOutputLevel("old_stats") == Level::kTrace);
static_assert(DefaultOutputLevel("metrics") == Level::kTrace);
static_assert(DefaultOutputLevel("tail") == Level::kInfo);
static_assert(DefaultOutputLevel("exporters") == Level::kInfo);

// Without rules, old_stats and metrics take every level, tail and exporters
// info and up; a disabled event reaches none of them.
TEST(EventControlTest, OutputsWithoutRulesUseTheirDefaultLevel) {
  EventControlOptions o;
  o.disabled = {"stalwart:acme.*"};
  auto c = EventControl::Build(TestCatalog(), o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const EventInfo& debug = Ev(System::kStalwart, "auth.failed");
  const EventInfo& info = Ev(System::kStalwart, "auth.success");
  ASSERT_EQ(c->EffectiveLevel(debug), Level::kDebug);
  EXPECT_TRUE(c->Wanted("old_stats", debug));
  EXPECT_TRUE(c->Wanted("metrics", debug));
  EXPECT_FALSE(c->Wanted("tail", debug));
  EXPECT_FALSE(c->Wanted("exporters", debug));
  for (std::string_view output : kOutputNames) {
    EXPECT_TRUE(c->Wanted(output, info)) << output;
    EXPECT_FALSE(c->Wanted(output, Ev(System::kStalwart, "acme.error"))) << output;
  }
}

// Rules without a level keep the output's default level.
TEST(EventControlTest, RulesWithoutLevelKeepTheDefaultLevel) {
  EventControlOptions o;
  o.outputs["metrics"].disabled = {"smtp.*"};
  o.outputs["tail"].disabled = {"smtp.*"};
  auto c = EventControl::Build(TestCatalog(), o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->Wanted("metrics", Ev(System::kStalwart, "auth.failed")));
  EXPECT_FALSE(c->Wanted("tail", Ev(System::kStalwart, "auth.failed")));
  EXPECT_FALSE(c->Wanted("metrics", Ev(System::kStalwart, "smtp.rcpt-to")));
  EXPECT_TRUE(c->Wanted("old_stats", Ev(System::kStalwart, "smtp.rcpt-to")));
}

TEST(EventControlTest, UnknownOutputsAreErrorsNamingTheKnownOnes) {
  EventControlOptions o;
  o.outputs["log"].level = Level::kWarn;
  auto c = EventControl::Build(TestCatalog(), o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "unknown output \"log\"; the outputs are old_stats, metrics, tail, exporters, rules, "
            "records, report");
}

}  // namespace
}  // namespace mailscope::catalog
