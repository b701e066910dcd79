// Config: every setting of `mailscope serve`, with its default, and the
// schema (config_schema.h) that parsing, validation, `check-config`,
// `--help-config` and docs/configuration.md all come from.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/event_control.h"
#include "core/names.h"
#include "core/status.h"
#include "export/exporter_settings.h"
#include "net/line_limits.h"
#include "rules/rules.h"
#include "serve/config_schema.h"
#include "stats/metrics_engine.h"

namespace mailscope::serve {

// What a listener is; not a setting. A FIFO takes user, group and mode
// only; the HTTP listener (a TCP socket) client_limit, line_timeout and
// write_timeout only.
enum class ListenerKind { kSocket, kFifo, kHttp };

// One socket or FIFO of the run directory, or the HTTP listener: owner, group
// and mode like Dovecot's listener settings, and for a socket the limits on
// its clients (net::LineServerLimits, which documents each).
struct ListenerConfig {
  std::string user;   // empty: the user mailscope runs as
  std::string group;  // empty: the group mailscope runs as
  mode_t mode = 0600;
  ListenerKind kind = ListenerKind::kSocket;
  net::LineServerLimits limits;
};

// [listeners.NAME]: the sockets and FIFOs of the run directory. Nothing is
// writable by other users unless configured; docs/integrations/ names what
// Dovecot needs. Every Dovecot process connects to stats_writer, so it takes
// many clients, each of which may hold a line of up to 1 MiB.
struct ListenerSettings {
  // FIFOs: mail processes write old_stats_mail, auth old_stats_user.
  ListenerConfig old_stats_mail = Fifo();
  ListenerConfig old_stats_user = Fifo();
  ListenerConfig old_stats = Socket(0600, 100, 4u << 20);        // doveadm oldstats, EXPORT
  ListenerConfig stats_writer = Socket(0660, 10000, 64u << 20);  // Dovecot's processes
  ListenerConfig stats_reader = Socket(0600, 100, 4u << 20);     // doveadm stats
  ListenerConfig tail = Socket(0600, 64, 4u << 20);              // mailscope tail
  ListenerConfig exim_events = Socket(0660, 1000, 16u << 20);    // Exim's event_action
  ListenerConfig http = Http();  // [serve] http: /metrics, /healthz, POSTs

  // The listener of a [listeners.NAME] name ("stats_writer"), or nullptr.
  ListenerConfig* Find(std::string_view name);
  const ListenerConfig* Find(std::string_view name) const;

 private:
  static ListenerConfig Fifo() {
    ListenerConfig l;
    l.mode = 0660;
    l.kind = ListenerKind::kFifo;
    return l;
  }
  static ListenerConfig Http() {
    ListenerConfig l;
    l.kind = ListenerKind::kHttp;
    return l;
  }
  static ListenerConfig Socket(mode_t mode, std::uint64_t client_limit,
                               std::uint64_t buffer_limit) {
    ListenerConfig l;
    l.mode = mode;
    l.limits.client_limit = client_limit;
    l.limits.buffer_limit = buffer_limit;
    return l;
  }
};

// The NAMEs of [listeners.NAME]; the file in the run directory is the name
// with dashes ("stats_writer": stats-writer). "http" is the TCP listener of
// [serve] http.
inline constexpr std::string_view kListenerNames[] = {
    "old_stats_mail", "old_stats_user", "old_stats",   "stats_writer",
    "stats_reader",   "tail",           "exim_events", "http"};

// A metric of the configuration: a [metrics.NAME] table (mailscope's filter
// dialect) or a metric { } block of a dovecot.conf (Dovecot's).
struct MetricConfig {
  stats::MetricSettings settings;
  std::string where;  // "file:line" of its definition
  // Made from `settings` when the configuration is loaded.
  stats::MetricDefinition definition;
};

// An event_exporter: [exporters.NAME] or an event_exporter { } block, as
// Dovecot's setting texts (a bare transport_timeout counts milliseconds).
struct ExporterConfig {
  exporter::ExporterSettingsText text;
  std::string where;
  // Made from `text` when the configuration is loaded.
  exporter::ExporterSettings parsed;
};

// A verdict rule: a [[rules]] entry.
struct RuleConfig {
  rules::RuleSettings settings;  // name, when, verdict
  std::string where;             // "file:line" of its table
  // Made from `settings` when the configuration is loaded.
  rules::Rule rule;
};

// [records]: the events kept in DATA_DIR/records.sqlite (src/store).
struct RecordsConfig {
  std::vector<std::string> filters;  // mailscope's filter language; empty: nothing is kept
  std::chrono::seconds max_age{30 * 24 * 60 * 60};  // 0 keeps rows whatever their age
  std::uint64_t max_size = 0;                       // bytes of rows; 0: no limit
  std::uint64_t max_record_size = 4u << 20;         // an event's record, encoded
  std::uint64_t queue_size = 64u << 20;             // waiting for the writer thread
  std::uint64_t batch_size = 1000;                  // records per transaction
  std::chrono::seconds retention_interval{60};
  // A PostgreSQL conninfo (postgresql://... or key=value); empty: SQLite.
  std::string database;
  std::uint64_t spool_size = 1u << 30;  // DATA_DIR/records-spool, while PostgreSQL is away
};

// [[logs]]: one log source, files of one format read live (serve/log_source.h).
struct LogConfig {
  std::string name;                // unique; names DATA_DIR/logs/NAME.state
  std::string format;              // "qmail"
  std::vector<std::string> files;  // glob patterns; each match is a stream
  std::string start = "end";       // where a stream without a saved position begins
  std::string time_zone;           // local times without zone; empty: the system's
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds checkpoint_interval{1000};
  std::uint64_t max_line_size = 1u << 20;
  std::uint64_t queue_size = 4u << 20;
  bool shipped_metrics = true;
  std::string where;  // "file:line" of its table
};

// Bounds of [sources.stalwart] max_body_size (simdjson parses documents
// below 4 GiB; its padding follows the body) and dedup_memory.
inline constexpr std::uint64_t kStalwartMaxBodySize = (std::uint64_t{4} << 30) - 64;
inline constexpr std::uint64_t kStalwartMaxDedupMemory = std::uint64_t{16} << 30;

// [sources.stalwart]: the webhook receiver POST /ingest/stalwart
// (serve/stalwart_source.h, docs/integrations/stalwart.md).
struct StalwartConfig {
  // Credentials; each set one is required of every POST (reloadable).
  std::string signature_key;  // X-Signature: base64(HMAC-SHA256(key, body))
  std::string username;       // with `secret`: Authorization: Basic
  std::string secret;
  std::string token;  // Authorization: Bearer; either this or Basic when both are set
  std::uint64_t max_body_size = 64u << 20;
  std::chrono::seconds dedup_window{5 * 60};  // 0: no de-duplication
  std::uint64_t dedup_memory = 64u << 20;
  bool shipped_metrics = false;
  // A second listener for remote Stalwart servers: HTTPS, this route only.
  std::string listen;
  std::string tls_certificate;  // PEM chain
  std::string tls_key;          // PEM private key
  std::string where;            // "file:line" of the table
};

struct Config {
  // [serve]
  std::string run_dir;                  // sockets and FIFOs; empty: the default run directory
  std::string data_dir;                 // persistent data; empty: the default data directory
  std::string http = "127.0.0.1:9390";  // HTTP listener ADDR:PORT; empty disables it
  std::string log_level = "info";       // trace, debug, info, warn, error
  std::uint64_t max_unknown_event_series = 200;  // per source, in mailscope_events_total
  // Names new to the name table that one client may add (NameBudget).
  std::uint64_t max_new_names_per_client = kDefaultMaxNewNamesPerClient;

  // [old_stats]
  std::uint64_t old_stats_memory_limit = 16u << 20;
  std::chrono::seconds old_stats_command_min_time{60};
  std::chrono::seconds old_stats_session_min_time{15 * 60};
  std::chrono::seconds old_stats_user_min_time{60 * 60};
  std::chrono::seconds old_stats_domain_min_time{12 * 60 * 60};
  std::chrono::seconds old_stats_ip_min_time{12 * 60 * 60};
  std::string old_stats_carbon_server;  // host:port (port 2003 by default); empty disables
  std::string old_stats_carbon_name;    // the <name> in dovecot.<name>.global.*
  std::chrono::seconds old_stats_carbon_interval{30};
  std::string old_stats_tcp;  // optional EXPORT listener ADDR:PORT

  // [listeners.NAME]
  ListenerSettings listeners;

  // [events] and [outputs.NAME]: which catalog events are wanted, per output
  // (NAME one of catalog::kOutputNames).
  catalog::EventControlOptions events;

  // [stats]: Dovecot 2.3 statistics.
  std::vector<std::string> stats_dovecot_config;  // dovecot.conf files to take metrics from
  std::uint64_t stats_max_sub_metrics = 1000;
  // Metrics METRICS-ADD (`doveadm stats add`) may hold at once, and what each may have.
  std::uint64_t stats_max_dynamic_metrics = 100;
  std::uint64_t stats_max_dynamic_metric_fields = 32;
  std::uint64_t stats_max_dynamic_metric_group_by = 8;
  // [metrics.NAME], then the metric { } blocks of stats_dovecot_config, in
  // file order; names are unique. Exporters likewise.
  std::vector<MetricConfig> metrics;
  std::vector<ExporterConfig> exporters;
  // [[rules]], in file order: the first that matches gives the verdict.
  std::vector<RuleConfig> rules;
  // [sources.exim]: the catalog's metrics.exim.toml joins `metrics`.
  bool exim_shipped_metrics = false;
  // A verdict ready later than this after Exim connected is not written.
  std::chrono::milliseconds exim_verdict_timeout{500};
  // [sources.stalwart]
  StalwartConfig stalwart;
  // [records]
  RecordsConfig records;
  // [[logs]], in file order.
  std::vector<LogConfig> logs;
};

// mailscope's block kinds, in documentation order: [serve], [old_stats],
// [events], [outputs.NAME], [stats], [metrics.NAME], [[rules]],
// [exporters.NAME].
//
// A source adds its settings as a block of its own: a plain struct of the
// settings it reads (with in-class defaults), a field of that type in Config,
// and a kind added to the schema in config.cc:
//   schema.Add(BlockKind<Config, StalwartSource>{
//       .path = "sources.stalwart",
//       .open = [](Config& c, const BlockStart&) -> StalwartSource& { return c.stalwart; },
//       .keys = {{"listen", SettingType::kAddress, false, "\"\"", "...",
//                 Store(&StalwartSource::listen, ReadAddress)}}});
// A source with several instances (several log files) uses
// BlockShape::kArrayOfTables, [[sources.NAME]], into a vector field.
// Dovecot's blocks keep their names: [old_stats], [stats].
const ConfigSchema<Config>& Schema();

// Every documented key of Schema(), in documentation order.
const std::vector<Setting>& Settings();

// Parses a TOML file over the defaults. Errors name file:line:key and the
// problem; unknown keys are errors with the closest known key suggested.
Result<Config> LoadConfigFile(const std::string& path);
// Same, from text (for tests); `name` stands for the file name in errors.
Result<Config> ParseConfig(std::string_view toml_text, std::string_view name);

// The defaults when no run/data directory is configured: $MAILSCOPE_RUN_DIR,
// else /run/mailscope for root, else $XDG_RUNTIME_DIR/mailscope, else
// FallbackRunDir(). Data: $MAILSCOPE_DATA_DIR, /var/lib/mailscope for root,
// else $XDG_STATE_HOME/mailscope or ~/.local/state/mailscope, else
// FallbackDataDir().
std::string DefaultRunDir();
std::string DefaultDataDir();
// /tmp/mailscope-<uid> and /tmp/mailscope-data-<uid>: in a directory every
// user can write, so serve uses them only when they are private to it
// (run_dir.h, MakePrivateDir).
std::string FallbackRunDir();
std::string FallbackDataDir();

// Adds the metrics mailscope ships for a log format ("qmail": the catalog's
// metrics.qmail.toml) to `config`, but for the names `config` defines, and
// makes their definitions. The error names the file and the problem.
Status AddShippedLogMetrics(std::string_view format, Config& config);

// Markdown reference of every setting (docs/configuration.md).
std::string ConfigReferenceMarkdown();
// Plain text for --help-config.
std::string ConfigReferenceText();

}  // namespace mailscope::serve
