#include "stats/old_stats_vector.h"

#include <fmt/format.h>

namespace mailscope::stats {
namespace {

using catalog::kOldStatsFields;
using catalog::OldStatsType;

void AppendUint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = fmt::format_to_n(buf, sizeof buf, "{}", v);
  out.append(buf, r.size);
}

}  // namespace

Status OldStatsVector::ShrankError(const OldStatsVector& old, const OldStatsVector& now,
                                   std::uint32_t present) {
  for (std::size_t i = 0; i < kTimevals; ++i) {
    if (((present >> i) & 1u) == 0) continue;
    if (DiffUsecs(old, now, i) < 0) {
      return Rejected("stats_shrank",
                      fmt::format("stats shrank: {} {}.{} < {}.{}", kOldStatsFields[i].name,
                                  now.tv[i].sec, now.tv[i].usec, old.tv[i].sec, old.tv[i].usec));
    }
  }
  for (std::size_t i = 0; i < now.n.size(); ++i) {
    if (((present >> (i + kTimevals)) & 1u) == 0) continue;
    if (now.n[i] < old.n[i]) {
      return Rejected("stats_shrank",
                      fmt::format("stats shrank: {} {} < {}", kOldStatsFields[i + kTimevals].name,
                                  now.n[i], old.n[i]));
    }
  }
  return Rejected("stats_shrank", "stats shrank");
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
