#include "store/records_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/temp_dir_testing.h"
#include "store/sqlite_store.h"

namespace mailscope::store {
namespace {

using namespace std::chrono_literals;

std::string Encoded(std::int64_t time_us, std::string_view event, std::size_t pad = 0) {
  RecordView r;
  r.time_us = time_us;
  r.source = Source::kExim;
  r.event = event;
  const std::string fields = "{\"pad\":\"" + std::string(pad, 'p') + "\"}";
  r.fields = fields;
  std::string out;
  AppendRecord(r, out);
  return out;
}

std::unique_ptr<RecordStore> Open(const std::string& path) {
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return std::move(*store);
}

std::uint64_t Rows(const std::string& path) {
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadOnly);
  EXPECT_TRUE(store.ok());
  auto n = (*store)->RowCount();
  EXPECT_TRUE(n.ok());
  return *n;
}

template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(RecordsWriterTest, WritesEverythingPushedInBatches) {
  testing::TempDir dir("ms-writer");
  const std::string path = dir.File("r.sqlite");
  SystemClock clock;
  RecordsWriterOptions options;
  options.batch_size = 100;
  RecordsWriter writer(Open(path), nullptr, options, clock);
  for (int i = 0; i < 2500; ++i) ASSERT_TRUE(writer.Push(Encoded(i, "msg:delivery")));
  ASSERT_TRUE(WaitFor([&] { return writer.figures().written == 2500; }));
  const RecordsFigures f = writer.figures();
  EXPECT_GE(f.batches, 25u);  // at most 100 records a transaction
  EXPECT_EQ(f.queued_records, 0u);
  EXPECT_EQ(f.queued_bytes, 0u);
  EXPECT_EQ(f.database_errors, 0u);
  EXPECT_EQ(Rows(path), 2500u);
}

TEST(RecordsWriterTest, CapturesBecomeRecordsOnTheWriterThread) {
  testing::TempDir dir("ms-writer");
  const std::string path = dir.File("r.sqlite");
  SystemClock clock;
  Event e;
  e.source = Source::kExim;
  e.name = InternName("msg:delivery");
  e.time = TimePoint(std::chrono::microseconds(1'000'000));
  e.Add(InternName("message_exim_id"), Value::String("1xaInK-00045c-1N"));
  e.Add(InternName("queue_time"), Value::Int(1500).WithUnit(Unit::kMilliseconds));
  e.Add(InternName("latin1"), Value::String("caf\xe9"));
  RecordEncoder encoder;
  std::string capture, record;
  encoder.Capture(e, 3, 4, capture);
  encoder.Append(e, 3, 4, record);
  {
    RecordsWriter writer(Open(path), nullptr, {}, clock);
    ASSERT_TRUE(writer.Push(capture));
    ASSERT_TRUE(writer.Push(Encoded(2'000'000, "a:record")));
  }
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadOnly);
  ASSERT_TRUE(store.ok());
  std::vector<std::string> rows;
  ASSERT_TRUE((*store)
                  ->Read({},
                         [&](const RecordView& r) {
                           std::string again;
                           AppendRecord(r, again);
                           rows.push_back(again);
                           return true;
                         })
                  .ok());
  ASSERT_EQ(rows.size(), 2u);
  // SQLite keeps no key: the record read back has stream and seq 0.
  RecordView want;
  std::size_t size = 0;
  ASSERT_TRUE(DecodeRecord(record, want, &size).ok());
  want.stream = want.seq = 0;
  std::string expected;
  AppendRecord(want, expected);
  EXPECT_EQ(rows[0], expected);
  EXPECT_NE(rows[0].find(R"("latin1":{"base64":"Y2Fm6Q=="})"), std::string::npos);
}

TEST(RecordsWriterTest, StopWritesWhatIsPending) {
  testing::TempDir dir("ms-writer");
  const std::string path = dir.File("r.sqlite");
  SystemClock clock;
  {
    RecordsWriter writer(Open(path), nullptr, {}, clock);
    for (int i = 0; i < 5000; ++i) writer.Push(Encoded(i, "e"));
  }
  EXPECT_EQ(Rows(path), 5000u);
}

TEST(RecordsWriterTest, AFullQueueDropsAndCounts) {
  testing::TempDir dir("ms-writer");
  const std::string path = dir.File("r.sqlite");
  SystemClock clock;
  RecordsWriterOptions options;
  const std::string record = Encoded(1, "e", 1000);
  options.queue_bytes = record.size() * 3;
  RecordsWriter writer(Open(path), nullptr, options, clock);
  // A record larger than the whole queue never fits.
  EXPECT_FALSE(writer.Push(Encoded(1, "e", options.queue_bytes)));
  EXPECT_EQ(writer.figures().dropped_queue_full, 1u);
  std::uint64_t accepted = 0;
  for (int i = 0; i < 2000; ++i) accepted += writer.Push(record) ? 1 : 0;
  writer.Stop();
  const RecordsFigures f = writer.figures();
  EXPECT_EQ(f.written, accepted);
  EXPECT_EQ(f.dropped_queue_full, 1 + 2000 - accepted);
  EXPECT_EQ(Rows(path), accepted);
}

TEST(RecordsWriterTest, RetentionByAgeAndSize) {
  testing::TempDir dir("ms-writer");
  const std::string path = dir.File("r.sqlite");
  FakeClock clock(TimePoint(std::chrono::seconds(1'000'000)));
  RecordsWriterOptions options;
  options.max_age = std::chrono::seconds(100);
  options.retention_interval = 20ms;
  {
    RecordsWriter writer(Open(path), nullptr, options, clock);
    const std::int64_t now_us = 1'000'000'000'000;
    for (int i = 0; i < 300; ++i) writer.Push(Encoded(now_us - (i + 1) * 1'000'000, "e"));
    // 1..100 s old stay; 101..300 s old go (strictly older than the cutoff).
    ASSERT_TRUE(WaitFor([&] { return writer.figures().deleted_age == 200; }));
    EXPECT_EQ(writer.figures().written, 300u);
  }
  EXPECT_EQ(Rows(path), 100u);
}

TEST(RecordsWriterTest, RetentionBySizeKeepsTheNewest) {
  testing::TempDir dir("ms-writer");
  const std::string path = dir.File("r.sqlite");
  SystemClock clock;
  RecordsWriterOptions options;
  options.retention_interval = 20ms;
  options.max_size = 200 * 1024;
  {
    RecordsWriter writer(Open(path), nullptr, options, clock);
    for (int i = 0; i < 400; ++i) writer.Push(Encoded(i, "e", 2000));
    ASSERT_TRUE(WaitFor([&] {
      auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadOnly);
      return writer.figures().written == 400 && writer.figures().deleted_size > 0 &&
             *(*store)->RowCount() < 100;
    }));
  }
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  EXPECT_LE(*(*store)->UsedBytes(), 200u * 1024);
  // The newest rows are the ones kept.
  RecordQuery q;
  q.newest_first = true;
  std::int64_t newest = -1;
  ASSERT_TRUE((*store)
                  ->Read(q,
                         [&](const RecordView& r) {
                           newest = r.time_us;
                           return false;
                         })
                  .ok());
  EXPECT_EQ(newest, 399);
}

}  // namespace
}  // namespace mailscope::store
