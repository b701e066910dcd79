// The internals of TimeZone (core/time_zone.h): how a zone's rules are held,
// and the readers that fill them from a TZif file (RFC 8536) or a POSIX TZ
// string. Used by core/time_zone.cc only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace mailscope::internal {

// A change of offset at `utc`, from `before` to `after` (seconds east).
struct ZoneTransition {
  std::int64_t utc;
  std::int32_t before;
  std::int32_t after;
};

// A day of a POSIX TZ rule: "Jn" (1..365, February 29 never counted), "n"
// (0..365, counted) or "Mm.w.d" (weekday d, 0 = Sunday, of week w of month m,
// week 5 meaning the last).
struct PosixDate {
  enum class Kind : std::uint8_t { kJulian1, kJulian0, kMonthWeekDay };
  Kind kind = Kind::kMonthWeekDay;
  int day = 0;
  int month = 1;
  int week = 1;
  int weekday = 0;
};

// A POSIX TZ string (POSIX.1 §8.3 with the RFC 8536 §3.3 extensions: rule
// times from -167 to 167 hours).
struct PosixRule {
  std::int32_t std_offset = 0;  // seconds east
  bool has_dst = false;
  std::int32_t dst_offset = 0;
  PosixDate start;
  PosixDate end;
  std::int32_t start_time = 7200;  // after local midnight, on the standard clock
  std::int32_t end_time = 7200;    // after local midnight, on the daylight clock
};

struct ZoneRules {
  std::string name;
  // In effect before the first transition (TZif: time type 0).
  std::int32_t initial_offset = 0;
  // Strictly increasing in utc; no entry with before == after.
  std::vector<ZoneTransition> transitions;
  // Continues the zone after the last transition (or from the start, when
  // there is none).
  std::optional<PosixRule> rule;
  // The rule's transitions in the years [first, last] of rule_table_years,
  // joined to the last listed one; rule_table_initial is in effect before.
  std::vector<ZoneTransition> rule_table;
  std::int32_t rule_table_initial = 0;
  std::pair<std::int64_t, std::int64_t> rule_table_years{0, -1};
};

// Offsets beyond ±26 h are refused (RFC 8536 recommends -89999..93599 s):
// every sum of a time and an offset then stays far from overflow.
inline constexpr std::int32_t kMaxOffset = 26 * 3600;

// The rule a POSIX TZ string states, or nullopt when `s` is not one.
std::optional<PosixRule> ParsePosixTz(std::string_view s);

// Days since 1970-01-01 of `d` in year `y`.
std::int64_t RuleDay(const PosixDate& d, std::int64_t y);

// Fills the name-independent parts of `z` (initial offset, transitions,
// rule) from TZif file contents. InvalidArgument saying what is wrong.
Status ParseTzif(std::string_view bytes, ZoneRules& z);

}  // namespace mailscope::internal
