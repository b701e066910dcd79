#include "serve/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mailscope::serve {
namespace {

using namespace std::chrono_literals;

TEST(ConfigTest, DefaultsMatchDovecot) {
  auto c = ParseConfig("", "empty.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->old_stats_memory_limit, 16u << 20);
  EXPECT_EQ(c->old_stats_command_min_time, 60s);
  EXPECT_EQ(c->old_stats_session_min_time, 15min);
  EXPECT_EQ(c->old_stats_user_min_time, 1h);
  EXPECT_EQ(c->old_stats_domain_min_time, 12h);
  EXPECT_EQ(c->old_stats_ip_min_time, 12h);
  EXPECT_EQ(c->old_stats_carbon_interval, 30s);
}

// Nothing is writable by other users unless configured: the FIFOs and
// stats-writer let the group write, the other sockets only their owner.
TEST(ConfigTest, ListenerDefaultsAreOwnerAndGroupOnly) {
  auto c = ParseConfig("", "empty.toml");
  ASSERT_TRUE(c.ok());
  const ListenerSettings& l = c->listeners;
  EXPECT_EQ(l.old_stats_mail.mode, 0660u);
  EXPECT_EQ(l.old_stats_user.mode, 0660u);
  EXPECT_EQ(l.stats_writer.mode, 0660u);
  EXPECT_EQ(l.old_stats.mode, 0600u);
  EXPECT_EQ(l.stats_reader.mode, 0600u);
  EXPECT_EQ(l.tail.mode, 0600u);
  for (std::string_view name : kListenerNames) {
    const ListenerConfig* p = l.Find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->mode & 0007, 0u) << name;
    EXPECT_EQ(p->user, "") << name;
    EXPECT_EQ(p->group, "") << name;
  }
  EXPECT_EQ(l.Find("stats-writer"), nullptr);
}

// Each socket and FIFO has its own settings; stats_writer no longer
// follows the FIFOs.
TEST(ConfigTest, EachListenerHasItsOwnSettings) {
  auto c = ParseConfig(R"(
[listeners.old_stats_mail]
group = "vmail"
[listeners.old_stats_user]
user = "dovecot"
mode = "0600"
[listeners.stats_writer]
group = "dovecot"
mode = 0o660
[listeners.stats_reader]
mode = "0640"
group = "adm"
)",
                       "l.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const ListenerSettings& l = c->listeners;
  EXPECT_EQ(l.old_stats_mail.group, "vmail");
  EXPECT_EQ(l.old_stats_mail.mode, 0660u);
  EXPECT_EQ(l.old_stats_user.user, "dovecot");
  EXPECT_EQ(l.old_stats_user.group, "");
  EXPECT_EQ(l.old_stats_user.mode, 0600u);
  EXPECT_EQ(l.stats_writer.group, "dovecot");
  EXPECT_EQ(l.stats_reader.mode, 0640u);
  EXPECT_EQ(l.stats_reader.group, "adm");
  EXPECT_EQ(l.old_stats.mode, 0600u);
  EXPECT_EQ(l.tail.mode, 0600u);
}

TEST(ConfigTest, UnknownListenersAndBadModesAreErrors) {
  auto c = ParseConfig(
      "[listeners.stats_writter]\nmode = \"0660\"\n[listeners.tail]\nmode = \"999\"\n"
      "[listeners.old_stats]\nowner = \"root\"\n",
      "l.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("l.toml:1: listeners.stats_writter: unknown listener; did you mean "
                   "[listeners.stats_writer]?"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("l.toml:4: listeners.tail.mode:"), std::string::npos) << m;
  EXPECT_NE(m.find("l.toml:6: listeners.old_stats.owner: unknown setting"), std::string::npos) << m;
}

// The [old_stats] keys that set the FIFOs and sockets together are gone; an
// old configuration is told what replaced them.
TEST(ConfigTest, ReplacedPermissionKeysNameTheirReplacement) {
  auto c = ParseConfig(
      "[old_stats]\nfifo_mode = \"0666\"\nfifo_group = \"vmail\"\nsocket_mode = \"0600\"\n",
      "old.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("old.toml:2: old_stats.fifo_mode: no longer a setting; replaced by "
                   "[listeners.old_stats_mail] and [listeners.old_stats_user] mode"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("old.toml:3: old_stats.fifo_group: no longer a setting; replaced by "
                   "[listeners.old_stats_mail] and [listeners.old_stats_user] group"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("old.toml:4: old_stats.socket_mode: no longer a setting; replaced by "
                   "[listeners.old_stats] mode"),
            std::string::npos)
      << m;
  std::vector<std::string> keys;
  for (const Setting& s : Settings()) keys.push_back(s.key);
  EXPECT_EQ(std::find(keys.begin(), keys.end(), "old_stats.fifo_mode"), keys.end());
}

TEST(ConfigTest, ParsesEverySetting) {
  auto c = ParseConfig(R"(
[serve]
run_dir = "/tmp/r"
http = "127.0.0.1:0"
log_level = "debug"
max_new_names_per_client = 62500
[old_stats]
memory_limit = "64 M"
command_min_time = "2 mins"
session_min_time = 30
user_min_time = "1 hour"
domain_min_time = "1d"
ip_min_time = "90 secs"
carbon_server = "127.0.0.1:2003"
carbon_name = "mx1"
carbon_interval = "5s"
tcp = "127.0.0.1:24242"
[stats]
max_dynamic_metrics = 5
max_dynamic_metric_fields = 6
max_dynamic_metric_group_by = 7
)",
                       "all.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->run_dir, "/tmp/r");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->max_new_names_per_client, 62500u);
  EXPECT_EQ(c->stats_max_dynamic_metrics, 5u);
  EXPECT_EQ(c->stats_max_dynamic_metric_fields, 6u);
  EXPECT_EQ(c->stats_max_dynamic_metric_group_by, 7u);
  EXPECT_EQ(c->old_stats_memory_limit, 64u << 20);
  EXPECT_EQ(c->old_stats_command_min_time, 120s);
  EXPECT_EQ(c->old_stats_session_min_time, 30s);
  EXPECT_EQ(c->old_stats_domain_min_time, 24h);
  EXPECT_EQ(c->old_stats_ip_min_time, 90s);
  EXPECT_EQ(c->old_stats_carbon_interval, 5s);
}

TEST(ConfigTest, ErrorsNameFileLineAndKey) {
  auto c =
      ParseConfig("[old_stats]\nmemory_limit = \"lots\"\n\nuser_min_tme = \"1h\"\n", "bad.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("bad.toml:2: old_stats.memory_limit: expected a size"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:4: old_stats.user_min_tme: unknown setting; did you mean "
                   "old_stats.user_min_time?"),
            std::string::npos)
      << m;
}

TEST(ConfigTest, RejectsBadValues) {
  for (const char* text : {
           "[serve]\nhttp = \"nowhere\"\n",
           "[serve]\nlog_level = \"loud\"\n",
           "[old_stats]\ncarbon_interval = \"0s\"\n",
           "[old_stats]\ncarbon_name = \"a.b\"\n",
           "[listeners.old_stats_mail]\nmode = \"999\"\n",
           "[listeners.old_stats_mail]\nmode = \"0660\"\nfifo_mode = \"0660\"\n",
           "[old_stats]\nmemory_limit = 0\n",
           "[serve]\nmax_new_names_per_client = 0\n",
           "[serve]\nmax_new_names_per_client = 62501\n",
           "[old_stats]\ncommand_min_time = \"5 fortnights\"\n",
           "memory_limit = 5\n",
           "[old_stats\n",
       }) {
    EXPECT_FALSE(ParseConfig(text, "x.toml").ok()) << text;
  }
}

TEST(ConfigTest, SizesAndDurations) {
  EXPECT_EQ(ParseSize("16M"), 16u << 20);
  EXPECT_EQ(ParseSize("16 m"), 16u << 20);
  EXPECT_EQ(ParseSize("512k"), 512u << 10);
  EXPECT_EQ(ParseSize("100"), 100u);
  EXPECT_FALSE(ParseSize("M"));
  EXPECT_FALSE(ParseSize("99999999999999999999G"));
  EXPECT_EQ(ParseDuration("1 min"), 60s);
  EXPECT_EQ(ParseDuration("12 hours"), 12h);
  EXPECT_EQ(ParseDuration("30 secs"), 30s);
  EXPECT_EQ(ParseDuration("2w"), std::chrono::seconds(14 * 86400));
  EXPECT_FALSE(ParseDuration("soon"));
}

TEST(ConfigTest, EventControlSettings) {
  auto c = ParseConfig(R"(
[events]
disabled = ["exim:msg:*", "stalwart:auth.failed"]
levels = { "stalwart:auth.failed" = "warn" }
[outputs.metrics]
level = "debug"
[outputs.tail]
level = "error"
disabled = ["exim:msg:delivery"]
[outputs.exporters]
disabled = ["exim:msg:*"]
)",
                       "events.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->events.disabled, (std::vector<std::string>{"exim:msg:*", "stalwart:auth.failed"}));
  ASSERT_EQ(c->events.levels.size(), 1u);
  EXPECT_EQ(c->events.levels[0].second, Level::kWarn);
  EXPECT_EQ(c->events.outputs.at("metrics").level, Level::kDebug);
  EXPECT_EQ(c->events.outputs.at("tail").disabled, (std::vector<std::string>{"exim:msg:delivery"}));
  // No level: the output's default applies when the control is built.
  EXPECT_FALSE(c->events.outputs.at("exporters").level.has_value());
  EXPECT_FALSE(c->events.outputs.contains("old_stats"));
}

TEST(ConfigTest, OutputsAreAClosedSet) {
  auto c = ParseConfig("[outputs.metric]\nlevel = \"info\"\n[outputs.log]\nlevel = \"warn\"\n",
                       "outputs.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  // In file order, though "log" sorts first.
  EXPECT_LT(m.find("outputs.toml:1:"), m.find("outputs.toml:3:")) << m;
  EXPECT_NE(m.find("outputs.toml:3: outputs.log: unknown output; the outputs are old_stats, "
                   "metrics, tail, exporters"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("outputs.toml:1: outputs.metric: unknown output; did you mean "
                   "[outputs.metrics]? The outputs are"),
            std::string::npos)
      << m;
}

TEST(ConfigTest, UnknownEventsNameTheClosestKnownOnes) {
  auto c = ParseConfig(
      "[events]\ndisabled = [\n  \"exim:msg:delivery\",\n  \"stalwart:auth.faild\",\n]\n"
      "[outputs.tail]\nlevel = \"loud\"\nsilent = true\n",
      "bad-events.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(
      m.find("bad-events.toml:4: events.disabled: unknown event \"stalwart:auth.faild\"; closest: "
             "stalwart:auth.failed"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("bad-events.toml:7: outputs.tail.level: expected one of"), std::string::npos)
      << m;
  EXPECT_NE(m.find("bad-events.toml:8: outputs.tail.silent: unknown setting; [outputs.tail] takes "
                   "level, disabled"),
            std::string::npos)
      << m;
}

TEST(ConfigTest, UnknownTablesAndKeysSuggestTheClosest) {
  auto c = ParseConfig(
      "[old_stat]\nmemory_limit = \"1M\"\n"  // 1
      "[output.tail]\nlevel = \"warn\"\n"    // 3
      "[serve]\nmemory_limit = \"1M\"\n"     // 5
      "[metrics.a]\nfilter = \"event=x\"\ngroupby = \"x\"\n",
      "t.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("t.toml:1: old_stat: unknown table; did you mean [old_stats]?"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("t.toml:3: output: unknown table; did you mean [outputs.NAME]?"),
            std::string::npos)
      << m;
  // Within a block, only that block's keys are suggested.
  EXPECT_NE(m.find("t.toml:6: serve.memory_limit: unknown setting; [serve] takes run_dir, "
                   "data_dir, http, log_level"),
            std::string::npos)
      << m;
  EXPECT_NE(
      m.find("t.toml:9: metrics.a.groupby: unknown setting; did you mean metrics.a.group_by?"),
      std::string::npos)
      << m;
}

TEST(ConfigTest, KeysOutsideTablesNameTheirTable) {
  auto c = ParseConfig("memory_limit = \"1M\"\ncolour = 1\nold_stats = 5\n", "t.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("t.toml:1: memory_limit: unknown setting; did you mean old_stats.memory_limit?"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("t.toml:2: colour: unknown setting (settings live in tables such as "
                   "[old_stats])"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("t.toml:3: old_stats: expected a table [old_stats]"), std::string::npos) << m;
}

// Every block kind's keys are documented under the kind's path.
TEST(ConfigMetricsTest, ShippedEximMetricsJoinWhenAskedAndYieldToTheConfiguration) {
  auto off = ParseConfig("", "empty.toml");
  ASSERT_TRUE(off.ok()) << off.status().message();
  EXPECT_TRUE(off->metrics.empty());
  auto on = ParseConfig(R"([sources.exim]
shipped_metrics = true

[metrics.exim_deliveries]
filter = 'source=exim AND event="msg:delivery" AND domain=example.org'
)",
                        "m.toml");
  ASSERT_TRUE(on.ok()) << on.status().message();
  std::vector<std::string> names;
  for (const MetricConfig& m : on->metrics) names.push_back(m.settings.name);
  EXPECT_EQ(names.size(), 10u);
  EXPECT_EQ(names.front(), "exim_deliveries");
  EXPECT_EQ(on->metrics.front().where, "m.toml:4");  // the configuration's own
  EXPECT_NE(std::find(names.begin(), names.end(), "exim_verdicts"), names.end());
  for (const MetricConfig& m : on->metrics) {
    if (m.settings.name != "exim_deliveries") {
      EXPECT_TRUE(m.where.starts_with("metrics.exim.toml:")) << m.where;
    }
  }
  auto bad = ParseConfig("[sources.exim]\nshipped_metrics = 1\n", "b.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "b.toml:2: sources.exim.shipped_metrics: expected true or false");
}

TEST(ConfigTest, VerdictTimeoutTakesMillisecondsAndSeconds) {
  auto parse = [](std::string_view value) {
    return ParseConfig("[sources.exim]\nverdict_timeout = " + std::string(value) + "\n", "v.toml");
  };
  EXPECT_EQ(ParseConfig("", "v.toml")->exim_verdict_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(parse("\"250 msecs\"")->exim_verdict_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(parse("\"100ms\"")->exim_verdict_timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(parse("\"2 secs\"")->exim_verdict_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(parse("0")->exim_verdict_timeout, std::chrono::milliseconds(0));
  EXPECT_EQ(parse("750")->exim_verdict_timeout, std::chrono::milliseconds(750));
  auto bad = parse("\"soon\"");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "v.toml:2: sources.exim.verdict_timeout: expected a duration such as \"500 msecs\" or "
            "\"2 secs\"");
}

TEST(ConfigTest, RulesAreReadInFileOrderAndCheckedWithTheirLine) {
  auto c = ParseConfig(R"([[rules]]
name = "no-doc-net"
when = 'event="tcp:connect" AND host_address=192.0.2.*'
verdict = "refused by mailscope"

[[rules]]
name = "close"
when = 'event="smtp:connect"'
verdict = "closed by mailscope"
)",
                       "r.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->rules.size(), 2u);
  EXPECT_EQ(c->rules[0].rule.name, "no-doc-net");
  EXPECT_EQ(c->rules[0].rule.verdict, "refused by mailscope");
  EXPECT_EQ(c->rules[1].where, "r.toml:6");
  auto bad = ParseConfig(R"([[rules]]
name = "a"
when = 'event=('
verdict = "x"
[[rules]]
name = "b"
when = 'event=x'
verdict = "x"
[[rules]]
name = "b"
when = 'event=y'
verdict = "y"
[[rules]]
name = "c"
when = 'event=x'
)",
                         "r.toml");
  ASSERT_FALSE(bad.ok());
  const std::string& m = bad.status().message();
  EXPECT_NE(m.find("r.toml:1: rule a: when: "), std::string::npos) << m;
  EXPECT_NE(m.find("r.toml:9: rule 'b' is defined twice"), std::string::npos) << m;
  EXPECT_NE(m.find("r.toml:13: rule c: a rule needs a verdict"), std::string::npos) << m;
}

TEST(ConfigTest, SettingsComeFromTheBlockKinds) {
  std::vector<std::string> keys;
  for (const Setting& s : Settings()) keys.push_back(s.key);
  for (const char* key :
       {"serve.http", "old_stats.memory_limit", "events.levels", "outputs.<name>.level",
        "stats.max_sub_metrics", "metrics.<name>.filter", "exporters.<name>.transport_timeout",
        "listeners.<name>.user", "listeners.<name>.group", "listeners.<name>.mode", "rules[].name",
        "rules[].when", "rules[].verdict"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  }
  ASSERT_NE(Schema().Find("outputs"), nullptr);
  EXPECT_EQ(Schema().Find("outputs")->names,
            (std::vector<std::string>{"old_stats", "metrics", "tail", "exporters", "rules",
                                      "records", "report"}));
  EXPECT_EQ(Schema().Find("sources"), nullptr);
}

// The example in the configuration reference is a valid configuration.
TEST(ConfigTest, DocumentedExampleParses) {
  std::string doc = ConfigReferenceMarkdown();
  std::size_t start = doc.find("```toml\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  std::size_t end = doc.find("```", start);
  auto c = ParseConfig(doc.substr(start, end - start), "example.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->events.outputs.at("tail").level, Level::kWarn);
}

// docs/configuration.md is generated from the schema table; it must not drift.
TEST(ConfigTest, DocumentationMatchesSchema) {
  std::ifstream in(MAILSCOPE_SOURCE_DIR "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md missing; regenerate with "
                     "mailscope check-config --help-config --markdown > docs/configuration.md";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), ConfigReferenceMarkdown())
      << "regenerate: mailscope check-config --help-config --markdown > docs/configuration.md";
}

}  // namespace
}  // namespace mailscope::serve

namespace mailscope::serve {
namespace {

TEST(ConfigMetricsTest, TomlMetricsAndExporters) {
  auto c = ParseConfig(R"([metrics.imap_command]
description = "IMAP commands"
filter = "event=imap_command_finished AND duration > 1ms"
fields = ["bytes_in", "bytes_out"]
group_by = "cmd_name tagged_reply_state"
exporter = "siem"
exporter_include = ["name", "fields"]

[exporters.siem]
format = "json"
format_args = "time-rfc3339"
transport = "file"
transport_args = "/var/log/mailscope/events.json"
transport_timeout = 500
)",
                       "m.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->metrics.size(), 1u);
  const auto& m = c->metrics[0].settings;
  EXPECT_EQ(m.name, "imap_command");
  EXPECT_EQ(m.fields, "bytes_in bytes_out");
  EXPECT_EQ(m.exporter_include, "name fields");
  EXPECT_EQ(m.dialect, filter::Dialect::kMailscope);
  EXPECT_EQ(c->metrics[0].where, "m.toml:1");
  // The unit makes it a mailscope filter; what goes to Dovecot is plain.
  auto def = stats::MakeMetric(m);
  ASSERT_TRUE(def.ok());
  EXPECT_NE(def->filter.ExportDovecot().find("\"duration\">\"1000\""), std::string::npos)
      << def->filter.ExportDovecot();
  ASSERT_EQ(c->exporters.size(), 1u);
  EXPECT_EQ(c->exporters[0].text.transport_timeout, "500");
}

TEST(ConfigMetricsTest, ErrorsNameFileLineAndMetric) {
  struct Case {
    const char* toml;
    const char* error;
  } cases[] = {
      {"[metrics.a]\nfields = \"x\"\n", "e.toml:1: metric a: metric a { filter } is empty"},
      {"[metrics.a]\nfilter = \"event=\"\n", "e.toml:1: metric a: event filter:"},
      {"[metrics.a]\nfilter = \"event=x\"\ngroup_by = \"d:linear:5:3:1\"\n",
       "e.toml:1: metric a: group_by 'linear' aggregate function min must be < max"},
      {"[metrics.a]\nfilter = \"event=x\"\nfilters = \"y\"\n",
       "e.toml:3: metrics.a.filters: unknown setting"},
      {"[metrics.a]\nfilter = 1\n", "e.toml:2: metrics.a.filter: expected a string"},
      {"[metrics.a]\nfilter = \"event=x\"\nfields = [1]\n",
       "e.toml:3: metrics.a.fields: expected a string or an array of strings"},
      {"[metrics.a]\nfilter = \"event=x\"\nexporter = \"nope\"\n",
       "e.toml:1: metric a refers to non-existent exporter 'nope'"},
      {"[exporters.x]\nformat = \"xml\"\ntransport = \"drop\"\n",
       "e.toml:1: event_exporter x: Unknown exporter format 'xml'"},
      {"[exporters.x]\nformat = \"json\"\ntransport = \"drop\"\n",
       "e.toml:1: event_exporter x: json exporter format requires a time-* argument"},
      {"[exporters.x]\nformat = \"none\"\ntransport = \"http-post\"\n",
       "e.toml:1: event_exporter x: Invalid URL '': expected http://host[:port]/path"},
      {"[exporters.x]\nformat = \"json\"\nformat_args = \"time-unix\"\ntransport = \"http-post\"\n"
       "transport_args = \"https://siem.example.net/in\"\n",
       "e.toml:1: event_exporter x: https is not supported"},
      {"[exporters.x]\nformat = \"none\"\ntransport = \"drop\"\ntransport_timeout = \"soon\"\n",
       "e.toml:1: event_exporter x: transport_timeout: Invalid time interval: soon"},
      {"[metrics]\na = 1\n", "e.toml:2: metrics.a: expected a table"},
      {"[stats]\ndovecot_config = \"/nonexistent/dovecot.conf\"\n",
       "/nonexistent/dovecot.conf: cannot open"},
      {"[stats]\nmax_sub_metrics = 0\n", "stats.max_sub_metrics: expected a positive integer"},
  };
  for (const Case& c : cases) {
    auto r = ParseConfig(c.toml, "e.toml");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << c.toml << "\n -> " << r.status().message();
  }
}

TEST(ConfigMetricsTest, DovecotBlocksUseDovecotsRules) {
  auto dir = std::filesystem::temp_directory_path() / "mailscope-config-dovecot-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "metrics.conf") << "metric a {\n  filter = event=x\n  colour = red\n}\n"
                                      << "metric b {\n  filter = event=x AND\n}\n";
  std::ofstream(dir / "m.toml") << "[stats]\ndovecot_config = \"metrics.conf\"\n"
                                << "[metrics.a]\nfilter = \"event=y\"\n";
  auto r = LoadConfigFile((dir / "m.toml").string());
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  EXPECT_NE(msg.find("metrics.conf:3: Unknown setting: colour"), std::string::npos) << msg;
  // The filter is parsed in Dovecot's language.
  EXPECT_NE(msg.find("metrics.conf:5: metric b: event filter:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("metrics.conf:1: metric 'a' is defined twice"), std::string::npos) << msg;
}

}  // namespace
}  // namespace mailscope::serve

namespace mailscope::serve {
namespace {

TEST(ConfigTest, SocketLimitsParseAndAFifoRefusesThem) {
  auto c = ParseConfig(R"(
[listeners.stats_writer]
client_limit = 20000
buffer_limit = "128M"
output_limit = "256k"
line_timeout = "2 mins"
write_timeout = 0
)",
                       "limits.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const ListenerConfig& w = c->listeners.stats_writer;
  EXPECT_EQ(w.limits.client_limit, 20000u);
  EXPECT_EQ(w.limits.buffer_limit, 128u << 20);
  EXPECT_EQ(w.limits.output_limit, 256u << 10);
  EXPECT_EQ(w.limits.line_timeout, std::chrono::seconds(120));
  EXPECT_EQ(w.limits.write_timeout, std::chrono::seconds(0));
  EXPECT_EQ(c->listeners.tail.limits.client_limit, 64u);
  EXPECT_EQ(c->listeners.old_stats.limits.client_limit, 100u);

  auto http = ParseConfig(
      "[listeners.http]\nclient_limit = 50\nline_timeout = 5\nwrite_timeout = \"1 min\"\n",
      "http.toml");
  ASSERT_TRUE(http.ok()) << http.status().message();
  EXPECT_EQ(http->listeners.http.limits.client_limit, 50u);
  EXPECT_EQ(http->listeners.http.limits.line_timeout, std::chrono::seconds(5));
  EXPECT_EQ(http->listeners.http.limits.write_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c->listeners.http.limits.client_limit, 1000u);
  for (std::string_view key : {"buffer_limit = \"1M\"", "output_limit = \"1M\"", "mode = \"0600\"",
                               "user = \"x\"", "group = \"x\""}) {
    auto bad = ParseConfig(fmt::format("[listeners.http]\n{}\n", key), "http.toml");
    ASSERT_FALSE(bad.ok()) << key;
    EXPECT_NE(bad.status().message().find("http.toml:2"), std::string::npos)
        << bad.status().message();
    EXPECT_NE(bad.status().message().find("the HTTP listener takes client_limit, line_timeout"),
              std::string::npos)
        << bad.status().message();
  }

  auto fifo = ParseConfig("[listeners.old_stats_mail]\nclient_limit = 5\n", "fifo.toml");
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find("fifo.toml:2"), std::string::npos)
      << fifo.status().message();
  EXPECT_NE(fifo.status().message().find("a FIFO has no connections"), std::string::npos);
}

}  // namespace
}  // namespace mailscope::serve

namespace mailscope::serve {
namespace {

TEST(ConfigTest, RecordsTakeOneFilterOrMany) {
  auto c = ParseConfig("", "empty.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->records.filters.empty());
  EXPECT_EQ(c->records.max_age, std::chrono::hours(24 * 30));
  EXPECT_EQ(c->records.max_size, 0u);
  EXPECT_EQ(c->records.queue_size, 64u << 20);

  c = ParseConfig(R"([records]
filter = 'kind=auth'
max_age = "7 days"
max_size = "2G"
batch_size = 500
database = "postgresql://ms@db/records"
spool_size = "10M"
)",
                  "one.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->records.filters, std::vector<std::string>{"kind=auth"});
  EXPECT_EQ(c->records.max_age, std::chrono::hours(24 * 7));
  EXPECT_EQ(c->records.max_size, 2ull << 30);
  EXPECT_EQ(c->records.batch_size, 500u);
  EXPECT_EQ(c->records.database, "postgresql://ms@db/records");
  EXPECT_EQ(c->records.spool_size, 10u << 20);

  c = ParseConfig("[records]\nfilter = ['kind=auth', 'event=\"msg:*\"']\nmax_size = 0\n",
                  "many.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->records.filters.size(), 2u);
  EXPECT_EQ(c->records.max_size, 0u);
}

TEST(ConfigTest, RecordFilterMistakesNameTheirLine) {
  auto c = ParseConfig("[records]\n\nfilter = 'event=('\n", "bad.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bad.toml:3: records.filter: event filter: syntax error"),
            std::string::npos)
      << c.status().message();
  c = ParseConfig("[records]\nfilter = ''\n", "empty-filter.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("an empty filter would keep nothing"), std::string::npos);
  c = ParseConfig("[records]\nfilter = [1]\n", "number.toml");
  EXPECT_FALSE(c.ok());
}

}  // namespace
}  // namespace mailscope::serve
