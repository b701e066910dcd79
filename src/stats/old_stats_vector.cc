#include "stats/old_stats_vector.h"

#include <fmt/format.h>

namespace mailscope::stats {
namespace {

using catalog::kOldStatsFields;
using catalog::OldStatsType;

bool IsU32(std::size_t col) { return kOldStatsFields[col].type == OldStatsType::kU32; }

void AppendUint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = fmt::format_to_n(buf, sizeof buf, "{}", v);
  out.append(buf, r.size);
}

}  // namespace

void OldStatsVector::Set(std::size_t col, const Value& v) {
  if (col < kTimevals) {
    tv[col] = v.type() == Value::Type::kTimeval ? v.as_timeval() : Timeval{};
    return;
  }
  std::uint64_t x = v.type() == Value::Type::kUint ? v.as_uint() : 0;
  n[col - kTimevals] = IsU32(col) ? static_cast<std::uint32_t>(x) : x;
}

Status OldStatsVector::Diff(const OldStatsVector& old, const OldStatsVector& now,
                            OldStatsVector& diff) {
  for (std::size_t i = 0; i < kTimevals; ++i) {
    std::int64_t us =
        (now.tv[i].sec - old.tv[i].sec) * 1'000'000 + (now.tv[i].usec - old.tv[i].usec);
    if (us < 0) {
      return Rejected("stats_shrank",
                      fmt::format("stats shrank: {} {}.{} < {}.{}", kOldStatsFields[i].name,
                                  now.tv[i].sec, now.tv[i].usec, old.tv[i].sec, old.tv[i].usec));
    }
    diff.tv[i] = {us / 1'000'000, us % 1'000'000};
  }
  for (std::size_t i = 0; i < now.n.size(); ++i) {
    if (now.n[i] < old.n[i]) {
      return Rejected("stats_shrank",
                      fmt::format("stats shrank: {} {} < {}", kOldStatsFields[i + kTimevals].name,
                                  now.n[i], old.n[i]));
    }
    diff.n[i] = now.n[i] - old.n[i];
  }
  return Status::Ok();
}

void OldStatsVector::Add(const OldStatsVector& d) {
  for (std::size_t i = 0; i < kTimevals; ++i) {
    tv[i].sec += d.tv[i].sec;
    tv[i].usec += d.tv[i].usec;
    if (tv[i].usec > 1'000'000) {
      tv[i].usec -= 1'000'000;
      tv[i].sec++;
    }
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    n[i] += d.n[i];
    if (IsU32(i + kTimevals)) n[i] = static_cast<std::uint32_t>(n[i]);
  }
}

void OldStatsVector::AppendColumn(std::string& out, std::size_t col) const {
  if (col < kTimevals) {
    // "%ld.%u": the usec part is printed as an unsigned int, unpadded.
    char buf[48];
    auto r = fmt::format_to_n(buf, sizeof buf, "{}.{}", tv[col].sec,
                              static_cast<std::uint32_t>(tv[col].usec));
    out.append(buf, r.size);
    return;
  }
  AppendUint(out, n[col - kTimevals]);
}

void OldStatsVector::AppendAll(std::string& out) const {
  for (std::size_t i = 0; i < kColumns; ++i) {
    if (i > 0) out += '\t';
    AppendColumn(out, i);
  }
}

double OldStatsVector::ColumnAsDouble(std::size_t col) const {
  if (col < kTimevals)
    return static_cast<double>(tv[col].sec) + static_cast<double>(tv[col].usec) / 1e6;
  return static_cast<double>(n[col - kTimevals]);
}

const std::string& OldStatsHeader() {
  static const std::string header = [] {
    std::string h;
    for (const auto& f : kOldStatsFields) {
      if (!h.empty()) h += '\t';
      h += f.name;
    }
    return h;
  }();
  return header;
}

}  // namespace mailscope::stats
