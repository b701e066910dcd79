#include "catalog/event_router.h"

#include <gtest/gtest.h>

#include "core/allocation_counter_testing.h"

namespace mailscope::catalog {
namespace {

constexpr std::string_view kHeader =
    "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n";

const Catalog& RouterCatalog() {
  static const Catalog c = [] {
    DataFiles files = {{"events.stalwart.tsv",
                        "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\n"
                        "auth.failed\tauth\tdebug\t\t\t\t\nqueue.message-"
                        "queued\tqueue\tinfo\t\tqueue.queue-message\t\t\n"},
                       {"events.dovecot.tsv", kHeader},
                       {"events.exim.tsv",
                        "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription\nmsg:"
                        "delivery\tmsg\t\t\t\t\t\n"},
                       {"events.qmail.tsv", kHeader},
                       {"taxonomy.tsv", "kind\toutcomes\tfields\tdescription\n"},
                       {"taxonomy_map.tsv",
                        "system\tname\tkind\toutcome\tfields\nstalwart\tauth.failed\t-"
                        "\t\t\nstalwart\tqueue.message-queued\t-\t\t\n"
                        "exim\tmsg:delivery\t-\t\t\n"}};
    auto parsed = Catalog::Parse(files);
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    return std::move(*parsed);
  }();
  return c;
}

Event Make(Source source, std::string_view name, Level level = Level::kInfo) {
  Event e;
  e.source = source;
  e.name = InternName(name);
  e.level = level;
  return e;
}

TEST(EventRouterTest, KnownEventsGetTheirInfoAndEffectiveLevel) {
  EventControlOptions o;
  o.levels = {{"stalwart:auth.failed", Level::kWarn}};
  auto control = EventControl::Build(RouterCatalog(), o);
  ASSERT_TRUE(control.ok());
  EventRouter router(RouterCatalog(), std::move(*control));
  auto r = router.Route(Make(Source::kStalwart, "auth.failed"));
  ASSERT_NE(r.info, nullptr);
  EXPECT_EQ(r.info->name, "auth.failed");
  EXPECT_EQ(r.level, Level::kWarn);
  // The old spelling reaches the same event, from the log source too.
  auto alias = router.Route(Make(Source::kStalwartLog, "queue.queue-message"));
  ASSERT_NE(alias.info, nullptr);
  EXPECT_EQ(alias.info->name, "queue.message-queued");
  EXPECT_NE(router.Route(Make(Source::kEximLog, "msg:delivery")).info, nullptr);
  EXPECT_EQ(router.unknown(Source::kStalwart), 0u);
}

TEST(EventRouterTest, UnknownEventsAreKeptAndCounted) {
  auto control = EventControl::Build(RouterCatalog(), {});
  ASSERT_TRUE(control.ok());
  EventRouter router(RouterCatalog(), std::move(*control));
  for (int i = 0; i < 3; ++i) {
    auto r = router.Route(Make(Source::kStalwart, "brand.new-event", Level::kError));
    EXPECT_EQ(r.info, nullptr);
    EXPECT_EQ(r.level, Level::kError);
  }
  auto low = router.Route(Make(Source::kExim, "msg:new", Level::kDebug));
  EXPECT_EQ(low.level, Level::kDebug);
  EXPECT_EQ(router.unknown(Source::kStalwart), 3u);
  EXPECT_EQ(router.unknown(Source::kExim), 1u);
  EXPECT_FALSE(SystemOf(Source::kDovecotOldStats).has_value());
}

std::string_view Text(NameId id) { return id == kNoName ? "" : NameText(id); }

// The compiled-in catalog, with every event enabled.
EventRouter FullRouter() {
  auto control = EventControl::Build(Catalog::Get(), {});
  EXPECT_TRUE(control.ok());
  return EventRouter(Catalog::Get(), std::move(*control));
}

TEST(EventRouterTest, OutcomeIsReadFromTheFieldTheRulesName) {
  EventRouter router = FullRouter();
  Event ok = Make(Source::kDovecot, "auth_request_finished");
  ok.Add(InternName("success"), Value::String("yes"));
  Event no = Make(Source::kDovecot, "auth_request_finished");
  no.Add(InternName("success"), Value::String("no"));
  const Event absent = Make(Source::kDovecot, "auth_request_finished");
  for (const auto& [event, outcome] : {std::pair<const Event*, std::string_view>{&ok, "success"},
                                       {&no, "failure"},
                                       {&absent, "failure"}}) {
    const Taxonomy t = router.Route(*event).taxonomy;
    EXPECT_EQ(Text(t.kind), "auth");
    EXPECT_EQ(Text(t.outcome), outcome);
  }
  // The field may sit on a parent (Dovecot's lookup order).
  Event parent;
  parent.Add(InternName("tagged_reply_state"), Value::String("OK"));
  Event command = Make(Source::kDovecot, "imap_command_finished");
  command.parent = &parent;
  EXPECT_EQ(Text(router.Route(command).taxonomy.outcome), "success");
  parent.Clear();
  parent.Add(InternName("tagged_reply_state"), Value::String("NO"));
  EXPECT_EQ(Text(router.Route(command).taxonomy.outcome), "failure");
}

TEST(EventRouterTest, OutcomeRulesReadNumbersAsTheirDecimalText) {
  EventRouter router = FullRouter();
  Event e = Make(Source::kStalwart, "delivery.rcpt-to-rejected");
  e.Add(InternName("code"), Value::Uint(550));
  EXPECT_EQ(Text(router.Route(e).taxonomy.outcome), "failed");
  e.Clear();
  e.name = InternName("delivery.rcpt-to-rejected");
  e.Add(InternName("code"), Value::Int(421));
  EXPECT_EQ(Text(router.Route(e).taxonomy.outcome), "deferred");
}

TEST(EventRouterTest, ConstantOutcomesAndAliases) {
  EventRouter router = FullRouter();
  const Taxonomy t = router.Route(Make(Source::kExim, "auth:fail")).taxonomy;
  EXPECT_EQ(Text(t.kind), "auth");
  EXPECT_EQ(Text(t.outcome), "failure");
  EXPECT_EQ(Text(t.FieldFor(InternName("remote_ip"))), "sender_host_address");
  EXPECT_EQ(Text(t.FieldFor(InternName("reason"))), "event_data");
  EXPECT_EQ(t.FieldFor(InternName("recipient")), kNoName);
  // Catalog events without a kind, and unknown events, have no taxonomy.
  const Taxonomy none = router.Route(Make(Source::kDovecot, "dict_created")).taxonomy;
  EXPECT_EQ(none.kind, kNoName);
  EXPECT_EQ(none.outcome, kNoName);
  EXPECT_EQ(none.alias_count, 0u);
  EXPECT_EQ(router.Route(Make(Source::kDovecot, "no_such_event")).taxonomy.kind, kNoName);
}

TEST(EventRouterTest, RoutingAKnownEventAllocatesNothingAfterWarmUp) {
  EventRouter router = FullRouter();
  Event e = Make(Source::kDovecot, "auth_request_finished");
  e.Add(InternName("success"), Value::String("yes"));
  Event stalwart = Make(Source::kStalwart, "delivery.rcpt-to-rejected");
  stalwart.Add(InternName("code"), Value::Double(550));
  (void)router.Route(e);
  (void)router.Route(stalwart);
  const long before = HeapAllocationsForTesting();
  for (int i = 0; i < 1000; ++i) {
    e.taxonomy = router.Route(e).taxonomy;
    stalwart.taxonomy = router.Route(stalwart).taxonomy;
  }
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
  EXPECT_EQ(Text(e.taxonomy.outcome), "success");
  EXPECT_EQ(Text(stalwart.taxonomy.outcome), "failed");
}

}  // namespace
}  // namespace mailscope::catalog
