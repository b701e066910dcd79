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

// Lines of every length around the 16-byte blocks, TABs and escapes at every position.
TEST(TabEscapeTest, SplitMatchesByteByByteReference) {
  std::mt19937 rng(7);
  const char alphabet[] = {'a', 'b', '\t', '\t', '\001', 't', '1', 'n', '0', 'x'};
  for (int round = 0; round < 20000; ++round) {
    const std::size_t len = rng() % 70;
    std::string s;
    const bool plain = round % 2 == 0;  // half without any escape byte
    for (std::size_t i = 0; i < len; ++i) {
      char c = alphabet[rng() % sizeof alphabet];
      if (plain && c == '\001') c = 'e';
      s += c;
    }
    ASSERT_EQ(Split(s), ReferenceSplit(s)) << "line of " << len << " bytes, round " << round;
  }
}

}  // namespace
}  // namespace mailscope
