// Fault containment for the loop's coroutines: Spawn() replaces
// co_spawn(..., detached), which drops an exception silently, with a
// completion that logs it and runs the owner's cleanup; FaultLog counts and
// logs throws caught around a single handler call (one line, one read).
// Loop thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <string_view>

namespace mailscope::net {

// "what()" of the exception `e` holds, or a note that it was not a
// std::exception. REQUIRES: e is not null.
std::string DescribeException(std::exception_ptr e);

// Runs `coro` on `io` to its end. An exception escaping it is logged as an
// error naming `name` (the listener or peer) and its what(); `done`, when
// set, then runs with that exception (null after a normal end), so the owner
// can clean up or restart. `done` does not run when the loop is destroyed
// with the coroutine still suspended; a throw out of `done` is logged too.
void Spawn(boost::asio::io_context& io, std::string name, boost::asio::awaitable<void> coro,
           std::function<void(std::exception_ptr)> done = {});

// Runs `io` until it runs out of work or is stopped. An exception escaping a
// handler is logged and the loop runs on (Asio leaves the io_context usable
// after one): a failed handler must not end the process. Once `stopping()`
// holds, an exception ends the run instead, so shutdown cannot hang on a
// loop that keeps failing. Returns how many exceptions were caught.
std::uint64_t RunContained(boost::asio::io_context& io, const std::function<bool()>& stopping);

// Counts exceptions caught around one handler call of a listener and logs the
// first `burst` of each window as errors, then how many were held back, so a
// handler that throws on every line cannot flood the log.
class FaultLog {
 public:
  explicit FaultLog(int burst = 5, std::chrono::seconds window = std::chrono::seconds(10))
      : burst_(burst), window_(window) {}
  // Records a throw out of the handler of `name`; `dropped` says what was lost.
  void Record(std::string_view name, std::string_view dropped, std::exception_ptr e);
  std::uint64_t count() const { return count_; }

 private:
  int burst_;
  std::chrono::seconds window_;
  std::chrono::steady_clock::time_point start_{};
  int logged_ = 0;
  std::uint64_t suppressed_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace mailscope::net
