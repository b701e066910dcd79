#include "serve/daemon.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <csignal>
#include <filesystem>
#include <memory>

#include "catalog/event_router.h"
#include "core/clock.h"
#include "core/tab_escape.h"
#include "export/carbon.h"
#include "export/event_format.h"
#include "export/event_text.h"
#include "ingest/dovecot_event_export.h"
#include "ingest/dovecot_old_stats.h"
#include "ingest/dovecot_stats_writer.h"
#include "net/event_transports.h"
#include "net/http_server.h"
#include "net/listeners.h"
#include "query/old_stats_query.h"
#include "query/stats_reader.h"
#include "query/tail.h"
#include "serve/config.h"
#include "serve/metrics_page.h"
#include "serve/rate_limited_log.h"
#include "stats/ingest_counters.h"
#include "stats/metrics_engine.h"
#include "stats/old_stats_store.h"

namespace mailscope::serve {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

stats::OldStatsOptions OldStatsOptionsFrom(const Config& c) {
  stats::OldStatsOptions o;
  o.memory_limit_bytes = c.old_stats_memory_limit;
  o.command_min_time = c.old_stats_command_min_time;
  o.session_min_time = c.old_stats_session_min_time;
  o.user_min_time = c.old_stats_user_min_time;
  o.domain_min_time = c.old_stats_domain_min_time;
  o.ip_min_time = c.old_stats_ip_min_time;
  return o;
}

stats::MetricsOptions MetricsOptionsFrom(const Config& c) {
  stats::MetricsOptions o;
  o.max_sub_metrics = c.stats_max_sub_metrics;
  return o;
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable(fmt::format("cannot create {}: {}", dir, ec.message()));
  return Status::Ok();
}

class Daemon {
 public:
  Daemon(Config config, std::string config_path)
      : config_(std::move(config)),
        config_path_(std::move(config_path)),
        store_(OldStatsOptionsFrom(config_), clock_),
        metrics_(MetricsOptionsFrom(config_)),
        start_time_(clock_.Now()) {}

  Status Start();
  void Run() { io_.run(); }

 private:
  void OnOldStatsLine(ingest::DovecotOldStatsDecoder& decoder, std::span<char> line);
  void OnOldStatsOverflow(std::size_t bytes);
  bool OnExportRequest(std::span<char> line, std::string& reply);
  net::LineConnection NewStatsWriter();
  net::LineConnection NewStatsReader();
  net::LineConnection NewTail();
  // Sends the event to every `mailscope tail` client whose filter matches.
  void Tail(const Event& event);
  std::string FilterLine() const;
  void SchedulePushFilter();
  net::HttpResponse OnHttp(const net::HttpRequest& req);
  void ScheduleTick();
  void ScheduleCarbon();
  void WaitSignals();
  void Reload();
  // Makes the configured metrics those of `wanted`: changed and dropped ones
  // are removed, new and changed ones added; unchanged ones keep counting.
  void ApplyConfiguredMetrics(const std::vector<MetricConfig>& previous,
                              const std::vector<MetricConfig>& wanted);
  // Makes the exporters those of `wanted`, keeping the transports of the
  // unchanged ones.
  void ApplyExporters(const std::vector<ExporterConfig>& wanted);
  // The metrics engine's export sink: `event` matched `metric`, which names an exporter.
  void Export(const stats::Metric& metric, const Event& event);
  // One event of Dovecot, from the stats-writer socket or an exporter's POST.
  void OnDovecotEvent(const Event& event);
  net::HttpResponse OnDovecotEventPost(const net::HttpRequest& req);
  void Shutdown();

  asio::io_context io_{1};
  SystemClock clock_;
  Config config_;
  std::string config_path_;
  stats::OldStatsStore store_;
  stats::IngestCounters counters_;
  // Catalog lookup and per-event control for the events of the four systems.
  std::unique_ptr<catalog::EventRouter> router_;
  // Dovecot 2.3 statistics: metrics over the events of the stats-writer socket.
  stats::MetricsEngine metrics_;
  TimePoint start_time_;
  TimePoint read_time_{};  // time of the FIFO read being handled
  ingest::DovecotOldStatsDecoder mail_decoder_, user_decoder_;
  Event event_;
  RateLimitedLog reject_log_{10, 10s};
  std::unique_ptr<net::FifoReader> mail_fifo_, user_fifo_;
  std::unique_ptr<net::LineServer> export_unix_, export_tcp_;
  std::unique_ptr<net::LineServer> stats_writer_, stats_reader_;
  // `mailscope tail` streams. A client more than kTailMaxBacklog behind
  // loses events (counted) until it catches up.
  struct TailClient {
    query::TailRequest request;
    net::Pusher out;
    std::uint64_t dropped = 0;  // since its last D line
  };
  static constexpr std::size_t kTailMaxBacklog = 4u << 20;
  std::unique_ptr<net::LineServer> tail_server_;
  std::vector<std::shared_ptr<TailClient>> tails_;
  std::uint64_t tail_dropped_ = 0;
  std::string tail_line_;  // scratch
  // Event exporters, in configuration order, and per metric how it exports
  // (built on first use, dropped whenever metrics or exporters change).
  struct Exporter {
    ExporterConfig config;
    std::unique_ptr<net::EventTransport> transport;
  };
  struct MetricExport {
    const Exporter* exporter = nullptr;  // nullptr: the metric's exporter is gone
    exporter::FormatSpec spec;
  };
  std::vector<std::unique_ptr<Exporter>> exporters_;
  boost::unordered_flat_map<const stats::Metric*, MetricExport> metric_exports_;
  exporter::EventFormatter formatter_;
  std::string export_buf_;
  std::string hostname_;
  // POST /dovecot/events: the bodies of Dovecot's http-post exporters.
  ingest::DovecotEventExportDecoder export_decoder_;
  asio::steady_timer filter_timer_{io_};
  bool filter_push_pending_ = false;
  std::unique_ptr<net::HttpServer> http_;
  asio::steady_timer tick_timer_{io_};
  asio::steady_timer carbon_timer_{io_};
  asio::signal_set signals_{io_, SIGTERM, SIGINT, SIGHUP};
  std::uint64_t carbon_failures_ = 0;
  bool carbon_in_flight_ = false;
};

Status Daemon::Start() {
  auto control = catalog::EventControl::Build(catalog::Catalog::Get(), config_.events);
  if (!control.ok()) return control.status();
  router_ = std::make_unique<catalog::EventRouter>(catalog::Catalog::Get(), std::move(*control));
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) hostname_ = host;
  metrics_.set_export_sink([this](const stats::Metric& m, const Event& e) { Export(m, e); });
  ApplyExporters(config_.exporters);
  ApplyConfiguredMetrics({}, config_.metrics);

  const std::string& run = config_.run_dir;
  MS_RETURN_IF_ERROR(MakeDirs(run));
  // Mail processes run as the mail users: they must be able to reach the FIFOs.
  ::chmod(run.c_str(), 0755);
  MS_RETURN_IF_ERROR(MakeDirs(config_.data_dir));

  auto fifo_perms = net::ResolvePerms(config_.old_stats_fifo.user, config_.old_stats_fifo.group,
                                      config_.old_stats_fifo.mode);
  if (!fifo_perms.ok()) return fifo_perms.status();
  auto socket_perms = net::ResolvePerms(
      config_.old_stats_socket.user, config_.old_stats_socket.group, config_.old_stats_socket.mode);
  if (!socket_perms.ok()) return socket_perms.status();

  auto overflow = [this](std::size_t n) { OnOldStatsOverflow(n); };
  auto on_read = [this] { read_time_ = clock_.Now(); };
  auto mail = net::FifoReader::Open(
      io_, run + "/old-stats-mail", *fifo_perms, ingest::kOldStatsMaxLineBytes, on_read,
      [this](std::span<char> l) { OnOldStatsLine(mail_decoder_, l); }, overflow);
  if (!mail.ok()) return mail.status();
  mail_fifo_ = std::move(*mail);
  auto user = net::FifoReader::Open(
      io_, run + "/old-stats-user", *fifo_perms, ingest::kOldStatsMaxLineBytes, on_read,
      [this](std::span<char> l) { OnOldStatsLine(user_decoder_, l); }, overflow);
  if (!user.ok()) return user.status();
  user_fifo_ = std::move(*user);

  auto handler = [this](std::span<char> l, std::string& r) { return OnExportRequest(l, r); };
  auto unix_server = net::LineServer::ListenUnix(io_, run + "/old-stats", *socket_perms,
                                                 query::kOldStatsMaxRequestBytes, handler);
  if (!unix_server.ok()) return unix_server.status();
  export_unix_ = std::move(*unix_server);
  // Dovecot 2.3's stats service: processes write events to stats-writer
  // (they block up to 5 s for the handshake, so it is sent at once), doveadm
  // reads and defines metrics on stats-reader.
  auto writer = net::LineServer::ListenUnix(io_, run + "/stats-writer", *fifo_perms,
                                            ingest::kStatsWriterMaxLineBytes,
                                            [this] { return NewStatsWriter(); });
  if (!writer.ok()) return writer.status();
  stats_writer_ = std::move(*writer);
  // The reader's line limit counts the LF, the framer's does not.
  auto reader = net::LineServer::ListenUnix(io_, run + "/stats-reader", *socket_perms,
                                            query::kStatsReaderMaxLineBytes - 1,
                                            [this] { return NewStatsReader(); });
  if (!reader.ok()) return reader.status();
  stats_reader_ = std::move(*reader);
  auto tail = net::LineServer::ListenUnix(
      io_, run + "/tail", *socket_perms, query::kTailMaxRequestBytes, [this] { return NewTail(); });
  if (!tail.ok()) return tail.status();
  tail_server_ = std::move(*tail);

  if (!config_.old_stats_tcp.empty()) {
    auto tcp = net::LineServer::ListenTcp(io_, config_.old_stats_tcp,
                                          query::kOldStatsMaxRequestBytes, handler);
    if (!tcp.ok()) return tcp.status();
    export_tcp_ = std::move(*tcp);
    spdlog::info("old-stats EXPORT on tcp {}", export_tcp_->local_address());
  }
  if (!config_.http.empty()) {
    auto http = net::HttpServer::Listen(io_, config_.http,
                                        [this](const net::HttpRequest& r) { return OnHttp(r); });
    if (!http.ok()) return http.status();
    http_ = std::move(*http);
    spdlog::info("http listening on {}", http_->local_address());
  }
  spdlog::info("old-stats FIFOs {0}/old-stats-mail {0}/old-stats-user, socket {0}/old-stats", run);
  ScheduleTick();
  ScheduleCarbon();
  WaitSignals();
  spdlog::info("mailscope ready (memory_limit {} bytes, {} metrics)",
               config_.old_stats_memory_limit, metrics_.metrics().size());
  return Status::Ok();
}

void Daemon::OnOldStatsLine(ingest::DovecotOldStatsDecoder& decoder, std::span<char> line) {
  auto result = decoder.Decode(line, read_time_, event_);
  if (!result.status.ok()) {
    counters_.CountRejected(Source::kDovecotOldStats, result.status.reason());
    reject_log_.Warn("dovecot_old_stats", result.status.message());
  }
  if (!result.emit) return;
  counters_.CountEvent(Source::kDovecotOldStats, event_.name);
  Tail(event_);
  Status st = store_.Apply(event_);
  if (!st.ok()) {
    counters_.CountRejected(Source::kDovecotOldStats, st.reason());
    reject_log_.Warn("dovecot_old_stats", st.message());
  }
}

void Daemon::OnOldStatsOverflow(std::size_t bytes) {
  counters_.CountRejected(Source::kDovecotOldStats, "line_too_long");
  reject_log_.Warn("dovecot_old_stats", fmt::format("line of {} bytes exceeds {} bytes, dropped",
                                                    bytes, ingest::kOldStatsMaxLineBytes));
}

std::string Daemon::FilterLine() const {
  // The union of every metric's filter and every tail client's, in Dovecot's
  // syntax, tab-escaped as one field (an empty filter asks for nothing).
  std::vector<const filter::Filter*> wanted{&metrics_.CombinedFilter()};
  for (const auto& client : tails_) {
    wanted.push_back(&client->request.filter);
  }
  std::string line = "FILTER\t";
  AppendTabEscaped(line, filter::Filter::Merge(wanted).ExportDovecot());
  line += '\n';
  return line;
}

net::LineConnection Daemon::NewStatsWriter() {
  auto decoder = std::make_shared<ingest::DovecotStatsWriterDecoder>();
  std::string greeting(ingest::kStatsServerVersionLine);
  greeting += FilterLine();
  net::LineConnection conn;
  conn.greeting = std::move(greeting);
  conn.on_line = [this, decoder](std::span<char> line, std::string&) {
    auto result = decoder->Decode(line);
    if (!result.status.ok()) {
      counters_.CountRejected(Source::kDovecot, result.status.reason());
      reject_log_.Warn("dovecot", result.status.message());
    }
    if (result.emit != ingest::StatsWriterResult::Emit::kNone) {
      const Event& event = decoder->event();
      if (result.emit == ingest::StatsWriterResult::Emit::kEvent && event.name != kNoName) {
        OnDovecotEvent(event);
      } else {
        metrics_.Process(event);
      }
    }
    return !result.close;
  };
  return conn;
}

net::LineConnection Daemon::NewStatsReader() {
  query::StatsReaderHooks hooks;
  hooks.metrics_changed = [this] {
    metric_exports_.clear();
    SchedulePushFilter();
  };
  hooks.exporter_exists = [this](std::string_view name) {
    return std::any_of(exporters_.begin(), exporters_.end(),
                       [&](const auto& e) { return e->config.text.name == name; });
  };
  auto reader = std::make_shared<query::StatsReaderConnection>(metrics_, std::move(hooks));
  net::LineConnection conn;
  conn.greeting = std::string(query::StatsReaderGreeting());
  conn.on_line = [reader](std::span<char> line, std::string& reply) {
    bool open = reader->FeedLine(line, reply);
    if (!open) spdlog::warn("stats-reader client: {}", reader->close_reason());
    return open;
  };
  return conn;
}

net::LineConnection Daemon::NewTail() {
  auto client = std::make_shared<TailClient>();
  net::LineConnection conn;
  conn.on_open = [client](net::Pusher out) { client->out = std::move(out); };
  conn.on_line = [this, client](std::span<char> line, std::string& reply) {
    if (std::find(tails_.begin(), tails_.end(), client) != tails_.end()) {
      return true;  // streaming: nothing more is expected from the client
    }
    auto request = query::ParseTailRequest(line);
    if (!request.ok()) {
      reply += "ERROR\t";
      AppendTabEscaped(reply, request.status().message());
      reply += '\n';
      return false;
    }
    client->request = std::move(*request);
    tails_.push_back(client);
    SchedulePushFilter();  // Dovecot's processes must now send these events too
    reply += "OK\n";
    spdlog::debug("tail client: {} events matching {}",
                  query::TailFormatName(client->request.format),
                  client->request.filter_text.empty() ? "(all)" : client->request.filter_text);
    return true;
  };
  conn.on_close = [this, client] {
    if (std::erase(tails_, client) != 0) SchedulePushFilter();
  };
  return conn;
}

void Daemon::Tail(const Event& event) {
  for (const auto& client : tails_) {
    const query::TailRequest& req = client->request;
    if (!req.filter.Matches(event)) continue;
    if (client->out.pending_bytes() > kTailMaxBacklog) {
      ++client->dropped;
      ++tail_dropped_;
      continue;
    }
    tail_line_.clear();
    if (client->dropped != 0) {
      fmt::format_to(std::back_inserter(tail_line_), "D\t{}\n", client->dropped);
      client->dropped = 0;
    }
    tail_line_ += "E\t";
    if (req.format == query::TailFormat::kText) {
      exporter::AppendEventText(event, tail_line_);
    } else {
      // Dovecot's exporter formats with every part, times in RFC 3339.
      exporter::FormatSpec spec;
      spec.format = req.format == query::TailFormat::kJson ? exporter::EventFormat::kJson
                                                           : exporter::EventFormat::kTabText;
      spec.time_format = exporter::TimeFormat::kRfc3339;
      spec.hostname = hostname_;
      formatter_.Format(event, spec, clock_.Now(), export_buf_);
      tail_line_ += export_buf_;
    }
    tail_line_ += '\n';
    client->out.Send(tail_line_);
  }
}

void Daemon::SchedulePushFilter() {
  // As Dovecot: every writer gets the new FILTER a second after a change.
  if (filter_push_pending_) return;
  filter_push_pending_ = true;
  filter_timer_.expires_after(1s);
  filter_timer_.async_wait([this](boost::system::error_code ec) {
    filter_push_pending_ = false;
    if (ec || !stats_writer_) return;
    stats_writer_->Broadcast(FilterLine());
  });
}

bool Daemon::OnExportRequest(std::span<char> line, std::string& reply) {
  auto req = query::ParseOldStatsRequest(line);
  if (!req.ok()) {
    // Dovecot answers nothing and closes; doveadm then reports the disconnect.
    spdlog::warn("old-stats client: {}", req.status().message());
    return false;
  }
  if (req->kind == query::OldStatsRequest::Kind::kReset) {
    store_.Reset();
    reply += "OK\n";
    return true;
  }
  query::AnswerExport(store_, *req, reply);
  return true;
}

net::HttpResponse Daemon::OnHttp(const net::HttpRequest& req) {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  if (path == "/dovecot/events") {
    if (req.method != "POST") {
      return {405, "text/plain; charset=utf-8", "method not allowed\n", {{"Allow", "POST"}}};
    }
    return OnDovecotEventPost(req);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "method not allowed\n", {{"Allow", "GET, HEAD"}}};
  }
  if (path == "/metrics") {
    auto format = exporter::FormatFromAccept(req.accept);
    MetricsSources sources{store_,           counters_,     start_time_,
                           carbon_failures_, router_.get(), &metrics_,
                           tails_.size(),    tail_dropped_, {}};
    for (const auto& e : exporters_) {
      net::TransportCounters n = e->transport->counters();
      sources.exporters.push_back({e->config.text.name, n.sent, n.dropped, n.failed});
    }
    return {
        200, std::string(exporter::ContentType(format)), RenderMetricsPage(sources, format), {}};
  }
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n", {}};
  if (path == "/") {
    return {
        200,
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><head><title>mailscope</title></head><body><h1>mailscope</h1>"
        "<ul><li><a href=\"/metrics\">/metrics</a></li><li><a href=\"/healthz\">/healthz</a></li>"
        "</ul></body></html>\n",
        {}};
  }
  return {404, "text/plain; charset=utf-8", "not found\n", {}};
}

void Daemon::ScheduleTick() {
  tick_timer_.expires_after(1s);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    store_.Tick();
    reject_log_.Flush("dovecot_old_stats");
    ScheduleTick();
  });
}

void Daemon::ScheduleCarbon() {
  carbon_timer_.expires_after(config_.old_stats_carbon_interval);
  carbon_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (!config_.old_stats_carbon_server.empty() && !config_.old_stats_carbon_name.empty() &&
        !carbon_in_flight_) {
      std::string server = config_.old_stats_carbon_server;
      if (server.find(':') == std::string::npos) server += ":2003";
      std::string block = exporter::RenderCarbon(store_.global(), config_.old_stats_carbon_name,
                                                 UnixSeconds(clock_.Now()));
      // As Dovecot: a fresh connection per interval, given 80% of the interval.
      auto timeout =
          std::chrono::duration_cast<std::chrono::milliseconds>(config_.old_stats_carbon_interval) *
          8 / 10;
      carbon_in_flight_ = true;
      net::SendOnce(io_, server, std::move(block), timeout, [this, server](Status st) {
        carbon_in_flight_ = false;
        if (!st.ok()) {
          ++carbon_failures_;
          spdlog::warn("carbon export to {} failed: {}", server, st.message());
        }
      });
    }
    ScheduleCarbon();
  });
}

void Daemon::WaitSignals() {
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      Reload();
      WaitSignals();
      return;
    }
    spdlog::info("signal {}: shutting down", sig);
    Shutdown();
  });
}

void Daemon::Reload() {
  if (config_path_.empty()) {
    spdlog::info("SIGHUP: no configuration file to reload");
    return;
  }
  auto fresh = LoadConfigFile(config_path_);
  if (!fresh.ok()) {
    spdlog::error("reload failed, keeping the running configuration:\n{}",
                  fresh.status().message());
    return;
  }
  Config next = std::move(*fresh);
  // Restart-only settings keep their running values.
  next.run_dir = config_.run_dir;
  next.data_dir = config_.data_dir;
  next.http = config_.http;
  next.old_stats_tcp = config_.old_stats_tcp;
  next.old_stats_fifo = config_.old_stats_fifo;
  next.old_stats_socket = config_.old_stats_socket;
  spdlog::set_level(spdlog::level::from_str(next.log_level));
  metrics_.set_max_sub_metrics(next.stats_max_sub_metrics);
  ApplyExporters(next.exporters);
  for (const auto& e : exporters_) e->transport->Reopen();  // log rotation
  ApplyConfiguredMetrics(config_.metrics, next.metrics);
  const bool interval_changed = next.old_stats_carbon_interval != config_.old_stats_carbon_interval;
  config_ = std::move(next);
  store_.SetOptions(OldStatsOptionsFrom(config_));
  if (interval_changed) {
    carbon_timer_.cancel();
    ScheduleCarbon();
  }
  spdlog::info("configuration reloaded from {}", config_path_);
}

void Daemon::ApplyConfiguredMetrics(const std::vector<MetricConfig>& previous,
                                    const std::vector<MetricConfig>& wanted) {
  auto find = [](const std::vector<MetricConfig>& list, const std::string& name) {
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const MetricConfig& m) { return m.settings.name == name; });
    return it == list.end() ? nullptr : &*it;
  };
  metric_exports_.clear();
  bool changed = false;
  for (const MetricConfig& old : previous) {
    const MetricConfig* next = find(wanted, old.settings.name);
    if (next != nullptr && next->settings == old.settings) continue;
    const stats::Metric* running = metrics_.Find(old.settings.name);
    if (running != nullptr && running->configured()) {
      (void)metrics_.Remove(old.settings.name);
      changed = true;
    }
  }
  for (const MetricConfig& m : wanted) {
    const stats::Metric* running = metrics_.Find(m.settings.name);
    if (running != nullptr && running->configured()) continue;  // unchanged
    Status st = metrics_.Add(m.definition, stats::MetricsEngine::Origin::kConfig);
    if (!st.ok()) {
      spdlog::warn("{}: metric {} not added: a metric of that name was added at run time", m.where,
                   m.settings.name);
      continue;
    }
    changed = true;
  }
  if (changed) SchedulePushFilter();
}

void Daemon::ApplyExporters(const std::vector<ExporterConfig>& wanted) {
  metric_exports_.clear();
  std::vector<std::unique_ptr<Exporter>> next;
  for (const ExporterConfig& config : wanted) {
    auto same = std::find_if(exporters_.begin(), exporters_.end(), [&](const auto& e) {
      return e != nullptr && e->config.text == config.text;
    });
    if (same != exporters_.end()) {
      next.push_back(std::move(*same));
      continue;
    }
    auto e = std::make_unique<Exporter>();
    e->config = config;
    e->transport = net::MakeEventTransport(io_, config.parsed);
    const exporter::ExporterSettingsText& t = config.text;
    spdlog::info("exporter {}: {} over {}{}", t.name, t.format, t.transport,
                 t.transport_args.empty() ? "" : " " + t.transport_args);
    next.push_back(std::move(e));
  }
  for (const auto& old : exporters_) {
    if (old != nullptr) old->transport->Close();
  }
  exporters_ = std::move(next);
}

void Daemon::Export(const stats::Metric& metric, const Event& event) {
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
  formatter_.Format(event, x.spec, clock_.Now(), export_buf_);
  x.exporter->transport->Send(export_buf_);
}

void Daemon::OnDovecotEvent(const Event& event) {
  counters_.CountEvent(Source::kDovecot, event.name);
  router_->Route(event);
  Tail(event);
  metrics_.Process(event);
}

net::HttpResponse Daemon::OnDovecotEventPost(const net::HttpRequest& req) {
  Status st = export_decoder_.Decode(req.content_type, req.body, clock_.Now());
  if (!st.ok()) {
    counters_.CountRejected(Source::kDovecot, st.reason());
    reject_log_.Warn("dovecot", fmt::format("POST /dovecot/events: {}", st.message()));
    const std::string_view reason = st.reason();
    const unsigned code = reason == "unsupported_content_type" ? 415
                          : reason == "body_too_large"         ? 413
                                                               : 400;
    return {code, "text/plain; charset=utf-8", st.message() + "\n", {}};
  }
  const Event& event = export_decoder_.event();
  if (event.name != kNoName) OnDovecotEvent(event);  // format none carries nothing
  return {204, "text/plain; charset=utf-8", {}, {}};
}

void Daemon::Shutdown() {
  // FIFOs first: what writers already sent is read and accounted.
  if (mail_fifo_) mail_fifo_->Close();
  if (user_fifo_) user_fifo_->Close();
  if (export_unix_) export_unix_->Close();
  if (export_tcp_) export_tcp_->Close();
  if (stats_writer_) stats_writer_->Close();
  if (stats_reader_) stats_reader_->Close();
  if (tail_server_) tail_server_->Close();
  // The file transport writes what is queued; the network ones drop it.
  for (const auto& e : exporters_) e->transport->Close();
  filter_timer_.cancel();
  if (http_) http_->Close();
  tick_timer_.cancel();
  carbon_timer_.cancel();
  signals_.cancel();
  reject_log_.Flush("dovecot_old_stats");
  // With every socket, timer and FIFO closed the loop runs out of work and
  // Run() returns once the aborted operations have unwound.
}

}  // namespace

int RunServe(const ServeFlags& flags) {
  Config config;
  if (!flags.config_path.empty()) {
    auto loaded = LoadConfigFile(flags.config_path);
    if (!loaded.ok()) {
      fmt::print(stderr, "{}\n", loaded.status().message());
      return 2;
    }
    config = std::move(*loaded);
  }
  if (flags.run_dir) config.run_dir = *flags.run_dir;
  if (flags.data_dir) config.data_dir = *flags.data_dir;
  if (flags.http) config.http = *flags.http;
  if (flags.log_level) config.log_level = *flags.log_level;
  if (config.run_dir.empty()) config.run_dir = DefaultRunDir();
  if (config.data_dir.empty()) config.data_dir = DefaultDataDir();

  // Logs go to stderr: stdout stays free for whoever runs serve in a pipeline.
  spdlog::set_default_logger(spdlog::stderr_color_mt("mailscope"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  std::signal(SIGPIPE, SIG_IGN);
  // The service owns its sockets' modes; the process umask must not narrow them.
  ::umask(022);

  auto daemon = std::make_unique<Daemon>(std::move(config), flags.config_path);
  Status st = daemon->Start();
  if (!st.ok()) {
    spdlog::error("cannot start: {}", st.message());
    return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  daemon->Run();
  spdlog::info("stopped");
  return 0;
}

}  // namespace mailscope::serve
