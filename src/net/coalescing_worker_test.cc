#include "net/coalescing_worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mailscope::net {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
constexpr milliseconds kDeadline{5000};

// A job that blocks each run until the test lets it finish, and numbers its
// runs.
class GatedJob {
 public:
  int Run() {
    std::unique_lock lock(mu_);
    const int run = ++started_;
    changed_.notify_all();
    changed_.wait_for(lock, kDeadline, [&] { return released_ >= run; });
    return run;
  }
  // Waits until run `n` has started.
  bool WaitStarted(int n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kDeadline, [&] { return started_ >= n; });
  }
  // Lets runs up to `n` finish.
  void Release(int n) {
    {
      std::lock_guard lock(mu_);
      released_ = n;
    }
    changed_.notify_all();
  }
  int started() {
    std::lock_guard lock(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int started_ = 0;
  int released_ = 0;
};

// Runs the loop until `results` holds `n`, at most kDeadline.
bool RunUntilResults(asio::io_context& io, const std::vector<int>& results, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (results.size() < n && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(milliseconds(10));
  }
  return results.size() >= n;
}

TEST(CoalescingWorkerTest, RunsOffTheLoopAndHandsTheResultToIt) {
  asio::io_context io;
  std::thread::id job_thread, done_thread;
  std::vector<int> results;
  CoalescingWorker<int> worker(
      io,
      [&] {
        job_thread = std::this_thread::get_id();
        return 7;
      },
      [&](int r) {
        done_thread = std::this_thread::get_id();
        results.push_back(r);
      });
  worker.Request();
  ASSERT_TRUE(RunUntilResults(io, results, 1));
  EXPECT_EQ(results, std::vector<int>{7});
  EXPECT_NE(job_thread, std::this_thread::get_id());
  EXPECT_EQ(done_thread, std::this_thread::get_id());
}

TEST(CoalescingWorkerTest, RequestsDuringARunMakeExactlyOneMoreRun) {
  asio::io_context io;
  GatedJob job;
  std::vector<int> results;
  CoalescingWorker<int> worker(
      io, [&] { return job.Run(); }, [&](int r) { results.push_back(r); });
  worker.Request();
  ASSERT_TRUE(job.WaitStarted(1));
  for (int i = 0; i < 5; ++i) worker.Request();  // while run 1 is under way
  job.Release(1);
  ASSERT_TRUE(job.WaitStarted(2));
  job.Release(100);
  ASSERT_TRUE(worker.WaitIdleForTesting(kDeadline));
  ASSERT_TRUE(RunUntilResults(io, results, 2));
  EXPECT_EQ(job.started(), 2);
  EXPECT_EQ(results, (std::vector<int>{1, 2}));

  // Idle again: the next request runs again.
  worker.Request();
  ASSERT_TRUE(RunUntilResults(io, results, 3));
  EXPECT_EQ(results, (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace mailscope::net
