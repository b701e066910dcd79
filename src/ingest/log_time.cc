#include "ingest/log_time.h"

#include <array>
#include <chrono>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mailscope::ingest {
namespace {

// Every form is held to years 0000..9999, the years four digits can write.
constexpr std::int64_t kMinSeconds = DaysFromCivil(0, 1, 1) * 86400;
constexpr std::int64_t kMaxSeconds = DaysFromCivil(10000, 1, 1) * 86400 - 1;
// How far the local time of an s6-log "t T" line may be from its label and
// still give the line's seconds: TAI-UTC (27 s since 2017) with room to grow.
constexpr std::int64_t kMaxLabelSkew = 60;
// How far past the reference a syslog date may be before it is taken as
// last year's: clocks of different hosts and a zone set wrong stay within it.
constexpr std::int64_t kFutureSlackSeconds = 86400;
// The offset between a TAI64 label and Unix seconds as tai64n applies it:
// 2^62 plus the 10 s TAI was ahead of UTC in 1970.
constexpr std::uint64_t kTai64Epoch = (std::uint64_t{1} << 62) + 10;

// Lowercase hex digits, as tai64n and multilog write them; -1 otherwise.
constexpr std::array<std::int8_t, 256> kHex = [] {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<std::int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::int8_t>(c - 'a' + 10);
  return t;
}();

int HexValue(char c) { return kHex[static_cast<unsigned char>(c)]; }

bool IsDigit(char c) { return static_cast<unsigned char>(c) - 48u < 10u; }

// The `n` digits at line[at..]: false when one is missing or not a digit.
bool Digits(std::string_view line, std::size_t at, std::size_t n, int& out) {
  if (at > line.size() || line.size() - at < n) return false;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!IsDigit(line[i])) return false;
    v = v * 10 + (line[i] - '0');
  }
  out = v;
  return true;
}

TimePoint MakeTime(std::int64_t seconds, std::int64_t micros) {
  return TimePoint(std::chrono::microseconds(seconds * 1'000'000 + micros));
}

// "dddd-dd-dd" then ' ' or 'T': the start of the dated forms.
bool HasDateShape(std::string_view line) {
  if (line.size() < 11) return false;
  for (const std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(line[i])) return false;
  }
  return line[4] == '-' && line[7] == '-' &&
         (line[10] == ' ' || line[10] == 'T' || line[10] == 't');
}

// 1..12 for a syslog month abbreviation at line[0..2], else 0.
int SyslogMonth(std::string_view line) {
  if (line.size() < 3) return 0;
  static constexpr std::string_view kNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::string_view head = line.substr(0, 3);
  for (int m = 0; m < 12; ++m) {
    if (head == kNames[m]) return m + 1;
  }
  return 0;
}

// An accustamp, "secs.usecs" (1..11 and 6 digits) then a space or the end,
// at line[at..]: its time, and in `end` the index after its space.
bool ParseAccustamp(std::string_view line, std::size_t at, TimePoint& time, std::size_t& end) {
  std::size_t i = at;
  std::int64_t secs = 0;
  while (i < line.size() && i - at < 11 && IsDigit(line[i])) secs = secs * 10 + (line[i++] - '0');
  if (i == at || i >= line.size() || line[i] != '.') return false;
  int usecs = 0;
  if (!Digits(line, i + 1, 6, usecs)) return false;
  i += 7;
  if (i < line.size() && line[i] != ' ') return false;
  time = MakeTime(secs, usecs);
  end = i < line.size() ? i + 1 : i;
  return true;
}

// What ParseStamp reports, worded for the form being parsed.
struct StampErrors {
  std::string_view month, day, hms, range, fraction;
};
constexpr StampErrors kLocalErrors{
    "local time: month out of range", "local time: day out of range for the month",
    "local time: expected HH:MM:SS", "local time: time of day out of range",
    "local time: no digits after the decimal point"};
constexpr StampErrors kIsoErrors{"iso8601: month out of range",
                                 "iso8601: day out of range for the month",
                                 "iso8601: expected HH:MM:SS", "iso8601: time of day out of range",
                                 "iso8601: no digits after the decimal point"};

// A date and time "YYYY-MM-DD?HH:MM:SS[.f]" (f 1..9 digits, truncated to
// microseconds) at line[0..]; HasDateShape(line) holds. On failure `why`
// and `at` say what and where.
struct Stamp {
  CivilTime civil;
  int micros = 0;
  std::size_t end = 0;
  std::string_view why;
  std::size_t at = 0;
};

Stamp ParseStamp(std::string_view line, const StampErrors& errors) {
  Stamp s;
  auto fail = [&s](std::string_view why, std::size_t at) {
    s.why = why;
    s.at = at;
    return s;
  };
  int year = 0;
  int month = 0;
  int day = 0;
  (void)Digits(line, 0, 4, year);  // HasDateShape checked the digits
  (void)Digits(line, 5, 2, month);
  (void)Digits(line, 8, 2, day);
  if (month < 1 || month > 12) return fail(errors.month, 5);
  if (day < 1 || day > DaysInMonth(year, month)) return fail(errors.day, 8);
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!Digits(line, 11, 2, hour) || line.size() < 14 || line[13] != ':' ||
      !Digits(line, 14, 2, minute) || line.size() < 17 || line[16] != ':' ||
      !Digits(line, 17, 2, second)) {
    return fail(errors.hms, 11);
  }
  if (hour > 23 || minute > 59 || second > 60) return fail(errors.range, 11);
  s.civil = CivilTime{year, month, day, hour, minute, second};
  std::size_t i = 19;
  if (i < line.size() && line[i] == '.') {
    ++i;
    const std::size_t first = i;
    int micros = 0;
    while (i < line.size() && IsDigit(line[i]) && i - first < 9) {
      if (i - first < 6) micros = micros * 10 + (line[i] - '0');
      ++i;
    }
    if (i == first) return fail(errors.fraction, i);
    for (std::size_t n = i - first; n < 6; ++n) micros *= 10;
    s.micros = micros;
  }
  s.end = i;
  return s;
}

bool InRange(std::int64_t seconds) { return seconds >= kMinSeconds && seconds <= kMaxSeconds; }

}  // namespace

std::string_view LogTimeKindName(LogTimeKind kind) {
  switch (kind) {
    case LogTimeKind::kNone:
      return "none";
    case LogTimeKind::kTai64n:
      return "tai64n";
    case LogTimeKind::kLocal:
      return "local";
    case LogTimeKind::kTai64nLocal:
      return "tai64n_local";
    case LogTimeKind::kIso8601:
      return "iso8601";
    case LogTimeKind::kSyslog:
      return "syslog";
    case LogTimeKind::kAccustamp:
      return "accustamp";
  }
  return "unknown";
}

LogTimeParser::LogTimeParser(const TimeZone& zone, TimePoint reference) : zone_(zone) {
  set_reference(reference);
}

void LogTimeParser::set_reference(TimePoint reference) {
  reference_ = reference;
  reference_seconds_ =
      std::chrono::floor<std::chrono::seconds>(reference).time_since_epoch().count();
  reference_year_ = static_cast<int>(zone_.ToCivil(reference_seconds_).year);
}

void LogTimeParser::set_state(State state) {
  if (state.month < 1 || state.month > 12 || state.year < 0 || state.year > 9999) state = State{};
  state_ = state;
}

std::optional<LogTime> LogTimeParser::Fail(std::string_view why, std::size_t offset) {
  error_ = why;
  error_offset_ = offset;
  return std::nullopt;
}

std::optional<LogTime> LogTimeParser::Parse(std::string_view line) {
  if (!line.empty()) {
    const char c = line[0];
    if (c == '@' && line.size() > 1 && HexValue(line[1]) >= 0) return ParseTai64n(line);
    if (IsDigit(c)) {
      if (HasDateShape(line)) return ParseDated(line);
      LogTime out;
      std::size_t end = 0;
      if (ParseAccustamp(line, 0, out.time, end)) {
        out.kind = LogTimeKind::kAccustamp;
        out.message = line.substr(end);
        return out;
      }
    } else if (line.size() > 3 && line[3] == ' ' && SyslogMonth(line) != 0) {
      return ParseSyslog(line);
    }
  }
  LogTime out;
  out.message = line;
  return out;
}

bool SixteenHexDigitsScalar(const char* p, std::uint64_t& out) {
  std::uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    const int d = HexValue(p[i]);
    if (d < 0) return false;
    v = v * 16 + static_cast<std::uint64_t>(d);
  }
  out = v;
  return true;
}

bool SixteenHexDigits(const char* p, std::uint64_t& out) {
#if defined(__SSE2__) && defined(__x86_64__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Signed compares: a byte from 0x80 on is below both ranges.
  auto in = [&](char lo, char hi) {
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
  };
  const __m128i letter = in('a', 'f');
  if (_mm_movemask_epi8(_mm_or_si128(in('0', '9'), letter)) != 0xffff) return false;
  // A digit's value is its low nibble; a letter's that plus 9.
  const __m128i nibble =
      _mm_add_epi8(_mm_and_si128(v, _mm_set1_epi8(0x0f)), _mm_and_si128(letter, _mm_set1_epi8(9)));
  // Each 16-bit lane holds two digits, the first in its low byte: first * 16 + second.
  const __m128i pairs = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(nibble, _mm_set1_epi16(0xff)), 4),
                                     _mm_srli_epi16(nibble, 8));
  // Eight bytes, the first pair lowest: the first digits most significant once swapped.
  const auto bytes = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)));
  out = __builtin_bswap64(bytes);
  return true;
#else
  return SixteenHexDigitsScalar(p, out);
#endif
}

std::optional<LogTime> LogTimeParser::ParseTai64n(std::string_view line) {
  // "@" + 16 hex digits of seconds + 8 of nanoseconds.
  std::uint64_t label = 0;
  std::uint32_t nanos = 0;
  // Digits 1..16 are the seconds; 9..24, read again, end with the nanoseconds.
  std::uint64_t tail = 0;
  if (line.size() >= 25 && SixteenHexDigits(line.data() + 1, label) &&
      SixteenHexDigits(line.data() + 9, tail)) {
    nanos = static_cast<std::uint32_t>(tail);
  } else {
    label = 0;
    // Digit by digit, to tell where the label goes wrong.
    for (std::size_t i = 1; i <= 24; ++i) {
      if (i >= line.size()) return Fail("tai64n: label shorter than 24 hex digits", i);
      const int v = HexValue(line[i]);
      if (v < 0) return Fail("tai64n: label is not 24 lowercase hex digits", i);
      if (i <= 16) {
        label = (label << 4) | static_cast<std::uint64_t>(v);
      } else {
        nanos = (nanos << 4) | static_cast<std::uint32_t>(v);
      }
    }
  }
  if (line.size() > 25 && line[25] != ' ') return Fail("tai64n: label not followed by a space", 25);
  // Labels from 2^63 on are reserved by TAI64 for extensions.
  if (label >> 63 != 0) return Fail("tai64n: reserved label (top bit set)", 1);
  if (nanos > 999'999'999) return Fail("tai64n: nanoseconds above 999999999", 17);
  const std::int64_t seconds =
      static_cast<std::int64_t>(label) - static_cast<std::int64_t>(kTai64Epoch);
  if (!InRange(seconds)) return Fail("tai64n: outside the years 0000..9999", 1);
  LogTime out;
  out.kind = LogTimeKind::kTai64n;
  out.time = MakeTime(seconds, nanos / 1000);
  out.message = line.substr(line.size() > 26 ? 26 : line.size());
  // s6-log "t T": the local time follows. Text that is not one is the
  // message. The label names the instant, so it settles what the local time
  // cannot (which of two 02:30s); but s6-log writes labels of real TAI, a
  // whole number of leap seconds (27 since 2017) ahead of what daemontools
  // writes for the same instant, and the text is UTC-based. So when the
  // text, read with the offset in effect around the label, is within
  // kMaxLabelSkew of the label, its seconds are taken.
  if (HasDateShape(out.message) && out.message[10] == ' ') {
    const Stamp s = ParseStamp(out.message, kLocalErrors);
    if (s.why.empty() && (s.end == out.message.size() || out.message[s.end] == ' ')) {
      std::size_t at = s.end;
      for (int spaces = 0; spaces < 2 && at < out.message.size() && out.message[at] == ' ';
           ++spaces) {
        ++at;
      }
      const std::int64_t local = CivilToSeconds(s.civil);
      std::int64_t best = seconds;
      std::int64_t best_gap = kMaxLabelSkew + 1;
      for (const std::int64_t around : {-kMaxLabelSkew, std::int64_t{0}, kMaxLabelSkew}) {
        const std::int64_t candidate = local - zone_.UtcOffsetSeconds(seconds + around);
        const std::int64_t gap = candidate > seconds ? candidate - seconds : seconds - candidate;
        if (gap < best_gap) {
          best = candidate;
          best_gap = gap;
        }
      }
      if (InRange(best)) out.time = MakeTime(best, nanos / 1000);
      out.kind = LogTimeKind::kTai64nLocal;
      out.message = out.message.substr(at);
    }
  }
  return out;
}

std::optional<LogTime> LogTimeParser::ParseDated(std::string_view line) {
  const bool iso = line[10] != ' ';
  const Stamp s = ParseStamp(line, iso ? kIsoErrors : kLocalErrors);
  if (!s.why.empty()) return Fail(s.why, s.at);
  std::size_t i = s.end;
  LogTime out;
  if (!iso) {
    // tai64nlocal keeps the one space after the label; s6-log T writes two.
    if (i < line.size() && line[i] != ' ') {
      return Fail("local time: expected a space after the time", i);
    }
    for (int spaces = 0; spaces < 2 && i < line.size() && line[i] == ' '; ++spaces) ++i;
    const std::int64_t seconds = zone_.ToUnixSeconds(CivilToSeconds(s.civil));
    if (!InRange(seconds)) return Fail("local time: outside the years 0000..9999", 0);
    out.kind = LogTimeKind::kLocal;
    out.time = MakeTime(seconds, s.micros);
    out.message = line.substr(i);
    return out;
  }
  // RFC 3339 offset: "Z" or "+HH:MM" (also "+HHMM", as journalctl writes
  // it). Without one the time is local.
  std::int64_t seconds = 0;
  if (i < line.size() && (line[i] == 'Z' || line[i] == 'z')) {
    seconds = CivilToSeconds(s.civil);
    ++i;
  } else if (i < line.size() && (line[i] == '+' || line[i] == '-')) {
    int h = 0;
    int m = 0;
    const std::size_t minutes_at = i + 3 < line.size() && line[i + 3] == ':' ? i + 4 : i + 3;
    if (!Digits(line, i + 1, 2, h) || !Digits(line, minutes_at, 2, m)) {
      return Fail("iso8601: expected a zone offset +HH:MM", i);
    }
    if (h > 23 || m > 59) return Fail("iso8601: zone offset out of range", i);
    const int offset = (h * 3600 + m * 60) * (line[i] == '-' ? -1 : 1);
    seconds = CivilToSeconds(s.civil) - offset;
    i = minutes_at + 2;
  } else {
    seconds = zone_.ToUnixSeconds(CivilToSeconds(s.civil));
  }
  if (i < line.size() && line[i] != ' ') return Fail("iso8601: expected a space after the time", i);
  if (!InRange(seconds)) return Fail("iso8601: outside the years 0000..9999", 0);
  out.kind = LogTimeKind::kIso8601;
  out.time = MakeTime(seconds, s.micros);
  if (iso8601_header_) {
    ParseSyslogHeader(line, i < line.size() ? i + 1 : i, out);
  } else {
    out.message = line.substr(i < line.size() ? i + 1 : i);
  }
  return out;
}

std::optional<LogTime> LogTimeParser::ParseSyslog(std::string_view line) {
  // "Mmm dd HH:MM:SS " with the day padded by a space ("Jun  9"); a day
  // written without the padding ("Jun 9") is taken too.
  const int month = SyslogMonth(line);
  int day = 0;
  std::size_t i = 0;
  if (line.size() > 5 && line[4] == ' ' && IsDigit(line[5])) {
    day = line[5] - '0';
    i = 6;
  } else if (Digits(line, 4, 2, day)) {
    i = 6;
  } else if (line.size() > 5 && IsDigit(line[4]) && line[5] == ' ') {
    day = line[4] - '0';
    i = 5;
  } else {
    return Fail("syslog: expected the day of the month", 4);
  }
  if (day < 1 || day > 31) return Fail("syslog: day out of range", 4);
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (i >= line.size() || line[i] != ' ' || !Digits(line, i + 1, 2, hour) || line.size() < i + 4 ||
      line[i + 3] != ':' || !Digits(line, i + 4, 2, minute) || line.size() < i + 7 ||
      line[i + 6] != ':' || !Digits(line, i + 7, 2, second)) {
    return Fail("syslog: expected HH:MM:SS after the day", i);
  }
  if (hour > 23 || minute > 59 || second > 60) {
    return Fail("syslog: time of day out of range", i + 1);
  }
  i += 9;
  if (i < line.size() && line[i] != ' ') return Fail("syslog: expected a space after the time", i);

  int year = reference_year_;
  if (state_.month != 0) {
    year = state_.year;
    if (month < state_.month - 6) ++year;  // New Year
    if (month > state_.month + 6) --year;  // a late line of the old year
  }
  auto seconds_in = [&](int y) {
    return zone_.ToUnixSeconds(CivilToSeconds(CivilTime{y, month, day, hour, minute, second}));
  };
  std::int64_t seconds = 0;
  if (day <= DaysInMonth(year, month)) {
    seconds = seconds_in(year);
    if (seconds > reference_seconds_ + kFutureSlackSeconds) {
      --year;
      if (day <= DaysInMonth(year, month)) seconds = seconds_in(year);
    }
  }
  if (day > DaysInMonth(year, month)) {
    return Fail(month == 2 && day == 29 ? "syslog: February 29 in a year that is not a leap year"
                                        : "syslog: day out of range for the month",
                4);
  }
  if (year < 0 || year > 9999 || !InRange(seconds)) {
    return Fail("syslog: outside the years 0000..9999", 0);
  }
  state_ = State{year, month};

  LogTime out;
  out.kind = LogTimeKind::kSyslog;
  out.time = MakeTime(seconds, 0);
  ParseSyslogHeader(line, i < line.size() ? i + 1 : i, out);
  return out;
}

void LogTimeParser::ParseSyslogHeader(std::string_view line, std::size_t at, LogTime& out) const {
  // "host tag[pid]: message" or "host tag: message"; a line without a tag
  // ("host message") has only the host.
  std::size_t i = at;
  while (i < line.size() && line[i] != ' ') ++i;
  out.host = line.substr(at, i - at);
  if (i < line.size()) ++i;
  out.message = line.substr(i);
  const std::size_t tag_at = i;
  while (i < line.size() && line[i] != ' ' && line[i] != ':' && line[i] != '[') ++i;
  if (i == tag_at || i == line.size() || line[i] == ' ') return;
  const std::size_t tag_end = i;
  std::int64_t pid = -1;
  if (line[i] == '[') {
    std::size_t j = i + 1;
    std::int64_t v = 0;
    while (j < line.size() && IsDigit(line[j]) && j - i <= 18) v = v * 10 + (line[j++] - '0');
    if (j == i + 1 || j >= line.size() || line[j] != ']') return;
    pid = v;
    i = j + 1;
  }
  // The colon ends the tag only when a space or the end follows it.
  if (i >= line.size() || line[i] != ':' || (i + 1 < line.size() && line[i + 1] != ' ')) return;
  i += i + 1 < line.size() ? 2 : 1;
  out.tag = line.substr(tag_at, tag_end - tag_at);
  out.pid = pid;
  out.message = line.substr(i);
  // splogger: "qmail: 1276913544.622077 new msg 78833", the exact time.
  std::size_t end = 0;
  if (ParseAccustamp(line, i, out.time, end)) out.message = line.substr(end);
}

}  // namespace mailscope::ingest
