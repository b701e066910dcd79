#include "stats/sketch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"
#include "stats/sketch_integer_index.h"

namespace mailscope::stats {
namespace {

// Bucket indices stay within +-2^30, so index differences never overflow int.
constexpr double kMaxAbsIndex = 1 << 30;
// First allocation; the vector then doubles up to max_buckets.
constexpr std::size_t kInitialBuckets = 64;

}  // namespace

// DDSketch mapping: with gamma = (1+a)/(1-a), bucket i holds the values in
// (gamma^(i-1), gamma^i] and reports 2*gamma^i/(gamma+1), which is within a
// relative distance a of both ends of that interval.
QuantileSketch::QuantileSketch(double relative_error, int max_buckets)
    : relative_error_(relative_error), max_buckets_(max_buckets) {
  MS_CHECK(relative_error > 0 && relative_error < 1);
  MS_CHECK(max_buckets >= 1);
  gamma_ = (1 + relative_error) / (1 - relative_error);
  // log1p keeps log(gamma) precise when gamma is close to 1.
  log_gamma_ = std::log1p(2 * relative_error / (1 - relative_error));
  inv_log_gamma_ = 1 / log_gamma_;
  // Below DBL_MIN*gamma the logarithm loses precision (subnormals); above
  // DBL_MAX/gamma^2 the representative value could overflow.
  min_indexable_ =
      std::max(std::numeric_limits<double>::min(), std::exp(-kMaxAbsIndex * log_gamma_)) * gamma_;
  max_indexable_ = std::min(std::numeric_limits<double>::max() / (gamma_ * gamma_),
                            std::exp(kMaxAbsIndex * log_gamma_) / gamma_);
  // Integers below min_indexable_ belong to the zero bucket: only with it
  // at or below 1 is every integer from 1 up one for the table.
  integer_index_ = IntegerBucketIndex::For(inv_log_gamma_);
  if (integer_index_ != nullptr && min_indexable_ <= 1) {
    integer_index_max_ = static_cast<std::uint64_t>(
        std::min(static_cast<double>(IntegerBucketIndex::kMaxValue), std::floor(max_indexable_)));
  }
}

int QuantileSketch::Index(double value) const { return IndexByLog(value, inv_log_gamma_); }

double QuantileSketch::Value(int index) const {
  return std::exp(index * log_gamma_) * (2 / (gamma_ + 1));
}

void QuantileSketch::Add(double value, std::uint64_t count) {
  if (count == 0) {
    return;
  }
  if (value >= min_indexable_) {
    const int index = Index(std::min(value, max_indexable_));
    // Most values land inside the current window; SlotFor() moves it.
    const auto slot = static_cast<std::size_t>(std::int64_t{index} - offset_);
    buckets_[slot < buckets_.size() ? slot : SlotFor(index)] += count;
  } else {
    if (!(value > 0)) {
      value = 0;  // negative or NaN
    }
    zero_count_ += count;
  }
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  count_ += count;
}

void QuantileSketch::AddValues(std::span<const std::uint64_t> values) {
  constexpr std::size_t kBatch = 16;
  constexpr int kZero = std::numeric_limits<int>::min();  // goes to zero_count_
  int index[kBatch];
  while (!values.empty()) {
    const std::size_t n = std::min(values.size(), kBatch);
    const std::span<const std::uint64_t> batch = values.first(n);
    values = values.subspan(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t x = batch[i];
      const auto v = static_cast<double>(x);
      if (x - 1 < integer_index_max_) {  // 1 <= x <= integer_index_max_
        index[i] = (*integer_index_)(x);
      } else if (!(v >= min_indexable_)) {
        index[i] = kZero;
      } else {
        index[i] = Index(std::min(v, max_indexable_));
      }
    }
    // Converting to double keeps the order, so the extremes are taken as
    // integers and converted once.
    std::uint64_t lo = batch[0], hi = lo;
    for (std::size_t i = 0; i < n; ++i) {
      if (index[i] == kZero) {
        ++zero_count_;
      } else {
        // As in Add(): SlotFor() only when the window has to move.
        const auto slot = static_cast<std::size_t>(std::int64_t{index[i]} - offset_);
        ++buckets_[slot < buckets_.size() ? slot : SlotFor(index[i])];
      }
      lo = std::min(lo, batch[i]);
      hi = std::max(hi, batch[i]);
    }
    if (count_ == 0) {
      min_ = static_cast<double>(lo);
      max_ = static_cast<double>(hi);
    } else {
      min_ = std::min(min_, static_cast<double>(lo));
      max_ = std::max(max_, static_cast<double>(hi));
    }
    count_ += n;
  }
}

void QuantileSketch::Reserve(std::size_t n) {
  const std::size_t cap = buckets_.capacity();
  if (n <= cap) {
    return;
  }
  buckets_.reserve(std::min<std::size_t>(max_buckets_, std::max({n, 2 * cap, kInitialBuckets})));
}

// The window of buckets is always [max(lowest index, highest index -
// max_buckets + 1), highest index]; everything below it sits in its lowest
// bucket. That window depends only on the set of indices seen, so the
// counts do not depend on insertion or merge order.
std::size_t QuantileSketch::SlotFor(int index) {
  const auto size = static_cast<std::int64_t>(buckets_.size());
  if (size == 0) {
    Reserve(1);
    buckets_.assign(1, 0);
    offset_ = index;
    return 0;
  }
  const std::int64_t top = offset_ + size - 1;
  if (index >= offset_ && index <= top) {
    return index - offset_;
  }

  if (index > top) {
    const std::int64_t lowest = std::int64_t{index} - max_buckets_ + 1;
    if (lowest <= offset_) {
      Reserve(index - offset_ + 1);
      buckets_.resize(index - offset_ + 1);
      return buckets_.size() - 1;
    }
    // Collapse: fold every bucket below `lowest` into it.
    const std::int64_t dropped = std::min(lowest - offset_, size);
    const std::uint64_t folded =
        std::accumulate(buckets_.begin(), buckets_.begin() + dropped, std::uint64_t{0});
    buckets_.erase(buckets_.begin(), buckets_.begin() + dropped);
    Reserve(max_buckets_);
    buckets_.resize(max_buckets_);
    buckets_[0] += folded;
    offset_ = static_cast<int>(lowest);
    return buckets_.size() - 1;
  }

  // index < offset_: grow downward as far as the window allows.
  const std::int64_t floor = top - max_buckets_ + 1;
  if (offset_ <= floor) {
    return 0;
  }
  const std::int64_t new_offset = std::max<std::int64_t>(index, floor);
  const std::int64_t grow = offset_ - new_offset;
  Reserve(size + grow);
  buckets_.insert(buckets_.begin(), grow, 0);
  offset_ = static_cast<int>(new_offset);
  return index - offset_ >= 0 ? index - offset_ : 0;
}

void QuantileSketch::Merge(const QuantileSketch& other) {
  MS_CHECK(other.gamma_ == gamma_);
  if (other.count_ == 0) {
    return;
  }
  const auto& src = other.buckets_;
  const auto first = std::find_if(src.begin(), src.end(), [](std::uint64_t c) { return c != 0; });
  if (first != src.end()) {
    const auto last =
        std::find_if(src.rbegin(), src.rend(), [](std::uint64_t c) { return c != 0; });
    const int lo = other.offset_ + static_cast<int>(first - src.begin());
    const int hi = other.offset_ + static_cast<int>(src.rend() - last) - 1;
    // Place the window once (top first, then the bottom), so the per-bucket
    // loop below never moves the vector.
    SlotFor(hi);
    SlotFor(lo);
    for (int i = lo; i <= hi; ++i) {
      const std::uint64_t c = src[i - other.offset_];
      if (c != 0) {
        buckets_[SlotFor(i)] += c;
      }
    }
  }
  zero_count_ += other.zero_count_;
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
}

void QuantileSketch::Clear() {
  buckets_.clear();
  offset_ = 0;
  zero_count_ = 0;
  count_ = 0;
  min_ = 0;
  max_ = 0;
}

double QuantileSketch::Quantile(double q) const {
  if (count_ == 0) {
    return 0;
  }
  if (!(q > 0)) {
    return min_;
  }
  if (q >= 1) {
    return max_;
  }
  const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1));
  // The zero bucket holds zeros and values below min_indexable(); min() is
  // the best estimate for all of them (it is 0 when a true zero was added).
  if (rank < zero_count_) {
    return min_;
  }
  std::uint64_t seen = zero_count_;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    // Clamping to [min, max] never moves the estimate away from the true
    // value, which lies in that range, and makes the extremes exact.
    if (seen > rank) {
      return std::clamp(Value(offset_ + static_cast<int>(i)), min_, max_);
    }
  }
  return max_;
}

std::size_t QuantileSketch::memory_bytes() const {
  return sizeof(*this) + buckets_.capacity() * sizeof(std::uint64_t);
}

}  // namespace mailscope::stats
