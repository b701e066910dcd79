#include "core/base64.h"

#include <array>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mailscope {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> MakeDecodeTable() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kDecode = MakeDecodeTable();

}  // namespace

namespace {

// Four tables, one per position in a quantum, holding the sextet already
// shifted into place; invalid characters have bit 31 set, so one OR of the
// four entries both assembles the 24 bits and flags any invalid input.
constexpr std::uint32_t kInvalid = 0x80000000u;
constexpr std::array<std::array<std::uint32_t, 256>, 4> MakeShiftedTables() {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  for (int pos = 0; pos < 4; ++pos) {
    for (int c = 0; c < 256; ++c) {
      std::int8_t v = kDecode[static_cast<std::size_t>(c)];
      t[static_cast<std::size_t>(pos)][static_cast<std::size_t>(c)] =
          v < 0 ? kInvalid : static_cast<std::uint32_t>(v) << (18 - 6 * pos);
    }
  }
  return t;
}
constexpr auto kShifted = MakeShiftedTables();

#if defined(__x86_64__)
// Decodes 16 characters per step with SSSE3 (the nibble-lookup method
// described by Wojciech Mula and Daniel Lemire): classify by high and low
// nibble, map characters to sextets with one shuffle, then pack four sextets
// into three bytes with two multiply-adds. Returns characters consumed (a
// multiple of 16) and advances `w`; stops early at the first invalid block,
// leaving it to the scalar loop to report. Writes up to 4 bytes past the
// bytes it decodes, so the caller keeps 8 input characters in reserve.
__attribute__((target("ssse3"))) std::size_t DecodeBlocksSsse3(const unsigned char* p,
                                                               std::size_t n, std::uint8_t*& w) {
  const __m128i lut_lo = _mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
  const __m128i lut_hi = _mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10,
                                       0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  const __m128i lut_roll = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m128i mask_2f = _mm_set1_epi8(0x2f);
  const __m128i pack_shuffle =
      _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  std::size_t i = 0;
  for (; i + 16 + 8 <= n; i += 16) {
    __m128i in = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i hi_nibbles = _mm_and_si128(_mm_srli_epi32(in, 4), mask_2f);
    __m128i lo_nibbles = _mm_and_si128(in, mask_2f);
    __m128i lo = _mm_shuffle_epi8(lut_lo, lo_nibbles);
    __m128i hi = _mm_shuffle_epi8(lut_hi, hi_nibbles);
    // A character is invalid when its two classes overlap.
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128())) != 0xffff)
      break;
    __m128i eq_2f = _mm_cmpeq_epi8(in, mask_2f);
    __m128i roll = _mm_shuffle_epi8(lut_roll, _mm_add_epi8(eq_2f, hi_nibbles));
    __m128i sextets = _mm_add_epi8(in, roll);
    __m128i pairs = _mm_maddubs_epi16(sextets, _mm_set1_epi32(0x01400140));
    __m128i words = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00011000));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w), _mm_shuffle_epi8(words, pack_shuffle));
    w += 12;
  }
  return i;
}

const bool kHaveSsse3 = __builtin_cpu_supports("ssse3");
#endif

}  // namespace

std::ptrdiff_t Base64DecodeTo(std::string_view in, std::uint8_t* out) {
  // Strip up to two '=' of padding; none may appear elsewhere.
  std::size_t n = in.size();
  std::size_t pad = 0;
  while (n > 0 && in[n - 1] == '=' && pad < 2) {
    --n;
    ++pad;
  }
  if (pad > 0 && (n + pad) % 4 != 0) return -1;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::uint8_t* w = out;
  const std::size_t whole = n / 4 * 4;
  std::uint32_t bad = 0;
  std::size_t start = 0;
#if defined(__x86_64__)
  if (kHaveSsse3) start = DecodeBlocksSsse3(p, whole, w);
#endif
  for (std::size_t i = start; i < whole; i += 4) {
    std::uint32_t v =
        kShifted[0][p[i]] | kShifted[1][p[i + 1]] | kShifted[2][p[i + 2]] | kShifted[3][p[i + 3]];
    bad |= v;
    w[0] = static_cast<std::uint8_t>(v >> 16);
    w[1] = static_cast<std::uint8_t>(v >> 8);
    w[2] = static_cast<std::uint8_t>(v);
    w += 3;
  }
  const std::size_t rest = n - whole;
  if (rest == 1) return -1;  // a lone sextet carries no whole byte
  if (rest >= 2) {
    std::uint32_t v = kShifted[0][p[whole]] | kShifted[1][p[whole + 1]] |
                      (rest == 3 ? kShifted[2][p[whole + 2]] : 0);
    bad |= v;
    *w++ = static_cast<std::uint8_t>(v >> 16);
    if (rest == 3) *w++ = static_cast<std::uint8_t>(v >> 8);
  }
  if (bad & kInvalid) return -1;
  return w - out;
}

bool Base64Decode(std::string_view in, std::vector<std::uint8_t>& out) {
  out.resize(Base64DecodedSize(in.size()));
  std::ptrdiff_t n = Base64DecodeTo(in, out.data());
  if (n < 0) return false;
  out.resize(static_cast<std::size_t>(n));
  return true;
}

std::string Base64Encode(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < size) {
    std::uint32_t v = p[i] << 16;
    if (i + 1 < size) v |= p[i + 1] << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace mailscope
