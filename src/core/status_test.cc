#include "core/status.h"

#include <gtest/gtest.h>

namespace mailscope {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Status Chain(int x) {
  MS_RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(StatusTest, ResultCarriesValueOrError) {
  EXPECT_EQ(*Half(4), 2);
  EXPECT_FALSE(Half(3).ok());
  EXPECT_EQ(Half(3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Half(3).status().ToString(), "INVALID_ARGUMENT: odd");
  EXPECT_TRUE(Chain(2).ok());
  EXPECT_EQ(Chain(1).message(), "odd");
}

}  // namespace
}  // namespace mailscope
