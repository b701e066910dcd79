// In-process cost of the old-stats ingest path, without the pipe: framing,
// decoding and applying a pre-generated stream (bench/old_stats_load
// --write-file FILE) to a store with Dovecot's default 16 MB limit.
//   old_stats_ingest_benchmark --stream FILE [google benchmark flags]
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "ingest/dovecot_old_stats.h"
#include "ingest/line_framer.h"
#include "stats/old_stats_store.h"

namespace {

std::string g_stream;

void BM_OldStatsIngest(benchmark::State& state) {
  using namespace mailscope;
  std::size_t records = 0;
  for (auto _ : state) {
    state.PauseTiming();
    FakeClock clock;
    auto store = std::make_unique<stats::OldStatsStore>(stats::OldStatsOptions{}, clock);
    ingest::DovecotOldStatsDecoder decoder;
    ingest::LineFramer framer(ingest::kOldStatsMaxLineBytes);
    Event event;
    state.ResumeTiming();
    std::string_view in = g_stream;
    while (!in.empty()) {
      auto space = framer.WriteSpace();
      std::size_t n = std::min(space.size(), in.size());
      std::memcpy(space.data(), in.data(), n);
      framer.Commit(n);
      in.remove_prefix(n);
      framer.Drain(
          [&](std::span<char> line) {
            auto r = decoder.Decode(line, clock.Now(), event);
            if (r.emit) benchmark::DoNotOptimize(store->Apply(event));
            ++records;
          },
          [](std::size_t) {});
    }
    state.PauseTiming();
    struct mallinfo2 mi = mallinfo2();
    state.counters["heap_used_MiB"] = static_cast<double>(mi.uordblks) / (1 << 20);
    state.counters["heap_held_MiB"] = static_cast<double>(mi.arena + mi.hblkhd) / (1 << 20);
    state.counters["accounted_MiB"] = static_cast<double>(store->memory_used_bytes()) / (1 << 20);
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g_stream.size()));
}
BENCHMARK(BM_OldStatsIngest)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--stream") == 0) {
      std::ifstream in(argv[i + 1], std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      g_stream = ss.str();
      for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  }
  if (g_stream.empty()) {
    std::cerr
        << "usage: old_stats_ingest_benchmark --stream FILE (from old_stats_load --write-file)\n";
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
