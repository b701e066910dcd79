// Test-only: a FIFO whose reader has stalled. The read end has a one-page
// pipe buffer and is read only when the test says, so a writer (the file
// exporter) fills it and then waits for the reader.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

namespace mailscope::net {

class SlowFifoForTesting {
 public:
  // Makes the FIFO at `path` and opens it; every wait gives up after `wait`.
  SlowFifoForTesting(const std::string& path, std::chrono::milliseconds wait) : wait_(wait) {
    if (::mkfifo(path.c_str(), 0600) != 0) return;
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ >= 0) resized_ = ::fcntl(fd_, F_SETPIPE_SZ, 4096) > 0;
    // A write end of its own, never written: poll() on it tells when the
    // pipe takes no more.
    probe_ = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  }
  ~SlowFifoForTesting() {
    for (int fd : {fd_, probe_})
      if (fd >= 0) ::close(fd);
  }
  SlowFifoForTesting(const SlowFifoForTesting&) = delete;
  SlowFifoForTesting& operator=(const SlowFifoForTesting&) = delete;

  bool ok() const { return fd_ >= 0 && probe_ >= 0 && resized_; }

  // Waits until the pipe is full: a writer now waits for the reader.
  bool WaitFull() const {
    const auto deadline = std::chrono::steady_clock::now() + wait_;
    for (;;) {
      pollfd p{probe_, POLLOUT, 0};
      if (::poll(&p, 1, 0) == 0) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // between checks
    }
  }

  // Reads until `lines` lines have come in all, or the deadline.
  std::string ReadLines(long lines) const {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + wait_;
    char buf[4096];
    while (std::count(out.begin(), out.end(), '\n') < lines &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  const std::chrono::milliseconds wait_;
  int fd_ = -1;
  int probe_ = -1;
  bool resized_ = false;
};

}  // namespace mailscope::net
