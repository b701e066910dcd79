// In-process cost of the Dovecot 2.3 stats-writer ingest path, without the
// sockets, step by step on a pre-generated stream (bench/stats_writer_load
// --write-file FILE, any --mix): decoding every connection's lines, then the
// dispatcher with the metrics output as `mailscope serve` runs it, without
// metrics and with those of a configuration file (--metrics, e.g.
// bench/stats_writer_12_metrics.toml).
//   stats_writer_ingest_benchmark --stream FILE [--metrics FILE] [benchmark flags]
//
// Reported per named event (EVENT line): time, heap allocations (the
// allocation counter) and, where the CPU's counters can be read, user-space
// instructions. The whole work of the stream (BEGIN, UPDATE, END lines too)
// is divided by its named events, as docs/PERFORMANCE.md does.
#include <benchmark/benchmark.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "catalog/event_router.h"
#include "ingest/dovecot_stats_writer.h"
#include "loop_counters.h"
#include "pipeline/dispatcher.h"
#include "serve/config.h"
#include "serve/outputs.h"
#include "stats/ingest_counters.h"
#include "stats/metrics_engine.h"

namespace {

using namespace mailscope;

struct Connection {
  std::string bytes;  // the lines the connection sends, each ending in LF
  std::string label;
};
std::vector<Connection> g_connections;
std::vector<stats::MetricDefinition> g_metrics;

enum Step { kDecode = 0, kDispatch = 1, kMetrics = 2 };

// Runs every connection's lines through a decoder of its own and, from
// `step` kDispatch on, the dispatcher. `lines` are the connections' bytes,
// copied fresh for the pass (decoding unescapes in place). Returns the named
// events.
std::size_t Pass(std::vector<std::string>& lines, pipeline::Dispatcher& dispatcher, Step step) {
  std::size_t events = 0;
  for (std::string& bytes : lines) {
    ingest::DovecotStatsWriterDecoder decoder;
    char* p = bytes.data();
    char* const end = p + bytes.size();
    while (p < end) {
      char* lf = static_cast<char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (lf == nullptr) lf = end;
      auto result = decoder.Decode({p, static_cast<std::size_t>(lf - p)});
      p = lf + 1;
      if (result.emit != ingest::StatsWriterResult::Emit::kEvent) continue;
      Event& event = decoder.mutable_event();
      if (event.name == kNoName) continue;
      ++events;
      if (step >= kDispatch) dispatcher.Dispatch(event);
    }
  }
  return events;
}

void BM_StatsWriterIngest(benchmark::State& state) {
  const auto step = static_cast<Step>(state.range(0));
  if (step == kMetrics && g_metrics.empty()) {
    state.SkipWithError("step 2 needs --metrics FILE");
    return;
  }
  bench::LoopCounters loop;
  std::size_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // A fresh server per pass: its metrics start empty.
    stats::IngestCounters counters;
    auto router = catalog::MakeCatalogRouter();
    if (!router.ok()) {
      state.SkipWithError("the catalog router could not be built");
      return;
    }
    pipeline::Dispatcher dispatcher(counters, std::move(*router));
    stats::MetricsEngine engine;
    serve::MetricsOutput metrics(engine, dispatcher);
    dispatcher.Register("metrics", metrics);
    if (step == kMetrics) {
      for (const stats::MetricDefinition& m : g_metrics) {
        if (!engine.Add(m, stats::MetricsEngine::Origin::kConfig).ok()) {
          state.SkipWithError("a metric was refused");
          return;
        }
      }
    }
    std::vector<std::string> lines;
    for (const Connection& c : g_connections) lines.push_back(c.bytes);
    loop.Start();
    state.ResumeTiming();
    events += Pass(lines, dispatcher, step);
    state.PauseTiming();
    loop.Stop();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  loop.Report(state, "event", static_cast<double>(events));
}
BENCHMARK(BM_StatsWriterIngest)
    ->Arg(kDecode)
    ->Arg(kDispatch)
    ->Arg(kMetrics)
    ->ArgName("step")
    ->Unit(benchmark::kMillisecond);

// The --write-file format of stats_writer_load: a magic line, then per
// connection "CONNECTION\t<index>\t<bytes>\t<label>\n" and its bytes.
bool ParseStream(std::string_view s) {
  constexpr std::string_view kMagic = "# stats_writer_load stream v1\n";
  if (!s.starts_with(kMagic)) return false;
  s.remove_prefix(kMagic.size());
  while (!s.empty()) {
    const std::size_t lf = s.find('\n');
    if (lf == std::string_view::npos || !s.starts_with("CONNECTION\t")) return false;
    std::string_view head = s.substr(11, lf - 11);  // <index>\t<bytes>\t<label>
    const std::size_t t1 = head.find('\t');
    const std::size_t t2 = head.find('\t', t1 + 1);
    if (t1 == std::string_view::npos || t2 == std::string_view::npos) return false;
    const std::size_t size =
        std::strtoull(std::string(head.substr(t1 + 1, t2 - t1 - 1)).c_str(), nullptr, 10);
    s.remove_prefix(lf + 1);
    if (size > s.size()) return false;
    g_connections.push_back({std::string(s.substr(0, size)), std::string(head.substr(t2 + 1))});
    s.remove_prefix(size);
  }
  return !g_connections.empty();
}

}  // namespace

int main(int argc, char** argv) {
  const char* stream = nullptr;
  const char* metrics = nullptr;
  for (int i = 1; i + 1 < argc;) {
    if (std::strcmp(argv[i], "--stream") == 0) {
      stream = argv[i + 1];
      bench::TakeFlag(argc, argv, i);
    } else if (std::strcmp(argv[i], "--metrics") == 0) {
      metrics = argv[i + 1];
      bench::TakeFlag(argc, argv, i);
    } else {
      ++i;
    }
  }
  if (stream == nullptr) {
    std::cerr << "usage: stats_writer_ingest_benchmark --stream FILE [--metrics FILE]\n"
                 "                                    [benchmark flags]\n"
                 "FILE comes from: stats_writer_load [--mix NAME] --write-file FILE\n"
                 "--metrics: a mailscope configuration whose [metrics.NAME] tables step 2\n"
                 "counts (bench/stats_writer_12_metrics.toml: the 12 metrics).\n"
                 "Steps: 0 decoding, 1 + dispatch to the metrics output without metrics,\n"
                 "2 + the metrics.\n";
    return 2;
  }
  const auto bytes = bench::ReadWholeFile(stream);
  if (!bytes || !ParseStream(*bytes)) {
    std::cerr << "stats_writer_ingest_benchmark: " << stream
              << ": not a stats_writer_load --write-file stream\n";
    return 2;
  }
  if (metrics != nullptr) {
    auto config = serve::LoadConfigFile(metrics);
    if (!config.ok()) {
      std::cerr << "stats_writer_ingest_benchmark: " << config.status().message() << "\n";
      return 2;
    }
    for (const serve::MetricConfig& m : config->metrics) g_metrics.push_back(m.definition);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
