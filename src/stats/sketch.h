// QuantileSketch: a DDSketch-style mergeable quantile sketch with a relative
// error bound: every quantile it returns is within `relative_error` of a
// value at that rank (reference: Masson, Rim, Lee, VLDB 2019). Values are
// non-negative integers or doubles (durations in µs, sizes in bytes); zero
// is counted exactly. Memory is bounded by `max_buckets`: past it the lowest
// buckets are collapsed, which costs accuracy only at the low quantiles.
// Thread-compatible value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mailscope::stats {

class IntegerBucketIndex;

class QuantileSketch {
 public:
  static constexpr double kDefaultRelativeError = 0.01;
  static constexpr int kDefaultMaxBuckets = 2048;

  // REQUIRES: 0 < relative_error < 1, max_buckets >= 1 (MS_CHECK).
  explicit QuantileSketch(double relative_error = kDefaultRelativeError,
                          int max_buckets = kDefaultMaxBuckets);

  // REQUIRES: value >= 0. Negative values and NaN are counted as zero, and so
  // are positive values below min_indexable() (they are closer to zero than
  // any bucket can resolve); min() still records them. Values above
  // max_indexable() (including +inf) share the highest bucket, outside the
  // error bound; max() still records them.
  void Add(double value, std::uint64_t count = 1);
  // Add(v) for each value, with their buckets found first and then counted,
  // so the memory accesses of a batch overlap.
  void AddValues(std::span<const std::uint64_t> values);
  // REQUIRES: same relative_error (MS_CHECK). Adds `other`'s counts to this
  // sketch, which keeps its max_buckets. Unless `other` has fewer
  // max_buckets, the result equals the sketch of both inputs' values.
  void Merge(const QuantileSketch& other);
  // Empties the sketch and keeps its allocation for reuse.
  void Clear();

  std::uint64_t count() const { return count_; }
  double min() const { return min_; }  // 0 when empty
  double max() const { return max_; }  // 0 when empty
  // The value at quantile q in [0, 1]: an estimate of the value at 0-based
  // rank floor(q * (count - 1)) in sorted order, within relative_error of it
  // unless that rank fell into collapsed buckets. q <= 0 (and NaN) returns
  // min() and q >= 1 returns max(), exactly; 0 when empty.
  double Quantile(double q) const;
  // Bytes held (for memory accounting): at most
  // sizeof(QuantileSketch) + max_buckets * 8.
  std::size_t memory_bytes() const;

  double relative_error() const { return relative_error_; }
  int max_buckets() const { return max_buckets_; }
  double min_indexable() const { return min_indexable_; }
  double max_indexable() const { return max_indexable_; }

 private:
  int Index(double value) const;
  double Value(int index) const;
  // Makes buckets_ cover `index` and returns its slot; an index below the
  // max_buckets window maps to the lowest (collapsed) slot.
  std::size_t SlotFor(int index);
  void Reserve(std::size_t n);

  double relative_error_;
  double gamma_;
  double log_gamma_;
  double inv_log_gamma_;
  double min_indexable_;
  double max_indexable_;
  int max_buckets_;
  // Index() of integers up to integer_index_max_ by table lookup; nullptr
  // when this relative error has no table.
  const IntegerBucketIndex* integer_index_ = nullptr;
  std::uint64_t integer_index_max_ = 0;
  std::vector<std::uint64_t> buckets_;  // dense, buckets_[i] covers index offset_ + i
  int offset_ = 0;
  std::uint64_t zero_count_ = 0;
  std::uint64_t count_ = 0;
  double min_ = 0;
  double max_ = 0;
};

}  // namespace mailscope::stats
