// The Dovecot sources: listener plus decoder, handing every decoded Event to
// the Dispatcher and counting what they reject.
//  - DovecotOldStatsSource: the old-stats-mail and old-stats-user FIFOs that
//    Dovecot's mail processes and auth write (source dovecot_old_stats).
//  - DovecotStatsWriterSource: connections to the stats-writer socket
//    (source dovecot), one decoder per connection.
//  - DovecotEventPostSource: the bodies that a Dovecot keeping its own stats
//    process POSTs from an http-post event_exporter (source dovecot).
// Loop thread only.
#pragma once

#include <functional>
#include <span>
#include <string>

#include "core/clock.h"
#include "ingest/dovecot_event_export.h"
#include "ingest/dovecot_old_stats.h"
#include "ingest/dovecot_stats_writer.h"
#include "net/http_server.h"
#include "net/listeners.h"
#include "pipeline/dispatcher.h"
#include "serve/listener_registry.h"
#include "serve/source_context.h"

namespace mailscope::serve {

class DovecotOldStatsSource {
 public:
  explicit DovecotOldStatsSource(SourceContext context) : context_(context) {}
  // Opens (or reuses) RUN_DIR/old-stats-mail and RUN_DIR/old-stats-user,
  // each with its own owner, group and mode.
  Status Open(ListenerRegistry& listeners, const std::string& run_dir,
              const net::PathPerms& mail_perms, const net::PathPerms& user_perms);

 private:
  void OnLine(ingest::DovecotOldStatsDecoder& decoder, std::span<char> line);

  SourceContext context_;
  ingest::DovecotOldStatsDecoder mail_decoder_, user_decoder_;
  TimePoint read_time_{};  // of the FIFO read being handled
  Event event_;
};

class DovecotStatsWriterSource {
 public:
  // `filter_line` gives the FILTER line a new writer gets after VERSION;
  // each connection's decoder gets `options`.
  DovecotStatsWriterSource(SourceContext context, std::function<std::string()> filter_line,
                           ingest::StatsWriterOptions options = {})
      : context_(context), filter_line_(std::move(filter_line)), options_(options) {}
  net::LineConnection NewConnection();

 private:
  SourceContext context_;
  std::function<std::string()> filter_line_;
  ingest::StatsWriterOptions options_;
};

class DovecotEventPostSource {
 public:
  explicit DovecotEventPostSource(SourceContext context, ingest::EventExportOptions options = {})
      : context_(context), decoder_(options) {}
  // 204 when decoded (format none carries no event), 400/413/415 otherwise.
  net::HttpResponse Handle(const net::HttpRequest& request);

 private:
  SourceContext context_;
  ingest::DovecotEventExportDecoder decoder_;
};

}  // namespace mailscope::serve
