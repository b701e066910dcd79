#include "export/json_writer.h"

#include <gtest/gtest.h>

namespace mailscope::exporter {
namespace {

TEST(JsonWriterTest, EscapesStrings) {
  std::string out;
  AppendJsonString(out, std::string("a\"b\\c\n\t\x01\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\"");
}

}  // namespace
}  // namespace mailscope::exporter
