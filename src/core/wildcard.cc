#include "core/wildcard.h"

#include "core/ascii.h"

namespace mailscope {
namespace {

// Greedy with one backtrack point: the last '*' seen. Linear in practice,
// O(n*m) at worst, never recursive.
template <bool kIgnoreCase>
bool Match(std::string_view data, std::string_view mask) {
  std::size_t d = 0, m = 0;
  std::size_t star = std::string_view::npos, star_d = 0;
  auto same = [](char a, char b) { return kIgnoreCase ? AsciiLower(a) == AsciiLower(b) : a == b; };
  while (d < data.size()) {
    if (m < mask.size() && (mask[m] == '?' || same(mask[m], data[d]))) {
      ++d;
      ++m;
    } else if (m < mask.size() && mask[m] == '*') {
      star = m++;
      star_d = d;
    } else if (star != std::string_view::npos) {
      m = star + 1;
      d = ++star_d;
    } else {
      return false;
    }
  }
  while (m < mask.size() && mask[m] == '*') ++m;
  return m == mask.size();
}

}  // namespace

bool WildcardMatch(std::string_view data, std::string_view mask) {
  return Match<false>(data, mask);
}

bool WildcardMatchIcase(std::string_view data, std::string_view mask) {
  return Match<true>(data, mask);
}

}  // namespace mailscope
