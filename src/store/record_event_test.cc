#include "store/record_event.h"

#include <gtest/gtest.h>

#include <string>

#include "export/event_text.h"
#include "filter/filter.h"

namespace mailscope::store {
namespace {

// Encodes `e`, decodes the record and builds the event back.
std::string RoundTrip(const Event& e, RecordEventBuilder& builder, Event& back) {
  static std::string buf;
  buf.clear();
  RecordEncoder enc;
  enc.Append(e, 7, 9, buf);
  RecordView r;
  std::size_t size = 0;
  EXPECT_TRUE(DecodeRecord(buf, r, &size).ok());
  const Status s = builder.Build(r, back);
  EXPECT_TRUE(s.ok()) << s.message();
  std::string text;
  exporter::AppendEventText(back, text);
  return text;
}

bool Matches(std::string_view filter_text, const Event& e) {
  auto f = filter::Parse(filter_text, filter::Dialect::kMailscope);
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f->Matches(e);
}

TEST(RecordEventTest, AnEventComesBackAsItWasPrinted) {
  Event e;
  e.source = Source::kDovecot;
  e.name = InternName("imap_command_finished");
  e.level = Level::kWarn;
  e.time = TimePoint(std::chrono::microseconds(1'764'000'044'195'092));
  e.categories.push_back(InternName("service:imap"));
  e.categories.push_back(InternName("imap"));
  e.Add(InternName("cmd_name"), Value::String("SELECT"));
  e.Add(InternName("duration"), Value::Int(3350).WithUnit(Unit::kMicroseconds));
  e.Add(InternName("bytes_in"), Value::Uint(18'446'744'073'709'551'615u));
  e.Add(InternName("ratio"), Value::Double(0.25));
  e.Add(InternName("whole"), Value::Double(3.0));
  e.Add(InternName("ok"), Value::Bool(true));
  e.Add(InternName("raw"), Value::String(std::string_view("\xff\x00z", 3)));
  e.Add(InternName("text"), Value::String("tab\there \"quoted\" \xe2\x82\xac"));
  std::string live;
  exporter::AppendEventText(e, live);

  RecordEventBuilder builder;
  Event back;
  EXPECT_EQ(RoundTrip(e, builder, back), live);
  EXPECT_EQ(back.level, Level::kWarn);
  EXPECT_EQ(back.Find(InternName("duration"))->value.unit(), Unit::kMicroseconds);
  EXPECT_EQ(back.Find(InternName("whole"))->value.type(), Value::Type::kDouble);
  EXPECT_EQ(back.Find(InternName("raw"))->value.as_string(), std::string_view("\xff\x00z", 3));
  EXPECT_TRUE(Matches("event=imap_command_finished AND duration > 3ms", back));
  EXPECT_FALSE(Matches("duration > 4ms", back));
  EXPECT_TRUE(Matches("category=imap AND cmd_name=SEL*", back));
}

TEST(RecordEventTest, TaxonomyIsRoutedAgain) {
  Event e;
  e.source = Source::kExim;
  e.name = InternName("msg:fail:delivery");
  e.Add(InternName("sender_host_address"), Value::String("192.0.2.9"));
  e.Add(InternName("domain"), Value::String("example.org"));
  RecordEventBuilder builder;
  Event back;
  RoundTrip(e, builder, back);
  EXPECT_EQ(NameText(back.taxonomy.kind), "delivery");
  EXPECT_EQ(NameText(back.taxonomy.outcome), "failed");
  EXPECT_TRUE(Matches("kind=delivery AND outcome=failed AND domain=example.org", back));
}

TEST(RecordEventTest, EximMessageIdsAreMessageIds) {
  Event e;
  e.source = Source::kExim;
  e.name = InternName("msg:delivery");
  e.Add(InternName("message_exim_id"), Value::String("1xaInK-00045c-1N"));
  RecordEventBuilder builder;
  Event back;
  EXPECT_EQ(RoundTrip(e, builder, back).substr(28),
            "exim msg:delivery message_exim_id=1xaInK-00045c-1N message_id=1xaInK-00045c-1N");
  EXPECT_TRUE(Matches("message_id=1xaInK-00045c-1N", back));
}

TEST(RecordEventTest, OldStatsRecordsHaveNoTaxonomy) {
  RecordEventBuilder builder;
  Event back;
  RecordView r;
  r.source = Source::kDovecotOldStats;
  r.event = "old_stats_mail";
  r.fields = R"({"user":"bob","num_logins":1})";
  ASSERT_TRUE(builder.Build(r, back).ok());
  EXPECT_EQ(back.taxonomy.kind, kNoName);
  EXPECT_TRUE(Matches("user=bob", back));
}

TEST(RecordEventTest, CorruptJsonIsAnError) {
  RecordEventBuilder builder;
  Event back;
  RecordView r;
  r.source = Source::kExim;
  r.event = "x";
  for (std::string_view fields : {"", "{", "[1]", R"({"a":[1]})", R"({"a":{"base64":"!!"}})",
                                  R"({"a":{"other":1}})", "{\"a\":\"\xff\"}x"}) {
    r.fields = fields;
    const Status s = builder.Build(r, back);
    EXPECT_FALSE(s.ok()) << fields;
    EXPECT_EQ(s.reason(), "record_corrupt") << fields;
  }
  r.fields = "{}";
  r.categories = "{}";
  EXPECT_EQ(builder.Build(r, back).reason(), "record_corrupt");
  r.categories = "";
  r.units = "[]";
  EXPECT_EQ(builder.Build(r, back).reason(), "record_corrupt");
}

}  // namespace
}  // namespace mailscope::store
