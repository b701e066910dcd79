#include "core/tab_escape.h"

#include <gtest/gtest.h>

#include <random>

namespace mailscope {
namespace {

std::vector<std::string> Split(std::string s) {
  std::vector<std::string_view> views;
  SplitTabEscaped(s, views);
  return {views.begin(), views.end()};
}

TEST(TabEscapeTest, SplitsAndUnescapes) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split(""), V{});
  EXPECT_EQ(Split("a"), V{"a"});
  EXPECT_EQ(Split("a\t"), (V{"a", ""}));
  EXPECT_EQ(Split("\t"), (V{"", ""}));
  EXPECT_EQ(Split("a\001tb\tc\0011d"), (V{"a\tb", "c\001d"}));
  EXPECT_EQ(Split("\001r\001n\0010"), (V{std::string("\r\n\0", 3)}));
  EXPECT_EQ(Split("x\001"), V{"x"});      // trailing escape dropped
  EXPECT_EQ(Split("x\001zy"), V{"xzy"});  // unknown escape keeps the byte
}

TEST(TabEscapeTest, EscapeRoundTrips) {
  std::string raw("a\tb\r\n\001c\0d", 9);
  std::string esc;
  AppendTabEscaped(esc, raw);
  EXPECT_EQ(esc.find('\t'), std::string::npos);
  auto v = Split(esc);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], raw);
}

// The specification, one byte at a time: split on TAB, then unescape.
std::vector<std::string> ReferenceSplit(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::string field;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\t') {
      std::string u;
      for (std::size_t k = 0; k < field.size(); ++k) {
        if (field[k] != '\001') {
          u += field[k];
        } else if (k + 1 < field.size()) {
          const char e = field[++k];
          u += e == '0'   ? '\0'
               : e == '1' ? '\001'
               : e == 't' ? '\t'
               : e == 'r' ? '\r'
               : e == 'n' ? '\n'
                          : e;
        }
      }
      out.push_back(u);
      field.clear();
    } else {
      field += s[i];
    }
  }
  return out;
}

// A random line of `len` bytes, TABs and escapes at random places; half the
// rounds without any escape byte.
std::string RandomLine(std::mt19937& rng, std::size_t len, bool plain) {
  const char alphabet[] = {'a', 'b', '\t', '\t', '\001', 't', '1', 'n', '0', 'x'};
  std::string s;
  for (std::size_t i = 0; i < len; ++i) {
    char c = alphabet[rng() % sizeof alphabet];
    if (plain && c == '\001') c = 'e';
    s += c;
  }
  return s;
}

// Lines of every length around the 16-byte blocks, TABs and escapes at every
// position; through SplitTabEscaped() and through one TabSplitter for every
// line, as a decoder keeps it (its storage grows with lines of more fields
// and is reused by lines of fewer).
TEST(TabEscapeTest, SplitMatchesByteByByteReference) {
  std::mt19937 rng(7);
  TabSplitter splitter;
  for (int round = 0; round < 20000; ++round) {
    std::string s = RandomLine(rng, rng() % (round % 10 == 0 ? 600 : 70), round % 2 == 0);
    const std::vector<std::string> want = ReferenceSplit(s);
    ASSERT_EQ(Split(s), want) << "line of " << s.size() << " bytes, round " << round;
    const auto fields = splitter.Split(s);
    ASSERT_EQ(std::vector<std::string>(fields.begin(), fields.end()), want)
        << "TabSplitter, line of " << s.size() << " bytes, round " << round;
  }
}

std::vector<std::string> Fields(std::string s) {
  std::vector<std::string> out;
  for (TabFields f(s); !f.done();) out.emplace_back(f.Next());
  return out;
}

TEST(TabFieldsTest, TakesTheFieldsSplitGives) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Fields(""), V{});
  EXPECT_EQ(Fields("a"), V{"a"});
  EXPECT_EQ(Fields("a\t"), (V{"a", ""}));
  EXPECT_EQ(Fields("\t"), (V{"", ""}));
  EXPECT_EQ(Fields("UPDATE-SESSION\tsess\tbWFpbAA="), (V{"UPDATE-SESSION", "sess", "bWFpbAA="}));
  EXPECT_EQ(Fields("x\001ty\tz\0011\001"), (V{"x\ty", "z\001"}));
}

TEST(TabFieldsTest, StopsWhereTheDecoderStops) {
  std::string s = "CONNECT\tsess\tu\001ts\trest\001n";
  TabFields f(s);
  EXPECT_EQ(f.Next(), "CONNECT");
  EXPECT_EQ(f.Next(), "sess");
  EXPECT_FALSE(f.done());
  // The fields not taken stay as they came, escapes included.
  EXPECT_EQ(s.substr(13), "u\001ts\trest\001n");
}

// The SSE2 scan, and its inline first block, against the scalar reference,
// on lines of every length around the 16-byte blocks with TABs and escapes
// at every position.
TEST(TabFieldsTest, FindTabMatchesScalarReference) {
  std::mt19937 rng(11);
  for (int round = 0; round < 40000; ++round) {
    const std::string s = RandomLine(rng, rng() % 90, round % 2 == 0);
    bool reference_escaped = false;
    const std::size_t reference = FindTabScalar(s.data(), s.size(), reference_escaped);
    for (auto find : {&FindTab, &FindTabInline}) {
      bool escaped = false;
      ASSERT_EQ(find(s.data(), s.size(), escaped), reference) << "round " << round;
      ASSERT_EQ(escaped, reference_escaped) << "round " << round;
    }
    // The same field at the end of a longer line, and anywhere in it.
    const std::string line = RandomLine(rng, rng() % 40, round % 2 == 0) + s;
    for (const std::size_t at :
         {line.size() - s.size(), static_cast<std::size_t>(rng() % (line.size() + 1))}) {
      bool escaped = false, want_escaped = false;
      const std::size_t want = FindTabScalar(line.data() + at, line.size() - at, want_escaped);
      ASSERT_EQ(FindTabInLine(line.data(), line.data() + at, line.data() + line.size(), escaped),
                want)
          << "round " << round;
      ASSERT_EQ(escaped, want_escaped) << "round " << round;
    }
  }
}

// Lines past 255 blocks of 16 bytes, where the SSE2 count empties its lanes.
TEST(TabFieldsTest, CountTabsMatchesScalarReference) {
  std::mt19937 rng(19);
  for (int round = 0; round < 4000; ++round) {
    const std::size_t size = round % 10 == 0 ? 4000 + rng() % 5000 : rng() % 200;
    const std::string s = RandomLine(rng, size, round % 2 == 0);
    const std::size_t want = CountTabsScalar(s);
    ASSERT_EQ(CountTabs(s), want) << "round " << round;
    ASSERT_EQ(CountTabsSse2(s), want) << "round " << round;
    if (HaveAvx2()) {
      ASSERT_EQ(CountTabsAvx2(s), want) << "round " << round;
    }
  }
  EXPECT_EQ(CountTabs(std::string(4096 + 7, '\t')), 4096u + 7);
  EXPECT_EQ(CountTabs(""), 0u);
}

TEST(TabFieldsTest, MatchesSplitOnRandomLines) {
  std::mt19937 rng(13);
  for (int round = 0; round < 20000; ++round) {
    const std::string s = RandomLine(rng, rng() % 90, round % 2 == 0);
    ASSERT_EQ(Fields(s), Split(s)) << "round " << round;
  }
}

}  // namespace
}  // namespace mailscope
