#include "net/spawn.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <utility>

namespace mailscope::net {

std::string DescribeException(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "exception not derived from std::exception";
  }
}

void Spawn(boost::asio::io_context& io, std::string name, boost::asio::awaitable<void> coro,
           std::function<void(std::exception_ptr)> done) {
  boost::asio::co_spawn(
      io, std::move(coro), [name = std::move(name), done = std::move(done)](std::exception_ptr e) {
        if (e) spdlog::error("{}: stopped by an exception: {}", name, DescribeException(e));
        if (!done) return;
        // This handler runs inside io_context::run(): a throw here would leave
        // the loop, so the cleanup is contained as well.
        try {
          done(e);
        } catch (...) {
          spdlog::error("{}: cleanup failed: {}", name,
                        DescribeException(std::current_exception()));
        }
      });
}

std::uint64_t RunContained(boost::asio::io_context& io, const std::function<bool()>& stopping) {
  std::uint64_t faults = 0;
  for (;;) {
    try {
      io.run();
      return faults;
    } catch (...) {
      ++faults;
      const bool stop = stopping();
      spdlog::error("event loop: a handler threw: {}{}",
                    DescribeException(std::current_exception()),
                    stop ? "; shutting down" : "; the loop goes on");
      if (stop) return faults;
    }
  }
}

void FaultLog::Record(std::string_view name, std::string_view dropped, std::exception_ptr e) {
  ++count_;
  auto now = std::chrono::steady_clock::now();
  if (now - start_ >= window_) {
    if (suppressed_ > 0) spdlog::error("{}: {} more handler errors not logged", name, suppressed_);
    start_ = now;
    logged_ = 0;
    suppressed_ = 0;
  }
  if (logged_ < burst_) {
    ++logged_;
    spdlog::error("{}: handler failed, {} dropped: {}", name, dropped, DescribeException(e));
  } else {
    ++suppressed_;
  }
}

}  // namespace mailscope::net
