#include "serve/config_schema.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <map>

namespace mailscope::serve {
namespace {

using namespace std::chrono_literals;

// A configuration of every shape, registered only here: a fixed table, a
// source's table, an array of source tables, an array of rules and a closed
// family of named tables.
struct Listener {
  std::string listen;
  std::chrono::seconds timeout{5};
};
struct LogSource {
  std::string path;
  std::uint64_t max_line = 4096;
  std::size_t index = 0;
};
struct Rule {
  std::string name;
  Level level = Level::kInfo;
  std::vector<std::string> tags;
  std::string where;
};
struct Sink {
  std::string url;
};
struct TestRoot {
  Listener serve;
  Listener webhook;
  std::vector<LogSource> logs;
  std::vector<Rule> rules;
  std::map<std::string, Sink> sinks;
};

// Tags are strings; a bad one is reported at its line and the rest kept.
Status SetTags(Rule& r, const ConfigValue& v) {
  if (!v.IsArray()) return InvalidArgument("expected an array of tags");
  for (const ConfigValue& item : v.Items()) {
    if (auto s = item.String()) {
      r.tags.push_back(*s);
    } else {
      item.Report("expected a string");
    }
  }
  return Status::Ok();
}

std::vector<Key<Listener>> ListenerKeys() {
  return {{"listen", SettingType::kAddress, false, "\"\"", "ADDR:PORT.",
           Store(&Listener::listen, ReadAddress)},
          {"timeout", SettingType::kDuration, true, "5 secs", "How long a request may take.",
           Store(&Listener::timeout, ReadPositiveDuration)}};
}

const ConfigSchema<TestRoot>& TestSchema() {
  static const ConfigSchema<TestRoot> schema = [] {
    ConfigSchema<TestRoot> s;
    s.Add(BlockKind<TestRoot, Listener>{
        .path = "serve",
        .open = [](TestRoot& r, const BlockStart&) -> Listener& { return r.serve; },
        .keys = ListenerKeys()});
    s.Add(BlockKind<TestRoot, Listener>{
        .path = "sources.webhook",
        .open = [](TestRoot& r, const BlockStart&) -> Listener& { return r.webhook; },
        .keys = ListenerKeys()});
    s.Add(BlockKind<TestRoot, LogSource>{
        .path = "sources.log",
        .shape = BlockShape::kArrayOfTables,
        .open = [](TestRoot& r, const BlockStart& start) -> LogSource& {
          LogSource& l = r.logs.emplace_back();
          l.index = start.index;
          return l;
        },
        .keys = {{"path", SettingType::kString, false, "(required)", "The log file.",
                  Store(&LogSource::path, ReadString)},
                 {"max_line", SettingType::kSize, true, "4k", "Longest line kept.",
                  Store(&LogSource::max_line, ReadSize)}}});
    s.Add(BlockKind<TestRoot, Rule>{
        .path = "rules",
        .shape = BlockShape::kArrayOfTables,
        .open = [](TestRoot& r, const BlockStart& start) -> Rule& {
          Rule& rule = r.rules.emplace_back();
          rule.where = start.where;
          return rule;
        },
        .keys = {{"name", SettingType::kString, true, "(required)", "Name of the rule.",
                  Store(&Rule::name, ReadString)},
                 {"level", SettingType::kLogLevel, true, "info", "Least severe level matched.",
                  Store(&Rule::level, ReadLevel)},
                 {"tags", SettingType::kStringList, true, "[]", "Tags.", SetTags}}});
    s.Add(BlockKind<TestRoot, Sink>{.path = "sinks",
                                    .shape = BlockShape::kNamedTables,
                                    .open = [](TestRoot& r, const BlockStart& start) -> Sink& {
                                      return r.sinks[std::string(start.name)];
                                    },
                                    .keys = {{"url", SettingType::kString, true, "\"\"",
                                              "Where records go.", Store(&Sink::url, ReadString)}},
                                    .noun = "sink",
                                    .names = {"sqlite", "postgres"}});
    return s;
  }();
  return schema;
}

std::string Errors(std::string_view text, TestRoot& root) {
  std::string all;
  for (const std::string& p : TestSchema().Parse(text, "t.toml", root)) all += p + "\n";
  return all;
}

TEST(ConfigSchemaTest, ParsesEveryShape) {
  TestRoot r;
  std::string errors = Errors(R"([serve]
listen = "127.0.0.1:1"

[sources.webhook]
listen = "127.0.0.1:8080"
timeout = "1 min"

[[sources.log]]
path = "/var/log/qmail/smtpd/current"

[[sources.log]]
path = "/var/log/qmail/send/current"
max_line = "64k"

[[rules]]
name = "first"
tags = ["a", "b"]

[[rules]]
name = "second"
level = "warn"

[sinks.sqlite]
url = "file:/tmp/x.db"
)",
                              r);
  ASSERT_EQ(errors, "");
  EXPECT_EQ(r.serve.listen, "127.0.0.1:1");
  EXPECT_EQ(r.serve.timeout, 5s);
  EXPECT_EQ(r.webhook.listen, "127.0.0.1:8080");
  EXPECT_EQ(r.webhook.timeout, 60s);
  ASSERT_EQ(r.logs.size(), 2u);
  EXPECT_EQ(r.logs[0].path, "/var/log/qmail/smtpd/current");
  EXPECT_EQ(r.logs[0].max_line, 4096u);
  EXPECT_EQ(r.logs[1].index, 1u);
  EXPECT_EQ(r.logs[1].max_line, 64u << 10);
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(r.rules[0].name, "first");
  EXPECT_EQ(r.rules[0].tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.rules[0].where, "t.toml:15");
  EXPECT_EQ(r.rules[1].level, Level::kWarn);
  EXPECT_EQ(r.sinks.at("sqlite").url, "file:/tmp/x.db");
  EXPECT_FALSE(r.sinks.contains("postgres"));
}

TEST(ConfigSchemaTest, ErrorsNameFileLineAndKey) {
  struct Case {
    const char* toml;
    const char* error;
  } cases[] = {
      {"[sources.webhook]\ntimeout = \"0s\"\n",
       "t.toml:2: sources.webhook.timeout: must be at least 1 second"},
      {"[sources.webhook]\nlisten = 80\n",
       "t.toml:2: sources.webhook.listen: expected a string \"ADDR:PORT\""},
      {"[sources.webhok]\nlisten = \"\"\n",
       "t.toml:1: sources.webhok: unknown table; did you mean [sources.webhook]?"},
      {"[sources]\nwebhook = 1\n", "t.toml:2: sources.webhook: expected a table [sources.webhook]"},
      {"sources = 1\n", "t.toml:1: sources: expected a table such as [sources.NAME]"},
      {"[[sources.log]]\npath = \"a\"\n[[sources.log]]\npaht = \"b\"\n",
       "t.toml:4: sources.log[1].paht: unknown setting; did you mean sources.log[1].path?"},
      {"[[rules]]\nname = \"a\"\ncolour = \"red\"\n",
       "t.toml:3: rules[0].colour: unknown setting; [[rules]] takes name, level, tags"},
      {"[rules]\nname = \"a\"\n", "t.toml:1: rules: expected an array of tables [[rules]]"},
      {"[[rule]]\nname = \"a\"\n", "t.toml:1: rule: unknown table; did you mean [[rules]]?"},
      {"[[rules]]\nlevel = \"loud\"\n",
       "t.toml:2: rules[0].level: expected one of trace, debug, info, warn, error"},
      {"[sinks.mysql]\nurl = \"x\"\n",
       "t.toml:1: sinks.mysql: unknown sink; the sinks are sqlite, postgres"},
      {"[sinks.sqlit]\nurl = \"x\"\n",
       "t.toml:1: sinks.sqlit: unknown sink; did you mean [sinks.sqlite]? The sinks are sqlite, "
       "postgres"},
      {"[sinks]\nsqlite = \"x\"\n", "t.toml:2: sinks.sqlite: expected a table [sinks.sqlite]"},
      {"[serve\n", "t.toml:1: "},
      {"[serve]\nlisten = \"\x01\"\n", "t.toml:2: control character 0x01 is not allowed"},
  };
  for (const Case& c : cases) {
    TestRoot r;
    std::string errors = Errors(c.toml, r);
    EXPECT_NE(errors.find(c.error), std::string::npos) << c.toml << "\n -> " << errors;
  }
}

// `text` with each "<U+XXXX>" (below U+10000) replaced by that code point in UTF-8.
std::string Utf8(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i, 3) != "<U+") {
      out += text[i];
      continue;
    }
    std::size_t end = text.find('>', i);
    unsigned cp = 0;
    std::from_chars(text.data() + i + 3, text.data() + end, cp, 16);
    if (cp < 0x800) {
      out += static_cast<char>(0xC0 | cp >> 6);
    } else {
      out += static_cast<char>(0xE0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    }
    out += static_cast<char>(0x80 | (cp & 0x3F));
    i = end;
  }
  return out;
}

// toml++ 3.3 reaches an "unreachable" point when it asks whether U+00E9,
// U+3001 or U+FE10 is whitespace. It asks between tokens, along numbers and
// after a backslash, but not about the rest of a string or a comment.
TEST(ConfigSchemaTest, NonAsciiTextInStringsAndComments) {
  TestRoot r;
  std::string errors = Errors(Utf8(R"(# caf<U+00E9> <U+3000>
[[rules]] # <U+3001>
name = "<U+00E9>\"<U+00A0>\\" # <U+FE10>
tags = [
  '<U+00E9>\',
  """<U+3000> "<U+00E9>" ""<U+3001>\"""<U+00A0>""""",
  '''
<U+00A0>''<U+FE10>''''',
  """\
     a<U+00E9>\

  \u00e9""",
  "<U+FE10>",  # <U+00E9>
  """"<U+3001>"""",
  ''''<U+3001>'''',
]
)"
                                   "[[rules]]\r\nname = \"\"\"\\  \r\n  x<U+00E9>\"\"\"\r\n"),
                              r);
  EXPECT_EQ(errors, "");
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(r.rules[0].name, Utf8(R"(<U+00E9>"<U+00A0>\)"));
  EXPECT_EQ(r.rules[0].tags, (std::vector<std::string>{
                                 Utf8(R"(<U+00E9>\)"),
                                 Utf8(R"(<U+3000> "<U+00E9>" ""<U+3001>"""<U+00A0>"")"),
                                 Utf8("<U+00A0>''<U+FE10>''"),
                                 Utf8("a<U+00E9><U+00E9>"),
                                 Utf8("<U+FE10>"),
                                 Utf8(R"("<U+3001>")"),
                                 Utf8("'<U+3001>'"),
                             }));
  EXPECT_EQ(r.rules[1].name, Utf8("x<U+00E9>"));
}

// toml++ gets the text with every non-ASCII character of a string as an
// escape: the values are the same, byte for byte, outside the BMP too, and a
// string that is not UTF-8 is an error with its line.
TEST(ConfigSchemaTest, NonAsciiStringsKeepTheirValuesExactly) {
  TestRoot r;
  std::string errors = Errors(
      "[[rules]]\n"
      "name = 'a\\b\"c\xc3\xa9\xf0\x9f\x98\x80'\n"
      "tags = ['''\n\\\"\xe3\x80\x80\"''''', \"\\\\\xc3\xa9\\\"\"]\n",
      r);
  EXPECT_EQ(errors, "");
  ASSERT_EQ(r.rules.size(), 1u);
  EXPECT_EQ(r.rules[0].name, "a\\b\"c\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(r.rules[0].tags, (std::vector<std::string>{"\\\"\xe3\x80\x80\"''", "\\\xc3\xa9\""}));
  TestRoot bad;
  EXPECT_EQ(Errors("[[rules]]\n\nname = \"a\xc3\"\n", bad), "t.toml:3: invalid UTF-8\n");
  EXPECT_EQ(Errors("[[rules]]\nname = 'a\xed\xa0\x80'\n", bad), "t.toml:2: invalid UTF-8\n");
  // An unterminated literal string stays unterminated once rewritten.
  EXPECT_NE(Errors("[[rules]]\nname = 'a\xc3\xa9\ntags = []\n", bad), "");
}

// What the config fuzzer found after the lexing above: toml++ saw the U+00E9
// of a string where this lexer saw a bare value, or the other way round. It
// now never sees one.
TEST(ConfigSchemaTest, FuzzerInputsWithNonAsciiAreErrorsOnly) {
  for (const char* toml : {"s = [1,\"\xc3\xa9\", 1979-?5-27 1,\"\xc3\xa9\", 1905-27",
                           "s = [1,\"\xc3\xa9\", 1979-05-;7 1,\"\xc3\xa9\", 1979-05-27"}) {
    TestRoot r;
    // toml++'s own error for the malformed date, on ASCII text.
    EXPECT_EQ(Errors(toml, r),
              "t.toml:1: Error while parsing value: could not determine value type\n")
        << toml;
  }
}

// Strings may follow bare values in arrays and inline tables, and keys may
// start with a digit or '-'.
TEST(ConfigSchemaTest, NonAsciiTextAfterBareValues) {
  TestRoot r;
  std::string errors = Errors(Utf8(R"([[rules]]
tags = [1,"<U+00E9>", 1979-05-27 07:32:00 ,'<U+3001>',{a = -1,b = "<U+FE10>", 1."<U+00E9>" = 2}, [2,"x"]] # <U+00E9>
1."<U+00E9>" = 1
)"),
                              r);
  // Only the schema objects: to the values that are no strings, and to the key.
  EXPECT_EQ(errors,
            "t.toml:2: rules[0].tags: expected a string\n"
            "t.toml:2: rules[0].tags: expected a string\n"
            "t.toml:2: rules[0].tags: expected a string\n"
            "t.toml:2: rules[0].tags: expected a string\n"
            "t.toml:3: rules[0].1: unknown setting; [[rules]] takes name, level, tags\n");
  ASSERT_EQ(r.rules.size(), 1u);
  EXPECT_EQ(r.rules[0].tags, (std::vector<std::string>{Utf8("<U+00E9>"), Utf8("<U+3001>")}));
}

TEST(ConfigSchemaTest, NonAsciiTextElsewhereIsAnError) {
  const std::string outside = "non-ASCII character outside a string or comment";
  const std::string escape = "invalid escape: a backslash before a non-ASCII character";
  struct Case {
    std::string toml;
    std::string error;
  } cases[] = {
      // What the config fuzzer found: "\" and U+03FB in a multi-line string.
      {"[\"\"\"\n#\"\"o7\\\xcf\xbb\"[er", "t.toml:2: " + escape},
      {"[serve]\nlisten = \"\" <U+00E9>\n", "t.toml:2: " + outside},
      {"[serve]\nlisten<U+3001> = \"\"\n", "t.toml:2: " + outside},
      {"[serve<U+FE10>]\n", "t.toml:1: " + outside},
      {"<U+3000>[serve]\n", "t.toml:1: " + outside},
      {"[serve]\n<U+00A0>\n", "t.toml:2: " + outside},
      {"# <U+00E9>\n[serve]<U+00E9>\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = 'a\\'<U+00E9>'\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = \"\"\"a\"\"\"\"<U+00E9>\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = '''a''''<U+00E9>\n", "t.toml:2: " + outside},
      // In a bare value toml++ asks about every character up to a blank, ',',
      // ']', '}' or '#': a quote there opens no string.
      {"[serve]\nlisten = 1''a''''<U+00E9>\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = 1979-05-27 07'<U+00E9>'\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = [1979-05-27 1,\"<U+00E9>\"]\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = 1979-05-27 1\n\"<U+00E9>\"\n", "t.toml:3: " + outside},
      {"[serve]\nlisten = [\n  \"a\", # <U+00E9>\n  tru\"<U+00E9>\"]\n", "t.toml:4: " + outside},
      {"[serve]\nlisten = {a = [1], b = -\"<U+00E9>\"}\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = [[1],2'<U+00E9>']\n", "t.toml:2: " + outside},
      {"[serve]\nlisten = \"\\<U+00E9>\"\n", "t.toml:2: " + escape},
      {"[serve]\nlisten = \"\"\"\n\\<U+00E9>\"\"\"\n", "t.toml:3: " + escape},
      {"[serve]\nlisten = \"\"\"\\ <U+00E9>\"\"\"\n",
       "t.toml:2: invalid escape: a backslash before blanks and a non-ASCII character"},
      {"[serve]\nlisten = \"\"\"\\\n\n  <U+00A0>x\"\"\"\n",
       "t.toml:4: non-ASCII character first after a line-ending backslash is not supported; "
       "write it as \\uXXXX"},
  };
  for (const Case& c : cases) {
    TestRoot r;
    EXPECT_EQ(Errors(Utf8(c.toml), r), c.error + "\n") << c.toml;
  }
}

TEST(ConfigSchemaTest, SettersReportEveryBadItemAtItsLine) {
  TestRoot r;
  std::string errors = Errors("[[rules]]\ntags = [\n  1,\n  \"ok\",\n  2,\n]\n", r);
  EXPECT_EQ(errors,
            "t.toml:3: rules[0].tags: expected a string\n"
            "t.toml:5: rules[0].tags: expected a string\n");
  ASSERT_EQ(r.rules.size(), 1u);
  EXPECT_EQ(r.rules[0].tags, (std::vector<std::string>{"ok"}));
}

TEST(ConfigSchemaTest, DocumentsKeysUnderTheirBlockPath) {
  std::vector<std::string> keys;
  for (const Setting& s : TestSchema().Settings()) keys.push_back(s.key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "serve.listen", "serve.timeout", "sources.webhook.listen",
                      "sources.webhook.timeout", "sources.log[].path", "sources.log[].max_line",
                      "rules[].name", "rules[].level", "rules[].tags", "sinks.<name>.url"}));
  ASSERT_NE(TestSchema().Find("sources.log"), nullptr);
  EXPECT_EQ(TestSchema().Find("sources.log")->shape, BlockShape::kArrayOfTables);
}

// "sources" as a table would swallow [sources.webhook]: such schemas abort.
TEST(ConfigSchemaDeathTest, OverlappingPathsAreRejected) {
  auto open = [](TestRoot& r, const BlockStart&) -> Listener& { return r.serve; };
  ConfigSchema<TestRoot> s;
  s.Add(BlockKind<TestRoot, Listener>{.path = "sources", .open = open});
  s.Add(BlockKind<TestRoot, Listener>{.path = "sourcesx", .open = open});
  EXPECT_DEATH(s.Add(BlockKind<TestRoot, Listener>{.path = "sources.webhook", .open = open}),
               "Overlap");
  EXPECT_DEATH(s.Add(BlockKind<TestRoot, Listener>{.path = "sources", .open = open}), "Overlap");
}

// A dovecot.conf value goes through the same readers, as text.
TEST(ConfigSchemaTest, TextValuesUseTheSameReaders) {
  std::vector<std::string> problems;
  ConfigValue size("16M", "memory_limit", "dovecot.conf:3", &problems);
  EXPECT_EQ(size.name(), "memory_limit");
  EXPECT_FALSE(size.Integer());
  ASSERT_TRUE(ReadSize(size).ok());
  EXPECT_EQ(*ReadSize(size), 16u << 20);
  ConfigValue bad("soon", "timeout", "dovecot.conf:4", &problems);
  EXPECT_FALSE(ReadDuration(bad).ok());
  bad.Report("no");
  EXPECT_EQ(problems, (std::vector<std::string>{"dovecot.conf:4: timeout: no"}));
}

}  // namespace
}  // namespace mailscope::serve
