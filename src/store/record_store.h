// RecordStore: where records are kept, SQLite (sqlite_store.h) or
// PostgreSQL (postgres_store.h). The writer thread writes and trims through
// it; `mailscope events` reads through it. Thread-compatible: one thread
// uses a store at a time.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/record.h"

namespace mailscope::store {

// Rows a retention transaction deletes at most.
inline constexpr std::uint64_t kRetentionChunk = 10'000;

// What to read back. Times are microseconds since the epoch.
struct RecordQuery {
  std::int64_t since_us = INT64_MIN;
  std::int64_t until_us = INT64_MAX;  // exclusive
  // When not empty, only these event names (an index lookup each).
  std::vector<std::string> events;
  // Indexed columns that must equal a value, ASCII case folded as the filter
  // language compares text: "remote_ip", "user" or "message_id".
  struct Equals {
    std::string column;
    std::string value;
  };
  std::vector<Equals> equals;
  bool newest_first = false;
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // Writes `records` in one transaction: all or none. A record whose key
  // (stream, seq) is already there is not written again, where the store
  // keeps keys (PostgreSQL; SQLite is written by one process that never
  // retries a committed batch).
  virtual Status Insert(std::span<const RecordView> records) = 0;

  // Records the store refused for what they hold (not for a failure of its
  // own), left out; read from any thread.
  virtual std::uint64_t rejected() const { return 0; }

  // Whether the store is a server that may go away: its writer spools
  // records while it is unreachable (see RecordsWriter).
  virtual bool Remote() const = 0;
  // Connects again after a failure (Remote() stores). OK when usable.
  virtual Status Reconnect() = 0;

  // Retention: deletes rows older than `time_us`, at most `limit` in one
  // transaction, oldest first; returns how many went.
  virtual Result<std::uint64_t> DeleteBefore(std::int64_t time_us, std::uint64_t limit) = 0;
  // Brings the store back towards `max_bytes` when it is over; returns the
  // rows deleted. Each store measures its own size (see its header).
  virtual Result<std::uint64_t> TrimToSize(std::uint64_t max_bytes,
                                           const std::function<void()>& between_chunks) = 0;

  // Makes the space of deleted rows free (SQLite: gives it back to the file
  // system; PostgreSQL: VACUUM, so that new rows reuse it).
  virtual Status ReleaseSpace() = 0;

  // The event names present, sorted.
  virtual Status DistinctEvents(std::vector<std::string>& out) = 0;
  // Calls `row` for each record `query` selects, oldest first (or newest
  // first), until it returns false. The view is valid during the call.
  virtual Status Read(const RecordQuery& query,
                      const std::function<bool(const RecordView&)>& row) = 0;
  virtual Result<std::uint64_t> RowCount() = 0;
};

}  // namespace mailscope::store
