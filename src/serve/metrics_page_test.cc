#include "serve/metrics_page.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "core/skip_testing.h"
#include "ingest/dovecot_old_stats.h"

namespace mailscope::serve {
namespace {

TEST(MetricsPageTest, CarriesSelfMetricsAndOldStatsFigures) {
  FakeClock clock;
  stats::OldStatsStore store(stats::OldStatsOptions{}, clock);
  stats::IngestCounters counters;
  ingest::DovecotOldStatsDecoder decoder;
  Event e;
  std::string line = "CONNECT\ts1\talice@example.com\timap\t1";
  ASSERT_TRUE(decoder.Decode(line, clock.Now(), e).emit);
  counters.CountEvent(Source::kDovecotOldStats, e.name);
  ASSERT_TRUE(store.Apply(e).ok());
  counters.CountRejected(Source::kDovecotOldStats, "invalid_base64");
  counters.CountTaxonomy(Source::kDovecot, InternName("auth"), InternName("failure"));
  counters.CountTaxonomy(Source::kDovecot, InternName("auth"), kNoName);
  stats::IngestCounters capped(1);
  capped.CountEvent(Source::kStalwart, InternName("made.up.1"), false);
  capped.CountEvent(Source::kStalwart, InternName("made.up.2"), false);
  NameBudget spent(NameInput::kTail, 0);
  ASSERT_EQ(TryInternName("metrics_page_test_refused", spent), kNoName);
  const std::uint64_t tail_refused = NamesRefused(NameInput::kTail, NameRefusal::kClientBudget);

  std::string page =
      RenderMetricsPage({store, counters, clock.Now()}, exporter::MetricsFormat::kPrometheus);
  EXPECT_NE(page.find("mailscope_events_total{source=\"dovecot_old_stats\",event=\"CONNECT\"} 1\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_ingest_rejected_total{source=\"dovecot_old_stats\",reason="
                      "\"invalid_base64\"} 1\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_taxonomy_events_total{kind=\"auth\",outcome=\"failure\","
                      "source=\"dovecot\"} 1\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_taxonomy_events_total{kind=\"auth\",outcome=\"unknown\","
                      "source=\"dovecot\"} 1\n"),
            std::string::npos);
  const std::string folded =
      RenderMetricsPage({store, capped, clock.Now()}, exporter::MetricsFormat::kPrometheus);
  EXPECT_NE(folded.find("mailscope_events_folded_total{source=\"stalwart\"} 1\n"),
            std::string::npos);
  EXPECT_NE(folded.find("mailscope_events_total{source=\"stalwart\",event=\"made.up.1\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(folded.find("made.up.2"), std::string::npos);
  EXPECT_NE(page.find("mailscope_memory_limit_bytes{store=\"old_stats\"} 16777216\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_old_stats_logins_total 1\n"), std::string::npos);
  EXPECT_NE(
      page.find("# TYPE mailscope_loop_stall_seconds gauge\nmailscope_loop_stall_seconds 0\n"),
      std::string::npos);
  EXPECT_NE(page.find("mailscope_old_stats_connected_sessions 1\n"), std::string::npos);
  EXPECT_NE(page.find("mailscope_old_stats_user_cpu_seconds_total 0\n"), std::string::npos);
  EXPECT_NE(page.find("mailscope_evicted_total{store=\"old_stats\",level=\"user\"} 0\n"),
            std::string::npos);
  // Name refusals: every input and reason, this one counted.
  EXPECT_NE(page.find(fmt::format(
                "mailscope_names_refused_total{{input=\"tail\",reason=\"client_budget\"}} {}\n",
                tail_refused)),
            std::string::npos);
  EXPECT_NE(
      page.find("mailscope_names_refused_total{input=\"stats_writer\",reason=\"table_full\"}"),
      std::string::npos);

  std::string om =
      RenderMetricsPage({store, counters, clock.Now()}, exporter::MetricsFormat::kOpenMetrics);
  EXPECT_TRUE(om.ends_with("# EOF\n"));
  EXPECT_NE(om.find("# TYPE mailscope_events counter\n"), std::string::npos);
}

stats::MetricDefinition Def(std::string name, std::string group_by, filter::Dialect dialect) {
  stats::MetricSettings s;
  s.name = std::move(name);
  s.filter = "event=delivery";
  s.group_by = std::move(group_by);
  s.dialect = dialect;
  auto d = stats::MakeMetric(s);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return std::move(*d);
}

// An engine whose metrics dropped sub-metrics: a Dovecot one, a mailscope
// one, and one whose name takes a family of the page itself.
void FeedDrops(stats::MetricsEngine& engine) {
  ASSERT_TRUE(engine.Add(Def("by_rcpt", "rcpt", filter::Dialect::kDovecot)).ok());
  ASSERT_TRUE(
      engine.Add(Def("by_time", "elapsed:exponential:3:4:10", filter::Dialect::kMailscope)).ok());
  ASSERT_TRUE(engine.Add(Def("metric_sub_metrics_dropped", "", filter::Dialect::kMailscope)).ok());
  for (const char* rcpt : {"a@example.com", "b@example.com", "c@example.com"}) {
    Event e;
    e.source = Source::kStalwart;
    e.name = InternName("delivery");
    e.Add(InternName("rcpt"), Value::String(rcpt));
    e.Add(InternName("elapsed"), Value::Int(rcpt[0] == 'a' ? 5 : 50).WithUnit(Unit::kMilliseconds));
    engine.Process(e);
  }
}

TEST(MetricsPageTest, SubMetricDropsPerMetric) {
  FakeClock clock;
  stats::OldStatsStore store(stats::OldStatsOptions{}, clock);
  stats::IngestCounters counters;
  stats::MetricsEngine engine(stats::MetricsOptions{.max_sub_metrics = 1});
  FeedDrops(engine);
  MetricsSources sources{store, counters, clock.Now()};
  sources.dovecot_metrics = &engine;

  const std::string page = RenderMetricsPage(sources, exporter::MetricsFormat::kPrometheus);
  EXPECT_NE(page.find("# TYPE mailscope_metric_sub_metrics_dropped_total counter\n"
                      "mailscope_metric_sub_metrics_dropped_total{metric=\"by_rcpt\"} 2\n"
                      "mailscope_metric_sub_metrics_dropped_total{metric=\"by_time\"} 2\n"
                      "mailscope_metric_sub_metrics_dropped_total{metric=\"metric_sub_metrics_"
                      "dropped\"} 0\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("mailscope_metric_unit_conflicts_total{metric=\"by_time\"} 0\n"),
            std::string::npos);
  EXPECT_EQ(page.find("mailscope_metric_unit_conflicts_total{metric=\"by_rcpt\"}"),
            std::string::npos);  // Dovecot's metrics take values as sent
  EXPECT_NE(page.find("dovecot_by_rcpt_total{rcpt=\"a@example.com\"} 1\n"), std::string::npos);
  EXPECT_NE(page.find("mailscope_by_time_bucket{le=\"0.01\"} 1\n"), std::string::npos);
  // The metric named like the drop counter is left out, not written twice.
  EXPECT_EQ(page.find("# TYPE mailscope_metric_sub_metrics_dropped_total"),
            page.rfind("# TYPE mailscope_metric_sub_metrics_dropped_total"));

  const std::string om = RenderMetricsPage(sources, exporter::MetricsFormat::kOpenMetrics);
  EXPECT_NE(om.find("# TYPE mailscope_metric_sub_metrics_dropped counter\n"
                    "mailscope_metric_sub_metrics_dropped_total{metric=\"by_rcpt\"} 2\n"),
            std::string::npos);

  // Without an engine the family is there, empty.
  const std::string bare =
      RenderMetricsPage({store, counters, clock.Now()}, exporter::MetricsFormat::kPrometheus);
  EXPECT_NE(bare.find("# TYPE mailscope_metric_sub_metrics_dropped_total counter\n# HELP"),
            std::string::npos);
}

// Prometheus' own linter, when installed (Debian package prometheus).
TEST(MetricsPageTest, PromtoolAcceptsThePage) {
  constexpr const char* kPromtool = "/usr/bin/promtool";
  if (access(kPromtool, X_OK) != 0) MS_SKIP_UNLESS_REQUIRED() << kPromtool << " is not installed";
  FakeClock clock;
  stats::OldStatsStore store(stats::OldStatsOptions{}, clock);
  stats::IngestCounters counters;
  stats::MetricsEngine engine(stats::MetricsOptions{.max_sub_metrics = 1});
  FeedDrops(engine);
  MetricsSources sources{store, counters, clock.Now()};
  sources.dovecot_metrics = &engine;
  const std::string page = RenderMetricsPage(sources, exporter::MetricsFormat::kPrometheus);

  const std::string cmd = std::string(kPromtool) + " check metrics >/dev/null 2>&1";
  FILE* p = popen(cmd.c_str(), "w");
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(std::fwrite(page.data(), 1, page.size(), p), page.size());
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << page;
}

}  // namespace
}  // namespace mailscope::serve
