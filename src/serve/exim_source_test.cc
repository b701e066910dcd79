#include "serve/exim_source.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "catalog/event_router.h"
#include "rules/rules.h"

namespace mailscope::serve {
namespace {

using namespace std::chrono_literals;

// A source with one rule that answers every tcp:connect.
struct Fixture {
  Fixture() {
    auto router = catalog::MakeCatalogRouter();
    EXPECT_TRUE(router.ok());
    dispatcher = std::make_unique<pipeline::Dispatcher>(counters, std::move(*router));
    auto rule = rules::MakeRule({"all", "event=\"tcp:connect\"", "not now"});
    EXPECT_TRUE(rule.ok());
    std::vector<rules::Rule> list;
    list.push_back(std::move(*rule));
    rules.SetRules(std::move(list));
    dispatcher->Register("rules", rules);
  }
  SourceContext Context() { return SourceContext{*dispatcher, counters, log, clock, nullptr}; }

  stats::IngestCounters counters;
  std::unique_ptr<pipeline::Dispatcher> dispatcher;
  rules::RulesOutput rules{catalog::Catalog::Get()};
  RateLimitedLog log{10, 10s};
  SystemClock clock;
};

std::string Ask(net::LineConnection& conn, std::string request) {
  std::string reply;
  EXPECT_FALSE(conn.on_line(std::span<char>(request.data(), request.size()), reply));
  return reply;
}

// A verdict ready too long after Exim connected is not written: Exim may
// have gone on without it. The event and the verdict still count.
TEST(EximEventSourceTest, AVerdictLaterThanItsTimeoutIsAnEmptyReplyAndCounted) {
  Fixture f;
  EximEventSource source(f.Context(), {}, 20ms);
  net::LineConnection quick = source.NewConnection();
  EXPECT_TRUE(quick.line_at_eof);
  EXPECT_EQ(Ask(quick, "event event_name=\"tcp:connect\""), "not now");
  net::LineConnection slow = source.NewConnection();
  std::this_thread::sleep_for(40ms);  // the loop was busy before it read the request
  EXPECT_EQ(Ask(slow, "event event_name=\"tcp:connect\""), "");
  EXPECT_EQ(source.late_verdicts(), 1u);
  EXPECT_EQ(f.counters.events(Source::kExim, InternName("tcp:connect")), 2u);
  EXPECT_EQ(f.counters.events(Source::kExim, InternName("mailscope:verdict")), 2u);
  // 0 disables the bound.
  source.set_verdict_timeout(0ms);
  net::LineConnection slower = source.NewConnection();
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(Ask(slower, "event event_name=\"tcp:connect\""), "not now");
  EXPECT_EQ(source.late_verdicts(), 1u);
}

TEST(EximEventSourceTest, ARejectedRequestGetsAnEmptyReplyAndIsCounted) {
  Fixture f;
  EximEventSource source(f.Context(), {}, 500ms);
  net::LineConnection conn = source.NewConnection();
  EXPECT_EQ(Ask(conn, "event event_name=\"tcp:connect\" host=\"open"), "");
  EXPECT_EQ(f.counters.rejected(Source::kExim, "malformed_request"), 1u);
}

}  // namespace
}  // namespace mailscope::serve
