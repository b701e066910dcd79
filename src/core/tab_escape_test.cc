#include "core/tab_escape.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mailscope
