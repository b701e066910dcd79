// RecordsWriter: the records sink's own thread (DESIGN.md, "Threading").
//
// The loop thread hands it captures of events (RecordEncoder::Capture) or
// whole records with Push(), which copies the bytes into a pending buffer
// under a mutex and never waits on the database; the writer thread takes the
// whole buffer at once, makes records of the captures (the JSON is written
// here, off the loop) and writes them in transactions of at most
// `batch_size` records. A record counts as
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
// A remote store (PostgreSQL) may be away: then the writer spools (spool.h)
// what it cannot write, tries to connect again with back-off (0.1 s doubling
// to 30 s), and once connected drains the spool, oldest first, before it
// writes anything new; records stay in order and none is lost but what a
// full spool refuses (counted). A batch whose commit was lost with the
// connection is written again from the spool, and the records' keys keep
// it once.
//
// Stop() (and the destructor) writes what is pending, then ends the thread;
// a remote store that is away gets it in the spool.
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
#include "store/record_store.h"
#include "store/spool.h"

namespace mailscope::store {

struct RecordsWriterOptions {
  std::size_t batch_size = 1000;          // records per transaction
  std::uint64_t queue_bytes = 64u << 20;  // pending bytes before records drop
  std::chrono::seconds max_age{0};        // 0: rows are kept whatever their age
  std::uint64_t max_size = 0;             // bytes of rows; 0: no limit
  std::chrono::milliseconds retention_interval{60'000};
  // Remote stores: the spool's directory and bound.
  std::string spool_dir;
  std::uint64_t spool_bytes = 1u << 30;
};

// What the writer did; read from any thread.
struct RecordsFigures {
  std::uint64_t written = 0;             // records committed
  std::uint64_t batches = 0;             // transactions committed
  std::uint64_t dropped_queue_full = 0;  // not queued: the pending buffer was full
  std::uint64_t dropped_shutdown = 0;    // pending when mailscope stopped and the database failed
  std::uint64_t database_errors = 0;     // failed transactions and retention steps
  std::uint64_t queued_records = 0;      // waiting for the writer, now
  std::uint64_t queued_bytes = 0;
  std::uint64_t deleted_age = 0;         // rows retention removed for their age
  std::uint64_t deleted_size = 0;        // rows retention removed for the size limit
  std::uint64_t dropped_spool_full = 0;  // the store was away and the spool full
  std::uint64_t dropped_rejected = 0;    // the store refused them (RecordStore::rejected)
  std::uint64_t spool_records = 0;       // waiting in the spool, now
  std::uint64_t spool_bytes = 0;
  bool connected = true;  // a remote store answers
};

class RecordsWriter {
 public:
  // `spool` is used for a Remote() store and may be null otherwise.
  RecordsWriter(std::unique_ptr<RecordStore> store, std::unique_ptr<Spool> spool,
                RecordsWriterOptions options, const Clock& clock);
  ~RecordsWriter();
  RecordsWriter(const RecordsWriter&) = delete;
  RecordsWriter& operator=(const RecordsWriter&) = delete;

  // Queues one capture or record (any thread; the loop thread in mailscope).
  // False, and counted, when the pending buffer has no room for it.
  bool Push(std::string_view record);

  // Writes what is pending and ends the thread. Idempotent.
  void Stop();

  RecordsFigures figures() const;
  // Records Push() accepted that have reached their end: committed, in the
  // spool, or dropped and counted. Records end in the order they were
  // pushed, so once settled() >= n the first n pushed are done with. Any
  // thread.
  std::uint64_t settled() const;
  // Whether the pending records take more than half of queue_bytes. Any thread.
  bool backlogged() const {
    return queued_bytes_.load(std::memory_order_relaxed) > options_.queue_bytes / 2;
  }

 private:
  void Run();
  // Writes the records of work_ from work_done_ on; false after a failure.
  bool WriteWork();
  // Takes what is pending into work_ (when work_ is done). True when it took any.
  bool TakePending();
  void ApplyRetention();
  // Remote stores.
  void RunRemote();
  void SpoolWork();
  bool DrainSpool();
  void Disconnected(const Status& why);
  // Writes records from `data` in batches; false after a failure.
  // `*done` is the bytes written so far.
  bool WriteRecords(std::string_view data, std::size_t* done, bool count_queued);
  // Sleeps up to `d`, less when stopping.
  void Pause(std::chrono::milliseconds d);

  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<Spool> spool_;
  const RecordsWriterOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::string pending_;  // guarded by mu_
  std::uint64_t pending_records_ = 0;
  bool stopping_ = false;

  // Writer thread only.
  std::string incoming_;   // what the loop handed over: captures and records
  RecordEncoder encoder_;  // makes records of captures
  std::string work_;       // records
  std::size_t work_done_ = 0;
  std::vector<RecordView> batch_;
  std::string spooled_;  // a segment being drained
  bool connected_ = true;
  std::chrono::milliseconds backoff_{100};
  std::chrono::steady_clock::time_point next_connect_{};

  std::atomic<std::uint64_t> written_{0}, batches_{0}, dropped_queue_full_{0}, dropped_shutdown_{0},
      database_errors_{0}, deleted_age_{0}, deleted_size_{0}, dropped_spool_full_{0};
  std::atomic<std::uint64_t> queued_records_{0}, queued_bytes_{0}, spool_records_{0},
      spool_bytes_{0};
  std::atomic<std::uint64_t> accepted_{0};  // Push() calls that queued a record
  std::atomic<bool> connected_figure_{true};
  std::thread thread_;
};

}  // namespace mailscope::store
