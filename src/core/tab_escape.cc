#include "core/tab_escape.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

namespace {

// The fields of `line` into views[0..count), `views` grown as needed (its
// size is room, not fields); returns count, and sets `escaped` if the line
// held a \001. The room is checked once per block of 16 bytes that has a
// TAB, against copies kept in registers.
std::size_t SplitInto(std::span<char> line, std::vector<std::string_view>& views,
                      bool& escaped_out) {
  escaped_out = false;
  if (line.empty()) return 0;
  char* const base = line.data();
  const std::size_t n = line.size();
  std::string_view* out = views.data();
  std::size_t room = views.size();
  std::size_t count = 0;
  // Room for a block's fields, and the last field, after `count`.
  auto reserve = [&](std::size_t need) {
    if (count + need <= room) return;
    views.resize(std::max(2 * room, count + 17));
    out = views.data();
    room = views.size();
  };
  // One pass finds the TABs and whether any escape exists; a call per field
  // (memchr) costs more than the field on typical lines of short fields.
  std::size_t start = 0;
  std::size_t i = 0;
  bool escaped = false;
#if defined(__SSE2__)
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i esc = _mm_set1_epi8('\001');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + i));
    auto tabs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, tab)));
    escaped |= _mm_movemask_epi8(_mm_cmpeq_epi8(v, esc)) != 0;
    if (tabs == 0) continue;
    reserve(16);
    do {
      const std::size_t at = i + static_cast<std::size_t>(__builtin_ctz(tabs));
      out[count++] = std::string_view(base + start, at - start);
      start = at + 1;
      tabs &= tabs - 1;
    } while (tabs != 0);
  }
#endif
  for (; i < n; ++i) {
    if (base[i] == '\t') {
      reserve(1);
      out[count++] = std::string_view(base + start, i - start);
      start = i + 1;
    } else if (base[i] == '\001') {
      escaped = true;
    }
  }
  reserve(1);
  out[count++] = std::string_view(base + start, n - start);
  // Escapes are rare. Fields do not overlap, so each unescapes in place.
  escaped_out = escaped;
  if (escaped) {
    for (std::size_t k = 0; k < count; ++k)
      out[k] = UnescapeTabInPlace({base + (out[k].data() - base), out[k].size()});
  }
  return count;
}

}  // namespace

void SplitTabEscaped(std::span<char> line, std::vector<std::string_view>& out) {
  bool escaped = false;
  out.resize(SplitInto(line, out, escaped));
}

std::span<const std::string_view> TabSplitter::Split(std::span<char> line) {
  const std::size_t count = SplitInto(line, views_, escaped_);  // may move views_
  return {views_.data(), count};
}

std::size_t CountTabsScalar(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) n += c == '\t' ? 1 : 0;
  return n;
}

std::size_t CountTabsSse2(std::string_view s) {
  std::size_t n = 0;
  std::size_t i = 0;
#if defined(__SSE2__)
  // Per byte lane, 0 - (number of TABs), in at most 255 blocks at a time;
  // then the lanes summed by psadbw.
  const __m128i tab = _mm_set1_epi8('\t');
  while (i + 16 <= s.size()) {
    __m128i lanes = _mm_setzero_si128();
    for (int blocks = 0; blocks < 255 && i + 16 <= s.size(); ++blocks, i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
      lanes = _mm_add_epi8(lanes, _mm_cmpeq_epi8(v, tab));
    }
    const __m128i sums =
        _mm_sad_epu8(_mm_sub_epi8(_mm_setzero_si128(), lanes), _mm_setzero_si128());
    n += static_cast<std::size_t>(_mm_cvtsi128_si32(sums)) +
         static_cast<std::size_t>(_mm_extract_epi16(sums, 4));
  }
#endif
  return n + CountTabsScalar(s.substr(i));
}

#if defined(__x86_64__)
namespace {

// The TABs among the 32 bytes at p, one bit each.
__attribute__((target("avx2"))) unsigned TabBits32(const char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('\t'))));
}

}  // namespace

__attribute__((target("avx2,popcnt"))) std::size_t CountTabsAvx2(std::string_view s) {
  if (s.size() < 32) return CountTabsSse2(s);
  std::size_t n = 0;
  std::size_t i = 0;
  for (; i + 32 <= s.size(); i += 32)
    n += static_cast<std::size_t>(__builtin_popcount(TabBits32(s.data() + i)));
  // The last 32 bytes, less those counted already: no byte loop.
  if (i < s.size()) {
    const std::size_t seen = i + 32 - s.size();
    n += static_cast<std::size_t>(__builtin_popcount(TabBits32(s.data() + s.size() - 32) >> seen));
  }
  return n;
}

bool HaveAvx2() {
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  return have;
}
#else
std::size_t CountTabsAvx2(std::string_view s) { return CountTabsSse2(s); }
bool HaveAvx2() { return false; }
#endif

std::size_t CountTabs(std::string_view s) {
  return HaveAvx2() ? CountTabsAvx2(s) : CountTabsSse2(s);
}

std::size_t FindTabScalar(const char* p, std::size_t n, bool& escaped) {
  bool seen = false;
  std::size_t i = 0;
  for (; i < n && p[i] != '\t'; ++i) seen |= p[i] == '\001';
  escaped |= seen;
  return i;
}

std::size_t FindTab(const char* p, std::size_t n, bool& escaped) {
#if defined(__SSE2__)
  // Fields of old-stats and stats-writer lines are mostly short, and the
  // payload after them long: 16 bytes per compare, and the last partial
  // block read as the 16 bytes that end the field rather than byte by byte.
  if (n >= 16) {
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i esc = _mm_set1_epi8('\001');
    unsigned escs = 0;  // kept here, not in `escaped`: a char* store may alias p
    std::size_t i = 0;
    for (;;) {
      const bool last = i + 16 >= n;
      if (last) i = n - 16;  // overlaps bytes already seen: they hold no TAB
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      const auto tabs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, tab)));
      const auto block_escs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, esc)));
      if (tabs != 0) {
        const unsigned at = static_cast<unsigned>(__builtin_ctz(tabs));
        escs |= block_escs & ((1u << at) - 1);  // only escapes before the TAB
        escaped |= escs != 0;
        return i + at;
      }
      escs |= block_escs;
      if (last) {
        escaped |= escs != 0;
        return n;
      }
      i += 16;
    }
  }
#endif
  return FindTabScalar(p, n, escaped);
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
