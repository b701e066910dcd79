// AcceptBackoff: the pause of an accept loop after a failed accept. When
// accept fails for want of a descriptor or of memory (EMFILE, ENFILE,
// ENOBUFS, ENOMEM), the connection stays in the listen backlog and the
// socket stays readable, so accepting again at once would spin the loop at
// full CPU. The pause starts at 10 ms and doubles up to 1 s while accepts
// keep failing; a success resets it. Loop thread only.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace mailscope::net {

class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{10};
  static constexpr std::chrono::milliseconds kMost{1000};

  // Counts a failure of `listener`'s accept and returns how long to wait
  // before the next. The first failure of a run is logged.
  std::chrono::milliseconds Failed(std::string_view listener, std::string_view error) {
    ++failures_;
    if (pause_.count() == 0) {
      spdlog::warn("{}: accept failed: {}; retrying with a growing pause (at most {} ms)", listener,
                   error, kMost.count());
      pause_ = kFirst;
    } else {
      pause_ = std::min(pause_ * 2, kMost);
    }
    return pause_;
  }
  void Succeeded() { pause_ = std::chrono::milliseconds(0); }
  std::uint64_t failures() const { return failures_; }

 private:
  std::chrono::milliseconds pause_{0};
  std::uint64_t failures_ = 0;
};

}  // namespace mailscope::net
