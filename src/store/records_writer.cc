#include "store/records_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace mailscope::store {

using namespace std::chrono_literals;

RecordsWriter::RecordsWriter(std::unique_ptr<SqliteStore> store, RecordsWriterOptions options,
                             const Clock& clock)
    : store_(std::move(store)), options_(options), clock_(clock) {
  batch_.reserve(std::max<std::size_t>(options_.batch_size, 1));
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
  queued_bytes_.fetch_add(record.size(), std::memory_order_relaxed);
  if (was_empty) wake_.notify_one();
  return true;
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
  return f;
}

bool RecordsWriter::TakePending() {
  if (work_done_ < work_.size()) return true;
  std::lock_guard lock(mu_);
  if (pending_.empty()) return false;
  work_.clear();
  work_.swap(pending_);
  work_done_ = 0;
  pending_records_ = 0;
  return true;
}

bool RecordsWriter::WriteWork() {
  const std::size_t batch_size = std::max<std::size_t>(options_.batch_size, 1);
  while (work_done_ < work_.size()) {
    batch_.clear();
    std::size_t at = work_done_;
    while (at < work_.size() && batch_.size() < batch_size) {
      RecordView r;
      std::size_t size = 0;
      const Status s = DecodeRecord(std::string_view(work_).substr(at), r, &size);
      if (!s.ok()) {
        // Only this process writes the buffer; a record it cannot read back
        // is a bug. Drop the rest rather than write garbage.
        spdlog::error("records: {}; {} queued bytes dropped", s.message(), work_.size() - at);
        at = work_.size();
        break;
      }
      batch_.push_back(r);
      at += size;
    }
    if (!batch_.empty()) {
      const Status s = store_->Insert(batch_);
      if (!s.ok()) {
        database_errors_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("records: {} ({} records wait)", s.message(),
                     queued_records_.load(std::memory_order_relaxed));
        return false;
      }
      written_.fetch_add(batch_.size(), std::memory_order_relaxed);
      batches_.fetch_add(1, std::memory_order_relaxed);
      queued_records_.fetch_sub(batch_.size(), std::memory_order_relaxed);
    }
    queued_bytes_.fetch_sub(at - work_done_, std::memory_order_relaxed);
    work_done_ = at;
  }
  return true;
}

void RecordsWriter::Pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
}

void RecordsWriter::ApplyRetention() {
  auto write_between = [this] {
    if (TakePending()) WriteWork();
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
    for (;;) {
      auto used = store_->UsedBytes();
      if (!used.ok()) return fail(used.status());
      if (*used <= options_.max_size) break;
      auto rows = store_->RowCount();
      if (!rows.ok()) return fail(rows.status());
      if (*rows == 0) break;
      // Rows in proportion to the excess, at least 1% of them.
      const double excess = static_cast<double>(*used - options_.max_size) / *used;
      const auto want =
          static_cast<std::uint64_t>(std::max(excess, 0.01) * static_cast<double>(*rows) + 1);
      auto n = store_->DeleteOldest(std::min(want, kRetentionChunk));
      if (!n.ok()) return fail(n.status());
      deleted_size_.fetch_add(*n, std::memory_order_relaxed);
      deleted = deleted || *n > 0;
      if (*n == 0) break;
      write_between();
    }
  }
  if (deleted) {
    if (Status s = store_->ReleaseFreePages(0); !s.ok()) fail(s);
  }
}

void RecordsWriter::Run() {
  auto backoff = 100ms;
  auto next_retention = std::chrono::steady_clock::now();
  const bool retention = options_.max_age.count() > 0 || options_.max_size > 0;
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(mu_);
      auto wait_until = retention ? next_retention : std::chrono::steady_clock::now() + 1h;
      wake_.wait_until(lock, wait_until, [this] { return stopping_ || !pending_.empty(); });
      stopping = stopping_;
    }
    if (TakePending()) {
      if (WriteWork()) {
        backoff = 100ms;
      } else if (!stopping) {
        Pause(backoff);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
        continue;
      }
    }
    if (retention && std::chrono::steady_clock::now() >= next_retention) {
      ApplyRetention();
      next_retention = std::chrono::steady_clock::now() + options_.retention_interval;
    }
    if (stopping) {
      // Whatever came in meanwhile, one last attempt; what fails is counted.
      while (TakePending()) {
        if (!WriteWork()) break;
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
