#include "core/ip_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "core/hash.h"

namespace mailscope {

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress ip;
  if (text.find(':') != std::string_view::npos) {
    if (inet_pton(AF_INET6, buf, ip.bytes_.data()) != 1) return std::nullopt;
    ip.family_ = 6;
  } else {
    if (inet_pton(AF_INET, buf, ip.bytes_.data()) != 1) return std::nullopt;
    ip.family_ = 4;
  }
  return ip;
}

std::string IpAddress::ToString() const {
  if (!valid()) return {};
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

namespace {
bool PrefixEqual(const std::uint8_t* a, const std::uint8_t* b, int bits) {
  int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<std::size_t>(whole)) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}
constexpr std::uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}  // namespace

bool IpAddress::InNetwork(const IpAddress& net, int bits) const {
  if (bits <= 0) return true;
  if (!valid() || !net.valid()) return false;
  if (family_ == net.family_) return PrefixEqual(bytes_.data(), net.bytes_.data(), bits);
  if (is_v6() && net.is_v4() &&
      std::memcmp(bytes_.data(), kV4MappedPrefix, sizeof kV4MappedPrefix) == 0) {
    return PrefixEqual(bytes_.data() + 12, net.bytes_.data(), bits);
  }
  return false;
}

std::size_t IpAddress::Hash() const {
  // Seeded, over the family and the significant bytes.
  char key[17];
  key[0] = static_cast<char>(family_);
  const std::size_t n = is_v4() ? 4 : 16;
  std::memcpy(key + 1, bytes_.data(), n);
  return static_cast<std::size_t>(HashBytes(std::string_view(key, 1 + n)));
}

std::optional<IpRange> ParseIpRange(std::string_view text) {
  std::size_t slash = text.find('/');
  auto ip = IpAddress::Parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  IpRange r{*ip, ip->bits()};
  if (slash != std::string_view::npos) {
    std::string_view b = text.substr(slash + 1);
    unsigned bits = 0;
    auto [ptr, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
    if (b.empty() || ec != std::errc() || ptr != b.data() + b.size() ||
        bits > static_cast<unsigned>(ip->bits())) {
      return std::nullopt;
    }
    r.bits = static_cast<int>(bits);
  }
  return r;
}

}  // namespace mailscope
