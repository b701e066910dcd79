#include "export/json_writer.h"

#include <gtest/gtest.h>

namespace mailscope::exporter {
namespace {

TEST(JsonWriterTest, EscapesStrings) {
  std::string out;
  AppendJsonString(out, std::string("a\"b\\c\n\t\x01\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\"");
}

// Whatever the bytes, the output is valid JSON: bad UTF-8 becomes U+FFFD.
TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacters) {
  std::string out;
  AppendJsonString(out, std::string_view("a\xff\xc3(\xe2\x80\xa8", 7));
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD\xEF\xBF\xBD(\\u2028\"");
}

}  // namespace
}  // namespace mailscope::exporter
