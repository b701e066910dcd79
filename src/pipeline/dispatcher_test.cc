#include "pipeline/dispatcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/allocation_counter_testing.h"

namespace mailscope::pipeline {
namespace {

// Records the names it was given and answers a fixed verdict.
class Recorder : public Consumer {
 public:
  explicit Recorder(std::string verdict = {}) : verdict_(std::move(verdict)) {}
  std::string_view Consume(const Event& event) override {
    if (record_) seen.emplace_back(NameText(event.name));
    ++calls;
    return verdict_;
  }
  std::vector<std::string> seen;
  long calls = 0;
  bool record_ = true;

 private:
  std::string verdict_;
};

std::unique_ptr<catalog::EventRouter> Router(const catalog::EventControlOptions& options) {
  auto router = catalog::MakeCatalogRouter(options);
  EXPECT_TRUE(router.ok()) << router.status().message();
  return std::move(*router);
}

Event Make(Source source, std::string_view name) {
  Event e;
  e.source = source;
  e.name = InternName(name);
  return e;
}

TEST(DispatcherTest, CountsEveryEventAndCallsOutputsInOrder) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  std::vector<std::string> order;
  struct Tagged : Consumer {
    Tagged(std::vector<std::string>& o, std::string t) : order(o), tag(std::move(t)) {}
    std::string_view Consume(const Event&) override {
      order.push_back(tag);
      return {};
    }
    std::vector<std::string>& order;
    std::string tag;
  } a(order, "metrics"), b(order, "tail");
  d.Register("metrics", a);
  d.Register("tail", b);
  Event e = Make(Source::kDovecot, "imap_command_finished");
  EXPECT_EQ(d.Dispatch(e), "");
  EXPECT_EQ(order, (std::vector<std::string>{"metrics", "tail"}));
  EXPECT_EQ(counters.events(Source::kDovecot, e.name), 1u);
  EXPECT_EQ(d.OutputIndex("tail"), 1);
  EXPECT_EQ(d.OutputIndex("records"), -1);
}

TEST(DispatcherTest, DisabledEventReachesNoOutputButIsCounted) {
  stats::IngestCounters counters;
  catalog::EventControlOptions o;
  o.disabled = {"dovecot:imap_command_finished"};
  Dispatcher d(counters, Router(o));
  Recorder metrics, tail;
  d.Register("metrics", metrics);
  d.Register("tail", tail);
  Event off = Make(Source::kDovecot, "imap_command_finished");
  Event on = Make(Source::kDovecot, "auth_request_finished");
  d.Dispatch(off);
  d.Dispatch(on);
  EXPECT_EQ(metrics.seen, std::vector<std::string>{"auth_request_finished"});
  EXPECT_EQ(tail.seen, std::vector<std::string>{"auth_request_finished"});
  EXPECT_EQ(counters.events(Source::kDovecot, off.name), 1u);
  const auto* info =
      catalog::Catalog::Get().Find(catalog::System::kDovecot, "imap_command_finished");
  ASSERT_NE(info, nullptr);
  EXPECT_FALSE(d.Takes("metrics", *info));
  EXPECT_FALSE(d.Takes("records", *info));  // not registered
}

TEST(DispatcherTest, ReloadedControlAppliesFromTheNextEvent) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  Recorder metrics;
  d.Register("metrics", metrics);
  Event e = Make(Source::kDovecot, "imap_command_finished");
  d.Dispatch(e);
  catalog::EventControlOptions o;
  o.disabled = {"dovecot:imap_command_finished"};
  auto control = catalog::EventControl::Build(catalog::Catalog::Get(), o);
  ASSERT_TRUE(control.ok());
  d.SetControl(std::move(*control));
  d.Dispatch(e);
  EXPECT_EQ(metrics.calls, 1);
  EXPECT_EQ(d.Refused("metrics", catalog::System::kDovecot),
            std::vector<std::string>{"imap_command_finished"});
  d.SetControl(std::move(*catalog::EventControl::Build(catalog::Catalog::Get(), {})));
  d.Dispatch(e);
  EXPECT_EQ(metrics.calls, 2);
  EXPECT_TRUE(d.Refused("metrics", catalog::System::kDovecot).empty());
  EXPECT_EQ(d.Refused("tail", catalog::System::kDovecot).size(),
            d.Refused("records", catalog::System::kDovecot).size());  // unregistered: all
}

TEST(DispatcherTest, EventsCarryAndCountTheirTaxonomy) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  struct Kind : Consumer {
    std::string_view Consume(const Event& event) override {
      kind = NameText(event.taxonomy.kind);
      outcome = NameText(event.taxonomy.outcome);
      return {};
    }
    std::string kind, outcome;
  } seen;
  d.Register("metrics", seen);
  Event e = Make(Source::kDovecot, "auth_request_finished");
  e.Add(InternName("success"), Value::String("no"));
  d.Dispatch(e);
  EXPECT_EQ(seen.kind, "auth");
  EXPECT_EQ(seen.outcome, "failure");
  EXPECT_EQ(counters.taxonomy(Source::kDovecot, InternName("auth"), InternName("failure")), 1u);
  Event unknown = Make(Source::kDovecot, "no_such_event_anywhere");
  d.Dispatch(unknown);
  EXPECT_EQ(seen.kind, "");
}

TEST(DispatcherTest, UnknownNamesBeyondTheCapAreFoldedNotDropped) {
  stats::IngestCounters counters(2);
  Dispatcher d(counters, Router({}));
  Recorder metrics;
  d.Register("metrics", metrics);
  for (std::string_view name : {"made.up.1", "made.up.2", "made.up.3", "made.up.1", "made.up.4"}) {
    Event e = Make(Source::kStalwart, name);
    d.Dispatch(e);
  }
  Event known = Make(Source::kStalwart, "auth.failed");
  d.Dispatch(known);
  EXPECT_EQ(counters.events(Source::kStalwart, InternName("made.up.1")), 2u);
  EXPECT_EQ(counters.events(Source::kStalwart, InternName("made.up.2")), 1u);
  EXPECT_EQ(counters.events(Source::kStalwart, InternName("made.up.3")), 0u);
  EXPECT_EQ(counters.folded(Source::kStalwart), 2u);
  EXPECT_EQ(counters.events(Source::kStalwart, known.name), 1u);  // catalog names: no cap
  EXPECT_EQ(metrics.calls, 6);  // folding is about the counter only
}

TEST(DispatcherTest, PerOutputRulesApplyToThatOutputOnly) {
  stats::IngestCounters counters;
  catalog::EventControlOptions o;
  o.outputs["tail"].disabled = {"dovecot:auth_*"};
  Dispatcher d(counters, Router(o));
  Recorder metrics, tail;
  d.Register("metrics", metrics);
  d.Register("tail", tail);
  Event e = Make(Source::kDovecot, "auth_request_finished");
  d.Dispatch(e);
  EXPECT_EQ(metrics.calls, 1);
  EXPECT_EQ(tail.calls, 0);
}

TEST(DispatcherTest, OutputLevelsUseTheCatalogLevel) {
  stats::IngestCounters counters;
  catalog::EventControlOptions o;
  o.outputs["metrics"].level = Level::kTrace;
  o.outputs["tail"].level = Level::kInfo;
  Dispatcher d(counters, Router(o));
  Recorder metrics, tail;
  d.Register("metrics", metrics);
  d.Register("tail", tail);
  // Stalwart's auth.failed defaults to debug.
  Event e = Make(Source::kStalwart, "auth.failed");
  d.Dispatch(e);
  EXPECT_EQ(metrics.calls, 1);
  EXPECT_EQ(tail.calls, 0);
}

TEST(DispatcherTest, UnknownEventsCountAtTheDefaultLevel) {
  stats::IngestCounters counters;
  catalog::EventControlOptions o;
  o.outputs["tail"].level = Level::kWarn;
  Dispatcher d(counters, Router(o));
  Recorder metrics, tail;
  d.Register("metrics", metrics);
  d.Register("tail", tail);
  // Dovecot sends most events with log type debug; that is no severity.
  Event e = Make(Source::kDovecot, "my_plugin_event_finished");
  e.level = Level::kDebug;
  d.Dispatch(e);
  EXPECT_EQ(metrics.calls, 1);
  EXPECT_EQ(tail.calls, 0);
  EXPECT_EQ(d.router().unknown(Source::kDovecot), 1u);
}

TEST(DispatcherTest, SourcesLimitAnOutput) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  Recorder old_stats, tail;
  d.Register("old_stats", old_stats, SourceSet::Only(Source::kDovecotOldStats));
  d.Register("tail", tail);
  Event record = Make(Source::kDovecotOldStats, "connect");
  Event event = Make(Source::kDovecot, "imap_command_finished");
  d.Dispatch(record);
  d.Dispatch(event);
  EXPECT_EQ(old_stats.seen, std::vector<std::string>{"connect"});
  EXPECT_EQ(tail.seen, (std::vector<std::string>{"connect", "imap_command_finished"}));
  EXPECT_EQ(counters.events(Source::kDovecotOldStats, record.name), 1u);
}

TEST(DispatcherTest, FirstNonEmptyVerdictWinsAndEveryOutputRuns) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  Recorder silent, first("defer: busy"), second("deny");
  d.Register("metrics", silent);
  d.Register("tail", first);
  d.Register("exporters", second);
  Event e = Make(Source::kExim, "tcp:connect");
  EXPECT_EQ(d.Dispatch(e), "defer: busy");
  // The verdict's own event goes to every output but the one that gave it;
  // what they answer to it is not a verdict for anyone.
  EXPECT_EQ(second.seen, (std::vector<std::string>{"tcp:connect", "mailscope:verdict"}));
  EXPECT_EQ(first.seen, std::vector<std::string>{"tcp:connect"});
  EXPECT_EQ(silent.seen, (std::vector<std::string>{"tcp:connect", "mailscope:verdict"}));
}

TEST(DispatcherTest, AVerdictIsAnEventWithTheAskingEventsFields) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  struct Rule : Consumer {
    std::string_view Consume(const Event& e) override {
      return NameText(e.name) == "tcp:connect" ? "not now" : "";
    }
    std::string_view VerdictOrigin() const override { return "no-connect"; }
  } rule;
  struct Keep : Consumer {
    std::string_view Consume(const Event& e) override {
      if (NameText(e.name) != "mailscope:verdict") return {};
      source = e.source;
      for (const Field& f : e.fields)
        fields.emplace_back(std::string(NameText(f.key)) + "=" + std::string(f.value.as_string()));
      return {};
    }
    Source source = Source::kDovecot;
    std::vector<std::string> fields;
  } tail;
  d.Register("tail", tail);
  d.Register("rules", rule);
  Event e = Make(Source::kExim, "tcp:connect");
  e.Add(InternName("host_address"), Value::String("192.0.2.1"));
  EXPECT_EQ(d.Dispatch(e), "not now");
  EXPECT_EQ(tail.source, Source::kExim);
  EXPECT_EQ(tail.fields, (std::vector<std::string>{"for_event=tcp:connect", "rule=no-connect",
                                                   "verdict=not now", "host_address=192.0.2.1"}));
  EXPECT_EQ(counters.events(Source::kExim, InternName("mailscope:verdict")), 1u);
  Event quiet = Make(Source::kExim, "tcp:close");
  EXPECT_EQ(d.Dispatch(quiet), "");
  EXPECT_EQ(counters.events(Source::kExim, InternName("mailscope:verdict")), 1u);
}

TEST(DispatcherTest, ConsumersSeeWhichOtherOutputsTakeTheEvent) {
  stats::IngestCounters counters;
  catalog::EventControlOptions o;
  o.outputs["exporters"].disabled = {"dovecot:imap_*"};
  Dispatcher d(counters, Router(o));
  struct Probe : Consumer {
    explicit Probe(const Dispatcher& disp) : d(disp) {}
    std::string_view Consume(const Event&) override {
      exported.push_back(d.CurrentEventTakenBy(1));
      return {};
    }
    const Dispatcher& d;
    std::vector<bool> exported;
  } metrics(d);
  Recorder exporters;
  d.Register("metrics", metrics);
  d.Register("exporters", exporters);
  Event a = Make(Source::kDovecot, "imap_command_finished");
  Event b = Make(Source::kDovecot, "auth_request_finished");
  d.Dispatch(a);
  d.Dispatch(b);
  EXPECT_EQ(metrics.exported, (std::vector<bool>{false, true}));
  EXPECT_FALSE(d.CurrentEventTakenBy(1));  // outside a dispatch
}

TEST(DispatcherTest, SteadyStateAllocatesNothing) {
  stats::IngestCounters counters;
  Dispatcher d(counters, Router({}));
  Recorder metrics, tail;
  metrics.record_ = tail.record_ = false;
  d.Register("metrics", metrics);
  d.Register("tail", tail);
  Event known = Make(Source::kDovecot, "imap_command_finished");
  Event unknown = Make(Source::kStalwart, "no.such-event");
  Event record = Make(Source::kDovecotOldStats, "connect");
  Event login = Make(Source::kDovecot, "auth_request_finished");  // outcome from a field
  login.Add(InternName("success"), Value::String("no"));
  for (Event* e : {&known, &unknown, &record, &login}) d.Dispatch(*e);
  const long before = HeapAllocationsForTesting();
  for (int i = 0; i < 1000; ++i) {
    for (Event* e : {&known, &unknown, &record, &login}) d.Dispatch(*e);
  }
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
  EXPECT_EQ(metrics.calls, 4004);
  EXPECT_EQ(counters.taxonomy(Source::kDovecot, InternName("auth"), InternName("failure")), 1001u);
}

}  // namespace
}  // namespace mailscope::pipeline
