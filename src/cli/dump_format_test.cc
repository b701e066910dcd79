#include "cli/dump_format.h"

#include <gtest/gtest.h>

namespace mailscope::cli {
namespace {

TEST(DumpFormatTest, DovecotTimevalsAreNotDecimals) {
  EXPECT_DOUBLE_EQ(DovecotTimevalSeconds("0.2863"), 0.002863);
  EXPECT_DOUBLE_EQ(DovecotTimevalSeconds("1.5"), 1.000005);
  EXPECT_DOUBLE_EQ(DovecotTimevalSeconds("12.0"), 12.0);
}

TEST(DumpFormatTest, JsonConvertsNumbersAndKeepsText) {
  std::vector<std::string> rows = {
      "user\treset_timestamp\tlast_update\tnum_logins\tuser_cpu",
      "alice@example.com\t1795305645\t1795305662.852514\t2\t0.18047",
      "we\001tird\t1\t2.000000\t0\t1.0",
  };
  EXPECT_EQ(RowsToJson(rows),
            "[\n  {\"user\": \"alice@example.com\", \"reset_timestamp\": 1795305645, "
            "\"last_update\": 1795305662.852514, \"num_logins\": 2, \"user_cpu\": 0.018047},\n"
            "  {\"user\": \"we\\tird\", \"reset_timestamp\": 1, \"last_update\": 2.000000, "
            "\"num_logins\": 0, \"user_cpu\": 1.000000}\n]\n");
  EXPECT_EQ(RowsToJson({}), "[]\n");
}

}  // namespace
}  // namespace mailscope::cli
