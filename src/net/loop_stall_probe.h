// LoopStallProbe: how long the loop was kept from running what was due. A
// timer due every `period` notes how late the loop runs it; that lateness is
// time the loop spent on other work (one long handler, a blocking call), or
// waiting for a CPU, while the timer was due. A stall shows to within
// `period`: one that starts just after the timer ran shows `period` shorter.
// Keeps the longest, for /metrics (mailscope_loop_stall_seconds). Loop thread
// only. Owns its timer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

namespace mailscope::net {

class LoopStallProbe {
 public:
  LoopStallProbe(boost::asio::io_context& io, std::chrono::milliseconds period)
      : io_(io), timer_(io), period_(period) {}

  // Starts measuring once the loop runs (the time before Run() is no stall).
  void Start();
  // Cancels the timer; it is not armed again.
  void Stop();
  // The longest lateness seen since Start().
  std::chrono::steady_clock::duration longest() const { return longest_; }

 private:
  void Arm();

  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  const std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point due_{};
  std::chrono::steady_clock::duration longest_{};
  bool stopped_ = false;
};

}  // namespace mailscope::net
