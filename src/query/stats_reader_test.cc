#include "query/stats_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace mailscope::query {
namespace {

using stats::MetricsEngine;
using stats::MetricSettings;

constexpr std::string_view kHello = "VERSION\tstats-reader-client\t2\t0\n";

// The metrics of the capture's dovecot.conf, in its order.
void AddCaptureMetrics(MetricsEngine& engine) {
  struct M {
    const char *name, *filter, *fields, *group_by, *exporter;
  } metrics[] = {
      {"imap_command", "event=imap_command_finished", "bytes_in bytes_out",
       "cmd_name tagged_reply_state", "json_http"},
      {"imap_command_tab", "event=imap_command_finished", "", "", "tab_http"},
      {"imap_command_special",
       "event=imap_command_finished AND (cmd_name=SEARCH OR cmd_name=STORE OR "
       "tagged_reply_state=BAD OR tagged_reply_state=NO)",
       "", "", "json_http"},
      {"imap_command_duration", "event=imap_command_finished", "", "duration:exponential:1:5:10",
       ""},
      {"imap_command_bytes_out", "event=imap_command_finished", "", "bytes_out:linear:0:1000:250",
       ""},
      {"auth_success", "event=auth_request_finished AND success=yes", "", "", "json_log"},
      {"auth_failure", "event=auth_request_finished AND NOT success=yes", "", "", "tab_log"},
      {"auth_client_request", "event=auth_client_request_finished", "", "mechanism", "json_http"},
      {"mail_delivery", "event=mail_delivery_finished", "message_size message_vsize", "",
       "json_http"},
      {"smtp_server_command", "event=smtp_server_command_finished", "", "cmd_name status_code",
       "none_http"},
      {"mail_user_session", "event=mail_user_session_finished", "utime stime", "service", ""},
      {"storage_mail_opened", "category=storage AND event=mail_opened", "", "", ""},
  };
  for (const M& m : metrics) {
    MetricSettings s;
    s.name = m.name;
    s.filter = m.filter;
    s.fields = m.fields;
    s.group_by = m.group_by;
    s.exporter = m.exporter;
    auto def = stats::MakeMetric(s);
    ASSERT_TRUE(def.ok()) << m.name << ": " << def.status().ToString();
    ASSERT_TRUE(engine.Add(std::move(*def), MetricsEngine::Origin::kConfig).ok());
  }
}

struct Ev {
  Event e;
  explicit Ev(std::string_view name) { e.name = InternName(name); }
  Ev& Int(std::string_view key, std::int64_t v) {
    e.Add(InternName(key), Value::Int(v));
    return *this;
  }
  Ev& Str(std::string_view key, std::string_view v) {
    e.Add(InternName(key), Value::String(v));
    return *this;
  }
};

// Events reproducing the capture's FETCH, auth and mail_delivery numbers.
void FeedCaptureEvents(MetricsEngine& engine) {
  struct {
    const char* state;
    std::int64_t duration, in, out;
  } fetches[] = {{"OK", 673, 60, 306},
                 {"OK", 704, 60, 306},
                 {"BAD", 48, 15, 82},
                 {"OK", 759, 60, 306},
                 {"OK", 1212, 60, 306}};
  for (const auto& f : fetches) {
    Ev ev("imap_command_finished");
    ev.Str("cmd_name", "FETCH").Str("tagged_reply_state", f.state).Int("duration", f.duration);
    engine.Process(ev.Int("bytes_in", f.in).Int("bytes_out", f.out).e);
  }
  for (std::int64_t d : {99, 116, 119, 126, 225, 8007551})
    engine.Process(Ev("auth_request_finished").Str("success", "yes").Int("duration", d).e);
  for (std::int64_t d : {148, 4003342})
    engine.Process(Ev("auth_request_finished").Str("success", "no").Int("duration", d).e);
  for (std::int64_t d : {1526, 1995, 2224, 2274}) {
    Ev ev("mail_delivery_finished");
    engine.Process(ev.Int("duration", d).Int("message_size", 369).Int("message_vsize", 382).e);
  }
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t p = s.find(sep, start);
    out.emplace_back(s.substr(start, p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

// The line of `dump` whose name is `name`.
std::string LineOf(const std::string& dump, std::string_view name) {
  for (const std::string& line : Split(dump, '\n'))
    if (line.substr(0, line.find('\t')) == name) return line;
  return "(no line " + std::string(name) + ")";
}

// Compares a DUMP line with a captured one: same layout and values, except
// median and %<p>, which are sketch estimates: within 1%.
void ExpectLine(const std::string& got, std::string_view want, std::vector<std::string> stats) {
  const auto g = Split(got, '\t');
  const auto w = Split(want, '\t');
  ASSERT_EQ(g.size(), w.size()) << got << "\nwant " << want;
  const std::size_t k = stats.size();
  for (std::size_t j = 0; j < w.size(); ++j) {
    std::string stat;
    if (j >= 1 && j - 1 < k) {
      stat = stats[j - 1];
    } else if (j > k) {
      const std::size_t r = (j - 1 - k) % (k + 1);
      if (r > 0) stat = stats[r - 1];
    }
    if (stat == "median" || (!stat.empty() && stat[0] == '%')) {
      const double a = std::stod(g[j]), b = std::stod(w[j]);
      EXPECT_LE(std::fabs(a - b), 0.01 * b + 1) << stat << " in " << want;
    } else {
      EXPECT_EQ(g[j], w[j]) << "column " << j << " (" << stat << ") of " << want;
    }
  }
}

class StatsReaderTest : public ::testing::Test {
 protected:
  // Feeds the handshake plus `input`; returns what the server wrote.
  std::string Talk(std::string_view input) {
    std::string out;
    conn_.Feed(std::string(kHello) + std::string(input), out);
    return out;
  }

  MetricsEngine engine_;
  int changes_ = 0;
  StatsReaderConnection conn_{
      engine_,
      {.exporter_exists = [](std::string_view n) { return n == "json_http"; },
       .metrics_changed = [this] { ++changes_; }}};
};

TEST_F(StatsReaderTest, GreetingIsTheCapturedLine) {
  EXPECT_EQ(StatsReaderGreeting(), "VERSION\tstats-reader-server\t2\t0\n");
}

TEST_F(StatsReaderTest, Handshake) {
  struct Case {
    std::string input;
    bool open;
  } cases[] = {
      {"VERSION\tstats-reader-client\t2\t0\n", true},
      {"VERSION\tstats-reader-client\t2\t7\n", true},  // minor is not compared
      {"VERSION\tstats-reader-client\t2\t0\r\n", true},
      {"DUMP\tcount\n", false},
      {"VERSION\tstats-reader-client\t3\t0\n", false},
      {"VERSION\tstats-reader-client\t+2\t0\n", false},
      {"VERSION\tstats-reader-client\t2\tx\n", false},
      {"VERSION\tstats-reader-client\t2\n", false},
      {"VERSION\tstats-reader-client\t2\t0\textra\n", false},
      {"VERSION\tstats-writer-client\t2\t0\n", false},
      {"version\tstats-reader-client\t2\t0\n", false},
      {"\n", false},
  };
  for (const Case& c : cases) {
    StatsReaderConnection conn(engine_);
    std::string out;
    EXPECT_EQ(conn.Feed(c.input + "DUMP\tcount\n", out), c.open) << c.input;
    EXPECT_EQ(conn.open(), c.open);
    EXPECT_EQ(out, c.open ? "\n" : "") << c.input;
    EXPECT_EQ(conn.close_reason().empty(), c.open) << conn.close_reason();
  }
}

TEST_F(StatsReaderTest, ClosedConnectionIgnoresInput) {
  std::string out;
  EXPECT_FALSE(conn_.Feed("VERSION\tstats-reader-client\t3\t0\n", out));
  EXPECT_FALSE(conn_.Feed(std::string(kHello) + "DUMP\n", out));
  EXPECT_EQ(out, "");
  EXPECT_EQ(conn_.pending_bytes(), 0u);
}

TEST_F(StatsReaderTest, EmptyLineAfterHandshakeCloses) {
  std::string out;
  EXPECT_FALSE(conn_.Feed(std::string(kHello) + "\nDUMP\n", out));
  EXPECT_EQ(out, "");
}

// stats-reader-raw-requests.txt: after the crash restart, no sub-metrics.
TEST_F(StatsReaderTest, DumpOfFreshMetricsIsByteIdentical) {
  AddCaptureMetrics(engine_);
  EXPECT_EQ(Talk("DUMP\tcount\tsum\n"),
            "imap_command\t0\t0\tbytes_in\t0\t0\tbytes_out\t0\t0\nimap_command_tab\t0\t0\n"
            "imap_command_special\t0\t0\nimap_command_duration\t0\t0\n"
            "imap_command_bytes_out\t0\t0\nauth_success\t0\t0\nauth_failure\t0\t0\n"
            "auth_client_request\t0\t0\nmail_delivery\t0\t0\tmessage_size\t0\t0\t"
            "message_vsize\t0\t0\nsmtp_server_command\t0\t0\nmail_user_session\t0\t0\tutime\t0\t"
            "0\tstime\t0\t0\nstorage_mail_opened\t0\t0\n\n");
}

TEST_F(StatsReaderTest, DumpMatchesTheCapturedNumbers) {
  AddCaptureMetrics(engine_);
  FeedCaptureEvents(engine_);
  // doveadm stats dump (stats-reader-wire.txt #1).
  const std::vector<std::string> stats1 = {"count", "sum",    "min",      "max",
                                           "avg",   "median", "variance", "%95"};
  const std::string dump = Talk("DUMP\tcount\tsum\tmin\tmax\tavg\tmedian\tvariance\t%95\n");
  ExpectLine(LineOf(dump, "imap_command_FETCH"),
             "imap_command_FETCH\t5\t3396\t48\t1212\t679.20\t704\t137862.16\t1212\tbytes_in\t5\t"
             "255\t15\t60\t51.00\t60\t324.00\t60\tbytes_out\t5\t1306\t82\t306\t261.20\t306\t"
             "8028.16\t306",
             stats1);
  ExpectLine(
      LineOf(dump, "imap_command_FETCH_OK"),
      "imap_command_FETCH_OK\t4\t3348\t673\t1212\t837.00\t731\t47823.50\t1212\tbytes_in\t4\t"
      "240\t60\t60\t60.00\t60\t0.00\t60\tbytes_out\t4\t1224\t306\t306\t306.00\t306\t0.00\t306",
      stats1);
  ExpectLine(LineOf(dump, "imap_command_FETCH_BAD"),
             "imap_command_FETCH_BAD\t1\t48\t48\t48\t48.00\t48\t0.00\t48\tbytes_in\t1\t15\t15\t15\t"
             "15.00\t15\t0.00\t15\tbytes_out\t1\t82\t82\t82\t82.00\t82\t0.00\t82",
             stats1);
  ExpectLine(LineOf(dump, "auth_success"),
             "auth_success\t6\t8008236\t99\t8007551\t1334706.00\t122\t8905372080484.00\t8007551",
             stats1);
  ExpectLine(LineOf(dump, "mail_delivery"),
             "mail_delivery\t4\t8019\t1526\t2274\t2004.75\t2109\t87465.69\t2274\tmessage_size\t4\t"
             "1476\t369\t369\t369.00\t369\t0.00\t369\tmessage_vsize\t4\t1528\t382\t382\t382.00\t"
             "382\t0.00\t382",
             stats1);
  // Two values: every rank is exact, so the line is byte-identical.
  EXPECT_EQ(LineOf(dump, "auth_failure"),
            "auth_failure\t2\t4003490\t148\t4003342\t2001745.00\t2001745\t4006390550409.00\t"
            "4003342");
  // The sub-metric lines follow their parents depth-first, in creation order.
  std::vector<std::string> names;
  for (const std::string& line : Split(dump, '\n'))
    names.push_back(line.substr(0, line.find('\t')));
  EXPECT_EQ(names, (std::vector<std::string>{"imap_command",
                                             "imap_command_FETCH",
                                             "imap_command_FETCH_OK",
                                             "imap_command_FETCH_BAD",
                                             "imap_command_tab",
                                             "imap_command_special",
                                             "imap_command_duration",
                                             "imap_command_duration_duration_101_1000",
                                             "imap_command_duration_duration_11_100",
                                             "imap_command_duration_duration_1001_10000",
                                             "imap_command_bytes_out",
                                             "imap_command_bytes_out_bytes_out_251_500",
                                             "imap_command_bytes_out_bytes_out_1_250",
                                             "auth_success",
                                             "auth_failure",
                                             "auth_client_request",
                                             "mail_delivery",
                                             "smtp_server_command",
                                             "mail_user_session",
                                             "storage_mail_opened",
                                             "",
                                             ""}));
  EXPECT_EQ(dump.substr(dump.size() - 2), "\n\n");

  // doveadm stats dump -f "... stddev variance %50 %95 %99 bogus" (#2).
  const std::vector<std::string> stats2 = {"count",    "sum",      "min", "max", "avg", "median",
                                           "variance", "variance", "%50", "%95", "%99", "bogus"};
  const std::string dump2 =
      Talk("DUMP\tcount\tsum\tmin\tmax\tavg\tmedian\tvariance\tvariance\t%50\t%95\t%99\tbogus\n");
  ExpectLine(
      LineOf(dump2, "imap_command_FETCH"),
      "imap_command_FETCH\t5\t3396\t48\t1212\t679.20\t704\t137862.16\t137862.16\t704\t1212\t"
      "1212\t\tbytes_in\t5\t255\t15\t60\t51.00\t60\t324.00\t324.00\t60\t60\t60\t\tbytes_out\t"
      "5\t1306\t82\t306\t261.20\t306\t8028.16\t8028.16\t306\t306\t306\t",
      stats2);
  ExpectLine(LineOf(dump2, "mail_delivery"),
             "mail_delivery\t4\t8019\t1526\t2274\t2004.75\t2109\t87465.69\t87465.69\t1995\t2274\t"
             "2274\t\tmessage_size\t4\t1476\t369\t369\t369.00\t369\t0.00\t0.00\t369\t369\t369\t\t"
             "message_vsize\t4\t1528\t382\t382\t382.00\t382\t0.00\t0.00\t382\t382\t382\t",
             stats2);
  EXPECT_EQ(LineOf(dump2, "auth_failure"),
            "auth_failure\t2\t4003490\t148\t4003342\t2001745.00\t2001745\t4006390550409.00\t"
            "4006390550409.00\t148\t4003342\t4003342\t");
}

TEST_F(StatsReaderTest, HistogramSubMetricNames) {
  AddCaptureMetrics(engine_);
  for (std::int64_t d : {5388, 353, 12}) {
    Ev ev("imap_command_finished");
    engine_.Process(ev.Int("duration", d).Int("bytes_out", d % 600).e);
  }
  const std::string dump = Talk("DUMP\tcount\n");
  std::vector<std::string> names;
  for (const std::string& line : Split(dump, '\n')) {
    if (line.starts_with("imap_command_duration") || line.starts_with("imap_command_bytes_out"))
      names.push_back(line);
  }
  // Values 5388 % 600 = 588, 353, 12.
  EXPECT_EQ(names, (std::vector<std::string>{
                       "imap_command_duration\t3",
                       "imap_command_duration_duration_1001_10000\t1",
                       "imap_command_duration_duration_101_1000\t1",
                       "imap_command_duration_duration_11_100\t1",
                       "imap_command_bytes_out\t3",
                       "imap_command_bytes_out_bytes_out_501_750\t1",
                       "imap_command_bytes_out_bytes_out_251_500\t1",
                       "imap_command_bytes_out_bytes_out_1_250\t1",
                   }));
}

TEST_F(StatsReaderTest, LineNamesEscapeTopLevelAndUnderscoreSubMetrics) {
  MetricSettings s;
  s.name = "odd name\twith tab";
  s.filter = "event=e";
  s.fields = "f\tx";
  s.group_by = "g h";
  auto def = stats::MakeMetric(s);
  ASSERT_TRUE(def.ok());
  ASSERT_TRUE(engine_.Add(std::move(*def)).ok());
  engine_.Process(Ev("e").Str("g", "a b\tc").Str("h", "x y").e);
  EXPECT_EQ(Talk("DUMP\tcount\n"),
            "odd name\001twith tab\t1\tf\001tx\t0\n"
            "odd_name_with_tab_a_b\xEF\xBF\xBD"
            "c\t1\tf\001tx\t0\n"
            "odd_name_with_tab_a_b\xEF\xBF\xBD"
            "c_x_y\t1\tf\001tx\t0\n\n");
}

TEST_F(StatsReaderTest, DumpResetEmptiesAndKeepsSubMetrics) {
  AddCaptureMetrics(engine_);
  FeedCaptureEvents(engine_);
  const std::string first = Talk("DUMP-RESET\tcount\tsum\n");
  EXPECT_EQ(LineOf(first, "imap_command_FETCH_OK"),
            "imap_command_FETCH_OK\t4\t3348\tbytes_in\t4\t240\tbytes_out\t4\t1224");
  std::string out;
  ASSERT_TRUE(conn_.Feed("DUMP\tcount\tsum\n", out));
  EXPECT_EQ(LineOf(out, "imap_command_FETCH_OK"),
            "imap_command_FETCH_OK\t0\t0\tbytes_in\t0\t0\tbytes_out\t0\t0");
  EXPECT_EQ(LineOf(out, "auth_failure"), "auth_failure\t0\t0");
}

TEST_F(StatsReaderTest, PercentStatsParseLikeStrtod) {
  MetricSettings s;
  s.name = "m";
  s.filter = "event=e";
  ASSERT_TRUE(engine_.Add(std::move(*stats::MakeMetric(s))).ok());
  engine_.Process(Ev("e").Int("duration", 10).e);
  engine_.Process(Ev("e").Int("duration", 1000).e);
  // Two values: rank 0 is 10, rank 1 is 1000. %50 is an exact boundary (n*f = 1).
  EXPECT_EQ(Talk("DUMP\t%50\t%51\t%abc\t%\t%200\t%-5\t%0x33\t% 51\t%+51\t%inf\t%nan\t%1e999\t"
                 "%5e-400\t%51xyz\tmedian\n"),
            "m\t10\t1000\t10\t10\t1000\t10\t1000\t1000\t1000\t1000\t10\t1000\t10\t1000\t505\n\n");
}

// stats-reader-raw-requests.txt and stats-reader-wire.txt exchanges.
TEST_F(StatsReaderTest, MetricsAddAndRemoveRepliesAreVerbatim) {
  AddCaptureMetrics(engine_);
  const std::string add_noop =
      "METRICS-ADD\tdyn_noop\tdynamic NOOP metric\t\tcmd_name\tevent=imap_command_finished AND "
      "cmd_name=NOOP\tjson_http\tname fields\n";
  struct Case {
    std::string setup;
    std::string input;
    std::string output;
    int changes;
  } cases[] = {
      {"",
       "METRICS-ADD\tdup\t\t\t\tevent=imap_command_finished\t\tname\n"
       "METRICS-ADD\tdup\t\t\t\tevent=imap_command_finished\t\tname\nMETRICS-REMOVE\tdup\n",
       "+\n-METRICS-ADD: Metric already exists\n+\n", 2},
      {"", add_noop, "+\n", 1},
      {add_noop, "METRICS-REMOVE\tdyn_noop\n", "+\n", 2},
      {"", "METRICS-REMOVE\tdyn_noop\n", "-metrics 'dyn_noop' not found\n", 0},
      {"",
       "METRICS-ADD\tdyn_bad\t\t\tbogus:nofunc\tevent=imap_command_finished\t\tname hostname "
       "timestamps categories fields\n",
       "-METRICS-ADD: unknown aggregation function 'nofunc' on field 'bogus'\n", 0},
      {"", "METRICS-ADD\t\t\t\t\tevent=x\t\t\n", "-METRICS-ADD: Metric name can't be empty\n", 0},
      {"", "METRICS-ADD\tnf\t\t\t\t\t\t\n",
       "-METRICS-ADD: metric nf { filter } is empty - will not match anything\n", 0},
      {"", "METRICS-ADD\tlin\t\t\tx:linear:0:10:3\tevent=x\t\t\n",
       "-METRICS-ADD: group_by 'linear' aggregate function max-min must be a multiple of step "
       "(10 is not a multiple of 3)\n",
       0},
      {"", "METRICS-ADD\timap_command\t\t\t\tevent=x\t\t\n",
       "-METRICS-ADD: Metric already exists\n", 0},
      {"", "METRICS-ADD\tbadexp\t\t\t\tevent=imap_command_finished\tnosuchexporter\tname\n",
       "-METRICS-ADD: Exporter 'nosuchexporter' does not exist.\n", 0},
      {"", "NOSUCHCMD\targ\nREOPEN\n", "", 0},
  };
  for (const Case& c : cases) {
    MetricsEngine engine;
    AddCaptureMetrics(engine);
    int changes = 0;
    StatsReaderConnection conn(
        engine, {.exporter_exists = [](std::string_view n) { return n == "json_http"; },
                 .metrics_changed = [&] { ++changes; }});
    std::string out;
    ASSERT_TRUE(conn.Feed(std::string(kHello) + c.setup, out));
    out.clear();
    EXPECT_TRUE(conn.Feed(c.input, out)) << c.input;
    EXPECT_EQ(out, c.output) << c.input;
    EXPECT_EQ(changes, c.changes) << c.input;
  }
}

TEST_F(StatsReaderTest, PipelinedAddDumpRemove) {
  AddCaptureMetrics(engine_);
  const std::string out = Talk(
      "METRICS-ADD\traw_logout\traw added\t\t\tevent=imap_command_finished AND cmd_name=LOGOUT\t\t"
      "name hostname timestamps categories fields\nDUMP\tcount\nMETRICS-REMOVE\traw_logout\n"
      "METRICS-REMOVE\traw_logout\n");
  EXPECT_TRUE(out.starts_with("+\nimap_command\t0\tbytes_in\t0\tbytes_out\t0\n")) << out;
  EXPECT_TRUE(
      out.ends_with("storage_mail_opened\t0\nraw_logout\t0\n\n+\n-metrics 'raw_logout' "
                    "not found\n"))
      << out;
  EXPECT_EQ(changes_, 2);
  EXPECT_EQ(engine_.Find("raw_logout"), nullptr);
}

TEST_F(StatsReaderTest, FilterErrorsKeepDovecotsPrefix) {
  const std::string out = Talk("METRICS-ADD\tbroken\t\t\t\tevent=(\t\tname\n");
  EXPECT_TRUE(out.starts_with("-METRICS-ADD: event filter: syntax error")) << out;
  EXPECT_TRUE(out.ends_with("\n"));
  EXPECT_EQ(changes_, 0);
}

// Metrics added at run time are bounded: past the bound METRICS-ADD gets
// an error in Dovecot's reply format and adds no name; configured metrics
// do not count, and a removal makes room again.
TEST_F(StatsReaderTest, MetricsAddPastTheBoundIsRefused) {
  MetricsEngine engine(stats::MetricsOptions{.max_dynamic_metrics = 2});
  AddCaptureMetrics(engine);
  int changes = 0;
  StatsReaderHooks hooks;
  hooks.metrics_changed = [&] { ++changes; };
  StatsReaderConnection conn(engine, hooks);
  std::string out;
  ASSERT_TRUE(conn.Feed(std::string(kHello) +
                            "METRICS-ADD\td1\t\t\t\tevent=x\t\t\n"
                            "METRICS-ADD\td2\t\t\t\tevent=x\t\t\n"
                            "METRICS-ADD\td3\t\t\t\tevent=stats_reader_bound_event\t\t\n",
                        out));
  EXPECT_EQ(out,
            "+\n+\n-METRICS-ADD: Too many metrics added at run time: 2 "
            "(stats.max_dynamic_metrics); remove one first\n");
  EXPECT_EQ(changes, 2);
  EXPECT_EQ(engine.Find("d3"), nullptr);
  EXPECT_EQ(FindName("stats_reader_bound_event"), kNoName);
  EXPECT_EQ(engine.dynamic_metric_count(), 2u);
  out.clear();
  conn.Feed("METRICS-REMOVE\td1\nMETRICS-ADD\td3\t\t\t\tevent=x\t\t\n", out);
  EXPECT_EQ(out, "+\n+\n");
  // The engine keeps the bound for every caller.
  MetricSettings d4;
  d4.name = "d4";
  d4.filter = "event=x";
  auto def = stats::MakeMetric(d4);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(engine.Add(std::move(*def)).code(), StatusCode::kResourceExhausted);
}

// A metric added at run time: at most so many fields and group_by levels,
// and the names it brings charged to the connection's budget, all or none.
TEST_F(StatsReaderTest, MetricsAddKeepsItsLimitsAndTheNameBudget) {
  MetricsEngine engine(
      stats::MetricsOptions{.dynamic_limits = {.max_fields = 2, .max_group_by = 1}});
  StatsReaderConnection conn(engine, {}, 3);
  std::string out;
  ASSERT_TRUE(conn.Feed(std::string(kHello) +
                            "METRICS-ADD\tf\t\ta b c\t\tevent=x\t\t\n"
                            "METRICS-ADD\tg\t\t\ta b\tevent=x\t\t\n"
                            "METRICS-ADD\tn\t\t\t\tevent=sr_new1 OR sr_new2=1 OR sr_new3=1 OR "
                            "category=sr_new4\t\t\n"
                            "METRICS-ADD\tk\t\tsr_new5 sr_new6\tsr_new7\tevent=sr_new8\t\t\n",
                        out));
  EXPECT_EQ(out,
            "-METRICS-ADD: Too many fields: 3, a metric added at run time may have 2 "
            "(stats.max_dynamic_metric_fields)\n"
            "-METRICS-ADD: Too many group_by levels: 2, a metric added at run time may have 1 "
            "(stats.max_dynamic_metric_group_by)\n"
            "-METRICS-ADD: event filter: no room for its 4 new names (names new to mailscope per "
            "client: at most 3, 3 left); the first past the room: 'sr_new4' at 53\n"
            "-METRICS-ADD: No room for the new field name 'sr_new7': names new to mailscope per "
            "client: at most 3, 2 left\n");
  for (const char* name :
       {"sr_new1", "sr_new2", "sr_new3", "sr_new4", "sr_new5", "sr_new6", "sr_new7"}) {
    EXPECT_EQ(FindName(name), kNoName) << name;
  }
  EXPECT_NE(FindName("sr_new8"), kNoName);  // the filter's, added before its fields
  EXPECT_EQ(engine.metrics().size(), 0u);
}

TEST_F(StatsReaderTest, TooFewArgumentsClose) {
  for (std::string input :
       {"METRICS-ADD\tshort\n", "METRICS-ADD\ta\tb\tc\td\te\tf\n", "METRICS-REMOVE\n"}) {
    StatsReaderConnection conn(engine_);
    std::string out;
    EXPECT_FALSE(conn.Feed(std::string(kHello) + input + "DUMP\n", out)) << input;
    EXPECT_EQ(out, "") << input;
  }
  // Exactly seven arguments are enough.
  std::string out;
  EXPECT_TRUE(conn_.Feed(std::string(kHello) + "METRICS-ADD\ta\t\t\t\tevent=x\t\t\n", out));
  EXPECT_EQ(out, "+\n");
}

TEST_F(StatsReaderTest, LineLimitIs1024BytesWithTheLf) {
  std::string out;
  ASSERT_TRUE(conn_.Feed(kHello, out));
  const std::string ok = "X" + std::string(1022, 'a') + "\n";  // 1024 bytes with LF
  EXPECT_TRUE(conn_.Feed(ok, out));
  // Byte by byte: held until the LF, then handled.
  for (char c : std::string("DUMP\tcount\n")) ASSERT_TRUE(conn_.Feed(std::string_view(&c, 1), out));
  EXPECT_EQ(out, "\n");
  const std::string too_long = "X" + std::string(1023, 'a') + "\n";
  EXPECT_FALSE(conn_.Feed(too_long, out));
  EXPECT_EQ(conn_.close_reason(), "line too long");

  // A full buffer without a LF closes at once.
  StatsReaderConnection conn(engine_);
  ASSERT_TRUE(conn.Feed(std::string(kHello) + std::string(1023, 'a'), out));
  EXPECT_EQ(conn.pending_bytes(), 1023u);
  EXPECT_FALSE(conn.Feed("a", out));

  // Lines before the long one are answered.
  StatsReaderConnection conn2(engine_);
  out.clear();
  EXPECT_FALSE(conn2.Feed(std::string(kHello) + "DUMP\n" + std::string(5000, 'b'), out));
  EXPECT_EQ(out, "\n");
}

}  // namespace
}  // namespace mailscope::query
