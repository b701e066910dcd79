#include "core/tab_escape.h"

#include <cstring>

namespace mailscope {

std::string_view UnescapeTabInPlace(std::span<char> field) {
  char* p = field.data();
  char* end = p + field.size();
  char* first = static_cast<char*>(std::memchr(p, '\001', field.size()));
  if (first == nullptr) return {p, field.size()};
  char* w = first;
  for (char* r = first; r < end; ++r) {
    if (*r != '\001') {
      *w++ = *r;
      continue;
    }
    if (++r == end) break;  // trailing escape character: dropped
    switch (*r) {
      case '0':
        *w++ = '\0';
        break;
      case '1':
        *w++ = '\001';
        break;
      case 't':
        *w++ = '\t';
        break;
      case 'r':
        *w++ = '\r';
        break;
      case 'n':
        *w++ = '\n';
        break;
      default:
        *w++ = *r;
        break;
    }
  }
  return {p, static_cast<std::size_t>(w - p)};
}

void SplitTabEscaped(std::span<char> line, std::vector<std::string_view>& out) {
  out.clear();
  if (line.empty()) return;
  char* p = line.data();
  char* end = p + line.size();
  // Escapes are rare: one scan of the whole line spares a scan per field.
  const bool escaped = std::memchr(p, '\001', line.size()) != nullptr;
  for (;;) {
    char* tab = static_cast<char*>(std::memchr(p, '\t', static_cast<std::size_t>(end - p)));
    char* stop = tab != nullptr ? tab : end;
    const auto len = static_cast<std::size_t>(stop - p);
    out.push_back(escaped ? UnescapeTabInPlace({p, len}) : std::string_view(p, len));
    if (tab == nullptr) break;
    p = tab + 1;
  }
}

void AppendTabEscaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\001':
        out += "\0011";
        break;
      case '\t':
        out += "\001t";
        break;
      case '\r':
        out += "\001r";
        break;
      case '\n':
        out += "\001n";
        break;
      case '\0':
        out += "\0010";
        break;
      default:
        out += c;
        break;
    }
  }
}

}  // namespace mailscope
