#include "serve/daemon.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>

#include "catalog/dovecot_filter.h"
#include "catalog/event_router.h"
#include "core/clock.h"
#include "core/tab_escape.h"
#include "export/carbon.h"
#include "ingest/dovecot_stats_writer.h"
#include "net/coalescing_worker.h"
#include "net/http_server.h"
#include "net/loop_stall_probe.h"
#include "net/spawn.h"
#include "pipeline/dispatcher.h"
#include "query/old_stats_query.h"
#include "query/stats_reader.h"
#include "rules/rules.h"
#include "serve/dovecot_sources.h"
#include "serve/exim_source.h"
#include "serve/exporter_set.h"
#include "serve/listener_registry.h"
#include "serve/log_source.h"
#include "serve/metrics_page.h"
#include "serve/outputs.h"
#include "serve/rate_limited_log.h"
#include "serve/records_output.h"
#include "serve/run_dir.h"
#include "serve/stalwart_source.h"
#include "serve/tail_hub.h"
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

stats::ClientMetricLimits DynamicLimits(const Config& c) {
  return {.max_fields = c.stats_max_dynamic_metric_fields,
          .max_group_by = c.stats_max_dynamic_metric_group_by};
}

stats::MetricsOptions MetricsOptionsFrom(const Config& c) {
  stats::MetricsOptions o;
  o.max_sub_metrics = c.stats_max_sub_metrics;
  o.max_dynamic_metrics = c.stats_max_dynamic_metrics;
  o.dynamic_limits = DynamicLimits(c);
  return o;
}

// Of each client's NameBudget; the schema bounds it far below 2^32.
std::uint32_t MaxNewNames(const Config& c) {
  return static_cast<std::uint32_t>(c.max_new_names_per_client);
}

// The run or data directory: a /tmp fallback only when it is ours alone.
Status MakeDir(const std::string& dir, const std::string& fallback) {
  return dir == fallback ? MakePrivateDir(dir) : MakeRunDir(dir);
}

// Resolves the [listeners.NAME] settings of one socket or FIFO; errors name
// the setting.
std::vector<rules::Rule> RulesOf(const Config& config) {
  std::vector<rules::Rule> out;
  for (const RuleConfig& r : config.rules) out.push_back(r.rule);
  return out;
}

Result<net::PathPerms> Perms(const ListenerSettings& listeners, std::string_view name) {
  const ListenerConfig& perms = *listeners.Find(name);
  auto resolved = net::ResolvePerms(perms.user, perms.group, perms.mode);
  if (!resolved.ok())
    return InvalidArgument(fmt::format("listeners.{}: {}", name, resolved.status().message()));
  if ((perms.mode & 0002) != 0) {
    spdlog::warn("listeners.{}: mode {:04o} lets every local user write to it", name, perms.mode);
  }
  return resolved;
}

// Every connection takes a descriptor, and the soft limit is often 1024:
// raise it to the hard limit, and say so when the client limits do not fit.
void RaiseOpenFileLimit(const ListenerSettings& listeners) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t was = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = was;
  }
  std::uint64_t clients = 0;
  for (std::string_view name : kListenerNames) {
    const ListenerConfig& l = *listeners.Find(name);
    if (l.kind != ListenerKind::kFifo) clients += l.limits.client_limit;
  }
  // Besides the clients: the listeners, the FIFOs, exporters' files and
  // sockets, the log.
  constexpr std::uint64_t kOthers = 256;
  if (limit.rlim_cur != RLIM_INFINITY && clients + kOthers > limit.rlim_cur) {
    spdlog::warn(
        "the client_limit of the sockets add up to {} connections, but only {} files may be "
        "open (RLIMIT_NOFILE; systemd: LimitNOFILE=); accepts will fail and pause before a "
        "client_limit is reached",
        clients, limit.rlim_cur);
  }
}

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) return host;
  return {};
}

// A configuration file read again for SIGHUP, with its event control built:
// all the loop has left to do is swap them in.
struct LoadedConfig {
  Config config;
  catalog::EventControl control;
  std::chrono::steady_clock::duration read_time{};  // what reading it took
};

// Off the loop: reading the file (and the dovecot.conf files it names) and
// building the event control take as long as the disk and the catalog make
// them.
Result<LoadedConfig> LoadForReload(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  auto fresh = LoadConfigFile(path);
  if (!fresh.ok()) return fresh.status();
  auto control = catalog::EventControl::Build(catalog::Catalog::Get(), fresh->events);
  if (!control.ok()) return control.status();
  return LoadedConfig{std::move(*fresh), std::move(*control),
                      std::chrono::steady_clock::now() - start};
}

double Milliseconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// At shutdown, how long the file and log exporters may take to write what
// they still hold; what is left then is dropped (and logged).
constexpr auto kExportDrainTimeout = 10s;

// How often the loop's responsiveness is sampled (mailscope_loop_stall_seconds).
constexpr auto kStallProbePeriod = 10ms;

}  // namespace

struct Daemon::State {
  State(Config c, std::string path, Options o)
      : options(o),
        config(std::move(c)),
        config_path(std::move(path)),
        store(OldStatsOptionsFrom(config), clock),
        counters(static_cast<std::uint32_t>(
            std::min<std::uint64_t>(config.max_unknown_event_series, UINT32_MAX))),
        metrics(MetricsOptionsFrom(config)),
        start_time(clock.Now()),
        hostname(HostName()),
        exporters(io, clock, hostname),
        tails(
            clock, hostname, [this] { SchedulePushFilter(); }, MaxNewNames(config)),
        reloader(
            io, [path = config_path] { return LoadForReload(path); },
            [this](Result<LoadedConfig> loaded) { ApplyReload(std::move(loaded)); }) {}

  Status Start();
  // The FILTER line, made anew only after SchedulePushFilter() marked it
  // stale: every Dovecot process that starts gets it on connecting.
  const std::string& FilterLine();
  std::string MakeFilterLine() const;
  void SchedulePushFilter();
  bool OnExportRequest(std::span<char> line, std::string& reply);
  net::LineConnection NewStatsReader();
  net::HttpRouter HttpRoutes();
  void ScheduleTick();
  void ScheduleCarbon();
  void WaitSignals();
  // SIGHUP: the file is parsed off the loop; ApplyReload() swaps it in.
  void Reload();
  void ApplyReload(Result<LoadedConfig> loaded);
  // Makes the configured metrics those of `wanted`: changed and dropped ones
  // are removed, new and changed ones added; unchanged ones keep counting.
  void ApplyConfiguredMetrics(const std::vector<MetricConfig>& previous,
                              const std::vector<MetricConfig>& wanted);
  void Shutdown();

  // Declared first, destroyed last: everything below may hold its handlers.
  asio::io_context io{1};
  Options options;
  SystemClock clock;
  Config config;
  std::string config_path;
  stats::OldStatsStore store;
  stats::IngestCounters counters;
  stats::MetricsEngine metrics;
  TimePoint start_time;
  std::string hostname;
  RateLimitedLog reject_log{10, 10s};
  std::unique_ptr<pipeline::Dispatcher> dispatcher;
  // Outputs.
  ExporterSet exporters;
  TailHub tails;
  std::unique_ptr<OldStatsOutput> old_stats_output;
  std::unique_ptr<MetricsOutput> metrics_output;
  std::unique_ptr<ExportersOutput> exporters_output;
  std::unique_ptr<rules::RulesOutput> rules_output;
  std::unique_ptr<RecordsOutput> records_output;
  // Sources.
  std::unique_ptr<DovecotOldStatsSource> old_stats_source;
  std::unique_ptr<DovecotStatsWriterSource> stats_writer_source;
  std::unique_ptr<DovecotEventPostSource> event_post_source;
  std::unique_ptr<EximEventSource> exim_source;
  std::unique_ptr<StalwartWebhookSource> stalwart_source;
  net::HttpServer* stalwart_https = nullptr;  // [sources.stalwart] listen, owned by listeners
  // After records_output: destroyed first, each waits for the records of
  // what it read before it saves its positions.
  std::vector<std::unique_ptr<LogSource>> log_sources;
  asio::steady_timer filter_timer{io};
  bool filter_push_pending = false;
  std::string filter_line;
  bool filter_line_stale = true;
  // Set by Shutdown(). Cancelling a timer does not stop a handler whose wait
  // has already completed, and connections it closes still report their end
  // (a tail client leaving changes the FILTER): nothing may wait again after
  // it, or Run() never returns.
  bool stopping = false;
  asio::steady_timer tick_timer{io};
  asio::steady_timer carbon_timer{io};
  asio::signal_set signals{io};
  net::LoopStallProbe stall_probe{io, kStallProbePeriod};
  std::uint64_t carbon_failures = 0;
  bool carbon_in_flight = false;
  // Its thread parses the configuration for SIGHUP; joined (a parse under
  // way finishes) before anything the result would have touched goes.
  net::CoalescingWorker<Result<LoadedConfig>> reloader;
  // Declared last, closed and destroyed first.
  ListenerRegistry listeners{io};
  net::LineServer* stats_writer = nullptr;  // for FILTER broadcasts
  net::HttpServer* http = nullptr;
};

Status Daemon::State::Start() {
  auto router = catalog::MakeCatalogRouter(config.events);
  if (!router.ok()) return router.status();
  dispatcher = std::make_unique<pipeline::Dispatcher>(counters, std::move(*router));
  // Outputs, in the order they see each event.
  old_stats_output = std::make_unique<OldStatsOutput>(store, counters, reject_log);
  metrics_output = std::make_unique<MetricsOutput>(metrics, *dispatcher);
  exporters_output = std::make_unique<ExportersOutput>(exporters, *metrics_output, *dispatcher);
  dispatcher->Register("old_stats", *old_stats_output,
                       pipeline::SourceSet::Only(Source::kDovecotOldStats));
  dispatcher->Register("metrics", *metrics_output);
  dispatcher->Register("exporters", *exporters_output);
  dispatcher->Register("tail", tails);
  rules_output = std::make_unique<rules::RulesOutput>(dispatcher->router().catalog());
  rules_output->SetRules(RulesOf(config));
  dispatcher->Register("rules", *rules_output);
  records_output = std::make_unique<RecordsOutput>(clock);
  dispatcher->Register("records", *records_output);

  exporters.Apply(config.exporters);
  ApplyConfiguredMetrics({}, config.metrics);

  const std::string& run = config.run_dir;
  MS_RETURN_IF_ERROR(MakeDir(run, FallbackRunDir()));
  MS_RETURN_IF_ERROR(MakeDir(config.data_dir, FallbackDataDir()));
  // With log sources, a commit is synced: their saved positions follow it.
  MS_RETURN_IF_ERROR(records_output->Apply(config.records, config.data_dir, !config.logs.empty()));

  const ListenerSettings& perms = config.listeners;
  RaiseOpenFileLimit(perms);
  auto mail_fifo = Perms(perms, "old_stats_mail");
  if (!mail_fifo.ok()) return mail_fifo.status();
  auto user_fifo = Perms(perms, "old_stats_user");
  if (!user_fifo.ok()) return user_fifo.status();
  auto old_stats_perms = Perms(perms, "old_stats");
  if (!old_stats_perms.ok()) return old_stats_perms.status();
  auto writer_perms = Perms(perms, "stats_writer");
  if (!writer_perms.ok()) return writer_perms.status();
  auto reader_perms = Perms(perms, "stats_reader");
  if (!reader_perms.ok()) return reader_perms.status();
  auto tail_perms = Perms(perms, "tail");
  if (!tail_perms.ok()) return tail_perms.status();
  auto exim_perms = Perms(perms, "exim_events");
  if (!exim_perms.ok()) return exim_perms.status();

  SourceContext context{*dispatcher, counters, reject_log, clock,
                        options.before_dispatch_for_testing};
  old_stats_source = std::make_unique<DovecotOldStatsSource>(context);
  ingest::StatsWriterOptions writer_options;
  writer_options.max_new_names = MaxNewNames(config);
  stats_writer_source = std::make_unique<DovecotStatsWriterSource>(
      context, [this] { return FilterLine(); }, writer_options);
  ingest::EventExportOptions post_options;
  post_options.max_new_names = MaxNewNames(config);
  event_post_source = std::make_unique<DovecotEventPostSource>(context, post_options);
  ingest::EximDecoderOptions exim_options;
  exim_options.max_new_names = MaxNewNames(config);
  exim_source =
      std::make_unique<EximEventSource>(context, exim_options, config.exim_verdict_timeout);
  stalwart_source =
      std::make_unique<StalwartWebhookSource>(context, config.stalwart, MaxNewNames(config));

  if (!config.logs.empty()) {
    const std::string state_dir = config.data_dir + "/logs";
    MS_RETURN_IF_ERROR(MakeDir(state_dir, FallbackDataDir() + "/logs"));
    for (const LogConfig& l : config.logs) {
      auto source = std::make_unique<LogSource>(io, context, l, state_dir);
      if (Status st = source->Start(); !st.ok()) {
        return Status(st.code(), fmt::format("{}: logs {}: {}", l.where, l.name, st.message()));
      }
      log_sources.push_back(std::move(source));
    }
  }

  MS_RETURN_IF_ERROR(old_stats_source->Open(listeners, run, *mail_fifo, *user_fifo));
  auto export_handler = [this](std::span<char> l, std::string& r) { return OnExportRequest(l, r); };
  auto old_stats =
      listeners.ListenUnix(run + "/old-stats", *old_stats_perms, query::kOldStatsMaxRequestBytes,
                           export_handler, perms.old_stats.limits);
  if (!old_stats.ok()) return old_stats.status();
  // Dovecot 2.3's stats service: processes write events to stats-writer,
  // doveadm reads and defines metrics on stats-reader.
  auto writer = listeners.ListenUnix(
      run + "/stats-writer", *writer_perms, ingest::kStatsWriterMaxLineBytes,
      [this] { return stats_writer_source->NewConnection(); }, perms.stats_writer.limits);
  if (!writer.ok()) return writer.status();
  stats_writer = *writer;
  // The reader's line limit counts the LF, the framer's does not.
  auto reader = listeners.ListenUnix(
      run + "/stats-reader", *reader_perms, query::kStatsReaderMaxLineBytes - 1,
      [this] { return NewStatsReader(); }, perms.stats_reader.limits);
  if (!reader.ok()) return reader.status();
  tails.set_backlog_limit(perms.tail.limits.output_limit);
  auto tail = listeners.ListenUnix(
      run + "/tail", *tail_perms, query::kTailMaxRequestBytes,
      [this] { return tails.NewConnection(); }, perms.tail.limits);
  if (!tail.ok()) return tail.status();
  // Exim's event_action: ${readsocket} connects once per event.
  auto exim = listeners.ListenUnix(
      run + "/exim-events", *exim_perms, ingest::kEximRequestMaxBytes,
      [this] { return exim_source->NewConnection(); }, perms.exim_events.limits);
  if (!exim.ok()) return exim.status();

  if (!config.old_stats_tcp.empty()) {
    auto tcp = listeners.ListenTcp(config.old_stats_tcp, query::kOldStatsMaxRequestBytes,
                                   export_handler, perms.old_stats.limits);
    if (!tcp.ok()) return tcp.status();
    spdlog::info("old-stats EXPORT on tcp {}", (*tcp)->local_address());
  }
  if (!config.http.empty()) {
    auto server = listeners.ListenHttp(config.http, HttpRoutes(), perms.http.limits);
    if (!server.ok()) return server.status();
    http = *server;
    spdlog::info("http listening on {}", http->local_address());
  }
  if (!config.stalwart.listen.empty()) {
    // Stalwart on other hosts: its route alone, over TLS.
    net::HttpRouter routes;
    routes.Add(
        {"POST"}, "/ingest/stalwart",
        [this](const net::HttpRequest& req) { return stalwart_source->Handle(req); },
        stalwart_source->RouteOptions());
    auto server = listeners.ListenHttps(config.stalwart.listen, std::move(routes),
                                        {config.stalwart.tls_certificate, config.stalwart.tls_key},
                                        perms.http.limits);
    if (!server.ok()) {
      return Status(server.status().code(),
                    fmt::format("{}: sources.stalwart.listen: {}", config.stalwart.where,
                                server.status().message()));
    }
    stalwart_https = *server;
    spdlog::info("https listening on {} for POST /ingest/stalwart", (*server)->local_address());
  }
  spdlog::info("old-stats FIFOs {0}/old-stats-mail {0}/old-stats-user, socket {0}/old-stats", run);
  spdlog::info("Exim event_action socket {}/exim-events, {} rules", run, config.rules.size());
  ScheduleTick();
  ScheduleCarbon();
  stall_probe.Start();
  if (options.handle_signals) {
    signals.add(SIGTERM);
    signals.add(SIGINT);
    signals.add(SIGHUP);
    WaitSignals();
  }
  spdlog::info("mailscope ready (memory_limit {} bytes, {} metrics)", config.old_stats_memory_limit,
               metrics.metrics().size());
  return Status::Ok();
}

const std::string& Daemon::State::FilterLine() {
  if (filter_line_stale) {
    filter_line = MakeFilterLine();
    filter_line_stale = false;
  }
  return filter_line;
}

std::string Daemon::State::MakeFilterLine() const {
  // What every metric and every tail client may match, in Dovecot's syntax:
  // queries on mailscope's own keys (kind, outcome, ...) become the Dovecot
  // events that can match them, and events an output does not take are left
  // out of its part, so Dovecot stops sending what nobody takes. Tab-escaped
  // as one field; an empty filter asks for nothing.
  std::string text;
  auto add = [&](std::string_view output, std::span<const filter::Filter* const> filters) {
    if (filters.empty()) return;
    const std::vector<std::string> refused = dispatcher->Refused(output, catalog::System::kDovecot);
    std::string part = catalog::ExportDovecotFilter(filters, catalog::Catalog::Get(), refused);
    if (part.empty()) return;
    if (!text.empty()) text += " OR ";
    text += part;
  };
  const filter::Filter* metric_filters[] = {&metrics.CombinedFilter()};
  add("metrics", metric_filters);
  add("tail", tails.Filters());
  add("records", records_output->Filters());
  std::string line = "FILTER\t";
  AppendTabEscaped(line, text);
  line += '\n';
  return line;
}

void Daemon::State::SchedulePushFilter() {
  // As Dovecot: every writer gets the new FILTER a second after a change;
  // a writer that connects meanwhile gets it at once.
  filter_line_stale = true;
  if (filter_push_pending || stopping) return;
  filter_push_pending = true;
  filter_timer.expires_after(1s);
  filter_timer.async_wait([this](boost::system::error_code ec) {
    filter_push_pending = false;
    if (ec || stats_writer == nullptr) return;
    stats_writer->Broadcast(FilterLine());
  });
}

net::LineConnection Daemon::State::NewStatsReader() {
  query::StatsReaderHooks hooks;
  hooks.metrics_changed = [this] {
    exporters.ForgetMetrics();
    SchedulePushFilter();
  };
  hooks.exporter_exists = [this](std::string_view name) { return exporters.Exists(name); };
  auto reader = std::make_shared<query::StatsReaderConnection>(metrics, std::move(hooks),
                                                               MaxNewNames(config));
  net::LineConnection conn;
  conn.greeting = std::string(query::StatsReaderGreeting());
  conn.on_line = [reader](std::span<char> line, std::string& reply) {
    bool open = reader->FeedLine(line, reply);
    if (!open) spdlog::warn("stats-reader client: {}", reader->close_reason());
    return open;
  };
  return conn;
}

bool Daemon::State::OnExportRequest(std::span<char> line, std::string& reply) {
  auto req = query::ParseOldStatsRequest(line);
  if (!req.ok()) {
    // Dovecot answers nothing and closes; doveadm then reports the disconnect.
    spdlog::warn("old-stats client: {}", req.status().message());
    return false;
  }
  if (req->kind == query::OldStatsRequest::Kind::kReset) {
    store.Reset();
    reply += "OK\n";
    return true;
  }
  query::AnswerExport(store, *req, reply);
  return true;
}

net::HttpRouter Daemon::State::HttpRoutes() {
  net::HttpRouter router;
  router.Add({"GET"}, "/metrics", [this](const net::HttpRequest& req) {
    auto format = exporter::FormatFromAccept(req.accept);
    MetricsSources sources{store,
                           counters,
                           start_time,
                           carbon_failures,
                           &dispatcher->router(),
                           &metrics,
                           tails.client_count(),
                           tails.dropped(),
                           exporters.Figures(),
                           listeners.Figures(),
                           std::chrono::duration<double>(stall_probe.longest()).count(),
                           exim_source->late_verdicts(),
                           records_output->figures(),
                           {}};
    for (const auto& source : log_sources) sources.logs.push_back(source->figures());
    sources.stalwart = stalwart_source->figures();
    return net::HttpResponse{
        200, std::string(exporter::ContentType(format)), RenderMetricsPage(sources, format), {}};
  });
  router.Add({"GET"}, "/healthz", [](const net::HttpRequest&) {
    return net::HttpResponse{200, "text/plain; charset=utf-8", "ok\n", {}};
  });
  router.Add({"GET"}, "/", [](const net::HttpRequest&) {
    return net::HttpResponse{
        200,
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><head><title>mailscope</title></head><body><h1>mailscope</h1>"
        "<ul><li><a href=\"/metrics\">/metrics</a></li><li><a href=\"/healthz\">/healthz</a></li>"
        "</ul></body></html>\n",
        {}};
  });
  // Ingest routes are POST /ingest/<source>; Dovecot's event exporter is also
  // served at /dovecot/events, the path earlier configurations name.
  net::HttpRouteOptions dovecot;
  dovecot.api = true;
  dovecot.max_body_bytes = ingest::EventExportOptions{}.max_body_bytes;
  auto post = [this](const net::HttpRequest& req) { return event_post_source->Handle(req); };
  router.Add({"POST"}, "/ingest/dovecot", post, dovecot);
  router.Add({"POST"}, "/dovecot/events", post, dovecot);
  router.Add(
      {"POST"}, "/ingest/stalwart",
      [this](const net::HttpRequest& req) { return stalwart_source->Handle(req); },
      stalwart_source->RouteOptions());
  return router;
}

void Daemon::State::ScheduleTick() {
  tick_timer.expires_after(1s);
  tick_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping) return;
    store.Tick();
    reject_log.Flush("dovecot_old_stats");
    ScheduleTick();
  });
}

void Daemon::State::ScheduleCarbon() {
  carbon_timer.expires_after(config.old_stats_carbon_interval);
  carbon_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping) return;
    if (!config.old_stats_carbon_server.empty() && !config.old_stats_carbon_name.empty() &&
        !carbon_in_flight) {
      std::string server = config.old_stats_carbon_server;
      if (server.find(':') == std::string::npos) server += ":2003";
      std::string block = exporter::RenderCarbon(store.global(), config.old_stats_carbon_name,
                                                 UnixSeconds(clock.Now()));
      // As Dovecot: a fresh connection per interval, given 80% of the interval.
      auto timeout =
          std::chrono::duration_cast<std::chrono::milliseconds>(config.old_stats_carbon_interval) *
          8 / 10;
      carbon_in_flight = true;
      net::SendOnce(io, server, std::move(block), timeout, [this, server](Status st) {
        carbon_in_flight = false;
        if (!st.ok()) {
          ++carbon_failures;
          spdlog::warn("carbon export to {} failed: {}", server, st.message());
        }
      });
    }
    ScheduleCarbon();
  });
}

void Daemon::State::WaitSignals() {
  signals.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec || stopping) return;
    if (sig == SIGHUP) {
      Reload();
      WaitSignals();
      return;
    }
    spdlog::info("signal {}: shutting down", sig);
    Shutdown();
  });
}

void Daemon::State::Reload() {
  if (config_path.empty()) {
    spdlog::info("SIGHUP: no configuration file to reload");
    return;
  }
  reloader.Request();
}

void Daemon::State::ApplyReload(Result<LoadedConfig> loaded) {
  if (stopping) return;
  const auto start = std::chrono::steady_clock::now();
  if (!loaded.ok()) {
    spdlog::error("reload failed, keeping the running configuration:\n{}",
                  loaded.status().message());
    if (options.after_reload_for_testing) options.after_reload_for_testing(loaded.status());
    return;
  }
  Config next = std::move(loaded->config);
  // Restart-only settings keep their running values.
  next.run_dir = config.run_dir;
  next.data_dir = config.data_dir;
  next.http = config.http;
  next.old_stats_tcp = config.old_stats_tcp;
  next.listeners = config.listeners;
  next.max_new_names_per_client = config.max_new_names_per_client;  // decoders hold budgets
  // [records]: the filters follow the file; the writer's settings wait for a restart.
  {
    RecordsConfig records = config.records;
    records.filters = next.records.filters;
    next.records = std::move(records);
  }
  spdlog::set_level(spdlog::level::from_str(next.log_level));
  metrics.set_max_sub_metrics(next.stats_max_sub_metrics);
  metrics.set_dynamic_limits(next.stats_max_dynamic_metrics, DynamicLimits(next));
  exporters.Apply(next.exporters);
  exporters.Reopen();  // log rotation
  dispatcher->SetControl(std::move(loaded->control));
  ApplyConfiguredMetrics(config.metrics, next.metrics);
  rules_output->SetRules(RulesOf(next));
  if (Status st = records_output->Apply(next.records, next.data_dir, !config.logs.empty());
      !st.ok())
    spdlog::error("records: {}; events are not recorded", st.message());
  exim_source->set_verdict_timeout(next.exim_verdict_timeout);
  // [sources.stalwart]: the credentials follow the file, the rest waits for a
  // restart. A running remote listener keeps requiring credentials: a file
  // that drops them all (and `listen` with them) keeps the running ones.
  {
    StalwartConfig stalwart = config.stalwart;
    stalwart.shipped_metrics = next.stalwart.shipped_metrics;
    const bool any = !next.stalwart.signature_key.empty() || !next.stalwart.username.empty() ||
                     !next.stalwart.token.empty();
    if (any || stalwart.listen.empty()) {
      stalwart.signature_key = next.stalwart.signature_key;
      stalwart.username = next.stalwart.username;
      stalwart.secret = next.stalwart.secret;
      stalwart.token = next.stalwart.token;
    } else {
      spdlog::error(
          "reload: [sources.stalwart] sets no credentials while the listener on {} runs; the "
          "running ones stay until a restart",
          stalwart.listen);
    }
    next.stalwart = std::move(stalwart);
  }
  stalwart_source->SetCredentials(next.stalwart);
  // A renewed certificate (certbot and the like replace the files, then
  // reload): read again from the running paths.
  if (stalwart_https != nullptr) {
    if (Status st =
            stalwart_https->ReloadTls({next.stalwart.tls_certificate, next.stalwart.tls_key});
        !st.ok()) {
      spdlog::error("reload: sources.stalwart.listen keeps its certificate: {}", st.message());
    }
  }
  SchedulePushFilter();  // event control may ask Dovecot for other events
  const bool interval_changed = next.old_stats_carbon_interval != config.old_stats_carbon_interval;
  config = std::move(next);
  store.SetOptions(OldStatsOptionsFrom(config));
  if (interval_changed) {
    carbon_timer.cancel();
    ScheduleCarbon();
  }
  // How long the loop was held is what a reload costs every client.
  spdlog::info(
      "configuration reloaded from {} (read in {:.1f} ms off the loop, applied in {:.1f} ms)",
      config_path, Milliseconds(loaded->read_time),
      Milliseconds(std::chrono::steady_clock::now() - start));
  if (options.after_reload_for_testing) options.after_reload_for_testing(Status::Ok());
}

void Daemon::State::ApplyConfiguredMetrics(const std::vector<MetricConfig>& previous,
                                           const std::vector<MetricConfig>& wanted) {
  auto find = [](const std::vector<MetricConfig>& list, const std::string& name) {
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const MetricConfig& m) { return m.settings.name == name; });
    return it == list.end() ? nullptr : &*it;
  };
  exporters.ForgetMetrics();
  bool changed = false;
  for (const MetricConfig& old : previous) {
    const MetricConfig* next = find(wanted, old.settings.name);
    if (next != nullptr && next->settings == old.settings) continue;
    const stats::Metric* running = metrics.Find(old.settings.name);
    if (running != nullptr && running->configured()) {
      (void)metrics.Remove(old.settings.name);
      changed = true;
    }
  }
  for (const MetricConfig& m : wanted) {
    const stats::Metric* running = metrics.Find(m.settings.name);
    if (running != nullptr && running->configured()) continue;  // unchanged
    Status st = metrics.Add(m.definition, stats::MetricsEngine::Origin::kConfig);
    if (!st.ok()) {
      spdlog::warn("{}: metric {} not added: a metric of that name was added at run time", m.where,
                   m.settings.name);
      continue;
    }
    changed = true;
  }
  if (changed) SchedulePushFilter();
}

void Daemon::State::Shutdown() {
  stopping = true;
  // FIFOs first: what writers already sent is read and accounted.
  listeners.CloseAll();
  // Log files: what was read is dispatched, and its position saved once the
  // records of it are written.
  for (auto& source : log_sources) source->Stop();
  // File and log transports go on writing what they hold (Run() waits for
  // them once the loop is done); the network ones drop it.
  exporters.Close();
  stall_probe.Stop();
  filter_timer.cancel();
  tick_timer.cancel();
  carbon_timer.cancel();
  signals.cancel();
  reject_log.Flush("dovecot_old_stats");
  // With every socket, timer and FIFO closed the loop runs out of work and
  // Run() returns once the aborted operations have unwound.
}

Daemon::Daemon(Config config, std::string config_path, Options options)
    : state_(std::make_unique<State>(std::move(config), std::move(config_path), options)) {}

Daemon::~Daemon() = default;

Status Daemon::Start() { return state_->Start(); }

void Daemon::Run() {
  net::RunContained(state_->io, [s = state_.get()] { return s->stopping; });
  state_->exporters.Finish(std::chrono::steady_clock::now() + kExportDrainTimeout);
}

void Daemon::Stop() {
  asio::post(state_->io, [s = state_.get()] { s->Shutdown(); });
}

void Daemon::Reload() {
  asio::post(state_->io, [s = state_.get()] {
    if (!s->stopping) s->Reload();
  });
}

std::string Daemon::http_address() const {
  return state_->http != nullptr ? state_->http->local_address() : std::string();
}

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

  Daemon daemon(std::move(config), flags.config_path, Daemon::Options{});
  Status st = daemon.Start();
  if (!st.ok()) {
    spdlog::error("cannot start: {}", st.message());
    return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  daemon.Run();
  spdlog::info("stopped");
  return 0;
}

}  // namespace mailscope::serve
