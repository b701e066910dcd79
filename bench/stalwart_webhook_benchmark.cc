// In-process cost of Stalwart webhook ingest, step by step, on one body of
// events (bench/stalwart_webhook_bench.py --write-body FILE): the HMAC of
// X-Signature, parsing, decoding, de-duplication, and dispatch through the
// router, the counters and the metrics engine with the shipped Stalwart
// metrics, as `mailscope serve` does it. No HTTP.
//   stalwart_webhook_benchmark --body FILE [google benchmark flags]
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "catalog/event_router.h"
#include "core/allocation_counter_testing.h"
#include "ingest/event_dedup.h"
#include "ingest/stalwart_webhook.h"
#include "pipeline/dispatcher.h"
#include "serve/config.h"
#include "serve/outputs.h"
#include "stats/ingest_counters.h"
#include "stats/metrics_engine.h"

namespace {

using namespace mailscope;

std::string g_body;  // with simdjson's padding in its capacity

// Sets items/s and the heap allocations per event of the timed loop.
void Report(benchmark::State& state, std::size_t events, long allocations) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g_body.size()));
  state.counters["allocs_per_event"] =
      static_cast<double>(allocations) / static_cast<double>(state.iterations() * events);
}

void BM_Signature(benchmark::State& state) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  for (auto _ : state) {
    HMAC(EVP_sha256(), "bench-signing-key", 17,
         reinterpret_cast<const unsigned char*>(g_body.data()), g_body.size(), mac, &size);
    benchmark::DoNotOptimize(mac);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g_body.size()));
}
BENCHMARK(BM_Signature)->Unit(benchmark::kMillisecond);

// steps: 0 parse, 1 + decode, 2 + dedup, 3 + dispatch (router, counters,
// taxonomy: [sources.stalwart] as shipped), 4 + the shipped metrics
// (shipped_metrics = true).
void BM_Webhook(benchmark::State& state) {
  const int steps = static_cast<int>(state.range(0));
  ingest::StalwartWebhookDecoder decoder(ingest::StalwartWebhookOptions{.max_new_names = 1u << 20});
  stats::IngestCounters counters;
  auto router = catalog::MakeCatalogRouter();
  pipeline::Dispatcher dispatcher(counters, std::move(*router));
  stats::MetricsEngine engine;
  auto config = serve::ParseConfig("[sources.stalwart]\nshipped_metrics = true\n", "bench.toml");
  if (!config.ok()) {
    state.SkipWithError(config.status().message().c_str());
    return;
  }
  for (const serve::MetricConfig& m : config->metrics) {
    if (!engine.Add(m.definition, stats::MetricsEngine::Origin::kConfig).ok()) {
      state.SkipWithError("a shipped metric was refused");
      return;
    }
  }
  serve::MetricsOutput metrics(engine, dispatcher);
  if (steps >= 4) dispatcher.Register("metrics", metrics);
  Event event;
  std::size_t events = 0;
  long allocations = 0;
  std::uint64_t round = 0;
  // The dedup table of a long stream at the default bound (two million
  // events) and window, filled by a steady flow: each round's events are
  // new to it, and as many old ones expire as new ones come.
  const auto window = std::chrono::minutes(5);
  ingest::EventDedup dedup(window, ingest::EventDedup::MaxKeysFor(64u << 20));
  const auto gap = std::chrono::duration_cast<std::chrono::microseconds>(window) /
                   static_cast<std::int64_t>(dedup.max_keys());
  std::uint64_t flow = 0;  // events of the flow so far
  for (; flow < dedup.max_keys(); ++flow) {
    dedup.Seen((flow + 1) * 0x9e3779b97f4a7c15ull, TimePoint{} + gap * flow);
  }
  for (auto _ : state) {
    state.PauseTiming();
    const TimePoint now = TimePoint{} + gap * static_cast<std::int64_t>(flow);
    flow += decoder.size() > 0 ? decoder.size() : 10000;
    ++round;
    const long before = HeapAllocationsForTesting();
    state.ResumeTiming();
    if (!decoder.Parse(g_body, g_body.capacity()).ok()) {
      state.SkipWithError("the body does not parse");
      return;
    }
    events = decoder.size();
    for (std::size_t i = 0; steps >= 1 && i < decoder.size(); ++i) {
      if (!decoder.Decode(i, event).ok()) continue;
      if (steps >= 2 && dedup.Seen(decoder.dedup_key(), now)) continue;
      if (steps >= 3) dispatcher.Dispatch(event);
    }
    state.PauseTiming();
    allocations += HeapAllocationsForTesting() - before;
    state.ResumeTiming();
  }
  Report(state, events, allocations);
}
BENCHMARK(BM_Webhook)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(3)
    ->Arg(4)
    ->ArgName("steps")
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--body") == 0) {
      std::ifstream in(argv[i + 1], std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      g_body = ss.str();
      g_body.reserve(g_body.size() + ingest::StalwartWebhookPadding());
      for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  }
  if (g_body.empty()) {
    std::cerr << "usage: stalwart_webhook_benchmark --body FILE "
                 "(from stalwart_webhook_bench.py --write-body)\n";
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
