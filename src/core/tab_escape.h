// Dovecot's tab-escaping (lib/strescape.c): the framing of every line
// protocol Dovecot speaks. \001 -> \0011, TAB -> \001t, CR -> \001r,
// LF -> \001n, NUL -> \0010.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mailscope {

// Splits `line` (without its LF) on raw TABs and unescapes each field in
// place; the views in `out` point into `line`. An empty line gives zero
// fields; "a\t" gives {"a", ""}. \001 followed by an unknown byte X yields X;
// a trailing lone \001 is dropped, as Dovecot does. Never fails.
void SplitTabEscaped(std::span<char> line, std::vector<std::string_view>& out);

// SplitTabEscaped() for a decoder's every line: the views go to storage kept
// from line to line, its room checked once a block of 16 bytes rather than at
// every field (840 -> 766 instructions a stats-writer line, callgrind).
class TabSplitter {
 public:
  // The fields of `line`, valid until the next Split().
  std::span<const std::string_view> Split(std::span<char> line);
  // Whether the line of the last Split() held an escape (\001): if not, the
  // fields are the line's bytes as they came.
  bool escaped() const { return escaped_; }

 private:
  std::vector<std::string_view> views_;  // its size is room, not fields
  bool escaped_ = false;
};

// Reads the fields of one line front to back, as SplitTabEscaped() splits
// them, unescaping each in place when it is taken. A decoder takes the fields
// it needs and never scans the rest: no vector of views per line.
//   TabFields f(line);
//   if (f.done()) ...;  // an empty line has no field
//   std::string_view cmd = f.Next();
class TabFields {
 public:
  explicit TabFields(std::span<char> line)
      : base_(line.data()), size_(line.size()), done_(line.empty()) {}

  // Whether every field has been taken.
  bool done() const { return done_; }
  // The next field, unescaped. REQUIRES: !done().
  std::string_view Next();
  // Everything from the next field to the end of the line, as it is: not
  // scanned for TABs, not unescaped, and not taken (Next() still returns the
  // next field). For a last field whose alphabet has neither TAB nor \001,
  // such as base64, a decoder that accepts the rest has read exactly Next().
  // REQUIRES: !done().
  std::string_view Rest() const { return {base_ + pos_, size_ - pos_}; }

 private:
  char* base_;
  std::size_t size_;
  std::size_t pos_ = 0;  // where the next field starts
  bool done_;
};

// The offset of the first TAB in [p, p + n), or n; sets `escaped` if a \001
// comes before it. Two versions that must agree (tab_escape_test.cc): the
// scalar reference, and the one Next() uses, 16 bytes at a time on SSE2.
std::size_t FindTabScalar(const char* p, std::size_t n, bool& escaped);
std::size_t FindTab(const char* p, std::size_t n, bool& escaped);
// FindTab() with its first 16 bytes looked at inline: the fields of a
// stats-writer line mostly end within them, and the call cost more than the
// scan. The same answers (tab_escape_test.cc).
std::size_t FindTabInline(const char* p, std::size_t n, bool& escaped);
// FindTabInline() of [p, end) within a line that begins at `line`: where
// fewer than 16 bytes are left, the line's last 16 are looked at instead, so
// a line's last fields take no call either. The same answers.
std::size_t FindTabInLine(const char* line, const char* p, const char* end, bool& escaped);

// The number of TABs in `s` (std::count, which the compiler does not
// vectorize, cost about 2.5 instructions a byte). CountTabs() takes the AVX2
// version where the CPU has it, else the SSE2 one; the scalar reference and
// both must agree (tab_escape_test.cc). HaveAvx2(): whether the CPU has AVX2
// and POPCNT, for CountTabsAvx2().
std::size_t CountTabs(std::string_view s);
std::size_t CountTabsScalar(std::string_view s);
std::size_t CountTabsSse2(std::string_view s);
std::size_t CountTabsAvx2(std::string_view s);
bool HaveAvx2();

// Unescapes one field in place and returns the shortened view.
std::string_view UnescapeTabInPlace(std::span<char> field);

// Appends `s` tab-escaped to `out`.
void AppendTabEscaped(std::string& out, std::string_view s);

[[gnu::always_inline]] inline std::size_t FindTabInline(const char* p, std::size_t n,
                                                        bool& escaped) {
#if defined(__SSE2__)
  if (n >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const auto tabs =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))));
    if (tabs != 0) {
      const auto at = static_cast<unsigned>(__builtin_ctz(tabs));
      const auto escs =
          static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\001'))));
      if ((escs & ((1u << at) - 1)) != 0) escaped = true;
      return at;
    }
  }
#endif
  return FindTab(p, n, escaped);
}

[[gnu::always_inline]] inline std::size_t FindTabInLine(const char* line, const char* p,
                                                        const char* end, bool& escaped) {
  const auto n = static_cast<std::size_t>(end - p);
#if defined(__SSE2__)
  if (n < 16 && end - line >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(end - 16));
    const auto before = static_cast<unsigned>(16 - n);  // bytes of the line before p
    const unsigned tabs =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')))) >> before;
    const unsigned escs =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\001')))) >>
        before;
    const std::size_t at = tabs != 0 ? static_cast<std::size_t>(__builtin_ctz(tabs)) : n;
    if ((escs & ((1u << at) - 1)) != 0) escaped = true;
    return at;
  }
#endif
  return FindTabInline(p, n, escaped);
}

// Inline: the call was a fifth of the cost of an old-stats record's short
// fields (callgrind).
inline std::string_view TabFields::Next() {
  bool escaped = false;
  char* const start = base_ + pos_;
  const std::size_t left = size_ - pos_;
  const std::size_t len = FindTabInLine(base_, start, base_ + size_, escaped);
  if (len == left) {
    done_ = true;
    pos_ = size_;
  } else {
    pos_ += len + 1;  // a TAB at the very end leaves one empty field
  }
  if (escaped) return UnescapeTabInPlace({start, len});
  return {start, len};
}

}  // namespace mailscope
