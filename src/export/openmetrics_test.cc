#include "export/openmetrics.h"

#include <gtest/gtest.h>

namespace mailscope::exporter {
namespace {

TEST(OpenMetricsTest, PrometheusTextLayout) {
  MetricsWriter w(MetricsFormat::kPrometheus);
  w.Family("mailscope_events", "counter", "Events accepted");
  w.Sample({{"source", "dovecot_old_stats"}, {"event", "CONNECT"}}, std::uint64_t{3});
  w.Family("mailscope_memory_used_bytes", "gauge", "Memory", "bytes");
  w.Sample({{"store", "a\"b\\c\nd"}}, 1.5);
  w.Family("mailscope_build", "info", "Build");
  w.Sample({{"version", "1"}}, std::uint64_t{1});
  EXPECT_EQ(w.Finish(),
            "# HELP mailscope_events_total Events accepted\n"
            "# TYPE mailscope_events_total counter\n"
            "mailscope_events_total{source=\"dovecot_old_stats\",event=\"CONNECT\"} 3\n"
            "# HELP mailscope_memory_used_bytes Memory\n"
            "# TYPE mailscope_memory_used_bytes gauge\n"
            "mailscope_memory_used_bytes{store=\"a\\\"b\\\\c\\nd\"} 1.5\n"
            "# HELP mailscope_build_info Build\n"
            "# TYPE mailscope_build_info gauge\n"
            "mailscope_build_info{version=\"1\"} 1\n");
}

TEST(OpenMetricsTest, OpenMetricsLayout) {
  MetricsWriter w(MetricsFormat::kOpenMetrics);
  w.Family("mailscope_events", "counter", "Events accepted");
  w.Sample({}, std::uint64_t{3});
  w.Family("process_start_time_seconds", "gauge", "Start", "seconds");
  w.Sample({}, 17.0);
  EXPECT_EQ(w.Finish(),
            "# HELP mailscope_events Events accepted\n"
            "# TYPE mailscope_events counter\n"
            "mailscope_events_total 3\n"
            "# HELP process_start_time_seconds Start\n"
            "# TYPE process_start_time_seconds gauge\n"
            "# UNIT process_start_time_seconds seconds\n"
            "process_start_time_seconds 17\n"
            "# EOF\n");
}

TEST(OpenMetricsTest, ARepeatedFamilyIsLeftOut) {
  MetricsWriter w(MetricsFormat::kPrometheus);
  EXPECT_TRUE(w.Family("mailscope_events", "counter", "Events accepted"));
  w.Sample({}, std::uint64_t{3});
  EXPECT_FALSE(w.Family("mailscope_events", "histogram", "A metric of the same name"));
  w.Sample({}, std::uint64_t{4});
  w.Suffixed("_count", {}, 4.0);
  EXPECT_TRUE(w.Family("mailscope_other", "gauge", "Other"));
  w.Sample({}, std::uint64_t{5});
  EXPECT_EQ(w.Finish(),
            "# HELP mailscope_events_total Events accepted\n"
            "# TYPE mailscope_events_total counter\n"
            "mailscope_events_total 3\n"
            "# HELP mailscope_other Other\n"
            "# TYPE mailscope_other gauge\n"
            "mailscope_other 5\n");
}

TEST(OpenMetricsTest, NegotiatesFormat) {
  EXPECT_EQ(FormatFromAccept("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            MetricsFormat::kOpenMetrics);
  EXPECT_EQ(FormatFromAccept("text/plain"), MetricsFormat::kPrometheus);
  EXPECT_EQ(FormatFromAccept(""), MetricsFormat::kPrometheus);
}

}  // namespace
}  // namespace mailscope::exporter
