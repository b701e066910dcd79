// QueuedWriter: the bounded queue and writer thread behind the file and log
// event transports (event_transports.h). The loop thread pushes payloads; the
// writer thread takes everything queued as one batch and hands it to a
// BatchSink, so a slow disk, a full pipe or a stalled stderr never stalls the
// loop. Closing never waits either: the thread writes what is queued and
// then ends on its own, and whoever must know waits for that off the loop
// (TransportReaper).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/thread_annotations.h"
#include "net/transport_counters.h"

namespace mailscope::net {

// Where a QueuedWriter's batches go. Writer thread only; owned by the writer.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Writes one batch: `bytes` holds its payloads back to back, payload i
  // ending at ends[i]. True when all of it was written. A sink that waits for
  // its peer (a full pipe) gives up, returning false, once `abort` is set.
  virtual bool Write(std::string_view bytes, std::span<const std::size_t> ends,
                     const std::atomic<bool>& abort) = 0;
  // Log rotation: the next Write() opens what it writes to anew.
  virtual void Reopen() {}
};

// Thread-safe. Owns its sink, its queue and its thread. The counters follow
// event_transports.h: sent (written), dropped (not taken: full, closed, or
// left when aborted), failed (taken, the sink's Write() returned false).
class QueuedWriter {
 public:
  struct Options {
    std::size_t max_events = 10'000;
    std::size_t max_bytes = 16 * 1024 * 1024;  // with the LFs of `lines`
    // Each payload gets an LF appended (the file transport's lines).
    bool lines = false;
  };
  using TimePoint = std::chrono::steady_clock::time_point;

  QueuedWriter(std::unique_ptr<BatchSink> sink, Options options);
  // Aborts (what is still queued is dropped) and joins the thread: to have
  // it written, Close() and WaitEnded() first.
  ~QueuedWriter();
  QueuedWriter(const QueuedWriter&) = delete;
  QueuedWriter& operator=(const QueuedWriter&) = delete;

  // Queues a copy of `payload`; when closed or past either bound it is
  // dropped instead. Never waits for I/O.
  void Push(std::string_view payload);
  // The sink reopens before its next batch.
  void Reopen();
  // Takes nothing more; the thread writes what is queued, then ends. Returns
  // at once. Idempotent.
  void Close();
  // Stops writing: what is still queued is dropped, a sink waiting for its
  // peer gives up. The thread ends soon after (once a write(2) already under
  // way returns). Implies Close().
  void Abort();
  // Waits until the thread has ended (true) or `deadline` passed (false).
  // REQUIRES: Close() or Abort() was called, or it will not end.
  bool WaitEnded(TimePoint deadline);
  bool ended() const;
  // Runs `done` once the thread has ended: at once (on the caller's thread)
  // if it has, else on the writer thread as it ends. One callback at most; a
  // later call replaces an earlier one that has not run.
  void OnEnded(std::function<void()> done);

  TransportCounters counters() const { return counters_.Get(); }
  // Payloads taken and not yet written or failed.
  std::size_t queued() const;
  // Waits until nothing is queued or being written (true), or `timeout`.
  bool WaitIdleForTesting(std::chrono::milliseconds timeout);

 private:
  void Run();

  const Options options_;
  const std::unique_ptr<BatchSink> sink_;
  AtomicTransportCounters counters_;
  std::atomic<bool> abort_{false};
  mutable std::mutex mu_;
  std::condition_variable wake_;     // a payload, a reopen, a close or an abort
  std::condition_variable changed_;  // a batch was written, or the thread ended
  // Payloads back to back; payload i ends at pending_ends_[i]. The writer
  // thread swaps both with its own pair, so in the steady state neither side
  // allocates.
  std::string pending_ MS_GUARDED_BY(mu_);
  std::vector<std::size_t> pending_ends_ MS_GUARDED_BY(mu_);
  std::size_t writing_events_ MS_GUARDED_BY(mu_) = 0;
  bool reopen_ MS_GUARDED_BY(mu_) = false;
  bool closed_ MS_GUARDED_BY(mu_) = false;
  bool ended_ MS_GUARDED_BY(mu_) = false;
  std::function<void()> on_ended_ MS_GUARDED_BY(mu_);
  std::jthread thread_;  // last: started once everything above exists
};

}  // namespace mailscope::net
