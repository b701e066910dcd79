// RecordsWriter: the records sink's own thread (DESIGN.md, "Threading").
//
// The loop thread hands it encoded records (record.h) with Push(), which
// copies the bytes into a pending buffer under a mutex and never waits on
// the database; the writer thread takes the whole buffer at once and writes
// it in transactions of at most `batch_size` records. A record counts as
// written when its transaction has committed. The pending buffer is bounded
// (`queue_bytes`): a record that does not fit is dropped and counted, never
// silently. When the database fails, the writer keeps what it took and tries
// again with back-off (0.1 s doubling to 30 s) while new records queue up to
// the bound.
//
// Retention runs on the writer thread every `retention_interval`: rows older
// than `max_age` go, then the oldest rows while the rows take more than
// `max_size` bytes, each in transactions of kRetentionChunk rows with the
// pending records written between them, so writing waits for one chunk at
// most. Freed pages go back to the file system.
//
// Stop() (and the destructor) writes what is pending, then ends the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/clock.h"
#include "store/sqlite_store.h"

namespace mailscope::store {

struct RecordsWriterOptions {
  std::size_t batch_size = 1000;          // records per transaction
  std::uint64_t queue_bytes = 64u << 20;  // pending bytes before records drop
  std::chrono::seconds max_age{0};        // 0: rows are kept whatever their age
  std::uint64_t max_size = 0;             // bytes of rows; 0: no limit
  std::chrono::milliseconds retention_interval{60'000};
};

inline constexpr std::uint64_t kRetentionChunk = 10'000;

// What the writer did; read from any thread.
struct RecordsFigures {
  std::uint64_t written = 0;             // records committed
  std::uint64_t batches = 0;             // transactions committed
  std::uint64_t dropped_queue_full = 0;  // not queued: the pending buffer was full
  std::uint64_t dropped_shutdown = 0;    // pending when mailscope stopped and the database failed
  std::uint64_t database_errors = 0;     // failed transactions and retention steps
  std::uint64_t queued_records = 0;      // waiting for the writer, now
  std::uint64_t queued_bytes = 0;
  std::uint64_t deleted_age = 0;   // rows retention removed for their age
  std::uint64_t deleted_size = 0;  // rows retention removed for the size limit
};

class RecordsWriter {
 public:
  RecordsWriter(std::unique_ptr<SqliteStore> store, RecordsWriterOptions options,
                const Clock& clock);
  ~RecordsWriter();
  RecordsWriter(const RecordsWriter&) = delete;
  RecordsWriter& operator=(const RecordsWriter&) = delete;

  // Queues one encoded record (any thread; the loop thread in mailscope).
  // False, and counted, when the pending buffer has no room for it.
  bool Push(std::string_view record);

  // Writes what is pending and ends the thread. Idempotent.
  void Stop();

  RecordsFigures figures() const;

 private:
  void Run();
  // Writes the records of work_ from work_done_ on; false after a failure.
  bool WriteWork();
  // Takes what is pending into work_ (when work_ is done). True when it took any.
  bool TakePending();
  void ApplyRetention();
  // Sleeps up to `d`, less when stopping.
  void Pause(std::chrono::milliseconds d);

  std::unique_ptr<SqliteStore> store_;
  const RecordsWriterOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::string pending_;  // guarded by mu_
  std::uint64_t pending_records_ = 0;
  bool stopping_ = false;

  // Writer thread only.
  std::string work_;
  std::size_t work_done_ = 0;
  std::uint64_t work_records_ = 0;
  std::vector<RecordView> batch_;

  std::atomic<std::uint64_t> written_{0}, batches_{0}, dropped_queue_full_{0}, dropped_shutdown_{0},
      database_errors_{0}, deleted_age_{0}, deleted_size_{0};
  std::atomic<std::uint64_t> queued_records_{0}, queued_bytes_{0};
  std::thread thread_;
};

}  // namespace mailscope::store
