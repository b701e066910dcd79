#include "serve/dovecot_conf.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "serve/config.h"

namespace mailscope::serve {
namespace {

const std::string kCaptured = MAILSCOPE_SOURCE_DIR "/tests/data/dovecot-2.3.19/dovecot.conf";

std::string Value(const DovecotConfSection& s, std::string_view key) {
  for (const auto& kv : s.settings)
    if (kv.key == key) return kv.value;
  return "<missing>";
}

TEST(DovecotConfTest, ReadsTheStatsBlocksOfARealConfig) {
  auto conf = LoadDovecotConf(kCaptured);
  ASSERT_TRUE(conf.ok()) << conf.status().message();
  std::vector<std::string> metrics, exporters;
  for (const auto& s : conf->sections) (s.type == "metric" ? metrics : exporters).push_back(s.name);
  EXPECT_EQ(metrics.size(), 12u);
  EXPECT_EQ(exporters, (std::vector<std::string>{"json_http", "tab_http", "json_log", "tab_log",
                                                 "none_http"}));
  // Services, listeners, passdbs and plain settings are skipped.
  EXPECT_GT(conf->skipped_settings, 20u);
  const DovecotConfSection* special = nullptr;
  for (const auto& s : conf->sections)
    if (s.name == "imap_command_special") special = &s;
  ASSERT_NE(special, nullptr);
  EXPECT_EQ(Value(*special, "filter"),
            "event=imap_command_finished AND (cmd_name=SEARCH OR cmd_name=STORE OR "
            "tagged_reply_state=BAD OR tagged_reply_state=NO)");
  EXPECT_EQ(Value(*special, "description"), "selected IMAP commands with all fields");
  EXPECT_EQ(special->where, kCaptured + ":151");
}

TEST(DovecotConfTest, Syntax) {
  auto conf = ParseDovecotConf(R"(# a comment
protocols = imap lmtp
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
metric quoted {
  filter = "event=\"x\" AND a=1" # trailing comment
  description = 'it\'s'
  fields = a \
    b
  group_by = c:exponential:1:5:10
}
   event_exporter   e1   {
  format=json
  transport = drop
}
)",
                               "/tmp/x.conf");
  ASSERT_TRUE(conf.ok()) << conf.status().message();
  ASSERT_EQ(conf->sections.size(), 2u);
  const auto& m = conf->sections[0];
  EXPECT_EQ(m.name, "quoted");
  EXPECT_EQ(m.where, "/tmp/x.conf:8");
  EXPECT_EQ(Value(m, "filter"), "event=\"x\" AND a=1");
  EXPECT_EQ(Value(m, "description"), "it's");
  EXPECT_EQ(Value(m, "fields"), "a b");
  EXPECT_EQ(m.settings[2].where, "/tmp/x.conf:11");
  EXPECT_EQ(Value(m, "group_by"), "c:exponential:1:5:10");
  EXPECT_EQ(conf->sections[1].name, "e1");
  EXPECT_EQ(Value(conf->sections[1], "format"), "json");
  EXPECT_EQ(conf->skipped_settings, 2u);
}

TEST(DovecotConfTest, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"metric a {\n filter = x\n", "c.conf:1: section 'metric' is not closed"},
      {"}\n", "c.conf:1: Unexpected '}'"},
      {"metric a {\n filter\n}\n", "c.conf:2: Expecting '=' after 'filter'"},
      {"metric {\n}\n", "c.conf:1: metric { } needs a name"},
      {"metric a {\n  sub {\n  }\n}\n", "c.conf:2: Unexpected section 'sub' inside metric"},
      {"!include nothing-here.conf\n", "c.conf:1: "},
      {"metric m {\n  filter = <no-such-file\n}\n", "c.conf:2: "},
      {"= 1\n", "c.conf:1: Missing setting name"},
  };
  for (const Case& c : cases) {
    auto conf = ParseDovecotConf(c.text, "/nonexistent-dir/c.conf");
    ASSERT_FALSE(conf.ok()) << c.text;
    EXPECT_NE(conf.status().message().find(c.error), std::string::npos)
        << c.text << " -> " << conf.status().message();
  }
  // !include_try of nothing is fine.
  EXPECT_TRUE(ParseDovecotConf("!include_try /nonexistent-dir/*.conf\n", "c.conf").ok());
}

TEST(DovecotConfTest, IncludesAndFileValues) {
  auto dir = std::filesystem::temp_directory_path() / "mailscope-dovecot-conf-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "conf.d");
  std::ofstream(dir / "conf.d" / "10-a.conf") << "metric a {\n  filter = event=a\n}\n";
  std::ofstream(dir / "conf.d" / "20-b.conf") << "metric b {\n  filter = <b.filter\n}\n";
  std::ofstream(dir / "conf.d" / "b.filter") << "event=b\n";
  // A file value outside the stats blocks is not read (Debian's ssl_key = </etc/...).
  std::ofstream(dir / "dovecot.conf") << "ssl_key = </nonexistent/key.pem\n"
                                      << "!include conf.d/*.conf\n";
  auto conf = LoadDovecotConf((dir / "dovecot.conf").string());
  ASSERT_TRUE(conf.ok()) << conf.status().message();
  ASSERT_EQ(conf->sections.size(), 2u);
  EXPECT_EQ(conf->sections[0].name, "a");
  EXPECT_EQ(Value(conf->sections[1], "filter"), "event=b");
  EXPECT_NE(conf->sections[1].where.find("20-b.conf:1"), std::string::npos);
  // An include loop stops at the depth limit instead of recursing forever.
  std::ofstream(dir / "loop.conf") << "!include loop.conf\n";
  auto loop = LoadDovecotConf((dir / "loop.conf").string());
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.status().message().find("nested more than"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(DovecotConfTest, IncludeGlobWorkIsBounded) {
  auto dir = std::filesystem::temp_directory_path() / "mailscope-dovecot-conf-glob";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // Five levels of four files, each including all four of the next level:
  // 4 + 16 + 64 + 256 + 1024 reads.
  for (int level = 0; level < 5; ++level) {
    const auto sub = dir / ("l" + std::to_string(level));
    std::filesystem::create_directories(sub);
    for (int i = 0; i < 4; ++i) {
      std::ofstream out(sub / (std::to_string(i) + ".conf"));
      if (level < 4) out << "!include ../l" << level + 1 << "/*.conf\n";
    }
  }
  auto fan = ParseDovecotConf("!include l0/*.conf\n", (dir / "top.conf").string());
  ASSERT_FALSE(fan.ok());
  EXPECT_NE(fan.status().message().find("more than 1024 included files"), std::string::npos)
      << fan.status().message();
  // A listing wider than the budget: 41 links back to their own directory
  // make wide/*/*/* list 41 * 41 * 43 entries.
  std::filesystem::create_directories(dir / "wide");
  for (int i = 0; i < 41; ++i) {
    std::filesystem::create_directory_symlink(".", dir / "wide" / ("s" + std::to_string(i)));
  }
  auto wide = ParseDovecotConf("!include_try wide/*/*/*/*.conf\n", (dir / "top.conf").string());
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("more than 65536 directory entries"), std::string::npos)
      << wide.status().message();
  EXPECT_NE(wide.status().message().find("top.conf:1"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// Include patterns match as glob(3) does: a wildcard matches no leading dot,
// a backslash escapes, results come sorted; found level by level.
TEST(DovecotConfTest, IncludePatternsMatchAsGlobDoes) {
  auto dir = std::filesystem::temp_directory_path() / "mailscope-dovecot-conf-match";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "d" / "sub");
  auto metric = [](std::string_view name) {
    return "metric " + std::string(name) + " {\n  filter = event=" + std::string(name) + "\n}\n";
  };
  std::ofstream(dir / "d" / "b.conf") << metric("b");
  std::ofstream(dir / "d" / "a.conf") << metric("a");
  std::ofstream(dir / "d" / ".hidden.conf") << metric("hidden");
  std::ofstream(dir / "d" / "x*y.conf") << metric("star");
  std::ofstream(dir / "d" / "sub" / "c.conf") << metric("c");
  auto names = [&](std::string_view text) {
    auto conf = ParseDovecotConf(text, (dir / "top.conf").string());
    EXPECT_TRUE(conf.ok()) << conf.status().message();
    std::vector<std::string> out;
    if (conf.ok())
      for (const auto& s : conf->sections) out.push_back(s.name);
    return out;
  };
  EXPECT_EQ(names("!include d/*.conf\n"), (std::vector<std::string>{"a", "b", "star"}));
  EXPECT_EQ(names("!include d/.*.conf\n"), std::vector<std::string>{"hidden"});
  EXPECT_EQ(names("!include d/x\\*y.conf\n"), std::vector<std::string>{"star"});
  EXPECT_EQ(names("!include d/*/?.conf\n"), std::vector<std::string>{"c"});
  EXPECT_EQ(names("!include_try d/nope/*.conf\n"), std::vector<std::string>{});
  // What the config fuzzer found: glibc's glob() overflowed its stack on it.
  auto fuzzed = ParseDovecotConf(
      "!include /*/4/./*e\xc2\xc2\xc2*e*dcnule /!,.,;" + std::string(200, ',') + "\n", "f.conf");
  // A file name that exists nowhere: said so, as for any missing include.
  ASSERT_FALSE(fuzzed.ok());
  EXPECT_TRUE(fuzzed.status().message().starts_with("f.conf:1: !include /*/4/./*e"));
  EXPECT_TRUE(fuzzed.status().message().ends_with(",: no such file")) << fuzzed.status().message();
  std::filesystem::remove_all(dir);
}

TEST(DovecotConfTest, RejectsIncludePatternsThatGlobCannotTakeSafely) {
  std::string deep = "!include_try /nonexistent";
  for (int i = 0; i < 9; ++i) deep += "/*";
  auto levels = ParseDovecotConf(deep + "\n", "c.conf");
  ASSERT_FALSE(levels.ok());
  EXPECT_NE(levels.status().message().find("c.conf:1: !include path has wildcards in more than 8"),
            std::string::npos)
      << levels.status().message();
  deep.resize(deep.size() - 2);  // 8 levels: fine, and nothing matches
  EXPECT_TRUE(ParseDovecotConf(deep + "\n", "c.conf").ok());
  auto longer = ParseDovecotConf("!include /" + std::string(4100, 'a') + "\n", "c.conf");
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.status().message().find("longer than 4096 bytes"), std::string::npos);
}

TEST(DovecotConfTest, RejectsNulInPaths) {
  using namespace std::string_view_literals;
  auto inc = ParseDovecotConf("!include /etc/hostname\0/x\n"sv, "c.conf");
  ASSERT_FALSE(inc.ok());
  EXPECT_NE(inc.status().message().find("c.conf:1: !include path contains a NUL byte"),
            std::string::npos)
      << inc.status().message();
  auto val = ParseDovecotConf("metric m {\n  filter = </etc/hostname\0x\n}\n"sv, "c.conf");
  ASSERT_FALSE(val.ok());
  EXPECT_NE(val.status().message().find("c.conf:2: file path contains a NUL byte"),
            std::string::npos)
      << val.status().message();
}

TEST(DovecotConfTest, ConfigTakesTheCapturedMetrics) {
  auto dir = std::filesystem::temp_directory_path() / "mailscope-dovecot-conf-test2";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "mailscope.toml")
      << "[stats]\ndovecot_config = \"" << kCaptured
      << "\"\n\n[metrics.auth_fail]\nfilter = "
         "'event=auth_request_finished AND duration > 2ms'\n"
         "group_by = [\"mechanism\", \"duration:exponential:1:5:10\"]\n";
  auto config = LoadConfigFile((dir / "mailscope.toml").string());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_EQ(config->metrics.size(), 13u);
  EXPECT_EQ(config->metrics[0].settings.name, "auth_fail");
  EXPECT_EQ(config->metrics[0].settings.dialect, filter::Dialect::kMailscope);
  EXPECT_EQ(config->metrics[0].settings.group_by, "mechanism duration:exponential:1:5:10");
  EXPECT_EQ(config->metrics[1].settings.name, "imap_command");
  EXPECT_EQ(config->metrics[1].settings.dialect, filter::Dialect::kDovecot);
  EXPECT_EQ(config->metrics[1].settings.exporter, "json_http");
  EXPECT_EQ(config->exporters.size(), 5u);
  EXPECT_EQ(config->exporters[0].text.transport_timeout, "2 secs");
}

}  // namespace
}  // namespace mailscope::serve
