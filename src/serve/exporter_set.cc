#include "serve/exporter_set.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mailscope::serve {
namespace {

// Whether both make the same transport: what differs, if anything, is how
// events are formatted. The name counts, as it names the transport in logs.
bool SameTransport(const exporter::ExporterSettingsText& a,
                   const exporter::ExporterSettingsText& b) {
  return a.name == b.name && a.transport == b.transport && a.transport_args == b.transport_args &&
         a.transport_timeout == b.transport_timeout;
}

}  // namespace

void ExporterSet::Apply(const std::vector<ExporterConfig>& wanted) {
  metric_exports_.clear();
  std::vector<std::unique_ptr<Exporter>> next;
  for (const ExporterConfig& config : wanted) {
    const exporter::ExporterSettingsText& t = config.text;
    auto same = std::find_if(exporters_.begin(), exporters_.end(), [&](const auto& e) {
      return e != nullptr && SameTransport(e->config.text, t);
    });
    std::unique_ptr<Exporter> e;
    if (same != exporters_.end()) {
      e = std::move(*same);
      if (e->config.text == t) {
        next.push_back(std::move(e));
        continue;
      }
      e->config = config;
    } else {
      e = std::make_unique<Exporter>();
      e->config = config;
      e->transport = net::MakeEventTransport(io_, config.parsed);
    }
    spdlog::info("exporter {}: {} over {}{}", t.name, t.format, t.transport,
                 t.transport_args.empty() ? "" : " " + t.transport_args);
    next.push_back(std::move(e));
  }
  for (auto& old : exporters_) {
    if (old != nullptr) reaper_.Retire(std::move(old->transport));
  }
  exporters_ = std::move(next);
}

void ExporterSet::Export(const stats::Metric& metric, const Event& event) {
  auto it = metric_exports_.find(&metric);
  if (it == metric_exports_.end()) {
    const stats::MetricDefinition& def = metric.definition();
    MetricExport x;
    for (const auto& e : exporters_) {
      if (e->config.text.name == def.exporter) x.exporter = e.get();
    }
    if (x.exporter != nullptr) {
      exporter::ParsedInclude include = exporter::ParseExporterInclude(def.exporter_include);
      for (const std::string& word : include.unknown) {
        spdlog::warn("metric {}: Ignoring unknown exporter include '{}'", def.name, word);
      }
      x.spec = exporter::MakeFormatSpec(x.exporter->config.parsed, include.include, def.fields,
                                        hostname_);
    }
    it = metric_exports_.emplace(&metric, x).first;
  }
  const MetricExport& x = it->second;
  if (x.exporter == nullptr) return;
  formatter_.Format(event, x.spec, clock_.Now(), buf_);
  x.exporter->transport->Send(buf_);
}

bool ExporterSet::Exists(std::string_view name) const {
  return std::any_of(exporters_.begin(), exporters_.end(),
                     [&](const auto& e) { return e->config.text.name == name; });
}

void ExporterSet::Reopen() {
  for (const auto& e : exporters_) e->transport->Reopen();
}

void ExporterSet::Close() {
  for (const auto& e : exporters_) e->transport->Close();
}

void ExporterSet::Finish(std::chrono::steady_clock::time_point deadline) {
  metric_exports_.clear();
  for (auto& e : exporters_) reaper_.Retire(std::move(e->transport));
  exporters_.clear();
  reaper_.Finish(deadline);
}

std::vector<ExporterFigures> ExporterSet::Figures() const {
  std::vector<ExporterFigures> out;
  for (const auto& e : exporters_) {
    net::TransportCounters n = e->transport->counters();
    out.push_back({e->config.text.name, n.sent, n.dropped, n.failed});
  }
  return out;
}

}  // namespace mailscope::serve
