#include "net/loop_stall_probe.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <thread>

namespace mailscope::net {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

TEST(LoopStallProbeTest, KeepsTheLongestTimeAHandlerHeldTheLoop) {
  asio::io_context io;
  LoopStallProbe probe(io, milliseconds(1));
  probe.Start();
  ASSERT_EQ(io.run_one(), 1u);  // the first wait is armed on the loop
  EXPECT_EQ(probe.longest(), std::chrono::steady_clock::duration::zero());
  // A handler that holds the loop for 30 ms while the timer is due within
  // 1 ms: the timer runs at least 29 ms late.
  asio::post(io, [] { std::this_thread::sleep_for(milliseconds(30)); });
  ASSERT_EQ(io.run_one(), 1u);
  ASSERT_EQ(io.run_one(), 1u);  // the timer
  EXPECT_GE(probe.longest(), milliseconds(29));
  const auto longest = probe.longest();
  probe.Stop();
  io.run();  // the cancelled wait; nothing is armed again
  EXPECT_EQ(probe.longest(), longest);
}

}  // namespace
}  // namespace mailscope::net
