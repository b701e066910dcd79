// TimeZone: the rules that turn a wall-clock time without zone (as log
// prefixes like tai64nlocal and syslog write it) into a UTC instant, read
// from the system's TZif files (RFC 8536) or given as a fixed offset. Also
// the proleptic Gregorian calendar arithmetic the parsers of dates share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/clock.h"
#include "core/status.h"

namespace mailscope {

namespace internal {
struct ZoneRules;  // core/tzif.h
}  // namespace internal

// --- Calendar ---------------------------------------------------------------

constexpr bool IsLeapYear(std::int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

// 28..31. REQUIRES: 1 <= m <= 12.
constexpr int DaysInMonth(std::int64_t y, int m) {
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of y-m-d (Hinnant's days_from_civil). A day past the
// end of its month counts on into the next. REQUIRES: 1 <= m <= 12.
constexpr std::int64_t DaysFromCivil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;                                    // [0, 399]
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + doe - 719468;
}

// A date and time of day as a wall clock shows it, in no particular zone.
struct CivilTime {
  std::int64_t year = 1970;
  int month = 1;   // 1..12
  int day = 1;     // 1..31
  int hour = 0;    // 0..23
  int minute = 0;  // 0..59
  int second = 0;  // 0..59 (60 counts as the next minute's 0)
  bool operator==(const CivilTime&) const = default;
};

// The civil time `days` after 1970-01-01 at midnight (Hinnant's civil_from_days).
constexpr CivilTime CivilFromDays(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return CivilTime{yoe + era * 400 + (m <= 2 ? 1 : 0), m, d, 0, 0, 0};
}

// Seconds since 1970-01-01 00:00:00 of `c` read as if it were UTC: the
// "local seconds" that TimeZone maps to UTC. REQUIRES: 1 <= c.month <= 12.
constexpr std::int64_t CivilToSeconds(const CivilTime& c) {
  return DaysFromCivil(c.year, c.month, c.day) * 86400 + c.hour * 3600 + c.minute * 60 + c.second;
}

// The inverse of CivilToSeconds.
CivilTime CivilFromSeconds(std::int64_t seconds);

// --- Zones ------------------------------------------------------------------

// A time zone: UTC, a fixed offset, or a region's history of offsets with the
// POSIX TZ rule (RFC 8536 §3.3) that continues it past the last listed change.
// An immutable value, cheap to copy (the rules are shared); thread-safe.
//
// Local times that a change skips or repeats are resolved the way a reader of
// a log most likely means them:
//   - in a gap (Europe/Berlin 2026-03-29 02:30 does not exist), the time is
//     read with the offset before the change, so it lands as far after the
//     change as it is after the gap's start: 02:30 becomes 01:30 UTC, which
//     the clocks show as 03:30;
//   - in an overlap (Europe/Berlin 2026-10-25 02:30 happens twice), the first
//     occurrence is taken, the one with the offset before the change: 00:30 UTC.
// Conversions are defined for years -9999..9999; further out they clamp.
class TimeZone {
 public:
  // UTC.
  TimeZone();

  static TimeZone Utc();
  // `name` is one of:
  //   "UTC", "Z";
  //   a fixed offset "+HH:MM", "-HHMM" or "+HH" (hours 0..23, east positive);
  //   a zone of the system database, "Europe/Berlin" (/usr/share/zoneinfo/NAME);
  //   an absolute path to a TZif file;
  //   a POSIX TZ string, "CET-1CEST,M3.5.0,M10.5.0/3", when no file has that name.
  // NotFound for an unknown zone; InvalidArgument for a malformed name or file.
  static Result<TimeZone> Load(std::string_view name);
  // The zone of this system as the C library chooses it: TZ (":NAME" or
  // NAME; empty means UTC) when set, else /etc/localtime; UTC when that
  // cannot be loaded.
  static TimeZone System();
  // The zone in TZif file contents `bytes` (version 1, 2, 3 or 4). Files with
  // leap-second records (the "right/" zones) are refused: their times are
  // not Unix times. InvalidArgument saying what is wrong.
  static Result<TimeZone> FromTzif(std::string_view bytes, std::string_view name);

  // As given to Load ("Europe/Berlin", "+02:00", "UTC"), or "localtime".
  const std::string& name() const;

  // The Unix time at which clocks in this zone show `local_seconds` (see
  // CivilToSeconds), gaps and overlaps resolved as described above.
  std::int64_t ToUnixSeconds(std::int64_t local_seconds) const;
  TimePoint ToTimePoint(const CivilTime& local) const {
    return TimePoint(std::chrono::seconds(ToUnixSeconds(CivilToSeconds(local))));
  }
  // The offset from UTC, in seconds east, in effect at `unix_seconds`.
  std::int32_t UtcOffsetSeconds(std::int64_t unix_seconds) const;
  // What clocks in this zone show at `unix_seconds`.
  CivilTime ToCivil(std::int64_t unix_seconds) const;

 private:
  explicit TimeZone(std::shared_ptr<const internal::ZoneRules> rules) : rules_(std::move(rules)) {}

  std::shared_ptr<const internal::ZoneRules> rules_;
};

}  // namespace mailscope
