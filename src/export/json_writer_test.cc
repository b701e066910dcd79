#include "export/json_writer.h"

#include <gtest/gtest.h>

namespace mailscope::exporter {
namespace {

using namespace std::string_view_literals;

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

TEST(JsonWriterTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii\t\n"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"));
  EXPECT_TRUE(IsValidUtf8("\0"sv));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

}  // namespace
}  // namespace mailscope::exporter
