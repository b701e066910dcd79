#include "serve/config.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(c->old_stats_fifo.mode, 0666u);
  EXPECT_EQ(c->old_stats_socket.mode, 0600u);
}

TEST(ConfigTest, ParsesEverySetting) {
  auto c = ParseConfig(R"(
[serve]
run_dir = "/tmp/r"
http = "127.0.0.1:0"
log_level = "debug"
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
fifo_mode = "0660"
fifo_group = "root"
socket_mode = 0o640
)",
                       "all.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->run_dir, "/tmp/r");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->old_stats_memory_limit, 64u << 20);
  EXPECT_EQ(c->old_stats_command_min_time, 120s);
  EXPECT_EQ(c->old_stats_session_min_time, 30s);
  EXPECT_EQ(c->old_stats_domain_min_time, 24h);
  EXPECT_EQ(c->old_stats_ip_min_time, 90s);
  EXPECT_EQ(c->old_stats_carbon_interval, 5s);
  EXPECT_EQ(c->old_stats_fifo.mode, 0660u);
  EXPECT_EQ(c->old_stats_fifo.group, "root");
  EXPECT_EQ(c->old_stats_socket.mode, 0640u);
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
           "[old_stats]\nfifo_mode = \"999\"\n",
           "[old_stats]\nmemory_limit = 0\n",
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
[outputs.log]
level = "error"
disabled = ["exim:msg:delivery"]
)",
                       "events.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->events.disabled, (std::vector<std::string>{"exim:msg:*", "stalwart:auth.failed"}));
  ASSERT_EQ(c->events.levels.size(), 1u);
  EXPECT_EQ(c->events.levels[0].second, Level::kWarn);
  EXPECT_EQ(c->events.outputs.at("metrics").level, Level::kDebug);
  EXPECT_EQ(c->events.outputs.at("log").disabled, (std::vector<std::string>{"exim:msg:delivery"}));
}

TEST(ConfigTest, UnknownEventsNameTheClosestKnownOnes) {
  auto c = ParseConfig(
      "[events]\ndisabled = [\n  \"exim:msg:delivery\",\n  \"stalwart:auth.faild\",\n]\n"
      "[outputs.log]\nlevel = \"loud\"\nsilent = true\n",
      "bad-events.toml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(
      m.find("bad-events.toml:4: events.disabled: unknown event \"stalwart:auth.faild\"; closest: "
             "stalwart:auth.failed"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("bad-events.toml:7: outputs.log.level: expected one of"), std::string::npos)
      << m;
  EXPECT_NE(m.find("bad-events.toml:8: outputs.log.silent: unknown setting"), std::string::npos)
      << m;
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
  EXPECT_EQ(c->events.outputs.at("log").level, Level::kWarn);
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
