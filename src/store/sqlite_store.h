// SqliteStore: the records in an SQLite file, the records sink's embedded
// default (DATA_DIR/records.sqlite).
//
// Schema (version 1, in the table mailscope_schema):
//
//   CREATE TABLE events (
//     id INTEGER PRIMARY KEY,        -- insertion order
//     time INTEGER NOT NULL,         -- microseconds since 1970-01-01 UTC
//     source TEXT NOT NULL, event TEXT NOT NULL, level TEXT NOT NULL,
//     kind TEXT, outcome TEXT, remote_ip TEXT, user TEXT, sender TEXT,
//     recipient TEXT, domain TEXT, message_id TEXT,   -- NULL when absent
//     categories TEXT, fields TEXT NOT NULL, units TEXT)   -- JSON (record.h)
//
// with indexes on time, (source, event, time), (remote_ip, time),
// (user, time) and (message_id, time), the last three partial (non-NULL
// rows only). The file is in WAL mode with synchronous=NORMAL: a committed
// batch survives mailscope being killed; readers (`mailscope events`) never
// block the writer. auto_vacuum=INCREMENTAL gives the pages retention frees
// back to the file system.
//
// Every statement is prepared once with bound parameters; no SQL is built
// from values. Thread-compatible: one thread uses a store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/record.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mailscope::store {

inline constexpr int kSqliteSchemaVersion = 1;
inline constexpr std::string_view kSqliteFileName = "records.sqlite";

// What to read back. Times are microseconds since the epoch.
struct SqliteQuery {
  std::int64_t since_us = INT64_MIN;
  std::int64_t until_us = INT64_MAX;  // exclusive
  // When not empty, only these event names (an index lookup each).
  std::vector<std::string> events;
  bool newest_first = false;
};

class SqliteStore {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (kReadWrite: creates, and migrates to kSqliteSchemaVersion) the
  // file at `path`. A file of a newer schema is refused.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, Mode mode);
  ~SqliteStore();
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Writes `records` in one transaction: all or none.
  Status Insert(std::span<const RecordView> records);

  // Retention. Each deletes at most `limit` rows in one transaction, oldest
  // first, and returns how many went.
  Result<std::uint64_t> DeleteBefore(std::int64_t time_us, std::uint64_t limit);
  Result<std::uint64_t> DeleteOldest(std::uint64_t limit);
  // Bytes the rows take: the file's pages less its free pages.
  Result<std::uint64_t> UsedBytes();
  // Gives up to `pages` free pages back to the file system.
  Status ReleaseFreePages(std::uint64_t pages);
  Result<std::uint64_t> RowCount();

  // The event names present, sorted (an index scan).
  Status DistinctEvents(std::vector<std::string>& out);

  // Calls `row` for each record `query` selects, oldest first (or newest
  // first), until it returns false. The view is valid during the call.
  Status Read(const SqliteQuery& query, const std::function<bool(const RecordView&)>& row);

  const std::string& path() const { return path_; }

 private:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql);
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Error(const char* what) const;
  Status Migrate();

  sqlite3* db_;
  std::string path_;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
};

}  // namespace mailscope::store
