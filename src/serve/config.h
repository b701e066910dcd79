// Config: every setting of `mailscope serve`, with its default, and the
// schema (config_schema.h) that parsing, validation, `check-config`,
// `--help-config` and docs/configuration.md all come from.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catalog/event_control.h"
#include "core/status.h"
#include "export/exporter_settings.h"
#include "serve/config_schema.h"
#include "stats/metrics_engine.h"

namespace mailscope::serve {

// Owner, group and mode of a socket or FIFO, like Dovecot's listener settings.
struct ListenerPerms {
  std::string user;   // empty: the user mailscope runs as
  std::string group;  // empty: that user's primary group
  mode_t mode = 0600;
};

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

struct Config {
  // [serve]
  std::string run_dir;                  // sockets and FIFOs; empty: the default run directory
  std::string data_dir;                 // persistent data; empty: the default data directory
  std::string http = "127.0.0.1:9390";  // HTTP listener ADDR:PORT; empty disables it
  std::string log_level = "info";       // trace, debug, info, warn, error
  std::uint64_t max_unknown_event_series = 200;  // per source, in mailscope_events_total

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
  ListenerPerms old_stats_fifo{"", "", 0666};
  ListenerPerms old_stats_socket{"", "", 0600};

  // [events] and [outputs.NAME]: which catalog events are wanted, per output
  // (NAME one of catalog::kOutputNames).
  catalog::EventControlOptions events;

  // [stats]: Dovecot 2.3 statistics.
  std::vector<std::string> stats_dovecot_config;  // dovecot.conf files to take metrics from
  std::uint64_t stats_max_sub_metrics = 1000;
  // [metrics.NAME], then the metric { } blocks of stats_dovecot_config, in
  // file order; names are unique. Exporters likewise.
  std::vector<MetricConfig> metrics;
  std::vector<ExporterConfig> exporters;
};

// mailscope's block kinds, in documentation order: [serve], [old_stats],
// [events], [outputs.NAME], [stats], [metrics.NAME], [exporters.NAME].
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
// /tmp/mailscope-<uid>. Data: $MAILSCOPE_DATA_DIR, /var/lib/mailscope for root,
// else $XDG_STATE_HOME/mailscope or ~/.local/state/mailscope.
std::string DefaultRunDir();
std::string DefaultDataDir();

// Markdown reference of every setting (docs/configuration.md).
std::string ConfigReferenceMarkdown();
// Plain text for --help-config.
std::string ConfigReferenceText();

}  // namespace mailscope::serve
