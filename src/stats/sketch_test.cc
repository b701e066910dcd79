#include "stats/sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace mailscope::stats {
namespace {

constexpr double kRelErr = QuantileSketch::kDefaultRelativeError;
// A value sitting exactly on a bucket boundary can land one bucket off
// through rounding in log(); its error is then the bound itself, give or
// take a few ulps.
constexpr double kBound = kRelErr + 1e-12;
constexpr double kQuantiles[] = {0.5, 0.9, 0.95, 0.99, 0.999};
constexpr std::size_t kMillion = 1'000'000;
constexpr double kMicrosPerHour = 3.6e9;

// splitmix64: deterministic on every platform, unlike std::*_distribution.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1).
  double Open() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  double Normal() {
    return std::sqrt(-2 * std::log(Open())) * std::cos(6.283185307179586 * Open());
  }

 private:
  std::uint64_t state_;
};

// The rank convention of QuantileSketch::Quantile.
std::size_t RankOf(double q, std::size_t n) {
  return static_cast<std::size_t>(q * static_cast<double>(n - 1));
}

double RelativeError(double estimate, double exact) { return std::abs(estimate - exact) / exact; }

struct Distribution {
  std::string name;
  double (*draw)(Rng&);
};

const Distribution kDistributions[] = {
    {"Uniform", [](Rng& r) { return 1 + r.Open() * 1e6; }},
    {"Exponential", [](Rng& r) { return -5000 * std::log(r.Open()); }},
    {"LogNormal", [](Rng& r) { return std::exp(std::log(2000.0) + 1.5 * r.Normal()); }},
    {"Pareto", [](Rng& r) { return 100 / std::pow(r.Open(), 1 / 1.2); }},
    {"Constant", [](Rng&) { return 4242.0; }},
    // Whole microseconds, log-uniform from 1 µs to 1 hour.
    {"MicrosToHour",
     [](Rng& r) { return std::round(std::exp(r.Open() * std::log(kMicrosPerHour))); }},
};

std::vector<double> Draw(const Distribution& d, std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) {
    x = d.draw(rng);
  }
  return v;
}

QuantileSketch SketchOf(const std::vector<double>& values,
                        int max_buckets = QuantileSketch::kDefaultMaxBuckets) {
  QuantileSketch s(kRelErr, max_buckets);
  for (double x : values) {
    s.Add(x);
  }
  return s;
}

// Exact values at the sketch's ranks for ascending `qs`; reorders `values`.
std::vector<double> ExactQuantiles(std::vector<double>& values, const std::vector<double>& qs) {
  std::vector<double> out;
  std::size_t from = 0;
  for (double q : qs) {
    const std::size_t rank = RankOf(q, values.size());
    std::nth_element(values.begin() + from, values.begin() + rank, values.end());
    out.push_back(values[rank]);
    from = rank + 1;
  }
  return out;
}

class QuantileSketchAccuracyTest : public testing::TestWithParam<Distribution> {};

TEST_P(QuantileSketchAccuracyTest, MillionValuesWithinRelativeErrorOfExact) {
  std::vector<double> values = Draw(GetParam(), kMillion, 42);
  const QuantileSketch sketch = SketchOf(values);
  const auto [min, max] = std::minmax_element(values.begin(), values.end());
  EXPECT_EQ(sketch.count(), kMillion);
  EXPECT_EQ(sketch.min(), *min);
  EXPECT_EQ(sketch.max(), *max);
  EXPECT_EQ(sketch.Quantile(0), *min);
  EXPECT_EQ(sketch.Quantile(1), *max);

  const std::vector<double> qs(std::begin(kQuantiles), std::end(kQuantiles));
  const std::vector<double> exact = ExactQuantiles(values, qs);
  for (std::size_t i = 0; i < qs.size(); ++i) {
    EXPECT_LE(RelativeError(sketch.Quantile(qs[i]), exact[i]), kBound)
        << "q=" << qs[i] << " exact=" << exact[i] << " estimate=" << sketch.Quantile(qs[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Distributions, QuantileSketchAccuracyTest,
                         testing::ValuesIn(kDistributions),
                         [](const auto& p) { return p.param.name; });

TEST(QuantileSketchTest, EmptySketchReportsZero) {
  QuantileSketch s;
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.min(), 0);
  EXPECT_EQ(s.max(), 0);
  for (double q : {0.0, 0.5, 0.99, 1.0}) {
    EXPECT_EQ(s.Quantile(q), 0) << q;
  }
  EXPECT_EQ(s.memory_bytes(), sizeof(QuantileSketch));
  QuantileSketch other;
  s.Merge(other);
  EXPECT_EQ(s.count(), 0u);
}

TEST(QuantileSketchTest, SingleValueIsExactAtEveryQuantile) {
  QuantileSketch s;
  s.Add(1234.5);
  EXPECT_EQ(s.count(), 1u);
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.999, 1.0}) {
    EXPECT_EQ(s.Quantile(q), 1234.5) << q;
  }
}

TEST(QuantileSketchTest, ZerosAreCountedExactly) {
  QuantileSketch s;
  s.Add(0, 300);
  for (int i = 1; i <= 700; ++i) {
    s.Add(i);
  }
  EXPECT_EQ(s.count(), 1000u);
  EXPECT_EQ(s.min(), 0);
  // Ranks 0..299 are zeros: floor(0.2993 * 999) = 299 is the last of them.
  EXPECT_EQ(s.Quantile(0.2), 0);
  EXPECT_EQ(s.Quantile(0.2993), 0);
  EXPECT_NEAR(s.Quantile(0.3004), 1, kRelErr);             // rank 300
  EXPECT_LE(RelativeError(s.Quantile(0.5), 200), kBound);  // rank 499 -> 200
}

TEST(QuantileSketchTest, NegativeNanAndTinyValuesCountWithZero) {
  QuantileSketch s;
  s.Add(-5);
  s.Add(std::numeric_limits<double>::quiet_NaN());
  s.Add(s.min_indexable() / 2);
  s.Add(100);
  EXPECT_EQ(s.count(), 4u);
  EXPECT_EQ(s.min(), 0);
  EXPECT_EQ(s.Quantile(0.6), 0);  // rank 1
  EXPECT_EQ(s.Quantile(1), 100);

  QuantileSketch tiny;
  tiny.Add(1e-310);  // subnormal: below min_indexable
  tiny.Add(1e-309);
  EXPECT_EQ(tiny.min(), 1e-310);
  EXPECT_EQ(tiny.Quantile(0.5), 1e-310);
}

TEST(QuantileSketchTest, HugeAndInfiniteValuesDoNotBreakTheSketch) {
  QuantileSketch s;
  s.Add(1);
  s.Add(std::numeric_limits<double>::max());
  s.Add(std::numeric_limits<double>::infinity());
  EXPECT_EQ(s.count(), 3u);
  EXPECT_EQ(s.max(), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isfinite(s.Quantile(0.5)));
  EXPECT_EQ(s.Quantile(1), std::numeric_limits<double>::infinity());
}

TEST(QuantileSketchTest, WeightedAddEqualsRepeatedAdd) {
  QuantileSketch weighted, repeated;
  for (int v = 1; v <= 50; ++v) {
    weighted.Add(v * 37.0, v);
    for (int i = 0; i < v; ++i) {
      repeated.Add(v * 37.0);
    }
  }
  EXPECT_EQ(weighted.count(), repeated.count());
  for (int i = 0; i <= 100; ++i) {
    EXPECT_EQ(weighted.Quantile(i / 100.0), repeated.Quantile(i / 100.0));
  }
}

void ExpectSameSketch(const QuantileSketch& a, const QuantileSketch& b) {
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  for (int i = 0; i <= 1000; ++i) {
    const double q = i / 1000.0;
    ASSERT_EQ(a.Quantile(q), b.Quantile(q)) << "q=" << q;
  }
}

TEST(QuantileSketchTest, MergeOfTwoHalvesEqualsSketchOfWhole) {
  const std::vector<double> values = Draw(kDistributions[2], 200'000, 7);
  const std::size_t half = values.size() / 2;
  const QuantileSketch whole = SketchOf(values);
  QuantileSketch first = SketchOf({values.begin(), values.begin() + half});
  const QuantileSketch second = SketchOf({values.begin() + half, values.end()});
  first.Merge(second);
  ExpectSameSketch(first, whole);

  QuantileSketch into_empty;
  into_empty.Merge(whole);
  ExpectSameSketch(into_empty, whole);
}

TEST(QuantileSketchTest, MergeEqualsWholeWhenCollapsing) {
  std::vector<double> values = Draw(kDistributions[5], 100'000, 11);
  values.push_back(0);
  const QuantileSketch whole = SketchOf(values, 64);
  // Split by value, so the low half's window must collapse into the merged one.
  std::sort(values.begin(), values.end());
  const std::size_t half = values.size() / 2;
  QuantileSketch low = SketchOf({values.begin(), values.begin() + half}, 64);
  const QuantileSketch high = SketchOf({values.begin() + half, values.end()}, 64);
  QuantileSketch high_first = high;
  low.Merge(high);
  ExpectSameSketch(low, whole);
  high_first.Merge(SketchOf({values.begin(), values.begin() + half}, 64));
  ExpectSameSketch(high_first, whole);
}

TEST(QuantileSketchTest, InsertionOrderDoesNotMatterWhenCollapsing) {
  std::vector<double> values = Draw(kDistributions[5], 20'000, 3);
  std::sort(values.begin(), values.end());
  const QuantileSketch ascending = SketchOf(values, 50);
  std::reverse(values.begin(), values.end());
  const QuantileSketch descending = SketchOf(values, 50);
  ExpectSameSketch(ascending, descending);
}

TEST(QuantileSketchTest, MergeWithDifferentRelativeErrorDies) {
  QuantileSketch a(0.01), b(0.02);
  b.Add(1);
  EXPECT_DEATH(a.Merge(b), "check failed");
}

TEST(QuantileSketchTest, CollapsingKeepsUpperQuantilesWithinBound) {
  // 1 µs .. 1 h spans ~1100 buckets at 1%; keep only 256 of them, which
  // reach down to about 1/170 of the maximum.
  constexpr int kBuckets = 256;
  std::vector<double> values = Draw(kDistributions[5], 200'000, 5);
  const QuantileSketch sketch = SketchOf(values, kBuckets);
  EXPECT_LE(sketch.memory_bytes(), sizeof(QuantileSketch) + kBuckets * sizeof(std::uint64_t));
  const std::vector<double> qs = {0.1, 0.5, 0.9, 0.95, 0.99, 0.999};
  const std::vector<double> exact = ExactQuantiles(values, qs);
  for (std::size_t i = 2; i < qs.size(); ++i) {
    EXPECT_LE(RelativeError(sketch.Quantile(qs[i]), exact[i]), kBound) << "q=" << qs[i];
  }
  // The low quantiles fell into the collapsed bucket: overestimated.
  EXPECT_GT(sketch.Quantile(0.1), exact[0] * 10);
  EXPECT_GT(sketch.Quantile(0.5), exact[1] * (1 + kRelErr));
  EXPECT_EQ(sketch.Quantile(0), sketch.min());
}

TEST(QuantileSketchTest, MemoryIsBoundedByMaxBuckets) {
  const std::size_t bound =
      sizeof(QuantileSketch) + QuantileSketch::kDefaultMaxBuckets * sizeof(std::uint64_t);
  QuantileSketch s;
  // Every power of two from the smallest to the largest normal double.
  for (int e = -1020; e <= 1020; ++e) {
    s.Add(std::ldexp(1.0, e));
  }
  EXPECT_LE(s.memory_bytes(), bound);
  EXPECT_EQ(s.Quantile(1), std::ldexp(1.0, 1020));
  EXPECT_LE(RelativeError(s.Quantile(0.99), std::ldexp(1.0, 999)), kBound);

  QuantileSketch small(0.01, 10);
  for (int i = 1; i <= 100'000; ++i) {
    small.Add(i);
  }
  EXPECT_LE(small.memory_bytes(), sizeof(QuantileSketch) + 10 * sizeof(std::uint64_t));
}

TEST(QuantileSketchTest, ClearEmptiesAndKeepsAllocation) {
  QuantileSketch s;
  for (int i = 1; i <= 1000; ++i) {
    s.Add(i);
  }
  const std::size_t bytes = s.memory_bytes();
  s.Clear();
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.Quantile(0.5), 0);
  EXPECT_EQ(s.memory_bytes(), bytes);
  s.Add(7);
  EXPECT_EQ(s.Quantile(0.5), 7);
}

TEST(QuantileSketchTest, AddValuesEqualsAddOfEach) {
  // Zeros, repeats, a window that grows both ways and collapses (few buckets).
  std::vector<std::uint64_t> values;
  std::uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 5000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int kind = static_cast<int>(x % 8);
    values.push_back(kind == 0   ? 0
                     : kind == 1 ? 2
                     : kind == 2 ? UINT64_MAX - x % 1000
                                 : (x >> (x % 60)) % 1000000);
    if (kind == 3) values.push_back(values.back());
  }
  for (int max_buckets : {2048, 100, 1}) {
    QuantileSketch each(0.01, max_buckets), batched(0.01, max_buckets);
    for (std::uint64_t v : values) each.Add(static_cast<double>(v));
    for (std::size_t at = 0, n = 1; at < values.size(); at += n, n = n % 37 + 1) {
      batched.AddValues(std::span(values).subspan(at, std::min(n, values.size() - at)));
    }
    ExpectSameSketch(each, batched);
    EXPECT_EQ(each.memory_bytes(), batched.memory_bytes());
  }
  QuantileSketch empty;
  empty.AddValues({});
  EXPECT_EQ(empty.count(), 0u);
}

}  // namespace
}  // namespace mailscope::stats
