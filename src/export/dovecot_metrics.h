// Renders the metrics of Dovecot 2.3's stats service (MetricsEngine) for
// /metrics with Dovecot's names (dovecot_<metric>...) in a layout that
// Prometheus and the OpenMetrics specification accept, where 2.3.19's own is
// not (reference §3.8): counters end in _total (no _count on a counter),
// durations are in seconds as doubles, histogram buckets are cumulative with
// `le` in base units, and no stale labels leak from one metric to the next.
// Loop thread only (reads the engine).
#pragma once

#include "export/openmetrics.h"
#include "stats/metrics_engine.h"

namespace mailscope::exporter {

// For each metric whose name is a valid metric name:
//  - group_by ending in a quantized level (all earlier ones discrete): a
//    histogram family dovecot_<m> per outer group, buckets over the grouped
//    field (seconds when it is `duration`), with _sum (when the field is
//    `duration` or one of the metric's fields) and _count;
//  - otherwise two counter families, dovecot_<m> (events) and
//    dovecot_<m>_duration_seconds, each with an unlabelled sample for the
//    metric and one labelled sample per sub-metric reached through discrete
//    levels whose field is a valid label name (labels outer to inner).
void RenderDovecotMetrics(const stats::MetricsEngine& engine, MetricsWriter& writer);

}  // namespace mailscope::exporter
