#include "core/allocation_counter_testing.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace mailscope {
namespace {

// The tests that expect no allocation rely on the counter seeing them.
TEST(AllocationCounterTest, CountsEveryNew) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  const long before = HeapAllocationsForTesting();
  auto one = std::make_unique<int>(1);
  std::string two(1000, 'x');
  EXPECT_EQ(HeapAllocationsForTesting() - before, 2);
  EXPECT_EQ(*one + static_cast<int>(two.size()), 1001);
}

}  // namespace
}  // namespace mailscope
