#include "core/base64.h"

#include <array>

namespace mailscope {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> MakeDecodeTable() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kDecode = MakeDecodeTable();

}  // namespace

bool Base64Decode(std::string_view in, std::vector<std::uint8_t>& out) {
  out.clear();
  out.reserve(in.size() / 4 * 3 + 3);
  // Strip up to two '=' of padding; none may appear elsewhere.
  std::size_t n = in.size();
  std::size_t pad = 0;
  while (n > 0 && in[n - 1] == '=' && pad < 2) {
    --n;
    ++pad;
  }
  if (pad > 0 && (n + pad) % 4 != 0) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::int8_t v = kDecode[static_cast<unsigned char>(in[i])];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  // 6 leftover bits mean one lone character in the last quantum.
  return bits != 6;
}

std::string Base64Encode(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < size) {
    std::uint32_t v = p[i] << 16;
    if (i + 1 < size) v |= p[i + 1] << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace mailscope
