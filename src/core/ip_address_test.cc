#include "core/ip_address.h"

#include <gtest/gtest.h>

namespace mailscope {
namespace {

TEST(IpAddressTest, ParsesAndFormats) {
  EXPECT_EQ(IpAddress::Parse("127.0.0.1")->ToString(), "127.0.0.1");
  EXPECT_EQ(IpAddress::Parse("[::1]")->ToString(), "::1");
  EXPECT_EQ(IpAddress::Parse("2001:DB8::0:1")->ToString(), "2001:db8::1");
  EXPECT_FALSE(IpAddress::Parse(""));
  EXPECT_FALSE(IpAddress::Parse("notanip"));
  EXPECT_FALSE(IpAddress::Parse("1.2.3"));
  EXPECT_FALSE(IpAddress::Parse("1.2.3.4.5"));
}

TEST(IpAddressTest, NetworkMembership) {
  auto ip = *IpAddress::Parse("10.1.2.3");
  auto r = *ParseIpRange("10.0.0.0/8");
  EXPECT_TRUE(ip.InNetwork(r.ip, r.bits));
  r = *ParseIpRange("10.1.2.0/30");
  EXPECT_TRUE(ip.InNetwork(r.ip, r.bits));
  r = *ParseIpRange("10.1.2.4/30");
  EXPECT_FALSE(ip.InNetwork(r.ip, r.bits));
  auto v6 = *IpAddress::Parse("2001:db8::5");
  r = *ParseIpRange("2001:db8::/32");
  EXPECT_TRUE(v6.InNetwork(r.ip, r.bits));
  EXPECT_FALSE(ip.InNetwork(r.ip, r.bits));
  auto mapped = *IpAddress::Parse("::ffff:10.1.2.3");
  r = *ParseIpRange("10.1.0.0/16");
  EXPECT_TRUE(mapped.InNetwork(r.ip, r.bits));
}

TEST(IpAddressTest, RangeParsing) {
  EXPECT_EQ(ParseIpRange("1.2.3.4")->bits, 32);
  EXPECT_EQ(ParseIpRange("::1")->bits, 128);
  EXPECT_EQ(ParseIpRange("1.2.3.4/0")->bits, 0);
  EXPECT_FALSE(ParseIpRange("1.2.3.4/33"));
  EXPECT_TRUE(ParseIpRange("::/128"));
  EXPECT_FALSE(ParseIpRange("::/129"));
  EXPECT_FALSE(ParseIpRange("1.2.3.4/"));
  EXPECT_FALSE(ParseIpRange("1.2.3.4/x"));
  EXPECT_FALSE(ParseIpRange("notanip"));
}

}  // namespace
}  // namespace mailscope
