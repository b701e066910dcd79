#include "store/record.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>

#include "catalog/catalog.h"
#include "catalog/event_control.h"
#include "catalog/event_router.h"
#include "core/allocation_counter_testing.h"

namespace mailscope::store {
namespace {

catalog::EventRouter& Router() {
  static catalog::EventRouter* router = [] {
    auto control = catalog::EventControl::Build(catalog::Catalog::Get(), {});
    EXPECT_TRUE(control.ok());
    return new catalog::EventRouter(catalog::Catalog::Get(), std::move(*control));
  }();
  return *router;
}

// An Exim msg:delivery as the exim-events decoder makes it, routed.
Event EximDelivery() {
  Event e;
  e.source = Source::kExim;
  e.name = InternName("msg:delivery");
  e.time = TimePoint(std::chrono::microseconds(1'796'588'714'123'456));
  e.Add(InternName("message_exim_id"), Value::String("1xaInK-00045c-1N"));
  e.Add(InternName("sender_address"), Value::String("alice@test.local"));
  e.Add(InternName("domain"), Value::String("ok.example"));
  e.Add(InternName("local_part"), Value::String("user"));
  e.Add(InternName("host_address"), Value::String("192.0.2.25"));
  e.Add(InternName("host_port"), Value::Int(25));
  e.Add(InternName("queue_time"), Value::Int(1500).WithUnit(Unit::kMilliseconds));
  e.taxonomy = Router().Route(e).taxonomy;
  return e;
}

TEST(RecordTest, EncodesAndDecodesAnEvent) {
  RecordEncoder enc;
  std::string buf = "xy";  // appends after what is there
  const Event e = EximDelivery();
  const std::size_t n = enc.Append(e, 7, 9, buf);
  EXPECT_EQ(buf.size(), n + 2);

  RecordView r;
  std::size_t size = 0;
  ASSERT_TRUE(DecodeRecord(std::string_view(buf).substr(2), r, &size).ok());
  EXPECT_EQ(size, n);
  EXPECT_EQ(r.source, Source::kExim);
  EXPECT_EQ(r.level, Level::kInfo);
  EXPECT_EQ(r.time_us, 1'796'588'714'123'456);
  EXPECT_EQ(r.stream, 7u);
  EXPECT_EQ(r.seq, 9u);
  EXPECT_EQ(r.event, "msg:delivery");
  EXPECT_EQ(r.kind, "delivery");
  EXPECT_EQ(r.outcome, "delivered");
  EXPECT_EQ(r.sender, "alice@test.local");
  EXPECT_EQ(r.domain, "ok.example");
  EXPECT_EQ(r.message_id, "1xaInK-00045c-1N");  // from message_exim_id
  EXPECT_EQ(r.categories, "");
  EXPECT_EQ(r.fields,
            R"({"message_exim_id":"1xaInK-00045c-1N","sender_address":"alice@test.local",)"
            R"("domain":"ok.example","local_part":"user","host_address":"192.0.2.25",)"
            R"("host_port":25,"queue_time":1500})");
  EXPECT_EQ(r.units, R"({"queue_time":"ms"})");
}

TEST(RecordTest, HostileStringsStayExact) {
  Event e;
  e.source = Source::kDovecot;
  e.name = InternName("auth_request_finished");
  const std::string nul("a\0b\"\\\n", 6);
  const std::string latin1 = "caf\xe9";  // not UTF-8
  const std::string big(1 << 20, 'x');
  e.Add(InternName("nul"), Value::String(nul));
  e.Add(InternName("latin1"), Value::String(latin1));
  e.Add(InternName("big"), Value::String(big));
  e.Add(InternName("seps"), Value::String("a\xe2\x80\xa8"
                                          "b\xe2\x80\xa9"
                                          "c"));
  e.Add(InternName("user"), Value::String("\xff\xfe"));
  e.categories.push_back(InternName("auth"));
  RecordEncoder enc;
  std::string buf;
  enc.Append(e, 7, 9, buf);
  RecordView r;
  std::size_t size = 0;
  ASSERT_TRUE(DecodeRecord(buf, r, &size).ok());
  EXPECT_EQ(r.user, "\xff\xfe");  // columns keep the bytes
  EXPECT_EQ(r.categories, R"(["auth"])");
  const std::string expected =
      R"({"nul":{"base64":"YQBiIlwK"},"latin1":{"base64":"Y2Fm6Q=="},"big":")" + big +
      R"(","seps":"a\u2028b\u2029c","user":{"base64":"//4="}})";
  EXPECT_EQ(r.fields, expected);
}

TEST(RecordTest, ParentAndGlobalFieldsFlattenNearestFirst) {
  Event global, parent, child;
  global.Add(InternName("hostname"), Value::String("mx1"));
  parent.Add(InternName("user"), Value::String("bob"));
  parent.Add(InternName("session"), Value::String("s1"));
  child.source = Source::kDovecot;
  child.name = InternName("imap_command_finished");
  child.Add(InternName("session"), Value::String("s2"));
  child.Add(InternName("duration"), Value::Int(3350).WithUnit(Unit::kMicroseconds));
  child.parent = &parent;
  child.global = &global;
  RecordEncoder enc;
  std::string buf;
  enc.Append(child, 7, 9, buf);
  RecordView r;
  std::size_t size = 0;
  ASSERT_TRUE(DecodeRecord(buf, r, &size).ok());
  EXPECT_EQ(r.fields, R"({"session":"s2","duration":3350,"user":"bob","hostname":"mx1"})");
  EXPECT_EQ(r.user, "bob");
  EXPECT_EQ(r.units, R"({"duration":"us"})");
}

TEST(RecordTest, RecordValuesGiveAColumnEachAndWinOverLaterFields) {
  struct Payload {
    std::uint32_t num_logins;
    std::uint64_t user_cpu;
  } payload{3, 42};
  static const RecordColumn kColumns[] = {
      {"num_logins", RecordColumn::Type::kU32, offsetof(Payload, num_logins)},
      {"user_cpu", RecordColumn::Type::kU64, offsetof(Payload, user_cpu)}};
  static const RecordSchema kSchema = {"test", sizeof(Payload), kColumns, 2};
  Event e;
  e.source = Source::kDovecotOldStats;
  e.name = InternName("old_stats_mail");
  e.Add(InternName("stats"), Value::Record(&kSchema, &payload));
  e.Add(InternName("num_logins"), Value::Int(99));  // the column came first
  e.Add(InternName("user"), Value::String("bob"));
  RecordEncoder enc;
  std::string buf;
  enc.Append(e, 1, 2, buf);
  RecordView r;
  std::size_t size = 0;
  ASSERT_TRUE(DecodeRecord(buf, r, &size).ok());
  EXPECT_EQ(r.fields, R"({"num_logins":3,"user_cpu":42,"user":"bob"})");
  EXPECT_EQ(r.user, "bob");
}

TEST(RecordTest, EncodingAllocatesNothingOnceWarm) {
  RecordEncoder enc;
  std::string buf;
  const Event e = EximDelivery();
  enc.Append(e, 7, 9, buf);
  buf.clear();
  const long before = HeapAllocationsForTesting();
  enc.Append(e, 7, 9, buf);
  EXPECT_EQ(HeapAllocationsForTesting(), before);
}

TEST(RecordTest, RoundTripsThroughAppendRecord) {
  RecordEncoder enc;
  std::string buf;
  enc.Append(EximDelivery(), 7, 9, buf);
  RecordView r;
  std::size_t size = 0;
  ASSERT_TRUE(DecodeRecord(buf, r, &size).ok());
  std::string again;
  AppendRecord(r, again);
  EXPECT_EQ(again, buf);
}

TEST(RecordTest, CorruptRecordsAreRefusedAtEveryCut) {
  RecordEncoder enc;
  std::string buf;
  enc.Append(EximDelivery(), 7, 9, buf);
  RecordView r;
  std::size_t size = 0;
  for (std::size_t cut = 0; cut < buf.size(); ++cut) {
    const Status s = DecodeRecord(std::string_view(buf).substr(0, cut), r, &size);
    ASSERT_FALSE(s.ok()) << cut;
    EXPECT_EQ(s.reason(), "record_corrupt");
  }
  std::string bad = buf;
  bad[4] = 9;  // version
  EXPECT_EQ(DecodeRecord(bad, r, &size).reason(), "record_corrupt");
  bad = buf;
  bad[5] = 100;  // source
  EXPECT_EQ(DecodeRecord(bad, r, &size).reason(), "record_corrupt");
  bad = buf;
  bad[6] = 100;  // level
  EXPECT_EQ(DecodeRecord(bad, r, &size).reason(), "record_corrupt");
  bad = buf;
  bad[7] = 1;  // reserved
  EXPECT_EQ(DecodeRecord(bad, r, &size).reason(), "record_corrupt");
  bad = buf;
  bad[kRecordHeaderBytes] = '\x7f';  // the event name's length runs past the record
  EXPECT_EQ(DecodeRecord(bad, r, &size).reason(), "record_corrupt");
  bad = buf + "zz";
  bad[0] = static_cast<char>(buf.size() + 2);  // a size that leaves bytes after the strings
  EXPECT_EQ(DecodeRecord(bad, r, &size).reason(), "record_corrupt");
}

TEST(RecordTest, Rfc3339FromMicroseconds) {
  auto text = [](std::int64_t us) {
    std::string out;
    AppendRfc3339(out, us);
    return out;
  };
  EXPECT_EQ(text(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(text(1'796'588'714'123'456), "2026-12-06T20:25:14.123456Z");
  EXPECT_EQ(text(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(text(-62'135'596'800'000'000), "0001-01-01T00:00:00.000000Z");
  EXPECT_EQ(text(253'402'300'799'999'999), "9999-12-31T23:59:59.999999Z");
}

}  // namespace
}  // namespace mailscope::store
