#include "export/event_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "core/allocation_counter_testing.h"
#include "export/json_writer.h"

namespace mailscope::exporter {
namespace {

TimePoint At(std::int64_t sec, std::int64_t usec) {
  return TimePoint(std::chrono::seconds(sec) + std::chrono::microseconds(usec));
}

struct F {
  std::string_view key;
  Value value;
};

Event Make(std::string_view name, std::initializer_list<F> fields,
           std::initializer_list<std::string_view> categories = {}) {
  Event e;
  e.source = Source::kDovecot;
  e.name = name.empty() ? kNoName : InternName(name);
  e.time = At(1795305644, 195092);
  for (const F& f : fields) e.Add(InternName(f.key), f.value);
  for (std::string_view c : categories) e.categories.push_back(InternName(c));
  return e;
}

FormatSpec Spec(EventFormat format, TimeFormat time = TimeFormat::kUnix) {
  FormatSpec s;
  s.format = format;
  s.time_format = time;
  s.hostname = "vm";
  return s;
}

const TimePoint kNow = At(1795305644, 198736);

std::string Render(const Event& e, const FormatSpec& spec, TimePoint now = kNow) {
  EventFormatter f;
  std::string out = "old contents";
  f.Format(e, spec, now, out);
  return out;
}

TEST(EventFormatTest, JsonWithEverythingIncluded) {
  Event e = Make("imap_command_finished",
                 {{"user", Value::String("carol@example.com")},
                  {"local_port", Value::Int(10143)},
                  {"last_run_time", Value::Tv({1795305644, 195081})},
                  {"reason_code", Value::String("imap:cmd_select")}},
                 {"service:imap", "imap"});
  EXPECT_EQ(Render(e, Spec(EventFormat::kJson)),
            R"({"event":"imap_command_finished","hostname":"vm","start_time":1795305644.195092,)"
            R"("end_time":1795305644.198736,"categories":["service:imap","imap"],"fields":)"
            R"({"user":"carol@example.com","local_port":10143,"last_run_time":1795305644.195081,)"
            R"("reason_code":["imap:cmd_select"]}})");
  EXPECT_EQ(
      Render(e, Spec(EventFormat::kJson, TimeFormat::kRfc3339)),
      R"({"event":"imap_command_finished","hostname":"vm",)"
      R"("start_time":"2026-11-22T00:00:44.195092Z","end_time":"2026-11-22T00:00:44.198736Z",)"
      R"("categories":["service:imap","imap"],"fields":{"user":"carol@example.com",)"
      R"("local_port":10143,"last_run_time":"2026-11-22T00:00:44.195081Z",)"
      R"("reason_code":["imap:cmd_select"]}})");
}

TEST(EventFormatTest, TabTextWithEverythingIncluded) {
  Event e = Make("imap_command_finished",
                 {{"user", Value::String("carol@example.com")},
                  {"cmd_args", Value::String("SUBJECT \"tab\there\"")},
                  {"last_run_time", Value::Tv({1795305644, 195081})},
                  {"reason_code", Value::String("imap:cmd_fetch\timap:fetch_size")}},
                 {"service:imap", "imap"});
  EXPECT_EQ(Render(e, Spec(EventFormat::kTabText)),
            "event:imap_command_finished\thostname:vm\tstart_time:1795305644.195092\t"
            "end_time:1795305644.198736\tcategory:service:imap\tcategory:imap\t"
            "field:user=carol@example.com\tfield:cmd_args=SUBJECT \"tab\001there\"\t"
            "field:last_run_time=1795305644.195081\t"
            "field:reason_code=imap:cmd_fetch\001timap:fetch_size");
  const std::string rfc3339 =
      "event:imap_command_finished\thostname:vm\tstart_time:2026-11-22T00:00:44.195092Z\t"
      "end_time:2026-11-22T00:00:44.198736Z\t";
  EXPECT_EQ(Render(e, Spec(EventFormat::kTabText, TimeFormat::kRfc3339)).substr(0, rfc3339.size()),
            rfc3339);
}

TEST(EventFormatTest, NoneFormatIsEmpty) {
  EXPECT_EQ(Render(Make("x", {{"a", Value::Int(1)}}), Spec(EventFormat::kNone)), "");
}

TEST(EventFormatTest, IncludeFlags) {
  Event e = Make("x", {{"a", Value::Int(1)}}, {"c"});
  FormatSpec json = Spec(EventFormat::kJson);
  FormatSpec tab = Spec(EventFormat::kTabText);
  json.include = tab.include = ExporterInclude::None();
  EXPECT_EQ(Render(e, json), "{}");
  EXPECT_EQ(Render(e, tab), "");
  json.include.name = json.include.fields = true;
  tab.include = json.include;
  EXPECT_EQ(Render(e, json), R"({"event":"x","fields":{"a":1}})");
  EXPECT_EQ(Render(e, tab), "event:x\tfield:a=1");
  json.include = tab.include = ExporterInclude::None();
  json.include.hostname = tab.include.hostname = true;
  EXPECT_EQ(Render(e, json), R"({"hostname":"vm"})");
  EXPECT_EQ(Render(e, tab), "hostname:vm");
  json.include = tab.include = ExporterInclude::None();
  json.include.categories = tab.include.categories = true;
  EXPECT_EQ(Render(e, json), R"({"categories":["c"]})");
  EXPECT_EQ(Render(e, tab), "category:c");
  json.include.timestamps = tab.include.timestamps = true;
  EXPECT_EQ(Render(e, json),
            R"({"start_time":1795305644.195092,"end_time":1795305644.198736,"categories":["c"]})");
  EXPECT_EQ(Render(e, tab), "start_time:1795305644.195092\tend_time:1795305644.198736\tcategory:c");
}

// Dovecot's tab-text writes the TAB after the categories even when there are
// none: an empty item, or a trailing TAB when nothing follows.
TEST(EventFormatTest, TabTextWithoutCategoriesKeepsDovecotsEmptyItem) {
  Event e = Make("x", {{"a", Value::Int(1)}});
  EXPECT_EQ(Render(e, Spec(EventFormat::kTabText)),
            "event:x\thostname:vm\tstart_time:1795305644.195092\tend_time:1795305644.198736\t"
            "\tfield:a=1");
  FormatSpec s = Spec(EventFormat::kTabText);
  s.include.fields = false;
  EXPECT_EQ(Render(e, s),
            "event:x\thostname:vm\tstart_time:1795305644.195092\tend_time:1795305644.198736\t");
  Event empty = Make("x", {});
  EXPECT_EQ(Render(empty, Spec(EventFormat::kJson)),
            R"({"event":"x","hostname":"vm","start_time":1795305644.195092,)"
            R"("end_time":1795305644.198736,"categories":[],"fields":{}})");
}

// event_flatten(): global chain, then parent chain, each root first; a field
// seen again keeps its first position and takes the later value.
TEST(EventFormatTest, FlattensGlobalThenParentsThenEvent) {
  Event global_root =
      Make("", {{"g_root", Value::Int(1)}, {"shared", Value::String("groot")}}, {"service:lmtp"});
  Event global = Make("", {{"global", Value::Int(2)}, {"reason_code", Value::String("lmtp:data")}},
                      {"service:lmtp"});
  global.parent = &global_root;
  Event root = Make("", {{"user", Value::String("bob")}, {"duration", Value::Int(0)}},
                    {"service:lmtp", "lmtp"});
  Event mid = Make("", {{"shared", Value::String("mid")}, {"session", Value::String("S:R2")}},
                   {"smtp-server"});
  mid.parent = &root;
  Event e =
      Make("mail_delivery_finished",
           {{"message_size", Value::Int(369)}, {"duration", Value::Int(2382)}}, {"local-delivery"});
  e.parent = &mid;
  e.global = &global;
  EXPECT_EQ(Render(e, Spec(EventFormat::kJson)),
            R"({"event":"mail_delivery_finished","hostname":"vm",)"
            R"("start_time":1795305644.195092,"end_time":1795305644.198736,)"
            R"("categories":["service:lmtp","lmtp","smtp-server","local-delivery"],)"
            R"("fields":{"g_root":1,"shared":"mid","global":2,"reason_code":["lmtp:data"],)"
            R"("user":"bob","duration":2382,"session":"S:R2","message_size":369}})");
}

TEST(EventFormatTest, MetricFieldsAreLookedUpInTheirOrder) {
  Event parent = Make("", {{"user", Value::String("alice")}, {"bytes_out", Value::Int(7)}});
  Event e = Make("x", {{"bytes_in", Value::Int(5)}, {"bytes_out", Value::Int(311)}}, {"imap"});
  e.parent = &parent;
  const std::vector<std::string> fields = {"bytes_out", "missing", "user", "bytes_in"};
  FormatSpec json = Spec(EventFormat::kJson);
  json.fields = fields;
  FormatSpec tab = Spec(EventFormat::kTabText);
  tab.fields = fields;
  tab.include.hostname = tab.include.timestamps = tab.include.categories = false;
  json.include = tab.include;
  EXPECT_EQ(Render(e, json),
            R"({"event":"x","fields":{"bytes_out":311,"user":"alice","bytes_in":5}})");
  EXPECT_EQ(Render(e, tab), "event:x\tfield:bytes_out=311\tfield:user=alice\tfield:bytes_in=5");
  const std::vector<std::string> none = {"nope"};
  json.fields = none;
  EXPECT_EQ(Render(e, json), R"({"event":"x","fields":{}})");
}

TEST(EventFormatTest, ValueTypes) {
  Event e = Make("x", {{"i", Value::Int(-42)},
                       {"u", Value::Uint(18446744073709551615u)},
                       {"d", Value::Double(0.1)},
                       {"big", Value::Double(1e300)},
                       {"nan", Value::Double(std::nan(""))},
                       {"inf", Value::Double(-std::numeric_limits<double>::infinity())},
                       {"t", Value::Bool(true)},
                       {"f", Value::Bool(false)},
                       {"tv", Value::Tv({-5, 1})},
                       {"none", Value()}});
  FormatSpec json = Spec(EventFormat::kJson);
  json.include = ExporterInclude::None();
  json.include.fields = true;
  FormatSpec tab = Spec(EventFormat::kTabText);
  tab.include = json.include;
  EXPECT_EQ(Render(e, json),
            R"({"fields":{"i":-42,"u":18446744073709551615,"d":0.1,"big":1e+300,"nan":null,)"
            R"("inf":null,"t":true,"f":false,"tv":-5.000001}})");
  EXPECT_EQ(Render(e, tab),
            "field:i=-42\tfield:u=18446744073709551615\tfield:d=0.1\tfield:big=1e+300\t"
            "field:nan=nan\tfield:inf=-inf\tfield:t=true\tfield:f=false\tfield:tv=-5.000001");
}

// The columns of a record value (Dovecot old-stats' struct) are fields.
struct Pair {
  std::uint32_t count;
  std::uint32_t pad;
  std::uint64_t bytes;
};
constexpr RecordColumn kPairColumns[] = {
    {"count", RecordColumn::Type::kU32, offsetof(Pair, count)},
    {"bytes", RecordColumn::Type::kU64, offsetof(Pair, bytes)},
};
constexpr RecordSchema kPairSchema = {"pair", sizeof(Pair), kPairColumns, 2};

TEST(EventFormatTest, RecordColumnsAreFields) {
  const Pair pair = {3, 0, 1u << 20};
  Event e = Make("x", {{"a", Value::Int(1)}, {"mail", Value::Record(&kPairSchema, &pair)}});
  FormatSpec json = Spec(EventFormat::kJson);
  json.include = ExporterInclude::None();
  json.include.fields = true;
  EXPECT_EQ(Render(e, json), R"({"fields":{"a":1,"count":3,"bytes":1048576}})");
  const std::vector<std::string> fields = {"bytes"};
  json.fields = fields;
  EXPECT_EQ(Render(e, json), R"({"fields":{"bytes":1048576}})");
}

TEST(EventFormatTest, JsonEscapingFollowsDovecot) {
  struct Case {
    std::string_view in;
    std::string_view want;
  };
  const Case cases[] = {
      {"plain", "plain"},
      {"q\"b\\s/", "q\\\"b\\\\s/"},
      {"\b\f\n\r\t", "\\b\\f\\n\\r\\t"},
      {std::string_view("\x01\x1f\x00", 3), "\\u0001\\u001f\\u0000"},
      {"\x7f", "\x7f"},
      {"Gr\xc3\xbc\xc3\x9f"
       "e",
       "Gr\xc3\xbc\xc3\x9f"
       "e"},
      {"\xe2\x80\xa8|\xe2\x80\xa9", "\\u2028|\\u2029"},
      {"\xf0\x9f\x93\xa7", "\xf0\x9f\x93\xa7"},
      {"a\xffz", "a\xef\xbf\xbdz"},
      {"\xc3", "\xef\xbf\xbd"},                                                  // cut sequence
      {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                                  // overlong
      {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                  // surrogate
      {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // > U+10FFFF
      {"\xe0\x41",
       "\xef\xbf\xbd"
       "A"},
  };
  for (const Case& c : cases) {
    std::string out;
    AppendJsonEscaped(out, c.in);
    EXPECT_EQ(out, c.want);
  }
}

TEST(EventFormatTest, TabTextEscapesNamesKeysAndValues) {
  Event e = Make("a\tb", {{"k\001", Value::String("v\r\n")}}, {"c\tc"});
  FormatSpec s = Spec(EventFormat::kTabText);
  s.hostname = "h\th";
  s.include.timestamps = false;
  EXPECT_EQ(Render(e, s),
            "event:a\001tb\thostname:h\001th\tcategory:c\001tc\tfield:k\0011=v\001r\001n");
}

TEST(EventFormatTest, ListsAreSplitOnTab) {
  Event e = Make("x", {{"reason_code", Value::String("a\tb\001c")},
                       {"empty", Value::String("")},
                       {"reason", Value::String("not\ta list")}});
  FormatSpec json = Spec(EventFormat::kJson);
  json.include = ExporterInclude::None();
  json.include.fields = true;
  FormatSpec tab = Spec(EventFormat::kTabText);
  tab.include = json.include;
  EXPECT_EQ(Render(e, json),
            R"({"fields":{"reason_code":["a","b\u0001c"],"empty":"","reason":"not\ta list"}})");
  // Each element escaped, joined by TAB, escaped again.
  EXPECT_EQ(Render(e, tab),
            "field:reason_code=a\001tb\00111c\tfield:empty=\tfield:reason=not\001ta list");
  const std::string_view keys[] = {"empty"};
  EventFormatter custom(keys);
  std::string out;
  custom.Format(e, json, kNow, out);
  EXPECT_EQ(out, R"({"fields":{"reason_code":"a\tb\u0001c","empty":[],"reason":"not\ta list"}})");
}

// The log transport's cut: 1000 bytes of the value, then "...".
TEST(EventFormatTest, CutsLongValuesForTheLogTransport) {
  const std::string exact(1000, 'a');
  const std::string longer = std::string(999, 'b') + "\xc3\xbc" + "tail";
  const std::string tab_long = std::string(998, 'c') + "\t\t\t";
  const std::string list = longer + "\tshort";
  Event e = Make("x", {{"exact", Value::String(exact)},
                       {"longer", Value::String(longer)},
                       {"tabs", Value::String(tab_long)},
                       {"reason_code", Value::String(list)}});
  FormatSpec json = Spec(EventFormat::kJson);
  json.include = ExporterInclude::None();
  json.include.fields = true;
  json.max_field_bytes = kLogMaxFieldBytes;
  // The cut splits the UTF-8 sequence: its first byte becomes U+FFFD.
  const std::string cut = std::string(999, 'b') + "\xef\xbf\xbd...";
  EXPECT_EQ(Render(e, json), R"({"fields":{"exact":")" + exact + R"(","longer":")" + cut +
                                 R"(","tabs":")" + std::string(998, 'c') +
                                 R"(\t\t...","reason_code":[")" + cut + R"(","short"]}})");
  FormatSpec tab = Spec(EventFormat::kTabText);
  tab.include = json.include;
  tab.max_field_bytes = kLogMaxFieldBytes;
  // tab-text lists are not cut (append_strlist() ignores the limit).
  EXPECT_EQ(Render(e, tab), "field:exact=" + exact + "\tfield:longer=" + std::string(999, 'b') +
                                "\xc3...\tfield:tabs=" + std::string(998, 'c') +
                                "\001t\001t...\tfield:reason_code=" + longer + "\001tshort");
  json.max_field_bytes = 0;
  EXPECT_NE(Render(e, json).find("tail"), std::string::npos);
}

TEST(EventFormatTest, ExportTimes) {
  struct Case {
    Timeval tv;
    std::string_view unix_text;
    std::string_view rfc3339;
  };
  const Case cases[] = {
      {{1795305644, 195092}, "1795305644.195092", "2026-11-22T00:00:44.195092Z"},
      {{0, 0}, "0.000000", "1970-01-01T00:00:00.000000Z"},
      {{-1, 999999}, "-1.999999", "1969-12-31T23:59:59.999999Z"},
      {{951782400, 5}, "951782400.000005", "2000-02-29T00:00:00.000005Z"},
      {{253402300799, 999999}, "253402300799.999999", "9999-12-31T23:59:59.999999Z"},
      {{253402300800, 0}, "253402300800.000000", "10000-01-01T00:00:00.000000Z"},
      {{-62198755200, 0}, "-62198755200.000000", "-001-01-01T00:00:00.000000Z"},
  };
  for (const Case& c : cases) {
    std::string u, r;
    AppendExportTime(u, c.tv, TimeFormat::kUnix);
    AppendExportTime(r, c.tv, TimeFormat::kRfc3339);
    EXPECT_EQ(u, c.unix_text);
    EXPECT_EQ(r, c.rfc3339);
  }
  EXPECT_EQ(ToTimeval(At(-1, 999999)), (Timeval{-1, 999999}));
  EXPECT_EQ(ToTimeval(TimePoint(std::chrono::microseconds(-1))), (Timeval{-1, 999999}));
}

TEST(EventFormatTest, FollowsChainsOnlySoFar) {
  std::vector<Event> chain(Event::kMaxChain + 10);
  for (std::size_t i = 0; i < chain.size(); ++i) {
    chain[i] = Make("", {{"depth", Value::Uint(i)}});
    if (i > 0) chain[i].parent = &chain[i - 1];
  }
  chain[0].Add(InternName("root"), Value::Int(1));
  Event e = Make("x", {});
  e.parent = &chain.back();
  FormatSpec json = Spec(EventFormat::kJson);
  json.include = ExporterInclude::None();
  json.include.fields = true;
  // The last kMaxChain parents: the root-most ones are not reached.
  EXPECT_EQ(Render(e, json), R"({"fields":{"depth":)" + std::to_string(chain.size() - 1) + "}}");
}

TEST(EventFormatTest, SteadyStateAllocatesNothing) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocations are not counted under ASan";
  Event parent = Make("",
                      {{"user", Value::String("alice@example.com")},
                       {"session", Value::String("3V9HK9Jgju1/AAAB")}},
                      {"service:imap", "imap"});
  const std::string args(2000, 'x');
  Event e = Make("imap_command_finished",
                 {{"cmd_args", Value::String(args)},
                  {"reason_code", Value::String("imap:cmd_fetch\timap:fetch_size")},
                  {"last_run_time", Value::Tv({1795305644, 195081})},
                  {"d", Value::Double(0.5)},
                  {"bytes_in", Value::Int(60)}});
  e.parent = &parent;
  const std::vector<std::string> fields = {"bytes_in", "user"};
  EventFormatter formatter;
  std::string out;
  std::vector<FormatSpec> specs;
  for (EventFormat f : {EventFormat::kJson, EventFormat::kTabText}) {
    for (TimeFormat t : {TimeFormat::kUnix, TimeFormat::kRfc3339}) {
      FormatSpec s = Spec(f, t);
      specs.push_back(s);
      s.max_field_bytes = kLogMaxFieldBytes;
      specs.push_back(s);
      s.fields = fields;
      specs.push_back(s);
    }
  }
  for (const FormatSpec& s : specs) formatter.Format(e, s, kNow, out);  // warm up
  const long before = HeapAllocationsForTesting();
  for (int round = 0; round < 3; ++round) {
    for (const FormatSpec& s : specs) formatter.Format(e, s, kNow, out);
  }
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
}

}  // namespace
}  // namespace mailscope::exporter
