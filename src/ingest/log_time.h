// LogTimeParser: recognises and strips the timestamp prefix of one mail log
// line, the first step of every log decoder (qmail_log.cc and others) before
// the payload is parsed. The prefixes (reference/qmail-logs.md §1):
//
//   kTai64n      "@4000000065a3f1c22f0b6a1c msg"        multilog t, s6-log t, tai64n
//   kLocal       "2018-01-01 20:51:03.121918500 msg"    tai64nlocal (one space),
//                "2026-09-28 22:45:13.900254022  msg"   s6-log T (two spaces)
//   kTai64nLocal "@400000006abaee1e35a8c946 2026-09-28 22:45:13.900254022  msg"
//                                                       s6-log t T (see below)
//   kIso8601     "2026-12-07T01:02:03.123456+01:00 host tag[pid]: msg"
//                                                       rsyslog's high-precision format
//   kSyslog      "Jun  9 09:12:24 host tag[pid]: msg"   traditional syslog, no year
//   kAccustamp   "849347523.531129 msg"                 qmailanalog's accustamp
//   kNone        anything else: the whole line is the message
//
// Local times without zone (kLocal, a syslog date, an ISO 8601 time without
// offset) are read in the configured zone; times a DST change skips or
// repeats resolve as TimeZone documents. A TAI64N label is read as tai64n
// writes it: Unix seconds = label - 2^62 - 10, no leap-second table; so a
// label of s6-log's (below) alone reads 27 s later than it was written.
//
// When both are present (s6-log t T) the label picks the instant: the local
// time is read with the zone's offset at the label, so a time that happened
// twice is not ambiguous. Its seconds are then those of the local time when
// that is within a minute of the label: s6-log's labels are real TAI, ahead
// of daemontools' reading by the leap seconds so far (27 s since 2017; in
// the reference's sample line the label reads 22:45:40 UTC, the text
// 22:45:13 UTC). Further apart, the zone is not the writer's, and the label
// alone gives the time.
//
// For the syslog forms the host, the tag (the program name, without
// "[pid]") and the pid are returned too, when the header has them; a message
// that begins with an accustamp ("qmail: 1276913544.622077 new msg 78833",
// as splogger writes) gives the time instead of the header, and is stripped.
//
// Traditional syslog dates have no year. The first is given the year of the
// reference time (the file's mtime for a file read through, the current time
// for a live one); after that each line keeps the year of the line before,
// plus one when the month goes back by more than half a year (December to
// January) and minus one when it goes forward by more (a late line from the
// old year). A date that would then be more than a day after the reference
// is put one year earlier. When following a live log, advance the reference
// (set_reference) as time passes.
//
// Years are 0000..9999 in every form. Parsing allocates nothing. Thread-
// compatible; one parser per input, since it keeps the syslog year.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/clock.h"
#include "core/time_zone.h"

namespace mailscope::ingest {

enum class LogTimeKind : std::uint8_t {
  kNone,
  kTai64n,
  kLocal,
  kTai64nLocal,
  kIso8601,
  kSyslog,
  kAccustamp,
};

// "none", "tai64n", "local", "tai64n_local", "iso8601", "syslog", "accustamp".
std::string_view LogTimeKindName(LogTimeKind kind);

// One line's prefix, taken apart. The views point into the parsed line.
struct LogTime {
  LogTimeKind kind = LogTimeKind::kNone;
  // Microseconds (finer digits are dropped); TimePoint{} for kNone.
  TimePoint time{};
  // Syslog forms only; empty when the header lacks them.
  std::string_view host;
  std::string_view tag;
  std::int64_t pid = -1;
  // The rest of the line after the prefix (and the syslog header).
  std::string_view message;
};

class LogTimeParser {
 public:
  // The syslog year tracking: the year and month (1..12) of the last
  // traditional syslog line; month 0 before the first.
  struct State {
    int year = 0;
    int month = 0;
    bool operator==(const State&) const = default;
  };

  // Local times are read in `zone`; `reference` starts the syslog year.
  LogTimeParser(const TimeZone& zone, TimePoint reference);

  // The prefix of `line` (without its LF). nullopt when the line starts like
  // one of the forms but is malformed there (short or non-hex label, month
  // 13, February 30, hour 25, ...); error() and error_offset() say why and
  // where. A line that resembles no form gives kind kNone.
  std::optional<LogTime> Parse(std::string_view line);

  // Why the last Parse failed: a fixed text such as "syslog: day out of range".
  std::string_view error() const { return error_; }
  // The byte of the line at which it failed.
  std::size_t error_offset() const { return error_offset_; }

  // For checkpoints: restoring a saved state continues the year tracking
  // where it stopped. A month outside 1..12 or a year outside 0..9999 is
  // taken as State{} (no line seen).
  State state() const { return state_; }
  void set_state(State state);

  TimePoint reference() const { return reference_; }
  void set_reference(TimePoint reference);

  // Whether an RFC 3339 time is followed by a syslog header (rsyslog's
  // precise format: "host tag[pid]: message"), the default. A log whose
  // RFC 3339 time starts its own line (Stalwart's: the level follows) has
  // its message begin right after the time.
  void set_iso8601_syslog_header(bool header) { iso8601_header_ = header; }

 private:
  std::optional<LogTime> Fail(std::string_view why, std::size_t offset);
  std::optional<LogTime> ParseTai64n(std::string_view line);
  std::optional<LogTime> ParseDated(std::string_view line);
  std::optional<LogTime> ParseSyslog(std::string_view line);
  // The host, tag, pid and message of the syslog header from `at`.
  void ParseSyslogHeader(std::string_view line, std::size_t at, LogTime& out) const;

  TimeZone zone_;
  bool iso8601_header_ = true;
  TimePoint reference_;
  std::int64_t reference_seconds_ = 0;
  int reference_year_ = 1970;
  State state_;
  std::string_view error_;
  std::size_t error_offset_ = 0;
};

// The value of the sixteen lowercase hex digits at p[0..16), the first the
// most significant; false when a byte is not one. SixteenHexDigits() reads
// them as one SSE2 vector (a byte loop over the 24 digits of a TAI64N label
// cost about 355 instructions a line of the s/qmail replay); the byte loop
// is its reference, and log_time_test.cc and the fuzz target compare them.
bool SixteenHexDigits(const char* p, std::uint64_t& out);
bool SixteenHexDigitsScalar(const char* p, std::uint64_t& out);

}  // namespace mailscope::ingest
