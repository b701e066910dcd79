#include "ingest/event_dedup.h"

#include <algorithm>
#include <bit>

namespace mailscope::ingest {

std::size_t EventDedup::MaxKeysFor(std::uint64_t bytes) {
  return static_cast<std::size_t>(std::max<std::uint64_t>(1, bytes / kBytesPerKey));
}

EventDedup::EventDedup(std::chrono::microseconds window, std::size_t max_keys)
    : window_(window), max_keys_(std::max<std::size_t>(1, max_keys)) {
  if (window_.count() <= 0) return;
  ring_.resize(std::min<std::size_t>(max_keys_, 4096));
  // At most half full: a ring entry (16 bytes) and two slots (16) per key.
  table_.assign(std::bit_ceil(ring_.size() * 2), 0);
  mask_ = table_.size() - 1;
}

void EventDedup::Grow() {
  std::vector<Entry> ring(std::min(max_keys_, ring_.size() * 2));
  for (std::size_t i = 0; i < count_; ++i) ring[i] = ring_[(head_ + i) % ring_.size()];
  ring_ = std::move(ring);
  head_ = 0;
  table_.assign(std::bit_ceil(ring_.size() * 2), 0);
  mask_ = table_.size() - 1;
  for (std::size_t i = 0; i < count_; ++i) table_[Probe(ring_[i].key)] = ring_[i].key;
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
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

bool EventDedup::Seen(std::uint64_t key, TimePoint now) {
  if (ring_.empty()) return false;
  key = Stored(key);
  while (count_ > 0 && ring_[head_].expires <= now) PopFront();
  std::size_t slot = Probe(key);
  if (table_[slot] == key) {
    ++duplicates_;
    return true;
  }
  if (count_ == ring_.size()) {
    if (ring_.size() < max_keys_) {
      Grow();
    } else {
      PopFront();
      ++evicted_;
    }
    slot = Probe(key);  // growing or evicting moved keys
  }
  table_[slot] = key;
  ring_[(head_ + count_) % ring_.size()] = {key, now + window_};
  ++count_;
  // The next key to expire is erased by a later call: start loading its slot.
  Prefetch(ring_[head_].key);
  return false;
}

}  // namespace mailscope::ingest
