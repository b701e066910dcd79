// The server side of Dovecot 2.3's stats-reader protocol (reference
// dovecot-protocols.md §3.7): what `doveadm stats dump/add/remove` speak to
// the stats process. One StatsReaderConnection per accepted connection turns
// the bytes read into replies; the network layer only moves bytes. Pure: no
// sockets; loop thread only (reads and changes the MetricsEngine).
//
// Byte-compatible with 2.3.19: the handshake, the 1024-byte line limit,
// DUMP/DUMP-RESET line layout (tab-escaped metric names, `<parent>_<sub>`
// names with TAB/LF/CR/space turned into '_', the empty last line), the
// count/sum/min/max/avg numbers and their formatting, METRICS-ADD/REMOVE
// replies and the errors "Metric already exists", "metrics '<name>' not
// found", "Metric name can't be empty", "metric <name> { filter } is empty -
// will not match anything" and the group_by texts. Not byte-compatible:
//  - median and %<p> are sketch estimates within 1% of the value at the rank
//    Dovecot uses (exact at the lowest and highest rank), and variance is
//    exact over all values (MetricsEngine); Dovecot's own values come from a
//    480-sample reservoir.
//  - filter syntax errors are mailscope's parser texts, with a position
//    ("event filter: syntax error at 8, unexpected ...").
//  - a METRICS-ADD naming an exporter that does not exist is refused with
//    "-METRICS-ADD: Exporter '<name>' does not exist." (2.3.21's check);
//    2.3.19 crashes.
//  - count is printed as u64; Dovecot's is a u32 that wraps.
//  - METRICS-ADD is bounded: at most MetricsOptions::max_dynamic_metrics
//    metrics added at run time ("-METRICS-ADD: Too many metrics added at run
//    time: 100 (stats.max_dynamic_metrics); remove one first"), each with at
//    most ClientMetricLimits fields and group_by levels, a filter of at most
//    filter::kMaxClientFilterBytes, and the names new to mailscope that it
//    brings charged to the connection's NameBudget ("-METRICS-ADD: event
//    filter: no room for its 3 new names (...)..."). Dovecot has no bound.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/names.h"
#include "core/status.h"
#include "stats/metrics_engine.h"

namespace mailscope::query {

// Longest request line, LF included: Dovecot's input buffer. A longer line
// closes the connection.
inline constexpr std::size_t kStatsReaderMaxLineBytes = 1024;

// Sent as soon as a client connects, before reading anything.
inline constexpr std::string_view kStatsReaderGreeting = "VERSION\tstats-reader-server\t2\t0\n";
inline std::string_view StatsReaderGreeting() { return kStatsReaderGreeting; }

// Appends a DUMP reply: one line per metric and sub-metric (depth-first,
// creation order), each with the requested `stats` (count sum min max avg
// median variance %<p>; unknown ones give an empty value) of the duration
// and of every field, then an empty line.
void AppendStatsReaderDump(const stats::MetricsEngine& engine,
                           std::span<const std::string_view> stats, std::string& out);

struct StatsReaderHooks {
  // Whether an event_exporter of this name exists. Unset: none exists.
  std::function<bool(std::string_view name)> exporter_exists;
  // After a successful METRICS-ADD or METRICS-REMOVE (writers need a new FILTER).
  std::function<void()> metrics_changed;
};

// One client connection. Thread-compatible; the engine outlives it.
class StatsReaderConnection {
 public:
  // METRICS-ADD may add `max_new_names` names new to the name table.
  explicit StatsReaderConnection(stats::MetricsEngine& engine, StatsReaderHooks hooks = {},
                                 std::uint32_t max_new_names = kDefaultMaxNewNamesPerClient);

  // Consumes bytes read from the client and appends the replies to `out`.
  // Returns false once the connection must be closed (send `out` first);
  // later calls then do nothing. Closes on a bad handshake, an empty line,
  // a line over the limit and a METRICS-ADD or METRICS-REMOVE with too few
  // arguments, as Dovecot does.
  bool Feed(std::string_view bytes, std::string& out);
  // The same for one line already framed by the caller (without its LF;
  // unescaped in place). REQUIRES: the caller enforces the line limit, i.e.
  // at most kStatsReaderMaxLineBytes - 1 bytes.
  bool FeedLine(std::span<char> line, std::string& out);

  bool open() const { return open_; }
  // Why the connection was closed, for the log; empty while open.
  const std::string& close_reason() const { return close_reason_; }
  // Bytes held of an incomplete line.
  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  void HandleLine(std::span<char> line, std::string& out);
  void Handshake(std::span<const std::string_view> args);
  void MetricsAdd(std::span<const std::string_view> args, std::string& out);
  void MetricsRemove(std::span<const std::string_view> args, std::string& out);
  void Close(std::string reason);

  stats::MetricsEngine& engine_;
  StatsReaderHooks hooks_;
  NameBudget names_;
  std::string pending_;
  std::vector<std::string_view> args_;
  bool handshake_done_ = false;
  bool open_ = true;
  std::string close_reason_;
};

}  // namespace mailscope::query
