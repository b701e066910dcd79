#include "core/tzif.h"

#include <limits>

#include "core/time_zone.h"

namespace mailscope::internal {
namespace {

// Transition times beyond ±2^60 s are refused (zic's earliest is -2^59).
constexpr std::int64_t kMaxTransition = std::int64_t{1} << 60;

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAlnum(char c) { return IsAlpha(c) || (c >= '0' && c <= '9'); }

// --- POSIX TZ strings -------------------------------------------------------

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ == s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  bool Eat(char c) {
    if (done() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  // 1..max_digits decimal digits, at most `max`.
  bool Number(int max_digits, int max, int& out) {
    int v = 0;
    int n = 0;
    while (n < max_digits && !done() && s_[i_] >= '0' && s_[i_] <= '9') {
      v = v * 10 + (s_[i_++] - '0');
      ++n;
    }
    out = v;
    return n > 0 && v <= max;
  }
  // A zone abbreviation: three or more letters, or "<...>" of letters,
  // digits, '+' and '-'.
  bool Name() {
    std::size_t n = 0;
    if (Eat('<')) {
      while (!done() && (IsAlnum(s_[i_]) || s_[i_] == '+' || s_[i_] == '-')) {
        ++i_;
        ++n;
      }
      return n >= 3 && Eat('>');
    }
    while (!done() && IsAlpha(s_[i_])) {
      ++i_;
      ++n;
    }
    return n >= 3;
  }
  // [+-]hh[:mm[:ss]] with hh at most max_hours, in seconds.
  bool Hms(int max_hours, std::int32_t& out) {
    const bool negative = Eat('-');
    if (!negative) Eat('+');
    int h = 0;
    int m = 0;
    int s = 0;
    if (!Number(3, max_hours, h)) return false;
    if (Eat(':')) {
      if (!Number(2, 59, m)) return false;
      if (Eat(':') && !Number(2, 59, s)) return false;
    }
    out = (h * 3600 + m * 60 + s) * (negative ? -1 : 1);
    return true;
  }
  bool Date(PosixDate& d) {
    if (Eat('J')) {
      d.kind = PosixDate::Kind::kJulian1;
      return Number(3, 365, d.day) && d.day >= 1;
    }
    if (Eat('M')) {
      d.kind = PosixDate::Kind::kMonthWeekDay;
      return Number(2, 12, d.month) && d.month >= 1 && Eat('.') && Number(1, 5, d.week) &&
             d.week >= 1 && Eat('.') && Number(1, 6, d.weekday);
    }
    d.kind = PosixDate::Kind::kJulian0;
    return Number(3, 365, d.day);
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

// --- TZif (RFC 8536) --------------------------------------------------------

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  std::size_t remaining() const { return bytes_.size() - pos_; }
  bool Take(std::size_t n, std::string_view& out) {
    if (n > remaining()) return false;
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

std::uint64_t BigEndian(std::string_view b, std::size_t at, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}
std::int64_t BigEndianSigned(std::string_view b, std::size_t at, std::size_t width) {
  const std::uint64_t v = BigEndian(b, at, width);
  if (width == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

struct TzifHeader {
  char version;
  std::uint64_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

Status ReadHeader(ByteReader& in, TzifHeader& h) {
  std::string_view b;
  if (!in.Take(44, b)) return InvalidArgument("truncated header");
  if (b.substr(0, 4) != "TZif") return InvalidArgument("not a TZif file (no \"TZif\" magic)");
  // '\0' is version 1; '2' to '4' share one layout, which later versions
  // are taken to keep (as the C library does).
  h.version = b[4];
  h.isutcnt = BigEndian(b, 20, 4);
  h.isstdcnt = BigEndian(b, 24, 4);
  h.leapcnt = BigEndian(b, 28, 4);
  h.timecnt = BigEndian(b, 32, 4);
  h.typecnt = BigEndian(b, 36, 4);
  h.charcnt = BigEndian(b, 40, 4);
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
    return InvalidArgument("UT/standard indicator counts differ from the type count");
  }
  return Status::Ok();
}

std::uint64_t BlockBytes(const TzifHeader& h, std::size_t time_bytes) {
  // Counts are 32-bit, so this sum cannot overflow 64 bits.
  return h.timecnt * (time_bytes + 1) + h.typecnt * 6 + h.charcnt + h.leapcnt * (time_bytes + 4) +
         h.isstdcnt + h.isutcnt;
}

// Reads the data block after `h` into `z`.
Status ReadBlock(ByteReader& in, const TzifHeader& h, std::size_t time_bytes, ZoneRules& z) {
  const std::uint64_t size = BlockBytes(h, time_bytes);
  std::string_view b;
  if (size > in.remaining() || !in.Take(static_cast<std::size_t>(size), b)) {
    return InvalidArgument("truncated data block");
  }
  if (h.typecnt == 0) return InvalidArgument("no local time types");
  if (h.leapcnt != 0) {
    return InvalidArgument("leap-second records (a \"right/\" zone): times are not Unix times");
  }
  const std::size_t times_at = 0;
  const std::size_t indices_at = h.timecnt * time_bytes;
  const std::size_t types_at = indices_at + h.timecnt;
  std::vector<std::int32_t> offsets(h.typecnt);
  for (std::size_t t = 0; t < h.typecnt; ++t) {
    const std::int64_t utoff = BigEndianSigned(b, types_at + t * 6, 4);
    if (utoff < -kMaxOffset || utoff > kMaxOffset) {
      return InvalidArgument("local time type offset beyond 26 hours");
    }
    offsets[t] = static_cast<std::int32_t>(utoff);
  }
  z.initial_offset = offsets[0];
  z.transitions.clear();
  z.transitions.reserve(h.timecnt);
  std::int32_t current = z.initial_offset;
  std::int64_t previous = std::numeric_limits<std::int64_t>::min();
  for (std::size_t i = 0; i < h.timecnt; ++i) {
    const std::int64_t at = BigEndianSigned(b, times_at + i * time_bytes, time_bytes);
    if (at <= previous) return InvalidArgument("transition times not increasing");
    if (at < -kMaxTransition || at > kMaxTransition) {
      return InvalidArgument("transition time out of range");
    }
    previous = at;
    const auto type = static_cast<unsigned char>(b[indices_at + i]);
    if (type >= h.typecnt) return InvalidArgument("transition names a type that does not exist");
    if (offsets[type] == current) continue;  // only the abbreviation or DST flag changed
    z.transitions.push_back({at, current, offsets[type]});
    current = offsets[type];
  }
  return Status::Ok();
}

}  // namespace

std::optional<PosixRule> ParsePosixTz(std::string_view s) {
  Cursor c(s);
  PosixRule r;
  std::int32_t posix_offset = 0;  // POSIX offsets count west
  if (!c.Name() || !c.Hms(24, posix_offset)) return std::nullopt;
  r.std_offset = -posix_offset;
  if (c.done()) return r;
  if (!c.Name()) return std::nullopt;
  r.has_dst = true;
  r.dst_offset = r.std_offset + 3600;
  if (!c.done() && c.peek() != ',') {
    if (!c.Hms(24, posix_offset)) return std::nullopt;
    r.dst_offset = -posix_offset;
  }
  if (c.done()) {
    // No rule: POSIX leaves it to the implementation; glibc takes the US
    // rule of 2007, M3.2.0,M11.1.0.
    r.start = PosixDate{PosixDate::Kind::kMonthWeekDay, 0, 3, 2, 0};
    r.end = PosixDate{PosixDate::Kind::kMonthWeekDay, 0, 11, 1, 0};
    return r;
  }
  if (!c.Eat(',') || !c.Date(r.start)) return std::nullopt;
  if (c.Eat('/') && !c.Hms(167, r.start_time)) return std::nullopt;
  if (!c.Eat(',') || !c.Date(r.end)) return std::nullopt;
  if (c.Eat('/') && !c.Hms(167, r.end_time)) return std::nullopt;
  if (!c.done()) return std::nullopt;
  return r;
}

std::int64_t RuleDay(const PosixDate& d, std::int64_t y) {
  const std::int64_t jan1 = DaysFromCivil(y, 1, 1);
  switch (d.kind) {
    case PosixDate::Kind::kJulian1:
      return jan1 + d.day - 1 + (IsLeapYear(y) && d.day >= 60 ? 1 : 0);
    case PosixDate::Kind::kJulian0:
      return jan1 + d.day;
    case PosixDate::Kind::kMonthWeekDay:
      break;
  }
  const std::int64_t first = DaysFromCivil(y, d.month, 1);
  const std::int64_t first_weekday = (first % 7 + 7 + 4) % 7;  // 1970-01-01 was a Thursday
  std::int64_t day = first + (d.weekday - first_weekday + 7) % 7 + 7 * (d.week - 1);
  const std::int64_t last = first + DaysInMonth(y, d.month) - 1;
  while (day > last) day -= 7;
  return day;
}

Status ParseTzif(std::string_view bytes, ZoneRules& z) {
  ByteReader in(bytes);
  TzifHeader h{};
  MS_RETURN_IF_ERROR(ReadHeader(in, h));
  if (h.version == '\0') return ReadBlock(in, h, 4, z);
  // Version 2+: the 32-bit block is for old readers; skip to the 64-bit one.
  const std::uint64_t v1_bytes = BlockBytes(h, 4);
  std::string_view skipped;
  if (v1_bytes > in.remaining() || !in.Take(static_cast<std::size_t>(v1_bytes), skipped)) {
    return InvalidArgument("truncated version 1 data block");
  }
  TzifHeader h2{};
  MS_RETURN_IF_ERROR(ReadHeader(in, h2));
  MS_RETURN_IF_ERROR(ReadBlock(in, h2, 8, z));
  // The footer: "\n" TZ-string "\n".
  const std::string_view footer = in.rest();
  if (footer.size() < 2 || footer.front() != '\n') return InvalidArgument("missing footer");
  const std::size_t end = footer.find('\n', 1);
  if (end == std::string_view::npos) return InvalidArgument("unterminated footer");
  const std::string_view tz = footer.substr(1, end - 1);
  if (!tz.empty()) {
    z.rule = ParsePosixTz(tz);
    if (!z.rule) return InvalidArgument("footer is not a POSIX TZ string");
  }
  return Status::Ok();
}

}  // namespace mailscope::internal
