// Small text helpers shared by the decoders.
#pragma once

#include <charconv>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

namespace mailscope::ingest {

// The whole of `s` as a decimal number of type T (no sign for unsigned T, no
// spaces, no trailing bytes); false if it is not one or does not fit.
// Inlined everywhere: the call was a tenth of the cost of a stats-writer
// line's numbers (callgrind).
template <typename T>
[[gnu::always_inline]] inline bool ParseDecimal(std::string_view s, T& out) {
  // Fast path, the same answer as from_chars: digits (after a '-' for signed
  // T) too few to overflow. The numbers of the wire protocols are short.
  if constexpr (std::is_integral_v<T>) {
    const bool negative = std::is_signed_v<T> && !s.empty() && s[0] == '-';
    const std::size_t digits = s.size() - (negative ? 1 : 0);
    if (digits >= 1 && digits <= static_cast<std::size_t>(std::numeric_limits<T>::digits10)) {
      T v = 0;
      for (std::size_t i = s.size() - digits; i < s.size(); ++i) {
        const auto d = static_cast<unsigned>(static_cast<unsigned char>(s[i]) - '0');
        if (d > 9) return false;
        v = static_cast<T>(v * 10 + static_cast<T>(d));
      }
      out = negative ? static_cast<T>(0 - v) : v;
      return true;
    }
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// `s` cut to 64 bytes for a log line (with "..." when cut), so garbage input
// cannot make log lines long.
// Control bytes and DEL are written \xNN, so that a log line cannot move a
// terminal's cursor or forge a line of its own.
inline std::string QuoteForLog(std::string_view s) {
  constexpr std::size_t kMax = 64;
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : s.substr(0, kMax)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

}  // namespace mailscope::ingest
