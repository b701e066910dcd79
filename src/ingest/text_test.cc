#include "ingest/text.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailscope::ingest {
namespace {

// What ParseDecimal promises: exactly std::from_chars over the whole text.
template <typename T>
void ExpectLikeFromChars(std::string_view s) {
  T want = 7, got = 7;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), want);
  const bool ok = !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
  EXPECT_EQ(ParseDecimal(s, got), ok) << s;
  if (ok) {
    EXPECT_EQ(got, want) << s;
  }
}

TEST(ParseDecimalTest, AgreesWithFromChars) {
  const std::string_view cases[] = {
      "",
      "0",
      "-0",
      "-",
      "+1",
      "007",
      "1 ",
      " 1",
      "12a",
      "4294967295",
      "4294967296",
      "999999999",
      "-2147483648",
      "-2147483649",
      "9223372036854775807",
      "9223372036854775808",
      "-9223372036854775808",
      "-9223372036854775809",
      "18446744073709551615",
      "18446744073709551616",
      "99999999999999999999999",
      "123456789012345678",
      "-123456789012345678",
      "1.5",
      "0x10",
      "\xff",
      "/",
      ":",
  };
  for (std::string_view s : cases) {
    ExpectLikeFromChars<std::uint32_t>(s);
    ExpectLikeFromChars<std::int32_t>(s);
    ExpectLikeFromChars<std::uint64_t>(s);
    ExpectLikeFromChars<std::int64_t>(s);
    ExpectLikeFromChars<std::uint16_t>(s);
  }
  for (std::uint64_t v = 1; v != 0 && v < UINT64_MAX / 3; v = v * 3 + 1) {
    const std::string s = std::to_string(v);
    ExpectLikeFromChars<std::uint64_t>(s);
    ExpectLikeFromChars<std::int64_t>("-" + s);
    ExpectLikeFromChars<std::uint32_t>(s);
  }
}

}  // namespace
}  // namespace mailscope::ingest
