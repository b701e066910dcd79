#include "stats/metrics_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <optional>

#include "core/ascii.h"
#include "core/hash.h"
#include "filter/analysis.h"

namespace mailscope::stats {
namespace {

// Group values longer than this are keyed by a hash, so a metric grouped by
// a long field (cmd_args) holds 17 bytes per key, not the whole value.
constexpr std::size_t kMaxVerbatimKeyBytes = 64;
// Exponential bounds base^max must fit in int64.
constexpr std::int64_t kMaxExponentBase2 = 62;
constexpr std::int64_t kMaxExponentBase10 = 18;

// Dovecot's t_strsplit_spaces(text, " "): runs of spaces separate, no empty tokens.
std::vector<std::string_view> SplitSpaces(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ') ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

// Dovecot's t_strsplit(text, ":"): every separator splits, empty parts kept.
std::vector<std::string_view> SplitColons(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t colon = text.find(':', start);
    out.push_back(text.substr(start, colon - start));
    if (colon == std::string_view::npos) return out;
    start = colon + 1;
  }
}

// str_to_intmax(): an optional '-', then digits only, no overflow.
std::optional<std::int64_t> ParseInt(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::int64_t Power(std::int64_t base, std::int64_t exponent) {
  std::int64_t v = 1;
  for (std::int64_t i = 0; i < exponent; ++i) v *= base;
  return v;
}

Result<GroupBy> ParseQuantized(GroupBy g, std::string_view func,
                               std::span<const std::string_view> args) {
  std::optional<std::int64_t> v[3];
  if (args.size() == 3) {
    for (int i = 0; i < 3; ++i) v[i] = ParseInt(args[i]);
  }
  if (args.size() != 3 || !v[0] || !v[1] || !v[2]) {
    return InvalidArgument(fmt::format("group_by '{}' aggregate function takes 3 int args", func));
  }
  const std::int64_t min = *v[0], max = *v[1], other = *v[2];
  if (min < 0 || max < 0 || other < 0) {
    return InvalidArgument(
        fmt::format("group_by '{}' aggregate function arguments must be >= 0", func));
  }
  if (min >= max) {
    return InvalidArgument(fmt::format(
        "group_by '{}' aggregate function min must be < max ({} must be < {})", func, min, max));
  }
  g.min = min;
  g.max = max;
  if (g.kind == GroupBy::Kind::kExponential) {
    if (other != 2 && other != 10) {
      return InvalidArgument(fmt::format(
          "group_by 'exponential' aggregate function base must be one of: 2, 10 (base={})", other));
    }
    const std::int64_t limit = other == 2 ? kMaxExponentBase2 : kMaxExponentBase10;
    if (max > limit) {
      return InvalidArgument(fmt::format(
          "group_by 'exponential' aggregate function max must be <= {} for base {}", limit, other));
    }
    g.base = other;
    return g;
  }
  // Both are below 2^63, so their sum fits in u64.
  const std::uint64_t min_plus_step = static_cast<std::uint64_t>(min) + other;
  if (min_plus_step > static_cast<std::uint64_t>(max)) {
    return InvalidArgument(
        fmt::format("group_by 'linear' aggregate function min+step must be <= max "
                    "({} must be <= {})",
                    min_plus_step, max));
  }
  // 2.3.19 divides by the step, and panics on a value between the last step
  // and max (no bucket holds it): reject both here.
  if (other == 0) {
    return InvalidArgument("group_by 'linear' aggregate function step must be > 0");
  }
  if ((max - min) % other != 0) {
    return InvalidArgument(
        fmt::format("group_by 'linear' aggregate function max-min must be a multiple of step "
                    "({} is not a multiple of {})",
                    max - min, other));
  }
  g.step = other;
  return g;
}

// One UTF-8 sequence at s[i]: its length, -1 when invalid (including
// overlong forms, surrogates and values past U+10FFFF), 0 when the text ends
// inside it (Dovecot's uni_utf8_get_char()).
int Utf8Length(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  const int len = b >= 0xF8 ? 0 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
  if (len == 0) return -1;  // a continuation byte or an obsolete 5/6-byte lead
  std::uint32_t cp = b & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return 0;
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (c & 0x3F);
  }
  static constexpr std::uint32_t kLowest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kLowest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  return len;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026

// A group value's key in MetricNode::index_: a kind byte, then the value.
// Written into a caller's buffer, so a lookup allocates nothing.
class GroupKey {
 public:
  // 'b' bucket or 'i' integer, with the 8 bytes of v.
  GroupKey(char kind, std::uint64_t v) : size_(1 + sizeof v) {
    buf_[0] = kind;
    std::memcpy(buf_ + 1, &v, sizeof v);
  }
  // 's' and the text up to kMaxVerbatimKeyBytes, else 'h' and its hash.
  explicit GroupKey(std::string_view s) {
    if (s.size() <= kMaxVerbatimKeyBytes) {
      buf_[0] = 's';
      std::memcpy(buf_ + 1, s.data(), s.size());
      size_ = 1 + s.size();
    } else {
      // Seeded: group values are the sender's, and values made to collide
      // would share a sub-metric. A collision needs both 64-bit lanes to
      // collide under a seed the sender does not know.
      buf_[0] = 'h';
      const Hash128 h = HashBytes128(s);
      std::memcpy(buf_ + 1, &h.low, sizeof h.low);
      std::memcpy(buf_ + 1 + sizeof h.low, &h.high, sizeof h.high);
      size_ = 1 + sizeof h.low + sizeof h.high;
    }
  }
  std::string_view view() const { return {buf_, size_}; }

 private:
  char buf_[1 + kMaxVerbatimKeyBytes];
  std::size_t size_;
};

// For a field the event's chain lacks: what the taxonomy says of the event
// under that name (filter/match.cc reads the same): `kind`, `outcome`, or a
// normalized name (remote_ip) for the source's own field.
bool FindTaxonomyField(const Event& event, NameId id, Value& out) {
  static const NameId kKind = InternName("kind");
  static const NameId kOutcome = InternName("outcome");
  const NameId taxonomy = id == kKind      ? event.taxonomy.kind
                          : id == kOutcome ? event.taxonomy.outcome
                                           : kNoName;
  if (taxonomy != kNoName) {
    out = Value::String(NameText(taxonomy));
    return true;
  }
  const NameId field = event.taxonomy.FieldFor(id);
  return field != kNoName && event.FindInChain(field, NameText(field), out);
}

// stats_metric_event_field(): the number a field adds to a distribution.
std::uint64_t ToNumber(const Value& v) {
  switch (v.type()) {
    case Value::Type::kInt:
      return static_cast<std::uint64_t>(v.as_int());  // wraps like Dovecot's u64 samples
    case Value::Type::kUint:
      return v.as_uint();
    case Value::Type::kBool:
      return v.as_bool() ? 1 : 0;
    case Value::Type::kDouble: {  // not a Dovecot type: truncated, saturated, NaN as 0
      const double d = std::isnan(v.as_double()) ? 0 : std::clamp(v.as_double(), -9.2e18, 1.8e19);
      return d >= 0 ? static_cast<std::uint64_t>(d)
                    : static_cast<std::uint64_t>(static_cast<std::int64_t>(d));
    }
    case Value::Type::kTimeval: {
      const Timeval tv = v.as_timeval();
      return static_cast<std::uint64_t>(tv.sec) * 1000000ULL + static_cast<std::uint64_t>(tv.usec);
    }
    case Value::Type::kString:
    case Value::Type::kRecord:
    case Value::Type::kNone:
      return 0;
  }
  return 0;
}

// ToNumber() in the base unit of the value's unit kind, saturated.
std::uint64_t ToBaseNumber(const Value& v) {
  const std::uint64_t factor = BaseFactor(v.unit());
  if (factor == 1) return ToNumber(v);
  switch (v.type()) {
    case Value::Type::kInt: {
      std::int64_t x = 0;
      if (__builtin_mul_overflow(v.as_int(), static_cast<std::int64_t>(factor), &x))
        x = v.as_int() < 0 ? INT64_MIN : INT64_MAX;
      return static_cast<std::uint64_t>(x);
    }
    case Value::Type::kUint: {
      std::uint64_t x = 0;
      return __builtin_mul_overflow(v.as_uint(), factor, &x) ? UINT64_MAX : x;
    }
    case Value::Type::kDouble:
      return ToNumber(Value::Double(v.as_double() * static_cast<double>(factor)));
    default:
      return ToNumber(v);
  }
}

// Whether a value tagged `unit` may count where `learned` is the unit
// learned so far; the first tagged value decides it.
bool AcceptUnit(Unit& learned, Unit unit) {
  const UnitKind kind = KindOf(unit);
  if (kind == UnitKind::kNone) return true;
  if (learned == Unit::kNone) learned = BaseUnit(kind);
  return KindOf(learned) == kind;
}

bool ValidMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  for (std::string_view reserved : {"_total", "_created", "_bucket", "_count", "_sum", "_info"})
    if (s.ends_with(reserved)) return false;
  return true;
}

}  // namespace

// ---- GroupBy ----

std::size_t GroupBy::bucket_count() const {
  switch (kind) {
    case Kind::kDiscrete:
      return 0;
    case Kind::kLinear:
      return static_cast<std::size_t>((max - min) / step) + 2;
    case Kind::kExponential:
      return static_cast<std::size_t>(max - min) + 2;
  }
  return 0;
}

std::int64_t GroupBy::Edge(std::size_t i) const {
  const auto n = static_cast<std::int64_t>(i);
  return kind == Kind::kLinear ? min + n * step : Power(base, min + n);
}

std::size_t GroupBy::BucketOf(std::int64_t value) const {
  const std::size_t last = bucket_count() - 1;
  if (kind == Kind::kLinear) {
    if (value <= min) return 0;
    if (value > max) return last;
    return 1 + static_cast<std::size_t>((value - min - 1) / step);
  }
  // Edge(i) = base^(min+i), built up by multiplying: the largest edge,
  // base^max, fits in int64 (ParseGroupBy), and no product goes past it.
  std::int64_t edge = Edge(0);
  for (std::size_t i = 0; i < last; ++i) {
    if (value <= edge) return i;
    if (i + 1 < last) edge *= base;
  }
  return last;
}

std::string GroupBy::BucketName(std::size_t bucket) const {
  const std::size_t last = bucket_count() - 1;
  if (bucket == 0) return fmt::format("{}_ninf_{}", field, Edge(0));
  // Edges are >= 0, so +1 is done unsigned (max may be INT64_MAX).
  const auto low = static_cast<std::uint64_t>(Edge(bucket - 1)) + 1;
  if (bucket >= last) return fmt::format("{}_{}_inf", field, low);
  return fmt::format("{}_{}_{}", field, low, Edge(bucket));
}

namespace {

// ParseGroupBy() without the interning of field names.
Result<std::vector<GroupBy>> ParseGroupBySpecs(std::string_view text) {
  std::vector<GroupBy> out;
  for (std::string_view spec : SplitSpaces(text)) {
    std::vector<std::string_view> params = SplitColons(spec);
    GroupBy g;
    g.field = std::string(params[0]);
    if (params.size() == 1) {
      g.kind = GroupBy::Kind::kDiscrete;
    } else if (params[1] == "discrete") {
      if (params.size() > 2) {
        return InvalidArgument("group_by 'discrete' aggregate function does not take any args");
      }
      g.kind = GroupBy::Kind::kDiscrete;
    } else if (params[1] == "exponential" || params[1] == "linear") {
      g.kind = params[1] == "linear" ? GroupBy::Kind::kLinear : GroupBy::Kind::kExponential;
      auto q = ParseQuantized(std::move(g), params[1], std::span(params).subspan(2));
      if (!q.ok()) return q.status();
      g = std::move(*q);
    } else {
      return InvalidArgument(
          fmt::format("unknown aggregation function '{}' on field '{}'", params[1], params[0]));
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

Result<std::vector<GroupBy>> ParseGroupBy(std::string_view text) {
  auto out = ParseGroupBySpecs(text);
  if (out.ok())
    for (GroupBy& g : *out) g.field_id = InternName(g.field);
  return out;
}

std::string SubMetricName(std::string_view value, int max_code_points) {
  value = value.substr(0, value.find('\0'));  // Dovecot's values are C strings
  std::string out;
  std::size_t i = 0, last_pos = 0;
  for (int cps = 0; cps < max_code_points && i < value.size(); ++cps) {
    const int len = Utf8Length(value, i);
    if (len == 0) break;  // cut inside a sequence
    last_pos = out.size();
    if (len < 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(value[i]) < 0x20) {
      out += kReplacement;
    } else {
      out.append(value.substr(i, len));
    }
    i += len;
  }
  if (i < value.size()) {
    out.resize(last_pos);
    out += kEllipsis;
  }
  return out;
}

namespace {

// MakeMetric() (trusted settings: `client` and `names` nullptr) and
// MakeClientMetric(). The group_by setting is checked before the filter, as
// the filter of a client's metric adds its new names once it has parsed.
Result<MetricDefinition> Make(const MetricSettings& s, const ClientMetricLimits* client,
                              NameBudget* names) {
  if (s.name.empty()) return InvalidArgument("Metric name can't be empty");
  if (s.filter.empty()) {
    return InvalidArgument(
        fmt::format("metric {} {{ filter }} is empty - will not match anything", s.name));
  }
  const std::vector<std::string_view> fields = SplitSpaces(s.fields);
  auto group_by = ParseGroupBySpecs(s.group_by);
  if (!group_by.ok()) return group_by.status();
  if (client != nullptr && fields.size() > client->max_fields) {
    return ResourceExhausted(
        fmt::format("Too many fields: {}, a metric added at run time may "
                    "have {} (stats.max_dynamic_metric_fields)",
                    fields.size(), client->max_fields));
  }
  if (client != nullptr && group_by->size() > client->max_group_by) {
    return ResourceExhausted(
        fmt::format("Too many group_by levels: {}, a metric added at run "
                    "time may have {} (stats.max_dynamic_metric_group_by)",
                    group_by->size(), client->max_group_by));
  }
  if (s.openmetrics_levels != "all" && s.openmetrics_levels != "last") {
    return InvalidArgument(
        fmt::format("openmetrics_levels '{}' is neither all nor last", s.openmetrics_levels));
  }
  if (!s.openmetrics_name.empty() && !ValidMetricName(s.openmetrics_name)) {
    return InvalidArgument(
        fmt::format("openmetrics_name '{}' is not a valid metric name", s.openmetrics_name));
  }
  auto filter = names != nullptr ? filter::ParseClientFilter(s.filter, s.dialect, *names)
                                 : filter::Parse(s.filter, s.dialect);
  if (!filter.ok()) return filter.status();

  MetricDefinition def;
  def.fields.assign(fields.begin(), fields.end());
  // The field names, then the group_by ones: a client's are added all or none.
  std::vector<std::string_view> keys = fields;
  for (const GroupBy& g : *group_by) keys.push_back(g.field);
  std::vector<NameId> ids(keys.size());
  if (names == nullptr) {
    for (std::size_t i = 0; i < keys.size(); ++i) ids[i] = InternName(keys[i]);
  } else if (auto shortfall = TryInternNames(keys, *names, ids)) {
    return ResourceExhausted(fmt::format("No room for the new field name '{}': {}",
                                         keys[shortfall->first_past],
                                         DescribeNameRefusal(*names, shortfall->reason)));
  }
  def.field_ids.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(fields.size()));
  for (std::size_t i = 0; i < group_by->size(); ++i)
    (*group_by)[i].field_id = ids[fields.size() + i];
  def.name = s.name;
  def.description = s.description;
  def.filter_text = s.filter;
  def.filter = std::move(*filter);
  def.group_by = std::move(*group_by);
  def.exporter = s.exporter;
  for (std::string_view f : SplitSpaces(s.exporter_include)) def.exporter_include.emplace_back(f);
  def.dialect = s.dialect;
  def.openmetrics_name = s.openmetrics_name;
  def.openmetrics_last_level_only = s.openmetrics_levels == "last";
  return def;
}

}  // namespace

Result<MetricDefinition> MakeMetric(const MetricSettings& s) { return Make(s, nullptr, nullptr); }

Result<MetricDefinition> MakeClientMetric(const MetricSettings& s, const ClientMetricLimits& limits,
                                          NameBudget& names) {
  return Make(s, &limits, &names);
}

std::string MetricDefinition::OpenMetricsName() const {
  if (!openmetrics_name.empty()) return openmetrics_name;
  return (base_units() ? "mailscope_" : "dovecot_") + name;
}

// ---- Distribution ----

void Distribution::Add(std::uint64_t value) {
  if (count_ == 0 || value < min_) min_ = value;
  if (count_ == 0 || value > max_) max_ = value;
  ++count_;
  sum_ += value;
  sum_exact_ += value;
  const U128 square = static_cast<U128>(value) * value;
  if (__builtin_add_overflow(squares_, square, &squares_)) ++squares_high_;
  pending_[pending_count_++] = value;
  if (pending_count_ == kPendingValues) FoldPending();
}

void Distribution::FoldPending() {
  sketch_.AddValues(std::span(pending_, pending_count_));
  pending_count_ = 0;
}

const QuantileSketch& Distribution::Folded(QuantileSketch& scratch) const {
  if (pending_count_ == 0) return sketch_;
  scratch = sketch_;
  scratch.AddValues(std::span(pending_, pending_count_));
  return scratch;
}

QuantileSketch Distribution::sketch() const {
  QuantileSketch scratch;
  return Folded(scratch);
}

void Distribution::Merge(const Distribution& other) {
  if (other.count_ == 0) return;
  FoldPending();
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  if (count_ == 0 || other.max_ > max_) max_ = other.max_;
  count_ += other.count_;
  sum_ += other.sum_;
  sum_exact_ += other.sum_exact_;
  squares_high_ += other.squares_high_;
  if (__builtin_add_overflow(squares_, other.squares_, &squares_)) ++squares_high_;
  sketch_.Merge(other.sketch_);
  sketch_.AddValues(std::span(other.pending_, other.pending_count_));
}

void Distribution::Reset() {
  count_ = sum_ = min_ = max_ = 0;
  sum_exact_ = squares_ = 0;
  squares_high_ = 0;
  pending_count_ = 0;
  sketch_.Clear();
}

double Distribution::avg() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
}

// n*Σx² - (Σx)² over n² is exact in 128-bit integers for any realistic data;
// only when a product overflows does it fall back to long double sums.
namespace {

// An unsigned 256-bit integer, four 64-bit limbs from the least significant;
// enough for count * sum of squares and sum^2 (each below 2^256).
struct U256 {
  __extension__ typedef unsigned __int128 U128;
  std::uint64_t limb[4] = {};

  // a * b, a of up to 192 bits given as (high word, low 128 bits).
  static U256 Multiply(std::uint64_t a_high, U128 a_low, std::uint64_t b) {
    const std::uint64_t a[3] = {static_cast<std::uint64_t>(a_low),
                                static_cast<std::uint64_t>(a_low >> 64), a_high};
    U256 r;
    U128 carry = 0;
    for (int i = 0; i < 3; ++i) {
      const U128 t = static_cast<U128>(a[i]) * b + carry;
      r.limb[i] = static_cast<std::uint64_t>(t);
      carry = t >> 64;
    }
    r.limb[3] = static_cast<std::uint64_t>(carry);
    return r;
  }
  static U256 Square(U128 a) {
    const std::uint64_t lo = static_cast<std::uint64_t>(a),
                        hi = static_cast<std::uint64_t>(a >> 64);
    const U128 ll = static_cast<U128>(lo) * lo, lh = static_cast<U128>(lo) * hi,
               hh = static_cast<U128>(hi) * hi;
    // a^2 = hh * 2^128 + 2 * lh * 2^64 + ll
    U256 r;
    r.limb[0] = static_cast<std::uint64_t>(ll);
    U128 t = (ll >> 64) + static_cast<std::uint64_t>(lh) * U128{2};
    r.limb[1] = static_cast<std::uint64_t>(t);
    t = (t >> 64) + (lh >> 64) * 2 + static_cast<std::uint64_t>(hh);
    r.limb[2] = static_cast<std::uint64_t>(t);
    r.limb[3] = static_cast<std::uint64_t>((t >> 64) + (hh >> 64));
    return r;
  }
  // REQUIRES: *this >= b.
  U256 Minus(const U256& b) const {
    U256 r;
    std::uint64_t borrow = 0;
    for (int i = 0; i < 4; ++i) {
      const U128 t = static_cast<U128>(limb[i]) - b.limb[i] - borrow;
      r.limb[i] = static_cast<std::uint64_t>(t);
      borrow = static_cast<std::uint64_t>(t >> 64) != 0 ? 1 : 0;
    }
    return r;
  }
  long double ToLongDouble() const {
    long double r = 0;
    for (int i = 3; i >= 0; --i) r = r * 0x1p64L + static_cast<long double>(limb[i]);
    return r;
  }
};

}  // namespace

// n * sum(x^2) - sum(x)^2 is n^2 times the variance; in integers it is exact
// however close the values are to each other and however large, so nothing
// cancels in floating point.
double Distribution::variance() const {
  if (count_ == 0) return 0;
  const U256 numerator =
      U256::Multiply(squares_high_, squares_, count_).Minus(U256::Square(sum_exact_));
  const long double nn = static_cast<long double>(count_) * static_cast<long double>(count_);
  return static_cast<double>(numerator.ToLongDouble() / nn);
}

std::uint64_t Distribution::ValueAtRank(std::uint64_t r) const {
  if (count_ == 0) return 0;
  if (r == 0) return min_;
  if (r >= count_ - 1) return max_;
  // The sketch answers rank floor(q * (count-1)); aim at the middle of r.
  const double q = (static_cast<double>(r) + 0.5) / static_cast<double>(count_ - 1);
  QuantileSketch scratch;
  const double v = std::clamp(Folded(scratch).Quantile(q), 0.0, 0x1p64);
  const std::uint64_t x = v >= 0x1p64   ? UINT64_MAX
                          : v >= 0x1p63 ? static_cast<std::uint64_t>(v)
                                        : static_cast<std::uint64_t>(v + 0.5);
  return std::clamp(x, min_, max_);
}

std::uint64_t Distribution::median() const {
  if (count_ == 0) return 0;
  const U128 sum = static_cast<U128>(ValueAtRank((count_ - 1) / 2)) + ValueAtRank(count_ / 2);
  return static_cast<std::uint64_t>(sum / 2);
}

// stats_dist_get_index(): Dovecot's fuzz for exact boundaries scales with its
// sample count, which never exceeds its 480-sample reservoir.
std::uint64_t Distribution::Percentile(double f) const {
  if (count_ == 0) return 0;
  if (!(f > 0)) return min_;
  if (f >= 1) return max_;
  const double n = static_cast<double>(count_);
  const double idx_float = n * f;
  auto idx = static_cast<std::uint64_t>(idx_float);
  if (idx_float - static_cast<double>(idx) < 1e-8 * std::min(n, 480.0) && idx > 0) --idx;
  return ValueAtRank(std::min(idx, count_ - 1));
}

std::size_t Distribution::memory_bytes() const {
  return sizeof(*this) - sizeof(sketch_) + sketch_.memory_bytes();
}

// ---- MetricNode, Metric ----

// Group values are the sender's: seeded (core/hash.h).
std::size_t MetricNode::KeyHash::operator()(std::string_view key) const noexcept {
  return static_cast<std::size_t>(HashBytes(key));
}

MetricNode::MetricNode(std::string sub_name, std::size_t depth, std::int64_t bucket,
                       std::size_t fields, const QuantileSketch& prototype)
    : sub_name_(std::move(sub_name)),
      depth_(depth),
      bucket_(bucket),
      duration_(prototype),
      fields_(fields, Distribution(prototype)) {}

std::vector<NodeTotals> MetricNode::Totals() const {
  std::vector<NodeTotals> out;
  AppendTotals(out);
  return out;
}

void MetricNode::AppendTotals(std::vector<NodeTotals>& out) const {
  const std::size_t self = out.size();
  out.push_back({duration_, fields_});
  for (const auto& child : children_) {
    const std::size_t at = out.size();
    child->AppendTotals(out);  // may move `out`: entries are named by index
    out[self].duration.Merge(out[at].duration);
    for (std::size_t i = 0; i < fields_.size(); ++i) out[self].fields[i].Merge(out[at].fields[i]);
  }
}

Distribution MetricNode::duration() const { return std::move(Totals().front().duration); }

Distribution MetricNode::field(std::size_t i) const {
  return std::move(Totals().front().fields[i]);
}

std::uint64_t MetricNode::count() const {
  return SubtreeSum([](const MetricNode& n) { return n.duration_.count(); });
}

std::uint64_t MetricNode::duration_sum() const {
  return SubtreeSum([](const MetricNode& n) { return n.duration_.sum(); });
}

std::uint64_t MetricNode::field_sum(std::size_t i) const {
  return SubtreeSum([i](const MetricNode& n) { return n.fields_[i].sum(); });
}

void MetricNode::Reset() {
  duration_.Reset();
  for (Distribution& d : fields_) d.Reset();
  for (auto& child : children_) child->Reset();
}

std::size_t MetricNode::memory_bytes() const {
  std::size_t n = sizeof(*this) + sub_name_.capacity() + duration_.memory_bytes() +
                  children_.capacity() * sizeof(children_[0]);
  for (const Distribution& d : fields_) n += d.memory_bytes();
  // Flat map slots: the key object, its heap bytes, the index and a control byte.
  n += index_.bucket_count() * (sizeof(std::string) + sizeof(std::uint32_t) + 1) +
       by_bucket_.capacity() * sizeof(by_bucket_[0]);
  for (const auto& [key, index] : index_) n += key.capacity() > 15 ? key.capacity() : 0;
  for (const auto& child : children_) n += child->memory_bytes();
  return n;
}

Metric::Metric(MetricDefinition definition, bool configured, const QuantileSketch& prototype)
    : definition_(std::move(definition)),
      configured_(configured),
      root_(new MetricNode("", 0, -1, definition_.fields.size(), prototype)),
      units_(1 + definition_.fields.size() + definition_.group_by.size(), Unit::kNone) {
  // Dovecot's duration counts microseconds; a source without one gets 0.
  if (definition_.base_units()) units_[0] = Unit::kMicroseconds;
}

// ---- MetricsEngine ----

MetricsEngine::MetricsEngine(MetricsOptions options)
    : options_(options),
      prototype_(options.relative_error, options.sketch_max_buckets),
      duration_id_(InternName("duration")) {}

const Metric* MetricsEngine::Find(std::string_view name) const {
  for (const auto& m : metrics_)
    if (m->name() == name) return m.get();
  return nullptr;
}

Status MetricsEngine::Add(MetricDefinition definition, Origin origin) {
  if (Find(definition.name) != nullptr) return AlreadyExists("Metric already exists");
  const bool configured = origin == Origin::kConfig;
  if (!configured) MS_RETURN_IF_ERROR(CheckDynamicRoom());
  auto metric = std::unique_ptr<Metric>(new Metric(std::move(definition), configured, prototype_));
  auto pos = metrics_.end();
  if (configured) {
    pos = std::find_if(metrics_.begin(), metrics_.end(),
                       [](const auto& m) { return !m->configured(); });
  }
  metrics_.insert(pos, std::move(metric));
  Rebuild();
  return Status::Ok();
}

Status MetricsEngine::CheckDynamicRoom() const {
  if (dynamic_metric_count() < options_.max_dynamic_metrics) return Status::Ok();
  return ResourceExhausted(
      fmt::format("Too many metrics added at run time: {} "
                  "(stats.max_dynamic_metrics); remove one first",
                  options_.max_dynamic_metrics));
}

std::size_t MetricsEngine::dynamic_metric_count() const {
  return static_cast<std::size_t>(std::count_if(metrics_.begin(), metrics_.end(),
                                                [](const auto& m) { return !m->configured(); }));
}

Status MetricsEngine::Remove(std::string_view name) {
  auto it = std::find_if(metrics_.begin(), metrics_.end(),
                         [&](const auto& m) { return m->name() == name; });
  if (it == metrics_.end()) return NotFound(fmt::format("metrics '{}' not found", name));
  metrics_.erase(it);
  Rebuild();
  return Status::Ok();
}

void MetricsEngine::Rebuild() {
  std::vector<const filter::Filter*> filters;
  filters.reserve(metrics_.size());
  for (const auto& m : metrics_) filters.push_back(&m->definition().filter);
  combined_ = filter::Filter::Merge(filters);

  by_name_.clear();
  any_name_.clear();
  gates_.clear();
  std::vector<std::optional<filter::Filter::EventNames>> names;
  names.reserve(metrics_.size());
  for (auto& m : metrics_) {
    names.push_back(m->definition().filter.RequiredEventNames());
    m->name_decides_ = names.back() && names.back()->exact;
    // A metric the name index leaves to few events does without a gate:
    // there the gate's lookup would only come before the filter's own.
    m->gate_ = -1;
    if (!names.back()) {
      AddGate(*m);
      any_name_.push_back(m.get());
    }
    for (NameId id : names.back() ? names.back()->names : std::vector<NameId>{}) {
      by_name_.try_emplace(id);
    }
  }
  for (auto& [id, list] : by_name_) {
    for (std::size_t i = 0; i < metrics_.size(); ++i) {
      const auto& n = names[i];
      if (!n || std::binary_search(n->names.begin(), n->names.end(), id)) {
        list.push_back(metrics_[i].get());
      }
    }
  }

  lookups_.clear();
  slot_by_id_.clear();
  for (auto& m : metrics_) {
    const MetricDefinition& def = m->definition_;
    m->duration_slot_ = SlotOf(duration_id_, "duration");
    m->field_slots_.clear();
    for (std::size_t i = 0; i < def.fields.size(); ++i)
      m->field_slots_.push_back(SlotOf(def.field_ids[i], def.fields[i]));
    m->group_slots_.clear();
    for (const GroupBy& g : def.group_by) m->group_slots_.push_back(SlotOf(g.field_id, g.field));
    // The filter's fields; the parser interned their keys.
    for (std::size_t q = 0; q < def.filter.query_count(); ++q) {
      filter::AnyLeaf(def.filter, q, [&](const filter::Leaf& leaf) {
        if (leaf.type() == filter::Leaf::Type::kField) SlotOf(FindName(leaf.key()), leaf.key());
        return false;
      });
    }
  }
}

void MetricsEngine::AddGate(Metric& metric) {
  std::optional<filter::Filter::RequiredField> field =
      metric.definition().filter.RequiredFieldValues();
  if (!field) return;
  auto gate = std::find_if(gates_.begin(), gates_.end(),
                           [&](const Gate& g) { return g.field.key() == field->key(); });
  if (gate == gates_.end()) {
    gate = gates_.insert(gates_.end(), Gate{*field, {}, 0, 0});
  }
  std::vector<std::string> values = gate->values;
  std::uint64_t bits = 0;
  for (const std::string& v : field->values()) {
    auto at = std::find(values.begin(), values.end(), v);
    if (at == values.end()) {
      if (values.size() == kMaxGateValues) return;  // ungated: the filter decides
      at = values.insert(values.end(), v);
    }
    bits |= std::uint64_t{1} << (at - values.begin());
  }
  gate->values = std::move(values);
  metric.gate_ = static_cast<int>(gate - gates_.begin());
  metric.gate_values_ = bits;
}

inline bool MetricsEngine::GateOpen(const Metric& metric, const Event& event) {
  if (metric.gate_ < 0) return true;
  Gate& gate = gates_[static_cast<std::size_t>(metric.gate_)];
  const std::uint64_t held = gate.stamp == stamp_ ? gate.held : GateValue(gate, event);
  return (held & metric.gate_values_) != 0;
}

std::uint64_t MetricsEngine::GateValue(Gate& gate, const Event& event) {
  gate.stamp = stamp_;
  gate.held = 0;
  // Not through the lookups: the gate is often the only field an event that
  // feeds no metric is asked for. The event's own fields answer first, and
  // the key mostly comes first among them (`program`); only a key they lack
  // is looked for further.
  Value v;
  if (const Value* own = event.OwnValue(gate.field.key())) {
    v = *own;
  } else if (!gate.field.Lookup(event, v)) {
    return 0;
  }
  if (v.type() != Value::Type::kString) return 0;
  const std::string_view s = v.as_string();
  for (std::size_t i = 0; i < gate.values.size(); ++i) {
    if (EqualsAsciiIcase(s, gate.values[i])) {
      gate.held = std::uint64_t{1} << i;
      break;
    }
  }
  return gate.held;
}

std::uint32_t MetricsEngine::SlotOf(NameId id, std::string_view name) {
  // An id names one text, so it has at most one lookup, found by slot_by_id_;
  // kNoName (a name the table had no room for) is on no field, and its
  // lookups are told apart by their text.
  if (id != kNoName) {
    if (id < slot_by_id_.size() && slot_by_id_[id] != 0) return slot_by_id_[id] - 1;
  } else {
    for (std::size_t i = 0; i < lookups_.size(); ++i)
      if (lookups_[i].id == id && lookups_[i].name == name) return static_cast<std::uint32_t>(i);
  }
  Lookup l;
  l.id = id;
  l.name = std::string(name);
  l.stamp = stamp_;  // stale: stamp_ moves on before the next event is looked at
  lookups_.push_back(std::move(l));
  const auto slot = static_cast<std::uint32_t>(lookups_.size() - 1);
  if (id != kNoName) {
    if (id >= slot_by_id_.size()) slot_by_id_.resize(std::size_t{id} + 1, 0);
    slot_by_id_[id] = slot + 1;
  }
  return slot;
}

// FindHere() looks at the fields by key before any record's columns, so a
// field found here is the one it finds; lookups left unsettled (columns,
// parents) are looked up in the chain by Field().
void MetricsEngine::ScanOwnFields(const Event& event) {
  scanned_stamp_ = stamp_;
  const std::size_t ids = slot_by_id_.size();
  for (const mailscope::Field& f : event.fields) {
    if (f.key >= ids || slot_by_id_[f.key] == 0) continue;
    if (f.value.type() == Value::Type::kNone) continue;  // as FindHere() skips them
    Lookup& l = lookups_[slot_by_id_[f.key] - 1];
    if (l.stamp == stamp_) continue;  // the first field of a key is the one found
    l.stamp = stamp_;
    l.found = l.in_chain = true;
    l.value = f.value;
  }
}

inline const Value* MetricsEngine::Field(std::uint32_t slot, const Event& event) {
  const Lookup& l = lookups_[slot];
  if (scanned_stamp_ != stamp_ || l.stamp != stamp_) return FieldSettled(slot, event);
  return l.found ? &l.value : nullptr;
}

const Value* MetricsEngine::FieldSettled(std::uint32_t slot, const Event& event) {
  if (scanned_stamp_ != stamp_) ScanOwnFields(event);
  Lookup& l = lookups_[slot];
  if (l.stamp != stamp_) {
    l.stamp = stamp_;
    l.in_chain = event.FindInChain(l.id, l.name, l.value);
    l.found = l.in_chain || FindTaxonomyField(event, l.id, l.value);
  }
  return l.found ? &l.value : nullptr;
}

bool MetricsEngine::Find(NameId id, std::string_view key, Value& out) {
  if (id < slot_by_id_.size() && slot_by_id_[id] != 0) {
    const std::uint32_t slot = slot_by_id_[id] - 1;
    Field(slot, *current_);
    // The taxonomy's answers are the filter's to give (it reads some keys
    // differently: `source`), so only the chain's is passed on.
    const Lookup& l = lookups_[slot];
    if (l.in_chain) out = l.value;
    return l.in_chain;
  }
  return current_->FindInChain(id, key, out);
}

void MetricsEngine::Process(const Event& event) {
  // The 2.3.19 server's merged filter keeps "requires an event name" set,
  // so it drops every unnamed event before any metric sees it (§3.3).
  if (event.name == kNoName) return;
  ++stamp_;  // the lookups of the previous event are stale
  current_ = &event;
  const auto it = by_name_.find(event.name);
  for (Metric* m : it != by_name_.end() ? it->second : any_name_) {
    if (!m->name_decides_ && (!GateOpen(*m, event) || !m->definition().filter.Matches(event, this)))
      continue;
    Feed(*m, event);
    if (export_sink_ && !m->definition().exporter.empty()) export_sink_(*m, event);
  }
}

void MetricsEngine::Feed(Metric& metric, const Event& event) {
  MetricNode* node = metric.root_.get();
  while (node->depth_ < metric.definition_.group_by.size()) {
    MetricNode* child = GroupInto(metric, *node, event);
    if (child == nullptr) break;
    node = child;
  }
  if (metric.definition_.base_units()) {
    AddBaseUnits(metric, *node, event);
  } else {
    AddValues(metric, *node, event);
  }
}

void MetricsEngine::AddValues(Metric& metric, MetricNode& node, const Event& event) {
  const MetricDefinition& def = metric.definition_;
  // Dovecot adds duration (0 without an end time) to every event it counts.
  const Value* duration = Field(metric.duration_slot_, event);
  node.duration_.Add(duration != nullptr ? ToNumber(*duration) : 0);
  for (std::size_t i = 0; i < def.fields.size(); ++i)
    if (const Value* f = Field(metric.field_slots_[i], event)) node.fields_[i].Add(ToNumber(*f));
}

void MetricsEngine::AddBaseUnits(Metric& metric, MetricNode& node, const Event& event) {
  const MetricDefinition& def = metric.definition_;
  const Value* duration = Field(metric.duration_slot_, event);
  std::uint64_t d = 0;
  if (duration != nullptr) {
    if (AcceptUnit(metric.units_[0], duration->unit())) {
      d = ToBaseNumber(*duration);
    } else {
      ++metric.unit_conflicts_;
    }
  }
  node.duration_.Add(d);
  for (std::size_t i = 0; i < def.fields.size(); ++i) {
    const Value* f = Field(metric.field_slots_[i], event);
    if (f == nullptr) continue;
    if (AcceptUnit(metric.units_[1 + i], f->unit())) {
      node.fields_[i].Add(ToBaseNumber(*f));
    } else {
      ++metric.unit_conflicts_;
    }
  }
}

MetricNode* MetricsEngine::GroupInto(Metric& metric, MetricNode& node, const Event& event) {
  const GroupBy& g = metric.definition_.group_by[node.depth_];
  const Value* found = Field(metric.group_slots_[node.depth_], event);
  if (found == nullptr) return nullptr;  // 2.3.19 ignores a missing field
  const Value v = *found;

  if (v.type() == Value::Type::kTimeval || v.type() == Value::Type::kRecord) return nullptr;
  const bool is_string = v.type() == Value::Type::kString;
  std::int64_t number;
  if (!metric.definition_.base_units()) {
    number = static_cast<std::int64_t>(ToNumber(v));
  } else if (is_string) {
    number = 0;
  } else if (AcceptUnit(metric.units_[1 + metric.definition_.fields.size() + node.depth_],
                        v.unit())) {
    number = static_cast<std::int64_t>(ToBaseNumber(v));
  } else {
    ++metric.unit_conflicts_;
    return nullptr;
  }
  std::int64_t bucket = -1;
  std::string_view text;
  auto make_key = [&]() {
    if (g.quantized()) {
      bucket = static_cast<std::int64_t>(g.BucketOf(number));
      return GroupKey('b', static_cast<std::uint64_t>(bucket));
    }
    if (!is_string) return GroupKey('i', static_cast<std::uint64_t>(number));
    text = v.as_string();
    text = text.substr(0, text.find('\0'));
    return GroupKey(text);
  };
  if (g.quantized() && is_string) return nullptr;  // quantizing applies to integers only
  const bool direct = g.quantized() && g.bucket_count() <= MetricNode::kMaxDirectBuckets;
  std::optional<GroupKey> key;
  if (direct) {
    bucket = static_cast<std::int64_t>(g.BucketOf(number));
    const auto b = static_cast<std::size_t>(bucket);
    if (b < node.by_bucket_.size() && node.by_bucket_[b] != 0) {
      return node.children_[node.by_bucket_[b] - 1].get();
    }
  } else {
    key.emplace(make_key());
    if (auto it = node.index_.find(key->view()); it != node.index_.end()) {
      return node.children_[it->second].get();
    }
  }
  if (metric.sub_metric_count_ >= options_.max_sub_metrics) {
    ++metric.sub_metrics_dropped_;
    return nullptr;
  }
  std::string label;
  if (bucket >= 0) {
    label = g.BucketName(static_cast<std::size_t>(bucket));
  } else if (!is_string) {
    label = fmt::format("{}", static_cast<std::uint64_t>(number));  // Dovecot's dec2str()
  } else {
    label = std::string(text);
  }
  const auto index = static_cast<std::uint32_t>(node.children_.size());
  if (direct) {
    const auto b = static_cast<std::size_t>(bucket);
    if (b >= node.by_bucket_.size()) node.by_bucket_.resize(g.bucket_count(), 0);
    node.by_bucket_[b] = index + 1;
  } else {
    node.index_.emplace(std::string(key->view()), index);
  }
  node.children_.push_back(std::unique_ptr<MetricNode>(new MetricNode(
      SubMetricName(label, metric.definition_.base_units() ? kMailscopeSubNameMaxCodePoints
                                                           : kDovecotSubNameMaxCodePoints),
      node.depth_ + 1, bucket, node.fields_.size(), prototype_)));
  ++metric.sub_metric_count_;
  return node.children_.back().get();
}

void MetricsEngine::Reset() {
  for (auto& m : metrics_) m->root_->Reset();
}

std::size_t MetricsEngine::memory_bytes() const {
  std::size_t n = sizeof(*this) + metrics_.capacity() * sizeof(metrics_[0]);
  for (const auto& m : metrics_) {
    const MetricDefinition& d = m->definition();
    n += sizeof(Metric) + d.name.capacity() + d.description.capacity() + d.filter_text.capacity() +
         d.openmetrics_name.capacity() + m->units_.capacity() * sizeof(Unit) +
         d.fields.size() * (sizeof(std::string) + sizeof(NameId)) +
         d.group_by.size() * sizeof(GroupBy) + m->root().memory_bytes();
  }
  return n;
}

std::uint64_t MetricsEngine::sub_metrics_dropped() const {
  std::uint64_t n = 0;
  for (const auto& m : metrics_) n += m->sub_metrics_dropped();
  return n;
}

}  // namespace mailscope::stats
