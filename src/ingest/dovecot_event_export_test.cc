#include "ingest/dovecot_event_export.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/allocation_counter_testing.h"
#include "ingest/dovecot_captures_testing.h"

namespace mailscope::ingest {
namespace {

using Format = EventExportFormat;

constexpr TimePoint kReceived{std::chrono::seconds(1'800'000'000)};

TimePoint At(std::int64_t sec, std::int64_t usec) {
  return TimePoint(std::chrono::seconds(sec) + std::chrono::microseconds(usec));
}

Value Get(const Event& e, std::string_view key) {
  const Field* f = e.Find(FindName(key));
  return f != nullptr ? f->value : Value();
}

std::vector<std::string> Keys(const Event& e) {
  std::vector<std::string> keys;
  for (const Field& f : e.fields) keys.emplace_back(NameText(f.key));
  return keys;
}

std::vector<std::string> Categories(const Event& e) {
  std::vector<std::string> out;
  for (NameId c : e.categories) out.emplace_back(NameText(c));
  return out;
}

// --- Real bodies --------------------------------------------------------

TEST(DovecotEventExportTest, EveryCapturedJsonBodyDecodes) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-json.txt");
  ASSERT_EQ(requests.size(), 164u);
  DovecotEventExportDecoder decoder;
  for (const CapturedRequest& r : requests) {
    ASSERT_EQ(r.content_type, "application/json");
    Status st = decoder.Decode(r.content_type, r.body, kReceived);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << r.body;
    EXPECT_EQ(decoder.event().source, Source::kDovecot);
    EXPECT_TRUE(decoder.parts().name && decoder.parts().fields);
  }
}

TEST(DovecotEventExportTest, DecodesAnAuthClientRequest) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-json.txt");
  ASSERT_FALSE(requests.empty());
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(decoder.Decode(Format::kJson, requests[0].body, kReceived).ok());
  const Event& e = decoder.event();
  EXPECT_EQ(NameText(e.name), "auth_client_request_finished");
  EXPECT_EQ(e.level, Level::kDebug);
  EXPECT_EQ(e.time, At(1795305644, 186405));  // 2026-11-22T00:00:44.186405Z
  EXPECT_EQ(decoder.end_time(), At(1795305644, 187226));
  EXPECT_EQ(decoder.hostname(), "vm");
  EXPECT_EQ(Categories(e), (std::vector<std::string>{"auth-client", "service:imap-login"}));
  EXPECT_EQ(Keys(e), (std::vector<std::string>{
                         "duration", "id", "mechanism", "service", "transport", "session",
                         "local_ip", "remote_ip", "local_port", "remote_port", "real_local_ip",
                         "real_remote_ip", "real_local_port", "real_remote_port", "user"}));
  EXPECT_EQ(Get(e, "duration").type(), Value::Type::kInt);
  EXPECT_EQ(Get(e, "duration").as_int(), 220);
  EXPECT_EQ(Get(e, "remote_port").as_int(), 60810);
  EXPECT_EQ(Get(e, "mechanism").type(), Value::Type::kString);
  EXPECT_EQ(Get(e, "user").as_string(), "carol@example.com");
  const EventExportParts& p = decoder.parts();
  EXPECT_TRUE(p.name && p.hostname && p.timestamps && p.categories && p.fields);
}

// A command exported with all its fields: the string list becomes a
// TAB-joined string, the rfc3339 timeval field stays a string, JSON escapes
// are undone.
TEST(DovecotEventExportTest, DecodesListsEscapesAndTimevalStrings) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-json.txt");
  DovecotEventExportDecoder decoder;
  bool seen = false;
  for (const CapturedRequest& r : requests) {
    if (r.body.find("\"cmd_tag\":\"LBDD19\"") == std::string::npos) continue;
    ASSERT_TRUE(decoder.Decode(Format::kJson, r.body, kReceived).ok());
    const Event& e = decoder.event();
    EXPECT_EQ(Get(e, "cmd_args").as_string(), "SUBJECT \"tab\there\"");
    EXPECT_EQ(Get(e, "reason_code").as_string(), "imap:cmd_search");
    EXPECT_EQ(Get(e, "last_run_time").as_string(), "2026-11-22T00:00:45.838133Z");
    EXPECT_EQ(Get(e, "bytes_in").as_int(), 20);
    seen = true;
  }
  EXPECT_TRUE(seen);
}

TEST(DovecotEventExportTest, DecodesUtf8AsIs) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-json.txt");
  DovecotEventExportDecoder decoder;
  for (const CapturedRequest& r : requests) {
    if (r.body.find("LBDD20") == std::string::npos) continue;
    ASSERT_TRUE(decoder.Decode(Format::kJson, r.body, kReceived).ok());
    EXPECT_EQ(Get(decoder.event(), "cmd_args").as_string(),
              "CHARSET UTF-8 SUBJECT \"Gr\xc3\xbc\xc3\x9f"
              "e\"");
    return;
  }
  FAIL() << "LBDD20 not in the capture";
}

TEST(DovecotEventExportTest, EveryCapturedTabTextBodyDecodes) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-tabtext.txt");
  ASSERT_EQ(requests.size(), 133u);
  DovecotEventExportDecoder decoder;
  for (const CapturedRequest& r : requests) {
    ASSERT_EQ(r.content_type, "text/plain");
    Status st = decoder.Decode(r.content_type, r.body, kReceived);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << r.body;
    EXPECT_EQ(NameText(decoder.event().name), "imap_command_finished");
  }
}

TEST(DovecotEventExportTest, DecodesATabTextCommand) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-tabtext.txt");
  ASSERT_FALSE(requests.empty());
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(decoder.Decode(Format::kTabText, requests[0].body, kReceived).ok());
  const Event& e = decoder.event();
  EXPECT_EQ(e.time, At(1795305644, 195092));
  EXPECT_EQ(decoder.end_time(), At(1795305644, 198736));
  EXPECT_EQ(decoder.hostname(), "vm");
  EXPECT_EQ(Categories(e), (std::vector<std::string>{"service:imap", "imap"}));
  EXPECT_EQ(Keys(e).front(), "user");
  EXPECT_EQ(Keys(e).size(), 21u);
  EXPECT_EQ(Get(e, "local_port").type(), Value::Type::kInt);
  EXPECT_EQ(Get(e, "local_port").as_int(), 10143);
  EXPECT_EQ(Get(e, "duration").as_int(), 3350);
  EXPECT_EQ(Get(e, "tagged_reply").as_string(), "OK [READ-WRITE] Select completed");
  // tab-text values are strings unless they are integers.
  EXPECT_EQ(Get(e, "last_run_time").type(), Value::Type::kString);
  EXPECT_EQ(Get(e, "last_run_time").as_string(), "1795305644.195081");
  EXPECT_EQ(Get(e, "local_ip").as_string(), "127.0.0.1");
}

TEST(DovecotEventExportTest, TabTextListsAndEscapes) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-tabtext.txt");
  DovecotEventExportDecoder decoder;
  int seen = 0;
  for (const CapturedRequest& r : requests) {
    if (r.body.find("cmd_tag=OMEJ9\t") != std::string::npos) {
      ASSERT_TRUE(decoder.Decode(Format::kTabText, r.body, kReceived).ok());
      EXPECT_EQ(Get(decoder.event(), "reason_code").as_string(),
                "imap:cmd_fetch\timap:fetch_header_fields\timap:fetch_size");
      ++seen;
    } else if (r.body.find("cmd_tag=LBDD19\t") != std::string::npos) {
      ASSERT_TRUE(decoder.Decode(Format::kTabText, r.body, kReceived).ok());
      EXPECT_EQ(Get(decoder.event(), "cmd_args").as_string(), "SUBJECT \"tab\there\"");
      ++seen;
    }
  }
  EXPECT_EQ(seen, 2);
}

TEST(DovecotEventExportTest, EveryLogPayloadDecodes) {
  const auto payloads = ReadCapturedLogPayloadsForTesting();
  DovecotEventExportDecoder decoder;
  int json = 0, tab = 0;
  for (const std::string& p : payloads) {
    const bool is_json = p.starts_with("{");
    Status st = decoder.Decode(is_json ? Format::kJson : Format::kTabText, p, kReceived);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << p;
    EXPECT_EQ(NameText(decoder.event().name), "auth_request_finished");
    if (is_json) {
      ++json;
      EXPECT_TRUE(decoder.parts().hostname);
    } else {
      // exporter_include = name timestamps fields
      ++tab;
      EXPECT_FALSE(decoder.parts().hostname);
      EXPECT_FALSE(decoder.parts().categories);
      EXPECT_TRUE(decoder.event().categories.size() == 0);
    }
  }
  EXPECT_EQ(json, 8);
  EXPECT_EQ(tab, 2);
  // time-unix start_time, a JSON number.
  ASSERT_TRUE(decoder.Decode(Format::kJson, payloads[0], kReceived).ok());
  EXPECT_EQ(decoder.event().time, At(1795305644, 186445));
  EXPECT_EQ(decoder.end_time(), At(1795305644, 186812));
  // time-rfc3339 in tab-text.
  ASSERT_TRUE(decoder.Decode(Format::kTabText, payloads[3], kReceived).ok());
  EXPECT_EQ(decoder.event().time, At(1795305645, 856183));
  EXPECT_EQ(Get(decoder.event(), "duration").as_int(), 148);
}

TEST(DovecotEventExportTest, NoneFormatCarriesNoEvent) {
  const auto requests = ReadCapturedRequestsForTesting("event-exporter-none.txt");
  ASSERT_EQ(requests.size(), 14u);
  DovecotEventExportDecoder decoder;
  for (const CapturedRequest& r : requests) {
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(decoder.Decode(r.content_type, r.body, kReceived).reason(), "no_payload");
  }
}

// --- Types, lifetimes, allocation ------------------------------------------

TEST(DovecotEventExportTest, JsonValueTypes) {
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(decoder
                  .Decode(Format::kJson,
                          R"({"event":"x","fields":{"i":-5,"u":18446744073709551615,)"
                          R"("big":1e3,"d":0.25,"tv":1795305644.195081,"neg":-3.000001,)"
                          R"("b":true,"n":null,"l":["a","b\tc",""],"e":[],"s":"q\"\u00e9"}})",
                          kReceived)
                  .ok());
  const Event& e = decoder.event();
  EXPECT_EQ(Get(e, "i").as_int(), -5);
  EXPECT_EQ(Get(e, "u").type(), Value::Type::kUint);
  EXPECT_EQ(Get(e, "u").as_uint(), 18446744073709551615u);
  EXPECT_EQ(Get(e, "big").type(), Value::Type::kDouble);
  EXPECT_EQ(Get(e, "big").as_double(), 1000.0);
  EXPECT_EQ(Get(e, "d").as_double(), 0.25);
  EXPECT_EQ(Get(e, "tv").type(), Value::Type::kTimeval);
  EXPECT_EQ(Get(e, "tv").as_timeval(), (Timeval{1795305644, 195081}));
  EXPECT_EQ(Get(e, "neg").as_timeval(), (Timeval{-3, 1}));
  EXPECT_EQ(Get(e, "b").type(), Value::Type::kBool);
  EXPECT_TRUE(Get(e, "b").as_bool());
  EXPECT_EQ(Get(e, "n").type(), Value::Type::kNone);
  EXPECT_EQ(Get(e, "l").as_string(), std::string_view("a\tb\tc\t"));
  EXPECT_EQ(Get(e, "e").type(), Value::Type::kString);
  EXPECT_EQ(Get(e, "e").as_string(), "");
  EXPECT_EQ(Get(e, "s").as_string(), "q\"\xc3\xa9");
  EXPECT_EQ(e.time, kReceived);  // no timestamps
  EXPECT_FALSE(decoder.end_time().has_value());
}

TEST(DovecotEventExportTest, NumbersOfKnownFieldsCarryTheirUnit) {
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(decoder
                  .Decode(Format::kJson,
                          R"({"event":"x","fields":{"duration":3350,"running_usecs":12,)"
                          R"("bytes_out":1e3,"idle_secs":4,"bytes_in":"7","n":5}})",
                          kReceived)
                  .ok());
  const Event& e = decoder.event();
  EXPECT_EQ(Get(e, "duration").unit(), Unit::kMicroseconds);
  EXPECT_EQ(Get(e, "running_usecs").unit(), Unit::kMicroseconds);
  EXPECT_EQ(Get(e, "bytes_out").unit(), Unit::kBytes);  // a double too
  EXPECT_EQ(Get(e, "idle_secs").unit(), Unit::kSeconds);
  EXPECT_EQ(Get(e, "bytes_in").unit(), Unit::kNone);  // strings carry none
  EXPECT_EQ(Get(e, "n").unit(), Unit::kNone);

  const auto requests = ReadCapturedRequestsForTesting("event-exporter-tabtext.txt");
  ASSERT_FALSE(requests.empty());
  ASSERT_TRUE(decoder.Decode(Format::kTabText, requests[0].body, kReceived).ok());
  EXPECT_EQ(Get(decoder.event(), "duration").unit(), Unit::kMicroseconds);
  EXPECT_EQ(Get(decoder.event(), "local_port").unit(), Unit::kNone);
}

TEST(DovecotEventExportTest, TabTextIntegersMustBeCanonical) {
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(decoder
                  .Decode(Format::kTabText,
                          "event:x\tfield:a=0\tfield:b=-12\tfield:c=007\tfield:d=-0\tfield:e=1.5\t"
                          "field:f=18446744073709551615\tfield:g=99999999999999999999\tfield:h=\t"
                          "field:k=v=w",
                          kReceived)
                  .ok());
  const Event& e = decoder.event();
  EXPECT_EQ(Get(e, "a").as_int(), 0);
  EXPECT_EQ(Get(e, "b").as_int(), -12);
  EXPECT_EQ(Get(e, "c").as_string(), "007");
  EXPECT_EQ(Get(e, "d").as_string(), "-0");
  EXPECT_EQ(Get(e, "e").as_string(), "1.5");
  EXPECT_EQ(Get(e, "f").as_uint(), 18446744073709551615u);
  EXPECT_EQ(Get(e, "g").as_string(), "99999999999999999999");
  EXPECT_EQ(Get(e, "h").type(), Value::Type::kString);
  EXPECT_EQ(Get(e, "h").as_string(), "");
  EXPECT_EQ(Get(e, "k").as_string(), "v=w");
}

TEST(DovecotEventExportTest, RepeatedKeysKeepTheirPlaceAndTakeTheLastValue) {
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(
      decoder
          .Decode(Format::kJson,
                  R"({"event":"x","categories":["a","b","a"],"fields":{"k":1,"j":2,"k":3}})",
                  kReceived)
          .ok());
  EXPECT_EQ(Keys(decoder.event()), (std::vector<std::string>{"k", "j"}));
  EXPECT_EQ(Get(decoder.event(), "k").as_int(), 3);
  EXPECT_EQ(Categories(decoder.event()), (std::vector<std::string>{"a", "b"}));
}

TEST(DovecotEventExportTest, StringsAreOwnedByTheDecoder) {
  DovecotEventExportDecoder decoder;
  {
    std::string body = "event:x\thostname:h1\tfield:s=value\001tone";
    ASSERT_TRUE(decoder.Decode(Format::kTabText, body, kReceived).ok());
    body.assign(body.size(), '#');
  }
  EXPECT_EQ(Get(decoder.event(), "s").as_string(), "value\tone");
  EXPECT_EQ(decoder.hostname(), "h1");
  {
    std::string body = R"({"event":"x","hostname":"h2","fields":{"s":"a\nb","l":["p","q"]}})";
    ASSERT_TRUE(decoder.Decode(Format::kJson, body, kReceived).ok());
    body.assign(body.size(), '#');
  }
  EXPECT_EQ(Get(decoder.event(), "s").as_string(), "a\nb");
  EXPECT_EQ(Get(decoder.event(), "l").as_string(), "p\tq");
  EXPECT_EQ(decoder.hostname(), "h2");
}

TEST(DovecotEventExportTest, SteadyStateAllocatesNothing) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocations are not counted under ASan";
  const auto json = ReadCapturedRequestsForTesting("event-exporter-json.txt");
  const auto tab = ReadCapturedRequestsForTesting("event-exporter-tabtext.txt");
  ASSERT_FALSE(json.empty());
  ASSERT_FALSE(tab.empty());
  DovecotEventExportDecoder decoder;
  // Warm up: the buffers grow to the largest body, names are interned.
  for (const auto& r : json) ASSERT_TRUE(decoder.Decode(Format::kJson, r.body, kReceived).ok());
  for (const auto& r : tab) ASSERT_TRUE(decoder.Decode(Format::kTabText, r.body, kReceived).ok());
  const long before = HeapAllocationsForTesting();
  for (const auto& r : json) (void)decoder.Decode(Format::kJson, r.body, kReceived);
  for (const auto& r : tab) (void)decoder.Decode(Format::kTabText, r.body, kReceived);
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
}

// --- Content types and times -----------------------------------------------

TEST(DovecotEventExportTest, ContentTypes) {
  struct Case {
    std::string_view header;
    bool ok;
    Format format;
  };
  const Case cases[] = {
      {"application/json", true, Format::kJson},
      {"Application/JSON; charset=utf-8", true, Format::kJson},
      {" text/plain ", true, Format::kTabText},
      {"text/plain;charset=UTF-8", true, Format::kTabText},
      {"application/octet-stream", true, Format::kNone},
      {"text/html", false, Format::kNone},
      {"", false, Format::kNone},
      {"application/jsonx", false, Format::kNone},
  };
  for (const Case& c : cases) {
    auto f = EventExportFormatFromContentType(c.header);
    EXPECT_EQ(f.ok(), c.ok) << c.header;
    if (f.ok()) {
      EXPECT_EQ(*f, c.format) << c.header;
    } else {
      EXPECT_EQ(f.status().reason(), "unsupported_content_type");
    }
  }
  DovecotEventExportDecoder decoder;
  EXPECT_EQ(decoder.Decode("image/png", "x", kReceived).reason(), "unsupported_content_type");
}

TEST(DovecotEventExportTest, ExportTimes) {
  struct Case {
    std::string_view text;
    std::optional<TimePoint> want;
  };
  const Case cases[] = {
      {"1795305644.195092", At(1795305644, 195092)},
      {"1795305644", At(1795305644, 0)},
      {"1795305644.5", At(1795305644, 500000)},
      {"-5.000001", At(-5, 1)},
      {"2026-11-22T00:00:44.186405Z", At(1795305644, 186405)},
      {"2026-11-22T00:00:44Z", At(1795305644, 0)},
      {"2026-11-22t00:00:44.1z", At(1795305644, 100000)},
      {"2026-11-22T01:00:44.186405123+01:00", At(1795305644, 186405)},
      {"1970-01-01T00:00:00.000000Z", At(0, 0)},
      {"1969-12-31T23:59:59.999999Z", At(-1, 999999)},
      {"2024-02-29T00:00:00Z", At(1709164800, 0)},
      {"2023-02-29T00:00:00Z", std::nullopt},
      {"2026-13-01T00:00:00Z", std::nullopt},
      {"2026-11-22T24:00:00Z", std::nullopt},
      {"2026-11-22T00:00:44.Z", std::nullopt},
      {"2026-11-22T00:00:44", std::nullopt},
      {"1795305644.1234567", std::nullopt},
      {"1795305644.", std::nullopt},
      {"17953x5644", std::nullopt},
      {"", std::nullopt},
      {"99999999999999", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseExportTime(c.text), c.want) << c.text;
}

// --- Malformed input ---------------------------------------------------------

TEST(DovecotEventExportTest, RejectsMalformedBodies) {
  struct Case {
    Format format;
    std::string body;
    std::string_view reason;
  };
  const std::string many_fields = [] {
    std::string s = R"({"event":"x","fields":{)";
    for (int i = 0; i < 97; ++i) s += (i ? ",\"f" : "\"f") + std::to_string(i) + "\":1";
    return s + "}}";
  }();
  const std::string many_categories = [] {
    std::string s = "event:x";
    for (int i = 0; i < 17; ++i) s += "\tcategory:c" + std::to_string(i);
    return s;
  }();
  const Case cases[] = {
      {Format::kJson, "", "bad_json"},
      {Format::kJson, "{", "bad_json"},
      {Format::kJson, "[]", "bad_json"},
      {Format::kJson, "\"event\"", "bad_json"},
      {Format::kJson, R"({"event":"x"} {})", "bad_json"},
      {Format::kJson, R"({"event":"x",})", "bad_json"},
      {Format::kJson, R"({"event":1})", "bad_json"},
      {Format::kJson, "{\"event\":\"\xff\"}", "bad_json"},
      {Format::kJson, R"({"event":"x","categories":"a"})", "bad_categories"},
      {Format::kJson, R"({"event":"x","categories":[1]})", "bad_categories"},
      {Format::kJson, R"({"event":"x","fields":[]})", "bad_fields"},
      {Format::kJson, R"({"event":"x","fields":{"a":{}}})", "bad_field_value"},
      {Format::kJson, R"({"event":"x","fields":{"a":[1]}})", "bad_field_value"},
      {Format::kJson, R"({"event":"x","fields":{"a":01}})", "bad_field_value"},
      {Format::kJson, R"({"event":"x","fields":{"a":1e999}})", "bad_field_value"},
      {Format::kJson, R"({"event":"x","fields":{"a":tru}})", "bad_json"},
      {Format::kJson, R"({"event":"x","start_time":"yesterday"})", "bad_time"},
      {Format::kJson, R"({"event":"x","end_time":true})", "bad_time"},
      {Format::kJson, R"({"hostname":"h","fields":{}})", "missing_event"},
      {Format::kJson, R"({"event":""})", "missing_event"},
      {Format::kJson, R"({"event":")" + std::string(300, 'n') + "\"}", "name_too_long"},
      {Format::kJson, many_fields, "too_many_fields"},
      {Format::kTabText, "", "missing_event"},
      {Format::kTabText, "hostname:vm\tfield:a=1", "missing_event"},
      {Format::kTabText, "event:x\tfield:a", "bad_item"},
      {Format::kTabText, "event:x\tstart_time:noon", "bad_time"},
      {Format::kTabText, "event:x\tfield:" + std::string(300, 'k') + "=1", "name_too_long"},
      {Format::kTabText, many_categories, "too_many_categories"},
      {Format::kTabText, std::string(2 * 1024 * 1024, 'x'), "body_too_large"},
      {Format::kNone, "", "no_payload"},
  };
  DovecotEventExportDecoder decoder;
  for (const Case& c : cases) {
    Status st = decoder.Decode(c.format, c.body, kReceived);
    EXPECT_EQ(st.reason(), c.reason) << c.body.substr(0, 80) << " -> " << st.ToString();
    EXPECT_FALSE(st.ok());
  }
  // A good body still decodes after all that.
  EXPECT_TRUE(decoder.Decode(Format::kTabText, "event:ok", kReceived).ok());
  EXPECT_EQ(NameText(decoder.event().name), "ok");
}

TEST(DovecotEventExportTest, IgnoresWhatItDoesNotKnow) {
  DovecotEventExportDecoder decoder;
  ASSERT_TRUE(decoder
                  .Decode(Format::kJson,
                          R"({"version":2,"extra":{"deep":[[{"x":1}]]},"event":"x","fields":{}})",
                          kReceived)
                  .ok());
  ASSERT_TRUE(decoder.Decode(Format::kTabText, "event:x\tspan:1\t\tnothing", kReceived).ok());
  EXPECT_TRUE(decoder.parts().categories);  // the empty item of no categories
}

// The decoder's names are budgeted: past its budget a new event or category
// name is refused and a new key left out, while another decoder (another
// input) still adds its names.
TEST(DovecotEventExportTest, NamesPastTheDecodersBudgetAreRefused) {
  EventExportOptions options;
  options.max_new_names = 2;
  DovecotEventExportDecoder greedy(options);
  const std::uint64_t refused = NamesRefused(NameInput::kDovecotPost, NameRefusal::kClientBudget);
  ASSERT_TRUE(greedy
                  .Decode(Format::kJson,
                          R"({"event":"post_budget_event","fields":{"post_budget_key":1}})",
                          kReceived)
                  .ok());
  EXPECT_EQ(greedy.names().remaining(), 0u);
  Status st = greedy.Decode(Format::kJson, R"({"event":"post_budget_event2"})", kReceived);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(st.reason(), "client_name_budget");
  st = greedy.Decode(Format::kJson, R"({"event":"post_budget_event","categories":["post-cat"]})",
                     kReceived);
  EXPECT_EQ(st.reason(), "client_name_budget");
  ASSERT_TRUE(greedy
                  .Decode(Format::kJson,
                          R"({"event":"post_budget_event","fields":{"post_budget_key":2,)"
                          R"("post_budget_key2":3}})",
                          kReceived)
                  .ok());
  EXPECT_EQ(Keys(greedy.event()), std::vector<std::string>{"post_budget_key"});
  EXPECT_EQ(NamesRefused(NameInput::kDovecotPost, NameRefusal::kClientBudget), refused + 3);

  DovecotEventExportDecoder other(options);
  ASSERT_TRUE(other
                  .Decode(Format::kJson,
                          R"({"event":"post_budget_event2","categories":["post-cat"]})", kReceived)
                  .ok());
  EXPECT_EQ(other.names().added(), 2u);
}

}  // namespace
}  // namespace mailscope::ingest
