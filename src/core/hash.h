// Hashing of keys that clients choose: names, session ids, user names, IP
// addresses, group_by values. The hash is keyed with a per-process seed from
// the kernel's random source, so keys prepared to collide in one mailscope
// do not collide in another. It is a fast multiply-mix hash, not a MAC: it
// keeps tables balanced, it does not authenticate. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mailscope {

// The process seed: drawn once, at the first call.
std::uint64_t HashSeed();

// A seeded 64-bit hash of `bytes`.
std::uint64_t HashBytes(std::string_view bytes);

// For hash tables keyed by strings or string views (transparent).
struct SeededStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return static_cast<std::size_t>(HashBytes(s));
  }
};

}  // namespace mailscope
