// Clock: the only way pure modules learn the time, so tests can drive it.
#pragma once

#include <chrono>
#include <cstdint>

namespace mailscope {

// Microseconds since the Unix epoch, the resolution Dovecot's ioloop uses.
using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// Wall-clock time. Thread-safe.
class SystemClock final : public Clock {
 public:
  TimePoint Now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
  }
};

// A clock that moves only when told. Thread-compatible; for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)))
      : now_(start) {}
  TimePoint Now() const override { return now_; }
  void Advance(std::chrono::microseconds d) { now_ += d; }
  void Set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_;
};

inline std::int64_t UnixSeconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline std::int64_t SubsecondMicros(TimePoint t) {
  return t.time_since_epoch().count() % 1'000'000;
}

}  // namespace mailscope
