#include "query/stats_reader.h"

#include <fmt/format.h>

#include <charconv>
#include <iterator>
#include <limits>
#include <optional>
#include <vector>

#include "core/tab_escape.h"

namespace mailscope::query {
namespace {

using stats::Distribution;
using stats::Metric;
using stats::MetricNode;
using stats::NodeTotals;

constexpr std::string_view kClientName = "stats-reader-client";
constexpr unsigned kMajorVersion = 2;

struct Stat {
  enum class Kind { kCount, kSum, kMin, kMax, kAvg, kMedian, kVariance, kPercentile, kUnknown };
  Kind kind = Kind::kUnknown;
  double fraction = 0;
};

// strtod() on the text after '%': leading white space, an optional sign, a
// decimal or hexadecimal number, inf or nan; the longest valid prefix counts
// and no number at all is 0.
double ParseStrtod(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  s.remove_prefix(i);
  if (s.empty() || s[0] == '+' || s[0] == '-') return 0;
  auto format = std::chars_format::general;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    format = std::chars_format::hex;
    if (s.empty() || s[0] == '+' || s[0] == '-') return 0;  // "0x" alone reads as 0
  }
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, format);
  if (ec == std::errc::result_out_of_range) {
    // Overflow gives HUGE_VAL, underflow 0, as strtod does.
    const std::string_view text(s.data(), static_cast<std::size_t>(end - s.data()));
    const std::size_t e = text.find_first_of(format == std::chars_format::hex ? "pP" : "eE");
    const bool tiny = e != std::string_view::npos && e + 1 < text.size() && text[e + 1] == '-';
    v = tiny ? 0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc()) {
    v = 0;
  }
  return negative ? -v : v;
}

std::vector<Stat> ParseStats(std::span<const std::string_view> names) {
  std::vector<Stat> out;
  out.reserve(names.size());
  for (std::string_view n : names) {
    Stat s;
    if (n == "count") {
      s.kind = Stat::Kind::kCount;
    } else if (n == "sum") {
      s.kind = Stat::Kind::kSum;
    } else if (n == "min") {
      s.kind = Stat::Kind::kMin;
    } else if (n == "max") {
      s.kind = Stat::Kind::kMax;
    } else if (n == "avg") {
      s.kind = Stat::Kind::kAvg;
    } else if (n == "median") {
      s.kind = Stat::Kind::kMedian;
    } else if (n == "variance") {
      s.kind = Stat::Kind::kVariance;
    } else if (!n.empty() && n[0] == '%') {
      s.kind = Stat::Kind::kPercentile;
      s.fraction = ParseStrtod(n.substr(1)) / 100.0;
    }
    out.push_back(s);
  }
  return out;
}

void AppendStats(const Distribution& d, std::span<const Stat> stats, std::string& out) {
  auto it = std::back_inserter(out);
  for (const Stat& s : stats) {
    out += '\t';
    switch (s.kind) {
      case Stat::Kind::kCount:
        fmt::format_to(it, "{}", d.count());
        break;
      case Stat::Kind::kSum:
        fmt::format_to(it, "{}", d.sum());
        break;
      case Stat::Kind::kMin:
        fmt::format_to(it, "{}", d.min());
        break;
      case Stat::Kind::kMax:
        fmt::format_to(it, "{}", d.max());
        break;
      // fmt's fixed precision rounds like printf("%.2f"), locale-free.
      case Stat::Kind::kAvg:
        fmt::format_to(it, "{:.2f}", d.avg());
        break;
      case Stat::Kind::kMedian:
        fmt::format_to(it, "{}", d.median());
        break;
      case Stat::Kind::kVariance:
        fmt::format_to(it, "{:.2f}", d.variance());
        break;
      case Stat::Kind::kPercentile:
        fmt::format_to(it, "{}", d.Percentile(s.fraction));
        break;
      case Stat::Kind::kUnknown:
        break;  // Dovecot answers unknown stats with an empty value
    }
  }
}

void AppendNode(const Metric& metric, const NodeTotals& totals, std::span<const Stat> stats,
                std::string& out) {
  AppendStats(totals.duration, stats, out);
  const auto& fields = metric.definition().fields;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    out += '\t';
    AppendTabEscaped(out, fields[i]);
    AppendStats(totals.fields[i], stats, out);
  }
  out += '\n';
}

// Sub-metric line names are not escaped: TAB, LF, CR and space become '_'.
void AppendUnderscored(std::string& out, std::string_view s) {
  for (char c : s) out += (c == '\t' || c == '\n' || c == '\r' || c == ' ') ? '_' : c;
}

// `next`: the index in `totals` (MetricNode::Totals() of the metric's root)
// of the first node below `node`, moved past its subtree.
void AppendSubMetrics(const Metric& metric, const MetricNode& node,
                      std::span<const NodeTotals> totals, std::size_t& next, std::string& prefix,
                      std::span<const Stat> stats, std::string& out) {
  const std::size_t base = prefix.size();
  for (const auto& child : node.children()) {
    prefix.resize(base);
    prefix += '_';
    AppendUnderscored(prefix, child->sub_name());
    out += prefix;
    AppendNode(metric, totals[next++], stats, out);
    AppendSubMetrics(metric, *child, totals, next, prefix, stats, out);
  }
  prefix.resize(base);
}

std::optional<unsigned> ParseUint(std::string_view s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

void AppendStatsReaderDump(const stats::MetricsEngine& engine,
                           std::span<const std::string_view> stat_names, std::string& out) {
  const std::vector<Stat> stats = ParseStats(stat_names);
  std::string prefix;
  for (const auto& metric : engine.metrics()) {
    const std::vector<NodeTotals> totals = metric->root().Totals();
    AppendTabEscaped(out, metric->name());
    AppendNode(*metric, totals.front(), stats, out);
    prefix.clear();
    AppendUnderscored(prefix, metric->name());
    std::size_t next = 1;
    AppendSubMetrics(*metric, metric->root(), totals, next, prefix, stats, out);
  }
  out += '\n';
}

StatsReaderConnection::StatsReaderConnection(stats::MetricsEngine& engine, StatsReaderHooks hooks,
                                             std::uint32_t max_new_names)
    : engine_(engine), hooks_(std::move(hooks)), names_(NameInput::kStatsReader, max_new_names) {}

bool StatsReaderConnection::Feed(std::string_view bytes, std::string& out) {
  if (!open_) return false;
  pending_.append(bytes);
  std::size_t start = 0;
  while (open_) {
    const std::size_t lf = pending_.find('\n', start);
    if (lf == std::string::npos) break;
    const std::size_t len = lf - start;
    if (len + 1 > kStatsReaderMaxLineBytes) {
      Close("line too long");
      break;
    }
    FeedLine(std::span<char>(pending_.data() + start, len), out);
    start = lf + 1;
  }
  if (open_) {
    pending_.erase(0, start);
    // A full input buffer without a LF: Dovecot closes ("buffer full").
    if (pending_.size() >= kStatsReaderMaxLineBytes) Close("line too long");
  }
  if (!open_) {
    pending_.clear();
    pending_.shrink_to_fit();
  }
  return open_;
}

bool StatsReaderConnection::FeedLine(std::span<char> line, std::string& out) {
  if (!open_) return false;
  // Dovecot's i_stream_next_line() drops the CR of a CRLF.
  if (!line.empty() && line.back() == '\r') line = line.first(line.size() - 1);
  HandleLine(line, out);
  return open_;
}

void StatsReaderConnection::Close(std::string reason) {
  open_ = false;
  close_reason_ = std::move(reason);
}

void StatsReaderConnection::HandleLine(std::span<char> line, std::string& out) {
  SplitTabEscaped(line, args_);
  if (!handshake_done_) {
    Handshake(args_);
    return;
  }
  if (args_.empty()) {
    Close("Unexpectedly received empty line");
    return;
  }
  const std::string_view cmd = args_[0];
  const std::span<const std::string_view> args = std::span(args_).subspan(1);
  if (cmd == "DUMP") {
    AppendStatsReaderDump(engine_, args, out);
  } else if (cmd == "DUMP-RESET") {
    AppendStatsReaderDump(engine_, args, out);
    engine_.Reset();
  } else if (cmd == "METRICS-ADD") {
    MetricsAdd(args, out);
  } else if (cmd == "METRICS-REMOVE") {
    MetricsRemove(args, out);
  }
  // Unknown commands are ignored without a reply, as 2.3.19 does.
}

// connection.c: exactly VERSION, the expected peer name, our major version;
// the minor version must be a number but is not compared.
void StatsReaderConnection::Handshake(std::span<const std::string_view> args) {
  if (args.size() != 4 || args[0] != "VERSION") {
    Close("didn't reply with a valid VERSION line");
    return;
  }
  if (args[1] != kClientName) {
    Close(fmt::format("Connected to wrong socket type. We want '{}', but received '{}'",
                      kClientName, args[1]));
    return;
  }
  const auto major = ParseUint(args[2]);
  if (!major || !ParseUint(args[3])) {
    Close("didn't reply with a valid VERSION line");
    return;
  }
  if (*major != kMajorVersion) {
    Close(fmt::format("Socket supports major version {}, but we support only {}", *major,
                      kMajorVersion));
    return;
  }
  handshake_done_ = true;
}

// METRICS-ADD <name> <description> <fields> <group_by> <filter> <exporter>
// <exporter_include>: the settings checks, then the duplicate and exporter
// checks of stats_metrics_add_dynamic().
void StatsReaderConnection::MetricsAdd(std::span<const std::string_view> args, std::string& out) {
  if (args.size() < 7) {
    Close("METRICS-ADD: Not enough parameters");
    return;
  }
  stats::MetricSettings s;
  s.name = args[0];
  s.description = args[1];
  s.fields = args[2];
  s.group_by = args[3];
  s.filter = args[4];
  s.exporter = args[5];
  s.exporter_include = args[6];
  // The bound on metrics first, so that a full engine takes no new names.
  Status st = engine_.CheckDynamicRoom();
  auto def = st.ok() ? stats::MakeClientMetric(s, engine_.options().dynamic_limits, names_)
                     : Result<stats::MetricDefinition>(st);
  if (st.ok() && !def.ok()) st = def.status();
  if (st.ok() && engine_.Find(s.name) != nullptr) {
    st = AlreadyExists("Metric already exists");
  } else if (st.ok() && !s.exporter.empty() &&
             !(hooks_.exporter_exists && hooks_.exporter_exists(s.exporter))) {
    st = NotFound(fmt::format("Exporter '{}' does not exist.", s.exporter));
  }
  if (st.ok()) st = engine_.Add(std::move(*def));
  if (!st.ok()) {
    out += "-METRICS-ADD: ";
    out += st.message();
    out += '\n';
    return;
  }
  out += "+\n";
  if (hooks_.metrics_changed) hooks_.metrics_changed();
}

void StatsReaderConnection::MetricsRemove(std::span<const std::string_view> args,
                                          std::string& out) {
  if (args.empty()) {
    Close("METRICS-REMOVE: Not enough parameters");
    return;
  }
  Status st = engine_.Remove(args[0]);
  if (!st.ok()) {
    out += '-';
    out += st.message();  // "metrics '<name>' not found", the name not escaped
    out += '\n';
    return;
  }
  out += "+\n";
  if (hooks_.metrics_changed) hooks_.metrics_changed();
}

}  // namespace mailscope::query
