#include "core/wildcard.h"

#include <gtest/gtest.h>

namespace mailscope {
namespace {

TEST(WildcardTest, MatchesLikeDovecot) {
  struct Case {
    const char* data;
    const char* mask;
    bool match;
  } cases[] = {
      {"alice@example.com", "ali*", true},
      {"alice@example.com", "*@example.com", true},
      {"alice@example.com", "Ali*", false},
      {"alice", "a?ice", true},
      {"alice", "a?ce", false},
      {"", "*", true},
      {"", "", true},
      {"a", "", false},
      {"abcabc", "*abc", true},
      {"abcab", "*abc", false},
      {"example.org", "example.*", true},
      {"aaa", "a*a*a*a", false},
      {"mississippi", "m*iss*ppi", true},
      {"x", "**?**", true},
  };
  for (const Case& c : cases)
    EXPECT_EQ(WildcardMatch(c.data, c.mask), c.match) << c.data << " " << c.mask;
}

}  // namespace
}  // namespace mailscope
