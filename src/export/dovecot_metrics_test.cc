#include "export/dovecot_metrics.h"

#include <gtest/gtest.h>

namespace mailscope::exporter {
namespace {

stats::MetricDefinition Metric(std::string name, std::string filter, std::string group_by,
                               std::string description = "", std::string fields = "") {
  stats::MetricSettings s;
  s.name = std::move(name);
  s.filter = std::move(filter);
  s.group_by = std::move(group_by);
  s.description = std::move(description);
  s.fields = std::move(fields);
  auto d = stats::MakeMetric(s);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return std::move(*d);
}

void Command(stats::MetricsEngine& engine, std::string_view cmd, std::string_view state,
             std::int64_t duration_us, std::int64_t bytes_out) {
  Event e;
  e.source = Source::kDovecot;
  e.name = InternName("imap_command_finished");
  e.Add(InternName("cmd_name"), Value::String(cmd));
  e.Add(InternName("tagged_reply_state"), Value::String(state));
  e.Add(InternName("duration"), Value::Int(duration_us));
  e.Add(InternName("bytes_out"), Value::Int(bytes_out));
  engine.Process(e);
}

TEST(DovecotMetricsTest, CountersWithGroupByAndHistograms) {
  stats::MetricsEngine engine;
  ASSERT_TRUE(engine
                  .Add(Metric("imap_cmd", "event=imap_command_finished",
                              "cmd_name tagged_reply_state", "IMAP commands"))
                  .ok());
  ASSERT_TRUE(
      engine.Add(Metric("imap_dur", "event=imap_command_finished", "duration:exponential:1:3:10"))
          .ok());
  ASSERT_TRUE(engine
                  .Add(Metric("imap_out", "event=imap_command_finished",
                              "bytes_out:linear:0:1000:500", "", "bytes_out"))
                  .ok());
  ASSERT_TRUE(engine.Add(Metric("plain", "event=nothing_matches", "")).ok());
  Command(engine, "SELECT", "OK", 5, 300);
  Command(engine, "SELECT", "NO", 1500, 20);
  Command(engine, "NOOP", "OK", 50, 2000);

  MetricsWriter w(MetricsFormat::kPrometheus);
  RenderDovecotMetrics(engine, w);
  EXPECT_EQ(
      w.Finish(),
      "# HELP dovecot_imap_cmd_total Total number of all events of this kind of IMAP commands\n"
      "# TYPE dovecot_imap_cmd_total counter\n"
      "dovecot_imap_cmd_total 3\n"
      "dovecot_imap_cmd_total{cmd_name=\"SELECT\"} 2\n"
      "dovecot_imap_cmd_total{cmd_name=\"SELECT\",tagged_reply_state=\"OK\"} 1\n"
      "dovecot_imap_cmd_total{cmd_name=\"SELECT\",tagged_reply_state=\"NO\"} 1\n"
      "dovecot_imap_cmd_total{cmd_name=\"NOOP\"} 1\n"
      "dovecot_imap_cmd_total{cmd_name=\"NOOP\",tagged_reply_state=\"OK\"} 1\n"
      "# HELP dovecot_imap_cmd_duration_seconds_total Total duration of all events of this kind of "
      "IMAP "
      "commands\n"
      "# TYPE dovecot_imap_cmd_duration_seconds_total counter\n"
      "dovecot_imap_cmd_duration_seconds_total 0.001555\n"
      "dovecot_imap_cmd_duration_seconds_total{cmd_name=\"SELECT\"} 0.001505\n"
      "dovecot_imap_cmd_duration_seconds_total{cmd_name=\"SELECT\",tagged_reply_state=\"OK\"} "
      "5e-06\n"
      "dovecot_imap_cmd_duration_seconds_total{cmd_name=\"SELECT\",tagged_reply_state=\"NO\"} "
      "0.0015\n"
      "dovecot_imap_cmd_duration_seconds_total{cmd_name=\"NOOP\"} 5e-05\n"
      "dovecot_imap_cmd_duration_seconds_total{cmd_name=\"NOOP\",tagged_reply_state=\"OK\"} 5e-05\n"
      "# HELP dovecot_imap_dur Histogram\n"
      "# TYPE dovecot_imap_dur histogram\n"
      "dovecot_imap_dur_bucket{le=\"1e-05\"} 1\n"
      "dovecot_imap_dur_bucket{le=\"0.0001\"} 2\n"
      "dovecot_imap_dur_bucket{le=\"0.001\"} 2\n"
      "dovecot_imap_dur_bucket{le=\"+Inf\"} 3\n"
      "dovecot_imap_dur_sum 0.001555\n"
      "dovecot_imap_dur_count 3\n"
      "# HELP dovecot_imap_out Histogram\n"
      "# TYPE dovecot_imap_out histogram\n"
      "dovecot_imap_out_bucket{le=\"0\"} 0\n"
      "dovecot_imap_out_bucket{le=\"500\"} 2\n"
      "dovecot_imap_out_bucket{le=\"1000\"} 2\n"
      "dovecot_imap_out_bucket{le=\"+Inf\"} 3\n"
      "dovecot_imap_out_sum 2320\n"
      "dovecot_imap_out_count 3\n"
      "# HELP dovecot_plain_total Total number of all events of this kind\n"
      "# TYPE dovecot_plain_total counter\n"
      "dovecot_plain_total 0\n"
      "# HELP dovecot_plain_duration_seconds_total Total duration of all events of this kind\n"
      "# TYPE dovecot_plain_duration_seconds_total counter\n"
      "dovecot_plain_duration_seconds_total 0\n");
}

}  // namespace
}  // namespace mailscope::exporter
