// In-process cost of the old-stats ingest path, without the pipe, step by
// step on a pre-generated stream (bench/old_stats_load --write-file FILE):
// framing, decoding, applying to a store with Dovecot's default 16 MB limit,
// and the whole path of `mailscope serve` (the dispatcher with its router and
// counters in front of the store's output).
//   old_stats_ingest_benchmark --stream FILE [google benchmark flags]
//
// Besides time, each step reports what a timing cannot guard: heap
// allocations per record (the allocation counter) and, where the CPU's
// counters can be read (perf_event_open), user-space instructions per record.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "bench_flags.h"
#include "catalog/event_router.h"
#include "ingest/dovecot_old_stats.h"
#include "ingest/line_framer.h"
#include "loop_counters.h"
#include "pipeline/dispatcher.h"
#include "serve/outputs.h"
#include "serve/rate_limited_log.h"
#include "stats/ingest_counters.h"
#include "stats/old_stats_store.h"

namespace {

using namespace mailscope;

std::string g_stream;
stats::OldStatsOptions g_options;  // --memory-limit BYTES changes the limit

enum Step { kFrame = 0, kDecode = 1, kStore = 2, kDispatch = 3 };

// What one pass over the stream needs, built fresh (and untimed) per pass:
// the store starts empty every time, as a freshly started server does.
struct Pipeline {
  FakeClock clock;
  stats::OldStatsStore store{g_options, clock};
  stats::IngestCounters counters;
  serve::RateLimitedLog reject_log{5, std::chrono::seconds(60)};
  serve::OldStatsOutput output{store, counters, reject_log};
  std::unique_ptr<pipeline::Dispatcher> dispatcher;
  ingest::DovecotOldStatsDecoder decoder;
  ingest::LineFramer framer{ingest::kOldStatsMaxLineBytes};
  Event event;

  Pipeline() {
    auto router = catalog::MakeCatalogRouter();
    if (router.ok()) {
      dispatcher = std::make_unique<pipeline::Dispatcher>(counters, std::move(*router));
      dispatcher->Register("old_stats", output,
                           pipeline::SourceSet::Only(Source::kDovecotOldStats));
    }
  }
};

// Runs the stream through the pipeline up to `step`; returns the records seen.
std::size_t Pass(Pipeline& p, Step step) {
  std::size_t records = 0;
  std::string_view in = g_stream;
  while (!in.empty()) {
    auto space = p.framer.WriteSpace();
    const std::size_t n = std::min(space.size(), in.size());
    std::memcpy(space.data(), in.data(), n);
    p.framer.Commit(n);
    in.remove_prefix(n);
    p.framer.Drain(
        [&](std::span<char> line) {
          ++records;
          if (step == kFrame) {
            benchmark::DoNotOptimize(line.data());
            return;
          }
          auto r = p.decoder.Decode(line, p.clock.Now(), p.event);
          if (!r.emit || step == kDecode) return;
          if (step == kStore) {
            benchmark::DoNotOptimize(p.store.Apply(p.event));
          } else {
            p.dispatcher->Dispatch(p.event);
          }
        },
        [](std::size_t) {});
  }
  return records;
}

void BM_OldStatsIngest(benchmark::State& state) {
  const auto step = static_cast<Step>(state.range(0));
  bench::LoopCounters loop;
  std::size_t records = 0;
  std::unique_ptr<Pipeline> p;
  for (auto _ : state) {
    state.PauseTiming();
    p = std::make_unique<Pipeline>();
    if (p->dispatcher == nullptr) {
      state.SkipWithError("the catalog router could not be built");
      return;
    }
    loop.Start();
    state.ResumeTiming();
    records += Pass(*p, step);
    state.PauseTiming();
    loop.Stop();
    if (step >= kStore) {
      struct mallinfo2 mi = mallinfo2();
      state.counters["heap_used_MiB"] = static_cast<double>(mi.uordblks) / (1 << 20);
      state.counters["accounted_MiB"] =
          static_cast<double>(p->store.memory_used_bytes()) / (1 << 20);
    }
    p.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g_stream.size()));
  loop.Report(state, "record", static_cast<double>(records));
}
BENCHMARK(BM_OldStatsIngest)
    ->Arg(kFrame)
    ->Arg(kDecode)
    ->Arg(kStore)
    ->Arg(kDispatch)
    ->ArgName("step")
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc;) {
    if (std::strcmp(argv[i], "--stream") == 0) {
      if (auto bytes = bench::ReadWholeFile(argv[i + 1])) g_stream = std::move(*bytes);
      bench::TakeFlag(argc, argv, i);
    } else if (std::strcmp(argv[i], "--memory-limit") == 0) {
      const std::string_view text = argv[i + 1];
      const auto [end, ec] =
          std::from_chars(text.data(), text.data() + text.size(), g_options.memory_limit_bytes);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        std::cerr << "old_stats_ingest_benchmark: --memory-limit takes a number of bytes, not '"
                  << text << "'\n";
        return 2;
      }
      bench::TakeFlag(argc, argv, i);
    } else {
      ++i;
    }
  }
  if (g_stream.empty()) {
    std::cerr << "usage: old_stats_ingest_benchmark --stream FILE [--memory-limit BYTES]\n"
                 "                                  [benchmark flags]\n"
                 "FILE comes from: old_stats_load --records N --write-file FILE\n"
                 "Steps: 0 framing, 1 + decoding, 2 + the store (16 MiB limit unless\n"
                 "--memory-limit), 3 the whole path of `mailscope serve` (dispatcher,\n"
                 "router, counters, store output).\n";
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
