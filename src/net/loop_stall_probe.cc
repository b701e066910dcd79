#include "net/loop_stall_probe.h"

#include <algorithm>
#include <boost/asio/post.hpp>

namespace mailscope::net {

void LoopStallProbe::Start() {
  boost::asio::post(io_, [this] {
    if (!stopped_) Arm();
  });
}

void LoopStallProbe::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void LoopStallProbe::Arm() {
  // Due a period after the last run, not on a fixed grid: after a stall the
  // next measure starts afresh instead of counting the same stall again.
  due_ = std::chrono::steady_clock::now() + period_;
  timer_.expires_at(due_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    longest_ = std::max(longest_, std::chrono::steady_clock::now() - due_);
    Arm();
  });
}

}  // namespace mailscope::net
