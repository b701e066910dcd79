// Renders the metrics of the MetricsEngine for /metrics in a layout that
// Prometheus and the OpenMetrics specification accept, where Dovecot 2.3.19's
// own is not (reference §3.8): counters end in _total (no _count on a
// counter), durations are in seconds as doubles, histogram buckets are
// cumulative with `le` in base units, and no stale labels leak from one
// metric to the next. Metrics of Dovecot's dialect (dovecot.conf,
// METRICS-ADD) keep Dovecot's names, dovecot_<metric>; those of mailscope's
// dialect ([metrics.NAME]) are named mailscope_<metric> and count in base
// units (seconds, bytes); MetricDefinition::openmetrics_name replaces either.
// Loop thread only (reads the engine).
#pragma once

#include "export/openmetrics.h"
#include "stats/metrics_engine.h"

namespace mailscope::exporter {

// For each metric with a valid name (MetricDefinition::OpenMetricsName(),
// called <m> here):
//  - group_by ending in a quantized level (all earlier ones discrete): a
//    histogram family <m> per outer group, buckets over the grouped field,
//    with _sum (when the field is `duration` or one of the metric's fields)
//    and _count. The field's numbers are shown in seconds when it is
//    `duration`, or, for a mailscope metric, when it learned a time unit
//    (Metric::group_unit()); otherwise as counted (bytes for a size).
//  - otherwise two counter families, <m> (events) and <m>_duration_seconds,
//    each with an unlabelled sample for the metric and one labelled sample
//    per sub-metric reached through discrete levels whose field is a valid
//    label name (labels outer to inner).
void RenderMetrics(const stats::MetricsEngine& engine, MetricsWriter& writer);

}  // namespace mailscope::exporter
