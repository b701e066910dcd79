#include "catalog/event_router.h"

#include <gtest/gtest.h>

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
    EXPECT_TRUE(router.Wanted("log", r, Level::kWarn));
    EXPECT_FALSE(router.Wanted("log", r, Level::kFatal));  // error is below fatal
  }
  auto low = router.Route(Make(Source::kExim, "msg:new", Level::kDebug));
  EXPECT_FALSE(router.Wanted("log", low, Level::kInfo));
  EXPECT_EQ(router.unknown(Source::kStalwart), 3u);
  EXPECT_EQ(router.unknown(Source::kExim), 1u);
  EXPECT_FALSE(SystemOf(Source::kDovecotOldStats).has_value());
}

}  // namespace
}  // namespace mailscope::catalog
