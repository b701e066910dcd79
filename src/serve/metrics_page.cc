#include "serve/metrics_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "catalog/dovecot_old_stats.h"
#include "export/dovecot_metrics.h"

namespace mailscope::serve {

namespace {
constexpr const char* kVersion = "0.1.0";
}

void RenderLogLineFamilies(std::span<const LogLineSample> logs, exporter::MetricsWriter& w) {
  // Summed per format: several logs of one format are one series.
  std::map<std::string_view, ingest::LogLineFigures> by_format;
  for (const LogLineSample& l : logs) {
    ingest::LogLineFigures& f = by_format[l.format];
    f.parsed += l.figures->parsed;
    f.unparsed += l.figures->unparsed;
    for (const auto& [reason, n] : l.figures->unparsed_by_reason) f.unparsed_by_reason[reason] += n;
  }
  w.Family("mailscope_log_lines", "counter",
           "Log lines read, by format and result: parsed, or unparsed (no line of the format)");
  for (const auto& [format, f] : by_format) {
    w.Sample({{"format", format}, {"result", "parsed"}}, f.parsed);
    w.Sample({{"format", format}, {"result", "unparsed"}}, f.unparsed);
  }
  w.Family("mailscope_log_lines_unparsed", "counter", "Log lines not parsed, by format and reason");
  for (const auto& [format, f] : by_format) {
    for (const auto& [reason, n] : f.unparsed_by_reason) {
      w.Sample({{"format", format}, {"reason", reason}}, n);
    }
  }
}

std::string RenderMetricsPage(const MetricsSources& src, exporter::MetricsFormat format) {
  exporter::MetricsWriter w(format);
  const auto& store = src.old_stats;

  w.Family("mailscope_build", "info", "mailscope build information");
  w.Sample({{"version", kVersion}}, std::uint64_t{1});
  w.Family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch",
           "seconds");
  w.Sample({}, static_cast<double>(UnixSeconds(src.start_time)));
  w.Family("mailscope_loop_stall_seconds", "gauge",
           "The longest time the event loop was kept from work that was due, since the start",
           "seconds");
  w.Sample({}, src.loop_stall_seconds);

  w.Family("mailscope_events", "counter",
           "Events accepted, by source and the source's own event name");
  src.counters.ForEachEvent([&](Source s, NameId name, std::uint64_t n) {
    w.Sample({{"source", SourceName(s)}, {"event", NameText(name)}}, n);
  });
  w.Family("mailscope_events_folded", "counter",
           "Events counted in no mailscope_events_total series: their name is unknown to the "
           "catalog and the source already has the most such series allowed");
  for (int s = 0; s < kSourceCount; ++s) {
    const auto source = static_cast<Source>(s);
    if (src.counters.folded(source) != 0)
      w.Sample({{"source", SourceName(source)}}, src.counters.folded(source));
  }
  w.Family("mailscope_taxonomy_events", "counter",
           "Events the catalog places in the taxonomy, by source, kind and outcome (\"unknown\" "
           "when the event does not tell)");
  struct TaxonomySample {
    std::string_view kind, outcome, source;
    std::uint64_t n;
  };
  std::vector<TaxonomySample> taxonomy;
  src.counters.ForEachTaxonomy([&](Source s, NameId kind, NameId outcome, std::uint64_t n) {
    taxonomy.push_back({NameText(kind),
                        outcome != kNoName ? NameText(outcome) : std::string_view("unknown"),
                        SourceName(s), n});
  });
  std::sort(taxonomy.begin(), taxonomy.end(), [](const auto& a, const auto& b) {
    return std::tie(a.source, a.kind, a.outcome) < std::tie(b.source, b.kind, b.outcome);
  });
  for (const TaxonomySample& t : taxonomy)
    w.Sample({{"kind", t.kind}, {"outcome", t.outcome}, {"source", t.source}}, t.n);
  w.Family("mailscope_ingest_rejected", "counter", "Input rejected, by source and reason");
  for (const auto& [key, n] : src.counters.rejected()) {
    w.Sample({{"source", SourceName(key.first)}, {"reason", key.second}}, n);
  }

  w.Family("mailscope_events_unknown", "counter",
           "Events kept although the catalog does not know their name, by source");
  if (src.router != nullptr) {
    for (int s = 0; s < kSourceCount; ++s) {
      auto source = static_cast<Source>(s);
      if (catalog::SystemOf(source))
        w.Sample({{"source", SourceName(source)}}, src.router->unknown(source));
    }
  }

  w.Family("mailscope_export_failures", "counter", "Pushes to an exporter that failed");
  w.Sample({{"exporter", "carbon"}}, src.carbon_failures);

  w.Family("mailscope_exporter_events", "counter",
           "Events handed to an event exporter, by what became of them (sent, dropped, failed)");
  for (const ExporterFigures& e : src.exporters) {
    w.Sample({{"exporter", e.name}, {"result", "sent"}}, e.sent);
    w.Sample({{"exporter", e.name}, {"result", "dropped"}}, e.dropped);
    w.Sample({{"exporter", e.name}, {"result", "failed"}}, e.failed);
  }

  w.Family("mailscope_names", "gauge",
           "Interned names: event names, field keys and categories seen so far");
  w.Sample({}, static_cast<std::uint64_t>(NameCount()));
  w.Family("mailscope_names_refused", "counter",
           "New names from clients refused, by input and reason: the client had added as many "
           "as it may (client_budget) or the name table is at its budget (table_full)");
  for (int i = 0; i < kNameInputCount; ++i) {
    for (int r = 0; r < kNameRefusalCount; ++r) {
      const auto input = static_cast<NameInput>(i);
      const auto reason = static_cast<NameRefusal>(r);
      w.Sample({{"input", NameInputName(input)}, {"reason", NameRefusalName(reason)}},
               NamesRefused(input, reason));
    }
  }

  w.Family("mailscope_listener_connections", "gauge",
           "Open connections per socket of the run directory (and TCP listener)");
  for (const ListenerFigures& l : src.listeners) {
    if (!l.fifo) w.Sample({{"listener", l.name}}, l.server.connections);
  }
  w.Family("mailscope_listener_handler_faults", "counter",
           "Lines dropped because their handler failed, per FIFO or socket");
  for (const ListenerFigures& l : src.listeners)
    w.Sample({{"listener", l.name}}, l.server.handler_faults);
  w.Family("mailscope_listener_accept_failures", "counter",
           "Accepts that failed for want of descriptors or memory; each pauses accepting");
  for (const ListenerFigures& l : src.listeners) {
    if (!l.fifo) w.Sample({{"listener", l.name}}, l.server.accept_failures);
  }
  w.Family("mailscope_listener_refused", "counter",
           "Connections closed at once because the socket had client_limit open");
  for (const ListenerFigures& l : src.listeners) {
    if (!l.fifo) w.Sample({{"listener", l.name}}, l.server.refused);
  }
  w.Family("mailscope_listener_closed", "counter",
           "Connections closed by a limit: a line over the length limit, a line not finished "
           "within line_timeout, output not taken within write_timeout, buffer_limit, a TLS "
           "handshake that failed");
  for (const ListenerFigures& l : src.listeners) {
    if (l.fifo) continue;
    const std::pair<std::string_view, std::uint64_t> reasons[] = {
        {"line_too_long", l.server.closed_line_too_long},
        {"line_timeout", l.server.closed_line_timeout},
        {"write_timeout", l.server.closed_write_timeout},
        {"buffer_limit", l.server.closed_buffer_limit}};
    for (const auto& [reason, count] : reasons) {
      w.Sample({{"listener", l.name}, {"reason", reason}}, count);
    }
    // TLS listeners only (`https ADDR`, [sources.stalwart] listen).
    if (l.name.starts_with("https ")) {
      w.Sample({{"listener", l.name}, {"reason", "tls_handshake"}}, l.server.closed_tls_handshake);
    }
  }
  w.Family("mailscope_listener_input_buffered_bytes", "gauge",
           "Bytes of incomplete lines the connections of a socket hold (see buffer_limit)");
  for (const ListenerFigures& l : src.listeners) {
    if (!l.fifo) w.Sample({{"listener", l.name}}, l.server.held_input_bytes);
  }
  w.Family("mailscope_listener_output_queued_bytes", "gauge",
           "Bytes written to a socket's connections that their peers have not taken yet");
  for (const ListenerFigures& l : src.listeners) {
    if (!l.fifo) w.Sample({{"listener", l.name}}, l.server.queued_output_bytes);
  }

  w.Family("mailscope_tail_clients", "gauge", "Open `mailscope tail` streams");
  w.Sample({}, src.tail_clients);
  w.Family("mailscope_tail_dropped", "counter",
           "Events not sent to a `mailscope tail` client because it fell behind");
  w.Sample({}, src.tail_dropped);
  w.Family("mailscope_exim_verdicts_late", "counter",
           "Verdicts for Exim not written because they were ready after "
           "[sources.exim] verdict_timeout: Exim got an empty reply");
  w.Sample({}, src.exim_late_verdicts);
  w.Family(
      "mailscope_stalwart_batches", "counter",
      "Webhook POSTs taken on /ingest/stalwart (their events count in mailscope_events_total)");
  w.Sample({}, src.stalwart.batches);
  w.Family("mailscope_stalwart_duplicates", "counter",
           "Stalwart events not counted again: received before within [sources.stalwart] "
           "dedup_window");
  w.Sample({}, src.stalwart.duplicates);
  w.Family("mailscope_stalwart_dedup_evicted", "counter",
           "Stalwart events forgotten before their dedup_window ended, to stay within "
           "dedup_memory: a re-sending of them would count twice");
  w.Sample({}, src.stalwart.dedup_evicted);
  w.Family("mailscope_stalwart_dedup_keys", "gauge",
           "Stalwart events remembered for de-duplication now");
  w.Sample({}, src.stalwart.dedup_keys);
  w.Family("mailscope_stalwart_dedup_max_keys", "gauge", "The events dedup_memory holds at most");
  w.Sample({}, src.stalwart.dedup_max_keys);

  if (src.records.enabled) {
    const store::RecordsFigures& r = src.records.writer;
    w.Family("mailscope_records_written", "counter",
             "Events committed to the records store ([records])");
    w.Sample({}, r.written);
    w.Family("mailscope_records_batches", "counter", "Transactions committed to the records store");
    w.Sample({}, r.batches);
    w.Family("mailscope_records_dropped", "counter",
             "Events a [records] filter chose that were not kept, by reason");
    w.Sample({{"reason", "queue_full"}}, r.dropped_queue_full);
    w.Sample({{"reason", "too_large"}}, src.records.too_large);
    w.Sample({{"reason", "shutdown"}}, r.dropped_shutdown);
    if (src.records.remote) {
      w.Sample({{"reason", "spool_full"}}, r.dropped_spool_full);
      w.Sample({{"reason", "rejected"}}, r.dropped_rejected);
    }
    w.Family("mailscope_records_database_errors", "counter",
             "Failed transactions and retention steps of the records store");
    w.Sample({}, r.database_errors);
    w.Family("mailscope_records_queued", "gauge", "Records waiting for the writer thread");
    w.Sample({}, r.queued_records);
    w.Family("mailscope_records_queued_bytes", "gauge",
             "Bytes of records waiting for the writer thread", "bytes");
    w.Sample({}, r.queued_bytes);
    w.Family("mailscope_records_deleted", "counter", "Rows retention removed, by reason");
    w.Sample({{"reason", "age"}}, r.deleted_age);
    w.Sample({{"reason", "size"}}, r.deleted_size);
    if (src.records.remote) {
      w.Family("mailscope_records_spool", "gauge",
               "Records waiting in DATA_DIR/records-spool for PostgreSQL");
      w.Sample({}, r.spool_records);
      w.Family("mailscope_records_spool_bytes", "gauge",
               "Bytes of records waiting in DATA_DIR/records-spool", "bytes");
      w.Sample({}, r.spool_bytes);
      w.Family("mailscope_records_database_up", "gauge",
               "1 while the records database answers, 0 while records are spooled");
      w.Sample({}, std::uint64_t{r.connected ? 1u : 0u});
    }
  }

  if (!src.logs.empty()) {
    std::vector<LogLineSample> lines;
    for (const LogSourceFigures& l : src.logs) lines.push_back({l.format, &l.lines});
    RenderLogLineFamilies(lines, w);
    auto family = [&](std::string_view name, std::string_view help, auto value) {
      w.Family(name, "counter", help);
      for (const LogSourceFigures& l : src.logs) w.Sample({{"log", l.name}}, value(l));
    };
    family("mailscope_log_bytes_read", "Bytes of log content read (uncompressed), by log",
           [](const LogSourceFigures& l) { return l.follower.bytes_read; });
    family("mailscope_log_rotations", "Log files followed to their successor, by log",
           [](const LogSourceFigures& l) { return l.follower.rotations; });
    family("mailscope_log_truncations", "Log files found truncated and read again from 0, by log",
           [](const LogSourceFigures& l) { return l.follower.truncations; });
    family("mailscope_log_lost_rotations",
           "Log files that could not be read before they were gone: a saved position's file "
           "found nowhere, a rotated file that vanished or could not be opened, by log",
           [](const LogSourceFigures& l) { return l.follower.lost_rotations; });
    family("mailscope_log_oversize_lines", "Log lines cut at max_line_size, by log",
           [](const LogSourceFigures& l) { return l.follower.oversize_lines; });
    family("mailscope_log_read_errors", "Errors reading log files, once per cause, by log",
           [](const LogSourceFigures& l) { return l.follower.read_errors; });
    family("mailscope_log_checkpoints", "Read positions saved to DATA_DIR/logs, by log",
           [](const LogSourceFigures& l) { return l.checkpoints; });
    family("mailscope_log_checkpoint_errors", "Read positions that could not be saved, by log",
           [](const LogSourceFigures& l) { return l.checkpoint_errors; });
    w.Family("mailscope_log_queued_bytes", "gauge",
             "Bytes read from log files and not yet dispatched, by log", "bytes");
    for (const LogSourceFigures& l : src.logs) {
      w.Sample({{"log", l.name}}, l.follower.queued_bytes);
    }
  }

  w.Family("mailscope_memory_used_bytes", "gauge", "Memory held by a store, every byte counted",
           "bytes");
  w.Sample({{"store", "old_stats"}}, static_cast<std::uint64_t>(store.memory_used_bytes()));
  w.Family("mailscope_memory_limit_bytes", "gauge", "Memory limit of a store", "bytes");
  w.Sample({{"store", "old_stats"}},
           static_cast<std::uint64_t>(store.options().memory_limit_bytes));
  w.Family("mailscope_evicted", "counter", "Entries freed to stay within the memory limit");
  for (int i = 0; i < stats::kOldLevelCount - 1; ++i) {
    auto level = static_cast<stats::OldLevel>(i);
    w.Sample({{"store", "old_stats"}, {"level", stats::OldLevelName(level)}}, store.evicted(level));
  }
  w.Family("mailscope_old_stats_entries", "gauge", "Entries held per zoom level");
  for (int i = 0; i < stats::kOldLevelCount - 1; ++i) {
    auto level = static_cast<stats::OldLevel>(i);
    w.Sample({{"level", stats::OldLevelName(level)}},
             static_cast<std::uint64_t>(store.count(level)));
  }

  // The old-stats global level (what Dovecot's carbon export sends), with
  // timevals in seconds. Counters restart from zero after a RESET.
  const stats::OldGlobal& g = store.global();
  w.Family("mailscope_old_stats_logins", "counter",
           "Logins since the last reset (old-stats global)");
  w.Sample({}, std::uint64_t{g.num_logins});
  w.Family("mailscope_old_stats_commands", "counter",
           "IMAP commands since the last reset (old-stats global)");
  w.Sample({}, std::uint64_t{g.num_cmds});
  w.Family("mailscope_old_stats_connected_sessions", "gauge",
           "Sessions connected now (old-stats global)");
  w.Sample({}, std::uint64_t{g.num_connected_sessions});
  w.Family("mailscope_old_stats_reset_timestamp_seconds", "gauge",
           "Time of the last old-stats reset", "seconds");
  w.Sample({}, static_cast<double>(g.reset_timestamp));
  for (std::size_t i = 0; i < catalog::kOldStatsFields.size(); ++i) {
    const auto& f = catalog::kOldStatsFields[i];
    // Base units in the names, as Prometheus asks: timevals in seconds, and
    // the disk figures (bytes, though Dovecot's names do not say so) in bytes.
    const bool seconds = f.type == catalog::OldStatsType::kTimeval;
    const bool disk = f.name == "disk_input" || f.name == "disk_output";
    const bool bytes = disk || f.name.ends_with("_bytes");
    std::string name = fmt::format("mailscope_old_stats_{}{}", f.name,
                                   seconds ? "_seconds"
                                   : disk  ? "_bytes"
                                           : "");
    w.Family(name, "counter", fmt::format("Old-stats global {} since the last reset", f.name),
             seconds ? "seconds"
             : bytes ? "bytes"
                     : "");
    if (seconds) {
      w.Sample({}, g.stats.ColumnAsDouble(i));
    } else {
      w.Sample({}, g.stats.n[i - stats::OldStatsVector::kTimevals]);
    }
  }
  // Per metric of the engine, labelled with the metric's configured name
  // (not its /metrics family name): what it could not keep.
  w.Family("mailscope_metric_sub_metrics_dropped", "counter",
           "Events whose group_by value got no sub-metric because the metric holds "
           "stats.max_sub_metrics sub-metrics already (once per event and level)");
  if (src.dovecot_metrics != nullptr) {
    for (const auto& m : src.dovecot_metrics->metrics())
      w.Sample({{"metric", m->name()}}, m->sub_metrics_dropped());
  }
  w.Family("mailscope_metric_unit_conflicts", "counter",
           "Values a metric left out because their unit kind (time or size) differs from the "
           "one its field learned first");
  if (src.dovecot_metrics != nullptr) {
    for (const auto& m : src.dovecot_metrics->metrics())
      if (m->definition().base_units()) w.Sample({{"metric", m->name()}}, m->unit_conflicts());
  }
  // Last, so that a metric named like one of the families above is the one
  // left out (MetricsWriter::Family()).
  if (src.dovecot_metrics != nullptr) exporter::RenderMetrics(*src.dovecot_metrics, w);
  return w.Finish();
}

}  // namespace mailscope::serve
