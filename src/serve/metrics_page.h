// Renders GET /metrics: mailscope's own figures (events, rejections, memory,
// evictions), the old-stats global figures and the metrics engine's metrics
// with their sub-metric drop counts, from the daemon's state.
// Loop thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/event_router.h"
#include "core/clock.h"
#include "export/openmetrics.h"
#include "net/line_limits.h"
#include "serve/log_source.h"
#include "serve/records_output.h"
#include "serve/stalwart_source.h"
#include "stats/ingest_counters.h"
#include "stats/metrics_engine.h"
#include "stats/old_stats_store.h"

namespace mailscope::serve {

// What became of one exporter's events.
struct ExporterFigures {
  std::string_view name;
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;
  std::uint64_t failed = 0;
};

// What /metrics shows of one FIFO or socket.
struct ListenerFigures {
  std::string name;   // the file name in the run directory, or "tcp ADDR:PORT"
  bool fifo = false;  // a FIFO: only handler_faults applies
  net::LineServerFigures server;
};

struct MetricsSources {
  const stats::OldStatsStore& old_stats;
  const stats::IngestCounters& counters;
  TimePoint start_time;
  std::uint64_t carbon_failures = 0;             // carbon blocks that could not be delivered
  const catalog::EventRouter* router = nullptr;  // unknown-event counts, when present
  // The metrics engine (Dovecot's metrics and mailscope's), when present.
  const stats::MetricsEngine* dovecot_metrics = nullptr;
  std::uint64_t tail_clients = 0;  // `mailscope tail` streams open
  std::uint64_t tail_dropped = 0;  // events not sent to a tail client that fell behind
  std::vector<ExporterFigures> exporters = {};
  std::vector<ListenerFigures> listeners = {};
  // The longest the loop was kept from work that was due (net::LoopStallProbe).
  double loop_stall_seconds = 0;
  // Exim's verdicts not written because they came after [sources.exim] verdict_timeout.
  std::uint64_t exim_late_verdicts = 0;
  // The records sink; its families are left out while it is off.
  RecordsOutputFigures records = {};
  // The [[logs]] sources.
  std::vector<LogSourceFigures> logs = {};
  // POST /ingest/stalwart.
  StalwartFigures stalwart = {};
};

// mailscope_log_lines_total{format,result} and
// mailscope_log_lines_unparsed_total{format,reason}, summed per format: for
// /metrics and `mailscope replay --openmetrics`.
struct LogLineSample {
  std::string_view format;
  const ingest::LogLineFigures* figures;
};
void RenderLogLineFamilies(std::span<const LogLineSample> logs, exporter::MetricsWriter& w);

std::string RenderMetricsPage(const MetricsSources& sources, exporter::MetricsFormat format);

}  // namespace mailscope::serve
