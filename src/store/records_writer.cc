#include "store/records_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace mailscope::store {

using namespace std::chrono_literals;

RecordsWriter::RecordsWriter(std::unique_ptr<RecordStore> store, std::unique_ptr<Spool> spool,
                             RecordsWriterOptions options, const Clock& clock)
    : store_(std::move(store)), spool_(std::move(spool)), options_(options), clock_(clock) {
  batch_.reserve(std::max<std::size_t>(options_.batch_size, 1));
  if (spool_ != nullptr) {
    spool_records_ = spool_->records();
    spool_bytes_ = spool_->bytes();
  }
  thread_ = std::thread([this] { Run(); });
}

RecordsWriter::~RecordsWriter() { Stop(); }

void RecordsWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RecordsWriter::Push(std::string_view record) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + record.size() > options_.queue_bytes) {
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    was_empty = pending_.empty();
    pending_.append(record);
    ++pending_records_;
  }
  queued_records_.fetch_add(1, std::memory_order_relaxed);
  // After queued_records_: settled() may then only be too low, never too high.
  accepted_.fetch_add(1, std::memory_order_release);
  queued_bytes_.fetch_add(record.size(), std::memory_order_relaxed);
  if (was_empty) wake_.notify_one();
  return true;
}

std::uint64_t RecordsWriter::settled() const {
  const std::uint64_t accepted = accepted_.load(std::memory_order_acquire);
  const std::uint64_t queued = queued_records_.load(std::memory_order_acquire);
  return accepted > queued ? accepted - queued : 0;
}

RecordsFigures RecordsWriter::figures() const {
  RecordsFigures f;
  f.written = written_.load(std::memory_order_relaxed);
  f.batches = batches_.load(std::memory_order_relaxed);
  f.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  f.dropped_shutdown = dropped_shutdown_.load(std::memory_order_relaxed);
  f.database_errors = database_errors_.load(std::memory_order_relaxed);
  f.queued_records = queued_records_.load(std::memory_order_relaxed);
  f.queued_bytes = queued_bytes_.load(std::memory_order_relaxed);
  f.deleted_age = deleted_age_.load(std::memory_order_relaxed);
  f.deleted_size = deleted_size_.load(std::memory_order_relaxed);
  f.dropped_spool_full = dropped_spool_full_.load(std::memory_order_relaxed);
  f.dropped_rejected = store_->rejected();
  f.spool_records = spool_records_.load(std::memory_order_relaxed);
  f.spool_bytes = spool_bytes_.load(std::memory_order_relaxed);
  f.connected = connected_figure_.load(std::memory_order_relaxed);
  return f;
}

bool RecordsWriter::TakePending() {
  if (work_done_ < work_.size()) return true;
  std::uint64_t taken;
  {
    std::lock_guard lock(mu_);
    if (pending_.empty()) return false;
    incoming_.clear();
    incoming_.swap(pending_);
    taken = pending_records_;
    pending_records_ = 0;
  }
  // The loop hands over captures; their JSON is made here, off the loop.
  work_.clear();
  work_done_ = 0;
  std::uint64_t converted = 0;
  std::size_t at = 0;
  while (at < incoming_.size()) {
    const std::string_view rest = std::string_view(incoming_).substr(at);
    std::size_t used = 0;
    Status s;
    if (rest.size() > 4 && static_cast<std::uint8_t>(rest[4]) == kCaptureVersion) {
      s = encoder_.Finish(rest, work_, &used);
    } else {
      RecordView r;
      s = DecodeRecord(rest, r, &used);
      if (s.ok()) work_.append(rest.substr(0, used));
    }
    if (!s.ok()) {
      // Only this process wrote these bytes: a bug. Drop the rest rather
      // than write garbage.
      spdlog::error("records: {}; {} queued bytes dropped", s.message(), rest.size());
      break;
    }
    at += used;
    ++converted;
  }
  if (converted < taken) queued_records_.fetch_sub(taken - converted, std::memory_order_relaxed);
  queued_bytes_.fetch_sub(incoming_.size(), std::memory_order_relaxed);
  queued_bytes_.fetch_add(work_.size(), std::memory_order_relaxed);
  return !work_.empty();
}

bool RecordsWriter::WriteRecords(std::string_view data, std::size_t* done, bool count_queued) {
  const std::size_t batch_size = std::max<std::size_t>(options_.batch_size, 1);
  while (*done < data.size()) {
    batch_.clear();
    std::size_t at = *done;
    while (at < data.size() && batch_.size() < batch_size) {
      RecordView r;
      std::size_t size = 0;
      const Status s = DecodeRecord(data.substr(at), r, &size);
      if (!s.ok()) {
        // The loop wrote these bytes and the spool keeps whole records only:
        // a record that does not decode is a bug. Drop the rest rather than
        // write garbage.
        spdlog::error("records: {}; {} bytes dropped", s.message(), data.size() - at);
        at = data.size();
        break;
      }
      batch_.push_back(r);
      at += size;
    }
    if (!batch_.empty()) {
      const Status s = store_->Insert(batch_);
      if (!s.ok()) {
        database_errors_.fetch_add(1, std::memory_order_relaxed);
        if (store_->Remote()) {
          Disconnected(s);
        } else {
          spdlog::warn("records: {} ({} records wait)", s.message(),
                       queued_records_.load(std::memory_order_relaxed));
        }
        return false;
      }
      written_.fetch_add(batch_.size(), std::memory_order_relaxed);
      batches_.fetch_add(1, std::memory_order_relaxed);
      if (count_queued) queued_records_.fetch_sub(batch_.size(), std::memory_order_relaxed);
    }
    if (count_queued) queued_bytes_.fetch_sub(at - *done, std::memory_order_relaxed);
    *done = at;
  }
  return true;
}

bool RecordsWriter::WriteWork() { return WriteRecords(work_, &work_done_, true); }

void RecordsWriter::Disconnected(const Status& why) {
  if (connected_) {
    spdlog::warn("records: {}; records go to the spool until the database is back", why.message());
  }
  connected_ = false;
  connected_figure_.store(false, std::memory_order_relaxed);
  next_connect_ = std::chrono::steady_clock::now() + backoff_;
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 30s);
}

void RecordsWriter::SpoolWork() {
  const std::string_view rest = std::string_view(work_).substr(work_done_);
  if (rest.empty()) return;
  const RecordCount count = CountRecords(rest);
  Status s = spool_ != nullptr ? spool_->Append(rest.substr(0, count.bytes), count.records)
                               : Unavailable("no spool");
  if (!s.ok()) {
    dropped_spool_full_.fetch_add(count.records, std::memory_order_relaxed);
    spdlog::error("records: {} records dropped: {}", count.records, s.message());
  }
  queued_records_.fetch_sub(count.records, std::memory_order_relaxed);
  queued_bytes_.fetch_sub(rest.size(), std::memory_order_relaxed);
  work_done_ = work_.size();
  if (spool_ != nullptr) {
    spool_records_.store(spool_->records(), std::memory_order_relaxed);
    spool_bytes_.store(spool_->bytes(), std::memory_order_relaxed);
  }
}

bool RecordsWriter::DrainSpool() {
  while (spool_ != nullptr && !spool_->empty()) {
    if (Status s = spool_->ReadOldest(spooled_); !s.ok()) {
      Disconnected(s);  // tried again after the back-off
      return false;
    }
    std::size_t done = 0;
    if (!WriteRecords(spooled_, &done, false)) return false;
    if (Status s = spool_->PopOldest(); !s.ok()) {
      Disconnected(s);
      return false;
    }
    spool_records_.store(spool_->records(), std::memory_order_relaxed);
    spool_bytes_.store(spool_->bytes(), std::memory_order_relaxed);
    // New records wait meanwhile; keep the loop's queue from filling.
    if (TakePending()) SpoolWork();
  }
  return true;
}

void RecordsWriter::Pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
}

void RecordsWriter::ApplyRetention() {
  auto write_between = [this] {
    if (TakePending()) {
      if (store_->Remote()) {
        SpoolWork();  // drained in order once retention is done
      } else {
        WriteWork();
      }
    }
  };
  auto fail = [this](const Status& s) {
    database_errors_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("records retention: {}", s.message());
  };
  bool deleted = false;
  if (options_.max_age.count() > 0) {
    const std::int64_t cutoff = (clock_.Now() - options_.max_age).time_since_epoch().count();
    for (;;) {
      auto n = store_->DeleteBefore(cutoff, kRetentionChunk);
      if (!n.ok()) return fail(n.status());
      deleted_age_.fetch_add(*n, std::memory_order_relaxed);
      deleted = deleted || *n > 0;
      if (*n < kRetentionChunk) break;
      write_between();
    }
  }
  if (options_.max_size > 0) {
    auto n = store_->TrimToSize(options_.max_size, write_between);
    if (!n.ok()) return fail(n.status());
    deleted_size_.fetch_add(*n, std::memory_order_relaxed);
  }
  if (deleted) {
    if (Status s = store_->ReleaseSpace(); !s.ok()) fail(s);
  }
}

void RecordsWriter::RunRemote() {
  if (!connected_ && std::chrono::steady_clock::now() >= next_connect_) {
    if (Status s = store_->Reconnect(); s.ok()) {
      spdlog::info("records: the database is back; {} spooled records to write",
                   spool_ != nullptr ? spool_->records() : 0);
      connected_ = true;
      connected_figure_.store(true, std::memory_order_relaxed);
      backoff_ = 100ms;
    } else {
      database_errors_.fetch_add(1, std::memory_order_relaxed);
      Disconnected(s);
    }
  }
  if (connected_) DrainSpool();  // a failure disconnects: what comes next is spooled
  if (!TakePending()) return;
  if (connected_ && (spool_ == nullptr || spool_->empty()) && WriteWork()) return;
  SpoolWork();
}

void RecordsWriter::Run() {
  auto sqlite_backoff = 100ms;
  auto next_retention = std::chrono::steady_clock::now();
  const bool retention = options_.max_age.count() > 0 || options_.max_size > 0;
  const bool remote = store_->Remote();
  if (remote) {
    // The store was opened without a connection when the database was away.
    if (Status s = store_->Reconnect(); !s.ok())
      Disconnected(s);
    else
      connected_figure_.store(true, std::memory_order_relaxed);
  }
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(mu_);
      auto until = std::chrono::steady_clock::now() + 1h;
      if (retention) until = std::min(until, next_retention);
      if (remote && !connected_) until = std::min(until, next_connect_);
      if (remote && connected_ && spool_ != nullptr && !spool_->empty())
        until = std::chrono::steady_clock::now();
      wake_.wait_until(lock, until, [this] { return stopping_ || !pending_.empty(); });
      stopping = stopping_;
    }
    if (remote) {
      RunRemote();
    } else if (TakePending()) {
      if (WriteWork()) {
        sqlite_backoff = 100ms;
      } else if (!stopping) {
        Pause(sqlite_backoff);
        sqlite_backoff = std::min<std::chrono::milliseconds>(sqlite_backoff * 2, 30s);
        continue;
      }
    }
    if (retention && (!remote || connected_) &&
        std::chrono::steady_clock::now() >= next_retention) {
      ApplyRetention();
      next_retention = std::chrono::steady_clock::now() + options_.retention_interval;
    }
    if (stopping) {
      // Whatever came in meanwhile: one last attempt, or the spool.
      while (TakePending()) {
        if (remote) {
          if (!connected_ || (spool_ != nullptr && !spool_->empty()) || !WriteWork()) SpoolWork();
        } else if (!WriteWork()) {
          break;
        }
      }
      const std::uint64_t left = queued_records_.load(std::memory_order_relaxed);
      if (left > 0) {
        dropped_shutdown_.fetch_add(left, std::memory_order_relaxed);
        spdlog::error("records: {} records not written: the database failed at shutdown", left);
      }
      return;
    }
  }
}

}  // namespace mailscope::store
