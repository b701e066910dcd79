#include "core/hash.h"

#include <gtest/gtest.h>

#include <bit>
#include <set>
#include <string>

namespace mailscope {
namespace {

TEST(HashTest, SameBytesSameHashWithinTheProcess) {
  EXPECT_EQ(HashBytes("alice@example.com"), HashBytes(std::string("alice@example.com")));
  EXPECT_EQ(HashSeed(), HashSeed());
  EXPECT_NE(HashSeed(), 0u);
}

TEST(HashTest, EveryLengthAndEveryByteMatters) {
  // Lengths 0 to 40 cross each branch (short, 4..7, 8..16, longer with the
  // overlapping tail); one flipped byte anywhere changes the hash.
  std::set<std::uint64_t> seen;
  std::string s;
  for (int len = 0; len <= 40; ++len) {
    EXPECT_TRUE(seen.insert(HashBytes(s)).second) << "length " << len;
    for (int i = 0; i < len; ++i) {
      std::string t = s;
      t[static_cast<std::size_t>(i)] ^= 0x01;
      EXPECT_NE(HashBytes(t), HashBytes(s)) << "length " << len << " byte " << i;
    }
    s += static_cast<char>('a' + len % 26);
  }
  EXPECT_NE(HashBytes(std::string_view("\0", 1)), HashBytes(""));
  EXPECT_NE(HashBytes(std::string_view("\0\0", 2)), HashBytes(std::string_view("\0", 1)));
}

TEST(HashTest, NearbyKeysSpreadOverTheLowBits) {
  // Session ids and user names differ in a digit or two; a table indexes by
  // the low bits, which must not cluster.
  std::set<std::uint64_t> buckets;
  for (int i = 0; i < 4096; ++i) buckets.insert(HashBytes("user" + std::to_string(i)) & 4095);
  EXPECT_GT(buckets.size(), 2400u);  // a uniform hash fills about 2,589 of 4,096
}

TEST(HashTest, OutputBitsFlipAboutHalfTheTime) {
  int flips = 0, trials = 0;
  std::string base = "192.0.2.1:session-000042";
  for (std::size_t i = 0; i < base.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = base;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      flips += std::popcount(HashBytes(t) ^ HashBytes(base));
      ++trials;
    }
  }
  const double mean = static_cast<double>(flips) / trials;
  EXPECT_GT(mean, 28.0);
  EXPECT_LT(mean, 36.0);
}

// The seed keys every hash: keys prepared to collide under one seed (one
// process) say nothing of another.
TEST(HashTest, TheSeedChangesEveryHash) {
  const std::string keys[] = {"", "a", "alice@example.com", std::string(200, 'x'),
                              "192.0.2.1:session-000042"};
  for (const std::string& k : keys) {
    EXPECT_EQ(HashBytes(k), HashBytes(k, HashSeed())) << k;
    EXPECT_EQ(HashBytes128(k), HashBytes128(k, HashSeed())) << k;
    EXPECT_NE(HashBytes(k, 1), HashBytes(k, 2)) << k;
    EXPECT_NE(HashBytes(k, HashSeed()), HashBytes(k, HashSeed() ^ 0x10)) << k;
    const Hash128 a = HashBytes128(k, 1), b = HashBytes128(k, 2);
    EXPECT_NE(a.low, b.low) << k;
    EXPECT_NE(a.high, b.high) << k;
    EXPECT_NE(a.low, a.high) << k;  // the lanes are independent
  }
  // Two keys that collide under no seed tried, and whose order differs by seed.
  int lower = 0;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    const Hash128 x = HashBytes128("group value one", seed),
                  y = HashBytes128("group value two", seed);
    EXPECT_NE(x, y);
    lower += x.low < y.low;
  }
  EXPECT_GT(lower, 10);
  EXPECT_LT(lower, 54);
}

// Against operator== on every length up to 24, differing at every byte.
TEST(ShortStringEqualTest, AgreesWithStringEquality) {
  ShortStringEqual eq;
  for (std::size_t n = 0; n <= 24; ++n) {
    const std::string a(n, 'k');
    EXPECT_TRUE(eq(a, std::string(n, 'k')));
    EXPECT_FALSE(eq(a, std::string(n + 1, 'k')));
    for (std::size_t i = 0; i < n; ++i) {
      std::string b = a;
      b[i] = 'x';
      EXPECT_FALSE(eq(a, b)) << "length " << n << ", byte " << i;
    }
  }
}

}  // namespace
}  // namespace mailscope
