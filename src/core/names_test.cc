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

TEST(NamesTest, TryInternKeepsTheBudget) {
  NameId known = InternName("names_test_known");
  SetNameBudget(NameCount() + 1, 64u << 20);
  EXPECT_NE(TryInternName("names_test_fits"), kNoName);  // the one left
  std::uint64_t refused = NamesRefused();
  EXPECT_EQ(TryInternName("names_test_over"), kNoName);
  EXPECT_EQ(NamesRefused(), refused + 1);
  EXPECT_EQ(TryInternName("names_test_known"), known);  // known names still resolve
  EXPECT_NE(InternName("names_test_config"), kNoName);  // InternName is not limited
  SetNameBudget(1'000'000, 0);                          // a byte budget, too
  EXPECT_EQ(TryInternName("names_test_bytes"), kNoName);
  SetNameBudget(1'000'000, 64u << 20);
  EXPECT_NE(TryInternName("names_test_bytes"), kNoName);
}

}  // namespace
}  // namespace mailscope
