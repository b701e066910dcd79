#include "ingest/stalwart_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/time_zone.h"
#include "ingest/log_lines.h"
#include "ingest/log_time.h"

namespace mailscope::ingest {
namespace {

// The four lines of reference stalwart-telemetry.md §3.1.
constexpr std::string_view kMailFrom =
    "2025-06-15T10:20:53Z INFO SMTP MAIL FROM command (smtp.mail-from) listenerId = \"smtp\", "
    "localPort = 25, remoteIp = 203.0.113.5, remotePort = 51234, from = \"alice@example.net\"";
constexpr std::string_view kConnectionEnd =
    "2025-06-15T10:20:55Z DEBUG SMTP connection ended (smtp.connection-end) listenerId = "
    "\"smtp\", localPort = 25, remoteIp = 203.0.113.5, remotePort = 51234, elapsed = 2140ms";
constexpr std::string_view kDelivered =
    "2025-06-15T10:21:02Z INFO Message delivered (delivery.delivered) queueId = 318470021458, "
    "queueName = \"remote\", from = \"alice@example.org\", to = [\"carol@example.com\"], size = "
    "5120, total = 1, hostname = \"mx1.example.com\", to = \"carol@example.com\", code = 250, "
    "details = \"2.0.0 Ok: queued as 4Xyz\", elapsed = 812ms";
constexpr std::string_view kAuthFailed =
    "2025-06-15T10:23:20Z DEBUG Authentication failed (auth.failed) accountName = "
    "\"bob@example.org\", remoteIp = 198.51.100.7, causedBy = LDAP error (store.ldap-error) { "
    "reason = \"connection refused\" }";

// A value as text, type and unit included: "uint:812ms", "string:abc",
// "tv:1749982854", "none" for an absent field.
std::string Show(const Value& v) {
  auto with_unit = [&](std::string s) { return s + std::string(UnitName(v.unit())); };
  switch (v.type()) {
    case Value::Type::kNone:
      return "none";
    case Value::Type::kUint:
      return with_unit("uint:" + std::to_string(v.as_uint()));
    case Value::Type::kInt:
      return with_unit("int:" + std::to_string(v.as_int()));
    case Value::Type::kDouble:
      return "double:" + std::to_string(v.as_double());
    case Value::Type::kBool:
      return v.as_bool() ? "bool:true" : "bool:false";
    case Value::Type::kString:
      return "string:" + std::string(v.as_string());
    case Value::Type::kTimeval:
      return "tv:" + std::to_string(v.as_timeval().sec) + "." + std::to_string(v.as_timeval().usec);
    case Value::Type::kRecord:
      return "record";
  }
  return "?";
}

// One decoded line, copied out of the decoder: strings are kept as text, so
// the next Decode cannot change them.
struct Decoded {
  Status status;
  std::string name;
  Level level = Level::kInfo;
  std::int64_t time = 0;  // Unix seconds
  std::uint64_t span_id = 0;
  bool truncated = false;
  std::vector<std::pair<std::string, std::string>> fields;  // key, Show(value)

  std::string Field(std::string_view key) const {
    for (const auto& [k, v] : fields)
      if (k == key) return v;
    return "none";
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    for (const auto& f : fields) keys.push_back(f.first);
    return keys;
  }
};

Decoded Copy(const Status& status, const Event& e) {
  Decoded d;
  d.status = status;
  d.name = std::string(NameText(e.name));
  d.level = e.level;
  d.time = UnixSeconds(e.time);
  d.span_id = e.span_id;
  d.truncated = e.fields.truncated();
  for (const Field& f : e.fields) d.fields.emplace_back(NameText(f.key), Show(f.value));
  return d;
}

Decoded Decode(std::string_view line) {
  static StalwartLineDecoder decoder;
  Event e;
  e.source = Source::kStalwartLog;
  const Status st = decoder.Decode(line, e);
  return Copy(st, e);
}

// A line of test.value with the given keys.
std::string Line(std::string_view keys) {
  return "INFO Test value (test.value) " + std::string(keys);
}

TEST(StalwartLogTest, ReferenceLinesDecodeToTheirFields) {
  const Decoded mail_from = Decode(kMailFrom);
  ASSERT_TRUE(mail_from.status.ok()) << mail_from.status.ToString();
  EXPECT_EQ(mail_from.name, "smtp.mail-from");
  EXPECT_EQ(mail_from.level, Level::kInfo);
  EXPECT_EQ(mail_from.time, 1749982853);
  EXPECT_EQ(mail_from.Keys(), (std::vector<std::string>{"listenerId", "localPort", "remoteIp",
                                                        "remotePort", "from"}));
  EXPECT_EQ(mail_from.Field("listenerId"), "string:smtp");
  EXPECT_EQ(mail_from.Field("localPort"), "uint:25");
  EXPECT_EQ(mail_from.Field("remoteIp"), "string:203.0.113.5");
  EXPECT_EQ(mail_from.Field("remotePort"), "uint:51234");
  EXPECT_EQ(mail_from.Field("from"), "string:alice@example.net");

  const Decoded end = Decode(kConnectionEnd);
  ASSERT_TRUE(end.status.ok()) << end.status.ToString();
  EXPECT_EQ(end.name, "smtp.connection-end");
  EXPECT_EQ(end.level, Level::kDebug);
  EXPECT_EQ(end.time, 1749982855);
  EXPECT_EQ(end.Field("elapsed"), "uint:2140ms");
  EXPECT_EQ(end.fields.size(), 5u);

  // The span's `to` (an array) comes first and wins over the event's own.
  const Decoded delivered = Decode(kDelivered);
  ASSERT_TRUE(delivered.status.ok()) << delivered.status.ToString();
  EXPECT_EQ(delivered.name, "delivery.delivered");
  EXPECT_EQ(delivered.time, 1749982862);
  EXPECT_EQ(delivered.Keys(),
            (std::vector<std::string>{"queueId", "queueName", "from", "to", "size", "total",
                                      "hostname", "code", "details", "elapsed"}));
  EXPECT_EQ(delivered.Field("queueId"), "uint:318470021458");
  EXPECT_EQ(delivered.Field("queueName"), "string:remote");
  EXPECT_EQ(delivered.Field("to"), "string:carol@example.com");
  EXPECT_EQ(delivered.Field("size"), "uint:5120bytes");
  EXPECT_EQ(delivered.Field("total"), "uint:1");
  EXPECT_EQ(delivered.Field("hostname"), "string:mx1.example.com");
  EXPECT_EQ(delivered.Field("code"), "uint:250");
  EXPECT_EQ(delivered.Field("details"), "string:2.0.0 Ok: queued as 4Xyz");
  EXPECT_EQ(delivered.Field("elapsed"), "uint:812ms");

  const Decoded auth = Decode(kAuthFailed);
  ASSERT_TRUE(auth.status.ok()) << auth.status.ToString();
  EXPECT_EQ(auth.name, "auth.failed");
  EXPECT_EQ(auth.level, Level::kDebug);
  EXPECT_EQ(auth.time, 1749983000);
  EXPECT_EQ(auth.Keys(),
            (std::vector<std::string>{"accountName", "remoteIp", "causedBy", "causedBy.reason"}));
  EXPECT_EQ(auth.Field("accountName"), "string:bob@example.org");
  EXPECT_EQ(auth.Field("remoteIp"), "string:198.51.100.7");
  EXPECT_EQ(auth.Field("causedBy"), "string:store.ldap-error");
  EXPECT_EQ(auth.Field("causedBy.reason"), "string:connection refused");
}

TEST(StalwartLogTest, EveryValueKind) {
  struct Case {
    std::string_view keys;
    std::string_view key;
    std::string_view want;
  };
  const Case kCases[] = {
      // Numbers: units by key (stalwart_fields.h), `ms` for any key.
      {"value = 25", "value", "uint:25"},
      {"value = 0", "value", "uint:0"},
      {"value = 18446744073709551615", "value", "uint:18446744073709551615"},
      {"value = -3", "value", "int:-3"},
      {"value = -9223372036854775808", "value", "int:-9223372036854775808"},
      {"elapsed = 812", "elapsed", "uint:812ms"},
      {"size = 4096", "size", "uint:4096bytes"},
      {"size = -1", "size", "int:-1bytes"},
      {"value = 2140ms", "value", "uint:2140ms"},
      {"elapsed = 0ms", "elapsed", "uint:0ms"},
      // Floats as Rust prints them; a whole float too big for 64 bits.
      {"value = 1.25", "value", "double:1.250000"},
      {"value = -0.5", "value", "double:-0.500000"},
      {"value = 18446744073709551616", "value", "double:18446744073709551616.000000"},
      {"value = inf", "value", "double:inf"},
      {"value = -inf", "value", "double:-inf"},
      {"value = true", "value", "bool:true"},
      {"value = false", "value", "bool:false"},
      // Strings, with every escape Stalwart writes.
      {"value = \"plain\"", "value", "string:plain"},
      {"value = \"\"", "value", "string:"},
      {R"(value = "a\tb\\c\"d\re\nf\x1bg")", "value", "string:a\tb\\c\"d\re\nf\x1bg"},
      {R"(value = "odd \q \x4")", "value", "string:odd \\q \\x4"},
      {"value = \"with, comma = inside\", next = 1", "value", "string:with, comma = inside"},
      {"value = \"(paren.thesis) { x = 1 }\"", "value", "string:(paren.thesis) { x = 1 }"},
      // 0.12 left quotes inside a string unescaped.
      {"value = \"say \"hi\" now\", next = 1", "value", "string:say \"hi\" now"},
      // Times, unquoted: for timestamp keys and any other.
      {"nextRetry = 2025-06-15T10:20:54Z", "nextRetry", "tv:1749982854.0"},
      {"expires = 2025-06-20T10:20:54Z", "expires", "tv:1750414854.0"},
      {"value = 2025-06-15T10:20:54Z", "value", "tv:1749982854.0"},
      {"value = base64:aGkh", "value", "string:aGkh"},
      {"value = base64:", "value", "string:"},
      {"remoteIp = 203.0.113.5", "remoteIp", "string:203.0.113.5"},
      {"remoteIp = 2001:db8::1", "remoteIp", "string:2001:db8::1"},
      {"remoteIp = ::1", "remoteIp", "string:::1"},
      {"remoteIp = fe80::1", "remoteIp", "string:fe80::1"},
      // A constant older releases printed without quotes.
      {"value = lmtp", "value", "string:lmtp"},
      {"value = two words, next = 1", "value", "string:two words"},
      // Arrays: element texts joined by TAB.
      {"to = [\"bob@example.org\"]", "to", "string:bob@example.org"},
      {"to = [\"a@x\", \"b@y\"]", "to", "string:a@x\tb@y"},
      {"to = []", "to", "string:"},
      {"value = [1, -2, 3ms, 1.5, true, base64:aGkh, 10.0.0.1, (null), 2025-06-15T10:20:54Z]",
       "value", "string:1\t-2\t3\t1.5\ttrue\taGkh\t10.0.0.1\t\t2025-06-15T10:20:54Z"},
      {"value = [[1, 2], [], 3]", "value", "string:1\t2\t\t3"},
      {R"(value = ["x, y", "a\tb", "q\"q"])", "value", "string:x, y\ta\tb\tq\"q"},
      {"value = [Not found (store.not-found), Error (queue.queue-dsn) { reason = \"r\" }]", "value",
       "string:store.not-found\tqueue.dsn-queued"},
      // Nested events: the key holds the type.
      {"causedBy = LDAP error (store.ldap-error)", "causedBy", "string:store.ldap-error"},
      {"causedBy = Error (store.ldap-error) {}", "causedBy", "string:store.ldap-error"},
      {"causedBy = Error (store.ldap-error) { }", "causedBy", "string:store.ldap-error"},
      {"causedBy = (store.ldap-error) { code = 7 }", "causedBy.code", "uint:7"},
      {"causedBy = Failed (temporary) (store.io-error) { elapsed = 5 }", "causedBy.elapsed",
       "uint:5ms"},
      {"causedBy = Error (store.ldap-error) { reason = \"a, b = c\", code = 1 }", "causedBy.reason",
       "string:a, b = c"},
      // None: no field.
      {"value = (null)", "value", "none"},
      {"value = (null), next = 1", "value", "none"},
  };
  for (const Case& c : kCases) {
    const Decoded d = Decode(Line(c.keys));
    ASSERT_TRUE(d.status.ok()) << c.keys << ": " << d.status.ToString();
    EXPECT_EQ(d.name, "test.value") << c.keys;
    EXPECT_EQ(d.Field(c.key), c.want) << c.keys;
  }
  // NaN is not equal to itself: checked by its text.
  const Decoded nan = Decode(Line("value = NaN"));
  ASSERT_TRUE(nan.status.ok());
  EXPECT_EQ(nan.Field("value").substr(0, 7), "double:");
  EXPECT_NE(nan.Field("value").find("nan"), std::string::npos) << nan.Field("value");
}

TEST(StalwartLogTest, NullAddsNoFieldAndLaterKeysStay) {
  const Decoded d = Decode(Line("value = (null), to = (null), to = \"b\", total = [(null)]"));
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.Keys(), (std::vector<std::string>{"to", "total"}));
  EXPECT_EQ(d.Field("to"), "string:b");
  EXPECT_EQ(d.Field("total"), "string:");
}

TEST(StalwartLogTest, RepeatedKeysKeepTheFirst) {
  const Decoded d = Decode(
      Line("to = [\"a@x\"], code = 1, to = \"b@y\", code = 2, causedBy = A (store.ldap-error) { "
           "reason = \"first\", reason = \"again\" }, causedBy = B (store.io-error) { reason = "
           "\"second\", code = 5 }, details = \"after\""));
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.Keys(),
            (std::vector<std::string>{"to", "code", "causedBy", "causedBy.reason", "details"}));
  EXPECT_EQ(d.Field("to"), "string:a@x");
  EXPECT_EQ(d.Field("code"), "uint:1");
  EXPECT_EQ(d.Field("causedBy"), "string:store.ldap-error");
  EXPECT_EQ(d.Field("causedBy.reason"), "string:first");
  EXPECT_EQ(d.Field("details"), "string:after");
}

TEST(StalwartLogTest, NestedEventsRecurse) {
  const Decoded d = Decode(Line(
      "causedBy = Outer (store.ldap-error) { reason = \"r\", causedBy = Inner (store.io-error) { "
      "code = 5, details = \"d\" }, size = 9 }, total = 2"));
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.Keys(),
            (std::vector<std::string>{"causedBy", "causedBy.reason", "causedBy.causedBy",
                                      "causedBy.causedBy.code", "causedBy.causedBy.details",
                                      "causedBy.size", "total"}));
  EXPECT_EQ(d.Field("causedBy.causedBy"), "string:store.io-error");
  EXPECT_EQ(d.Field("causedBy.causedBy.code"), "uint:5");
  EXPECT_EQ(d.Field("causedBy.size"), "uint:9bytes");
  EXPECT_EQ(d.Field("total"), "uint:2");
}

// `causedBy = E (a.b) { causedBy = E (a.b) { ... { code = 1 } ... } }`,
// `levels` events deep.
std::string NestedLine(int levels) {
  std::string keys = "code = 1";
  for (int i = 0; i < levels; ++i) keys = "causedBy = E (store.io-error) { " + keys + " }";
  return Line(keys);
}
std::string NestedArrays(int levels) {
  const auto n = static_cast<std::size_t>(levels);
  return Line("value = " + std::string(n, '[') + "1" + std::string(n, ']'));
}

TEST(StalwartLogTest, NestingDeeperThanTheLimitIsAnError) {
  const Decoded ok = Decode(NestedLine(kStalwartMaxNesting));
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  std::string deepest = "causedBy";
  for (int i = 1; i < kStalwartMaxNesting; ++i) deepest += ".causedBy";
  EXPECT_EQ(ok.Field(deepest + ".code"), "uint:1");

  const Decoded deep = Decode(NestedLine(kStalwartMaxNesting + 1));
  EXPECT_FALSE(deep.status.ok());
  EXPECT_EQ(deep.status.reason(), "too_deep");
  EXPECT_EQ(deep.name, "");
  EXPECT_TRUE(deep.fields.empty());

  const Decoded arrays = Decode(NestedArrays(kStalwartMaxNesting));
  ASSERT_TRUE(arrays.status.ok()) << arrays.status.ToString();
  EXPECT_EQ(arrays.Field("value"), "string:1");
  EXPECT_EQ(Decode(NestedArrays(kStalwartMaxNesting + 1)).status.reason(), "too_deep");
  EXPECT_EQ(Decode(NestedArrays(100000)).status.reason(), "too_deep");
}

TEST(StalwartLogTest, AnsiColoursAreRemovedWhereverTheyStand) {
  // As a tracer with ansi = true writes it: time, level, description and
  // key names wrapped.
  const std::string line =
      "\x1b[37m2025-06-15T10:20:53Z\x1b[0m \x1b[32;1mINFO\x1b[0m \x1b[37;1mSMTP MAIL FROM "
      "command\x1b[0m (smtp.mail-from) \x1b[36mlistenerId\x1b[0m = \"smtp\", "
      "\x1b[36mlocalPort\x1b[0m = 25, \x1b[36mfrom\x1b[0m = \"alice@example.net\"";
  const Decoded d = Decode(line);
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.name, "smtp.mail-from");
  EXPECT_EQ(d.level, Level::kInfo);
  EXPECT_EQ(d.time, 1749982853);
  EXPECT_EQ(d.Keys(), (std::vector<std::string>{"listenerId", "localPort", "from"}));
  EXPECT_EQ(d.Field("from"), "string:alice@example.net");

  // Other sequences go too; a lone ESC stays text.
  const Decoded other = Decode("\x1b[2K\x1b[1;31mERROR\x1b[m Bad (a.b) value = \"x\x1by\"");
  ASSERT_TRUE(other.status.ok()) << other.status.ToString();
  EXPECT_EQ(other.level, Level::kError);
  EXPECT_EQ(other.Field("value"), "string:x\x1by");
}

TEST(StalwartLogTest, LevelsAndLinesWithoutKeys) {
  const std::pair<std::string_view, Level> kLevels[] = {
      {"TRACE", Level::kTrace}, {"DEBUG", Level::kDebug}, {"INFO", Level::kInfo},
      {"WARN", Level::kWarn},   {"ERROR", Level::kError},
  };
  for (const auto& [word, level] : kLevels) {
    const Decoded d = Decode(std::string(word) + " Listener started (network.listen-start) ");
    ASSERT_TRUE(d.status.ok()) << word << ": " << d.status.ToString();
    EXPECT_EQ(d.level, level) << word;
    EXPECT_EQ(d.name, "network.listen-start");
    EXPECT_TRUE(d.fields.empty());
  }
  // A multiline log's header line: the keys follow on lines of their own.
  const Decoded header =
      Decode("2025-06-15T10:20:53Z INFO SMTP MAIL FROM command (smtp.mail-from)");
  ASSERT_TRUE(header.status.ok()) << header.status.ToString();
  EXPECT_EQ(header.name, "smtp.mail-from");
  EXPECT_TRUE(header.fields.empty());
  EXPECT_EQ(Decode("\tlistenerId = \"smtp\"").status.reason(), "multiline");
  EXPECT_EQ(Decode("\t\treason = \"connection refused\"").status.reason(), "multiline");
}

TEST(StalwartLogTest, TheTypeIsTheGroupBeforeTheKeys) {
  struct Case {
    std::string_view line;
    std::string_view type;
    std::size_t fields;
  };
  const Case kCases[] = {
      {"INFO Failed (temporary) to deliver (delivery.attempt-end) elapsed = 5ms",
       "delivery.attempt-end", 1},
      {"INFO See (a.b) for details (delivery.completed) total = 1", "delivery.completed", 1},
      {"INFO Two (a.b) (delivery.completed)", "delivery.completed", 0},
      {"INFO Odd(x.y) text (delivery.completed)", "delivery.completed", 0},
      {"INFO  (delivery.completed) total = 1", "delivery.completed", 1},
      {"INFO (delivery.completed) total = 1", "delivery.completed", 1},
      {"INFO Value (delivery.completed) details = \"(smtp.ehlo) x = 1\"", "delivery.completed", 1},
      {"INFO Nested (delivery.completed) causedBy = E (store.io-error)", "delivery.completed", 1},
      {"INFO Dash (message-ingest.ham) size = 1", "message-ingest.ham", 1},
      {"INFO Digits (s3.error-2) size = 1", "s3.error-2", 1},
  };
  for (const Case& c : kCases) {
    const Decoded d = Decode(c.line);
    ASSERT_TRUE(d.status.ok()) << c.line << ": " << d.status.ToString();
    EXPECT_EQ(d.name, c.type) << c.line;
    EXPECT_EQ(d.fields.size(), c.fields) << c.line;
  }
}

TEST(StalwartLogTest, MalformedLinesAreErrorsWithReasons) {
  struct Case {
    std::string_view line;
    std::string_view reason;
  };
  const Case kCases[] = {
      {"", "bad_line"},
      {"   ", "bad_line"},
      {"2025-06-15T10:20:53Z", "bad_line"},
      {"2025-13-15T10:20:53Z INFO Bad month (a.b)", "bad_timestamp"},
      {"2025-06-15T25:20:53Z INFO Bad hour (a.b)", "bad_timestamp"},
      {"2025-06-15T10:20:53Zx INFO Glued (a.b)", "bad_timestamp"},
      {"NOTICE Not a level (a.b)", "bad_level"},
      {"info Lower case (a.b)", "bad_level"},
      {"INFO", "bad_level"},
      {"2025-06-15T10:20:53Z Missing level (a.b)", "bad_level"},
      {"INFO No type at all", "no_type"},
      {"INFO Upper case (Smtp.Ehlo)", "no_type"},
      {"INFO No dot (smtpehlo)", "no_type"},
      {"INFO Two dots (a.b.c)", "no_type"},
      {"INFO Empty part (.b)", "no_type"},
      {"INFO Unclosed (a.b", "no_type"},
      {"INFO Text after the type (a.b) garbage", "no_type"},
      {"INFO Bad (a.b) value = \"unterminated", "bad_value"},
      {"INFO Bad (a.b) value = \"ends with escape\\\"", "bad_value"},
      {"INFO Bad (a.b) value = [1, 2", "bad_value"},
      {"INFO Bad (a.b) value = [1, 2]x", "bad_value"},
      {"INFO Bad (a.b) value = [1, , 2]", "bad_value"},
      {"INFO Bad (a.b) value = [", "bad_value"},
      {"INFO Bad (a.b) value = , next = 1", "bad_value"},
      {"INFO Bad (a.b) value = E (c.d) { code = 1", "bad_value"},
      {"INFO Bad (a.b) value = E (c.d) { code = 1 }x", "bad_value"},
      {"INFO Bad (a.b) value = E (c.d) { = 1 }", "bad_key"},
      {"INFO Bad (a.b) value = E (c.d) { code: 1 }", "bad_key"},
      {"\tlistenerId = \"smtp\"", "multiline"},
  };
  for (const Case& c : kCases) {
    const Decoded d = Decode(c.line);
    EXPECT_FALSE(d.status.ok()) << c.line;
    EXPECT_EQ(d.status.reason(), c.reason) << c.line << ": " << d.status.ToString();
    EXPECT_EQ(d.status.code(), StatusCode::kInvalidArgument) << c.line;
    EXPECT_EQ(d.name, "") << c.line;
    EXPECT_TRUE(d.fields.empty()) << c.line;
  }
}

TEST(StalwartLogTest, BothNameErasMapToTheV016Names) {
  const std::pair<std::string_view, std::string_view> kNames[] = {
      {"queue.queue-message", "queue.message-queued"},
      {"queue.message-queued", "queue.message-queued"},
      {"queue.queue-message-authenticated", "queue.authenticated-message-queued"},
      {"queue.queue-dsn", "queue.dsn-queued"},
      {"queue.queue-report", "queue.report-queued"},
      {"queue.queue-autogenerated", "queue.autogenerated-queued"},
      {"message-ingest.fts-index", "message-ingest.search-index"},
      {"auth.missing-totp", "auth.mfa-required"},
      {"auth.mfa-required", "auth.mfa-required"},
      // Not in the catalog: kept as written.
      {"custom.new-event", "custom.new-event"},
  };
  for (const auto& [type, want] : kNames) {
    const std::string line = "INFO Something (" + std::string(type) +
                             ") queueId = 1, causedBy = E (" + std::string(type) + ")";
    const Decoded d = Decode(line);
    ASSERT_TRUE(d.status.ok()) << line << ": " << d.status.ToString();
    EXPECT_EQ(d.name, want) << type;
    EXPECT_EQ(d.Field("causedBy"), "string:" + std::string(want)) << type;
  }
}

TEST(StalwartLogTest, LongLines) {
  // A string of 200,000 bytes, half of them escapes.
  std::string body;
  std::string want;
  for (int i = 0; i < 50000; ++i) {
    body += "ab\\n";
    want += "ab\n";
  }
  const Decoded text = Decode(Line("details = \"" + body + "\", code = 1"));
  ASSERT_TRUE(text.status.ok()) << text.status.ToString();
  EXPECT_EQ(text.Field("details"), "string:" + want);
  EXPECT_EQ(text.Field("code"), "uint:1");

  // An array of 20,000 elements.
  std::string array = "[";
  std::string joined;
  for (int i = 0; i < 20000; ++i) {
    if (i > 0) {
      array += ", ";
      joined += '\t';
    }
    array += "\"r" + std::to_string(i) + "@x\"";
    joined += "r" + std::to_string(i) + "@x";
  }
  array += "]";
  const Decoded list = Decode(Line("to = " + array + ", total = 20000"));
  ASSERT_TRUE(list.status.ok()) << list.status.ToString();
  EXPECT_EQ(list.Field("to"), "string:" + joined);
  EXPECT_EQ(list.Field("total"), "uint:20000");

  // More keys than an event holds: the rest are dropped, the list marked.
  std::string keys;
  for (int i = 0; i < 300; ++i) {
    if (i > 0) keys += ", ";
    keys += "key" + std::to_string(i) + " = " + std::to_string(i);
  }
  const Decoded many = Decode(Line(keys));
  ASSERT_TRUE(many.status.ok()) << many.status.ToString();
  EXPECT_EQ(many.fields.size(), FieldList::kCapacity);
  EXPECT_TRUE(many.truncated);
  EXPECT_EQ(many.Field("key0"), "uint:0");
}

TEST(StalwartLogTest, StringsStayValidUntilTheNextLine) {
  // Every string kind in one event, read from the Event itself.
  StalwartLineDecoder decoder;
  Event e;
  const std::string line = Line(
      "a = \"x\\ty\", b = [\"p\", \"q\"], c = plain, d = base64:aGkh, e = \"raw\", f = E "
      "(store.io-error)");
  ASSERT_TRUE(decoder.Decode(line, e).ok());
  std::vector<std::string> got;
  for (const Field& f : e.fields) got.emplace_back(f.value.as_string());
  EXPECT_EQ(got,
            (std::vector<std::string>{"x\ty", "p\tq", "plain", "aGkh", "raw", "store.io-error"}));
}

TEST(StalwartLogTest, SpanIdIsTheEventsNotAField) {
  const Decoded d = Decode(Line("spanId = 8340150942317542113, from = \"a@x\""));
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.span_id, 8340150942317542113u);
  EXPECT_EQ(d.Keys(), (std::vector<std::string>{"from"}));
}

TEST(StalwartLogTest, NewNamesAreBudgeted) {
  StalwartLineDecoder decoder;
  Event e;
  Status st;
  std::uint32_t n = 0;
  for (; n <= StalwartLineDecoder::kMaxNewNames; ++n) {
    st = decoder.Decode("INFO Budget (budget-test.t" + std::to_string(n) + ")", e);
    if (!st.ok()) break;
  }
  EXPECT_EQ(n, StalwartLineDecoder::kMaxNewNames);
  EXPECT_EQ(st.reason(), "client_name_budget") << st.ToString();
  EXPECT_EQ(e.name, kNoName);
  // Names it has are still found.
  EXPECT_TRUE(decoder.Decode("INFO Budget (budget-test.t0)", e).ok());
  EXPECT_TRUE(decoder.Decode("INFO Known (smtp.ehlo)", e).ok());
  EXPECT_EQ(decoder.Decode("INFO Budget (budget-test.t0) brandNewKey = 1", e).reason(),
            "client_name_budget");
}

// --- Through the log machinery ----------------------------------------------

const TimePoint kFallback(std::chrono::seconds(1'700'000'000));

TEST(StalwartLogTest, LogTimeParserTakesTheRfc3339Prefix) {
  LogTimeParser parser(TimeZone::Utc(), kFallback);
  const std::optional<LogTime> t = parser.Parse(kMailFrom);
  ASSERT_TRUE(t.has_value()) << parser.error();
  EXPECT_EQ(t->kind, LogTimeKind::kIso8601);
  EXPECT_EQ(UnixSeconds(t->time), 1749982853);
  // Read as rsyslog's form, the level is taken for the host: the Stalwart
  // format asks LogLines for no syslog header (iso8601_syslog_header).
  EXPECT_EQ(t->host, "INFO");
}

TEST(StalwartLogTest, LogLinesDecodeTheReferenceLines) {
  std::unique_ptr<LogLineFormat> format = MakeLogLineFormat("stalwart");
  ASSERT_NE(format, nullptr);
  EXPECT_EQ(format->name(), "stalwart");
  EXPECT_EQ(format->source(), Source::kStalwartLog);
  LogLines lines(std::move(format), TimeZone::Utc(), kFallback);
  Event e;
  const std::pair<std::string_view, std::int64_t> kLines[] = {
      {kMailFrom, 1749982853},
      {kConnectionEnd, 1749982855},
      {kDelivered, 1749982862},
      {kAuthFailed, 1749983000},
  };
  for (const auto& [line, time] : kLines) {
    const Status st = lines.Decode(line, kFallback, e);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(e.source, Source::kStalwartLog);
    EXPECT_EQ(UnixSeconds(e.time), time);
    // The same event as from the decoder alone.
    const Decoded via_lines = Copy(st, e);
    const Decoded direct = Decode(line);
    EXPECT_EQ(via_lines.name, direct.name);
    EXPECT_EQ(via_lines.level, direct.level);
    EXPECT_EQ(via_lines.fields, direct.fields);
  }
  // Levels survive the syslog-shaped prefix.
  ASSERT_TRUE(lines.Decode(kConnectionEnd, kFallback, e).ok());
  EXPECT_EQ(e.level, Level::kDebug);
  EXPECT_EQ(NameText(e.name), "smtp.connection-end");

  // Colours hide the time from the prefix parser; the decoder reads it.
  ASSERT_TRUE(lines
                  .Decode("\x1b[37m2025-06-15T10:20:54Z\x1b[0m \x1b[34;1mDEBUG\x1b[0m x (a.b)",
                          kFallback, e)
                  .ok());
  EXPECT_EQ(UnixSeconds(e.time), 1749982854);
  EXPECT_EQ(e.level, Level::kDebug);
  // A line without a time gets the fallback.
  ASSERT_TRUE(lines.Decode("WARN x (a.b)", kFallback, e).ok());
  EXPECT_EQ(e.time, kFallback);
  EXPECT_EQ(e.level, Level::kWarn);

  EXPECT_FALSE(lines.Decode("\tlistenerId = \"smtp\"", kFallback, e).ok());
  EXPECT_FALSE(lines.Decode("2025-06-15T10:20:54Z INFO nothing", kFallback, e).ok());
  const LogLineFigures& f = lines.figures();
  EXPECT_EQ(f.parsed, 7u);
  EXPECT_EQ(f.unparsed, 2u);
  EXPECT_EQ(f.unparsed_by_reason.at("multiline"), 1u);
  EXPECT_EQ(f.unparsed_by_reason.at("no_type"), 1u);
}

TEST(StalwartLogTest, StateIsEmpty) {
  LogLines lines(MakeLogLineFormat("stalwart"), TimeZone::Utc(), kFallback);
  EXPECT_EQ(lines.format().SaveState(), "");
  EXPECT_TRUE(lines.format().LoadState("").ok());
  const Status bad = lines.format().LoadState("sessions 3\n");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("stalwart"), std::string::npos) << bad.ToString();
  const std::string saved = lines.SaveState();
  LogLines again(MakeLogLineFormat("stalwart"), TimeZone::Utc(), kFallback);
  EXPECT_TRUE(again.LoadState(saved).ok());
  EXPECT_EQ(again.SaveState(), saved);
  EXPECT_EQ(lines.format().in_flight().sessions, 0u);
}

TEST(StalwartLogTest, SniffRecognisesAStalwartHead) {
  const std::string head = std::string(kMailFrom) + "\n" + std::string(kConnectionEnd) + "\n";
  EXPECT_EQ(SniffLogFormat(head), "stalwart");
  EXPECT_EQ(SniffLogFormat(kMailFrom), "stalwart");
  EXPECT_EQ(SniffLogFormat("\x1b[37m2025-06-15T10:20:53Z\x1b[0m \x1b[32;1mINFO\x1b[0m "
                           "\x1b[37;1mListener started\x1b[0m (network.listen-start) \n"),
            "stalwart");
  // qmail's heads still read as qmail; neither is nothing.
  EXPECT_EQ(SniffLogFormat("@4000000065a3f1c22f0b6a1c qmail-smtpd: pid 123 Accept::SPF::Pass\n"),
            "qmail");
  EXPECT_EQ(SniffLogFormat("2025-06-15T10:20:53Z mail qmail: 1276913544.622077 new msg 7\n"),
            "qmail");
  EXPECT_EQ(SniffLogFormat("2025-06-15T10:20:53Z INFO no type here\n"), "");
  EXPECT_EQ(SniffLogFormat("2025-06-15 10:20:53 INFO Local time (a.b)\n"), "");
  EXPECT_EQ(SniffLogFormat("hello\n"), "");
  EXPECT_TRUE(LooksLikeStalwartLogLine(kAuthFailed));
  EXPECT_FALSE(LooksLikeStalwartLogLine("\tlistenerId = \"smtp\""));
}

}  // namespace
}  // namespace mailscope::ingest
