// TransportReaper: where closed event transports go to finish. After
// Close(), a file or log transport goes on writing what was queued on its
// writer thread; the reaper holds it until that thread has ended and then
// destroys it on the reaper's own thread, so neither the wait nor the join
// happens on the loop (a reload that replaces an exporter returns at once).
// Once the loop has stopped, the daemon waits for the reaper, bounded.
// Retire() on the loop thread; Finish() on another thread, or after the loop
// stopped. Owns the transports handed to it and its thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_annotations.h"
#include "net/event_transports.h"

namespace mailscope::net {

class TransportReaper {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  TransportReaper();
  // Finish() with a deadline already passed: what is still queued is dropped.
  ~TransportReaper();
  TransportReaper(const TransportReaper&) = delete;
  TransportReaper& operator=(const TransportReaper&) = delete;

  // Closes `transport` and takes it; never waits. A transport without a
  // writer thread (drop, unix, http-post) has nothing left to do and is
  // destroyed at once, on the caller's thread.
  void Retire(std::unique_ptr<EventTransport> transport);
  // Waits until every retired transport has written what it held and is
  // gone, at most until `deadline`. Past it the others are aborted: what they
  // still hold is dropped (logged), and they end once a write(2) already
  // under way returns. Then the reaper's thread ends; a transport retired
  // later is aborted and destroyed on the caller's thread.
  void Finish(TimePoint deadline);
  // Transports retired and not yet destroyed.
  std::size_t size() const;

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable changed_;  // a writer ended, a transport went, or Finish()
  std::vector<std::unique_ptr<EventTransport>> retired_ MS_GUARDED_BY(mu_);
  std::uint64_t ended_ MS_GUARDED_BY(mu_) = 0;  // writers that ended, not yet reaped
  bool finishing_ MS_GUARDED_BY(mu_) = false;
  std::jthread thread_;  // last: started once everything above exists
};

}  // namespace mailscope::net
