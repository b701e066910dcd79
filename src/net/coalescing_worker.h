// CoalescingWorker: runs a job on a thread of its own when asked and hands
// each result to the loop, for work that must not stall it (the SIGHUP
// reload's configuration parse). Requests made while the job runs are
// coalesced: however many, they make one more run once it is done, so the
// last request's view of the world is always taken, and never a pile of them.
// Request() from any thread; `done` runs on the loop thread. Owns its thread;
// destruction waits for a run under way. REQUIRES: the loop no longer runs
// handlers once the worker is destroyed (a result handed over late is then
// destroyed unrun, with the io_context).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>

#include "core/thread_annotations.h"

namespace mailscope::net {

template <typename T>
class CoalescingWorker {
 public:
  // `job` runs on the worker's thread, `done` on the loop with its result.
  CoalescingWorker(boost::asio::io_context& io, std::function<T()> job, std::function<void(T)> done)
      : io_(io),
        job_(std::move(job)),
        done_(std::move(done)),
        thread_([this](std::stop_token stop) { Run(stop); }) {}
  ~CoalescingWorker() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  CoalescingWorker(const CoalescingWorker&) = delete;
  CoalescingWorker& operator=(const CoalescingWorker&) = delete;

  // Asks for a run: at once when the worker is idle, else one after the
  // current run, whatever the number of requests made meanwhile.
  void Request() {
    {
      std::lock_guard lock(mu_);
      requested_ = true;
    }
    changed_.notify_all();
  }

  // Waits until no run is under way or asked for (true), or `timeout`.
  bool WaitIdleForTesting(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return !requested_ && !running_; });
  }

 private:
  void Run(std::stop_token stop) {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        changed_.wait(lock, stop, [this] { return requested_; });
        if (stop.stop_requested()) return;
        requested_ = false;
        running_ = true;
      }
      T result = job_();
      boost::asio::post(io_, [this, r = std::move(result)]() mutable { done_(std::move(r)); });
      {
        std::lock_guard lock(mu_);
        running_ = false;
      }
      changed_.notify_all();
    }
  }

  boost::asio::io_context& io_;
  const std::function<T()> job_;
  const std::function<void(T)> done_;
  std::mutex mu_;
  std::condition_variable_any changed_;  // a request, or a run ended
  bool requested_ MS_GUARDED_BY(mu_) = false;
  bool running_ MS_GUARDED_BY(mu_) = false;
  std::jthread thread_;  // last: started once everything above exists
};

}  // namespace mailscope::net
