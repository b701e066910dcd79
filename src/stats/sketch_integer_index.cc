#include "stats/sketch_integer_index.h"

#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>

namespace mailscope::stats {

int IndexByLog(double value, double inv_log_gamma) {
  return static_cast<int>(std::ceil(std::log(value) * inv_log_gamma));
}

void IntegerBucketIndex::BuildThresholds(double inv_log_gamma) {
  auto index = [&](std::uint64_t v) { return IndexByLog(static_cast<double>(v), inv_log_gamma); };
  // Thresholds of every bucket an integer can reach, and one past the last.
  threshold_base_ = index(1);
  const int last = index(kMaxValue);
  threshold_.clear();
  std::uint64_t g = 1;
  for (int i = threshold_base_; i <= last; ++i) {
    // Start near gamma^(i-1), the bucket's lower edge, then settle exactly.
    const double edge = std::floor(std::exp((i - 1) / inv_log_gamma));
    if (edge > static_cast<double>(g) && edge < static_cast<double>(kMaxValue)) {
      g = static_cast<std::uint64_t>(edge);
    }
    while (g > 1 && index(g - 1) >= i) --g;
    while (index(g) < i) ++g;
    threshold_.push_back(g);
  }
  threshold_.push_back(kMaxValue + 1);
}

bool IntegerBucketIndex::BuildSlices(double inv_log_gamma, int bits) {
  auto index = [&](std::uint64_t v) { return IndexByLog(static_cast<double>(v), inv_log_gamma); };
  bits_ = bits;
  slice_mask_ = (std::uint64_t{1} << bits) - 1;
  small_.assign(std::size_t{1} << bits, 0);
  for (std::uint64_t v = 1; v < small_.size(); ++v) small_[v] = index(v);

  const int slices_per_power = 1 << bits;
  first_.clear();
  for (int e = bits; e <= 52; ++e) {
    const int shift = e - bits;
    for (int m = 0; m < slices_per_power; ++m) {
      const std::uint64_t lo = (std::uint64_t{1} << e) | (std::uint64_t(m) << shift);
      const std::uint64_t hi = lo + (std::uint64_t{1} << shift) - 1;
      const int first = index(lo);
      // One comparison must settle every integer of the slice: the bucket
      // after next starts past it.
      if (first + 2 - threshold_base_ < static_cast<int>(threshold_.size()) &&
          threshold_[first + 2 - threshold_base_] <= hi) {
        return false;
      }
      first_.push_back(first);
    }
  }
  return true;
}

const IntegerBucketIndex* IntegerBucketIndex::For(double inv_log_gamma) {
  // Sketches share a handful of relative errors; past this many distinct
  // ones, new ones keep to the logarithm rather than grow this list.
  constexpr std::size_t kMaxTables = 16;
  // Never destroyed: sketches may be used until the process ends.
  static std::mutex& mu = *new std::mutex;
  static auto& tables = *new std::vector<std::pair<double, std::unique_ptr<IntegerBucketIndex>>>;
  const std::lock_guard lock(mu);
  for (const auto& [key, table] : tables) {
    if (key == inv_log_gamma) return table.get();
  }
  // Buckets an integer can reach: 53 powers of two of log(2)*inv_log_gamma
  // each. Past 2^16 (a relative error below about 0.03 %) the table would
  // outgrow the caches it is meant to stay in.
  constexpr double kMaxBuckets = 1 << 16;
  if (tables.size() >= kMaxTables || !(inv_log_gamma > 0) ||
      !(53 * std::log(2.0) * inv_log_gamma < kMaxBuckets)) {
    return nullptr;
  }
  std::unique_ptr<IntegerBucketIndex> table(new IntegerBucketIndex());
  table->BuildThresholds(inv_log_gamma);
  int bits = 1;
  while (bits <= 10 && !table->BuildSlices(inv_log_gamma, bits)) ++bits;
  if (bits > 10) table.reset();
  tables.emplace_back(inv_log_gamma, std::move(table));
  return tables.back().second.get();
}

}  // namespace mailscope::stats
