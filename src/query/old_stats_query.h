// The request side of Dovecot's old-stats socket protocol (EXPORT and RESET,
// as doveadm oldstats speaks it) and the TSV answers, byte-identical to
// Dovecot 2.3.19's. Pure: no sockets; loop thread only (reads the store).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/ip_address.h"
#include "core/status.h"
#include "stats/old_stats_store.h"

namespace mailscope::query {

// Longest request line Dovecot's old-stats accepts.
inline constexpr std::size_t kOldStatsMaxRequestBytes = 1024;

struct OldStatsFilter {
  std::optional<std::string> user;     // wildcard
  std::optional<std::string> domain;   // wildcard
  std::optional<std::string> session;  // exact id
  IpRange ip;                          // bits == 0: no IP filter
  std::int64_t since = 0;              // keep last_update >= since
  bool connected = false;
};

struct OldStatsRequest {
  enum class Kind { kExport, kReset } kind = Kind::kExport;
  stats::OldLevel level = stats::OldLevel::kGlobal;
  OldStatsFilter filter;
};

// Parses one request line (without LF; unescaped in place). Errors are the
// ones after which Dovecot closes the connection without a reply:
// "Missing level parameter", "Invalid level", "Invalid ip filter",
// "Invalid since filter", "Unknown command". Unknown filters are ignored.
Result<OldStatsRequest> ParseOldStatsRequest(std::span<char> line);

// Parses filter words as `doveadm oldstats dump` and `mailscope dump` take
// them ("connected", "user=ali*", ...).
Result<OldStatsFilter> ParseOldStatsFilter(std::span<const std::string> words);

// Appends the complete reply to an EXPORT: a bare "\n" when there is nothing
// to walk, else the header, the matching rows and an empty line.
void AnswerExport(const stats::OldStatsStore& store, const OldStatsRequest& request,
                  std::string& out);

// The fixed columns of a level, TAB-joined (without the statistics columns).
std::string_view OldStatsFixedHeader(stats::OldLevel level);

}  // namespace mailscope::query
