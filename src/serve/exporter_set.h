// ExporterSet: the event exporters of the configuration (Dovecot's
// event_exporter), in configuration order, with their transports, and per
// metric how it exports. Metrics hand it the events they counted
// (MetricsEngine's export sink); it formats each as the metric's exporter
// asks and sends it. Loop thread only, except Finish(). Owns the transports,
// and the reaper that closed ones finish in.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "export/event_format.h"
#include "net/event_transports.h"
#include "net/transport_reaper.h"
#include "serve/config.h"
#include "serve/metrics_page.h"
#include "stats/metrics_engine.h"

namespace mailscope::serve {

class ExporterSet {
 public:
  ExporterSet(boost::asio::io_context& io, const Clock& clock, std::string hostname)
      : io_(io), clock_(clock), hostname_(std::move(hostname)) {}

  // Makes the exporters those of `wanted`. An exporter whose name and
  // transport settings are unchanged keeps its transport (its format may
  // change); the others' transports are closed and handed to the reaper,
  // where file and log transports write what they hold. Never waits.
  void Apply(const std::vector<ExporterConfig>& wanted);
  // Metrics were added, removed or changed: how each exports is worked out
  // again on its next event.
  void ForgetMetrics() { metric_exports_.clear(); }
  // `event` matched `metric`, which names an exporter.
  void Export(const stats::Metric& metric, const Event& event);

  bool Exists(std::string_view name) const;
  // Reopens the transports' files and sockets (log rotation, SIGHUP).
  void Reopen();
  // Stops every transport taking events; never waits. File and log
  // transports go on writing what they hold; network ones drop it.
  void Close();
  // Once the loop has stopped: waits until every transport closed so far has
  // written what it held, at most until `deadline` (what is left then is
  // dropped and logged), and destroys them all.
  void Finish(std::chrono::steady_clock::time_point deadline);
  std::vector<ExporterFigures> Figures() const;

 private:
  struct Exporter {
    ExporterConfig config;
    std::unique_ptr<net::EventTransport> transport;
  };
  struct MetricExport {
    const Exporter* exporter = nullptr;  // nullptr: the metric's exporter is gone
    exporter::FormatSpec spec;
  };

  boost::asio::io_context& io_;
  const Clock& clock_;
  std::string hostname_;
  // Before exporters_: what it holds goes after the live transports.
  net::TransportReaper reaper_;
  std::vector<std::unique_ptr<Exporter>> exporters_;
  boost::unordered_flat_map<const stats::Metric*, MetricExport> metric_exports_;
  exporter::EventFormatter formatter_;
  std::string buf_;
};

}  // namespace mailscope::serve
