#include "core/names.h"

#include <gtest/gtest.h>

namespace mailscope {
namespace {

TEST(NamesTest, InternIsStableAndDense) {
  NameId a = InternName("names_test_a");
  NameId b = InternName("names_test_b");
  EXPECT_NE(a, b);
  EXPECT_EQ(InternName("names_test_a"), a);
  EXPECT_EQ(NameText(a), "names_test_a");
  EXPECT_EQ(FindName("names_test_b"), b);
  EXPECT_EQ(FindName("names_test_never"), kNoName);
  EXPECT_EQ(InternName(""), kNoName);
  EXPECT_LT(b, NameCount());
}

}  // namespace
}  // namespace mailscope
