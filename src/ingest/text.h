// Small text helpers shared by the decoders.
#pragma once

#include <charconv>
#include <string>
#include <string_view>

namespace mailscope::ingest {

// The whole of `s` as a decimal number of type T (no sign for unsigned T, no
// spaces, no trailing bytes); false if it is not one or does not fit.
template <typename T>
bool ParseDecimal(std::string_view s, T& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// `s` cut to 64 bytes for a log line (with "..." when cut), so garbage input
// cannot make log lines long.
inline std::string QuoteForLog(std::string_view s) {
  constexpr std::size_t kMax = 64;
  std::string out(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  return out;
}

}  // namespace mailscope::ingest
