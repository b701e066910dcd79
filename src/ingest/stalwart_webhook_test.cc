#include "ingest/stalwart_webhook.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/allocation_counter_testing.h"

namespace mailscope::ingest {
namespace {

// The reference's inbound session (stalwart-telemetry.md §2.5), compact.
constexpr std::string_view kSession =
    R"({"events":[)"
    R"({"id":"17499828530417","createdAt":"2025-06-15T10:20:53Z","type":"smtp.connection-start",)"
    R"("data":{"listenerId":"smtp","localPort":25,"remoteIp":"203.0.113.5","remotePort":51234,)"
    R"("spanId":8340150942317542113}},)"
    R"({"id":"17499828531444","createdAt":"2025-06-15T10:20:53Z","type":"smtp.mail-from",)"
    R"("data":{"spanId":8340150942317542113,"from":"alice@example.net","listenerId":"smtp",)"
    R"("localPort":25,"remoteIp":"203.0.113.5","remotePort":51234}},)"
    R"({"id":"17499828542380","createdAt":"2025-06-15T10:20:54Z","type":"queue.message-queued",)"
    R"("data":{"spanId":8340150942317542113,"queueId":318470021457,"from":"alice@example.net",)"
    R"("to":["bob@example.org"],"size":48213,"nextRetry":"2025-06-15T10:20:54Z",)"
    R"("nextDsn":"2025-06-16T10:20:54Z","expires":"2025-06-20T10:20:54Z","listenerId":"smtp",)"
    R"("localPort":25,"remoteIp":"203.0.113.5","remotePort":51234}},)"
    R"({"id":"17499828554416","createdAt":"2025-06-15T10:20:55Z","type":"smtp.connection-end",)"
    R"("data":{"spanId":8340150942317542113,"elapsed":2140,"listenerId":"smtp","localPort":25,)"
    R"("remoteIp":"203.0.113.5","remotePort":51234}}]})";

struct Decoded {
  Event event;
  std::map<std::string, Value> fields;  // by key text; strings point into `texts`
  std::deque<std::string> texts;        // the strings, copied: the decoder reuses its own
};

// Parses `body` and decodes every event, failing the test on an error.
std::vector<Decoded> DecodeAll(StalwartWebhookDecoder& decoder, std::string_view body) {
  std::vector<Decoded> out;
  const Status st = decoder.Parse(body, body.size());
  EXPECT_TRUE(st.ok()) << st.message();
  if (!st.ok()) return out;
  out.reserve(decoder.size());  // a Decoded is copied on growth, its views would not follow
  for (std::size_t i = 0; i < decoder.size(); ++i) {
    Decoded& d = out.emplace_back();
    const Status e = decoder.Decode(i, d.event);
    EXPECT_TRUE(e.ok()) << e.message();
    for (const Field& f : d.event.fields) {
      Value v = f.value;
      if (v.type() == Value::Type::kString) {
        v = Value::String(d.texts.emplace_back(v.as_string())).WithUnit(v.unit());
      }
      d.fields[std::string(NameText(f.key))] = v;
    }
  }
  return out;
}

std::vector<Decoded> DecodeAll(std::string_view body) {
  StalwartWebhookDecoder decoder;
  return DecodeAll(decoder, body);
}

std::string Wrap(std::string_view events) { return "{\"events\":[" + std::string(events) + "]}"; }

std::string OneEvent(std::string_view type, std::string_view data,
                     std::string_view created = "2025-06-15T10:20:53Z") {
  return R"({"id":"1","createdAt":")" + std::string(created) + R"(","type":")" + std::string(type) +
         R"(","data":)" + std::string(data) + "}";
}

TEST(StalwartWebhookTest, DecodesTheReferenceSession) {
  std::vector<Decoded> events = DecodeAll(kSession);
  ASSERT_EQ(events.size(), 4u);
  const Decoded& start = events[0];
  EXPECT_EQ(start.event.source, Source::kStalwart);
  EXPECT_EQ(NameText(start.event.name), "smtp.connection-start");
  EXPECT_EQ(UnixSeconds(start.event.time), 1749982853);
  EXPECT_EQ(start.event.span_id, 8340150942317542113u);
  EXPECT_EQ(start.fields.count("spanId"), 0u) << "spanId is the event's span, not a field";
  EXPECT_EQ(start.fields.at("listenerId").as_string(), "smtp");
  EXPECT_EQ(start.fields.at("remoteIp").as_string(), "203.0.113.5");
  EXPECT_EQ(start.fields.at("localPort").type(), Value::Type::kUint);
  EXPECT_EQ(start.fields.at("localPort").as_uint(), 25u);

  const Decoded& queued = events[2];
  EXPECT_EQ(queued.fields.at("to").as_string(), "bob@example.org");
  EXPECT_EQ(queued.fields.at("size").as_uint(), 48213u);
  EXPECT_EQ(queued.fields.at("size").unit(), Unit::kBytes);
  ASSERT_EQ(queued.fields.at("expires").type(), Value::Type::kTimeval);
  EXPECT_EQ(queued.fields.at("expires").as_timeval().sec, 1750414854);
  EXPECT_EQ(queued.fields.at("queueId").as_uint(), 318470021457u);

  const Decoded& end = events[3];
  EXPECT_EQ(end.fields.at("elapsed").as_uint(), 2140u);
  EXPECT_EQ(end.fields.at("elapsed").unit(), Unit::kMilliseconds);
}

TEST(StalwartWebhookTest, OldNamesCountUnderTheirV016Spelling) {
  std::vector<Decoded> events = DecodeAll(Wrap(
      OneEvent("queue.queue-message", R"({"size":1})") + "," + OneEvent("auth.missing-totp", "{}") +
      "," + OneEvent("message-ingest.fts-index", R"({"elapsed":3})")));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(NameText(events[0].event.name), "queue.message-queued");
  EXPECT_EQ(NameText(events[1].event.name), "auth.mfa-required");
  EXPECT_EQ(NameText(events[2].event.name), "message-ingest.search-index");
}

TEST(StalwartWebhookTest, ArraysJoinWithTabs) {
  std::vector<Decoded> events = DecodeAll(Wrap(OneEvent(
      "delivery.attempt-start",
      R"({"to":["a@x.example","b@y.example",3,true,null,["c@z.example"]],"mailboxId":[],"total":2})")));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields.at("to").as_string(),
            "a@x.example\tb@y.example\t3\ttrue\tc@z.example");
  EXPECT_EQ(events[0].fields.at("mailboxId").as_string(), "");
  EXPECT_EQ(events[0].fields.at("total").as_uint(), 2u);
}

TEST(StalwartWebhookTest, NestedEventsFlattenUnderTheirKey) {
  std::vector<Decoded> events = DecodeAll(Wrap(
      OneEvent("auth.failed",
               R"({"accountName":"bob@example.org","remoteIp":"198.51.100.7","spanId":5512,)"
               R"("causedBy":{"type":"store.ldap-error","data":{"reason":"connection refused",)"
               R"("causedBy":{"type":"network.timeout","data":{"elapsed":30000}}}}})")));
  ASSERT_EQ(events.size(), 1u);
  const auto& f = events[0].fields;
  EXPECT_EQ(f.at("causedBy").as_string(), "store.ldap-error");
  EXPECT_EQ(f.at("causedBy.reason").as_string(), "connection refused");
  EXPECT_EQ(f.at("causedBy.causedBy").as_string(), "network.timeout");
  EXPECT_EQ(f.at("causedBy.causedBy.elapsed").as_uint(), 30000u);
  EXPECT_EQ(f.at("causedBy.causedBy.elapsed").unit(), Unit::kMilliseconds);
  EXPECT_EQ(events[0].event.span_id, 5512u);
}

TEST(StalwartWebhookTest, ValuesOfUnexpectedTypesAreKeptAsSent) {
  std::vector<Decoded> events = DecodeAll(Wrap(OneEvent(
      "smtp.ehlo",
      R"({"size":"big","elapsed":-5,"expires":"tomorrow","code":2.5,"strict":false,"url":null})")));
  ASSERT_EQ(events.size(), 1u);
  const auto& f = events[0].fields;
  EXPECT_EQ(f.at("size").as_string(), "big");
  EXPECT_EQ(f.at("elapsed").type(), Value::Type::kInt);
  EXPECT_EQ(f.at("elapsed").as_int(), -5);
  EXPECT_EQ(f.at("expires").as_string(), "tomorrow");
  EXPECT_DOUBLE_EQ(f.at("code").as_double(), 2.5);
  EXPECT_FALSE(f.at("strict").as_bool());
  EXPECT_EQ(f.count("url"), 0u) << "null is no field";
}

TEST(StalwartWebhookTest, ARepeatedKeyKeepsItsFirstValue) {
  std::vector<Decoded> events = DecodeAll(Wrap(OneEvent("smtp.rcpt-to", R"({"to":"a","to":"b"})")));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields.at("to").as_string(), "a");
  EXPECT_EQ(events[0].event.fields.size(), 1u);
}

TEST(StalwartWebhookTest, UnknownTypesKeepTheirNameAndMembersAreOptional) {
  std::vector<Decoded> events =
      DecodeAll(R"({"events":[{"createdAt":"2025-06-15T10:20:53Z","type":"future.thing"}],)"
                R"("extra":1})");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(NameText(events[0].event.name), "future.thing");
  EXPECT_TRUE(events[0].event.fields.empty());
  EXPECT_TRUE(DecodeAll(R"({"events":[]})").empty());
}

TEST(StalwartWebhookTest, MalformedBodiesAreRejectedWhole) {
  const std::string good = OneEvent("smtp.ehlo", R"({"domain":"x"})");
  std::string deep = "1";
  for (int i = 0; i < 2 * kStalwartMaxNesting + 1; ++i) deep = "[" + deep + "]";
  std::string very_deep(100000, '[');
  const struct {
    std::string body;
    std::string_view reason;
  } cases[] = {
      {"", "bad_json"},
      {Wrap(good).substr(0, 60), "bad_json"},
      {"{\"events\":[" + good + ",", "bad_json"},
      {"\xff\xfe", "bad_json"},
      {very_deep, "bad_json"},
      {"[]", "bad_batch"},
      {R"({"events":{}})", "bad_batch"},
      {R"({"event":[]})", "bad_batch"},
      {Wrap(good + ",1"), "bad_event"},
      {Wrap(good + R"(,{"createdAt":"2025-06-15T10:20:53Z","type":7})"), "bad_event"},
      {Wrap(good + R"(,{"createdAt":"2025-06-15T10:20:53Z","type":""})"), "bad_event"},
      {Wrap(R"({"createdAt":"2025-06-15 10:20:53","type":"smtp.ehlo"})"), "bad_event"},
      {Wrap(R"({"createdAt":"2025-13-15T10:20:53Z","type":"smtp.ehlo"})"), "bad_event"},
      {Wrap(R"({"type":"smtp.ehlo"})"), "bad_event"},
      {Wrap(R"({"id":[],"createdAt":"2025-06-15T10:20:53Z","type":"smtp.ehlo"})"), "bad_event"},
      {Wrap(OneEvent("smtp.ehlo", "\"data\"")), "bad_event"},
      {Wrap(good + "," + OneEvent("smtp.ehlo", "{\"x\":" + deep + "}")), "too_deep"},
  };
  for (const auto& c : cases) {
    StalwartWebhookDecoder decoder;
    const Status st = decoder.Parse(c.body, c.body.size());
    EXPECT_FALSE(st.ok()) << c.body.substr(0, 80);
    EXPECT_EQ(st.reason(), c.reason) << c.body.substr(0, 80) << ": " << st.message();
    EXPECT_EQ(decoder.size(), 0u);
  }
}

TEST(StalwartWebhookTest, NestingUpToTheLimitIsTaken) {
  std::string deep = "1";
  for (int i = 0; i < 2 * kStalwartMaxNesting; ++i) deep = "[" + deep + "]";
  std::vector<Decoded> events = DecodeAll(Wrap(OneEvent("smtp.ehlo", "{\"x\":" + deep + "}")));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields.at("x").as_string(), "1");
  // One more is too deep, however it nests.
  StalwartWebhookDecoder decoder;
  for (const std::string& deeper : {"[" + deep + "]", "{\"y\":" + deep + "}"}) {
    const std::string body = Wrap(OneEvent("smtp.ehlo", "{\"x\":" + deeper + "}"));
    EXPECT_EQ(decoder.Parse(body, body.size()).reason(), "too_deep") << body;
  }
}

TEST(StalwartWebhookTest, NestedEventsAsDeepAsTheTextLogTakes) {
  auto nested = [](int levels) {
    std::string data = R"({"code":1})";
    for (int i = 0; i < levels; ++i) {
      data = R"({"causedBy":{"type":"store.ldap-error","data":)" + data + "}}";
    }
    return Wrap(OneEvent("auth.failed", data));
  };
  std::vector<Decoded> events = DecodeAll(nested(kStalwartMaxNesting));
  ASSERT_EQ(events.size(), 1u);
  std::string deepest = "causedBy";
  for (int i = 1; i < kStalwartMaxNesting; ++i) deepest += ".causedBy";
  EXPECT_EQ(events[0].fields.at(deepest + ".code").as_uint(), 1u);
  StalwartWebhookDecoder decoder;
  const std::string body = nested(kStalwartMaxNesting + 1);
  EXPECT_EQ(decoder.Parse(body, body.size()).reason(), "too_deep");
}

TEST(StalwartWebhookTest, DedupKeysTellResentEventsApart) {
  StalwartWebhookDecoder decoder;
  auto keys = [&](const std::string& body) {
    std::vector<std::uint64_t> out;
    EXPECT_TRUE(decoder.Parse(body, body.size()).ok());
    Event e;
    for (std::size_t i = 0; i < decoder.size(); ++i) {
      EXPECT_TRUE(decoder.Decode(i, e).ok());
      out.push_back(decoder.dedup_key());
    }
    return out;
  };
  const std::string a = OneEvent("smtp.ehlo", R"({"domain":"x","localPort":25})");
  const std::string b = OneEvent("smtp.ehlo", R"({"domain":"y","localPort":25})");
  const std::string c = OneEvent("smtp.ehlo", R"({"domain":"x","localPort":"25"})");
  const std::string d =
      OneEvent("smtp.ehlo", R"({"domain":"x","localPort":25})", "2025-06-15T10:20:54Z");
  // Re-sent merged with newer events: the old ones keep their keys.
  const auto first = keys(Wrap(a));
  const auto merged = keys(Wrap(b + "," + a));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(first[0], merged[1]);
  const auto all = keys(Wrap(a + "," + b + "," + c + "," + d));
  EXPECT_EQ(std::set<std::uint64_t>(all.begin(), all.end()).size(), 4u)
      << "data, a value's JSON type and createdAt each make a different event";
}

TEST(StalwartWebhookTest, ParsesInPlaceWhenPaddedAndFromACopyWhenNot) {
  std::string padded(kSession);
  padded.reserve(padded.size() + StalwartWebhookPadding());
  StalwartWebhookDecoder decoder;
  ASSERT_TRUE(decoder.Parse(padded, padded.capacity()).ok());
  EXPECT_EQ(decoder.size(), 4u);
  // An unpadded view at the very end of a buffer: the copy keeps the read in bounds.
  std::vector<char> exact(kSession.begin(), kSession.end());
  ASSERT_TRUE(decoder.Parse({exact.data(), exact.size()}, exact.size()).ok());
  EXPECT_EQ(decoder.size(), 4u);
}

TEST(StalwartWebhookTest, EveryCatalogSubsystemDecodes) {
  const auto& catalog = catalog::Catalog::Get();
  std::set<std::string> subsystems;
  std::string events;
  for (const catalog::EventInfo* e : catalog.OfSystem(catalog::System::kStalwart)) {
    if (!subsystems.insert(e->subsystem).second) continue;
    if (!events.empty()) events += ',';
    events += OneEvent(e->name, R"({"spanId":1,"elapsed":5,"remoteIp":"192.0.2.1"})");
  }
  std::vector<Decoded> decoded = DecodeAll(Wrap(events));
  ASSERT_EQ(decoded.size(), subsystems.size());
  EXPECT_GE(decoded.size(), 40u);
  for (const Decoded& d : decoded) {
    EXPECT_NE(catalog.Find(catalog::System::kStalwart, NameText(d.event.name)), nullptr)
        << NameText(d.event.name);
    EXPECT_EQ(d.fields.at("elapsed").unit(), Unit::kMilliseconds);
  }
}

TEST(StalwartWebhookTest, NewNamesArePastTheBudgetRefused) {
  StalwartWebhookOptions options;
  options.max_new_names = 2;
  StalwartWebhookDecoder decoder(options);
  const std::string body = Wrap(OneEvent("zz-budget.one", R"({"zzBudgetKey":1,"zzOther":2})") +
                                "," + OneEvent("zz-budget.two", "{}"));
  ASSERT_TRUE(decoder.Parse(body, body.size()).ok());
  Event e;
  ASSERT_TRUE(decoder.Decode(0, e).ok());
  EXPECT_EQ(e.fields.size(), 1u) << "the second new key is past the budget";
  const Status st = decoder.Decode(1, e);
  EXPECT_EQ(st.reason(), "client_name_budget");
}

TEST(StalwartWebhookTest, DecodingAllocatesNothingOnceNamesAreKnown) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  StalwartWebhookDecoder decoder;
  std::string body(kSession);
  body.reserve(body.size() + StalwartWebhookPadding());
  Event e;
  ASSERT_TRUE(decoder.Parse(body, body.capacity()).ok());
  for (std::size_t i = 0; i < decoder.size(); ++i) ASSERT_TRUE(decoder.Decode(i, e).ok());
  const long before = HeapAllocationsForTesting();
  ASSERT_TRUE(decoder.Parse(body, body.capacity()).ok());
  for (std::size_t i = 0; i < decoder.size(); ++i) ASSERT_TRUE(decoder.Decode(i, e).ok());
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
}

}  // namespace
}  // namespace mailscope::ingest
