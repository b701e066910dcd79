#include "serve/outputs.h"

namespace mailscope::serve {

std::string_view OldStatsOutput::Consume(const Event& event) {
  Status st = store_.Apply(event);
  if (!st.ok()) {
    counters_.CountRejected(Source::kDovecotOldStats, st.reason());
    reject_log_.Warn("dovecot_old_stats", st.message());
  }
  return {};
}

const std::vector<const stats::Metric*> MetricsOutput::kNone;

MetricsOutput::MetricsOutput(stats::MetricsEngine& engine, const pipeline::Dispatcher& dispatcher)
    : engine_(engine), dispatcher_(dispatcher) {
  engine_.set_export_sink(
      [this](const stats::Metric& metric, const Event&) { to_export_.push_back(&metric); });
}

std::string_view MetricsOutput::Consume(const Event& event) {
  to_export_.clear();
  sequence_ = dispatcher_.sequence();
  engine_.Process(event);
  return {};
}

std::string_view ExportersOutput::Consume(const Event& event) {
  for (const stats::Metric* metric : metrics_.ToExport(dispatcher_.sequence())) {
    exporters_.Export(*metric, event);
  }
  return {};
}

}  // namespace mailscope::serve
