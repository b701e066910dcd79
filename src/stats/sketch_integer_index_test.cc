#include "stats/sketch_integer_index.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "stats/sketch.h"

namespace mailscope::stats {
namespace {

double InvLogGamma(double relative_error) {
  return 1 / std::log1p(2 * relative_error / (1 - relative_error));
}

// Differential: the tables against the logarithm they replace.
class IntegerBucketIndexTest : public testing::TestWithParam<double> {};

TEST_P(IntegerBucketIndexTest, EqualsTheLogarithmEverywhereItIsUsed) {
  const double inv = InvLogGamma(GetParam());
  const IntegerBucketIndex* table = IntegerBucketIndex::For(inv);
  ASSERT_NE(table, nullptr);
  auto expect_same = [&](std::uint64_t v) {
    ASSERT_EQ((*table)(v), IndexByLog(static_cast<double>(v), inv)) << "value " << v;
  };
  // Every small integer, where buckets hold one integer or none.
  for (std::uint64_t v = 1; v <= 200'000; ++v) expect_same(v);
  // Around every power of two and every bucket edge up to 2^53.
  for (int e = 1; e <= 53; ++e) {
    const std::uint64_t p = std::uint64_t{1} << e;
    for (std::uint64_t v : {p - 1, p, p + 1}) {
      if (v <= IntegerBucketIndex::kMaxValue) expect_same(v);
    }
  }
  for (int i = 1;; ++i) {
    const double edge = std::exp((i - 1) / inv);
    if (edge >= static_cast<double>(IntegerBucketIndex::kMaxValue - 2)) break;
    const auto v = static_cast<std::uint64_t>(edge);
    for (std::uint64_t w : {v - 1, v, v + 1, v + 2}) {
      if (w >= 1) expect_same(w);
    }
  }
  // Log-uniform random integers (splitmix64).
  std::uint64_t state = 7;
  for (int n = 0; n < 1'000'000; ++n) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    const std::uint64_t v = z >> (11 + z % 53);  // below 2^53
    expect_same(v == 0 ? 1 : v);
  }
  expect_same(IntegerBucketIndex::kMaxValue);
}

INSTANTIATE_TEST_SUITE_P(RelativeErrors, IntegerBucketIndexTest,
                         testing::Values(QuantileSketch::kDefaultRelativeError, 0.001, 0.005, 0.02,
                                         0.05, 0.2, 0.5));

TEST(IntegerBucketIndexTest, IsSharedPerRelativeError) {
  const double inv = InvLogGamma(0.01);
  EXPECT_EQ(IntegerBucketIndex::For(inv), IntegerBucketIndex::For(inv));
  EXPECT_NE(IntegerBucketIndex::For(inv), IntegerBucketIndex::For(InvLogGamma(0.02)));
}

TEST(IntegerBucketIndexTest, TooFineARelativeErrorHasNoTable) {
  EXPECT_EQ(IntegerBucketIndex::For(InvLogGamma(1e-5)), nullptr);
  EXPECT_EQ(IntegerBucketIndex::For(0), nullptr);
}

TEST(IntegerBucketIndexTest, SlicesAreAsCoarseAsOneThresholdEachAllows) {
  // 1 % buckets are 2 % apart: 2^6 slices of a power of two (1.6 % each) fit.
  const IntegerBucketIndex* table = IntegerBucketIndex::For(InvLogGamma(0.01));
  ASSERT_NE(table, nullptr);
  EXPECT_LE(table->bits(), 6);
}

}  // namespace
}  // namespace mailscope::stats
