// Numbers read from a line whose bytes around them are readable: decimal
// numbers, and the timevals of Dovecot's event export ("<sec>" TAB "<usec>",
// as lib-event writes tv_created, tv_last_sent and timeval fields).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/event.h"
#include "ingest/text.h"

namespace mailscope::ingest {

// Timestamps past the year 9999 are garbage; the bound also keeps
// sec * 10^6 + usec far from overflowing in consumers.
inline constexpr std::int64_t kMaxTimevalSeconds = 253'402'300'799;

// "<sec>" "<usec>" with usec 0..999999; sec may be negative only if
// `allow_negative` (timeval fields; the event's own times are not).
inline bool ParseTimeval(std::string_view sec, std::string_view usec, bool allow_negative,
                         Timeval& out) {
  std::uint32_t us = 0;
  if (!ParseDecimal(sec, out.sec) || !ParseDecimal(usec, us) || us > 999'999) return false;
  out.usec = us;
  return out.sec <= kMaxTimevalSeconds && out.sec >= (allow_negative ? -kMaxTimevalSeconds : 0);
}

// Eight ASCII digits, the first at the lowest address of the little-endian
// word `v`, to their value; false if a byte is not a digit. (SWAR: a dozen
// instructions where a byte loop takes about fifty.)
[[gnu::always_inline]] inline bool EightDigits(std::uint64_t v, std::uint32_t& out) {
  static_assert(std::endian::native == std::endian::little, "the first digit is the low byte");
  constexpr std::uint64_t kHigh = 0xF0F0F0F0F0F0F0F0ULL;
  constexpr std::uint64_t kZeros = 0x3030303030303030ULL;
  // A digit is 0x30..0x39: its high nibble is 3, and stays 3 after adding 6.
  // (A carry out of a byte comes only from a byte that is no digit.)
  if ((v & kHigh) != kZeros || ((v + 0x0606060606060606ULL) & kHigh) != kZeros) return false;
  v -= kZeros;
  v = v * 10 + (v >> 8);  // pairs of digits
  v = (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
       (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >>
      32;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// The n (1..8) digits that end at `end`, read as the eight bytes before
// `end`, those before the digits turned into leading zeros; false if one of
// the n is not a digit. REQUIRES: the eight bytes are readable.
[[gnu::always_inline]] inline bool DigitsEndingAt(const char* end, std::size_t n,
                                                  std::uint32_t& out) {
  std::uint64_t word = 0;
  std::memcpy(&word, end - 8, 8);
  const std::uint64_t lead = (std::uint64_t{1} << ((8 - n) * 8)) - 1;
  return EightDigits((word & ~lead) | (0x3030303030303030ULL & lead), out);
}

// ParseDecimal() for a number of four to eight digits, read as the eight
// bytes that end with it, those before it turned into leading zeros: no byte
// loop. `line` is where the readable bytes before the number begin; a number
// nearer to it, or of another form, goes to ParseDecimal(), as do shorter
// ones, for which the byte loop is cheaper. The same answers
// (line_numbers_test.cc).
template <typename T>
[[gnu::always_inline]] inline bool ParseLineDecimal(std::string_view s, const char* line, T& out) {
  static_assert(std::numeric_limits<T>::digits10 >= 8);
  const std::size_t n = s.size();
  if (n >= 4 && n <= 8 && s.data() + n >= line + 8) {
    std::uint32_t v = 0;
    if (DigitsEndingAt(s.data() + n, n, v)) {
      out = static_cast<T>(v);
      return true;
    }
  }
  return ParseDecimal(s, out);
}

// ParseTimeval() for a line's own timevals: the seconds of ten digits and the
// microseconds of one to six right after them and their TAB, in one buffer,
// read eight digits at a time. Any other form goes to ParseTimeval(); the
// answers are the same (line_numbers_test.cc). The scalar parse cost about
// 190 instructions a timeval, a third of a stats-writer EVENT's decoding.
[[gnu::always_inline]] inline bool ParseLineTimeval(std::string_view sec, std::string_view usec,
                                                    bool allow_negative, Timeval& out) {
  const std::size_t n = usec.size();
  if (sec.size() == 10 && n >= 1 && n <= 6 && usec.data() == sec.data() + 11) {
    const auto d0 = static_cast<unsigned>(static_cast<unsigned char>(sec[0]) - '0');
    const auto d1 = static_cast<unsigned>(static_cast<unsigned char>(sec[1]) - '0');
    // The microseconds' eight bytes begin within the seconds.
    std::uint32_t lo = 0, us = 0;
    if (d0 <= 9 && d1 <= 9 && DigitsEndingAt(sec.data() + 10, 8, lo) &&
        DigitsEndingAt(usec.data() + n, n, us)) {
      // Ten digits are at most 9,999,999,999: past no bound, never negative.
      out.sec = static_cast<std::int64_t>(d0 * 10 + d1) * 100'000'000 + lo;
      out.usec = us;
      return true;
    }
  }
  return ParseTimeval(sec, usec, allow_negative, out);
}

}  // namespace mailscope::ingest
