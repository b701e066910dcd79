// The daemon's outputs that sit on a store or engine of their own: the
// old-stats zoom levels, the metrics engine, and the event exporters that
// metrics feed. Each is a pipeline::Consumer registered with the Dispatcher
// under its output name. Loop thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "pipeline/dispatcher.h"
#include "serve/exporter_set.h"
#include "serve/rate_limited_log.h"
#include "stats/ingest_counters.h"
#include "stats/metrics_engine.h"
#include "stats/old_stats_store.h"

namespace mailscope::serve {

// Output `old_stats`: Dovecot old-stats records into the zoom levels.
class OldStatsOutput : public pipeline::Consumer {
 public:
  OldStatsOutput(stats::OldStatsStore& store, stats::IngestCounters& counters,
                 RateLimitedLog& reject_log)
      : store_(store), counters_(counters), reject_log_(reject_log) {}
  std::string_view Consume(const Event& event) override;

 private:
  stats::OldStatsStore& store_;
  stats::IngestCounters& counters_;
  RateLimitedLog& reject_log_;
};

// Output `metrics`: every event into the metrics engine. The metrics with an
// exporter that counted the event are kept for the `exporters` output,
// which comes after it.
class MetricsOutput : public pipeline::Consumer {
 public:
  MetricsOutput(stats::MetricsEngine& engine, const pipeline::Dispatcher& dispatcher);
  std::string_view Consume(const Event& event) override;

  // The metrics with an exporter that counted the event of dispatch number
  // `sequence`; empty for any other event.
  const std::vector<const stats::Metric*>& ToExport(std::uint64_t sequence) const {
    return sequence == sequence_ ? to_export_ : kNone;
  }

 private:
  static const std::vector<const stats::Metric*> kNone;
  stats::MetricsEngine& engine_;
  const pipeline::Dispatcher& dispatcher_;
  std::vector<const stats::Metric*> to_export_;
  std::uint64_t sequence_ = 0;
};

// Output `exporters`: the events metrics counted, to the metrics' exporters,
// as Dovecot's stats process exports them. An event is exported when both
// `metrics` and `exporters` take it.
class ExportersOutput : public pipeline::Consumer {
 public:
  ExportersOutput(ExporterSet& exporters, const MetricsOutput& metrics,
                  const pipeline::Dispatcher& dispatcher)
      : exporters_(exporters), metrics_(metrics), dispatcher_(dispatcher) {}
  std::string_view Consume(const Event& event) override;

 private:
  ExporterSet& exporters_;
  const MetricsOutput& metrics_;
  const pipeline::Dispatcher& dispatcher_;
};

}  // namespace mailscope::serve
