#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/temp_dir_testing.h"

namespace mailscope::store {
namespace {

RecordView Make(std::int64_t time_us, std::string_view event, std::string_view fields = "{}") {
  RecordView r;
  r.time_us = time_us;
  r.source = Source::kExim;
  r.event = event;
  r.fields = fields;
  return r;
}

std::vector<std::string> Events(SqliteStore& store, const RecordQuery& q) {
  std::vector<std::string> out;
  EXPECT_TRUE(store
                  .Read(q,
                        [&](const RecordView& r) {
                          out.push_back(std::to_string(r.time_us) + " " + std::string(r.event));
                          return true;
                        })
                  .ok());
  return out;
}

TEST(SqliteStoreTest, WritesAndReadsBack) {
  testing::TempDir dir("ms-sqlite");
  const std::string path = dir.File("records.sqlite");
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
  ASSERT_TRUE(store.ok()) << store.status().message();
  RecordView full = Make(30, "msg:delivery", R"({"a":1})");
  full.level = Level::kWarn;
  full.kind = "delivery";
  full.outcome = "delivered";
  full.remote_ip = "192.0.2.1";
  full.user = "bob";
  full.sender = "a@x";
  full.recipient = "b@y";
  full.domain = "y";
  full.message_id = "1x-2y-3z";
  full.categories = R"(["smtp"])";
  full.units = R"({"a":"ms"})";
  std::vector<RecordView> rows = {Make(10, "tcp:connect"), Make(20, "msg:rcpt:defer"), full};
  ASSERT_TRUE((*store)->Insert(rows).ok());
  EXPECT_EQ(*(*store)->RowCount(), 3u);

  EXPECT_EQ(Events(**store, {}),
            (std::vector<std::string>{"10 tcp:connect", "20 msg:rcpt:defer", "30 msg:delivery"}));
  RecordView dovecot = Make(40, "msg:delivery");  // the same name from another source
  dovecot.source = Source::kDovecot;
  ASSERT_TRUE((*store)->Insert(std::vector<RecordView>{dovecot, Make(50, "tcp:connect")}).ok());
  std::vector<std::string> names;
  ASSERT_TRUE((*store)->DistinctEvents(names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"msg:delivery", "msg:rcpt:defer", "tcp:connect"}));
  RecordQuery q;
  q.since_us = 15;
  q.until_us = 30;
  EXPECT_EQ(Events(**store, q), (std::vector<std::string>{"20 msg:rcpt:defer"}));
  q = {};
  q.events = {"msg:delivery", "tcp:connect"};
  q.newest_first = true;
  EXPECT_EQ(Events(**store, q), (std::vector<std::string>{"50 tcp:connect", "40 msg:delivery",
                                                          "30 msg:delivery", "10 tcp:connect"}));

  // Every column comes back; a reader opens the file while the writer has it.
  auto reader = SqliteStore::Open(path, SqliteStore::Mode::kReadOnly);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  q = {};
  q.since_us = 30;
  q.until_us = 31;
  int seen = 0;
  ASSERT_TRUE((*reader)
                  ->Read(q,
                         [&](const RecordView& r) {
                           ++seen;
                           EXPECT_EQ(r.source, Source::kExim);
                           EXPECT_EQ(r.level, Level::kWarn);
                           EXPECT_EQ(r.kind, "delivery");
                           EXPECT_EQ(r.outcome, "delivered");
                           EXPECT_EQ(r.remote_ip, "192.0.2.1");
                           EXPECT_EQ(r.user, "bob");
                           EXPECT_EQ(r.sender, "a@x");
                           EXPECT_EQ(r.recipient, "b@y");
                           EXPECT_EQ(r.domain, "y");
                           EXPECT_EQ(r.message_id, "1x-2y-3z");
                           EXPECT_EQ(r.categories, R"(["smtp"])");
                           EXPECT_EQ(r.fields, R"({"a":1})");
                           EXPECT_EQ(r.units, R"({"a":"ms"})");
                           return true;
                         })
                  .ok());
  EXPECT_EQ(seen, 1);
}

TEST(SqliteStoreTest, HostileValuesComeBackByteForByte) {
  testing::TempDir dir("ms-sqlite");
  auto store = SqliteStore::Open(dir.File("r.sqlite"), SqliteStore::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  const std::string nul("x\0y'); DROP TABLE events; --", 29);
  const std::string big = "{\"v\":\"" + std::string(1 << 20, 'q') + "\"}";
  RecordView r = Make(1, "e", big);
  r.user = nul;
  r.remote_ip = "\xff\xfe";
  ASSERT_TRUE((*store)->Insert(std::vector<RecordView>{r}).ok());
  int seen = 0;
  ASSERT_TRUE((*store)
                  ->Read({},
                         [&](const RecordView& got) {
                           ++seen;
                           EXPECT_EQ(got.user, nul);
                           EXPECT_EQ(got.remote_ip, "\xff\xfe");
                           EXPECT_EQ(got.fields, big);
                           return true;
                         })
                  .ok());
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(*(*store)->RowCount(), 1u);
}

TEST(SqliteStoreTest, RetentionDeletesOldestFirstAndFreesPages) {
  testing::TempDir dir("ms-sqlite");
  auto store = SqliteStore::Open(dir.File("r.sqlite"), SqliteStore::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  const std::string fields = "{\"pad\":\"" + std::string(2000, 'p') + "\"}";
  std::vector<RecordView> rows;
  for (int i = 0; i < 2000; ++i) rows.push_back(Make(1000 - i % 1000, "e", fields));
  ASSERT_TRUE((*store)->Insert(rows).ok());
  const std::uint64_t used = *(*store)->UsedBytes();
  EXPECT_GT(used, 2000u * 2000u);

  EXPECT_EQ(*(*store)->DeleteBefore(101, 50), 50u);  // times 1..100, twice each: 50 of 200
  EXPECT_EQ(*(*store)->DeleteBefore(101, 1000), 150u);
  EXPECT_EQ(*(*store)->DeleteBefore(101, 1000), 0u);
  EXPECT_EQ(*(*store)->DeleteOldest(800), 800u);
  RecordQuery q;
  q.until_us = 501;
  EXPECT_TRUE(Events(**store, q).empty());  // times up to 500 went first
  EXPECT_EQ(*(*store)->RowCount(), 1000u);
  EXPECT_LT(*(*store)->UsedBytes(), used * 6 / 10);
  // New rows take the freed pages before the file grows.
  const auto file_bytes = [&] { return std::filesystem::file_size(dir.File("r.sqlite")); };
  ASSERT_TRUE((*store)->Insert(std::vector<RecordView>{Make(2000, "late", fields)}).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("r.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const auto before = file_bytes();
  std::vector<RecordView> more;
  for (int i = 0; i < 500; ++i) more.push_back(Make(3000 + i, "later", fields));
  ASSERT_TRUE((*store)->Insert(more).ok());
  ASSERT_EQ(sqlite3_open(dir.File("r.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(file_bytes(), before);
}

TEST(SqliteStoreTest, ACheckpointerThreadKeepsTheWalShort) {
  testing::TempDir dir("ms-sqlite");
  const std::string path = dir.File("r.sqlite");
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  const std::string fields = "{\"pad\":\"" + std::string(4000, 'p') + "\"}";
  std::vector<RecordView> rows;
  for (int i = 0; i < 500; ++i) rows.push_back(Make(i, "e", fields));
  // 20 commits of about 2 MiB: the WAL passes the checkpointer's mark.
  for (int batch = 0; batch < 20; ++batch) ASSERT_TRUE((*store)->Insert(rows).ok());
  // Nothing but a checkpoint writes the main file: the thread's, here (the
  // writer checkpoints itself only past 32,000 pages).
  const auto main_bytes = [&] { return std::filesystem::file_size(path); };
  for (int i = 0; i < 300 && main_bytes() < 30u << 20; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(main_bytes(), 30u << 20);
  EXPECT_EQ(*(*store)->RowCount(), 10'000u);
}

TEST(SqliteStoreTest, RefusesANewerSchemaAndForeignFiles) {
  testing::TempDir dir("ms-sqlite");
  const std::string path = dir.File("r.sqlite");
  ASSERT_TRUE(SqliteStore::Open(path, SqliteStore::Mode::kReadWrite).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE mailscope_schema SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto again = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("schema version 99 is newer"), std::string::npos);
  EXPECT_FALSE(SqliteStore::Open(path, SqliteStore::Mode::kReadOnly).ok());

  const std::string other = dir.File("other.sqlite");
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto foreign = SqliteStore::Open(other, SqliteStore::Mode::kReadOnly);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("not a mailscope records file"), std::string::npos);
  EXPECT_FALSE(SqliteStore::Open(dir.File("missing.sqlite"), SqliteStore::Mode::kReadOnly).ok());
}

TEST(SqliteStoreTest, ReopeningKeepsRowsAndSchema) {
  testing::TempDir dir("ms-sqlite");
  const std::string path = dir.File("r.sqlite");
  {
    auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Insert(std::vector<RecordView>{Make(5, "a")}).ok());
  }
  auto store = SqliteStore::Open(path, SqliteStore::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Insert(std::vector<RecordView>{Make(6, "b")}).ok());
  EXPECT_EQ(Events(**store, {}), (std::vector<std::string>{"5 a", "6 b"}));
}

}  // namespace
}  // namespace mailscope::store
