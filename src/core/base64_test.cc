#include "core/base64.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/base64_reference_testing.h"

namespace mailscope {
namespace {

std::string Decode(std::string_view in, bool* ok) {
  std::vector<std::uint8_t> out;
  *ok = Base64Decode(in, out);
  return {out.begin(), out.end()};
}

TEST(Base64Test, DecodesPaddedAndUnpadded) {
  bool ok = false;
  EXPECT_EQ(Decode("YXV0aAA=", &ok), std::string("auth\0", 5));
  EXPECT_TRUE(ok);
  EXPECT_EQ(Decode("YXV0aAA", &ok), std::string("auth\0", 5));
  EXPECT_TRUE(ok);
  EXPECT_EQ(Decode("", &ok), "");
  EXPECT_TRUE(ok);
}

TEST(Base64Test, RejectsGarbage) {
  bool ok = true;
  for (std::string_view bad : {"YX=V", "Y", "YXV0a", "YX\tV", "****", "YQ===", "=YQ="}) {
    Decode(bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
}

TEST(Base64Test, RoundTrips) {
  for (std::size_t n = 0; n < 40; ++n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(i * 37 + 11);
    bool ok = false;
    EXPECT_EQ(Decode(Base64Encode(s.data(), s.size()), &ok), s);
    EXPECT_TRUE(ok);
  }
}

// --- differential: Base64Decode against the reference decoder --------------
//
// The SSSE3 path decodes 16 characters a step while 24 or more remain before
// the padding, and stops at the first block with an invalid character; the
// scalar loop finishes and reports. These inputs are mostly longer than that,
// so invalid bytes land inside SIMD blocks, at their edges and in the tail.

std::string RandomBytes(std::mt19937& rng, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

// Base64Decode and the reference agree on acceptance and on the bytes.
void ExpectSameAsReference(std::string_view in) {
  const std::optional<std::vector<std::uint8_t>> want = Base64DecodeReferenceForTesting(in);
  std::vector<std::uint8_t> got;
  const bool ok = Base64Decode(in, got);
  const std::string shown = ::testing::PrintToString(std::string(in));
  ASSERT_EQ(ok, want.has_value()) << in.size() << " characters: " << shown;
  if (ok) {
    ASSERT_EQ(got, *want) << in.size() << " characters: " << shown;
  }
}

TEST(Base64DifferentialTest, ReferenceDecodesTheKnownCases) {
  // The reference itself, on the cases above.
  auto decoded = [](std::string_view in) {
    auto out = Base64DecodeReferenceForTesting(in);
    return out ? std::optional<std::string>(std::string(out->begin(), out->end())) : std::nullopt;
  };
  EXPECT_EQ(decoded("YXV0aAA="), std::string("auth\0", 5));
  EXPECT_EQ(decoded("YXV0aAA"), std::string("auth\0", 5));
  EXPECT_EQ(decoded(""), "");
  for (std::string_view bad : {"YX=V", "Y", "YXV0a", "YX\tV", "****", "YQ===", "=YQ="}) {
    EXPECT_EQ(decoded(bad), std::nullopt) << bad;
  }
}

TEST(Base64DifferentialTest, ValidInputPaddedAndUnpadded) {
  std::mt19937 rng(20261206);
  for (std::size_t n = 0; n < 400; ++n) {
    const std::string bytes = RandomBytes(rng, n);
    std::string encoded = Base64Encode(bytes.data(), bytes.size());
    const auto want = Base64DecodeReferenceForTesting(encoded);
    ASSERT_TRUE(want.has_value()) << encoded;
    ASSERT_EQ(std::string(want->begin(), want->end()), bytes) << encoded;
    ExpectSameAsReference(encoded);
    encoded.erase(encoded.find_last_not_of('=') + 1);
    ExpectSameAsReference(encoded);
  }
}

// Every byte value at every position of inputs from just over one SIMD block to
// several, padded or not: covers an invalid character in each lane of each
// block, in the reserve the SIMD loop leaves, in the tail and in the padding.
TEST(Base64DifferentialTest, EveryByteAtEveryPosition) {
  std::mt19937 rng(4648);
  for (std::size_t n : {19u, 20u, 21u, 36u, 37u, 38u, 60u, 61u, 62u}) {
    const std::string bytes = RandomBytes(rng, n);
    for (bool padded : {true, false}) {
      std::string encoded = Base64Encode(bytes.data(), bytes.size());
      if (!padded) encoded.erase(encoded.find_last_not_of('=') + 1);
      ASSERT_GT(encoded.size(), 24u);
      for (std::size_t at = 0; at < encoded.size(); ++at) {
        std::string in = encoded;
        for (int c = 0; c < 256; ++c) {
          in[at] = static_cast<char>(c);
          ExpectSameAsReference(in);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(Base64DifferentialTest, EveryTruncationAndBadPadding) {
  std::mt19937 rng(1987);
  for (int round = 0; round < 50; ++round) {
    const std::string bytes = RandomBytes(rng, 60 + static_cast<std::size_t>(round));
    const std::string encoded = Base64Encode(bytes.data(), bytes.size());
    for (std::size_t len = 0; len <= encoded.size(); ++len) {
      const std::string prefix = encoded.substr(0, len);
      ExpectSameAsReference(prefix);
      // Padding of every count after every truncation: valid only when it
      // completes a quantum with at most two '='.
      for (std::size_t pad = 1; pad <= 3; ++pad)
        ExpectSameAsReference(prefix + std::string(pad, '='));
      if (HasFatalFailure()) return;
    }
    // '=' and runs of '=' inside the data.
    for (std::size_t at = 0; at < encoded.size(); ++at) {
      for (std::size_t run = 1; run <= 3; ++run) {
        ExpectSameAsReference(encoded.substr(0, at) + std::string(run, '=') + encoded.substr(at));
      }
      if (HasFatalFailure()) return;
    }
  }
}

// Random strings over the alphabet, '=' and a few near-miss bytes (the
// neighbours of the alphabet's ranges, which the SIMD classification must
// tell apart), at random lengths around the SIMD thresholds.
TEST(Base64DifferentialTest, RandomMixedInput) {
  constexpr std::string_view kPool =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
      "=@[`{*,-.:;_/\x7f\x80\xaf\xc1\xff\t\n ";
  std::mt19937 rng(77);
  std::uniform_int_distribution<std::size_t> length(0, 160), pick(0, kPool.size() - 1);
  std::uniform_int_distribution<int> mutations(0, 3), byte(0, 255);
  for (int round = 0; round < 20000; ++round) {
    std::string in(length(rng), 'A');
    // Mostly valid characters, so that most inputs reach the end of the SIMD loop.
    for (char& c : in) c = kPool[pick(rng) % 192];
    for (int m = mutations(rng); m > 0 && !in.empty(); --m) {
      in[std::uniform_int_distribution<std::size_t>(0, in.size() - 1)(rng)] =
          rng() % 2 ? kPool[pick(rng)] : static_cast<char>(byte(rng));
    }
    if (rng() % 3 == 0) in.append(rng() % 3, '=');
    ExpectSameAsReference(in);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace mailscope
