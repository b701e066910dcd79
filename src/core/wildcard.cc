#include "core/wildcard.h"

namespace mailscope {

bool WildcardMatch(std::string_view data, std::string_view mask) {
  // Greedy with one backtrack point: the last '*' seen. Linear in practice,
  // O(n*m) at worst, never recursive.
  std::size_t d = 0, m = 0;
  std::size_t star = std::string_view::npos, star_d = 0;
  while (d < data.size()) {
    if (m < mask.size() && (mask[m] == '?' || mask[m] == data[d])) {
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

}  // namespace mailscope
