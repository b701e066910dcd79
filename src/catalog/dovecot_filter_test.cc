#include "catalog/dovecot_filter.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "catalog/event_control.h"
#include "catalog/event_router.h"

namespace mailscope::catalog {
namespace {

filter::Filter MustParse(std::string_view text) {
  auto f = filter::Parse(text, filter::Dialect::kMailscope);
  EXPECT_TRUE(f.ok()) << text << ": " << f.status().message();
  return f.ok() ? *f : filter::Filter();
}

std::string Export(std::vector<std::string_view> texts, std::vector<std::string> excluded = {}) {
  std::vector<filter::Filter> parsed;
  for (std::string_view t : texts) parsed.push_back(MustParse(t));
  std::vector<const filter::Filter*> ptrs;
  for (const filter::Filter& f : parsed) ptrs.push_back(&f);
  std::string out = ExportDovecotFilter(ptrs, Catalog::Get(), excluded);
  EXPECT_TRUE(filter::Parse(out, filter::Dialect::kDovecot).ok()) << out;
  return out;
}

// The metrics of tests/data/dovecot-2.3.19/dovecot.conf, as the real stats
// server sent them in FILTER.
constexpr std::string_view kDovecotMetrics[] = {
    "event=imap_command_finished",
    "event=imap_command_finished AND (cmd_name=SEARCH OR cmd_name=STORE OR "
    "tagged_reply_state=BAD OR tagged_reply_state=NO)",
    "event=auth_request_finished AND success=yes",
    "event=auth_request_finished AND NOT success=yes",
    "category=storage AND event=mail_opened",
    "user=\"*@example.com\" AND remote_ip=127.0.0.1 AND duration>1000",
    "reason=x OR category=error OR source_location=imap-client.c:1016",
};

TEST(DovecotFilterTest, DovecotKeysExportAsBefore) {
  std::vector<std::string_view> texts(std::begin(kDovecotMetrics), std::end(kDovecotMetrics));
  std::vector<filter::Filter> parsed;
  for (std::string_view t : texts) parsed.push_back(MustParse(t));
  std::vector<const filter::Filter*> ptrs;
  for (const filter::Filter& f : parsed) ptrs.push_back(&f);
  EXPECT_EQ(Export(texts), filter::Filter::Merge(ptrs).ExportDovecot());
  EXPECT_EQ(Export({}), "");
  // Exclusions the queries cannot match change nothing; others are added.
  texts.resize(5);  // the queries that name their events
  ptrs.resize(5);
  EXPECT_EQ(Export(texts, {"mail_delivery_finished", "not_a_catalog_event"}),
            filter::Filter::Merge(ptrs).ExportDovecot());
  EXPECT_EQ(Export({"duration>1000"}, {"mail_delivery_finished"}),
            "((\"duration\">\"1000\" AND (NOT event=\"mail_delivery_finished\")))");
}

TEST(DovecotFilterTest, PipelineKeysBecomeTheCatalogEventsThatCanMatch) {
  const struct {
    std::string_view filter, dovecot;
  } cases[] = {
      {"kind=auth AND outcome=failure", "(event=\"auth_request_finished\")"},
      {"kind=command",
       "((event=\"imap_command_finished\" OR event=\"managesieve_command_finished\"))"},
      // Dovecot's own fields stay, relaxed where they sit beside pipeline keys.
      {"kind=auth AND user=\"*@example.com\"",
       "((event=\"auth_request_finished\" AND \"user\"=\"*@example.com\"))"},
      {"kind=command AND NOT cmd_name=LOGOUT AND outcome=failure",
       "(((event=\"imap_command_finished\" OR event=\"managesieve_command_finished\") AND "
       "(NOT \"cmd_name\"=\"LOGOUT\")))"},
      // A normalized name no Dovecot event carries: the events that map it.
      {"recipient=\"*@example.com\"", "(event=\"mail_delivery_finished\")"},
      {"kind=delivery AND outcome=failed", "(event=\"mail_delivery_finished\")"},
      // Constant outcomes are known: no Dovecot delivery is always deferred.
      {"kind=delivery AND outcome=deferred", "(event=\"mail_delivery_finished\")"},
      {"kind=rejection", ""},
      {"source=exim", ""},
      {"source=exim OR event=imap_command_finished", "(event=\"imap_command_finished\")"},
      // Events outside the catalog can match: no list of names, Dovecot's keys stay.
      {"NOT kind=auth", "(event=\"*\")"},
      {"NOT kind=auth AND category=storage", "(category=\"storage\")"},
      {"source=dovecot AND event=imap_*", "(event=\"imap_*\")"},
  };
  for (const auto& c : cases) EXPECT_EQ(Export({c.filter}), c.dovecot) << c.filter;
  EXPECT_EQ(Export({"source=exim", "kind=auth", "event=mail_opened"}),
            "(event=\"auth_request_finished\") OR (event=\"mail_opened\")");
}

TEST(DovecotFilterTest, ExcludedEventsAreNeverAskedFor) {
  EXPECT_EQ(Export({"event=imap_command_finished"}, {"imap_command_finished"}), "");
  EXPECT_EQ(Export({"event=imap_command_finished OR event=mail_opened"}, {"mail_opened"}),
            "(((event=\"imap_command_finished\" OR event=\"mail_opened\") AND "
            "(NOT event=\"mail_opened\")))");
  EXPECT_EQ(Export({"category=storage"}, {"mail_opened", "not_in_the_catalog"}),
            "(((category=\"storage\" AND (NOT event=\"mail_opened\")) AND "
            "(NOT event=\"not_in_the_catalog\")))");
  EXPECT_EQ(Export({"kind=command"}, {"managesieve_command_finished"}),
            "(event=\"imap_command_finished\")");
  EXPECT_EQ(Export({"kind=auth"}, {"auth_request_finished"}), "");
  EXPECT_EQ(Export({"NOT kind=auth"}, {"mail_opened"}),
            "((event=\"*\" AND (NOT event=\"mail_opened\")))");
}

// What Dovecot sends for the export is a superset of what the filter takes:
// every Dovecot catalog event, routed, with and without the fields its
// outcome and aliases read. Dovecot evaluates the export without taxonomy.
TEST(DovecotFilterTest, TheExportAsksForEveryEventTheFilterMatches) {
  auto control = EventControl::Build(Catalog::Get(), {});
  ASSERT_TRUE(control.ok());
  EventRouter router(Catalog::Get(), std::move(*control));
  const std::string_view texts[] = {
      "kind=auth AND outcome=failure",
      "kind=auth AND outcome=success AND user=\"*@example.com\"",
      "kind=command AND NOT outcome=success",
      "NOT (kind=delivery OR source=exim) AND category=storage",
      "recipient=\"*@example.com\" OR reason=\"*quota*\"",
      "NOT recipient=x AND event=mail_*",
      "outcome=\"\" AND category=imap",
      "source=dovecot AND (duration>10 OR NOT kind=auth)",
  };
  int matched = 0;
  for (std::string_view text : texts) {
    const filter::Filter f = MustParse(text);
    const filter::Filter* ptrs[] = {&f};
    auto exported =
        filter::Parse(ExportDovecotFilter(ptrs, Catalog::Get(), {}), filter::Dialect::kDovecot);
    ASSERT_TRUE(exported.ok());
    for (const EventInfo* info : Catalog::Get().OfSystem(System::kDovecot)) {
      for (int variant = 0; variant < 3; ++variant) {
        Event e;
        e.source = Source::kDovecot;
        e.name = InternName(info->name);
        e.categories.push_back(InternName(variant == 2 ? "imap" : "storage"));
        if (variant > 0) {
          if (!info->outcome_field.empty())
            e.Add(InternName(info->outcome_field), Value::String(variant == 1 ? "yes" : "OK"));
          e.Add(InternName("rcpt_to"), Value::String("bob@example.com"));
          e.Add(InternName("error"), Value::String("over quota"));
          e.Add(InternName("user"), Value::String("alice@example.com"));
          e.Add(InternName("duration"), Value::Int(20));
        }
        e.taxonomy = router.Route(e).taxonomy;
        if (!f.Matches(e)) continue;
        ++matched;
        e.taxonomy = {};
        EXPECT_TRUE(exported->Matches(e)) << text << " on " << info->name << " #" << variant;
      }
    }
  }
  EXPECT_GT(matched, 100);
}

}  // namespace
}  // namespace mailscope::catalog
