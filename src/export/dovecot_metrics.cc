#include "export/dovecot_metrics.h"

#include <fmt/format.h>

#include <string>
#include <vector>

namespace mailscope::exporter {
namespace {

using stats::GroupBy;
using stats::MetricDefinition;
using stats::MetricNode;

bool ValidName(std::string_view s, bool colon_ok) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

// A group_by field as a label name, in Prometheus' snake_case: Stalwart's
// camelCase keys split at their capitals (remoteIp: remote_ip). Dovecot's
// and Exim's names are snake_case already and stay as they are.
std::string LabelName(std::string_view field) {
  std::string out;
  out.reserve(field.size() + 4);
  for (std::size_t i = 0; i < field.size(); ++i) {
    const char c = field[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0 && out.back() != '_') out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

std::string Help(std::string_view what, const MetricDefinition& d) {
  std::string help(what);
  if (!d.description.empty()) {
    help += " of ";
    help += d.description;
  }
  return help;
}

// Labels of a path from the metric down to a node, outer level first.
using LabelPath = std::vector<std::pair<std::string, std::string>>;

std::vector<Label> View(const LabelPath& path) {
  std::vector<Label> v;
  v.reserve(path.size());
  for (const auto& [k, val] : path) v.emplace_back(k, val);
  return v;
}

// Pre-order through discrete levels with valid label names, as Dovecot walks.
template <typename Emit>
void WalkDiscrete(const MetricDefinition& d, const MetricNode& node, LabelPath& path, Emit&& emit) {
  emit(node, path);
  const std::size_t level = node.depth();
  if (level >= d.group_by.size()) return;
  const GroupBy& g = d.group_by[level];
  if (g.quantized() || !ValidName(g.field, false)) return;
  for (const auto& child : node.children()) {
    path.emplace_back(LabelName(g.field), child->sub_name());
    WalkDiscrete(d, *child, path, emit);
    path.pop_back();
  }
}

// Durations count microseconds in both kinds of metric (Dovecot's values
// as sent; mailscope's in base units), so the layout is the same.
void RenderCounters(const MetricDefinition& d, const std::string& name, const MetricNode& root,
                    MetricsWriter& w) {
  LabelPath path;
  // openmetrics_levels = "last": the innermost level's series only.
  auto shown = [&](const MetricNode& n) {
    return !d.openmetrics_last_level_only || n.depth() == d.group_by.size();
  };
  w.Family(name, "counter", Help("Total number of all events of this kind", d));
  WalkDiscrete(d, root, path, [&](const MetricNode& n, const LabelPath& p) {
    if (shown(n)) w.Sample(std::span<const Label>(View(p)), n.count());
  });
  w.Family(name + "_duration_seconds", "counter",
           Help("Total duration of all events of this kind", d), "seconds");
  WalkDiscrete(d, root, path, [&](const MetricNode& n, const LabelPath& p) {
    if (shown(n)) {
      w.Sample(std::span<const Label>(View(p)), static_cast<double>(n.duration_sum()) / 1e6);
    }
  });
}

// One histogram group: the quantized children of `parent`. `seconds`: the
// grouped numbers count microseconds, shown in seconds.
void RenderHistogramGroup(const MetricDefinition& d, const MetricNode& parent,
                          const LabelPath& outer, bool seconds, MetricsWriter& w) {
  const GroupBy& g = d.group_by.back();
  const bool is_duration = g.field == "duration";
  const std::size_t buckets = g.bucket_count();
  std::vector<std::uint64_t> counts(buckets, 0);
  std::uint64_t total = 0;
  double sum = 0;
  bool have_sum = is_duration;
  int field_index = -1;
  for (std::size_t i = 0; i < d.fields.size(); ++i)
    if (d.fields[i] == g.field) field_index = static_cast<int>(i);
  have_sum = have_sum || field_index >= 0;
  for (const auto& child : parent.children()) {
    if (child->bucket() < 0 || static_cast<std::size_t>(child->bucket()) >= buckets) continue;
    const std::uint64_t n = child->count();
    counts[static_cast<std::size_t>(child->bucket())] += n;
    total += n;
    if (is_duration) {
      sum += static_cast<double>(child->duration_sum()) / 1e6;
    } else if (field_index >= 0) {
      const double v = static_cast<double>(child->field_sum(static_cast<std::size_t>(field_index)));
      sum += seconds ? v / 1e6 : v;
    }
  }
  std::vector<Label> labels = View(outer);
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < buckets; ++b) {
    cumulative += counts[b];
    std::string le;
    if (b + 1 == buckets) {
      le = "+Inf";
    } else {
      const double edge = static_cast<double>(g.Edge(b));
      le = seconds ? fmt::format("{}", edge / 1e6) : fmt::format("{}", edge);
    }
    labels.emplace_back("le", le);
    w.Suffixed("_bucket", labels, static_cast<double>(cumulative));
    labels.pop_back();
  }
  if (have_sum) w.Suffixed("_sum", labels, sum);
  w.Suffixed("_count", labels, static_cast<double>(total));
}

void RenderHistogram(const MetricDefinition& d, const MetricNode& node, LabelPath& path,
                     bool seconds, MetricsWriter& w) {
  const std::size_t level = node.depth();
  if (level + 1 == d.group_by.size()) {
    RenderHistogramGroup(d, node, path, seconds, w);
    return;
  }
  const GroupBy& g = d.group_by[level];
  for (const auto& child : node.children()) {
    path.emplace_back(LabelName(g.field), child->sub_name());
    RenderHistogram(d, *child, path, seconds, w);
    path.pop_back();
  }
}

}  // namespace

void RenderMetrics(const stats::MetricsEngine& engine, MetricsWriter& w) {
  for (const auto& metric : engine.metrics()) {
    const MetricDefinition& d = metric->definition();
    // Dovecot's names as Dovecot checks them; an override is valid already.
    if (d.openmetrics_name.empty() && !ValidName(d.name, true)) continue;
    const std::string name = d.OpenMetricsName();
    bool histogram = !d.group_by.empty() && d.group_by.back().quantized();
    for (std::size_t i = 0; histogram && i + 1 < d.group_by.size(); ++i)
      histogram = !d.group_by[i].quantized() && ValidName(d.group_by[i].field, false);
    if (!histogram) {
      RenderCounters(d, name, metric->root(), w);
      continue;
    }
    const std::size_t last = d.group_by.size() - 1;
    const bool seconds = d.group_by[last].field == "duration" ||
                         (d.base_units() && KindOf(metric->group_unit(last)) == UnitKind::kTime);
    // A mailscope histogram learns its field's unit from the first value: until
    // then its `le` would be plain numbers, and the next scrape would change
    // them to seconds. An empty one waits for its first value.
    if (d.base_units() && !seconds && metric->group_unit(last) == Unit::kNone &&
        metric->root().count() == 0) {
      continue;
    }
    w.Family(name, "histogram", Help("Histogram", d));
    LabelPath path;
    RenderHistogram(d, metric->root(), path, seconds, w);
  }
}

}  // namespace mailscope::exporter
