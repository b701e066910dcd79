// IPv4/IPv6 addresses with Dovecot's parsing, text form and network test.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailscope {

class IpAddress {
 public:
  IpAddress() = default;

  // Parses "1.2.3.4", "::1" or "[::1]" (net_addr2ip). nullopt if invalid.
  static std::optional<IpAddress> Parse(std::string_view text);

  bool is_v4() const { return family_ == 4; }
  bool is_v6() const { return family_ == 6; }
  bool valid() const { return family_ != 0; }
  int bits() const { return is_v4() ? 32 : 128; }
  // inet_ntop form; IPv6 without brackets. Empty for an invalid address.
  std::string ToString() const;

  // True if this address is inside net/bits. An IPv4-mapped IPv6 address
  // matches an IPv4 network. bits == 0 matches everything.
  bool InNetwork(const IpAddress& net, int bits) const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  std::size_t Hash() const;

 private:
  std::uint8_t family_ = 0;               // 0 = unset, 4, 6
  std::array<std::uint8_t, 16> bytes_{};  // v4 uses the first 4
};

// "ip[/bits]" (net_parse_range). Without "/bits" the mask is the full length.
struct IpRange {
  IpAddress ip;
  int bits = 0;
};
std::optional<IpRange> ParseIpRange(std::string_view text);

}  // namespace mailscope
