// What a benchmark's timed loop costs besides time, for regression guards that
// are not timings: heap allocations (the allocation counter of
// mailscope_testing) and user-space instructions where the CPU's counters can
// be read (perf_event_open; most virtual machines have none).
//   LoopCounters counters;
//   for (auto _ : state) {
//     ... untimed setup, state.PauseTiming() around it ...
//     counters.Start();  ... the timed pass ...  counters.Stop();
//   }
//   counters.Report(state, "record", records);  // allocs_per_record, instructions_per_record
#pragma once

#include <benchmark/benchmark.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "core/allocation_counter_testing.h"

namespace mailscope::bench {

class LoopCounters {
 public:
  LoopCounters() {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_HARDWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    counted_ = fd_ >= 0;
  }
  ~LoopCounters() {
    if (fd_ >= 0) close(fd_);
  }
  LoopCounters(const LoopCounters&) = delete;
  LoopCounters& operator=(const LoopCounters&) = delete;

  void Start() {
    allocations_at_ = HeapAllocationsForTesting();
    instructions_at_ = Instructions();
    if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
  }
  void Stop() {
    if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
    allocations_ += HeapAllocationsForTesting() - allocations_at_;
    const std::uint64_t now = Instructions();
    instructions_ += now - instructions_at_;
  }
  // Sets allocs_per_<unit> and instructions_per_<unit> (-1: not counted here).
  void Report(benchmark::State& state, const std::string& unit, double items) const {
    state.counters["allocs_per_" + unit] = static_cast<double>(allocations_) / items;
    state.counters["instructions_per_" + unit] =
        counted_ ? static_cast<double>(instructions_) / items : -1;
  }

 private:
  std::uint64_t Instructions() {
    std::uint64_t n = 0;
    if (fd_ >= 0 && read(fd_, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) counted_ = false;
    return n;
  }

  int fd_ = -1;
  bool counted_ = false;
  long allocations_ = 0, allocations_at_ = 0;
  std::uint64_t instructions_ = 0, instructions_at_ = 0;
};

}  // namespace mailscope::bench
