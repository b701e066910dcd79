// RateLimitedLog: warnings about bad input, at most `burst` per window per
// key, so a flood of garbage cannot flood the log. What was held back is
// reported as a count. Loop thread only.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace mailscope::serve {

class RateLimitedLog {
 public:
  RateLimitedLog(int burst, std::chrono::seconds window) : burst_(burst), window_(window) {}

  void Warn(std::string_view key, std::string_view message) {
    Bucket& b = buckets_[std::string(key)];
    auto now = std::chrono::steady_clock::now();
    if (now - b.start >= window_) {
      Report(key, b);
      b.start = now;
      b.used = 0;
    }
    if (b.used < burst_) {
      ++b.used;
      spdlog::warn("{}: {}", key, message);
    } else {
      ++b.suppressed;
    }
  }

  // Logs how many messages were held back since the last report.
  void Flush(std::string_view key) {
    auto it = buckets_.find(std::string(key));
    if (it == buckets_.end()) return;
    if (std::chrono::steady_clock::now() - it->second.start >= window_) Report(key, it->second);
  }

 private:
  struct Bucket {
    std::chrono::steady_clock::time_point start{};
    int used = 0;
    std::uint64_t suppressed = 0;
  };
  void Report(std::string_view key, Bucket& b) {
    if (b.suppressed > 0) spdlog::warn("{}: {} more input errors not logged", key, b.suppressed);
    b.suppressed = 0;
  }

  int burst_;
  std::chrono::seconds window_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

}  // namespace mailscope::serve
