#include "net/queued_writer.h"

#include <utility>

namespace mailscope::net {

constexpr auto kRelaxed = std::memory_order_relaxed;

QueuedWriter::QueuedWriter(std::unique_ptr<BatchSink> sink, Options options)
    : options_(options), sink_(std::move(sink)), thread_([this] { Run(); }) {}

QueuedWriter::~QueuedWriter() {
  Abort();
  if (thread_.joinable()) thread_.join();
}

void QueuedWriter::Push(std::string_view payload) {
  {
    std::lock_guard lock(mu_);
    const std::size_t size = payload.size() + (options_.lines ? 1 : 0);
    if (closed_ || pending_ends_.size() >= options_.max_events ||
        pending_.size() + size > options_.max_bytes) {
      counters_.dropped.fetch_add(1, kRelaxed);
      return;
    }
    pending_.append(payload);
    if (options_.lines) pending_ += '\n';
    pending_ends_.push_back(pending_.size());
  }
  wake_.notify_one();
}

void QueuedWriter::Reopen() {
  {
    std::lock_guard lock(mu_);
    reopen_ = true;
  }
  wake_.notify_one();
}

void QueuedWriter::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  wake_.notify_one();
}

void QueuedWriter::Abort() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    abort_.store(true);
  }
  wake_.notify_one();
}

bool QueuedWriter::WaitEnded(TimePoint deadline) {
  std::unique_lock lock(mu_);
  return changed_.wait_until(lock, deadline, [this] { return ended_; });
}

bool QueuedWriter::ended() const {
  std::lock_guard lock(mu_);
  return ended_;
}

void QueuedWriter::OnEnded(std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    if (!ended_) {
      on_ended_ = std::move(done);
      return;
    }
  }
  done();
}

std::size_t QueuedWriter::queued() const {
  std::lock_guard lock(mu_);
  return pending_ends_.size() + writing_events_;
}

bool QueuedWriter::WaitIdleForTesting(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout,
                           [this] { return pending_ends_.empty() && writing_events_ == 0; });
}

void QueuedWriter::Run() {
  std::string bytes;
  std::vector<std::size_t> ends;
  for (;;) {
    bool reopen = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return !pending_ends_.empty() || reopen_ || closed_; });
      if (abort_.load()) {
        counters_.dropped.fetch_add(pending_ends_.size(), kRelaxed);
        pending_.clear();
        pending_ends_.clear();
        break;
      }
      if (pending_ends_.empty() && !reopen_) break;  // closed, and all written
      bytes.swap(pending_);
      ends.swap(pending_ends_);
      writing_events_ = ends.size();
      reopen = std::exchange(reopen_, false);
    }
    if (reopen) sink_->Reopen();
    if (!ends.empty()) {
      if (abort_.load()) {
        counters_.dropped.fetch_add(ends.size(), kRelaxed);
      } else {
        const bool ok = sink_->Write(bytes, ends, abort_);
        (ok ? counters_.sent : counters_.failed).fetch_add(ends.size(), kRelaxed);
      }
      bytes.clear();
      ends.clear();
    }
    {
      std::lock_guard lock(mu_);
      writing_events_ = 0;
    }
    changed_.notify_all();
  }
  std::function<void()> done;
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    done = std::move(on_ended_);
  }
  changed_.notify_all();
  if (done) done();
}

}  // namespace mailscope::net
