#include "core/time_zone.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailscope {
namespace {

constexpr char kZoneInfo[] = "/usr/share/zoneinfo/";

// Sets TZ for the C library for the life of the object, then puts back
// what was there.
class ScopedTz {
 public:
  explicit ScopedTz(const char* value) {
    if (const char* old = std::getenv("TZ"); old != nullptr) saved_ = old;
    if (value != nullptr) {
      ::setenv("TZ", value, 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  ~ScopedTz() {
    if (saved_) {
      ::setenv("TZ", saved_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  std::optional<std::string> saved_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

CivilTime FromTm(const struct tm& tm) {
  return CivilTime{tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
}

// What the C library's localtime says at `t`, with TZ already set.
struct CLocal {
  CivilTime civil;
  long offset;
};
CLocal LibcLocal(std::int64_t t) {
  const time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  ::localtime_r(&tt, &tm);
  return {FromTm(tm), tm.tm_gmtoff};
}

std::string Show(const CivilTime& c) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02d %02d:%02d:%02d", static_cast<long long>(c.year),
                c.month, c.day, c.hour, c.minute, c.second);
  return buf;
}

// Checks `zone` against the C library (TZ set to the same zone) at `t`: the
// offset, the civil time, and the way back from the civil time, which is `t`
// unless that civil time also happened earlier (the first occurrence wins).
void ExpectMatchesLibc(const TimeZone& zone, std::int64_t t) {
  const CLocal c = LibcLocal(t);
  ASSERT_EQ(zone.UtcOffsetSeconds(t), c.offset) << zone.name() << " at " << t;
  ASSERT_EQ(zone.ToCivil(t), c.civil) << zone.name() << " at " << t;
  std::int64_t first = t;
  for (const std::int64_t d : {1800, 3600, 7200}) {
    if (LibcLocal(t - d).civil == c.civil) first = t - d;
  }
  ASSERT_EQ(zone.ToUnixSeconds(CivilToSeconds(c.civil)), first)
      << zone.name() << " " << Show(c.civil) << " (t=" << t << ")";
}

std::int64_t Utc(std::int64_t y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return CivilToSeconds(CivilTime{y, m, d, hh, mm, ss});
}

// Compares the whole of a zone's range that matters to logs with the C
// library: coarse steps over 1850..2150, every half hour over stretches
// with listed transitions, at the last of them (2037 in the system's files),
// after them where the POSIX rule governs (worked out ahead up to 2200, and
// around that year, where it is worked out per lookup), and the seconds
// around every change found.
void CompareWithLibc(const char* tz, const TimeZone& zone) {
  ScopedTz scoped(tz);
  for (std::int64_t t = Utc(1850, 1, 1); t < Utc(2150, 1, 1); t += 4 * 86400 + 3607) {
    ExpectMatchesLibc(zone, t);
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (const auto& [from, to] :
       {std::pair{Utc(1994, 1, 1), Utc(1996, 1, 1)}, std::pair{Utc(2024, 1, 1), Utc(2028, 1, 1)},
        std::pair{Utc(2036, 6, 1), Utc(2038, 6, 1)}, std::pair{Utc(2039, 1, 1), Utc(2042, 1, 1)},
        std::pair{Utc(2199, 6, 1), Utc(2201, 6, 1)}}) {
    long previous = LibcLocal(from).offset;
    for (std::int64_t t = from; t < to; t += 1800) {
      const long now = LibcLocal(t).offset;
      if (now != previous) {
        // The exact second of the change, then each second around it.
        std::int64_t lo = t - 1800;
        std::int64_t hi = t;
        while (hi - lo > 1) {
          const std::int64_t mid = lo + (hi - lo) / 2;
          (LibcLocal(mid).offset == previous ? lo : hi) = mid;
        }
        for (std::int64_t s = hi - 3; s <= hi + 3; ++s) ExpectMatchesLibc(zone, s);
        previous = now;
      }
      ExpectMatchesLibc(zone, t);
      ExpectMatchesLibc(zone, t + 899);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// --- Calendar ---------------------------------------------------------------

TEST(CalendarTest, CivilSecondsMatchTimegm) {
  for (std::int64_t year = 1600; year <= 2400; year += 3) {
    for (int month = 1; month <= 12; ++month) {
      for (const int day : {1, 15, 28, DaysInMonth(year, month)}) {
        struct tm tm {};
        tm.tm_year = static_cast<int>(year - 1900);
        tm.tm_mon = month - 1;
        tm.tm_mday = day;
        tm.tm_hour = 13;
        tm.tm_min = 7;
        tm.tm_sec = 59;
        const CivilTime c{year, month, day, 13, 7, 59};
        ASSERT_EQ(CivilToSeconds(c), ::timegm(&tm)) << Show(c);
        ASSERT_EQ(CivilFromSeconds(CivilToSeconds(c)), c);
      }
    }
  }
}

TEST(CalendarTest, LeapYearsAndMonthLengths) {
  EXPECT_TRUE(IsLeapYear(2000));
  EXPECT_TRUE(IsLeapYear(2024));
  EXPECT_FALSE(IsLeapYear(1900));
  EXPECT_FALSE(IsLeapYear(2026));
  EXPECT_EQ(DaysInMonth(2024, 2), 29);
  EXPECT_EQ(DaysInMonth(2026, 2), 28);
  EXPECT_EQ(DaysInMonth(2026, 4), 30);
  EXPECT_EQ(DaysInMonth(2026, 12), 31);
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(0, 1, 1), -719528);
  EXPECT_EQ(CivilFromSeconds(-1), (CivilTime{1969, 12, 31, 23, 59, 59}));
}

// --- Zones against the C library -------------------------------------------

class SystemZoneTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SystemZoneTest, MatchesTheCLibrary) {
  const std::string name = GetParam();
  // tzdata is a test dependency (scripts/install-deps.sh --test): a missing
  // zone is a broken setup, not a reason to skip.
  ASSERT_TRUE(std::filesystem::exists(kZoneInfo + name)) << kZoneInfo << name << " is missing";
  Result<TimeZone> zone = TimeZone::Load(name);
  ASSERT_TRUE(zone.ok()) << zone.status().ToString();
  EXPECT_EQ(zone->name(), name);
  CompareWithLibc(name.c_str(), *zone);
}

INSTANTIATE_TEST_SUITE_P(Zones, SystemZoneTest,
                         ::testing::Values("Europe/Berlin", "America/New_York",
                                           "Australia/Lord_Howe", "UTC", "Asia/Kolkata",
                                           "America/Sao_Paulo"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) {
                             if (c == '/') c = '_';
                           }
                           return n;
                         });

// POSIX TZ strings, which the C library reads itself when TZ names no file:
// the month-week-day, Julian and zero-based day forms, negative and
// beyond-24-hour rule times, half-hour DST, permanent DST, southern DST.
class PosixTzTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PosixTzTest, MatchesTheCLibrary) {
  const std::string spec = GetParam();
  Result<TimeZone> zone = TimeZone::Load(spec);
  ASSERT_TRUE(zone.ok()) << zone.status().ToString();
  EXPECT_EQ(zone->name(), spec);
  ScopedTz scoped(spec.c_str());
  // From 1970: the C library applies a TZ rule to earlier years as if they
  // were 1970.
  for (std::int64_t t = Utc(1970, 1, 1); t < Utc(2250, 1, 1); t += 5 * 86400 + 1799) {
    ExpectMatchesLibc(*zone, t);
    if (HasFatalFailure()) return;
  }
  for (std::int64_t t = Utc(2025, 1, 1); t < Utc(2027, 1, 1); t += 1800) {
    ExpectMatchesLibc(*zone, t);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, PosixTzTest,
                         ::testing::Values("CET-1CEST,M3.5.0,M10.5.0/3", "EST5EDT,M3.2.0,M11.1.0",
                                           "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
                                           "AEST-10AEDT,M10.1.0,M4.1.0/3",
                                           "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
                                           "XST3XDT,J60/2,J300/2", "XST3XDT,59/2,299/2",
                                           "IST-2IDT,M3.4.4/26,M10.5.0", "<+03>-3", "XST-5:30"));

// RFC 8536 §3.3.1's way to write DST all year. The C library reads each
// year's rule alone and so puts the first hours of January (before the
// year's DST "starts" at 00:00 local) in standard time; the RFC means none.
TEST(PosixTzRuleTest, PermanentDaylightTime) {
  Result<TimeZone> zone = TimeZone::Load("EST5EDT,0/0,J365/25");
  ASSERT_TRUE(zone.ok()) << zone.status().ToString();
  for (std::int64_t t = Utc(2020, 1, 1); t < Utc(2030, 1, 1); t += 3600 * 7 + 13) {
    ASSERT_EQ(zone->UtcOffsetSeconds(t), -4 * 3600) << t;
    ASSERT_EQ(zone->ToUnixSeconds(t - 4 * 3600), t) << t;
  }
  EXPECT_EQ(zone->UtcOffsetSeconds(Utc(2026, 1, 1, 2)), -4 * 3600);
  EXPECT_EQ(zone->ToUnixSeconds(CivilToSeconds(CivilTime{2026, 1, 1, 0, 30})),
            Utc(2026, 1, 1, 4, 30));
}

TEST(PosixTzRuleTest, RejectsMalformedRules) {
  for (const std::string_view spec :
       {"CE1", "XYZ", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J365", "CET-1CEST,366,1", "CET-25",
        "CET-1CEST,M3.5.0/168,M10.5.0", "<CE>-1", "CET-1CEST,M3.5.0,M10.5.0x"}) {
    EXPECT_FALSE(TimeZone::Load(spec).ok()) << spec;
  }
}

// --- DST gaps and overlaps ---------------------------------------------------

TEST(TimeZoneTest, BerlinGapShiftsForward) {
  Result<TimeZone> berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.status().ToString();
  // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC. From a listed
  // transition, and in 2040 from the footer's rule (last Sunday: March 25).
  for (const int year : {2026, 2040}) {
    const int day = year == 2026 ? 29 : 25;
    auto local = [&](int h, int m, int s) {
      return berlin->ToUnixSeconds(CivilToSeconds(CivilTime{year, 3, day, h, m, s}));
    };
    EXPECT_EQ(local(1, 59, 59), Utc(year, 3, day, 0, 59, 59)) << year;
    EXPECT_EQ(local(2, 0, 0), Utc(year, 3, day, 1, 0, 0)) << year;
    EXPECT_EQ(local(2, 30, 0), Utc(year, 3, day, 1, 30, 0)) << year;  // shows as 03:30
    EXPECT_EQ(local(2, 59, 59), Utc(year, 3, day, 1, 59, 59)) << year;
    EXPECT_EQ(local(3, 0, 0), Utc(year, 3, day, 1, 0, 0)) << year;
    EXPECT_EQ(local(3, 30, 0), Utc(year, 3, day, 1, 30, 0)) << year;
  }
}

TEST(TimeZoneTest, BerlinOverlapTakesTheFirstOccurrence) {
  Result<TimeZone> berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.status().ToString();
  // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 2040: October 28.
  for (const int year : {2026, 2040}) {
    const int day = year == 2026 ? 25 : 28;
    auto local = [&](int h, int m, int s) {
      return berlin->ToUnixSeconds(CivilToSeconds(CivilTime{year, 10, day, h, m, s}));
    };
    EXPECT_EQ(local(1, 59, 59), Utc(year, 10, day - 1, 23, 59, 59)) << year;
    EXPECT_EQ(local(2, 0, 0), Utc(year, 10, day, 0, 0, 0)) << year;
    EXPECT_EQ(local(2, 30, 0), Utc(year, 10, day, 0, 30, 0)) << year;  // not 01:30 UTC
    EXPECT_EQ(local(2, 59, 59), Utc(year, 10, day, 0, 59, 59)) << year;
    EXPECT_EQ(local(3, 0, 0), Utc(year, 10, day, 2, 0, 0)) << year;
  }
}

TEST(TimeZoneTest, LordHoweHalfHourChanges) {
  Result<TimeZone> zone = TimeZone::Load("Australia/Lord_Howe");
  ASSERT_TRUE(zone.ok()) << zone.status().ToString();
  // 2026-10-04 02:00 +1030 becomes 02:30 +11: 02:15 does not exist and is
  // read at +10:30.
  EXPECT_EQ(zone->ToUnixSeconds(CivilToSeconds(CivilTime{2026, 10, 4, 2, 15, 0})),
            Utc(2026, 10, 3, 15, 45, 0));
  // 2026-04-05 02:00 +11 becomes 01:30 +1030: 01:45 happens twice.
  EXPECT_EQ(zone->ToUnixSeconds(CivilToSeconds(CivilTime{2026, 4, 5, 1, 45, 0})),
            Utc(2026, 4, 4, 14, 45, 0));
}

// --- Names, fixed offsets, the system zone -----------------------------------

TEST(TimeZoneTest, UtcAndFixedOffsets) {
  struct Case {
    std::string_view spec;
    std::string_view name;
    std::int32_t offset;
  };
  const Case cases[] = {
      {"UTC", "UTC", 0},           {"Z", "UTC", 0},          {"+02:00", "+02:00", 7200},
      {"-0530", "-05:30", -19800}, {"+05", "+05:00", 18000}, {"-00:00", "+00:00", 0},
      {"+23:59", "+23:59", 86340},
  };
  for (const Case& c : cases) {
    Result<TimeZone> zone = TimeZone::Load(c.spec);
    ASSERT_TRUE(zone.ok()) << c.spec << ": " << zone.status().ToString();
    EXPECT_EQ(zone->name(), c.name) << c.spec;
    EXPECT_EQ(zone->UtcOffsetSeconds(1'800'000'000), c.offset) << c.spec;
    EXPECT_EQ(zone->ToUnixSeconds(1'800'000'000), 1'800'000'000 - c.offset) << c.spec;
  }
  EXPECT_EQ(TimeZone().name(), "UTC");
  EXPECT_EQ(TimeZone::Utc().ToUnixSeconds(-5), -5);
  EXPECT_EQ(TimeZone::Utc().ToTimePoint(CivilTime{2026, 12, 7, 1, 2, 3}),
            TimePoint(std::chrono::seconds(Utc(2026, 12, 7, 1, 2, 3))));
}

TEST(TimeZoneTest, RejectsMalformedNames) {
  for (const std::string_view spec :
       {"", "+24:00", "+02:60", "+2:00", "+02:0", "+0200x", "+02-00", "-", "../etc/passwd",
        "Europe/../UTC", "Europe//Berlin", "a b"}) {
    Result<TimeZone> zone = TimeZone::Load(spec);
    ASSERT_FALSE(zone.ok()) << spec;
    EXPECT_EQ(zone.status().code(), StatusCode::kInvalidArgument)
        << spec << ": " << zone.status().ToString();
  }
}

TEST(TimeZoneTest, UnknownZoneIsNotFound) {
  Result<TimeZone> zone = TimeZone::Load("Europe/Atlantis");
  ASSERT_FALSE(zone.ok());
  EXPECT_EQ(zone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(zone.status().message().find("Europe/Atlantis"), std::string::npos);
  // A directory of the tree is not a zone.
  Result<TimeZone> dir = TimeZone::Load("Europe");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument) << dir.status().ToString();
  Result<TimeZone> missing = TimeZone::Load("/nonexistent/zone/file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(TimeZoneTest, LoadsAnAbsolutePath) {
  const std::string path = std::string(kZoneInfo) + "Europe/Berlin";
  Result<TimeZone> zone = TimeZone::Load(path);
  ASSERT_TRUE(zone.ok()) << zone.status().ToString();
  EXPECT_EQ(zone->UtcOffsetSeconds(Utc(2026, 7, 1)), 7200);
}

TEST(TimeZoneTest, SystemFollowsTz) {
  {
    ScopedTz tz("Europe/Berlin");
    EXPECT_EQ(TimeZone::System().name(), "Europe/Berlin");
  }
  {
    ScopedTz tz(":America/New_York");
    const TimeZone zone = TimeZone::System();
    EXPECT_EQ(zone.name(), "America/New_York");
    EXPECT_EQ(zone.UtcOffsetSeconds(Utc(2026, 1, 15)), -5 * 3600);
  }
  {
    ScopedTz tz("");
    EXPECT_EQ(TimeZone::System().name(), "UTC");
  }
  {
    ScopedTz tz("Nowhere/Atlantis");
    EXPECT_EQ(TimeZone::System().name(), "UTC");
  }
  {
    ScopedTz tz("CET-1CEST,M3.5.0,M10.5.0/3");
    EXPECT_EQ(TimeZone::System().UtcOffsetSeconds(Utc(2026, 7, 1)), 7200);
  }
  {
    // Without TZ: /etc/localtime, as the C library reads it.
    ScopedTz tz(nullptr);
    const TimeZone zone = TimeZone::System();
    for (std::int64_t t = Utc(2020, 1, 1); t < Utc(2030, 1, 1); t += 86400 * 7 + 3599) {
      ASSERT_EQ(zone.UtcOffsetSeconds(t), LibcLocal(t).offset) << zone.name() << " at " << t;
    }
  }
}

// --- The TZif reader ---------------------------------------------------------

// A TZif file put together byte by byte: version 1 when `version` is '\0',
// else a version 1 block followed by the 64-bit one and the footer.
struct TzifSpec {
  char version = '2';
  std::vector<std::int64_t> times;
  std::vector<std::uint8_t> indices;
  std::vector<std::int32_t> offsets;  // one time type each
  std::uint32_t leap_records = 0;
  std::string footer;
};

void PutBig(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string Block(const TzifSpec& s, int time_bytes) {
  std::string out = "TZif";
  out += s.version;
  out += std::string(15, '\0');
  const std::uint32_t counts[] = {0,
                                  0,
                                  s.leap_records,
                                  static_cast<std::uint32_t>(s.times.size()),
                                  static_cast<std::uint32_t>(s.offsets.size()),
                                  4};
  for (const std::uint32_t c : counts) PutBig(out, c, 4);
  for (const std::int64_t t : s.times) PutBig(out, static_cast<std::uint64_t>(t), time_bytes);
  for (const std::uint8_t i : s.indices) out += static_cast<char>(i);
  for (const std::int32_t o : s.offsets) {
    PutBig(out, static_cast<std::uint32_t>(o), 4);
    out += '\0';  // isdst
    out += '\0';  // abbreviation index
  }
  out += std::string("XYZ\0", 4);
  for (std::uint32_t i = 0; i < s.leap_records; ++i) {
    PutBig(out, 78796800, time_bytes);
    PutBig(out, 1, 4);
  }
  return out;
}

std::string BuildTzif(const TzifSpec& s) {
  if (s.version == '\0') return Block(s, 4);
  return Block(s, 4) + Block(s, 8) + "\n" + s.footer + "\n";
}

// The version 1 part of a real file, marked as version 1.
std::string VersionOneOf(const std::string& file) {
  auto count = [&](int at) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(file[at + i]);
    return std::size_t{v};
  };
  const std::size_t size =
      44 + count(32) * 5 + count(36) * 6 + count(40) + count(28) * 8 + count(24) + count(20);
  std::string v1 = file.substr(0, size);
  v1[4] = '\0';
  return v1;
}

TEST(TzifReaderTest, ReadsVersionOneFiles) {
  const std::string file = ReadFile(std::string(kZoneInfo) + "Europe/Berlin");
  ASSERT_FALSE(file.empty()) << "Europe/Berlin is missing";
  Result<TimeZone> v1 = TimeZone::FromTzif(VersionOneOf(file), "Berlin-v1");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  Result<TimeZone> v2 = TimeZone::FromTzif(file, "Berlin-v2");
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  // 32-bit times reach 1901..2038; after the last change the last offset stays.
  for (std::int64_t t = Utc(1902, 1, 1); t < Utc(2037, 12, 1); t += 86400 * 3 + 1777) {
    ASSERT_EQ(v1->UtcOffsetSeconds(t), v2->UtcOffsetSeconds(t)) << t;
    const std::int64_t local = t + v2->UtcOffsetSeconds(t);
    ASSERT_EQ(v1->ToUnixSeconds(local), v2->ToUnixSeconds(local)) << t;
  }
  EXPECT_EQ(v1->UtcOffsetSeconds(Utc(2100, 7, 1)), 3600);  // no rule in version 1
}

TEST(TzifReaderTest, FooterAloneDefinesASlimZone) {
  // As zic -b slim writes a zone: no transitions, the footer says it all.
  TzifSpec spec;
  spec.offsets = {3600};
  spec.footer = "CET-1CEST,M3.5.0,M10.5.0/3";
  Result<TimeZone> slim = TimeZone::FromTzif(BuildTzif(spec), "slim");
  ASSERT_TRUE(slim.ok()) << slim.status().ToString();
  Result<TimeZone> berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.status().ToString();
  for (std::int64_t t = Utc(1997, 1, 1); t < Utc(2060, 1, 1); t += 3600 * 5 + 7) {
    ASSERT_EQ(slim->UtcOffsetSeconds(t), berlin->UtcOffsetSeconds(t)) << t;
    const std::int64_t local = t + berlin->UtcOffsetSeconds(t);
    ASSERT_EQ(slim->ToUnixSeconds(local), berlin->ToUnixSeconds(local)) << t;
  }
}

TEST(TzifReaderTest, FooterContinuesAfterTheLastTransition) {
  // One change to +01:00 in 2000, then the rule: summer 2000 is still +01:00
  // (before the change the rule has no say), later years follow the rule.
  TzifSpec spec;
  spec.times = {Utc(2000, 9, 1)};
  spec.indices = {1};
  spec.offsets = {0, 3600};
  spec.footer = "CET-1CEST,M3.5.0,M10.5.0/3";
  Result<TimeZone> zone = TimeZone::FromTzif(BuildTzif(spec), "spliced");
  ASSERT_TRUE(zone.ok()) << zone.status().ToString();
  EXPECT_EQ(zone->UtcOffsetSeconds(Utc(2000, 7, 1)), 0);
  EXPECT_EQ(zone->UtcOffsetSeconds(Utc(2000, 9, 2)), 3600);
  EXPECT_EQ(zone->UtcOffsetSeconds(Utc(2000, 12, 1)), 3600);
  EXPECT_EQ(zone->UtcOffsetSeconds(Utc(2001, 7, 1)), 7200);
  EXPECT_EQ(zone->ToUnixSeconds(CivilToSeconds(CivilTime{2000, 7, 1})), Utc(2000, 7, 1));
  EXPECT_EQ(zone->ToUnixSeconds(CivilToSeconds(CivilTime{2001, 7, 1, 2})), Utc(2001, 7, 1));
}

TEST(TzifReaderTest, RejectsMalformedFiles) {
  TzifSpec good;
  good.times = {0, 1000};
  good.indices = {1, 0};
  good.offsets = {0, 3600};
  good.footer = "UTC0";
  ASSERT_TRUE(TimeZone::FromTzif(BuildTzif(good), "good").ok());

  struct Case {
    std::string_view what;
    std::string bytes;
  };
  std::vector<Case> cases;
  auto with = [&](auto change) {
    TzifSpec s = good;
    change(s);
    return BuildTzif(s);
  };
  cases.push_back({"empty", ""});
  cases.push_back({"bad magic", "TZiF" + BuildTzif(good).substr(4)});
  cases.push_back({"no types", with([](TzifSpec& s) {
                     s.times.clear();
                     s.indices.clear();
                     s.offsets.clear();
                   })});
  cases.push_back({"type index out of range", with([](TzifSpec& s) { s.indices = {1, 2}; })});
  cases.push_back({"times not increasing", with([](TzifSpec& s) { s.times = {1000, 1000}; })});
  cases.push_back({"leap seconds", with([](TzifSpec& s) { s.leap_records = 1; })});
  cases.push_back({"bad footer", with([](TzifSpec& s) { s.footer = "not a rule"; })});
  cases.push_back({"offset beyond 26 h", with([](TzifSpec& s) { s.offsets = {0, 100000}; })});
  cases.push_back({"time beyond 2^60", with([](TzifSpec& s) {
                     s.times = {0, std::int64_t{1} << 61};
                   })});
  std::string no_footer = BuildTzif(good);
  no_footer.resize(no_footer.size() - 6);
  cases.push_back({"no footer", no_footer});
  for (const Case& c : cases) {
    Result<TimeZone> zone = TimeZone::FromTzif(c.bytes, "bad");
    ASSERT_FALSE(zone.ok()) << c.what;
    EXPECT_EQ(zone.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(zone.status().message().find("bad TZif file"), std::string::npos) << c.what;
  }
}

TEST(TzifReaderTest, EveryTruncationIsAnError) {
  const std::string file = ReadFile(std::string(kZoneInfo) + "America/New_York");
  ASSERT_FALSE(file.empty()) << "America/New_York is missing";
  ASSERT_TRUE(TimeZone::FromTzif(file, "whole").ok());
  for (std::size_t n = 0; n < file.size(); ++n) {
    ASSERT_FALSE(TimeZone::FromTzif(std::string_view(file).substr(0, n), "cut").ok()) << n;
  }
}

}  // namespace
}  // namespace mailscope
