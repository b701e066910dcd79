// Hashing of keys that clients choose: names, session ids, user names, IP
// addresses, group_by values. The hash is keyed with a per-process seed from
// the kernel's random source, so keys prepared to collide in one mailscope
// do not collide in another. It is a fast multiply-mix hash, not a MAC: it
// keeps tables balanced, it does not authenticate. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace mailscope {

// The process seed: drawn once, at the first call.
std::uint64_t HashSeed();

// A seeded 64-bit hash of `bytes`, under the process seed or under `seed`
// (for tests and for derived lanes; any value, 0 included).
std::uint64_t HashBytes(std::string_view bytes);
std::uint64_t HashBytes(std::string_view bytes, std::uint64_t seed);

// A 128-bit hash, for keys that stand for a value (a long group_by value):
// two HashBytes() lanes under independent seeds derived from `seed`, so a
// collision needs both lanes to collide.
struct Hash128 {
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  friend bool operator==(const Hash128&, const Hash128&) = default;
};
Hash128 HashBytes128(std::string_view bytes);  // under the process seed
Hash128 HashBytes128(std::string_view bytes, std::uint64_t seed);

// For hash tables keyed by strings or string views (transparent).
struct SeededStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return static_cast<std::size_t>(HashBytes(s));
  }
};

// Equality for tables keyed by short strings (session ids, user names): two
// overlapping word compares for keys of 8 to 16 bytes, where a memcmp call
// cost more than the compare (4 % of old-stats ingest). Transparent.
struct ShortStringEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept {
    if (a.size() != b.size()) return false;
    const std::size_t n = a.size();
    if (n >= 8 && n <= 16) {
      return (Word(a.data()) ^ Word(b.data())) == 0 &&
             (Word(a.data() + n - 8) ^ Word(b.data() + n - 8)) == 0;
    }
    return a == b;
  }

 private:
  static std::uint64_t Word(const char* at) noexcept {
    std::uint64_t w;
    std::memcpy(&w, at, sizeof w);
    return w;
  }
};

}  // namespace mailscope
