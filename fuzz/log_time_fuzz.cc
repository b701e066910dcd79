// Fuzzes the timestamp-prefix parser of log lines and the TZif reader under
// it. Input that starts with "TZif" is a zone file: it loads or is refused
// with a message, and a zone that loads converts times in both directions
// without fault. Other input is log lines, parsed in turn by one parser in
// Europe/Berlin (a zone with DST) and one in UTC: each gives a result whose
// views lie inside its line, or an error with a reason; a TAI64N label
// written back from its time is the label read (give or take a minute when
// an s6-log local time follows); the syslog year stays within 0..9999.
// SixteenHexDigits() answers as its byte loop at every offset of the input.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/time_zone.h"
#include "ingest/log_time.h"

namespace {

using namespace mailscope;

bool Inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void CheckZone(const TimeZone& zone, std::string_view bytes) {
  // Times from the input's own bytes, across and beyond the years of logs.
  for (std::size_t i = 0; i + 8 <= bytes.size() && i < 64; i += 8) {
    std::int64_t t = 0;
    for (std::size_t j = 0; j < 8; ++j) t = (t << 8) | static_cast<unsigned char>(bytes[i + j]);
    t %= std::int64_t{1} << 40;
    const std::int32_t offset = zone.UtcOffsetSeconds(t);
    MS_CHECK(offset >= -26 * 3600 && offset <= 26 * 3600);
    (void)zone.ToUnixSeconds(t);
    (void)zone.ToCivil(t);
  }
}

void CheckLine(ingest::LogTimeParser& parser, std::string_view line) {
  const std::optional<ingest::LogTime> t = parser.Parse(line);
  if (!t) {
    MS_CHECK(!parser.error().empty());
    MS_CHECK(parser.error_offset() <= line.size());
    return;
  }
  MS_CHECK(Inside(t->message, line));
  MS_CHECK(Inside(t->host, line));
  MS_CHECK(Inside(t->tag, line));
  MS_CHECK(t->pid >= -1);
  const ingest::LogTimeParser::State s = parser.state();
  MS_CHECK(s.month >= 0 && s.month <= 12 && s.year >= 0 && s.year <= 9999);
  if (t->kind == ingest::LogTimeKind::kNone) {
    MS_CHECK(t->message == line && t->time == TimePoint{});
    return;
  }
  MS_CHECK(t->time >= TimePoint(std::chrono::seconds(DaysFromCivil(0, 1, 1) * 86400)));
  MS_CHECK(t->time < TimePoint(std::chrono::seconds(DaysFromCivil(10000, 1, 1) * 86400)));
  if (t->kind == ingest::LogTimeKind::kTai64n || t->kind == ingest::LogTimeKind::kTai64nLocal) {
    // The seconds of the label (within a minute when a local time follows
    // it), and its nanoseconds to the microsecond.
    // Floored, not truncated: a label before 1970 with a fraction is in the
    // second below (UnixSeconds rounds toward zero).
    const auto floored = std::chrono::floor<std::chrono::seconds>(t->time);
    std::int64_t secs = floored.time_since_epoch().count();
    if (t->kind == ingest::LogTimeKind::kTai64nLocal) {
      std::uint64_t label = 0;
      for (std::size_t i = 1; i < 17; ++i) {
        const char c = line[i];
        label = label * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
      }
      const std::int64_t label_secs =
          static_cast<std::int64_t>(label) - (std::int64_t{1} << 62) - 10;
      MS_CHECK(secs - label_secs >= -60 && secs - label_secs <= 60);
      secs = label_secs;
    }
    char label[32];
    std::snprintf(label, sizeof label, "@%016llx",
                  static_cast<unsigned long long>(secs + (std::int64_t{1} << 62) + 10));
    MS_CHECK(line.substr(0, 17) == label);
    std::uint32_t nanos = 0;
    for (std::size_t i = 17; i < 25; ++i) {
      const char c = line[i];
      nanos = nanos * 16 + static_cast<std::uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    MS_CHECK(nanos / 1000 == static_cast<std::uint32_t>((t->time - floored).count()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  if (input.starts_with("TZif")) {
    const Result<TimeZone> zone = TimeZone::FromTzif(input, "fuzz");
    if (zone.ok()) {
      CheckZone(*zone, input);
    } else {
      MS_CHECK(!zone.status().message().empty());
    }
    return 0;
  }
  static const TimeZone kBerlin = [] {
    Result<TimeZone> z = TimeZone::Load("Europe/Berlin");
    return z.ok() ? *z : TimeZone::Utc();
  }();
  const TimePoint reference(std::chrono::seconds(1'800'000'000));
  ingest::LogTimeParser berlin(kBerlin, reference);
  ingest::LogTimeParser utc(TimeZone::Utc(), reference);
  // The vector read of 16 hex digits answers as the byte loop, wherever
  // they start.
  for (std::size_t at = 0; at + 16 <= input.size(); ++at) {
    std::uint64_t got = 1, want = 2;
    const bool ok = ingest::SixteenHexDigits(input.data() + at, got);
    MS_CHECK(ok == ingest::SixteenHexDigitsScalar(input.data() + at, want));
    MS_CHECK(!ok || got == want);
  }
  std::string_view rest(input);
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    CheckLine(berlin, line);
    CheckLine(utc, line);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  // Names are untrusted too (configuration, TZ): short input doubles as one.
  if (size <= 64 && input.find('/') == std::string::npos) {
    const Result<TimeZone> zone = TimeZone::Load(input);
    if (zone.ok()) CheckZone(*zone, input + "\x12\x34\x56\x78\x9a\xbc\xde\xf0");
  }
  return 0;
}
