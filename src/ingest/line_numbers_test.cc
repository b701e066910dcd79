#include "ingest/line_numbers.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mailscope::ingest {
namespace {

// "<sec>\t<usec>" in one buffer, as a line holds them; both readers' answers.
void ExpectSameAnswer(const std::string& sec, const std::string& usec, bool allow_negative) {
  const std::string line = sec + "\t" + usec;
  const std::string_view s(line.data(), sec.size());
  const std::string_view u(line.data() + sec.size() + 1, usec.size());
  Timeval want, got;
  const bool ok = ParseTimeval(s, u, allow_negative, want);
  ASSERT_EQ(ParseLineTimeval(s, u, allow_negative, got), ok) << line;
  if (ok) {
    EXPECT_EQ(got, want) << line;
  }
}

TEST(LineNumbersTest, EightDigits) {
  std::uint32_t v = 0;
  auto word = [](const char* s) {
    std::uint64_t w = 0;
    std::memcpy(&w, s, 8);
    return w;
  };
  EXPECT_TRUE(EightDigits(word("00000000"), v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(EightDigits(word("99999999"), v));
  EXPECT_EQ(v, 99'999'999u);
  EXPECT_TRUE(EightDigits(word("12345678"), v));
  EXPECT_EQ(v, 12'345'678u);
  for (const char* bad : {"1234567/", ":2345678", "1234 678",
                          "1234\xff"
                          "678",
                          "\xfa"
                          "0000000"})
    EXPECT_FALSE(EightDigits(word(bad), v)) << bad;
}

TEST(LineNumbersTest, LineTimevalsOfEveryForm) {
  ExpectSameAnswer("1795304655", "257129", false);
  ExpectSameAnswer("1795304655", "0", false);
  ExpectSameAnswer("1795304655", "1000000", false);  // seven digits: the scalar path refuses
  ExpectSameAnswer("0000000000", "000000", false);
  ExpectSameAnswer("9999999999", "999999", false);
  ExpectSameAnswer("-179530465", "1", true);
  ExpectSameAnswer("179530465x", "1", false);
  ExpectSameAnswer("1795304655", "12x", false);
  ExpectSameAnswer("1795304655", "", false);
  // Random texts of digits and a few other bytes, of every length to twelve.
  std::mt19937 rng(29);
  const char alphabet[] = "0123456789012345678901234567890123456789-+ x/:\t\x01";
  auto text = [&](std::size_t max) {
    std::string s(rng() % (max + 1), '0');
    for (char& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
    return s;
  };
  for (int round = 0; round < 200000; ++round) {
    std::string sec =
        round % 2 == 0 ? std::to_string(1'000'000'000 + rng() % 900'000'000) : text(12);
    if (round % 7 == 0 && !sec.empty()) sec[rng() % sec.size()] = alphabet[rng() % 48];
    ExpectSameAnswer(sec, round % 3 == 0 ? std::to_string(rng() % 1'000'000) : text(8),
                     round % 5 == 0);
  }
}

// Every text of up to ten bytes, at every distance from the line's start:
// the same answers as ParseDecimal() for the three types the decoders read.
template <typename T>
void ExpectSameDecimal(const std::string& line, std::size_t at, std::size_t size) {
  const std::string_view s(line.data() + at, size);
  T want = 7, got = 7;
  const bool ok = ParseDecimal(s, want);
  ASSERT_EQ(ParseLineDecimal(s, line.data(), got), ok) << "[" << s << "] at " << at;
  if (ok) {
    ASSERT_EQ(got, want) << "[" << s << "] at " << at;
  }
}

TEST(LineNumbersTest, LineDecimalsOfEveryForm) {
  std::mt19937 rng(31);
  const char alphabet[] = "01234567890123456789-+ x\t";
  for (int round = 0; round < 100000; ++round) {
    std::string line(24, '0');
    for (char& c : line) c = alphabet[rng() % (sizeof alphabet - 1)];
    if (round % 3 == 0) {
      for (char& c : line) c = static_cast<char>('0' + rng() % 10);
    }
    const std::size_t at = rng() % 14;
    const std::size_t size = rng() % 11;
    ExpectSameDecimal<std::uint64_t>(line, at, size);
    ExpectSameDecimal<std::uint32_t>(line, at, size);
    ExpectSameDecimal<std::int64_t>(line, at, size);
  }
}

}  // namespace
}  // namespace mailscope::ingest
