// QuantileSketch's bucket index of an integer value, from two small tables
// instead of a logarithm: log() was 40 % of the sketch's cost on the
// stats-writer's 12 metrics (callgrind, about 78 instructions a value).
//
// The answer is IndexByLog()'s for every integer in [1, kMaxValue], as long
// as IndexByLog() never decreases as its argument grows (log() is within an
// ulp of exact, which keeps it so at the few thousand places where the bucket
// changes; the differential test checks a million values): the tables hold,
// for each bucket, the smallest integer that IndexByLog() puts there (its
// threshold) and, for each of 2^bits equal slices of every power of two, the
// bucket of the slice's first integer. With slices narrower than the gap
// between two thresholds, a slice holds at most one threshold, so one
// comparison finishes the lookup. Build() checks that for every slice and
// gives up (nullptr) if it fails, so the sketch keeps using the logarithm.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace mailscope::stats {

// The sketch's own formula (the scalar reference of the tables).
int IndexByLog(double value, double inv_log_gamma);

class IntegerBucketIndex {
 public:
  // Integers exactly representable as doubles; larger ones use the logarithm.
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << 53) - 1;

  // The shared, immutable table of one inv_log_gamma (a sketch's relative
  // error); nullptr when no slicing of at most 2^10 per power of two keeps
  // one threshold a slice. Built once per distinct value (a few thousand
  // log() calls) and kept for the life of the process. Thread-safe.
  static const IntegerBucketIndex* For(double inv_log_gamma);

  // IndexByLog(value, inv_log_gamma). REQUIRES: 1 <= value <= kMaxValue.
  int operator()(std::uint64_t value) const {
    if (value < small_.size()) return small_[value];
    const int e = std::bit_width(value) - 1;  // value is in [2^e, 2^(e+1))
    const int shift = e - bits_;
    const std::size_t slice =
        (static_cast<std::size_t>(shift) << bits_) | ((value >> shift) & slice_mask_);
    const int first = first_[slice];
    return first + (value >= threshold_[first + 1 - threshold_base_] ? 1 : 0);
  }

  int bits() const { return bits_; }

 private:
  IntegerBucketIndex() = default;
  // The thresholds, the same for every slicing; then the slices.
  void BuildThresholds(double inv_log_gamma);
  bool BuildSlices(double inv_log_gamma, int bits);

  int bits_ = 0;
  std::uint64_t slice_mask_ = 0;
  std::vector<std::int32_t> small_;  // the values below 2^bits, directly
  std::vector<std::int32_t> first_;  // per slice of [2^bits, 2^53): its first integer's bucket
  // threshold_[i - threshold_base_]: the smallest integer in bucket i or above.
  std::vector<std::uint64_t> threshold_;
  int threshold_base_ = 0;
};

}  // namespace mailscope::stats
