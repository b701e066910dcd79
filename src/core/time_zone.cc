#include "core/time_zone.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/tzif.h"

namespace mailscope {
namespace {

using internal::PosixRule;
using internal::ZoneRules;
using internal::ZoneTransition;

constexpr char kZoneInfoDir[] = "/usr/share/zoneinfo";
// Real TZif files are a few KiB; this bounds what a wrong path can make us read.
constexpr std::size_t kMaxTzifBytes = 1 << 20;
// Inputs of the conversions are clamped to about ±20000 years.
constexpr std::int64_t kClampSeconds = std::int64_t{20000} * 366 * 86400;

std::int64_t Clamp(std::int64_t s) {
  return s < -kClampSeconds ? -kClampSeconds : (s > kClampSeconds ? kClampSeconds : s);
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::int64_t YearOf(std::int64_t seconds) { return CivilFromDays(FloorDiv(seconds, 86400)).year; }

struct Change {
  std::int64_t utc;
  std::int32_t after;
};

// The transitions the DST rule of `z` makes in the years [from, to], after
// and joined to its last listed one, written to `out` (room for one more
// than `changes`, which holds two per year). Returns how many, and in
// `initial` the offset before the first.
std::size_t RuleTransitions(const ZoneRules& z, std::int64_t from, std::int64_t to,
                            std::span<Change> changes, std::span<ZoneTransition> out,
                            std::int32_t& initial) {
  const PosixRule& r = *z.rule;
  // Generated in time order within each year's pair, so a stable sort keeps
  // an end and the next start that fall on one instant (a rule that makes
  // DST permanent) in the order that leaves DST in effect. The input is
  // nearly sorted (only southern zones swap a year's pair): insertion sort.
  std::size_t n = 0;
  for (std::int64_t y = from; y <= to; ++y) {
    changes[n++] = {internal::RuleDay(r.start, y) * 86400 + r.start_time - r.std_offset,
                    r.dst_offset};
    changes[n++] = {internal::RuleDay(r.end, y) * 86400 + r.end_time - r.dst_offset, r.std_offset};
  }
  for (std::size_t i = 1; i < n; ++i) {
    for (std::size_t j = i; j > 0 && changes[j - 1].utc > changes[j].utc; --j) {
      std::swap(changes[j - 1], changes[j]);
    }
  }
  std::size_t size = 0;
  std::int64_t floor = std::numeric_limits<std::int64_t>::min();
  std::int32_t current = changes[0].after == r.dst_offset ? r.std_offset : r.dst_offset;
  initial = current;
  if (!z.transitions.empty()) {
    const ZoneTransition& last = z.transitions.back();
    out[size++] = last;
    initial = last.before;
    current = last.after;
    floor = last.utc;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (changes[i].utc <= floor) continue;
    if (i + 1 < n && changes[i + 1].utc == changes[i].utc) continue;  // the later one wins
    if (changes[i].after == current) continue;
    out[size++] = {changes[i].utc, current, changes[i].after};
    current = changes[i].after;
  }
  return size;
}

// The rule's transitions around `year`: a small table on which Resolve and
// OffsetAt work as on the listed ones, for years past the precomputed ones.
struct RuleWindow {
  std::array<ZoneTransition, 7> items;
  std::size_t size = 0;
  std::int32_t initial = 0;
  std::span<const ZoneTransition> span() const { return {items.data(), size}; }
};

RuleWindow MakeRuleWindow(const ZoneRules& z, std::int64_t year) {
  std::array<Change, 6> changes;
  RuleWindow w;
  w.size = RuleTransitions(z, year - 1, year + 1, changes, w.items, w.initial);
  return w;
}

// Works out the rule's transitions up to kRuleTableLastYear once, so that
// lookups in the years of logs cost a binary search, as listed ones do.
constexpr std::int64_t kRuleTableLastYear = 2200;
void PrecomputeRule(ZoneRules& z) {
  if (!z.rule || !z.rule->has_dst) return;
  const std::int64_t from =
      z.transitions.empty() ? 1900 : std::max<std::int64_t>(YearOf(z.transitions.back().utc), 1900);
  if (from >= kRuleTableLastYear) return;
  std::vector<Change> changes(static_cast<std::size_t>(2 * (kRuleTableLastYear - from + 1)));
  z.rule_table.resize(changes.size() + 1);
  z.rule_table.resize(
      RuleTransitions(z, from, kRuleTableLastYear, changes, z.rule_table, z.rule_table_initial));
  z.rule_table_years = {from, kRuleTableLastYear};
}

// --- Lookups ----------------------------------------------------------------

// The UTC time of local time `local` given `transitions` (ordered by utc)
// and the offset before them; see the class comment for gaps and overlaps.
std::int64_t Resolve(std::int64_t local, std::span<const ZoneTransition> transitions,
                     std::int32_t initial) {
  // The first transition whose new clock has passed `local`. Written out
  // rather than std::upper_bound: a file with transitions closer than their
  // offsets differ leaves the key unsorted, which must not be undefined.
  std::size_t lo = 0;
  std::size_t hi = transitions.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (transitions[mid].utc + transitions[mid].after <= local) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < transitions.size() && local >= transitions[lo].utc + transitions[lo].before) {
    return local - transitions[lo].before;  // in the gap: read with the old offset
  }
  if (lo == 0) return local - initial;
  const ZoneTransition& prev = transitions[lo - 1];
  if (local < prev.utc + prev.before) return local - prev.before;  // overlap: first occurrence
  return local - prev.after;
}

std::int32_t OffsetAt(std::int64_t utc, std::span<const ZoneTransition> transitions,
                      std::int32_t initial) {
  std::size_t lo = 0;
  std::size_t hi = transitions.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (transitions[mid].utc <= utc) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo == 0 ? initial : transitions[lo - 1].after;
}

// --- Names ------------------------------------------------------------------

// "+HH", "+HHMM", "+HH:MM" (or '-'), hours below 24: the offset in seconds east.
std::optional<std::int32_t> ParseFixedOffset(std::string_view s) {
  if (s.size() != 3 && s.size() != 5 && s.size() != 6) return std::nullopt;
  if (s[0] != '+' && s[0] != '-') return std::nullopt;
  if (s.size() == 6 && s[3] != ':') return std::nullopt;
  auto two = [](std::string_view t, int& out) {
    if (t.size() != 2 || t[0] < '0' || t[0] > '9' || t[1] < '0' || t[1] > '9') return false;
    out = (t[0] - '0') * 10 + (t[1] - '0');
    return true;
  };
  int h = 0;
  int m = 0;
  if (!two(s.substr(1, 2), h) || h > 23) return std::nullopt;
  if (s.size() == 5 && (!two(s.substr(3, 2), m) || m > 59)) return std::nullopt;
  if (s.size() == 6 && (!two(s.substr(4, 2), m) || m > 59)) return std::nullopt;
  const std::int32_t v = h * 3600 + m * 60;
  return s[0] == '-' ? -v : v;
}

std::string FormatOffset(std::int32_t offset) {
  std::string out = offset < 0 ? "-" : "+";
  const std::int32_t a = offset < 0 ? -offset : offset;
  const int h = a / 3600;
  const int m = a / 60 % 60;
  out += static_cast<char>('0' + h / 10);
  out += static_cast<char>('0' + h % 10);
  out += ':';
  out += static_cast<char>('0' + m / 10);
  out += static_cast<char>('0' + m % 10);
  return out;
}

// A relative name of the zoneinfo tree: components of letters, digits and
// "._+-", none of them "." or "..".
bool IsZoneName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    const std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (const char c : part) {
      if (!IsAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-') {
        return false;
      }
    }
    start = slash + 1;
  }
  return true;
}

// The file's bytes; NotFound when it does not exist.
Result<std::string> ReadZoneFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return NotFound("no such file " + path);
    return Unavailable("cannot open " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  std::string bytes;
  Status status;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = InvalidArgument(path + " is not a regular file");
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxTzifBytes) {
    status = InvalidArgument(path + " is too large for a TZif file");
  } else {
    bytes.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    bytes.resize(got);
  }
  ::close(fd);
  if (!status.ok()) return status;
  return bytes;
}

Result<TimeZone> LoadFile(const std::string& path, std::string_view name) {
  Result<std::string> bytes = ReadZoneFile(path);
  if (!bytes.ok()) {
    const Status& s = bytes.status();
    return Status(s.code(), "time zone \"" + std::string(name) + "\": " + std::string(s.message()));
  }
  return TimeZone::FromTzif(*bytes, name);
}

std::shared_ptr<const ZoneRules> FixedRules(std::string name, std::int32_t offset) {
  auto z = std::make_shared<ZoneRules>();
  z->name = std::move(name);
  z->initial_offset = offset;
  return z;
}

const std::shared_ptr<const ZoneRules>& UtcRules() {
  static const std::shared_ptr<const ZoneRules> kUtc = FixedRules("UTC", 0);
  return kUtc;
}

}  // namespace

CivilTime CivilFromSeconds(std::int64_t seconds) {
  const std::int64_t days = FloorDiv(seconds, 86400);
  const auto rem = static_cast<int>(seconds - days * 86400);
  CivilTime c = CivilFromDays(days);
  c.hour = rem / 3600;
  c.minute = rem / 60 % 60;
  c.second = rem % 60;
  return c;
}

TimeZone::TimeZone() : rules_(UtcRules()) {}

TimeZone TimeZone::Utc() { return TimeZone(); }

Result<TimeZone> TimeZone::FromTzif(std::string_view bytes, std::string_view name) {
  auto z = std::make_shared<ZoneRules>();
  z->name = std::string(name);
  const Status s = internal::ParseTzif(bytes, *z);
  if (!s.ok()) {
    return InvalidArgument("time zone \"" + std::string(name) +
                           "\": bad TZif file: " + std::string(s.message()));
  }
  PrecomputeRule(*z);
  return TimeZone(std::move(z));
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  const std::string quoted = "time zone \"" + std::string(name) + "\"";
  if (name.empty()) return InvalidArgument("time zone: empty name");
  if (name.find('\0') != std::string_view::npos) return InvalidArgument(quoted + ": NUL in name");
  if (name == "UTC" || name == "Z") return Utc();
  if (name[0] == '+' || name[0] == '-') {
    const std::optional<std::int32_t> offset = ParseFixedOffset(name);
    if (!offset) {
      return InvalidArgument(quoted + ": a fixed offset is +HH:MM, -HHMM or +HH (hours 0..23)");
    }
    return TimeZone(FixedRules(FormatOffset(*offset), *offset));
  }
  if (name[0] == '/') return LoadFile(std::string(name), name);
  if (IsZoneName(name)) {
    Result<TimeZone> file = LoadFile(std::string(kZoneInfoDir) + "/" + std::string(name), name);
    if (file.ok() || file.status().code() != StatusCode::kNotFound) return file;
  }
  if (std::optional<PosixRule> rule = internal::ParsePosixTz(name)) {
    auto z = std::make_shared<ZoneRules>();
    z->name = std::string(name);
    z->initial_offset = rule->std_offset;
    z->rule = *rule;
    PrecomputeRule(*z);
    return TimeZone(std::move(z));
  }
  if (!IsZoneName(name)) return InvalidArgument(quoted + ": not a zone name");
  return NotFound(quoted + ": unknown zone (no file " + kZoneInfoDir + "/" + std::string(name) +
                  ")");
}

TimeZone TimeZone::System() {
  if (const char* tz = std::getenv("TZ"); tz != nullptr) {
    std::string_view name(tz);
    if (!name.empty() && name[0] == ':') name.remove_prefix(1);
    if (name.empty()) return Utc();
    Result<TimeZone> zone = Load(name);
    return zone.ok() ? *zone : Utc();
  }
  // Named after the link target when /etc/localtime points into the tree.
  std::string name = "localtime";
  std::error_code ec;
  const std::filesystem::path target = std::filesystem::read_symlink("/etc/localtime", ec);
  if (!ec) {
    const std::string t = target.string();
    const std::size_t at = t.find("zoneinfo/");
    if (at != std::string::npos) name = t.substr(at + 9);
  }
  Result<TimeZone> zone = LoadFile("/etc/localtime", name);
  return zone.ok() ? *zone : Utc();
}

const std::string& TimeZone::name() const { return rules_->name; }

std::int64_t TimeZone::ToUnixSeconds(std::int64_t local_seconds) const {
  const ZoneRules& z = *rules_;
  const std::int64_t local = Clamp(local_seconds);
  const std::vector<ZoneTransition>& listed = z.transitions;
  if (z.rule) {
    // Past the last listed change, and past the local times it skips or
    // repeats (those the listed table resolves), the rule governs.
    if (!z.rule->has_dst) {
      if (listed.empty() ||
          local >= listed.back().utc + std::max(listed.back().before, listed.back().after)) {
        return local - z.rule->std_offset;
      }
    } else if (listed.empty() ||
               local >= listed.back().utc + std::min(listed.back().before, listed.back().after)) {
      const std::int64_t year = YearOf(local);
      if (year > z.rule_table_years.first && year < z.rule_table_years.second) {
        return Resolve(local, z.rule_table, z.rule_table_initial);
      }
      const RuleWindow w = MakeRuleWindow(z, year);
      return Resolve(local, w.span(), w.initial);
    }
  }
  return Resolve(local, listed, z.initial_offset);
}

std::int32_t TimeZone::UtcOffsetSeconds(std::int64_t unix_seconds) const {
  const ZoneRules& z = *rules_;
  const std::int64_t utc = Clamp(unix_seconds);
  const std::vector<ZoneTransition>& listed = z.transitions;
  if (z.rule && (listed.empty() || utc >= listed.back().utc)) {
    if (!z.rule->has_dst) return z.rule->std_offset;
    const std::int64_t year = YearOf(utc + z.rule->std_offset);
    if (year > z.rule_table_years.first && year < z.rule_table_years.second) {
      return OffsetAt(utc, z.rule_table, z.rule_table_initial);
    }
    const RuleWindow w = MakeRuleWindow(z, year);
    return OffsetAt(utc, w.span(), w.initial);
  }
  return OffsetAt(utc, listed, z.initial_offset);
}

CivilTime TimeZone::ToCivil(std::int64_t unix_seconds) const {
  const std::int64_t utc = Clamp(unix_seconds);
  return CivilFromSeconds(utc + UtcOffsetSeconds(utc));
}

}  // namespace mailscope
