#include "export/exporter_settings.h"

#include <gtest/gtest.h>

#include <vector>

namespace mailscope::exporter {
namespace {

using std::chrono::milliseconds;

ExporterSettingsText Text(std::string format, std::string format_args, std::string transport,
                          std::string transport_args = "", std::string timeout = "") {
  return {"exp",
          std::move(format),
          std::move(format_args),
          std::move(transport),
          std::move(transport_args),
          std::move(timeout)};
}

// The exporters of the capture's dovecot.conf.
TEST(ExporterSettingsTest, ParsesTheCapturedConfig) {
  auto json_http = ParseExporterSettings(
      Text("json", "time-rfc3339", "http-post", "http://127.0.0.1:19911/json", "2 secs"));
  ASSERT_TRUE(json_http.ok()) << json_http.status().ToString();
  EXPECT_EQ(json_http->format, EventFormat::kJson);
  EXPECT_EQ(json_http->time_format, TimeFormat::kRfc3339);
  EXPECT_EQ(json_http->transport, ExporterTransport::kHttpPost);
  EXPECT_EQ(json_http->transport_timeout, milliseconds(2000));
  EXPECT_EQ(json_http->url.host, "127.0.0.1");
  EXPECT_EQ(json_http->url.port, 19911);
  EXPECT_EQ(json_http->url.target, "/json");
  EXPECT_EQ(json_http->url.host_header, "127.0.0.1:19911");
  EXPECT_EQ(json_http->mime_type(), "application/json");
  EXPECT_EQ(json_http->max_field_bytes, 0u);

  auto tab_log = ParseExporterSettings(Text("tab-text", "time-rfc3339", "log"));
  ASSERT_TRUE(tab_log.ok());
  EXPECT_EQ(tab_log->transport, ExporterTransport::kLog);
  EXPECT_EQ(tab_log->transport_timeout, milliseconds(250));
  EXPECT_EQ(tab_log->max_field_bytes, kLogMaxFieldBytes);
  EXPECT_EQ(tab_log->mime_type(), "text/plain");

  auto none_http =
      ParseExporterSettings(Text("none", "", "http-post", "http://127.0.0.1:19911/none"));
  ASSERT_TRUE(none_http.ok());
  EXPECT_EQ(none_http->mime_type(), "application/octet-stream");
}

TEST(ExporterSettingsTest, DovecotsValidationErrors) {
  struct Case {
    ExporterSettingsText text;
    std::string_view error;
  };
  ExporterSettingsText unnamed = Text("json", "time-unix", "drop");
  unnamed.name = "";
  const Case cases[] = {
      {unnamed, "Exporter name can't be empty"},
      {Text("", "", "drop"), "Exporter format name can't be empty"},
      {Text("xml", "", "drop"), "Unknown exporter format 'xml'"},
      {Text("json", "time-unix", ""), "Exporter transport name can't be empty"},
      {Text("json", "time-unix", "kafka"), "Unknown transport type 'kafka'"},
      // The format is checked before the transport, the transport before the args.
      {Text("xml", "", "kafka"), "Unknown exporter format 'xml'"},
      {Text("json", "time-iso", "kafka"), "Unknown transport type 'kafka'"},
      {Text("json", "time-iso", "drop"), "Unknown exporter format arg: time-iso"},
      {Text("json", "time-unix time-rfc3339", "drop"),
       "Exporter 'exp' specifies multiple time format args"},
      {Text("json", "", "drop"), "json exporter format requires a time-* argument"},
      {Text("tab-text", "  ", "log"), "tab-text exporter format requires a time-* argument"},
      {Text("json", "time-unix", "drop", "", "soon"),
       "transport_timeout: Invalid time interval: soon"},
      {Text("json", "time-unix", "http-post", "https://example.com/x"),
       "https is not supported ('https://example.com/x'): the http-post transport speaks plain "
       "http:// only"},
      {Text("json", "time-unix", "http-post", ""),
       "Invalid URL '': expected http://host[:port]/path"},
      {Text("json", "time-unix", "file", ""),
       "transport_args must be a path for the file transport"},
      {Text("json", "time-unix", "unix", " /x"),
       "transport_args must be a path for the unix transport"},
  };
  for (const Case& c : cases) {
    auto r = ParseExporterSettings(c.text);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), c.error);
  }
}

TEST(ExporterSettingsTest, AcceptsWhatDovecotAccepts) {
  // The same time format twice, extra spaces, none without args.
  auto a = ParseExporterSettings(Text("json", " time-unix  time-unix ", "drop"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->time_format, TimeFormat::kUnix);
  auto b = ParseExporterSettings(Text("none", "time-rfc3339", "log"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->time_format, TimeFormat::kRfc3339);
  // file and unix (Dovecot 2.4): the path is transport_args up to a space.
  auto f = ParseExporterSettings(Text("json", "time-unix", "file", "/var/log/events.json extra"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->transport, ExporterTransport::kFile);
  EXPECT_EQ(f->path, "/var/log/events.json");
  auto u = ParseExporterSettings(Text("tab-text", "time-unix", "unix", "/run/ev.sock", "1s"));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->transport, ExporterTransport::kUnix);
  EXPECT_EQ(u->path, "/run/ev.sock");
  EXPECT_EQ(u->transport_timeout, milliseconds(1000));
  EXPECT_EQ(TransportName(u->transport), "unix");
  EXPECT_EQ(FormatName(u->format), "tab-text");
}

TEST(ExporterSettingsTest, DovecotDurations) {
  struct Case {
    std::string_view text;
    long long ms;  // -1: an error
  };
  const Case cases[] = {
      {"250", 250},
      {"0", 0},
      {"250ms", 250},
      {"250 msecs", 250},
      {"3 milliseconds", 3},
      {"2 secs", 2000},
      {"2s", 2000},
      {"2 SEC", 2000},
      {"1 second", 1000},
      {"1m", 60000},
      {"1 min", 60000},
      {"2 minutes", 120000},
      {"1h", 3600000},
      {"1 day", 86400000},
      {"1w", 604800000},
      {"4294967295", 4294967295LL},
      {"4294967296", -1},
      {"50 days", -1},
      {"99999999999999999999999", -1},
      {"", -1},
      {"s", -1},
      {"-1s", -1},
      {"2 secss", -1},
      {"2 x", -1},
      {"2 secs ", -1},
      {" 2", -1},
  };
  for (const Case& c : cases) {
    auto r = ParseDovecotMillis(c.text);
    if (c.ms < 0) {
      EXPECT_FALSE(r.ok()) << c.text;
    } else {
      ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().ToString();
      EXPECT_EQ(r->count(), c.ms) << c.text;
    }
  }
  EXPECT_EQ(ParseDovecotMillis("50 days").status().message(),
            "Time interval is too large: 50 days");
  EXPECT_EQ(ParseDovecotMillis("2 x").status().message(), "Invalid time interval: 2 x");
}

TEST(ExporterSettingsTest, HttpUrls) {
  struct Case {
    std::string_view url;
    bool ok;
    std::string_view host;
    int port;
    std::string_view target;
    std::string_view host_header;
  };
  const Case cases[] = {
      {"http://127.0.0.1:19911/json", true, "127.0.0.1", 19911, "/json", "127.0.0.1:19911"},
      {"http://collector.example/", true, "collector.example", 80, "/", "collector.example"},
      {"HTTP://Example.com", true, "Example.com", 80, "/", "Example.com"},
      {"http://h/p?q=1#frag", true, "h", 80, "/p?q=1", "h"},
      {"http://h?q", true, "h", 80, "/?q", "h"},
      {"http://[::1]:8080/e", true, "::1", 8080, "/e", "[::1]:8080"},
      {"http://[::1]/e", true, "::1", 80, "/e", "[::1]"},
      {"https://h/", false, "", 0, "", ""},
      {"ftp://h/", false, "", 0, "", ""},
      {"http://", false, "", 0, "", ""},
      {"http://:80/", false, "", 0, "", ""},
      {"http://h:/", false, "", 0, "", ""},
      {"http://h:0/", false, "", 0, "", ""},
      {"http://h:65536/", false, "", 0, "", ""},
      {"http://h:8x/", false, "", 0, "", ""},
      {"http://u:p@h/", false, "", 0, "", ""},
      {"http://[::1/", false, "", 0, "", ""},
      {"http://[::1]x/", false, "", 0, "", ""},
      {"http://h/a b", false, "", 0, "", ""},
      {"/json", false, "", 0, "", ""},
  };
  for (const Case& c : cases) {
    auto r = ParseHttpUrl(c.url);
    ASSERT_EQ(r.ok(), c.ok) << c.url << ": " << r.status().ToString();
    if (!c.ok) continue;
    EXPECT_EQ(r->host, c.host) << c.url;
    EXPECT_EQ(r->port, c.port) << c.url;
    EXPECT_EQ(r->target, c.target) << c.url;
    EXPECT_EQ(r->host_header, c.host_header) << c.url;
  }
}

TEST(ExporterSettingsTest, ExporterInclude) {
  auto all = ParseExporterInclude("name hostname timestamps categories fields");
  EXPECT_EQ(all.include, ExporterInclude());
  EXPECT_TRUE(all.unknown.empty());
  auto some = ParseExporterInclude("  name timestamp  fields ");
  ExporterInclude want = ExporterInclude::None();
  want.name = want.fields = true;
  EXPECT_EQ(some.include, want);
  EXPECT_EQ(some.unknown, std::vector<std::string>{"timestamp"});
  EXPECT_TRUE(ParseExporterInclude("").include.none());
  const std::vector<std::string> words = {"categories", "bogus"};
  auto split = ParseExporterInclude(words);
  EXPECT_TRUE(split.include.categories);
  EXPECT_FALSE(split.include.name);
  EXPECT_EQ(split.unknown, std::vector<std::string>{"bogus"});
}

TEST(ExporterSettingsTest, MetricMustNameAnExistingExporter) {
  std::vector<ExporterSettings> exporters(1);
  exporters[0].name = "json_http";
  EXPECT_TRUE(CheckMetricExporter("m", "", exporters).ok());
  EXPECT_TRUE(CheckMetricExporter("m", "json_http", exporters).ok());
  EXPECT_EQ(CheckMetricExporter("badexp", "nosuchexporter", exporters).message(),
            "metric badexp refers to non-existent exporter 'nosuchexporter'");
}

}  // namespace
}  // namespace mailscope::exporter
