#include "serve/metrics_page.h"

#include <gtest/gtest.h>

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

  std::string page =
      RenderMetricsPage({store, counters, clock.Now()}, exporter::MetricsFormat::kPrometheus);
  EXPECT_NE(page.find("mailscope_events_total{source=\"dovecot_old_stats\",event=\"CONNECT\"} 1\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_ingest_rejected_total{source=\"dovecot_old_stats\",reason="
                      "\"invalid_base64\"} 1\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_memory_limit_bytes{store=\"old_stats\"} 16777216\n"),
            std::string::npos);
  EXPECT_NE(page.find("mailscope_old_stats_logins_total 1\n"), std::string::npos);
  EXPECT_NE(page.find("mailscope_old_stats_connected_sessions 1\n"), std::string::npos);
  EXPECT_NE(page.find("mailscope_old_stats_user_cpu_seconds_total 0\n"), std::string::npos);
  EXPECT_NE(page.find("mailscope_evicted_total{store=\"old_stats\",level=\"user\"} 0\n"),
            std::string::npos);

  std::string om =
      RenderMetricsPage({store, counters, clock.Now()}, exporter::MetricsFormat::kOpenMetrics);
  EXPECT_TRUE(om.ends_with("# EOF\n"));
  EXPECT_NE(om.find("# TYPE mailscope_events counter\n"), std::string::npos);
}

}  // namespace
}  // namespace mailscope::serve
