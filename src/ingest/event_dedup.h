// EventDedup: remembers the keys of events seen lately, so that a source
// that re-sends (Stalwart re-POSTs a whole batch after a timeout or a
// non-2xx, until its discard-after) has each event counted once.
//
// A key is remembered for `window` from its first sight; seeing it again
// within the window neither extends nor renews it. The memory is bounded:
// past `max_keys` the oldest key is forgotten before its window ends, and
// counted (evicted()), since its re-sending would then count twice. Keys
// are 64-bit hashes: two different events are taken for one with a chance
// of about n/2^64 per event, n the keys held.
//
// Open addressing with linear probing over a power-of-two table at most
// half full, plus a ring of (key, expiry) in order of first sight: a lookup
// is a probe or two, expiry and eviction pop the ring's front. Both are
// sized for `max_keys` at construction, from zeroed pages the kernel maps
// as they are first written: nothing is ever rehashed (a growing table
// stalls the loop for a quarter second when it doubles past a million
// keys), and memory is committed as the traffic fills it, up to 32 bytes
// per key of the bound. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/clock.h"

namespace mailscope::ingest {

class EventDedup {
 public:
  // Bytes of memory per key (MaxKeysFor).
  static constexpr std::size_t kBytesPerKey = 32;
  // The keys `bytes` of memory hold; at least 1.
  static std::size_t MaxKeysFor(std::uint64_t bytes);

  // A window of 0 remembers nothing: every event is new. Throws
  // std::bad_alloc when the memory cannot be reserved.
  EventDedup(std::chrono::microseconds window, std::size_t max_keys);

  // Whether `key` was seen within the window before `now`; if not, it is
  // remembered from `now` on. `now` never goes back by more than the window
  // (a clock step back only makes keys live longer).
  bool Seen(std::uint64_t key, TimePoint now);
  // Starts loading the table slot of `key` into the cache, for a Seen(key)
  // after other work: in a table larger than the cache, each Seen() would
  // otherwise wait on memory.
  void Prefetch(std::uint64_t key) const {
    if (table_) __builtin_prefetch(&table_[static_cast<std::size_t>(Stored(key)) & mask_]);
  }

  std::size_t size() const { return count_; }
  std::size_t max_keys() const { return max_keys_; }
  std::uint64_t evicted() const { return evicted_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::chrono::microseconds window() const { return window_; }

 private:
  // 0 marks an empty slot, so a key of 0 is kept as another value.
  static std::uint64_t Stored(std::uint64_t key) { return key == 0 ? 0x9e3779b97f4a7c15ull : key; }
  struct Entry {
    std::uint64_t key;
    std::int64_t expires;  // microseconds since the epoch
  };
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  // Slot of `key` in table_, or the empty slot where it would go.
  std::size_t Probe(std::uint64_t key) const;
  void Erase(std::uint64_t key);
  void PopFront();

  std::chrono::microseconds window_;
  std::size_t max_keys_;
  std::unique_ptr<std::uint64_t[], Free> table_;  // 0: empty slot
  std::size_t mask_ = 0;
  std::unique_ptr<Entry[], Free> ring_;  // max_keys_ entries
  std::size_t head_ = 0;                 // oldest entry
  std::size_t count_ = 0;
  std::uint64_t evicted_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace mailscope::ingest
