#include "core/base64.h"

#include <gtest/gtest.h>

namespace mailscope {
namespace {

std::string Decode(std::string_view in, bool* ok) {
  std::vector<std::uint8_t> out;
  *ok = Base64Decode(in, out);
  return {out.begin(), out.end()};
}

TEST(Base64Test, DecodesPaddedAndUnpadded) {
  bool ok = false;
  EXPECT_EQ(Decode("YXV0aAA=", &ok), std::string("auth\0", 5));
  EXPECT_TRUE(ok);
  EXPECT_EQ(Decode("YXV0aAA", &ok), std::string("auth\0", 5));
  EXPECT_TRUE(ok);
  EXPECT_EQ(Decode("", &ok), "");
  EXPECT_TRUE(ok);
}

TEST(Base64Test, RejectsGarbage) {
  bool ok = true;
  for (std::string_view bad : {"YX=V", "Y", "YXV0a", "YX\tV", "****", "YQ===", "=YQ="}) {
    Decode(bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
}

TEST(Base64Test, RoundTrips) {
  for (std::size_t n = 0; n < 40; ++n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(i * 37 + 11);
    bool ok = false;
    EXPECT_EQ(Decode(Base64Encode(s.data(), s.size()), &ok), s);
    EXPECT_TRUE(ok);
  }
}

}  // namespace
}  // namespace mailscope
