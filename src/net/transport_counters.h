// What an event transport counts, for /metrics (see event_transports.h).
#pragma once

#include <atomic>
#include <cstdint>

namespace mailscope::net {

struct TransportCounters {
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;
  std::uint64_t failed = 0;
};

// The same, counted on one thread and read on any. Thread-safe.
struct AtomicTransportCounters {
  std::atomic<std::uint64_t> sent{0}, dropped{0}, failed{0};
  TransportCounters Get() const {
    return {sent.load(std::memory_order_relaxed), dropped.load(std::memory_order_relaxed),
            failed.load(std::memory_order_relaxed)};
  }
};

}  // namespace mailscope::net
