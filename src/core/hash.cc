#include "core/hash.h"

#include <sys/random.h>

#include <chrono>
#include <cstring>

namespace mailscope {
namespace {

__extension__ typedef unsigned __int128 Uint128;

std::uint64_t DrawSeed() {
  std::uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    // No kernel randomness (a very early boot): the clock still varies the
    // seed between processes.
    seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return seed | 1;  // never 0: multiplying by it must not erase a word
}

// SplitMix64's output function: one seed gives a second, unrelated one.
std::uint64_t Derive(std::uint64_t seed) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t Word(const char* at) {
  std::uint64_t w;
  std::memcpy(&w, at, sizeof w);
  return w;
}

}  // namespace

std::uint64_t HashSeed() {
  static const std::uint64_t seed = DrawSeed();
  return seed;
}

std::uint64_t HashBytes(std::string_view bytes) { return HashBytes(bytes, HashSeed()); }

std::uint64_t HashBytes(std::string_view bytes, std::uint64_t seed) {
  // Two words per 16 bytes, each pair folded in by a 64x64->128 multiply
  // whose operands both carry the seed.
  const char* p = bytes.data();
  const std::size_t n = bytes.size();
  std::uint64_t h = seed ^ (n * 0xff51afd7ed558ccdULL);
  auto mix = [&h, seed](std::uint64_t a, std::uint64_t b) {
    const auto m =
        static_cast<Uint128>(h ^ a ^ 0xa0761d6478bd642fULL) * (b ^ seed ^ 0xe7037ed1a0b428dbULL);
    h = static_cast<std::uint64_t>(m) ^ static_cast<std::uint64_t>(m >> 64);
  };
  if (n >= 8) {
    std::size_t i = 0;
    for (; i + 16 < n; i += 16) mix(Word(p + i), Word(p + i + 8));
    // The last 16 bytes (or 8..16), overlapping what came before.
    mix(Word(p + (n >= 16 ? n - 16 : 0)), Word(p + n - 8));
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    mix(a, b);
  } else {
    std::uint64_t a = 0;
    for (std::size_t i = 0; i < n; ++i) a = (a << 8) | static_cast<unsigned char>(p[i]);
    mix(a, 0);
  }
  // MurmurHash3's finalizer, so that every input bit reaches every output bit.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

Hash128 HashBytes128(std::string_view bytes) { return HashBytes128(bytes, HashSeed()); }

Hash128 HashBytes128(std::string_view bytes, std::uint64_t seed) {
  return {HashBytes(bytes, Derive(seed)), HashBytes(bytes, Derive(~seed))};
}

}  // namespace mailscope
