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
  RenderMetrics(engine, w);
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

stats::MetricDefinition Mailscope(std::string name, std::string filter, std::string group_by,
                                  std::string fields = "", std::string openmetrics_name = "") {
  stats::MetricSettings s;
  s.name = std::move(name);
  s.filter = std::move(filter);
  s.group_by = std::move(group_by);
  s.fields = std::move(fields);
  s.dialect = filter::Dialect::kMailscope;
  s.openmetrics_name = std::move(openmetrics_name);
  auto d = stats::MakeMetric(s);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return std::move(*d);
}

// Deliveries as Stalwart reports them: elapsed milliseconds, size in bytes.
void Delivery(stats::MetricsEngine& engine, std::string_view status, double elapsed_ms,
              std::uint64_t size) {
  Event e;
  e.source = Source::kStalwart;
  e.name = InternName("delivery.completed");
  e.Add(InternName("status"), Value::String(status));
  e.Add(InternName("elapsed"), Value::Double(elapsed_ms).WithUnit(Unit::kMilliseconds));
  e.Add(InternName("size"), Value::Uint(size).WithUnit(Unit::kBytes));
  engine.Process(e);
}

TEST(DovecotMetricsTest, MailscopeMetricsInBaseUnits) {
  stats::MetricsEngine engine;
  ASSERT_TRUE(engine
                  .Add(Mailscope("delivery_time", "event=delivery.completed",
                                 "elapsed:exponential:3:5:10", "elapsed"))
                  .ok());
  ASSERT_TRUE(engine
                  .Add(Mailscope("delivery_size", "event=delivery.completed",
                                 "size:linear:0:2048:1024", "size"))
                  .ok());
  ASSERT_TRUE(
      engine
          .Add(Mailscope("deliveries", "event=delivery.completed", "status", "", "mail_deliveries"))
          .ok());
  // A Dovecot event in a mailscope metric: its microseconds become seconds.
  ASSERT_TRUE(engine.Add(Mailscope("imap", "event=imap_command_finished", "")).ok());
  Delivery(engine, "ok", 0.5, 100);
  Delivery(engine, "ok", 20, 1500);
  Delivery(engine, "failed", 2500, 4096);
  Command(engine, "NOOP", "OK", 1500, 10);

  MetricsWriter w(MetricsFormat::kPrometheus);
  RenderMetrics(engine, w);
  EXPECT_EQ(w.Finish(),
            "# HELP mailscope_delivery_time Histogram\n"
            "# TYPE mailscope_delivery_time histogram\n"
            "mailscope_delivery_time_bucket{le=\"0.001\"} 1\n"
            "mailscope_delivery_time_bucket{le=\"0.01\"} 1\n"
            "mailscope_delivery_time_bucket{le=\"0.1\"} 2\n"
            "mailscope_delivery_time_bucket{le=\"+Inf\"} 3\n"
            "mailscope_delivery_time_sum 2.5205\n"
            "mailscope_delivery_time_count 3\n"
            "# HELP mailscope_delivery_size Histogram\n"
            "# TYPE mailscope_delivery_size histogram\n"
            "mailscope_delivery_size_bucket{le=\"0\"} 0\n"
            "mailscope_delivery_size_bucket{le=\"1024\"} 1\n"
            "mailscope_delivery_size_bucket{le=\"2048\"} 2\n"
            "mailscope_delivery_size_bucket{le=\"+Inf\"} 3\n"
            "mailscope_delivery_size_sum 5696\n"
            "mailscope_delivery_size_count 3\n"
            "# HELP mail_deliveries_total Total number of all events of this kind\n"
            "# TYPE mail_deliveries_total counter\n"
            "mail_deliveries_total 3\n"
            "mail_deliveries_total{status=\"ok\"} 2\n"
            "mail_deliveries_total{status=\"failed\"} 1\n"
            "# HELP mail_deliveries_duration_seconds_total Total duration of all events of this "
            "kind\n"
            "# TYPE mail_deliveries_duration_seconds_total counter\n"
            "mail_deliveries_duration_seconds_total 0\n"
            "mail_deliveries_duration_seconds_total{status=\"ok\"} 0\n"
            "mail_deliveries_duration_seconds_total{status=\"failed\"} 0\n"
            "# HELP mailscope_imap_total Total number of all events of this kind\n"
            "# TYPE mailscope_imap_total counter\n"
            "mailscope_imap_total 1\n"
            "# HELP mailscope_imap_duration_seconds_total Total duration of all events of this "
            "kind\n"
            "# TYPE mailscope_imap_duration_seconds_total counter\n"
            "mailscope_imap_duration_seconds_total 0.0015\n");
}

TEST(DovecotMetricsTest, CamelCaseFieldsBecomeSnakeCaseLabels) {
  stats::MetricSettings s;
  s.name = "auth_failures";
  s.filter = "event=\"auth.failed\"";
  s.group_by = "remoteIp";
  s.dialect = filter::Dialect::kMailscope;
  auto d = stats::MakeMetric(s);
  ASSERT_TRUE(d.ok()) << d.status().message();
  stats::MetricsEngine engine;
  ASSERT_TRUE(engine.Add(std::move(*d)).ok());
  Event e;
  e.name = InternName("auth.failed");
  e.Add(InternName("remoteIp"), Value::String("192.0.2.7"));
  engine.Process(e);
  MetricsWriter w(MetricsFormat::kPrometheus);
  RenderMetrics(engine, w);
  const std::string text = w.Finish();
  EXPECT_NE(text.find("mailscope_auth_failures_total{remote_ip=\"192.0.2.7\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(DovecotMetricsTest, AHistogramOfUnknownUnitWaitsForItsFirstValue) {
  stats::MetricSettings s;
  s.name = "session_length";
  s.filter = "event=\"smtp.connection-end\"";
  s.group_by = "elapsed:exponential:3:7:10";
  s.dialect = filter::Dialect::kMailscope;
  auto d = stats::MakeMetric(s);
  ASSERT_TRUE(d.ok()) << d.status().message();
  stats::MetricsEngine engine;
  ASSERT_TRUE(engine.Add(std::move(*d)).ok());
  auto render = [&] {
    MetricsWriter w(MetricsFormat::kOpenMetrics);
    RenderMetrics(engine, w);
    return w.Finish();
  };
  EXPECT_EQ(render().find("mailscope_session_length"), std::string::npos)
      << "no `le` in plain numbers that the first value would turn into seconds";
  Event e;
  e.name = InternName("smtp.connection-end");
  e.Add(InternName("elapsed"), Value::Uint(2140).WithUnit(Unit::kMilliseconds));
  engine.Process(e);
  const std::string text = render();
  EXPECT_NE(text.find("mailscope_session_length_bucket{le=\"10\"} 1\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace mailscope::exporter

namespace mailscope::exporter {
namespace {

// openmetrics_levels = "last": the innermost level's series only, so that
// sum() over the family is the number of events.
TEST(DovecotMetricsTest, LastLevelOnly) {
  stats::MetricSettings s;
  s.name = "imap_cmd";
  s.filter = "event=imap_command_finished";
  s.group_by = "cmd_name tagged_reply_state";
  s.openmetrics_levels = "last";
  auto d = stats::MakeMetric(s);
  ASSERT_TRUE(d.ok()) << d.status().message();
  stats::MetricsEngine engine;
  ASSERT_TRUE(engine.Add(std::move(*d)).ok());
  Command(engine, "SELECT", "OK", 5, 300);
  Command(engine, "SELECT", "NO", 1500, 20);
  Command(engine, "NOOP", "OK", 50, 2000);
  MetricsWriter w(MetricsFormat::kPrometheus);
  RenderMetrics(engine, w);
  const std::string text = w.Finish();
  EXPECT_NE(text.find("dovecot_imap_cmd_total{cmd_name=\"SELECT\",tagged_reply_state=\"OK\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dovecot_imap_cmd_total{cmd_name=\"NOOP\",tagged_reply_state=\"OK\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(text.find("dovecot_imap_cmd_total 3\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("dovecot_imap_cmd_total{cmd_name=\"SELECT\"} "), std::string::npos) << text;

  s.openmetrics_levels = "some";
  EXPECT_FALSE(stats::MakeMetric(s).ok());
}

}  // namespace
}  // namespace mailscope::exporter
