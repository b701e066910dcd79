// Test-only: base64 decoding written for clarity, not speed, to check
// Base64Decode against (its SSSE3 and scalar paths alike). RFC 4648 §4 with
// the rules of core/base64.h: '=' padding is optional, at most two '=' and
// only at the end of input whose length is then a multiple of four, a lone
// final sextet is an error, and the unused low bits of the last sextet are
// ignored (as Dovecot's own decoder does).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace mailscope {

// The decoded bytes, or nullopt when `in` is not base64 by the rules above.
inline std::optional<std::vector<std::uint8_t>> Base64DecodeReferenceForTesting(
    std::string_view in) {
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
  if (pad > 0 && in.size() % 4 != 0) return std::nullopt;
  const std::string_view body = in.substr(0, in.size() - pad);
  if (body.size() % 4 == 1) return std::nullopt;
  std::vector<std::uint8_t> out;
  std::uint32_t bits = 0;
  int count = 0;  // bits held in `bits`
  for (const char c : body) {
    const std::size_t sextet = kAlphabet.find(c);
    if (sextet == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(sextet);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<std::uint8_t>(bits >> count));
      bits &= (1u << count) - 1;
    }
  }
  return out;
}

}  // namespace mailscope
