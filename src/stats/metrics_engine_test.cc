#include "stats/metrics_engine.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/allocation_counter_testing.h"

namespace mailscope::stats {
namespace {

constexpr auto kMailscope = filter::Dialect::kMailscope;

// An event with interned keys; string values must outlive it.
struct Ev {
  Event e;
  explicit Ev(std::string_view name = {}) { e.name = InternName(name); }
  Ev& Int(std::string_view key, std::int64_t v) {
    e.Add(InternName(key), Value::Int(v));
    return *this;
  }
  Ev& Str(std::string_view key, std::string_view v) {
    e.Add(InternName(key), Value::String(v));
    return *this;
  }
  Ev& Num(std::string_view key, Value v) {
    e.Add(InternName(key), v);
    return *this;
  }
  Ev& Tv(std::string_view key, std::int64_t sec, std::int64_t usec) {
    e.Add(InternName(key), Value::Tv({sec, usec}));
    return *this;
  }
};

MetricDefinition Def(std::string name, std::string filter, std::string fields = "",
                     std::string group_by = "", std::string exporter = "",
                     filter::Dialect dialect = filter::Dialect::kDovecot) {
  MetricSettings s;
  s.dialect = dialect;
  s.name = std::move(name);
  s.filter = std::move(filter);
  s.fields = std::move(fields);
  s.group_by = std::move(group_by);
  s.exporter = std::move(exporter);
  auto def = MakeMetric(s);
  EXPECT_TRUE(def.ok()) << def.status().ToString();
  return std::move(*def);
}

std::string MakeError(MetricSettings s) {
  auto def = MakeMetric(s);
  return def.ok() ? "ok" : def.status().message();
}

// --- settings ---

TEST(MetricsSettingsTest, MakeMetricRejectsLikeDovecot) {
  MetricSettings s;
  EXPECT_EQ(MakeError(s), "Metric name can't be empty");
  s.name = "m";
  EXPECT_EQ(MakeError(s), "metric m { filter } is empty - will not match anything");
  s.filter = "event=(";
  EXPECT_EQ(MakeError(s).rfind("event filter: ", 0), 0u) << MakeError(s);
  s.filter = "event=x";
  s.group_by = "a:linear:0:10:3";
  EXPECT_EQ(MakeError(s),
            "group_by 'linear' aggregate function max-min must be a multiple of step "
            "(10 is not a multiple of 3)");
  s.group_by = "cmd_name  tagged_reply_state ";
  s.fields = " bytes_in  bytes_out";
  s.exporter_include = "name  fields";
  auto def = MakeMetric(s);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->fields, (std::vector<std::string>{"bytes_in", "bytes_out"}));
  EXPECT_EQ(def->field_ids[0], InternName("bytes_in"));
  ASSERT_EQ(def->group_by.size(), 2u);
  EXPECT_EQ(def->group_by[1].field, "tagged_reply_state");
  EXPECT_EQ(def->exporter_include, (std::vector<std::string>{"name", "fields"}));
  EXPECT_EQ(def->filter_text, "event=x");
}

TEST(MetricsSettingsTest, OpenMetricsNameAndPrefix) {
  MetricSettings s;
  s.name = "imap";
  s.filter = "event=x";
  EXPECT_EQ(MakeMetric(s)->OpenMetricsName(), "dovecot_imap");
  EXPECT_FALSE(MakeMetric(s)->base_units());
  s.dialect = kMailscope;
  EXPECT_EQ(MakeMetric(s)->OpenMetricsName(), "mailscope_imap");
  EXPECT_TRUE(MakeMetric(s)->base_units());
  for (const char* ok : {"imap_commands", "mail:delivery_seconds", "_x", "a1"}) {
    s.openmetrics_name = ok;
    ASSERT_TRUE(MakeMetric(s).ok()) << ok;
    EXPECT_EQ(MakeMetric(s)->OpenMetricsName(), ok);
  }
  for (const char* bad : {"1a", "a-b", "a b", "é", "x_total", "x_bucket", "x_count", "x_sum",
                          "x_created", "x_info"}) {
    s.openmetrics_name = bad;
    EXPECT_EQ(MakeError(s), fmt::format("openmetrics_name '{}' is not a valid metric name", bad));
  }
}

TEST(MetricsGroupByTest, ErrorsAreDovecotsTexts) {
  struct Case {
    const char* spec;
    const char* error;
  } cases[] = {
      {"f:bogus", "unknown aggregation function 'bogus' on field 'f'"},
      {"f:", "unknown aggregation function '' on field 'f'"},
      {"f:discrete:x", "group_by 'discrete' aggregate function does not take any args"},
      {"f:linear:0:10", "group_by 'linear' aggregate function takes 3 int args"},
      {"f:linear:0:10:1:2", "group_by 'linear' aggregate function takes 3 int args"},
      {"f:linear:0:x:1", "group_by 'linear' aggregate function takes 3 int args"},
      {"f:linear:+0:10:1", "group_by 'linear' aggregate function takes 3 int args"},
      {"f:linear:0:99999999999999999999:1",
       "group_by 'linear' aggregate function takes 3 int args"},
      {"f:linear:-1:10:1", "group_by 'linear' aggregate function arguments must be >= 0"},
      {"f:exponential:5:5:10",
       "group_by 'exponential' aggregate function min must be < max (5 must be < 5)"},
      {"f:linear:0:10:11",
       "group_by 'linear' aggregate function min+step must be <= max (11 must be <= 10)"},
      {"f:linear:0:10:0", "group_by 'linear' aggregate function step must be > 0"},
      {"f:linear:1:10:2",
       "group_by 'linear' aggregate function max-min must be a multiple of step "
       "(9 is not a multiple of 2)"},
      {"f:exponential:1:5:3",
       "group_by 'exponential' aggregate function base must be one of: 2, 10 (base=3)"},
      {"f:exponential:1:19:10",
       "group_by 'exponential' aggregate function max must be <= 18 for base 10"},
      {"f:exponential:1:63:2",
       "group_by 'exponential' aggregate function max must be <= 62 for base 2"},
  };
  for (const Case& c : cases) {
    auto g = ParseGroupBy(std::string("ok ") + c.spec);
    ASSERT_FALSE(g.ok()) << c.spec;
    EXPECT_EQ(g.status().message(), c.error) << c.spec;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(MetricsGroupByTest, ParsesSpecs) {
  auto g = ParseGroupBy(" a  b:discrete c:linear:0:1000:250 d:exponential:1:5:10 :discrete");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->size(), 5u);
  EXPECT_EQ((*g)[0].kind, GroupBy::Kind::kDiscrete);
  EXPECT_EQ((*g)[1].kind, GroupBy::Kind::kDiscrete);
  EXPECT_EQ((*g)[2].kind, GroupBy::Kind::kLinear);
  EXPECT_EQ((*g)[2].bucket_count(), 6u);
  EXPECT_EQ((*g)[3].kind, GroupBy::Kind::kExponential);
  EXPECT_EQ((*g)[3].bucket_count(), 6u);
  EXPECT_EQ((*g)[4].field, "");
  EXPECT_EQ((*g)[4].field_id, kNoName);
  EXPECT_EQ((*g)[0].bucket_count(), 0u);
  auto empty = ParseGroupBy("   ");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(MetricsGroupByTest, BucketEdgesAndNames) {
  struct Case {
    const char* spec;
    std::int64_t value;
    const char* name;
  } cases[] = {
      {"bytes_out:linear:0:1000:250", INT64_MIN, "bytes_out_ninf_0"},
      {"bytes_out:linear:0:1000:250", -5, "bytes_out_ninf_0"},
      {"bytes_out:linear:0:1000:250", 0, "bytes_out_ninf_0"},
      {"bytes_out:linear:0:1000:250", 1, "bytes_out_1_250"},
      {"bytes_out:linear:0:1000:250", 250, "bytes_out_1_250"},
      {"bytes_out:linear:0:1000:250", 251, "bytes_out_251_500"},
      {"bytes_out:linear:0:1000:250", 1000, "bytes_out_751_1000"},
      {"bytes_out:linear:0:1000:250", 1001, "bytes_out_1001_inf"},
      {"bytes_out:linear:0:1000:250", INT64_MAX, "bytes_out_1001_inf"},
      {"x:linear:10:20:10", 10, "x_ninf_10"},
      {"x:linear:10:20:10", 11, "x_11_20"},
      {"x:linear:10:20:10", 21, "x_21_inf"},
      {"duration:exponential:1:5:10", 10, "duration_ninf_10"},
      {"duration:exponential:1:5:10", 11, "duration_11_100"},
      {"duration:exponential:1:5:10", 100, "duration_11_100"},
      {"duration:exponential:1:5:10", 101, "duration_101_1000"},
      {"duration:exponential:1:5:10", 5388, "duration_1001_10000"},
      {"duration:exponential:1:5:10", 100000, "duration_10001_100000"},
      {"duration:exponential:1:5:10", 100001, "duration_100001_inf"},
      {"s:exponential:0:3:2", 1, "s_ninf_1"},
      {"s:exponential:0:3:2", 2, "s_2_2"},
      {"s:exponential:0:3:2", 3, "s_3_4"},
      {"s:exponential:0:3:2", 8, "s_5_8"},
      {"s:exponential:0:3:2", 9, "s_9_inf"},
      {"s:exponential:0:62:2", INT64_MAX, "s_4611686018427387905_inf"},
      {"m:linear:0:9223372036854775807:9223372036854775807", INT64_MAX, "m_1_9223372036854775807"},
  };
  for (const Case& c : cases) {
    auto g = ParseGroupBy(c.spec);
    ASSERT_TRUE(g.ok()) << c.spec << ": " << g.status().ToString();
    const GroupBy& gb = (*g)[0];
    EXPECT_EQ(gb.BucketName(gb.BucketOf(c.value)), c.name) << c.spec << " " << c.value;
  }
  auto g = ParseGroupBy("m:linear:0:9223372036854775807:9223372036854775807");
  EXPECT_EQ((*g)[0].BucketName(2), "m_9223372036854775808_inf");
}

// --- sub-metric names ---

TEST(MetricsSubNameTest, SanitizesLikeStrSanitizeUtf8) {
  const std::string k31(31, 'a');
  struct Case {
    std::string in;
    std::string out;
  } cases[] = {
      {"SELECT", "SELECT"},
      {"", ""},
      {"a\tb\nc",
       "a\xEF\xBF\xBD"
       "b\xEF\xBF\xBD"
       "c"},
      {"del\x7f", "del\x7f"},
      {std::string(32, 'a'), std::string(32, 'a')},
      {std::string(33, 'a'), k31 + "\xE2\x80\xA6"},
      {std::string(100, 'a'), k31 + "\xE2\x80\xA6"},
      {"caf\xC3\xA9", "caf\xC3\xA9"},
      {"\xC3(", "\xEF\xBF\xBD("},
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                  // overlong
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // surrogate
      {"ab\xE2\x82", "a\xE2\x80\xA6"},  // cut inside a sequence: Dovecot's quirk
      {std::string("nul\0after", 9), "nul"},
  };
  for (const Case& c : cases) EXPECT_EQ(SubMetricName(c.in), c.out) << c.in;
  // 32 two-byte code points fit; 33 do not.
  std::string e32, e33;
  for (int i = 0; i < 32; ++i) e32 += "\xC3\xA9";
  e33 = e32 + "\xC3\xA9";
  EXPECT_EQ(SubMetricName(e32), e32);
  EXPECT_EQ(SubMetricName(e33), e32.substr(0, 62) + "\xE2\x80\xA6");
}

// --- distributions ---

// Dovecot's stats_dist on all samples (no reservoir below 480 values).
struct Exact {
  std::vector<std::uint64_t> s;
  std::uint64_t Percentile(double f) const {
    auto v = s;
    std::sort(v.begin(), v.end());
    if (f >= 1) return v.back();
    if (f <= 0) return v.front();
    double idx_float = v.size() * f;
    auto idx = static_cast<std::size_t>(idx_float);
    if (idx_float - idx < 1e-8 * v.size() && idx > 0) --idx;
    return v[idx];
  }
  std::uint64_t Median() const {
    auto v = s;
    std::sort(v.begin(), v.end());
    return (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
  }
  double Variance() const {
    double sum = 0;
    for (auto x : s) sum += x;
    double avg = sum / s.size(), acc = 0;
    for (auto x : s) acc += (x - avg) * (x - avg);
    return acc / s.size();
  }
};

void ExpectNear1Percent(std::uint64_t got, std::uint64_t want, const std::string& what) {
  EXPECT_LE(std::fabs(double(got) - double(want)), 0.01 * double(want) + 1) << what;
}

TEST(MetricsDistributionTest, EmptyIsZero) {
  Distribution d;
  EXPECT_EQ(d.count(), 0u);
  EXPECT_EQ(d.min(), 0u);
  EXPECT_EQ(d.max(), 0u);
  EXPECT_EQ(d.avg(), 0);
  EXPECT_EQ(d.variance(), 0);
  EXPECT_EQ(d.median(), 0u);
  EXPECT_EQ(d.Percentile(0.95), 0u);
}

TEST(MetricsDistributionTest, ExactStatsAndQuantilesWithinOnePercent) {
  std::mt19937_64 rng(7);
  for (int n : {1, 2, 3, 4, 5, 6, 10, 95, 479, 1000}) {
    Distribution d;
    Exact e;
    std::lognormal_distribution<double> dist(6, 1.5);
    for (int i = 0; i < n; ++i) {
      auto v = static_cast<std::uint64_t>(dist(rng));
      d.Add(v);
      e.s.push_back(v);
    }
    auto [mn, mx] = std::minmax_element(e.s.begin(), e.s.end());
    std::uint64_t sum = 0;
    for (auto x : e.s) sum += x;
    EXPECT_EQ(d.count(), std::uint64_t(n));
    EXPECT_EQ(d.sum(), sum);
    EXPECT_EQ(d.min(), *mn);
    EXPECT_EQ(d.max(), *mx);
    EXPECT_DOUBLE_EQ(d.avg(), double(sum) / n);
    EXPECT_NEAR(d.variance(), e.Variance(), 1e-9 * e.Variance() + 1e-9);
    const std::string tag = "n=" + std::to_string(n);
    ExpectNear1Percent(d.median(), e.Median(), tag + " median");
    for (double f : {0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0})
      ExpectNear1Percent(d.Percentile(f), e.Percentile(f), tag + " f=" + std::to_string(f));
    EXPECT_EQ(d.Percentile(-1), *mn);
    EXPECT_EQ(d.Percentile(2), *mx);
    EXPECT_EQ(d.Percentile(std::nan("")), *mn);
  }
}

TEST(MetricsDistributionTest, CapturedAuthNumbersAreExact) {
  // auth_failure in stats-reader-wire.txt: 2 values, every stat exact.
  Distribution d;
  d.Add(148);
  d.Add(4003342);
  EXPECT_EQ(d.sum(), 4003490u);
  EXPECT_EQ(d.median(), 2001745u);
  EXPECT_EQ(d.Percentile(0.95), 4003342u);
  EXPECT_EQ(d.Percentile(0.5), 148u);
  EXPECT_DOUBLE_EQ(d.variance(), 4006390550409.0);
}

TEST(MetricsDistributionTest, NegativeValuesWrapLikeDovecot) {
  Distribution d;
  d.Add(static_cast<std::uint64_t>(std::int64_t{-1}));
  d.Add(1);
  EXPECT_EQ(d.sum(), 0u);  // u64 wrap
  EXPECT_EQ(d.min(), 1u);
  EXPECT_EQ(d.max(), UINT64_MAX);
  EXPECT_GT(d.variance(), 0);
}

TEST(MetricsDistributionTest, ResetAndMerge) {
  Distribution a, b;
  for (int i = 1; i <= 10; ++i) a.Add(i);
  for (int i = 11; i <= 20; ++i) b.Add(i);
  a.Merge(b);
  EXPECT_EQ(a.count(), 20u);
  EXPECT_EQ(a.sum(), 210u);
  EXPECT_EQ(a.min(), 1u);
  EXPECT_EQ(a.max(), 20u);
  EXPECT_DOUBLE_EQ(a.variance(), 33.25);
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.median(), 0u);
  a.Add(5);
  EXPECT_EQ(a.min(), 5u);
  EXPECT_EQ(a.median(), 5u);
  Distribution empty;
  empty.Merge(a);
  EXPECT_EQ(empty.min(), 5u);
}

// Values reach the sketch in batches; every read sees all of them.
TEST(MetricsDistributionTest, QuantilesSeeEveryValueWhateverTheBatching) {
  for (int n : {1, 7, 15, 16, 17, 33, 100}) {
    Distribution d, a, b;
    QuantileSketch all;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t v = (static_cast<std::uint64_t>(i) * 7919) % 1000 + (i % 3 == 0 ? 0 : 5);
      d.Add(v);
      (i % 2 == 0 ? a : b).Add(v);
      all.Add(static_cast<double>(v));
    }
    a.Merge(b);
    for (const Distribution* x : {&d, &a}) {
      const QuantileSketch s = x->sketch();
      EXPECT_EQ(s.count(), all.count());
      for (int r = 0; r < n; ++r) {
        const double q = (r + 0.5) / (n > 1 ? n - 1 : 1);
        EXPECT_EQ(s.Quantile(q), all.Quantile(q)) << n << " " << r;
      }
      EXPECT_EQ(x->median(), d.median());
      EXPECT_EQ(x->Percentile(0.9), d.Percentile(0.9));
    }
  }
}

// Past 128 bits of squares the variance is still exact, added one by one or
// merged: n values 977 apart just below 2^64 have variance 977^2 (n^2 - 1) / 12.
TEST(MetricsDistributionTest, OverflowVarianceIsExact) {
  for (int n : {3, 16, 17, 40}) {
    Distribution d, a, b;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t v = UINT64_MAX - static_cast<std::uint64_t>(i) * 977;
      d.Add(v);
      (i < n / 2 ? a : b).Add(v);
    }
    a.Merge(b);
    const double want = 977.0 * 977.0 * (static_cast<double>(n) * n - 1) / 12;
    EXPECT_DOUBLE_EQ(d.variance(), want) << n;
    EXPECT_DOUBLE_EQ(a.variance(), want) << n;
  }
}

TEST(MetricsDistributionTest, HugeValuesKeepAnExactVariance) {
  Distribution d;
  // Squares overflow 128 bits; deviations -1.5, -0.5, 0.5, 1.5 from the mean.
  for (int i = 0; i < 4; ++i) d.Add(UINT64_MAX - i);
  EXPECT_DOUBLE_EQ(d.variance(), 1.25);
  // The widest spread: half at 0, half at 2^64 - 1.
  Distribution wide;
  for (int i = 0; i < 6; ++i) wide.Add(i % 2 ? UINT64_MAX : 0);
  EXPECT_DOUBLE_EQ(wide.variance(), 0x1p64 * 0x1p64 / 4);
}

// --- the engine ---

class MetricsEngineTest : public ::testing::Test {
 protected:
  const MetricNode* Node(std::string_view metric, std::initializer_list<std::string_view> path) {
    const Metric* m = engine_.Find(metric);
    if (m == nullptr) return nullptr;
    const MetricNode* n = &m->root();
    for (std::string_view p : path) {
      const MetricNode* next = nullptr;
      for (const auto& c : n->children())
        if (c->sub_name() == p) next = c.get();
      if (next == nullptr) return nullptr;
      n = next;
    }
    return n;
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> out;
    engine_.ForEachNode([&](const Metric& m, const MetricNode& n) {
      out.push_back(m.name() + "/" + std::to_string(n.depth()) + "/" + n.sub_name() + "=" +
                    std::to_string(n.duration().count()));
    });
    return out;
  }

  // The metrics Process() counts `e` in, in order, each followed by a space
  // (those with an exporter: the sink sees them).
  std::string Processed(const Event& e) {
    std::string out;
    engine_.set_export_sink([&](const Metric& m, const Event&) { out += m.name() + " "; });
    engine_.Process(e);
    engine_.set_export_sink(nullptr);
    return out;
  }
  // The metrics whose filters alone match `e`, in the engine's order.
  std::string FiltersMatching(const Event& e) {
    std::string out;
    for (const auto& m : engine_.metrics())
      if (m->definition().filter.Matches(e)) out += m->name() + " ";
    return out;
  }

  MetricsEngine engine_;
};

TEST_F(MetricsEngineTest, AddRemoveAndOrder) {
  ASSERT_TRUE(engine_.Add(Def("dyn1", "event=a")).ok());
  ASSERT_TRUE(engine_.Add(Def("conf1", "event=b"), MetricsEngine::Origin::kConfig).ok());
  ASSERT_TRUE(engine_.Add(Def("dyn2", "event=c")).ok());
  ASSERT_TRUE(engine_.Add(Def("conf2", "event=d"), MetricsEngine::Origin::kConfig).ok());
  Status dup = engine_.Add(Def("dyn1", "event=x"));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Metric already exists");
  std::vector<std::string> names;
  for (const auto& m : engine_.metrics()) names.push_back(m->name());
  EXPECT_EQ(names, (std::vector<std::string>{"conf1", "conf2", "dyn1", "dyn2"}));
  EXPECT_EQ(engine_.CombinedFilter().ExportDovecot(),
            "(event=\"b\") OR (event=\"d\") OR (event=\"a\") OR (event=\"c\")");

  Status missing = engine_.Remove("nope");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "metrics 'nope' not found");
  ASSERT_TRUE(engine_.Remove("conf1").ok());
  ASSERT_TRUE(engine_.Remove("dyn2").ok());
  EXPECT_EQ(engine_.CombinedFilter().ExportDovecot(), "(event=\"d\") OR (event=\"a\")");
  EXPECT_EQ(engine_.Find("conf1"), nullptr);
}

TEST_F(MetricsEngineTest, CountsNamedMatchingEventsOnly) {
  ASSERT_TRUE(engine_.Add(Def("m", "duration>=0 OR NOT event=x")).ok());
  EXPECT_FALSE(engine_.CombinedFilter().RequiresEventName());
  Ev unnamed;
  unnamed.Int("duration", 5);
  engine_.Process(unnamed.e);  // the 2.3.19 server never counts these
  EXPECT_EQ(engine_.Find("m")->root().duration().count(), 0u);
  Ev named("y");
  named.Int("duration", 5);
  engine_.Process(named.e);
  EXPECT_EQ(engine_.Find("m")->root().duration().count(), 1u);

  ASSERT_TRUE(engine_.Add(Def("only_a", "event=a")).ok());
  engine_.Process(Ev("b").e);
  EXPECT_EQ(engine_.Find("only_a")->root().duration().count(), 0u);
}

TEST_F(MetricsEngineTest, GroupByReadsTheTaxonomyWhereNoFieldIs) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "", "outcome remote_ip", "", kMailscope)).ok());
  const FieldAlias alias{InternName("remote_ip"), InternName("remoteIp")};
  Ev ev("e");
  ev.Str("remoteIp", "192.0.2.7");
  ev.e.taxonomy = {InternName("auth"), InternName("failure"), &alias, 1};
  engine_.Process(ev.e);
  // A field of that name wins over the taxonomy.
  Ev own("e");
  own.Str("outcome", "own").Str("remote_ip", "198.51.100.1");
  own.e.taxonomy = ev.e.taxonomy;
  engine_.Process(own.e);
  EXPECT_EQ(Lines(), (std::vector<std::string>{"m/0/=2", "m/1/failure=1", "m/2/192.0.2.7=1",
                                               "m/1/own=1", "m/2/198.51.100.1=1"}));
}

TEST_F(MetricsEngineTest, FieldsAreLookedUpRecursively) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "size user tv missing from_global")).ok());
  Ev global;
  global.Int("from_global", 7).Int("size", 999);
  Ev grand;
  grand.Int("size", 1000);
  Ev parent;
  parent.Str("user", "alice").Tv("tv", 2, 500);
  parent.e.parent = &grand.e;
  Ev ev("e");
  ev.Int("duration", 42);
  ev.e.parent = &parent.e;
  ev.e.global = &global.e;
  engine_.Process(ev.e);
  const MetricNode& n = engine_.Find("m")->root();
  EXPECT_EQ(n.duration().sum(), 42u);
  EXPECT_EQ(n.field(0).sum(), 1000u);  // the grandparent's, before the global event
  EXPECT_EQ(n.field(1).count(), 1u);   // a string counts as 0
  EXPECT_EQ(n.field(1).sum(), 0u);
  EXPECT_EQ(n.field(2).sum(), 2000500u);  // timeval: sec*10^6 + usec
  EXPECT_EQ(n.field(3).count(), 0u);      // missing: not counted
  EXPECT_EQ(n.field(4).sum(), 7u);

  // No duration anywhere: counted as 0, as Dovecot adds duration=0.
  engine_.Process(Ev("e").e);
  EXPECT_EQ(n.duration().count(), 2u);
  EXPECT_EQ(n.duration().min(), 0u);
}

// As FindInChain(): the first field of a key with a value, then the parents.
TEST_F(MetricsEngineTest, OwnFieldsFirstValuedOneWins) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "a b c")).ok());
  Ev parent;
  parent.Int("a", 100).Int("b", 200).Int("c", 300);
  Ev ev("e");
  ev.e.Add(InternName("a"), Value());  // no value: looked past
  ev.Int("b", 2).Int("a", 1).Int("b", 3);
  ev.e.parent = &parent.e;
  engine_.Process(ev.e);
  const MetricNode& root = engine_.Find("m")->root();
  EXPECT_EQ(root.field(0).sum(), 1u);
  EXPECT_EQ(root.field(1).sum(), 2u);
  EXPECT_EQ(root.field(2).sum(), 300u);
}

TEST_F(MetricsEngineTest, RecordColumnsAreFields) {
  static const RecordColumn kColumns[] = {{"rec_a", RecordColumn::Type::kU32, 0},
                                          {"rec_tv", RecordColumn::Type::kTimeval, 8}};
  static const RecordSchema kSchema = {"r", 24, kColumns, 2};
  struct {
    std::uint32_t a = 17;
    std::uint32_t pad = 0;
    std::int64_t sec = 1;
    std::int64_t usec = 5;
  } data;
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "rec_a rec_tv")).ok());
  Ev ev("e");
  ev.e.Add(InternName("record"), Value::Record(&kSchema, &data));
  engine_.Process(ev.e);
  const MetricNode& n = engine_.Find("m")->root();
  EXPECT_EQ(n.field(0).sum(), 17u);
  EXPECT_EQ(n.field(1).sum(), 1000005u);
}

TEST_F(MetricsEngineTest, GroupByNestsInCreationOrder) {
  ASSERT_TRUE(engine_
                  .Add(Def("imap_command", "event=imap_command_finished", "bytes_in bytes_out",
                           "cmd_name tagged_reply_state"))
                  .ok());
  auto cmd = [&](std::string_view name, std::string_view state, std::int64_t dur) {
    Ev ev("imap_command_finished");
    ev.Str("cmd_name", name).Str("tagged_reply_state", state).Int("duration", dur);
    ev.Int("bytes_in", 1).Int("bytes_out", 2);
    engine_.Process(ev.e);
  };
  cmd("SELECT", "OK", 10);
  cmd("SELECT", "NO", 20);
  cmd("NOOP", "OK", 30);
  cmd("SELECT", "OK", 40);
  Ev no_state("imap_command_finished");
  no_state.Str("cmd_name", "NOOP").Int("duration", 50);
  engine_.Process(no_state.e);  // a missing group field: no sub-metric at that level
  EXPECT_EQ(Lines(), (std::vector<std::string>{
                         "imap_command/0/=5",
                         "imap_command/1/SELECT=3",
                         "imap_command/2/OK=2",
                         "imap_command/2/NO=1",
                         "imap_command/1/NOOP=2",
                         "imap_command/2/OK=1",
                     }));
  const MetricNode* ok = Node("imap_command", {"SELECT", "OK"});
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->duration().sum(), 50u);
  EXPECT_EQ(ok->field(1).sum(), 4u);
  EXPECT_EQ(ok->bucket(), -1);
  EXPECT_EQ(engine_.Find("imap_command")->sub_metric_count(), 5u);
}

TEST_F(MetricsEngineTest, DiscreteValueTypes) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "", "v")).ok());
  const std::string long_a = std::string(100, 'x') + "a";
  const std::string long_b = std::string(100, 'x') + "b";
  engine_.Process(Ev("e").Int("v", 250).e);
  engine_.Process(Ev("e").Int("v", -1).e);
  engine_.Process(Ev("e").Str("v", "250").e);  // a string is its own key
  engine_.Process(Ev("e").Tv("v", 1, 2).e);    // timevals never group
  engine_.Process(Ev("e").Str("v", long_a).e);
  engine_.Process(Ev("e").Str("v", long_b).e);
  engine_.Process(Ev("e").Str("v", long_a).e);
  engine_.Process(Ev("e").Int("v", 250).e);
  std::vector<std::string> names;
  std::vector<std::uint64_t> counts;
  for (const auto& c : engine_.Find("m")->root().children()) {
    names.push_back(c->sub_name());
    counts.push_back(c->duration().count());
  }
  const std::string cut = std::string(31, 'x') + "\xE2\x80\xA6";
  EXPECT_EQ(names, (std::vector<std::string>{"250", "18446744073709551615", "250", cut, cut}));
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{2, 1, 1, 2, 1}));
}

TEST_F(MetricsEngineTest, QuantizedGroupsIntegersOnly) {
  ASSERT_TRUE(
      engine_
          .Add(Def("imap_command_bytes_out", "event=c", "", "bytes_out:linear:0:1000:250 cmd_name"))
          .ok());
  engine_.Process(Ev("c").Int("bytes_out", 300).Str("cmd_name", "A").e);
  engine_.Process(Ev("c").Int("bytes_out", 0).e);
  engine_.Process(Ev("c").Int("bytes_out", 1).e);
  engine_.Process(Ev("c").Str("bytes_out", "5").e);  // ignored
  engine_.Process(Ev("c").Int("bytes_out", 500).Str("cmd_name", "B").e);
  EXPECT_EQ(Lines(), (std::vector<std::string>{
                         "imap_command_bytes_out/0/=5",
                         "imap_command_bytes_out/1/bytes_out_251_500=2",
                         "imap_command_bytes_out/2/A=1",
                         "imap_command_bytes_out/2/B=1",
                         "imap_command_bytes_out/1/bytes_out_ninf_0=1",
                         "imap_command_bytes_out/1/bytes_out_1_250=1",
                     }));
  EXPECT_EQ(Node("imap_command_bytes_out", {"bytes_out_251_500"})->bucket(), 2);
}

// A level of few buckets finds its sub-metrics by bucket number, one of many
// by key: the same sub-metrics, in the same order, with the same counts.
TEST_F(MetricsEngineTest, FewAndManyBucketsGroupAlike) {
  ASSERT_TRUE(engine_.Add(Def("few", "event=c", "", "n:linear:0:100:1 k")).ok());  // 102 buckets
  ASSERT_TRUE(engine_.Add(Def("many", "event=c", "", "n:linear:0:1000:1 k")).ok());
  std::mt19937_64 rng(3);
  for (int i = 0; i < 3000; ++i) {
    Ev ev("c");
    ev.Int("n", static_cast<std::int64_t>(rng() % 106) - 5);  // -5 .. 100: named alike in both
    if (i % 7 != 0) ev.Str("k", i % 2 ? "x" : "y");
    engine_.Process(ev.e);
  }
  std::vector<std::string> few, many;
  for (const std::string& line : Lines()) {
    if (line.starts_with("few/")) few.push_back(line.substr(4));
    if (line.starts_with("many/")) many.push_back(line.substr(5));
  }
  EXPECT_EQ(few.size(), 1u + 101u + 2u * 101u);  // -5 .. 0 share n_ninf_0
  EXPECT_EQ(few, many);
  EXPECT_EQ(Node("few", {"n_ninf_0"})->bucket(), 0);
  EXPECT_EQ(Node("many", {"n_ninf_0"})->bucket(), 0);
  EXPECT_EQ(Node("few", {"n_100_100"})->bucket(), 100);
}

TEST_F(MetricsEngineTest, DurationHistogramFromTheCapture) {
  ASSERT_TRUE(
      engine_.Add(Def("imap_command_duration", "event=c", "", "duration:exponential:1:5:10")).ok());
  for (std::int64_t d : {5388, 353, 47, 118, 12}) engine_.Process(Ev("c").Int("duration", d).e);
  EXPECT_EQ(Lines(), (std::vector<std::string>{
                         "imap_command_duration/0/=5",
                         "imap_command_duration/1/duration_1001_10000=1",
                         "imap_command_duration/1/duration_101_1000=2",
                         "imap_command_duration/1/duration_11_100=2",
                     }));
}

TEST_F(MetricsEngineTest, SubMetricCapDropsNewValues) {
  MetricsEngine engine(MetricsOptions{.max_sub_metrics = 3});
  ASSERT_TRUE(engine.Add(Def("m", "event=e", "", "a b")).ok());
  engine.Process(Ev("e").Str("a", "1").Str("b", "x").e);  // 2 sub-metrics
  engine.Process(Ev("e").Str("a", "2").Str("b", "x").e);  // a=2 fits, its b=x does not
  engine.Process(Ev("e").Str("a", "3").e);                // dropped
  engine.Process(Ev("e").Str("a", "1").Str("b", "x").e);  // existing: counted
  const Metric* m = engine.Find("m");
  EXPECT_EQ(m->sub_metric_count(), 3u);
  EXPECT_EQ(m->sub_metrics_dropped(), 2u);
  EXPECT_EQ(engine.sub_metrics_dropped(), 2u);
  EXPECT_EQ(m->root().duration().count(), 4u);
  EXPECT_EQ(m->root().children()[0]->children()[0]->duration().count(), 2u);
}

// Values go only to the deepest node an event reaches; every node still
// answers as if each event had been added at every level it passes, as
// Dovecot counts: checked against distributions fed directly, in every
// statistic, with sketches small enough to collapse their lowest buckets,
// events that stop early (a group field missing) and a full sub-metric cap.
TEST_F(MetricsEngineTest, NodesAnswerForTheirWholeSubtree) {
  const MetricsOptions options{.max_sub_metrics = 7, .sketch_max_buckets = 64};
  MetricsEngine engine(options);
  ASSERT_TRUE(engine.Add(Def("m", "event=e", "size", "a b")).ok());
  const QuantileSketch empty(options.relative_error, options.sketch_max_buckets);
  struct Expected {
    Distribution duration, size;
  };
  std::map<std::vector<std::string>, Expected> expected;  // by node path
  auto expect = [&](const std::vector<std::string>& path, std::uint64_t d, std::uint64_t size) {
    auto [it, fresh] =
        expected.try_emplace(path, Expected{Distribution(empty), Distribution(empty)});
    it->second.duration.Add(d);
    it->second.size.Add(size);
  };
  std::mt19937_64 rng(7);
  auto log_uniform = [&] {
    return static_cast<std::uint64_t>(std::exp2(std::uniform_real_distribution<>(0, 40)(rng)));
  };
  std::set<std::string> a_nodes;
  std::set<std::pair<std::string, std::string>> b_nodes;
  std::size_t nodes = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t d = log_uniform(), size = log_uniform();
    Ev ev("e");
    ev.Int("duration", static_cast<std::int64_t>(d)).Int("size", static_cast<std::int64_t>(size));
    std::vector<std::string> path;
    expect(path, d, size);
    const int roll = static_cast<int>(rng() % 10);
    if (roll == 0) {  // no `a`: the event stops at the metric
      engine.Process(ev.e);
      continue;
    }
    const std::string a = std::to_string(rng() % 5), b = std::to_string(rng() % 3);
    ev.Str("a", a);
    if (a_nodes.contains(a) ||
        (nodes < options.max_sub_metrics && a_nodes.insert(a).second && ++nodes)) {
      path.push_back(a);
      expect(path, d, size);
      if (roll != 1) {  // roll 1: no `b`, the event stops at a
        ev.Str("b", b);
        if (b_nodes.contains({a, b}) ||
            (nodes < options.max_sub_metrics && b_nodes.insert({a, b}).second && ++nodes)) {
          path.push_back(b);
          expect(path, d, size);
        }
      }
    }
    engine.Process(ev.e);
  }
  ASSERT_EQ(engine.Find("m")->sub_metric_count(), options.max_sub_metrics);
  ASSERT_GT(engine.Find("m")->sub_metrics_dropped(), 0u);
  auto describe = [](const Distribution& d) {
    std::string s =
        fmt::format("count {} sum {} min {} max {} avg {:.2f} variance {:.2f} median {}", d.count(),
                    d.sum(), d.min(), d.max(), d.avg(), d.variance(), d.median());
    for (double f : {0.01, 0.1, 0.5, 0.9, 0.95, 0.99}) s += fmt::format(" {}", d.Percentile(f));
    return s;
  };
  std::size_t checked = 0;
  for (const auto& [path, want] : expected) {
    std::vector<std::string_view> names(path.begin(), path.end());
    const MetricNode* n = engine.Find("m") != nullptr ? &engine.Find("m")->root() : nullptr;
    for (std::string_view p : names) {
      const MetricNode* next = nullptr;
      for (const auto& c : n->children())
        if (c->sub_name() == p) next = c.get();
      ASSERT_NE(next, nullptr) << p;
      n = next;
    }
    SCOPED_TRACE(fmt::format("node {}", fmt::join(path, "/")));
    EXPECT_EQ(describe(n->duration()), describe(want.duration));
    EXPECT_EQ(describe(n->field(0)), describe(want.size));
    EXPECT_EQ(n->count(), want.duration.count());
    EXPECT_EQ(n->duration_sum(), want.duration.sum());
    EXPECT_EQ(n->field_sum(0), want.size.sum());
    ++checked;
  }
  EXPECT_EQ(checked, 1 + options.max_sub_metrics);
}

// Dovecot's metrics count values as sent, whatever their unit.
TEST_F(MetricsEngineTest, DovecotMetricsIgnoreUnits) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "elapsed size", "elapsed:linear:0:100:10")).ok());
  engine_.Process(Ev("e")
                      .Num("duration", Value::Int(7).WithUnit(Unit::kSeconds))
                      .Num("elapsed", Value::Int(15).WithUnit(Unit::kMilliseconds))
                      .Num("size", Value::Int(3).WithUnit(Unit::kBytes))
                      .e);
  const Metric* m = engine_.Find("m");
  EXPECT_EQ(m->root().duration().sum(), 7u);
  EXPECT_EQ(m->root().field(0).sum(), 15u);
  EXPECT_EQ(m->root().children()[0]->sub_name(), "elapsed_11_20");
  EXPECT_EQ(m->duration_unit(), Unit::kNone);
  EXPECT_EQ(m->field_unit(0), Unit::kNone);
  EXPECT_EQ(m->unit_conflicts(), 0u);
}

// Stalwart's `elapsed` comes in milliseconds, Dovecot's `duration` in
// microseconds; mailscope's metrics count both in microseconds.
TEST_F(MetricsEngineTest, MailscopeMetricsCountInBaseUnits) {
  ASSERT_TRUE(engine_
                  .Add(Def("m", "event=e AND elapsed>10ms", "elapsed size plain",
                           "elapsed:linear:0:100000:10000", "", kMailscope))
                  .ok());
  const Metric* m = engine_.Find("m");
  EXPECT_EQ(m->duration_unit(), Unit::kMicroseconds);  // before any value
  EXPECT_EQ(m->field_unit(0), Unit::kNone);
  engine_.Process(Ev("e")
                      .Num("elapsed", Value::Int(15).WithUnit(Unit::kMilliseconds))
                      .Num("size", Value::Uint(2048).WithUnit(Unit::kBytes))
                      .Int("plain", 4)
                      .e);
  engine_.Process(Ev("e")
                      .Num("duration", Value::Int(2).WithUnit(Unit::kSeconds))
                      .Num("elapsed", Value::Double(20.5).WithUnit(Unit::kMilliseconds))
                      .Num("size", Value::Int(10))  // untagged: as it is
                      .e);
  engine_.Process(Ev("e")
                      .Num("duration", Value::Int(300).WithUnit(Unit::kMicroseconds))
                      .Num("elapsed", Value::Int(5).WithUnit(Unit::kMilliseconds))  // no match
                      .e);
  EXPECT_EQ(m->root().duration().count(), 2u);
  EXPECT_EQ(m->root().duration().sum(), 2'000'000u);
  EXPECT_EQ(m->root().field(0).sum(), 15'000u + 20'500u);
  EXPECT_EQ(m->root().field(1).sum(), 2058u);
  EXPECT_EQ(m->root().field(2).sum(), 4u);
  EXPECT_EQ(m->duration_unit(), Unit::kMicroseconds);
  EXPECT_EQ(m->field_unit(0), Unit::kMicroseconds);
  EXPECT_EQ(m->field_unit(1), Unit::kBytes);
  EXPECT_EQ(m->field_unit(2), Unit::kNone);
  EXPECT_EQ(m->group_unit(0), Unit::kMicroseconds);
  // Quantized bounds count microseconds too.
  EXPECT_EQ(Lines(), (std::vector<std::string>{"m/0/=2", "m/1/elapsed_10001_20000=1",
                                               "m/1/elapsed_20001_30000=1"}));
}

// The first tagged value decides a field's kind; values of the other kind
// are left out and counted once per event.
TEST_F(MetricsEngineTest, MailscopeMetricsKeepTheFirstUnitKind) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "x", "g", "", kMailscope)).ok());
  ASSERT_TRUE(engine_.Add(Def("q", "event=e", "", "g:linear:0:10:5", "", kMailscope)).ok());
  engine_.Process(Ev("e")
                      .Num("x", Value::Int(3).WithUnit(Unit::kSeconds))
                      .Num("g", Value::Int(1).WithUnit(Unit::kMilliseconds))
                      .e);
  engine_.Process(Ev("e")
                      .Num("duration", Value::Int(5).WithUnit(Unit::kBytes))
                      .Num("x", Value::Int(100).WithUnit(Unit::kBytes))
                      .Num("g", Value::Int(2).WithUnit(Unit::kBytes))
                      .e);
  engine_.Process(Ev("e").Num("x", Value::Int(1).WithUnit(Unit::kMilliseconds)).Str("g", "s").e);
  const Metric* m = engine_.Find("m");
  EXPECT_EQ(m->field_unit(0), Unit::kMicroseconds);
  EXPECT_EQ(m->group_unit(0), Unit::kMicroseconds);
  EXPECT_EQ(m->root().duration().count(), 3u);  // the bytes duration counts as 0
  EXPECT_EQ(m->root().duration().sum(), 0u);
  EXPECT_EQ(m->root().field(0).count(), 2u);
  EXPECT_EQ(m->root().field(0).sum(), 3'001'000u);
  // duration, x and g of the second event, once each though g's level is
  // below the root.
  EXPECT_EQ(m->unit_conflicts(), 3u);
  EXPECT_EQ(Lines(), (std::vector<std::string>{"m/0/=3", "m/1/1000=1", "m/1/s=1", "q/0/=3",
                                               "q/1/g_11_inf=1"}));
  EXPECT_EQ(engine_.Find("q")->unit_conflicts(), 2u);  // duration and g
}

TEST_F(MetricsEngineTest, SteadyStateAllocatesNothing) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  ASSERT_TRUE(engine_.Add(Def("d", "event=e", "elapsed size", "cmd elapsed:linear:0:100:10")).ok());
  ASSERT_TRUE(engine_
                  .Add(Def("m", "event=e AND elapsed>1ms", "elapsed size",
                           "cmd elapsed:linear:0:100000:10000", "", kMailscope))
                  .ok());
  Ev ev("e");
  ev.Str("cmd", "SELECT")
      .Num("duration", Value::Int(1500).WithUnit(Unit::kMicroseconds))
      .Num("elapsed", Value::Int(15).WithUnit(Unit::kMilliseconds))
      .Num("size", Value::Uint(2048).WithUnit(Unit::kBytes));
  for (int i = 0; i < 100; ++i) engine_.Process(ev.e);  // nodes and sketch buckets exist now
  const long before = HeapAllocationsForTesting();
  for (int i = 0; i < 1000; ++i) engine_.Process(ev.e);
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
  EXPECT_EQ(engine_.Find("m")->root().duration().count(), 1100u);
  EXPECT_EQ(engine_.Find("d")->root().duration().count(), 1100u);
}

TEST_F(MetricsEngineTest, ResetEmptiesCountsAndKeepsSubMetrics) {
  ASSERT_TRUE(engine_.Add(Def("m", "event=e", "f", "g")).ok());
  engine_.Process(Ev("e").Str("g", "x").Int("f", 3).Int("duration", 9).e);
  const std::size_t before = engine_.memory_bytes();
  engine_.Reset();
  EXPECT_EQ(Lines(), (std::vector<std::string>{"m/0/=0", "m/1/x=0"}));
  EXPECT_EQ(engine_.Find("m")->root().field(0).count(), 0u);
  EXPECT_GT(before, 0u);
  engine_.Process(Ev("e").Str("g", "x").Int("duration", 4).e);
  EXPECT_EQ(Node("m", {"x"})->duration().max(), 4u);
}

// Metrics are picked by event name before their filters run; the result and
// the order (seen by the export sink) are those of testing every filter.
TEST_F(MetricsEngineTest, NameIndexKeepsMetricOrderAndFilterResults) {
  const std::pair<const char*, const char*> defs[] = {
      {"a", "event=a"},
      {"any", "x=1"},
      {"a_x", "event=a AND x=1"},
      {"ab", "event=a OR event=b"},
      {"wild", "event=a*"},
      {"not_a", "NOT event=a"},
      {"b_or_x", "event=b OR x=1"},
      {"none", "event=a AND event=b"},
  };
  for (const auto& [name, filter] : defs) {
    ASSERT_TRUE(engine_.Add(Def(name, filter, "", "", "exp")).ok());
  }
  std::vector<std::string> seen;
  engine_.set_export_sink([&](const Metric& m, const Event&) { seen.push_back(m.name()); });
  auto run = [&](std::string_view event_name, int x) {
    seen.clear();
    Ev ev(event_name);
    if (x != 0) ev.Int("x", x);
    engine_.Process(ev.e);
    std::string out;
    for (const std::string& s : seen) out += s + " ";
    return out;
  };
  EXPECT_EQ(run("a", 0), "a ab wild ");
  EXPECT_EQ(run("a", 1), "a any a_x ab wild b_or_x ");
  EXPECT_EQ(run("b", 0), "ab not_a b_or_x ");
  EXPECT_EQ(run("b", 1), "any ab not_a b_or_x ");
  EXPECT_EQ(run("abc", 1), "any wild not_a b_or_x ");
  EXPECT_EQ(run("c", 0), "not_a ");
  ASSERT_TRUE(engine_.Remove("ab").ok());
  ASSERT_TRUE(engine_.Add(Def("c", "event=c AND NOT x=2", "", "", "exp")).ok());
  EXPECT_EQ(run("a", 0), "a wild ");
  EXPECT_EQ(run("c", 0), "not_a c ");
  EXPECT_EQ(run("c", 2), "not_a ");
  EXPECT_EQ(engine_.Find("a")->root().duration().count(), 3u);
  EXPECT_EQ(engine_.Find("none")->root().duration().count(), 0u);
}

// The filters take their fields from the engine's lookups (FieldSource):
// the same answers as Filter::Matches() on its own, wherever the field is.
TEST_F(MetricsEngineTest, FiltersSeeWhatMatchesSeesThroughTheLookups) {
  static const RecordColumn kColumns[] = {{"rec_a", RecordColumn::Type::kU32, 0}};
  static const RecordSchema kSchema = {"r", 4, kColumns, 1};
  static const std::uint32_t kRecord = 17;
  const std::pair<const char*, const char*> defs[] = {
      {"own", "event=e AND (cmd=SEARCH OR cmd=STORE OR state=NO)"},
      {"parent", "event=e AND user=al*"},
      {"global", "event=e AND g>5"},
      {"missing", "event=e AND nothere=\"\""},
      {"record", "event=e AND rec_a=17"},
      {"kind", "event=e AND kind=auth AND outcome=failure"},
      {"alias", "event=e AND remote_ip=192.0.2.*"},
      {"source", "event=e AND source=dovecot"},
      {"not", "event=e AND NOT size>=100"},
  };
  for (const auto& [name, filter] : defs) {
    // Counting some of the same fields too, so that lookups are shared.
    ASSERT_TRUE(engine_.Add(Def(name, filter, "size g", "cmd", "exp", kMailscope)).ok());
  }
  // An alias for a key the filter gives a pipeline meaning (`source`): the
  // filter's meaning wins, as in Matches() alone.
  const FieldAlias aliases[] = {{InternName("remote_ip"), InternName("remoteIp")},
                                {InternName("source"), InternName("origin")}};
  Ev global;
  global.Int("g", 9);
  Ev parent;
  parent.Str("user", "alice").Str("cmd", "FETCH");
  for (int variant = 0; variant < 8; ++variant) {
    Ev ev("e");
    if (variant & 1) ev.Str("cmd", "STORE").Int("size", 50);
    if (variant & 2) ev.Str("state", "NO").Str("remoteIp", "192.0.2.9").Int("size", 500);
    if (variant & 4) {
      ev.e.Add(InternName("record"), Value::Record(&kSchema, &kRecord));
      ev.e.parent = &parent.e;
      ev.e.global = &global.e;
      ev.e.taxonomy = {InternName("auth"), InternName("failure"), aliases, 2};
      ev.Str("origin", "elsewhere");
    }
    ev.e.source = Source::kDovecot;
    EXPECT_EQ(Processed(ev.e), FiltersMatching(ev.e)) << "variant " << variant;
  }
}

// Metrics whose filters require a field to be one of a few strings sit
// behind a gate that looks the field up once an event (AddGate()): they
// match what their filters match alone, whatever the field's case, type
// or place, and past the gate's 64 values a metric goes without one.
TEST_F(MetricsEngineTest, GatedMetricsMatchWhatTheirFiltersMatch) {
  std::string many = "program=v0";
  for (int i = 1; i < 70; ++i) many += " OR program=v" + std::to_string(i);
  const FieldAlias aliases[] = {{InternName("prog"), InternName("program")}};
  const std::pair<std::string, std::string> defs[] = {
      {"smtpd", "program=qmail-smtpd AND source=qmail_log"},
      {"popup", "program=QMAIL-POPUP"},
      {"either", "(program=qmail-smtpd OR program=qmail-popup) AND x=1"},
      {"named", "event=e AND program=qmail-smtpd"},
      {"alias", "prog=qmail-popup"},
      {"source", "source=dovecot AND x=1"},
      {"kind", "kind=auth"},
      {"many", many},
      {"v65", "program=v65 AND NOT x=1"},
      {"number", "program=5"},
  };
  for (const auto& [name, filter] : defs) {
    ASSERT_TRUE(engine_.Add(Def(name, filter, "", "", "exp")).ok());
  }
  const Value programs[] = {Value::String("qmail-smtpd"),
                            Value::String("QMAIL-SMTPD"),
                            Value::String("qmail-popup"),
                            Value::String("qmail-smtpdx"),
                            Value::String("v65"),
                            Value::String("V3"),
                            Value::String("v64"),
                            Value::String("v69"),
                            Value::String(""),
                            Value::Int(5),
                            Value{}};
  Ev parent("p");
  int matched = 0;
  for (const Value& program : programs) {
    for (int variant = 0; variant < 32; ++variant) {
      Ev ev(variant & 16 ? "e" : "f");
      if (variant & 1) ev.Int("x", 1);
      if (variant & 2) {
        // Only the parent's counts: an own field without a value is passed over.
        parent.e.fields.clear();
        parent.Num("program", program);
        ev.e.parent = &parent.e;
        ev.Num("program", Value{});
      } else if (program.type() != Value::Type::kNone) {
        ev.Num("program", program);
      }
      ev.e.source = variant & 4 ? Source::kQmailLog : Source::kDovecot;
      if (variant & 8) ev.e.taxonomy = {InternName("auth"), kNoName, aliases, 1};
      const std::string got = Processed(ev.e);
      EXPECT_EQ(got, FiltersMatching(ev.e)) << "variant " << variant;
      matched += static_cast<int>(std::count(got.begin(), got.end(), ' '));
    }
  }
  EXPECT_GT(matched, 100);
}

TEST_F(MetricsEngineTest, ExportSinkSeesExportedMetricsOnly) {
  ASSERT_TRUE(engine_.Add(Def("plain", "event=e")).ok());
  ASSERT_TRUE(engine_.Add(Def("exported", "event=e", "", "", "json_http")).ok());
  std::vector<std::string> seen;
  engine_.set_export_sink([&](const Metric& m, const Event&) { seen.push_back(m.name()); });
  engine_.Process(Ev("e").e);
  EXPECT_EQ(seen, (std::vector<std::string>{"exported"}));
}

// The FETCH rows of stats-reader-wire.txt (metric imap_command of the
// capture config), reproduced with the five events behind them.
TEST_F(MetricsEngineTest, CapturedFetchNumbers) {
  ASSERT_TRUE(engine_
                  .Add(Def("imap_command", "event=imap_command_finished", "bytes_in bytes_out",
                           "cmd_name tagged_reply_state"))
                  .ok());
  struct {
    const char* state;
    std::int64_t duration, in, out;
  } rows[] = {{"OK", 673, 60, 306},
              {"OK", 704, 60, 306},
              {"BAD", 48, 15, 82},
              {"OK", 759, 60, 306},
              {"OK", 1212, 60, 306}};
  for (const auto& r : rows) {
    Ev ev("imap_command_finished");
    ev.Str("cmd_name", "FETCH").Str("tagged_reply_state", r.state).Int("duration", r.duration);
    engine_.Process(ev.Int("bytes_in", r.in).Int("bytes_out", r.out).e);
  }
  // imap_command_FETCH 5 3396 48 1212 679.20 704 137862.16 1212
  const Distribution& d = Node("imap_command", {"FETCH"})->duration();
  EXPECT_EQ(d.count(), 5u);
  EXPECT_EQ(d.sum(), 3396u);
  EXPECT_EQ(d.min(), 48u);
  EXPECT_EQ(d.max(), 1212u);
  EXPECT_EQ(fmt::format("{:.2f}", d.avg()), "679.20");
  EXPECT_EQ(fmt::format("{:.2f}", d.variance()), "137862.16");
  ExpectNear1Percent(d.median(), 704, "median");
  EXPECT_EQ(d.Percentile(0.95), 1212u);
  // bytes_out 5 1306 82 306 261.20 306 8028.16 306
  const Distribution& out = Node("imap_command", {"FETCH"})->field(1);
  EXPECT_EQ(out.sum(), 1306u);
  EXPECT_EQ(fmt::format("{:.2f}", out.variance()), "8028.16");
  EXPECT_EQ(out.median(), 306u);
  // imap_command_FETCH_OK 4 3348 673 1212 837.00 731 47823.50 1212, %50 704
  const Distribution& ok = Node("imap_command", {"FETCH", "OK"})->duration();
  EXPECT_EQ(fmt::format("{:.2f}", ok.variance()), "47823.50");
  ExpectNear1Percent(ok.median(), 731, "ok median");
  ExpectNear1Percent(ok.Percentile(0.5), 704, "ok %50");
  EXPECT_EQ(Node("imap_command", {"FETCH", "BAD"})->duration().median(), 48u);
}

}  // namespace
}  // namespace mailscope::stats
