// Cost of QuantileSketch::Add, Quantile and Merge on latency-like values
// (log-normal around 2 ms, in µs).
//   sketch_benchmark [google benchmark flags]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "stats/sketch.h"

namespace {

using mailscope::stats::QuantileSketch;

std::vector<double> LatenciesMicros(std::size_t n, std::uint64_t seed) {
  std::vector<double> out(n);
  std::uint64_t s = seed;
  auto next = [&s] {  // splitmix64
    std::uint64_t z = (s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return ((z ^ (z >> 31)) >> 11) * 0x1.0p-53 + 0x1.0p-54;
  };
  for (double& x : out) {
    const double normal = std::sqrt(-2 * std::log(next())) * std::cos(6.283185307179586 * next());
    x = std::round(std::exp(std::log(2000.0) + 1.5 * normal));
  }
  return out;
}

const std::vector<double>& Values() {
  static const std::vector<double> values = LatenciesMicros(1 << 16, 1);
  return values;
}

void BM_Add(benchmark::State& state) {
  const std::vector<double>& values = Values();
  QuantileSketch sketch;
  std::size_t i = 0;
  for (auto _ : state) {
    sketch.Add(values[i]);
    i = (i + 1) & (values.size() - 1);
  }
  benchmark::DoNotOptimize(sketch.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Add);

void BM_AddSameValue(benchmark::State& state) {
  QuantileSketch sketch;
  for (auto _ : state) {
    sketch.Add(1500);
  }
  benchmark::DoNotOptimize(sketch.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddSameValue);

QuantileSketch FilledSketch(std::size_t n) {
  QuantileSketch sketch;
  const std::vector<double>& values = Values();
  for (std::size_t i = 0; i < n; ++i) {
    sketch.Add(values[i & (values.size() - 1)]);
  }
  return sketch;
}

void BM_Quantile(benchmark::State& state) {
  const QuantileSketch sketch = FilledSketch(1'000'000);
  const double q = static_cast<double>(state.range(0)) / 1000;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sketch.Quantile(q));
  }
  state.counters["memory_bytes"] = static_cast<double>(sketch.memory_bytes());
}
BENCHMARK(BM_Quantile)->Arg(500)->Arg(990)->Arg(999);

void BM_Merge(benchmark::State& state) {
  const QuantileSketch other = FilledSketch(100'000);
  QuantileSketch sketch;
  for (auto _ : state) {
    sketch.Merge(other);
  }
  benchmark::DoNotOptimize(sketch.count());
}
BENCHMARK(BM_Merge);

}  // namespace

BENCHMARK_MAIN();
