// MetricsEngine: the metrics of Dovecot 2.3's stats process (reference
// dovecot-protocols.md §3.3, §3.5, §3.6) over mailscope Events. Metrics are
// defined by Dovecot's metric { } settings (from mailscope's config or
// METRICS-ADD); Process() feeds each matching event into the metric's
// duration and field distributions and its group_by sub-metrics. Readers
// (stats-reader DUMP, OpenMetrics) walk the result with metrics() and
// MetricNode. Pure logic: no I/O, no clock.
//
// Where it follows Dovecot 2.3.19 exactly: unnamed events are never counted;
// `duration` and every configured field are looked up on the event, its
// parents, then the global event and its parents; integers count as their
// value (negative ones wrap to u64 as in Dovecot), timevals as sec*10^6+usec,
// strings as 0, missing fields not at all; group_by sub-metrics, their names
// and their creation order; count, sum, min, max and avg. Where it differs:
//  - median and percentiles come from a QuantileSketch (1% relative error)
//    at the sample ranks Dovecot uses, instead of a 480-sample reservoir; the
//    rank 0 and the last rank are exact (min, max). Dovecot's own values are
//    exact only below 480 events and random past that.
//  - variance is the exact population variance over all values (kept as
//    sums of values and squares), not Dovecot's reservoir estimate; equal to
//    Dovecot's below 480 events up to floating-point rounding.
//  - an event without any `duration` field counts with duration 0 (Dovecot's
//    stats process always adds one; other sources may carry none).
//  - a linear group_by whose max-min is not a multiple of step, a step of 0,
//    and exponential bounds beyond 64 bits are rejected at definition time
//    (2.3.19 panics, divides by zero or overflows on them).
//  - sub-metrics per metric are capped (MetricsOptions); Dovecot has no bound.
//  - string lists: Value has no list type (the stats-writer decoder joins
//    the elements with TAB), so a list groups as one string value.
//  - long string group values are keyed by a 128-bit hash seeded per process
//    (HashBytes128; Dovecot: SHA-1).
//  - Value types Dovecot lacks: kUint as its value, kBool as 0/1, kDouble as
//    its integer part (saturated); record columns are fields like the filter's.
//
// Units. A metric of Dovecot's dialect (dovecot.conf, METRICS-ADD) counts
// every value as sent, so `doveadm stats dump` shows what Dovecot shows; its
// only extra cost is one branch per event. A metric of mailscope's dialect
// ([metrics.NAME]) serves every source, so it counts each number that its
// decoder tagged with a unit (Value::unit()) in the base unit of the unit's
// kind: microseconds for time, bytes for size (15 tagged ms counts 15000,
// 1.5 tagged s 1500000; saturated, a double truncated after the scaling).
// This applies to `duration`, the metric's fields and the numbers its
// group_by levels group by (quantized bounds count base units too). Each of
// these learns its unit from the first tagged value it gets (`duration` is
// microseconds from the start) and keeps it: a later value of the other kind
// (bytes into a time field) is not counted there (a `duration` counts as 0,
// so the event count stays right; a group_by level leaves the event in the
// parent node) and is counted once per event in Metric::unit_conflicts().
// Untagged values count as they are, taken to be in the base unit already.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/names.h"
#include "core/status.h"
#include "filter/filter.h"
#include "stats/sketch.h"

namespace mailscope::stats {

// One level of a metric's group_by setting (reference §3.5).
struct GroupBy {
  enum class Kind { kDiscrete, kLinear, kExponential };

  std::string field;
  NameId field_id = kNoName;
  Kind kind = Kind::kDiscrete;
  // kLinear: min, max, step. kExponential: min, max (exponents), base (2|10).
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::int64_t step = 0;
  std::int64_t base = 0;

  bool quantized() const { return kind != Kind::kDiscrete; }
  // Buckets of a quantized level: bucket 0 is (-inf, Edge(0)], bucket i is
  // (Edge(i-1), Edge(i)], the last one (Edge(last), +inf). 0 for kDiscrete.
  std::size_t bucket_count() const;
  // REQUIRES: quantized(), i < bucket_count() - 1.
  std::int64_t Edge(std::size_t i) const;
  // The bucket holding `value`. REQUIRES: quantized().
  std::size_t BucketOf(std::int64_t value) const;
  // Dovecot's bucket label: "<field>_ninf_<max>", "<field>_<min+1>_<max>",
  // "<field>_<min+1>_inf" (e.g. duration_101_1000). REQUIRES: quantized().
  std::string BucketName(std::size_t bucket) const;
};

// Parses Dovecot's group_by setting: specs separated by spaces, each
// `<field>`, `<field>:discrete`, `<field>:linear:<min>:<max>:<step>` or
// `<field>:exponential:<min>:<max>:<base>`. kInvalidArgument with Dovecot's
// texts ("group_by 'linear' aggregate function takes 3 int args", "...
// arguments must be >= 0", "... min must be < max (5 must be < 3)", "...
// min+step must be <= max (...)", "group_by 'exponential' aggregate function
// base must be one of: 2, 10 (base=3)", "unknown aggregation function 'x' on
// field 'f'", "group_by 'discrete' aggregate function does not take any
// args") plus ours for what 2.3.19 cannot survive: "group_by 'linear'
// aggregate function step must be > 0", "... max-min must be a multiple of
// step (10 is not a multiple of 3)", "group_by 'exponential' aggregate
// function max must be <= 18 for base 10" (62 for base 2).
Result<std::vector<GroupBy>> ParseGroupBy(std::string_view text);

// Dovecot's sub-metric name for a value: UTF-8 sanitized to at most 32 code
// points (control characters and invalid bytes become U+FFFD; a longer value
// keeps 31 code points and gets U+2026), cut at the first NUL. Metrics of
// mailscope's dialect allow kMailscopeSubNameMaxCodePoints, so that values
// such as IPv6 addresses (39 characters) keep apart.
inline constexpr int kDovecotSubNameMaxCodePoints = 32;
inline constexpr int kMailscopeSubNameMaxCodePoints = 256;
std::string SubMetricName(std::string_view value,
                          int max_code_points = kDovecotSubNameMaxCodePoints);

// The metric { } settings as Dovecot text (dovecot.conf, METRICS-ADD).
struct MetricSettings {
  std::string name;
  std::string description;
  std::string filter;
  std::string fields;    // space-separated field names
  std::string group_by;  // see ParseGroupBy
  std::string exporter;  // an event_exporter name, or empty
  std::string exporter_include = "name hostname timestamps categories fields";
  // kDovecot for anything that comes from or goes to Dovecot. Also decides
  // units (see the top of this file) and naming on /metrics:
  // dovecot_<name> for kDovecot, mailscope_<name> for kMailscope.
  filter::Dialect dialect = filter::Dialect::kDovecot;
  // The metric's name on /metrics instead of the prefixed one; empty: none.
  std::string openmetrics_name;
  // Which group_by levels are series on /metrics: "all" (the metric's total
  // and every level, as Dovecot shows them) or "last" (the innermost level
  // only, so that sum() over the family is the total, as Prometheus expects).
  std::string openmetrics_levels = "all";

  friend bool operator==(const MetricSettings&, const MetricSettings&) = default;
};

// A validated metric definition. Immutable once added.
struct MetricDefinition {
  std::string name;
  std::string description;
  std::string filter_text;
  filter::Filter filter;
  std::vector<std::string> fields;
  std::vector<NameId> field_ids;  // parallel to `fields`
  std::vector<GroupBy> group_by;
  std::string exporter;
  std::vector<std::string> exporter_include;
  filter::Dialect dialect = filter::Dialect::kDovecot;
  std::string openmetrics_name;              // as set, empty when none
  bool openmetrics_last_level_only = false;  // openmetrics_levels = "last"

  // Whether values count in base units (kMailscope; see the top of this file).
  bool base_units() const { return dialect == filter::Dialect::kMailscope; }
  // The family name on /metrics: openmetrics_name, else "dovecot_<name>"
  // (kDovecot) or "mailscope_<name>" (kMailscope). Not checked for validity.
  std::string OpenMetricsName() const;
};

// Validates like Dovecot's settings check. kInvalidArgument with its texts:
// "Metric name can't be empty", "metric <name> { filter } is empty - will
// not match anything", the filter parser's "event filter: ..." and
// ParseGroupBy's errors; and ours: "openmetrics_name '<x>' is not a valid
// metric name" unless it matches [a-zA-Z_:][a-zA-Z0-9_:]* and ends in none
// of the suffixes the formats reserve (_total, _created, _bucket, _count,
// _sum, _info). Whether `exporter` exists is the caller's check.
// Names are interned unbudgeted: for trusted settings (configuration).
// group_by is checked before the filter (2.3.19 checks the filter first: a
// setting wrong in both gets the other error).
Result<MetricDefinition> MakeMetric(const MetricSettings& settings);

// What a client's metric (METRICS-ADD) may hold.
struct ClientMetricLimits {
  std::size_t max_fields = 32;
  std::size_t max_group_by = 8;
};

// MakeMetric() for a metric a client defines: its filter is a client's
// (filter::ParseClientFilter: length limit, new names charged to `names`),
// its field and group_by names are charged to `names` too, all or none, and
// kResourceExhausted past `limits`: "Too many fields: 40, a metric added at
// run time may have 32 (stats.max_dynamic_metric_fields)", "Too many
// group_by levels: ..." and "No room for the new field name '<x>': ...".
Result<MetricDefinition> MakeClientMetric(const MetricSettings& settings,
                                          const ClientMetricLimits& limits, NameBudget& names);

// count, sum, min, max exactly; median and percentiles through a sketch;
// exact variance. Values are u64 as in Dovecot's stats_dist. Thread-compatible.
class Distribution {
 public:
  Distribution() = default;
  // With a copy of `empty_sketch` (its relative error and bucket bound).
  explicit Distribution(const QuantileSketch& empty_sketch) : sketch_(empty_sketch) {}

  void Add(std::uint64_t value);
  // REQUIRES: same relative_error.
  void Merge(const Distribution& other);
  // Empties it; keeps its allocations.
  void Reset();

  std::uint64_t count() const { return count_; }
  std::uint64_t sum() const { return sum_; }  // wraps at 2^64 like Dovecot's
  std::uint64_t min() const { return min_; }  // 0 when empty
  std::uint64_t max() const { return max_; }  // 0 when empty
  double avg() const;                         // sum/count, 0 when empty
  // Population variance of all values, 0 when empty.
  double variance() const;
  // Dovecot's median: the mean of the two middle ranks (truncated).
  std::uint64_t median() const;
  // Dovecot's percentile for fraction f (0.95 for %95): the value at rank
  // floor(n*f), one lower on exact boundaries; f <= 0 (or NaN) gives min,
  // f >= 1 max. 0 when empty.
  std::uint64_t Percentile(double f) const;
  // Estimate of the value at 0-based rank r (r = 0 and r >= count-1 exact).
  std::uint64_t ValueAtRank(std::uint64_t r) const;
  // The sketch of every value added (a copy when values wait to be folded in).
  QuantileSketch sketch() const;
  std::size_t memory_bytes() const;

 private:
  __extension__ typedef unsigned __int128 U128;
  // Values wait here and go into sketch_ a batch at a time: a sketch's
  // buckets span KiBs, so one value costs about a cache miss, and a batch
  // lets those misses overlap (values of one field often share buckets). The
  // sketch does not depend on the order of its values, so every result is the
  // same as adding each value at once.
  static constexpr std::uint32_t kPendingValues = 16;
  void FoldPending();
  // sketch_ and pending_: a copy when values are pending, else sketch_.
  const QuantileSketch& Folded(QuantileSketch& scratch) const;

  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  U128 sum_exact_ = 0;
  // The sum of squares, exact: squares_high_ * 2^128 + squares_ (each square is
  // below 2^128, so fewer than 2^64 values cannot carry past the high word).
  U128 squares_ = 0;
  std::uint64_t squares_high_ = 0;
  std::uint32_t pending_count_ = 0;
  std::uint64_t pending_[kPendingValues] = {};
  QuantileSketch sketch_;
};

// What a MetricNode counted: its own values and its subtree's.
struct NodeTotals {
  Distribution duration;
  std::vector<Distribution> fields;  // parallel to MetricDefinition::fields
};

// A metric or one of its sub-metrics. Owned by its Metric.
class MetricNode {
 public:
  // Sanitized group value or bucket name; empty for the metric itself.
  const std::string& sub_name() const { return sub_name_; }
  // 0 for the metric; a sub-metric of group_by level k has depth k+1.
  std::size_t depth() const { return depth_; }
  // The bucket of a quantized level's sub-metric, else -1.
  std::int64_t bucket() const { return bucket_; }
  // Every event counted here, as Dovecot counts an event at its metric and
  // at each sub-metric it groups into. An event's values are added only to
  // the deepest node it reaches, so these add up the node's own values and
  // its subtree's when read (exact: every statistic, the sketch too, is the
  // same whatever the order of its values).
  // Totals(): this node's, then those of every node below it in the order
  // ForEachNode() visits them; each node is merged into its parent once, so
  // a reader of the whole tree (a dump) calls it once, at the root.
  std::vector<NodeTotals> Totals() const;
  Distribution duration() const;
  // Of MetricDefinition::fields[i]. REQUIRES: i < that size.
  Distribution field(std::size_t i) const;
  // duration().count() and .sum(), without the sketches.
  std::uint64_t count() const;
  std::uint64_t duration_sum() const;
  // field(i).sum(), without the sketches.
  std::uint64_t field_sum(std::size_t i) const;
  // Sub-metrics in creation order.
  std::span<const std::unique_ptr<MetricNode>> children() const { return children_; }

 private:
  friend class MetricsEngine;
  friend class Metric;
  MetricNode(std::string sub_name, std::size_t depth, std::int64_t bucket, std::size_t fields,
             const QuantileSketch& prototype);
  void Reset();
  std::size_t memory_bytes() const;
  void AppendTotals(std::vector<NodeTotals>& out) const;
  // own(n) added up over this node and every node below it (wrapping, as
  // Distribution::sum() does).
  template <typename Own>
  std::uint64_t SubtreeSum(const Own& own) const {
    std::uint64_t n = own(*this);
    for (const auto& child : children_) n += child->SubtreeSum(own);
    return n;
  }

  std::string sub_name_;
  std::size_t depth_;
  std::int64_t bucket_;
  // The values of the events that went no deeper than this node (its group
  // field missing, not groupable, or no room for a sub-metric). Adding each
  // value once instead of once per level: 866.5 -> 762.9 M instructions for
  // the capture mix with the 12 metrics (callgrind, step 2).
  Distribution duration_;
  std::vector<Distribution> fields_;
  std::vector<std::unique_ptr<MetricNode>> children_;
  // Hashes encoded group values; looked up by string_view, so finding a
  // child builds no std::string.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept;
  };
  struct KeyEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
  };
  // Encoded group value -> index in children_.
  boost::unordered_flat_map<std::string, std::uint32_t, KeyHash, KeyEqual> index_;
  // A quantized level of at most kMaxDirectBuckets buckets finds its
  // sub-metrics here instead of index_: bucket -> 1 + index in children_, 0
  // for none (no key to build and hash: the imap_command_duration and
  // imap_command_bytes_out levels of the 12 metrics).
  static constexpr std::size_t kMaxDirectBuckets = 256;
  std::vector<std::uint32_t> by_bucket_;
};

// One metric: its definition and its tree of nodes. Owned by the MetricsEngine.
class Metric {
 public:
  const MetricDefinition& definition() const { return definition_; }
  const std::string& name() const { return definition_.name; }
  const MetricNode& root() const { return *root_; }
  bool configured() const { return configured_; }
  // Sub-metrics at all levels.
  std::size_t sub_metric_count() const { return sub_metric_count_; }
  // Times a new group value got no sub-metric because of
  // MetricsOptions::max_sub_metrics (once per event and level).
  std::uint64_t sub_metrics_dropped() const { return sub_metrics_dropped_; }

  // The unit the distributions count in: the base unit of the kind learned
  // (kMicroseconds, kBytes), kNone while unknown and always for a metric
  // that counts values as sent (!definition().base_units()).
  Unit duration_unit() const { return units_[0]; }
  // REQUIRES: i < definition().fields.size().
  Unit field_unit(std::size_t i) const { return units_[1 + i]; }
  // Of the numbers group_by level `level` groups by.
  // REQUIRES: level < definition().group_by.size().
  Unit group_unit(std::size_t level) const { return units_[1 + definition_.fields.size() + level]; }
  // Values not counted because their unit kind differs from the one learned
  // (once per event and field, duration or level).
  std::uint64_t unit_conflicts() const { return unit_conflicts_; }

 private:
  friend class MetricsEngine;
  Metric(MetricDefinition definition, bool configured, const QuantileSketch& prototype);

  MetricDefinition definition_;
  bool configured_;
  std::unique_ptr<MetricNode> root_;
  std::size_t sub_metric_count_ = 0;
  std::uint64_t sub_metrics_dropped_ = 0;
  // duration, then each field, then each group_by level.
  std::vector<Unit> units_;
  std::uint64_t unit_conflicts_ = 0;
  // Slots of the engine's per-event lookups (MetricsEngine::Rebuild()): of
  // duration, of each of definition_.fields and of each group_by level.
  std::uint32_t duration_slot_ = 0;
  std::vector<std::uint32_t> field_slots_;
  std::vector<std::uint32_t> group_slots_;
  // The filter matches a named event exactly when its name is one the
  // filter lists (Filter::EventNames::exact), so the name index decides.
  bool name_decides_ = false;
  // The gate of the engine that can rule the event out before the filter
  // runs (MetricsEngine::Gate), -1 for none, and which of its values the
  // filter allows (bit i: values[i]).
  int gate_ = -1;
  std::uint64_t gate_values_ = 0;
};

struct MetricsOptions {
  // Sub-metrics (all group_by levels together) per metric. Past it, events
  // still count in the existing nodes, but new group values get no node and
  // are counted in Metric::sub_metrics_dropped(). Dovecot has no bound; a
  // node costs ~300 bytes plus ~340 bytes and up to 16 KiB of sketch per
  // distribution (duration and each field).
  std::size_t max_sub_metrics = 1000;
  // Metrics added at run time (METRICS-ADD, `doveadm stats add`) held at
  // once; Dovecot has no bound. Each costs at least a few KiB and every event
  // is tested against its filter, and removing one frees it but not the
  // names it added, so a client adding and removing metrics without end is
  // held by its name budget and the name table's.
  std::size_t max_dynamic_metrics = 100;
  // What each of them may hold (MakeClientMetric()).
  ClientMetricLimits dynamic_limits{};
  // Of every distribution's quantile sketch.
  double relative_error = QuantileSketch::kDefaultRelativeError;
  int sketch_max_buckets = QuantileSketch::kDefaultMaxBuckets;
};

// Loop thread only. Owns the metrics and all their state.
class MetricsEngine final : private filter::FieldSource {
 public:
  enum class Origin { kConfig, kDynamic };
  // Called for each matching metric that has an exporter, after counting.
  // It must not add or remove metrics.
  using ExportSink = std::function<void(const Metric&, const Event&)>;

  explicit MetricsEngine(MetricsOptions options = {});

  // Configured metrics go after the other configured ones and before the
  // dynamic ones; dynamic ones go last. kAlreadyExists "Metric already
  // exists" when the name is taken; for a dynamic one, CheckDynamicRoom()'s
  // error when there are MetricsOptions::max_dynamic_metrics already.
  Status Add(MetricDefinition definition, Origin origin = Origin::kDynamic);
  // OK while a dynamic metric may be added, else kResourceExhausted "Too
  // many metrics added at run time: 100 (stats.max_dynamic_metrics); remove
  // one first".
  Status CheckDynamicRoom() const;
  std::size_t dynamic_metric_count() const;
  // Removes a metric of either origin. kNotFound "metrics '<name>' not found".
  Status Remove(std::string_view name);
  const Metric* Find(std::string_view name) const;

  // Counts one event (Dovecot: a BEGIN or EVENT) in every matching metric.
  // Unnamed events are ignored, as the 2.3.19 stats server does.
  void Process(const Event& event);
  // DUMP-RESET: every distribution emptied; sub-metrics stay.
  void Reset();

  // All metric filters merged in metric order: Dovecot's FILTER for writers.
  const filter::Filter& CombinedFilter() const { return combined_; }
  // In order: configured, then dynamic.
  std::span<const std::unique_ptr<Metric>> metrics() const { return metrics_; }
  // Calls visit(const Metric&, const MetricNode&) for every metric and then
  // its sub-metrics depth-first in creation order (DUMP's line order).
  template <typename Visit>
  void ForEachNode(Visit&& visit) const;

  void set_export_sink(ExportSink sink) { export_sink_ = std::move(sink); }
  // Applies to sub-metrics created from now on.
  void set_max_sub_metrics(std::size_t n) { options_.max_sub_metrics = n; }
  // Apply to dynamic metrics added from now on; those held stay.
  void set_dynamic_limits(std::size_t max_metrics, ClientMetricLimits limits) {
    options_.max_dynamic_metrics = max_metrics;
    options_.dynamic_limits = limits;
  }
  const MetricsOptions& options() const { return options_; }
  std::size_t memory_bytes() const;
  std::uint64_t sub_metrics_dropped() const;

 private:
  // One field that some metric counts or groups by, looked up in the event
  // chain at most once per Process() call: most events feed several metrics
  // and nodes that all want `duration` and the same few fields.
  struct Lookup {
    NameId id = kNoName;
    std::string name;
    std::uint64_t stamp = 0;  // == stamp_ when the rest is this event's
    bool found = false;
    bool in_chain = false;  // found in the event's chain, not given by the taxonomy
    Value value;
  };

  // A field whose value some metrics' filters require to be one of a few
  // strings (Filter::RequiredFieldValues(): `program="qmail-smtpd" AND ...`
  // on every s/qmail event, whatever its name). Looked up once an event, it
  // passes over each of those metrics whose strings it is not without
  // running its filter.
  static constexpr std::size_t kMaxGateValues = 64;
  struct Gate {
    filter::Filter::RequiredField field;  // of the first metric on the key, for its lookup
    std::vector<std::string> values;      // lowercase, of every metric on the key
    std::uint64_t stamp = 0;              // == stamp_ when `held` is this event's
    std::uint64_t held = 0;               // bit i: the event's field is values[i]; 0: none of them
  };

  // Whether the gate of `metric`, if any, lets the event through.
  bool GateOpen(const Metric& metric, const Event& event);
  std::uint64_t GateValue(Gate& gate, const Event& event);
  // Places `metric` behind a gate when its filter allows it.
  void AddGate(Metric& metric);

  // FieldSource: the metrics' filters find their fields through the same
  // lookups (a field the filters alone compare gets a lookup too).
  bool Find(NameId id, std::string_view key, Value& out) override;

  // Counts the event in `metric`: at the deepest sub-metric its group_by
  // fields lead to (see MetricNode::duration()).
  void Feed(Metric& metric, const Event& event);
  // The values as sent (Dovecot's metrics) and in base units (mailscope's).
  void AddValues(Metric& metric, MetricNode& node, const Event& event);
  void AddBaseUnits(Metric& metric, MetricNode& node, const Event& event);
  // The sub-metric of `node` the event groups into, created if missing;
  // nullptr when it goes no deeper.
  MetricNode* GroupInto(Metric& metric, MetricNode& node, const Event& event);
  // The field of lookups_[slot] for the current event; nullptr when missing.
  // Inline when settled already, FieldSettled() settling it otherwise: the
  // call was 3 % of a stats-writer stream's run with 12 metrics (callgrind).
  const Value* Field(std::uint32_t slot, const Event& event);
  const Value* FieldSettled(std::uint32_t slot, const Event& event);
  // One pass over the event's own fields settles every lookup they hold,
  // instead of a scan of them per lookup; the rest go through FindInChain().
  void ScanOwnFields(const Event& event);
  std::uint32_t SlotOf(NameId id, std::string_view name);
  void Rebuild();
  template <typename Visit>
  static void Walk(const Metric& metric, const MetricNode& node, Visit& visit);

  MetricsOptions options_;
  QuantileSketch prototype_;  // empty; copied into new distributions
  NameId duration_id_;
  std::vector<std::unique_ptr<Metric>> metrics_;
  filter::Filter combined_;
  std::vector<Lookup> lookups_;
  // Which metrics an event can match, by its name, in metric order: those
  // whose filter can match that name (Filter::RequiredEventNames()) and those
  // that can match any name. Names no filter lists get any_name_.
  boost::unordered_flat_map<NameId, std::vector<Metric*>> by_name_;
  std::vector<Metric*> any_name_;
  std::vector<Gate> gates_;
  const Event* current_ = nullptr;   // the event of Process(), for Find()
  std::uint64_t stamp_ = 0;          // counts Process() calls
  std::uint64_t scanned_stamp_ = 0;  // == stamp_ once ScanOwnFields() ran for this event
  // By NameId: 1 + the index in lookups_ of the lookup of that id, 0 for
  // none; as long as the largest id looked up. An event's field finds its
  // lookup in one load instead of a pass over lookups_ (callgrind: the
  // pass cost 640 instructions an event on the capture mix's 12 metrics).
  std::vector<std::uint32_t> slot_by_id_;
  ExportSink export_sink_;
};

template <typename Visit>
void MetricsEngine::Walk(const Metric& metric, const MetricNode& node, Visit& visit) {
  visit(metric, node);
  for (const auto& child : node.children()) Walk(metric, *child, visit);
}

template <typename Visit>
void MetricsEngine::ForEachNode(Visit&& visit) const {
  for (const auto& m : metrics_) Walk(*m, m->root(), visit);
}

}  // namespace mailscope::stats
