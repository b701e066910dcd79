#include "ingest/log_time.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/allocation_counter_testing.h"
#include "core/temp_dir_testing.h"

namespace mailscope::ingest {
namespace {

TimePoint At(std::int64_t y, int m, int d, int hh = 0, int mm = 0, int ss = 0,
             std::int64_t micros = 0) {
  return TimePoint(std::chrono::seconds(CivilToSeconds(CivilTime{y, m, d, hh, mm, ss}))) +
         std::chrono::microseconds(micros);
}

TimePoint Unix(std::int64_t seconds, std::int64_t micros = 0) {
  return TimePoint(std::chrono::seconds(seconds)) + std::chrono::microseconds(micros);
}

// "2026-12-07T00:02:03.123456Z", for messages.
std::string Show(TimePoint t) {
  const std::int64_t s = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  const CivilTime c = CivilFromSeconds(s);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                static_cast<long long>(c.year), c.month, c.day, c.hour, c.minute, c.second,
                static_cast<long long>((t - TimePoint(std::chrono::seconds(s))).count()));
  return buf;
}

TimeZone Zone(std::string_view name) {
  Result<TimeZone> zone = TimeZone::Load(name);
  EXPECT_TRUE(zone.ok()) << zone.status().ToString();
  return zone.ok() ? *zone : TimeZone::Utc();
}

const TimePoint kReference = At(2026, 12, 7, 12, 0, 0);

// A TAI64N label as tai64n writes it for Unix time `unix_seconds`.
std::string Label(std::int64_t unix_seconds, std::uint32_t nanos) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "@%016llx%08x",
                static_cast<unsigned long long>(unix_seconds + (std::int64_t{1} << 62) + 10),
                nanos);
  return buf;
}

// --- The forms ---------------------------------------------------------------

// The vector read of sixteen hex digits against the byte loop: every byte
// value at every place of a valid label, and random words of digits, letters
// on either side of a-f and 0-9, capitals, high bytes and NUL.
TEST(LogTimeParserTest, SixteenHexDigitsAnswerAsTheByteLoop) {
  auto same = [](const char* p) {
    std::uint64_t got = 1, want = 2;
    const bool ok = SixteenHexDigits(p, got);
    if (ok != SixteenHexDigitsScalar(p, want)) return false;
    return !ok || got == want;
  };
  const std::string base = "4000000065a3f1c2";
  for (std::size_t at = 0; at < 16; ++at) {
    for (int c = 0; c < 256; ++c) {
      std::string s = base;
      s[at] = static_cast<char>(c);
      ASSERT_TRUE(same(s.data())) << at << " " << c;
    }
  }
  std::uint64_t v = 0;
  ASSERT_TRUE(SixteenHexDigits("4000000065a3f1c2", v));
  EXPECT_EQ(v, 0x4000000065a3f1c2u);
  ASSERT_TRUE(SixteenHexDigits("ffffffffffffffff", v));
  EXPECT_EQ(v, 0xffffffffffffffffu);
  ASSERT_TRUE(SixteenHexDigits("0123456789abcdef", v));
  EXPECT_EQ(v, 0x0123456789abcdefu);
  EXPECT_FALSE(SixteenHexDigits("0123456789ABCDEF", v));
  const std::string alphabet = std::string("0123456789abcdef/:`gAF@G") + '\x80' + '\xff' + '\0';
  std::uint64_t state = 42;
  for (int round = 0; round < 200000; ++round) {
    char word[16];
    for (char& c : word) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      // Mostly hex digits, so that whole valid words come up often.
      const std::size_t pick = (state >> 33) % 128;
      c = pick < 120 ? alphabet[pick % 16] : alphabet[16 + pick % (alphabet.size() - 16)];
    }
    ASSERT_TRUE(same(word)) << std::string(word, 16);
  }
}

TEST(LogTimeParserTest, Tai64nWorkedExample) {
  // reference/qmail-logs.md §1: TAI 935467455.787492500 is Unix 935467445.7875.
  LogTimeParser parser(TimeZone::Utc(), kReference);
  const std::optional<LogTime> t = parser.Parse("@4000000037c219bf2ef02e94 hello");
  ASSERT_TRUE(t.has_value()) << parser.error();
  EXPECT_EQ(t->kind, LogTimeKind::kTai64n);
  EXPECT_EQ(t->time, Unix(935467445, 787492));
  EXPECT_EQ(t->message, "hello");
  EXPECT_EQ(t->host, "");
  EXPECT_EQ(t->pid, -1);
}

struct FormCase {
  std::string_view line;
  LogTimeKind kind;
  TimePoint time;
  std::string_view message;
  std::string_view host = {};
  std::string_view tag = {};
  std::int64_t pid = -1;
};

void ExpectForms(const TimeZone& zone, TimePoint reference, const std::vector<FormCase>& cases) {
  for (const FormCase& c : cases) {
    LogTimeParser parser(zone, reference);
    const std::optional<LogTime> t = parser.Parse(c.line);
    ASSERT_TRUE(t.has_value()) << c.line << ": " << parser.error();
    EXPECT_EQ(LogTimeKindName(t->kind), LogTimeKindName(c.kind)) << c.line;
    EXPECT_EQ(Show(t->time), Show(c.time)) << c.line;
    EXPECT_EQ(t->message, c.message) << c.line;
    EXPECT_EQ(t->host, c.host) << c.line;
    EXPECT_EQ(t->tag, c.tag) << c.line;
    EXPECT_EQ(t->pid, c.pid) << c.line;
  }
}

TEST(LogTimeParserTest, ParsesEveryForm) {
  using K = LogTimeKind;
  ExpectForms(
      TimeZone::Utc(), kReference,
      {
          // multilog t / tai64n, from the reference's samples.
          {"@4000000065a3f1c22f0b6a1c qmail-smtpd: pid 28113 Reject::RCPT::Failed_Rcptto",
           K::kTai64n, Unix(0x65a3f1c2 - 10, 0x2f0b6a1c / 1000),
           "qmail-smtpd: pid 28113 Reject::RCPT::Failed_Rcptto"},
          {"@4000000065a3f1c22f0b6a1c ", K::kTai64n, Unix(0x65a3f1c2 - 10, 0x2f0b6a1c / 1000), ""},
          {"@4000000065a3f1c22f0b6a1c", K::kTai64n, Unix(0x65a3f1c2 - 10, 0x2f0b6a1c / 1000), ""},
          {"@4000000065a3f1c22f0b6a1c  two spaces", K::kTai64n,
           Unix(0x65a3f1c2 - 10, 0x2f0b6a1c / 1000), " two spaces"},
          // s6-log T (the s/qmail corpus: UTC, two spaces).
          {"2026-09-28 22:45:13.900254022  new msg 1", K::kLocal,
           At(2026, 9, 28, 22, 45, 13, 900254), "new msg 1"},
          {"2000-01-01 00:00:00.000000000  qmail-smtpd: pid 100 Reject::AUTH::Missing", K::kLocal,
           At(2000, 1, 1), "qmail-smtpd: pid 100 Reject::AUTH::Missing"},
          // tai64nlocal: one space; fewer fraction digits and none are read too.
          {"2018-01-01 20:51:03.121918500 info msg 1", K::kLocal, At(2018, 1, 1, 20, 51, 3, 121918),
           "info msg 1"},
          {"2018-01-01 20:51:03.5 x", K::kLocal, At(2018, 1, 1, 20, 51, 3, 500000), "x"},
          {"2018-01-01 20:51:03 x", K::kLocal, At(2018, 1, 1, 20, 51, 3), "x"},
          {"2018-01-01 20:51:03.121918500", K::kLocal, At(2018, 1, 1, 20, 51, 3, 121918), ""},
          // A leap second counts as the next minute's first, as timegm has it.
          {"2016-12-31 23:59:60.5 x", K::kLocal, At(2017, 1, 1, 0, 0, 0, 500000), "x"},
          // s6-log t T: the label reads 27 s later than the text (s6-log's
          // labels count leap seconds); the text's seconds are taken.
          {"@400000006abaee1e35a8c946 2026-09-28 22:45:13.900254022  new msg 1", K::kTai64nLocal,
           At(2026, 9, 28, 22, 45, 13, 900254), "new msg 1"},
          {"@400000006abaee1e35a8c946 2026-09-28 not a time", K::kTai64n,
           Unix(0x6abaee1e - 10, 900254), "2026-09-28 not a time"},
          {"@400000006abaee1e35a8c946 2026-02-30 22:45:13.900254022  x", K::kTai64n,
           Unix(0x6abaee1e - 10, 900254), "2026-02-30 22:45:13.900254022  x"},
          // rsyslog's RFC 3339 timestamps.
          {"2026-12-07T01:02:03.123456+01:00 mx tag: msg", K::kIso8601,
           At(2026, 12, 7, 0, 2, 3, 123456), "msg", "mx", "tag"},
          {"2026-12-07T01:02:03.123456Z mx postfix/smtpd[4711]: connect from x", K::kIso8601,
           At(2026, 12, 7, 1, 2, 3, 123456), "connect from x", "mx", "postfix/smtpd", 4711},
          {"2026-12-07T01:02:03-05:30 mx qmail: 1276913544.622077 new msg 78833", K::kIso8601,
           Unix(1276913544, 622077), "new msg 78833", "mx", "qmail"},
          {"2026-12-07t01:02:03.1z mx kernel: x", K::kIso8601, At(2026, 12, 7, 1, 2, 3, 100000),
           "x", "mx", "kernel"},
          // journalctl -o short-iso: "+0100".
          {"2026-12-07T01:02:03+0100 mx sshd[1]: y", K::kIso8601, At(2026, 12, 7, 0, 2, 3), "y",
           "mx", "sshd", 1},
          {"2026-12-07T01:02:03 mx app: no zone, read in the configured one", K::kIso8601,
           At(2026, 12, 7, 1, 2, 3), "no zone, read in the configured one", "mx", "app"},
          {"2026-12-07T01:02:03Z", K::kIso8601, At(2026, 12, 7, 1, 2, 3), ""},
          // Traditional syslog; the reference is in 2026.
          {"Jun  9 09:12:24 mx qmail: 1276913544.622077 new msg 78833", K::kSyslog,
           Unix(1276913544, 622077), "new msg 78833", "mx", "qmail"},
          {"Jun  9 09:12:24 mx qmail: new msg 78833", K::kSyslog, At(2026, 6, 9, 9, 12, 24),
           "new msg 78833", "mx", "qmail"},
          {"Nov 19 23:01:02 mx postfix/smtpd[123]: connect", K::kSyslog, At(2026, 11, 19, 23, 1, 2),
           "connect", "mx", "postfix/smtpd", 123},
          {"Nov 9 23:01:02 mx unpadded: x", K::kSyslog, At(2026, 11, 9, 23, 1, 2), "x", "mx",
           "unpadded"},
          {"Nov 09 23:01:02 mx zero-padded: x", K::kSyslog, At(2026, 11, 9, 23, 1, 2), "x", "mx",
           "zero-padded"},
          {"Nov 19 23:01:02 mx a message without a tag", K::kSyslog, At(2026, 11, 19, 23, 1, 2),
           "a message without a tag", "mx"},
          {"Nov 19 23:01:02 mx tag:nospace", K::kSyslog, At(2026, 11, 19, 23, 1, 2), "tag:nospace",
           "mx"},
          {"Nov 19 23:01:02 mx tag[x]: not a pid", K::kSyslog, At(2026, 11, 19, 23, 1, 2),
           "tag[x]: not a pid", "mx"},
          {"Nov 19 23:01:02 mx tag:", K::kSyslog, At(2026, 11, 19, 23, 1, 2), "", "mx", "tag"},
          {"Nov 19 23:01:02 mx", K::kSyslog, At(2026, 11, 19, 23, 1, 2), "", "mx"},
          {"Nov 19 23:01:02", K::kSyslog, At(2026, 11, 19, 23, 1, 2), ""},
          // qmailanalog's accustamp.
          {"849347523.531129 new msg 19326", K::kAccustamp, Unix(849347523, 531129),
           "new msg 19326"},
          {"849347523.531129", K::kAccustamp, Unix(849347523, 531129), ""},
          // No prefix.
          {"qmail-smtpd: pid 100 Accept::RCPT::Rcpthosts_Rcptto", K::kNone, TimePoint{},
           "qmail-smtpd: pid 100 Accept::RCPT::Rcpthosts_Rcptto"},
          {"", K::kNone, TimePoint{}, ""},
          {"12345 foo", K::kNone, TimePoint{}, "12345 foo"},
          {"849347523.5311 short fraction", K::kNone, TimePoint{}, "849347523.5311 short fraction"},
          {"2026-1 x", K::kNone, TimePoint{}, "2026-1 x"},
          {"@reboot", K::kNone, TimePoint{}, "@reboot"},
          {"@", K::kNone, TimePoint{}, "@"},
          {"Mayday", K::kNone, TimePoint{}, "Mayday"},
          {"May", K::kNone, TimePoint{}, "May"},
          {"jun  9 09:12:24 lower case month", K::kNone, TimePoint{},
           "jun  9 09:12:24 lower case month"},
      });
}

TEST(LogTimeParserTest, AnIso8601TimeWithoutASyslogHeader) {
  LogTimeParser parser(TimeZone::Utc(), kReference);
  const std::string_view line = "2025-06-15T10:20:53Z INFO SMTP EHLO (smtp.ehlo) domain = \"x\"";
  auto with = parser.Parse(line);
  ASSERT_TRUE(with.has_value());
  EXPECT_EQ(with->host, "INFO") << "rsyslog's form: a host follows the time";
  parser.set_iso8601_syslog_header(false);
  auto without = parser.Parse(line);
  ASSERT_TRUE(without.has_value());
  EXPECT_EQ(without->kind, LogTimeKind::kIso8601);
  EXPECT_EQ(UnixSeconds(without->time), 1749982853);
  EXPECT_EQ(without->host, "");
  EXPECT_EQ(without->message, "INFO SMTP EHLO (smtp.ehlo) domain = \"x\"");
}

TEST(LogTimeParserTest, LocalTimesUseTheZone) {
  using K = LogTimeKind;
  ExpectForms(
      Zone("Europe/Berlin"), kReference,
      {
          {"2018-01-01 20:51:03.121918500 info msg", K::kLocal, At(2018, 1, 1, 19, 51, 3, 121918),
           "info msg"},
          {"2026-07-01 12:00:00.000000000  summer", K::kLocal, At(2026, 7, 1, 10), "summer"},
          // The gap and the overlap of 2026, as TimeZone resolves them.
          {"2026-03-29 02:30:00.000000000 gap", K::kLocal, At(2026, 3, 29, 1, 30), "gap"},
          {"2026-10-25 02:30:00.000000000 overlap", K::kLocal, At(2026, 10, 25, 0, 30), "overlap"},
          {"Jul  1 12:00:00 mx tag: m", K::kSyslog, At(2026, 7, 1, 10), "m", "mx", "tag"},
          {"2026-07-01T12:00:00 mx tag: m", K::kIso8601, At(2026, 7, 1, 10), "m", "mx", "tag"},
          // An explicit offset wins over the zone.
          {"2026-07-01T12:00:00+00:00 mx tag: m", K::kIso8601, At(2026, 7, 1, 12), "m", "mx",
           "tag"},
      });
}

TEST(LogTimeParserTest, LabelAndLocalTimeTogether) {
  const TimeZone berlin = Zone("Europe/Berlin");
  const std::int64_t first = CivilToSeconds(CivilTime{2026, 10, 25, 0, 30});  // 02:30 CEST
  const std::int64_t second = first + 3600;                                   // 02:30 CET
  const std::string text = " 2026-10-25 02:30:00.250000500  m";
  struct Case {
    std::string line;
    TimePoint time;
  };
  const Case cases[] = {
      // A local time that happened twice: the label says which.
      {Label(first, 250000500) + text, Unix(first, 250000)},
      {Label(second, 250000500) + text, Unix(second, 250000)},
      // s6-log's labels, 27 leap seconds ahead: the text's seconds.
      {Label(first + 27, 250000500) + text, Unix(first, 250000)},
      {Label(second + 27, 250000500) + text, Unix(second, 250000)},
      // Hours apart (the writer's zone was another): the label alone.
      {Label(first + 5 * 3600, 250000500) + text, Unix(first + 5 * 3600, 250000)},
  };
  for (const Case& c : cases) {
    LogTimeParser parser(berlin, kReference);
    const std::optional<LogTime> t = parser.Parse(c.line);
    ASSERT_TRUE(t) << c.line << ": " << parser.error();
    EXPECT_EQ(t->kind, LogTimeKind::kTai64nLocal) << c.line;
    EXPECT_EQ(Show(t->time), Show(c.time)) << c.line;
    EXPECT_EQ(t->message, "m");
  }
}

TEST(LogTimeParserTest, RejectsMalformedPrefixes) {
  struct Case {
    std::string_view line;
    std::string_view error;
    std::size_t offset;
  };
  const Case cases[] = {
      {"@4000000037c219bf2ef02e9 x", "tai64n: label is not 24 lowercase hex digits", 24},
      {"@4000000037c219bf2ef02e9", "tai64n: label shorter than 24 hex digits", 24},
      {"@4", "tai64n: label shorter than 24 hex digits", 2},
      {"@4000000037c219bf2ef02e9g x", "tai64n: label is not 24 lowercase hex digits", 24},
      {"@4000000037C219BF2EF02E94 x", "tai64n: label is not 24 lowercase hex digits", 11},
      {"@4000000037c219bf2ef02e94x", "tai64n: label not followed by a space", 25},
      {"@4000000037c219bf2ef02e945 x", "tai64n: label not followed by a space", 25},
      {"@c000000037c219bf2ef02e94 x", "tai64n: reserved label (top bit set)", 1},
      {"@4000000037c219bf3b9aca00 x", "tai64n: nanoseconds above 999999999", 17},
      {"@0000000000000000000000000 x", "tai64n: label not followed by a space", 25},
      {"@000000000000000000000000 x", "tai64n: outside the years 0000..9999", 1},
      {"@7fffffffffffffff00000000 x", "tai64n: outside the years 0000..9999", 1},
      {"2026-13-01 00:00:00.0 x", "local time: month out of range", 5},
      {"2026-00-01 00:00:00.0 x", "local time: month out of range", 5},
      {"2026-02-30 00:00:00.0 x", "local time: day out of range for the month", 8},
      {"2026-02-29 00:00:00.0 x", "local time: day out of range for the month", 8},
      {"2026-04-31 00:00:00.0 x", "local time: day out of range for the month", 8},
      {"2026-01-00 00:00:00.0 x", "local time: day out of range for the month", 8},
      {"2026-01-01 25:00:00.0 x", "local time: time of day out of range", 11},
      {"2026-01-01 24:00:00.0 x", "local time: time of day out of range", 11},
      {"2026-01-01 12:60:00.0 x", "local time: time of day out of range", 11},
      {"2026-01-01 12:00:61.0 x", "local time: time of day out of range", 11},
      {"2026-01-01 12:00", "local time: expected HH:MM:SS", 11},
      {"2026-01-01 12-00-00 x", "local time: expected HH:MM:SS", 11},
      {"2026-01-01 x", "local time: expected HH:MM:SS", 11},
      {"2026-01-01 12:00:00. x", "local time: no digits after the decimal point", 20},
      {"2026-01-01 12:00:00.5x", "local time: expected a space after the time", 21},
      {"2026-01-01 12:00:00.1234567890 x", "local time: expected a space after the time", 29},
      {"2026-02-30T00:00:00Z h t: m", "iso8601: day out of range for the month", 8},
      {"2026-01-01T25:00:00Z h t: m", "iso8601: time of day out of range", 11},
      {"2026-01-01T00:00:00+25:00 h t: m", "iso8601: zone offset out of range", 19},
      {"2026-01-01T00:00:00+01:60 h t: m", "iso8601: zone offset out of range", 19},
      {"2026-01-01T00:00:00+0 h t: m", "iso8601: expected a zone offset +HH:MM", 19},
      {"2026-01-01T00:00:00+01: h", "iso8601: expected a zone offset +HH:MM", 19},
      {"2026-01-01T00:00:00Zh t: m", "iso8601: expected a space after the time", 20},
      {"2026-01-01T00:00:00+01:00:00 h", "iso8601: expected a space after the time", 25},
      {"0000-01-01T00:00:00+01:00 h", "iso8601: outside the years 0000..9999", 0},
      {"Jun 31 10:00:00 h t: m", "syslog: day out of range for the month", 4},
      {"Feb 30 10:00:00 h t: m", "syslog: day out of range for the month", 4},
      {"Jun  0 10:00:00 h t: m", "syslog: day out of range", 4},
      {"Jun 32 10:00:00 h t: m", "syslog: day out of range", 4},
      {"Jun x9 10:00:00 h t: m", "syslog: expected the day of the month", 4},
      {"Jun ", "syslog: expected the day of the month", 4},
      {"Jun  9 25:00:00 h t: m", "syslog: time of day out of range", 7},
      {"Jun  9 10:61:00 h t: m", "syslog: time of day out of range", 7},
      {"Jun  9 10:00 h t: m", "syslog: expected HH:MM:SS after the day", 6},
      {"Jun  9 10:00:00x h", "syslog: expected a space after the time", 15},
      {"Jun  9", "syslog: expected HH:MM:SS after the day", 6},
  };
  for (const Case& c : cases) {
    LogTimeParser parser(TimeZone::Utc(), kReference);
    const std::optional<LogTime> t = parser.Parse(c.line);
    ASSERT_FALSE(t.has_value()) << c.line << " gave " << LogTimeKindName(t->kind);
    EXPECT_EQ(parser.error(), c.error) << c.line;
    EXPECT_EQ(parser.error_offset(), c.offset) << c.line;
  }
}

// Any prefix of any line, and any byte put anywhere in one, gives a result
// or an error: the parser reads nothing past the end.
TEST(LogTimeParserTest, EveryTruncationAndByteIsHandled) {
  const std::string_view lines[] = {
      "@400000006abaee1e35a8c946 2026-09-28 22:45:13.900254022  new msg 1",
      "2026-12-07T01:02:03.123456+01:00 mx postfix/smtpd[4711]: m",
      "Jun  9 09:12:24 mx qmail: 1276913544.622077 new msg 78833",
      "2018-01-01 20:51:03.121918500 info msg 1",
      "849347523.531129 new msg 19326",
  };
  LogTimeParser parser(Zone("Europe/Berlin"), kReference);
  for (const std::string_view line : lines) {
    for (std::size_t n = 0; n <= line.size(); ++n) {
      const std::string cut(line.substr(0, n));
      if (!parser.Parse(cut)) {
        EXPECT_FALSE(parser.error().empty()) << cut;
      }
      for (const char b : {'\0', ' ', '9', ':', '\xff', 'T', '.', '@', '['}) {
        if (n == line.size()) continue;
        std::string changed(line);
        changed[n] = b;
        if (const std::optional<LogTime> t = parser.Parse(changed); t) {
          EXPECT_GE(t->message.data(), changed.data());
          EXPECT_LE(t->message.data() + t->message.size(), changed.data() + changed.size());
        } else {
          EXPECT_FALSE(parser.error().empty()) << changed;
        }
      }
    }
  }
}

// --- The syslog year ---------------------------------------------------------

// Parses `lines` in order and returns the times, or the error text.
std::vector<std::string> Times(LogTimeParser& parser, const std::vector<std::string_view>& lines) {
  std::vector<std::string> out;
  for (const std::string_view line : lines) {
    const std::optional<LogTime> t = parser.Parse(line);
    out.push_back(t ? Show(t->time) : std::string(parser.error()));
  }
  return out;
}

TEST(LogTimeParserTest, NewYearIncrementsTheYear) {
  // A file read after it was last written on 2027-01-02: its first line is
  // from the end of 2026, and the months step from December to January.
  LogTimeParser parser(TimeZone::Utc(), At(2027, 1, 2, 8));
  EXPECT_EQ(
      Times(parser, {"Dec 30 10:00:00 mx a: x", "Dec 31 23:59:59 mx a: x",
                     "Jan  1 00:00:01 mx a: x", "Jan  2 07:00:00 mx a: x"}),
      (std::vector<std::string>{"2026-12-30T10:00:00.000000Z", "2026-12-31T23:59:59.000000Z",
                                "2027-01-01T00:00:01.000000Z", "2027-01-02T07:00:00.000000Z"}));
  EXPECT_EQ(parser.state(), (LogTimeParser::State{2027, 1}));
}

TEST(LogTimeParserTest, AFutureDateIsLastYears) {
  // Read on 2026-03-01: "Dec 24" would be nine months ahead, so it is 2025's;
  // the March lines after it are 2026's again.
  LogTimeParser parser(TimeZone::Utc(), At(2026, 3, 1, 0, 0, 0));
  EXPECT_EQ(
      Times(parser, {"Dec 24 18:00:00 mx a: x", "Mar  1 00:00:00 mx a: x"}),
      (std::vector<std::string>{"2025-12-24T18:00:00.000000Z", "2026-03-01T00:00:00.000000Z"}));
  // Up to a day ahead is taken as this year's (clocks differ); more is not.
  LogTimeParser near(TimeZone::Utc(), At(2026, 3, 1, 0, 0, 0));
  EXPECT_EQ(Times(near, {"Mar  1 23:59:59 mx a: x"}),
            (std::vector<std::string>{"2026-03-01T23:59:59.000000Z"}));
  LogTimeParser far(TimeZone::Utc(), At(2026, 3, 1, 0, 0, 0));
  EXPECT_EQ(Times(far, {"Mar  2 00:00:01 mx a: x"}),
            (std::vector<std::string>{"2025-03-02T00:00:01.000000Z"}));
}

TEST(LogTimeParserTest, ALateLineOfTheOldYear) {
  // Lines from several hosts: one December line arrives after January's.
  LogTimeParser parser(TimeZone::Utc(), At(2027, 1, 5));
  EXPECT_EQ(Times(parser, {"Jan  1 00:00:02 mx a: x", "Dec 31 23:59:59 mx a: x",
                           "Jan  1 00:00:03 mx a: x"}),
            (std::vector<std::string>{"2027-01-01T00:00:02.000000Z", "2026-12-31T23:59:59.000000Z",
                                      "2027-01-01T00:00:03.000000Z"}));
}

TEST(LogTimeParserTest, ALiveLogAdvancesTheReference) {
  LogTimeParser parser(TimeZone::Utc(), At(2026, 12, 31, 12));
  EXPECT_EQ(Times(parser, {"Dec 31 12:00:00 mx a: x"}),
            (std::vector<std::string>{"2026-12-31T12:00:00.000000Z"}));
  parser.set_reference(At(2027, 1, 3));
  EXPECT_EQ(parser.reference(), At(2027, 1, 3));
  EXPECT_EQ(
      Times(parser, {"Jan  1 00:00:05 mx a: x", "Jan  3 00:00:05 mx a: x"}),
      (std::vector<std::string>{"2027-01-01T00:00:05.000000Z", "2027-01-03T00:00:05.000000Z"}));
}

TEST(LogTimeParserTest, TheReferenceYearIsTheZones) {
  // 2026-12-31 23:30 UTC is already 2027 at +02:00.
  LogTimeParser parser(Zone("+02:00"), At(2026, 12, 31, 23, 30));
  EXPECT_EQ(Times(parser, {"Jan  1 01:00:00 mx a: x"}),
            (std::vector<std::string>{"2026-12-31T23:00:00.000000Z"}));
}

TEST(LogTimeParserTest, FebruaryTwentyNinth) {
  LogTimeParser leap(TimeZone::Utc(), At(2028, 3, 1));
  EXPECT_EQ(Times(leap, {"Feb 29 10:00:00 mx a: x"}),
            (std::vector<std::string>{"2028-02-29T10:00:00.000000Z"}));
  LogTimeParser common(TimeZone::Utc(), At(2027, 3, 1));
  EXPECT_EQ(Times(common, {"Feb 29 10:00:00 mx a: x"}),
            (std::vector<std::string>{"syslog: February 29 in a year that is not a leap year"}));
  EXPECT_EQ(common.state(), LogTimeParser::State{});  // a failed line leaves the state
}

TEST(LogTimeParserTest, StateRoundTrips) {
  LogTimeParser parser(TimeZone::Utc(), At(2030, 6, 1));
  EXPECT_EQ(parser.state(), LogTimeParser::State{});
  ASSERT_TRUE(parser.Parse("Dec 31 23:00:00 mx a: x"));
  const LogTimeParser::State saved = parser.state();
  EXPECT_EQ(saved, (LogTimeParser::State{2029, 12}));

  // A parser restarted from the checkpoint continues the year across New Year.
  LogTimeParser resumed(TimeZone::Utc(), At(2030, 6, 1));
  resumed.set_state(saved);
  EXPECT_EQ(Times(resumed, {"Jan  1 00:00:00 mx a: x"}),
            (std::vector<std::string>{"2030-01-01T00:00:00.000000Z"}));

  for (const LogTimeParser::State bad :
       {LogTimeParser::State{2026, 13}, LogTimeParser::State{2026, -1},
        LogTimeParser::State{12345, 5}}) {
    resumed.set_state(bad);
    EXPECT_EQ(resumed.state(), LogTimeParser::State{});
  }
}

TEST(LogTimeParserTest, OtherFormsLeaveTheYearAlone) {
  LogTimeParser parser(TimeZone::Utc(), At(2026, 6, 1));
  ASSERT_TRUE(parser.Parse("@4000000037c219bf2ef02e94 x"));
  ASSERT_TRUE(parser.Parse("2026-01-01T00:00:00Z h t: x"));
  EXPECT_EQ(parser.state(), LogTimeParser::State{});
}

TEST(LogTimeParserTest, ParsingAllocatesNothing) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocations are not counted under ASan";
  const std::string_view lines[] = {
      "@4000000065a3f1c22f0b6a1c qmail-smtpd: pid 28113 Reject::RCPT::Failed_Rcptto",
      "@400000006abaee1e35a8c946 2026-09-28 22:45:13.900254022  new msg 1",
      "2026-09-28 22:45:13.900254022  new msg 1",
      "2026-12-07T01:02:03.123456+01:00 mx postfix/smtpd[4711]: connect",
      "Jun  9 09:12:24 mx qmail: 1276913544.622077 new msg 78833",
      "Dec 31 23:59:59 mx a: x",
      "Jan  1 00:00:01 mx a: x",
      "849347523.531129 new msg 19326",
      "no prefix",
      "2026-02-30 00:00:00.0 malformed",
      "@4000000037c219bf2ef02e9g malformed",
      "2040-07-01 12:00:00.000000000 after the listed transitions",
  };
  LogTimeParser parser(Zone("Europe/Berlin"), kReference);
  const long before = HeapAllocationsForTesting();
  int parsed = 0;
  for (int round = 0; round < 100; ++round) {
    for (const std::string_view line : lines) parsed += parser.Parse(line).has_value() ? 1 : 0;
  }
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
  EXPECT_EQ(parsed, 1000);
}

// --- Against daemontools' tai64n and tai64nlocal ------------------------------

constexpr char kTai64n[] = "/usr/bin/tai64n";
constexpr char kTai64nLocal[] = "/usr/bin/tai64nlocal";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// `input` through `command` (run by the shell, reading and writing files).
std::vector<std::string> Pipe(const testing::TempDir& dir, const std::string& command,
                              const std::string& input) {
  const std::string in = dir.File("in");
  const std::string out = dir.File("out");
  std::ofstream(in, std::ios::binary) << input;
  const std::string shell = command + " <" + in + " >" + out;
  const int rc = std::system(shell.c_str());
  EXPECT_EQ(rc, 0) << shell;
  return SplitLines(ReadAll(out));
}

// daemontools is a test dependency (scripts/install-deps.sh --test): its
// absence fails these tests rather than skipping them.
void RequireDaemontools() {
  ASSERT_TRUE(std::filesystem::exists(kTai64n)) << kTai64n << " missing: install daemontools";
  ASSERT_TRUE(std::filesystem::exists(kTai64nLocal))
      << kTai64nLocal << " missing: install daemontools";
}

TEST(LogTimeDaemontoolsTest, Tai64nLabelsTheCurrentTime) {
  ASSERT_NO_FATAL_FAILURE(RequireDaemontools());
  const testing::TempDir dir("ms-log-time");
  const TimePoint before = SystemClock().Now();
  const std::vector<std::string> labelled =
      Pipe(dir, kTai64n, "new msg 1\ninfo msg 1: bytes 100\n\nend msg 1\n");
  const TimePoint after = SystemClock().Now();
  ASSERT_EQ(labelled.size(), 4u);
  const std::string_view messages[] = {"new msg 1", "info msg 1: bytes 100", "", "end msg 1"};
  std::string joined;
  std::vector<TimePoint> times;
  LogTimeParser parser(TimeZone::Utc(), after);
  for (std::size_t i = 0; i < labelled.size(); ++i) {
    const std::optional<LogTime> t = parser.Parse(labelled[i]);
    ASSERT_TRUE(t) << labelled[i] << ": " << parser.error();
    EXPECT_EQ(t->kind, LogTimeKind::kTai64n);
    EXPECT_EQ(t->message, messages[i]);
    // tai64n reads the same Unix clock: within the run, give or take a second.
    EXPECT_GE(t->time, before - std::chrono::seconds(1)) << labelled[i];
    EXPECT_LE(t->time, after + std::chrono::seconds(1)) << labelled[i];
    times.push_back(t->time);
    joined += labelled[i] + "\n";
  }
  // The same lines after tai64nlocal, in a zone with DST: the same instants.
  for (const char* zone : {"Europe/Berlin", "America/New_York", "UTC"}) {
    const std::vector<std::string> local =
        Pipe(dir, std::string("TZ=") + zone + " " + kTai64nLocal, joined);
    ASSERT_EQ(local.size(), labelled.size());
    LogTimeParser local_parser(Zone(zone), after);
    for (std::size_t i = 0; i < local.size(); ++i) {
      const std::optional<LogTime> t = local_parser.Parse(local[i]);
      ASSERT_TRUE(t) << local[i] << ": " << local_parser.error();
      EXPECT_EQ(t->kind, LogTimeKind::kLocal) << local[i];
      EXPECT_EQ(Show(t->time), Show(times[i])) << zone << ": " << local[i];
      EXPECT_EQ(t->message, messages[i]) << local[i];
    }
  }
}

TEST(LogTimeDaemontoolsTest, Tai64nLocalAgreesAcrossZonesAndYears) {
  ASSERT_NO_FATAL_FAILURE(RequireDaemontools());
  // Instants around the DST changes of the zones below, in years with
  // listed transitions and after them (2040: the footer's rule), and
  // across a range of years, with nanoseconds as tai64n writes them.
  std::vector<std::int64_t> instants;
  for (const int year : {1996, 2026, 2040}) {
    for (const int month : {1, 3, 4, 10, 11}) {
      for (int day = 1; day <= 31; day += 3) {
        if (day > DaysInMonth(year, month)) continue;
        for (int hour = 0; hour < 24; hour += 1) {
          instants.push_back(CivilToSeconds(CivilTime{year, month, day, hour, 17, 29}));
        }
      }
    }
  }
  for (std::int64_t t = 0; t < 4'000'000'000; t += 86'400 * 97 + 12'345) instants.push_back(t);

  const testing::TempDir dir("ms-log-time");
  std::string input;
  for (std::size_t i = 0; i < instants.size(); ++i) {
    input += Label(instants[i], static_cast<std::uint32_t>((i * 7919 % 1'000'000) * 1000 + 500)) +
             " line " + std::to_string(i) + "\n";
  }
  for (const char* zone_name :
       {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"}) {
    const TimeZone zone = Zone(zone_name);
    const std::vector<std::string> local =
        Pipe(dir, std::string("TZ=") + zone_name + " " + kTai64nLocal, input);
    const std::vector<std::string> labelled = SplitLines(input);
    ASSERT_EQ(local.size(), labelled.size()) << zone_name;
    LogTimeParser label_parser(zone, kReference);
    LogTimeParser local_parser(zone, kReference);
    int ambiguous = 0;
    for (std::size_t i = 0; i < local.size(); ++i) {
      const std::optional<LogTime> a = label_parser.Parse(labelled[i]);
      const std::optional<LogTime> b = local_parser.Parse(local[i]);
      ASSERT_TRUE(a) << labelled[i] << ": " << label_parser.error();
      ASSERT_TRUE(b) << local[i] << ": " << local_parser.error();
      ASSERT_EQ(a->kind, LogTimeKind::kTai64n);
      ASSERT_EQ(b->kind, LogTimeKind::kLocal) << local[i];
      EXPECT_EQ(a->message, b->message);
      // Local times that happen twice (the hour after clocks go back) are
      // read as their first occurrence; every other one gives the instant.
      const std::int64_t t =
          std::chrono::floor<std::chrono::seconds>(a->time).time_since_epoch().count();
      TimePoint expected = a->time;
      for (const std::int64_t d : {1800, 3600}) {
        if (zone.ToCivil(t - d) == zone.ToCivil(t)) {
          expected = a->time - std::chrono::seconds(d);
          ++ambiguous;
        }
      }
      EXPECT_EQ(Show(b->time), Show(expected))
          << zone_name << ": " << local[i] << " from " << labelled[i];
    }
    if (std::string_view(zone_name) != "UTC") {
      EXPECT_GT(ambiguous, 0) << zone_name;
    }
  }
}

}  // namespace
}  // namespace mailscope::ingest
