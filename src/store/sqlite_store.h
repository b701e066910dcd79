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
// block the writer. Pages retention frees are reused for new rows; the file
// does not shrink (VACUUM it while serve is stopped for that).
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
#include "store/record_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mailscope::store {

inline constexpr int kSqliteSchemaVersion = 2;
inline constexpr std::string_view kSqliteFileName = "records.sqlite";
// The records file of a data directory: DATA_DIR/records.sqlite.
inline std::string SqlitePath(std::string_view data_dir) {
  return std::string(data_dir) + "/" + std::string(kSqliteFileName);
}

class SqliteStore : public RecordStore {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (kReadWrite: creates, and migrates to kSqliteSchemaVersion) the
  // file at `path`. A file of a newer schema is refused.
  // kSynced makes every commit reach the disk before it returns
  // (synchronous=FULL): what a reader of settled records (a log source's
  // saved position) counts on survives a crash of the machine too.
  enum class Commits { kNormal, kSynced };
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, Mode mode,
                                                   Commits commits = Commits::kNormal);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // RecordStore. TrimToSize() measures the rows as the file's pages less its
  // free pages, and deletes the oldest rows (in proportion to the excess, at
  // least 1%, chunks of kRetentionChunk) until they fit; new rows reuse the
  // pages they leave, so the file stays near max_bytes.
  Status Insert(std::span<const RecordView> records) override;
  bool Remote() const override { return false; }
  Status Reconnect() override { return Status::Ok(); }
  Result<std::uint64_t> DeleteBefore(std::int64_t time_us, std::uint64_t limit) override;
  Result<std::uint64_t> TrimToSize(std::uint64_t max_bytes,
                                   const std::function<void()>& between_chunks) override;
  Status ReleaseSpace() override { return Status::Ok(); }  // freed pages are reused
  Status DistinctEvents(std::vector<std::string>& out) override;
  Status Read(const RecordQuery& query, const std::function<bool(const RecordView&)>& row) override;
  Result<std::uint64_t> RowCount() override;

  // Deletes the `limit` oldest rows in one transaction.
  Result<std::uint64_t> DeleteOldest(std::uint64_t limit);
  // Bytes the rows take: the file's pages less its free pages.
  Result<std::uint64_t> UsedBytes();

  const std::string& path() const { return path_; }

 private:
  SqliteStore(sqlite3* db, std::string path);
  Status Exec(const char* sql);
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Error(const char* what) const;
  Status Migrate();
  Status StartCheckpointer();

  struct Checkpointer;
  std::unique_ptr<Checkpointer> checkpointer_;  // read-write stores only
  sqlite3* db_;
  std::string path_;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
};

}  // namespace mailscope::store
