#include "ingest/event_dedup.h"

#include <algorithm>
#include <bit>
#include <new>

namespace mailscope::ingest {

namespace {

// Zeroed memory for n objects of T; calloc takes pages of this size straight
// from the kernel, which maps them on first write.
template <typename T>
T* ZeroedArray(std::size_t n) {
  void* p = std::calloc(n, sizeof(T));
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<T*>(p);
}

}  // namespace

std::size_t EventDedup::MaxKeysFor(std::uint64_t bytes) {
  // The table has a power of two of 8-byte slots, at least two per key; the
  // ring 16 bytes per key. The largest table within half the bytes, then as
  // many keys as it and the rest of the bytes hold.
  const std::uint64_t slots = std::bit_floor(std::max<std::uint64_t>(2, bytes / 16));
  const std::uint64_t ring = bytes > slots * 8 ? (bytes - slots * 8) / 16 : 0;
  return static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min(slots / 2, ring)));
}

EventDedup::EventDedup(std::chrono::microseconds window, std::size_t max_keys)
    : window_(window), max_keys_(std::max<std::size_t>(1, max_keys)) {
  if (window_.count() <= 0) return;
  // At most half full: a ring entry (16 bytes) and two slots (16) per key.
  const std::size_t slots = std::bit_ceil(max_keys_ * 2);
  table_.reset(ZeroedArray<std::uint64_t>(slots));
  mask_ = slots - 1;
  ring_.reset(ZeroedArray<Entry>(max_keys_));
}

std::size_t EventDedup::Probe(std::uint64_t key) const {
  std::size_t i = static_cast<std::size_t>(key) & mask_;
  while (table_[i] != 0 && table_[i] != key) i = (i + 1) & mask_;
  return i;
}

void EventDedup::Erase(std::uint64_t key) {
  std::size_t i = Probe(key);
  if (table_[i] == 0) return;
  // Backward-shift deletion: pull later members of the probe run into the
  // hole so that every key stays reachable from its home slot.
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask_; table_[j] != 0; j = (j + 1) & mask_) {
    const std::size_t home = static_cast<std::size_t>(table_[j]) & mask_;
    // Move table_[j] into the hole when its home is not in (hole, j].
    const bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) {
      table_[hole] = table_[j];
      hole = j;
    }
  }
  table_[hole] = 0;
}

void EventDedup::PopFront() {
  Erase(ring_[head_].key);
  head_ = head_ + 1 == max_keys_ ? 0 : head_ + 1;
  --count_;
}

bool EventDedup::Seen(std::uint64_t key, TimePoint now) {
  if (!table_) return false;
  key = Stored(key);
  const std::int64_t now_us = now.time_since_epoch().count();
  while (count_ > 0 && ring_[head_].expires <= now_us) PopFront();
  std::size_t slot = Probe(key);
  if (table_[slot] == key) {
    ++duplicates_;
    return true;
  }
  if (count_ == max_keys_) {
    PopFront();
    ++evicted_;
    slot = Probe(key);  // the eviction may have moved keys
  }
  table_[slot] = key;
  std::size_t tail = head_ + count_;
  if (tail >= max_keys_) tail -= max_keys_;
  ring_[tail] = {key, now_us + window_.count()};
  ++count_;
  // The next key to expire is erased by a later call: start loading its slot.
  Prefetch(ring_[head_].key);
  return false;
}

}  // namespace mailscope::ingest
