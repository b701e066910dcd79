#include "serve/config.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "catalog/catalog.h"
#include "core/check.h"
#include "core/time_zone.h"
#include "serve/dovecot_conf.h"

namespace mailscope::serve {
namespace {

KeySetter<Config> LogLevel() {
  return [](Config& c, const ConfigValue& v) -> Status {
    auto level = ReadLevel(v);
    if (!level.ok()) return level.status();
    c.log_level = std::string(LevelName(*level));
    return Status::Ok();
  };
}

// A positive integer of at most `max`.
auto ReadCountUpTo(std::uint64_t max) {
  return [max](const ConfigValue& v) -> Result<std::uint64_t> {
    auto n = ReadCount(v);
    if (n.ok() && *n > max) return InvalidArgument(fmt::format("expected at most {}", max));
    return n;
  };
}

// The most one client may add: a sixteenth of the name table's budget, so
// that clients at their budgets stay many before the table is full.
constexpr std::uint64_t kMaxNewNamesPerClient = kDefaultMaxNames / 16;

// Event patterns, each checked against the catalog; a bad item is reported
// at its own line and the others are kept.
Status SetEventList(std::vector<std::string>& out, const ConfigValue& v) {
  if (!v.IsArray()) return InvalidArgument("expected an array of event names");
  for (const ConfigValue& item : v.Items()) {
    auto text = item.String();
    if (!text) {
      item.Report("expected a string");
      continue;
    }
    Status st = catalog::EventControl::CheckPattern(catalog::Catalog::Get(), *text);
    if (!st.ok()) {
      item.Report(st.message());
      continue;
    }
    out.push_back(*text);
  }
  return Status::Ok();
}

template <typename Block>
KeySetter<Block> EventList(std::vector<std::string> Block::*member) {
  return [member](Block& b, const ConfigValue& v) { return SetEventList(b.*member, v); };
}

Status SetEventLevels(catalog::EventControlOptions& o, const ConfigValue& v) {
  if (!v.IsTable()) return InvalidArgument("expected a table of event = level");
  for (const ConfigValue& entry : v.Entries()) {
    Status st = catalog::EventControl::CheckPattern(catalog::Catalog::Get(), entry.name());
    if (!st.ok()) {
      entry.Report(st.message());
      continue;
    }
    auto level = ReadLevel(entry);
    if (!level.ok()) {
      entry.Report(level.status().message());
      continue;
    }
    o.levels.emplace_back(entry.name(), *level);
  }
  return Status::Ok();
}

// A text setting of a metric; `words` also takes an array of strings.
KeySetter<MetricConfig> MetricText(std::string stats::MetricSettings::*field, bool words) {
  return [field, words](MetricConfig& m, const ConfigValue& v) -> Status {
    auto text = words ? ReadWords(v) : ReadString(v);
    if (!text.ok()) return text.status();
    m.settings.*field = std::move(*text);
    return Status::Ok();
  };
}

KeySetter<ExporterConfig> ExporterText(std::string exporter::ExporterSettingsText::*field) {
  return [field](ExporterConfig& e, const ConfigValue& v) -> Status {
    std::optional<std::string> text = v.String();
    // Dovecot's bare transport_timeout counts milliseconds; TOML may give it as a number.
    if (auto i = v.Integer();
        !text && i && field == &exporter::ExporterSettingsText::transport_timeout)
      text = std::to_string(*i);
    if (!text) return InvalidArgument("expected a string");
    e.text.*field = std::move(*text);
    return Status::Ok();
  };
}

// The keys of a metric, for [metrics.NAME] and dovecot.conf's metric { }.
const std::vector<Key<MetricConfig>>& MetricKeys() {
  using S = stats::MetricSettings;
  static const std::vector<Key<MetricConfig>> keys = {
      {"filter", SettingType::kFilter, true, "(required)",
       "Events the metric counts, in the event filter language with mailscope's size and "
       "duration units (docs/filter.md).",
       MetricText(&S::filter, false)},
      {"fields", SettingType::kStringList, true, "[]",
       "Numeric fields whose count, sum, min, max, avg and quantiles are kept besides "
       "`duration` (array, or one string of space-separated names).",
       MetricText(&S::fields, true)},
      {"group_by", SettingType::kStringList, true, "[]",
       "Sub-metrics per field value, nested in order: `field`, `field:discrete`, "
       "`field:linear:MIN:MAX:STEP`, `field:exponential:MIN:MAX:BASE` (Dovecot's group_by).",
       MetricText(&S::group_by, true)},
      {"description", SettingType::kString, true, "\"\"",
       "Text of the metric's HELP line on /metrics.", MetricText(&S::description, false)},
      {"exporter", SettingType::kString, true, "\"\"",
       "Name of an exporter that gets every event the metric counts.",
       MetricText(&S::exporter, false)},
      {"exporter_include", SettingType::kStringList, true,
       "name hostname timestamps categories fields", "Parts of the event the exporter sends.",
       MetricText(&S::exporter_include, true)},
      {"openmetrics_levels", SettingType::kString, true, "\"all\"",
       "Which group_by levels are series on /metrics: all (the metric's total and every "
       "level, Dovecot's layout) or last (the innermost level only, so that sum() over the "
       "family gives the total; events without the grouped fields are then in no series).",
       MetricText(&S::openmetrics_levels, false)},
  };
  return keys;
}

// The keys of an event exporter (its name aside), for [exporters.NAME] and
// dovecot.conf's event_exporter { }.
const std::vector<Key<ExporterConfig>>& ExporterKeys() {
  using T = exporter::ExporterSettingsText;
  static const std::vector<Key<ExporterConfig>> keys = {
      {"format", SettingType::kString, true, "(required)",
       "`json`, `tab-text` or `none`, as Dovecot's event_exporter.", ExporterText(&T::format)},
      {"format_args", SettingType::kString, true, "\"\"",
       "`time-rfc3339` or `time-unix` (required for json and tab-text).",
       ExporterText(&T::format_args)},
      {"transport", SettingType::kString, true, "(required)",
       "`drop`, `log`, `http-post`, `file` or `unix`.", ExporterText(&T::transport)},
      {"transport_args", SettingType::kString, true, "\"\"",
       "http-post: the http:// URL; file: the path; unix: the socket path.",
       ExporterText(&T::transport_args)},
      {"transport_timeout", SettingType::kDuration, true, "250 ms",
       "How long one delivery may take; a bare number counts milliseconds.",
       ExporterText(&T::transport_timeout)},
  };
  return keys;
}

// "trace (old_stats, metrics), info (tail, exporters)": the outputs' default
// levels, grouped, from the one list of outputs.
std::string OutputLevelDefaults() {
  std::vector<std::pair<Level, std::vector<std::string_view>>> groups;
  for (std::string_view name : catalog::kOutputNames) {
    Level level = catalog::DefaultOutputLevel(name);
    auto it = std::find_if(groups.begin(), groups.end(),
                           [level](const auto& g) { return g.first == level; });
    if (it == groups.end()) it = groups.insert(groups.end(), {level, {}});
    it->second.push_back(name);
  }
  std::vector<std::string> parts;
  for (const auto& [level, names] : groups)
    parts.push_back(fmt::format("{} ({})", LevelName(level), fmt::join(names, ", ")));
  return fmt::format("{}", fmt::join(parts, ", "));
}

constexpr const char* kHttpTakes =
    "the HTTP listener takes client_limit, line_timeout and write_timeout only";

// A [listeners.NAME] key of a file in the run directory: an error on the
// HTTP listener.
template <typename T, typename Read>
KeySetter<ListenerConfig> FileOnly(T ListenerConfig::*member, Read read) {
  return [member, read](ListenerConfig& l, const ConfigValue& v) -> Status {
    if (l.kind == ListenerKind::kHttp) return InvalidArgument(kHttpTakes);
    auto value = read(v);
    if (!value.ok()) return value.status();
    l.*member = *value;
    return Status::Ok();
  };
}

// A [listeners.NAME] key that only a socket has: an error on a FIFO, and on
// the HTTP listener unless `http` (its requests and responses are bounded
// otherwise: net/http_server.h).
template <typename T, typename Read>
KeySetter<ListenerConfig> SocketOnly(T net::LineServerLimits::*member, Read read,
                                     bool http = true) {
  return [member, read, http](ListenerConfig& l, const ConfigValue& v) -> Status {
    if (l.kind == ListenerKind::kFifo) {
      return InvalidArgument("a FIFO has no connections: it takes user, group and mode only");
    }
    if (l.kind == ListenerKind::kHttp && !http) return InvalidArgument(kHttpTakes);
    auto value = read(v);
    if (!value.ok()) return value.status();
    l.limits.*member = *value;
    return Status::Ok();
  };
}

// Fixed tables set Config's own fields.
Config& Root(Config& c, const BlockStart&) { return c; }

// A key of a [[rules]] table: a string of the rule's settings.
KeySetter<RuleConfig> RuleKey(std::string rules::RuleSettings::*member) {
  return [member](RuleConfig& r, const ConfigValue& v) -> Status {
    auto value = ReadString(v);
    if (!value.ok()) return value.status();
    r.settings.*member = std::move(*value);
    return Status::Ok();
  };
}

// A size, or 0 for "no limit".
Result<std::uint64_t> ReadSizeOrZero(const ConfigValue& v) {
  if (auto i = v.Integer(); i && *i == 0) return std::uint64_t{0};
  if (auto t = v.String(); t && (*t == "0" || *t == "0B")) return std::uint64_t{0};
  return ReadSize(v);
}

// One filter or an array of them, each parsed here so that a mistake is
// reported at its line.
Status SetRecordFilters(RecordsConfig& r, const ConfigValue& v) {
  std::vector<ConfigValue> items;
  if (v.IsArray()) {
    items = v.Items();
  } else {
    items.push_back(v);
  }
  r.filters.clear();
  for (const ConfigValue& item : items) {
    auto text = item.String();
    if (!text) return InvalidArgument("expected a filter string or an array of them");
    auto parsed = filter::Parse(*text, filter::Dialect::kMailscope);
    if (!parsed.ok()) return InvalidArgument(parsed.status().message());
    if (parsed->empty()) return InvalidArgument("an empty filter would keep nothing");
    r.filters.push_back(std::move(*text));
  }
  return Status::Ok();
}

ConfigSchema<Config> MakeSchema() {
  ConfigSchema<Config> schema;
  schema.Add(BlockKind<Config, Config>{
      .path = "serve",
      .open = Root,
      .keys = {
          {"run_dir", SettingType::kString, false, "(see below)",
           "Directory of the FIFOs and sockets (old-stats-mail, old-stats-user, old-stats, "
           "stats-writer, stats-reader, tail). Created with mode 0755 when missing; the mode of "
           "an existing directory is left as it is. --run-dir overrides it.",
           Store(&Config::run_dir, ReadString)},
          {"data_dir", SettingType::kString, false, "(see below)",
           "Directory for persistent data. --data-dir overrides it.",
           Store(&Config::data_dir, ReadString)},
          {"http", SettingType::kAddress, false, "127.0.0.1:9390",
           "HTTP listener for /metrics and /healthz, ADDR:PORT. Port 0 picks a free port; "
           "an empty string disables HTTP. --http overrides it.",
           Store(&Config::http, ReadAddress)},
          {"log_level", SettingType::kLogLevel, true, "info",
           "Least severe level logged to stderr: trace, debug, info, warn or error.", LogLevel()},
          {"max_unknown_event_series", SettingType::kCount, false, "200",
           "Event names the catalog does not know that each source may add to "
           "mailscope_events_total; events of further new names are counted in "
           "mailscope_events_folded_total{source}. Names are the sender's choice.",
           Store(&Config::max_unknown_event_series, ReadCount)},
          {"max_new_names_per_client", SettingType::kCount, false,
           std::to_string(kDefaultMaxNewNamesPerClient),
           fmt::format(
               "Names (event names, field keys, categories) new to mailscope that one client may "
               "add: each stats-writer connection, each `mailscope tail` filter, each "
               "stats-reader connection (METRICS-ADD), and POST /ingest/dovecot as a whole. "
               "Names are kept for the life of the process, so a client past its budget gets its "
               "new names refused (a line or body naming a new event or category is rejected, a "
               "new field key is left out, a filter is refused) while other clients still add "
               "theirs; names mailscope knows already cost nothing. Refusals are counted in "
               "mailscope_names_refused_total{{input,reason}}. At most {}, a sixteenth of the {} "
               "names all clients together may add.",
               kMaxNewNamesPerClient, kDefaultMaxNames),
           Store(&Config::max_new_names_per_client, ReadCountUpTo(kMaxNewNamesPerClient))},
      }});
  schema.Add(BlockKind<Config, Config>{
      .path = "old_stats",
      .open = Root,
      .keys =
          {
              {"memory_limit", SettingType::kSize, true, "16M",
               "Memory the old-stats zoom levels may hold (Dovecot: old_stats_memory_limit). Every "
               "byte of every entry and index is counted.",
               Store(&Config::old_stats_memory_limit, ReadSize)},
              {"command_min_time", SettingType::kDuration, true, "1 min",
               "Minimum time a finished command is kept when memory is tight.",
               Store(&Config::old_stats_command_min_time, ReadDuration)},
              {"session_min_time", SettingType::kDuration, true, "15 mins",
               "Minimum time a disconnected session is kept when memory is tight.",
               Store(&Config::old_stats_session_min_time, ReadDuration)},
              {"user_min_time", SettingType::kDuration, true, "1 hour",
               "Minimum time a user is kept after its last session went.",
               Store(&Config::old_stats_user_min_time, ReadDuration)},
              {"domain_min_time", SettingType::kDuration, true, "12 hours",
               "Minimum time a domain is kept after its last user went.",
               Store(&Config::old_stats_domain_min_time, ReadDuration)},
              {"ip_min_time", SettingType::kDuration, true, "12 hours",
               "Minimum time an IP is kept after its last session went.",
               Store(&Config::old_stats_ip_min_time, ReadDuration)},
              {"carbon_server", SettingType::kAddress, true, "\"\"",
               "Graphite plaintext receiver, IP:PORT. Empty disables the export.",
               Store(&Config::old_stats_carbon_server, ReadAddress)},
              {"carbon_name", SettingType::kString, true, "\"\"",
               "Name in the metric path dovecot.<name>.global.<field>; no dots. Export needs it "
               "set.",
               Store(&Config::old_stats_carbon_name, ReadString)},
              {"carbon_interval", SettingType::kDuration, true, "30 secs",
               "How often the global figures are sent to carbon_server.",
               Store(&Config::old_stats_carbon_interval, ReadPositiveDuration)},
              {"tcp", SettingType::kAddress, false, "\"\"",
               "Optional TCP listener for the EXPORT/RESET protocol, ADDR:PORT (use a loopback "
               "address: the protocol has no authentication).",
               Store(&Config::old_stats_tcp, ReadAddress)},
          },
      .replaced = {
          {"fifo_mode", "[listeners.old_stats_mail] and [listeners.old_stats_user] mode"},
          {"fifo_user", "[listeners.old_stats_mail] and [listeners.old_stats_user] user"},
          {"fifo_group", "[listeners.old_stats_mail] and [listeners.old_stats_user] group"},
          {"socket_mode", "[listeners.old_stats] mode"},
          {"socket_user", "[listeners.old_stats] user"},
          {"socket_group", "[listeners.old_stats] group"},
      }});
  schema.Add(BlockKind<Config, ListenerConfig>{
      .path = "listeners",
      .shape = BlockShape::kNamedTables,
      .open = [](Config& c, const BlockStart& start) -> ListenerConfig& {
        ListenerConfig* perms = c.listeners.Find(start.name);
        MS_CHECK(perms != nullptr);  // the walker accepts only kListenerNames
        return *perms;
      },
      .keys =
          {
              {"user", SettingType::kString, false, "\"\"",
               "Owner of the socket or FIFO (empty: the user mailscope runs as; only root can "
               "give it to another user). Files of the run directory only, as are group and "
               "mode.",
               FileOnly(&ListenerConfig::user, ReadString)},
              {"group", SettingType::kString, false, "\"\"",
               "Group of the socket or FIFO (empty: the group mailscope runs as).",
               FileOnly(&ListenerConfig::group, ReadString)},
              {"mode", SettingType::kMode, false,
               "0660 (old_stats_mail, old_stats_user, stats_writer, exim_events), 0600 "
               "(old_stats, stats_reader, tail)",
               "Mode of the socket or FIFO. Of Dovecot's writers only the mail processes need a "
               "setting: they write old_stats_mail with the mail user's uid, while auth and the "
               "services that connect to stats_writer do so as root "
               "(docs/integrations/dovecot.md). Exim's processes run as root and as "
               "Debian-exim: exim_events needs group = \"Debian-exim\" "
               "(docs/integrations/exim.md). A mode that lets every user write is logged as "
               "a warning at start.",
               FileOnly(&ListenerConfig::mode, ReadMode)},
              {"client_limit", SettingType::kCount, false,
               "10000 (stats_writer), 1000 (http, exim_events), 64 (tail), 100 (old_stats, "
               "stats_reader)",
               "Open connections the socket takes; one more is closed at once and counted in "
               "mailscope_listener_refused_total (the HTTP listener first writes it a 503 if "
               "the socket takes it at once). Every Dovecot process holds a stats_writer "
               "connection (Dovecot's own stats service takes default_client_limit, 1000), and "
               "each process whose event_exporter posts to /ingest/dovecot may hold an HTTP one. "
               "The old-stats TCP listener (old_stats.tcp) takes old_stats's limits. Sockets "
               "only.",
               SocketOnly(&net::LineServerLimits::client_limit, ReadCount)},
              {"buffer_limit", SettingType::kSize, false,
               "64M (stats_writer), 16M (exim_events), 4M (old_stats, stats_reader, tail)",
               "Bytes of incomplete lines the socket's connections hold together (a connection "
               "between lines holds none). A connection whose line would grow the total past it "
               "is closed. Lines are at most 1 MiB (stats_writer), 64 KiB (tail, exim_events) "
               "or 1 KiB (old_stats, stats_reader); a longer one closes its connection. Sockets "
               "of the run directory only.",
               SocketOnly(&net::LineServerLimits::buffer_limit, ReadSize, false)},
              {"output_limit", SettingType::kSize, false, "1M",
               "Bytes of replies a connection may leave unread. Past it, its further requests "
               "wait unread until the client catches up (a reply is never cut); a `mailscope "
               "tail` client that far behind misses events, counted in "
               "mailscope_tail_dropped_total. Sockets of the run directory only.",
               SocketOnly(&net::LineServerLimits::output_limit, ReadSize, false)},
              {"line_timeout", SettingType::kDuration, false, "30 secs",
               "Time from a line's first byte to its end; a connection still inside a line "
               "after it is closed. For the HTTP listener, the time a connection has to send a "
               "request's header after accept or after the previous response (an idle "
               "keep-alive connection is closed then too, uncounted), and then each further "
               "piece of its body: a large body may take longer as long as it keeps coming. "
               "0 disables (a TLS handshake is still bounded, by 10 s). "
               "Sockets only.",
               SocketOnly(&net::LineServerLimits::line_timeout, ReadDuration)},
              {"write_timeout", SettingType::kDuration, false, "30 secs",
               "Time a write may wait for the client to read before the connection is closed; "
               "each byte taken starts it again. 0 disables. Sockets only.",
               SocketOnly(&net::LineServerLimits::write_timeout, ReadDuration)},
          },
      .noun = "listener",
      .names = {std::begin(kListenerNames), std::end(kListenerNames)}});
  schema.Add(BlockKind<Config, catalog::EventControlOptions>{
      .path = "events",
      .open = [](Config& c, const BlockStart&) -> catalog::EventControlOptions& {
        return c.events;
      },
      .keys = {
          {"disabled", SettingType::kEventList, true, "[]",
           "Catalog events no output takes: \"system:name\" or a bare name for every system; "
           "wildcards `*`, `pre*`, `*suf`. Unknown names are errors.",
           EventList(&catalog::EventControlOptions::disabled)},
          {"levels", SettingType::kEventLevels, true, "{}",
           "Per-event level overrides, e.g. { \"stalwart:auth.failed\" = \"warn\" }; events "
           "without a default level count as info.",
           SetEventLevels},
      }});
  schema.Add(BlockKind<Config, catalog::OutputRules>{
      .path = "outputs",
      .shape = BlockShape::kNamedTables,
      .open = [](Config& c, const BlockStart& start) -> catalog::OutputRules& {
        return c.events.outputs[std::string(start.name)];
      },
      .keys =
          {
              {"level", SettingType::kLogLevel, true, OutputLevelDefaults(),
               fmt::format("Least severe event level the output takes: trace, debug, info, warn or "
                           "error. The outputs are {}.",
                           fmt::join(catalog::kOutputNames, ", ")),
               Store(&catalog::OutputRules::level, ReadLevel)},
              {"disabled", SettingType::kEventList, true, "[]",
               "Catalog events this output does not take (same patterns as events.disabled).",
               EventList(&catalog::OutputRules::disabled)},
          },
      .noun = "output",
      .names = {std::begin(catalog::kOutputNames), std::end(catalog::kOutputNames)}});
  schema.Add(BlockKind<Config, Config>{
      .path = "stats",
      .open = Root,
      .keys = {
          {"dovecot_config", SettingType::kStringList, true, "[]",
           "dovecot.conf files (or snippets of one) whose `metric { }` and `event_exporter { }` "
           "blocks are taken as they are, in Dovecot's filter language; `!include` is "
           "followed, everything else skipped. Relative paths start at this file's directory.",
           Store(&Config::stats_dovecot_config, ReadPaths)},
          {"max_sub_metrics", SettingType::kCount, true, "1000",
           "Sub-metrics (group_by values, all levels) per metric; new values past it are "
           "counted in mailscope_metric_sub_metrics_dropped_total and not kept.",
           Store(&Config::stats_max_sub_metrics, ReadCount)},
          {"max_dynamic_metrics", SettingType::kCount, true, "100",
           "Metrics that `doveadm stats add` (METRICS-ADD) may hold at once; past it METRICS-ADD "
           "is refused with \"Too many metrics added at run time\" until one is removed. "
           "Configured metrics do not count.",
           Store(&Config::stats_max_dynamic_metrics, ReadCount)},
          {"max_dynamic_metric_fields", SettingType::kCount, true, "32",
           "Fields a metric added by METRICS-ADD may have; each is a distribution in every "
           "sub-metric.",
           Store(&Config::stats_max_dynamic_metric_fields, ReadCount)},
          {"max_dynamic_metric_group_by", SettingType::kCount, true, "8",
           "group_by levels a metric added by METRICS-ADD may have.",
           Store(&Config::stats_max_dynamic_metric_group_by, ReadCount)},
      }});
  schema.Add(BlockKind<Config, MetricConfig>{
      .path = "metrics",
      .shape = BlockShape::kNamedTables,
      .open = [](Config& c, const BlockStart& start) -> MetricConfig& {
        MetricConfig& m = c.metrics.emplace_back();
        m.settings.name = std::string(start.name);
        m.settings.dialect = filter::Dialect::kMailscope;
        m.where = start.where;
        return m;
      },
      .keys = MetricKeys(),
      .noun = "metric"});
  schema.Add(BlockKind<Config, Config>{
      .path = "sources.exim",
      .open = Root,
      .keys = {
          {"shipped_metrics", SettingType::kBool, true, "false",
           "Count Exim's events with the metrics mailscope ships (deliveries, deferrals, "
           "failures, reception steps and verdicts by domain, host, transport, router and "
           "reason; docs/integrations/exim.md lists them): the [metrics.NAME] tables of "
           "src/catalog/data/metrics.exim.toml, compiled in. Off by default, so that a "
           "Dovecot-only installation's `doveadm stats dump` shows its own metrics only. A "
           "[metrics.NAME] of this file with the same name replaces one of them.",
           Store(&Config::exim_shipped_metrics, ReadBool)},
          {"verdict_timeout", SettingType::kDuration, true, "500 msecs",
           "A verdict for Exim that is ready later than this after Exim connected (the loop "
           "was busy before it read the request) is not written: Exim gets an empty reply, as "
           "if no rule had answered, and the verdict is counted in "
           "mailscope_exim_verdicts_late_total; the event still counts. Keep it below the "
           "fragment's readsocket timeout (1s), so that no verdict comes after Exim went on "
           "without it. A bare number counts milliseconds. 0 disables.",
           Store(&Config::exim_verdict_timeout, ReadMillis)},
      }});
  schema.Add(BlockKind<Config, StalwartConfig>{
      .path = "sources.stalwart",
      .open = [](Config& c, const BlockStart& start) -> StalwartConfig& {
        c.stalwart.where = start.where;
        return c.stalwart;
      },
      .keys = {
          {"signature_key", SettingType::kString, true, "\"\"",
           "The key of the webhook's `signature-key` (v0.16: signatureKey). When set, every POST "
           "must carry X-Signature, the base64 HMAC-SHA256 of its body under this key, checked "
           "in constant time before the body is parsed: none is a 401, a wrong one a 403, each "
           "counted in mailscope_ingest_rejected_total{source=\"stalwart\"}.",
           Store(&StalwartConfig::signature_key, ReadString)},
          {"username", SettingType::kString, true, "\"\"",
           "With `secret`: the webhook's `auth.username` / `auth.secret` (v0.16: httpAuth "
           "Basic). Every POST must then carry them as `Authorization: Basic`; none is a 401, "
           "others a 403.",
           Store(&StalwartConfig::username, ReadString)},
          {"secret", SettingType::kString, true, "\"\"", "The password that goes with `username`.",
           Store(&StalwartConfig::secret, ReadString)},
          {"token", SettingType::kString, true, "\"\"",
           "The webhook's `auth.token` (v0.16: httpAuth Bearer): every POST must carry "
           "`Authorization: Bearer TOKEN`. With `username` set too, either is taken.",
           Store(&StalwartConfig::token, ReadString)},
          {"max_body_size", SettingType::kSize, false, "64M",
           "The largest POST body taken. Stalwart puts everything a throttle window gathered "
           "into one POST, and re-sends a refused one whole, merged with newer events, until "
           "its discard-after: a body refused for its size would come back larger. Keep this "
           "above what a burst can produce.",
           Store(&StalwartConfig::max_body_size, ReadSize)},
          {"dedup_window", SettingType::kDuration, false, "5 mins",
           "How long an event is remembered so that Stalwart's re-sending (after a timeout or "
           "a non-2xx, until discard-after, 5 minutes by default) counts it once. An event is "
           "known by its type, createdAt, id and data. 0 counts every event received.",
           Store(&StalwartConfig::dedup_window, ReadDuration)},
          {"dedup_memory", SettingType::kSize, false, "64M",
           "The memory that holds the remembered events, 32 bytes each (64M: two million). "
           "Past it the oldest is forgotten before its window ends and counted in "
           "mailscope_stalwart_dedup_evicted_total.",
           Store(&StalwartConfig::dedup_memory, ReadSize)},
          {"shipped_metrics", SettingType::kBool, true, "false",
           "Count Stalwart's events with the metrics mailscope ships (SMTP sessions, "
           "deliveries and their outcomes, authentication failures per IP and account, spam "
           "verdicts, queue events, latency and size distributions; "
           "docs/integrations/stalwart.md lists them): the [metrics.NAME] tables of "
           "src/catalog/data/metrics.stalwart.toml, compiled in. A [metrics.NAME] of this file "
           "with the same name replaces one of them.",
           Store(&StalwartConfig::shipped_metrics, ReadBool)},
          {"listen", SettingType::kAddress, false, "\"\"",
           "A second listener, ADDR:PORT, for Stalwart servers on other hosts: HTTPS with "
           "`tls_certificate` and `tls_key`, serving POST /ingest/stalwart only. It requires a "
           "`signature_key`, a `username` or a `token`. Empty: none.",
           Store(&StalwartConfig::listen, ReadAddress)},
          {"tls_certificate", SettingType::kString, false, "\"\"",
           "The PEM file of the `listen` listener's certificate chain; a relative path is "
           "found from this file's directory. The file and the key's are read again on "
           "SIGHUP (a renewed certificate); a new path needs a restart.",
           Store(&StalwartConfig::tls_certificate, ReadString)},
          {"tls_key", SettingType::kString, false, "\"\"",
           "The PEM file of that certificate's private key (relative: as `tls_certificate`).",
           Store(&StalwartConfig::tls_key, ReadString)},
      }});
  schema.Add(BlockKind<Config, RecordsConfig>{
      .path = "records",
      .open = [](Config& c, const BlockStart&) -> RecordsConfig& { return c.records; },
      .keys = {
          {"filter", SettingType::kFilter, true, "(none: nothing is recorded)",
           "The events to keep: a filter in mailscope's language (docs/filter.md), or an "
           "array of them (an event that matches any is kept). Each is written to "
           "DATA_DIR/records.sqlite by a thread of its own, with its normalized columns and "
           "all its fields; `mailscope events` reads them back (docs/records.md).",
           SetRecordFilters},
          {"max_age", SettingType::kDuration, false, "30 days",
           "Rows older than this are deleted, in chunks of 10,000 between writes, every "
           "`retention_interval`. 0 keeps rows whatever their age.",
           Store(&RecordsConfig::max_age, ReadDuration)},
          {"max_size", SettingType::kSize, false, "0",
           "When the rows take more than this, the oldest are deleted until they fit; new rows "
           "reuse their space, so the SQLite file stays near this size (PostgreSQL: see "
           "docs/records.md). 0: no limit.",
           Store(&RecordsConfig::max_size, ReadSizeOrZero)},
          {"retention_interval", SettingType::kDuration, false, "1 min",
           "How often `max_age` and `max_size` are applied.",
           Store(&RecordsConfig::retention_interval, ReadPositiveDuration)},
          {"max_record_size", SettingType::kSize, false, "4M",
           "An event whose record (its fields, encoded) is larger is not kept; it is counted "
           "in mailscope_records_dropped_total{reason=\"too_large\"}.",
           Store(&RecordsConfig::max_record_size, ReadSize)},
          {"queue_size", SettingType::kSize, false, "64M",
           "Records waiting for the writer thread, in bytes. The loop never waits for the "
           "database: a record that finds the queue full is dropped and counted in "
           "mailscope_records_dropped_total{reason=\"queue_full\"}.",
           Store(&RecordsConfig::queue_size, ReadSize)},
          {"database", SettingType::kString, false, "\"\" (SQLite)",
           "Keep the records in PostgreSQL instead: a libpq connection string, "
           "\"postgresql://mailscope@127.0.0.1/mailscope\" or \"host=... dbname=...\" (a "
           "password is better in ~/.pgpass or PGPASSWORD than here). mailscope makes and "
           "migrates its tables. While the server is away, records wait in "
           "DATA_DIR/records-spool and are written when it is back, each once.",
           Store(&RecordsConfig::database, ReadString)},
          {"spool_size", SettingType::kSize, false, "1G",
           "What DATA_DIR/records-spool may hold while PostgreSQL is away; records that would "
           "pass it are dropped and counted in "
           "mailscope_records_dropped_total{reason=\"spool_full\"}.",
           Store(&RecordsConfig::spool_size, ReadSize)},
          {"batch_size", SettingType::kCount, false, "1000",
           "Records written per transaction, at most; fewer when fewer are waiting.",
           Store(&RecordsConfig::batch_size, ReadCountUpTo(1'000'000))},
      }});
  schema.Add(BlockKind<Config, RuleConfig>{
      .path = "rules",
      .shape = BlockShape::kArrayOfTables,
      .open = [](Config& c, const BlockStart& start) -> RuleConfig& {
        RuleConfig& r = c.rules.emplace_back();
        r.where = start.where;
        return r;
      },
      .keys = {
          {"name", SettingType::kString, true, "(required)",
           "The rule's name: the `rule` field of the verdict's event. Unique among the rules.",
           RuleKey(&rules::RuleSettings::name)},
          {"when", SettingType::kString, true, "(required)",
           "The events the rule answers: a filter in mailscope's language (docs/filter.md), "
           "e.g. 'event=\"tcp:connect\" AND host_address=192.0.2.*'. Only events whose result "
           "their source uses get a verdict: Exim's tcp:connect (not connecting), smtp:connect "
           "(closing the session), tls:cert (refusing the certificate) and auth:fail (the log "
           "line); every other event gets an empty reply whatever the rules say.",
           RuleKey(&rules::RuleSettings::when)},
          {"verdict", SettingType::kString, true, "(required)",
           "The text the source gets back; one line, at most 1024 bytes. The first rule in the "
           "file that matches gives it, and the verdict becomes an event of its own, "
           "mailscope:verdict (counted, and seen by tail, metrics and exporters).",
           RuleKey(&rules::RuleSettings::verdict)},
      }});
  schema.Add(BlockKind<Config, LogConfig>{
      .path = "logs",
      .shape = BlockShape::kArrayOfTables,
      .open = [](Config& c, const BlockStart& start) -> LogConfig& {
        LogConfig& l = c.logs.emplace_back();
        l.where = start.where;
        return l;
      },
      .keys = {
          {"name", SettingType::kString, false, "(required)",
           "The log source's name, unique among them: the `log` label of its figures on "
           "/metrics, and DATA_DIR/logs/NAME.state, where its read positions are kept.",
           Store(&LogConfig::name, ReadString)},
          {"format", SettingType::kString, false, "(required)",
           "The format of its lines: qmail (s/qmail's qmail-smtpd, qmail-popup, tcpserver, "
           "rblsmtpd and qmail-send, with any timestamp prefix; docs/integrations/qmail.md), or "
           "stalwart (the text log of Stalwart's log and console tracers; "
           "docs/integrations/stalwart.md).",
           Store(&LogConfig::format, ReadString)},
          {"files", SettingType::kStringList, false, "(required)",
           "The live files to follow: paths or glob patterns (a pattern is looked at again "
           "every poll, so files that appear later are read too). Each is followed through "
           "rotation: multilog's current -> @....s, logrotate's name.1, name.2.gz, "
           "name-DATE.zst, and copytruncate.",
           Store(&LogConfig::files, ReadPaths)},
          {"start", SettingType::kString, false, "\"end\"",
           "Where a file without a saved position begins: end (only lines written from now on) "
           "or start (the whole file). A saved position always wins, so a restart neither "
           "loses nor repeats a line.",
           Store(&LogConfig::start, ReadString)},
          {"time_zone", SettingType::kString, false, "(the system's)",
           "The zone of local times without one (tai64nlocal, s6-log T, syslog dates): a "
           "zoneinfo name such as Europe/Berlin, UTC, or an offset such as +01:00.",
           Store(&LogConfig::time_zone, ReadString)},
          {"poll_interval", SettingType::kDuration, false, "250 msecs",
           "How often the files are looked at for new lines and rotation. A bare number "
           "counts milliseconds.",
           Store(&LogConfig::poll_interval, ReadMillis)},
          {"checkpoint_interval", SettingType::kDuration, false, "1 sec",
           "How often the read positions, with the sessions and queued messages in flight, "
           "are written to DATA_DIR/logs/NAME.state, once the records of the lines before "
           "them are in the records store. A bare number counts milliseconds.",
           Store(&LogConfig::checkpoint_interval, ReadMillis)},
          {"max_line_size", SettingType::kSize, false, "1M",
           "Longest line taken; a longer one is cut there, counted, and the rest skipped.",
           Store(&LogConfig::max_line_size, ReadSize)},
          {"queue_size", SettingType::kSize, false, "4M",
           "Bytes read ahead of the loop. When the loop is behind, reading waits: nothing is "
           "dropped.",
           Store(&LogConfig::queue_size, ReadSize)},
          {"shipped_metrics", SettingType::kBool, false, "true",
           "Count the log's events with the metrics mailscope ships for its format "
           "(src/catalog/data/metrics.FORMAT.toml). A [metrics.NAME] of the same name replaces "
           "one of them.",
           Store(&LogConfig::shipped_metrics, ReadBool)},
      }});
  schema.Add(BlockKind<Config, ExporterConfig>{
      .path = "exporters",
      .shape = BlockShape::kNamedTables,
      .open = [](Config& c, const BlockStart& start) -> ExporterConfig& {
        ExporterConfig& e = c.exporters.emplace_back();
        e.text.name = std::string(start.name);
        e.where = start.where;
        return e;
      },
      .keys = ExporterKeys(),
      .noun = "exporter"});
  return schema;
}

template <typename Block>
const Key<Block>* FindKey(const std::vector<Key<Block>>& keys, std::string_view name) {
  for (const Key<Block>& k : keys)
    if (k.name == name) return &k;
  return nullptr;
}

// Sets a dovecot.conf setting through the block kind's own key, so TOML and
// dovecot.conf share one key table. False when the kind has no such key.
template <typename Block>
bool SetDovecot(const std::vector<Key<Block>>& keys, Block& block, const DovecotConfSetting& s,
                std::vector<std::string>& errors) {
  const Key<Block>* key = FindKey(keys, s.key);
  if (key == nullptr) return false;
  ConfigValue v(s.value, s.key, s.where, &errors);
  if (Status st = key->set(block, v); !st.ok()) v.Report(st.message());
  return true;
}

// The metric { } and event_exporter { } blocks of a dovecot.conf, with
// Dovecot's setting names and its "Unknown setting" error.
void AddDovecotBlocks(const DovecotConf& conf, Config& config, std::vector<std::string>& errors) {
  for (const DovecotConfSection& section : conf.sections) {
    if (section.type == "metric") {
      MetricConfig m;
      m.settings.name = section.name;
      m.settings.dialect = filter::Dialect::kDovecot;
      m.where = section.where;
      for (const DovecotConfSetting& s : section.settings) {
        if (SetDovecot(MetricKeys(), m, s, errors)) continue;
        if (s.key == "metric_name") {
          m.settings.name = s.value;
        } else {
          errors.push_back(fmt::format("{}: Unknown setting: {}", s.where, s.key));
        }
      }
      config.metrics.push_back(std::move(m));
      continue;
    }
    ExporterConfig e;
    e.text.name = section.name;
    e.where = section.where;
    for (const DovecotConfSetting& s : section.settings) {
      if (SetDovecot(ExporterKeys(), e, s, errors)) continue;
      if (s.key == "name") {
        e.text.name = s.value;
      } else {
        errors.push_back(fmt::format("{}: Unknown setting: {}", s.where, s.key));
      }
    }
    config.exporters.push_back(std::move(e));
  }
}

// Every metric valid as Dovecot checks it, names unique, exporters named by
// metrics defined, exporter settings valid.
void CheckStalwart(const StalwartConfig& s, std::vector<std::string>& errors) {
  auto problem = [&](std::string_view what) {
    errors.push_back(fmt::format("{}: sources.stalwart: {}", s.where, what));
  };
  // simdjson parses documents below 4 GiB.
  if (s.max_body_size > kStalwartMaxBodySize) {
    problem(fmt::format("`max_body_size` is at most {} bytes (4G less 64)", kStalwartMaxBodySize));
  }
  if (s.dedup_window > std::chrono::hours(24)) {
    problem("`dedup_window` is at most a day (Stalwart re-sends for its discard-after, 5m)");
  }
  if (s.dedup_memory > kStalwartMaxDedupMemory) {
    problem("`dedup_memory` is at most 16G");
  }
  if (s.username.empty() != s.secret.empty()) {
    problem("`username` and `secret` go together");
  }
  if (s.listen.empty()) {
    if (!s.tls_certificate.empty() || !s.tls_key.empty()) {
      problem("`tls_certificate` and `tls_key` are for `listen`, which is not set");
    }
    return;
  }
  if (s.tls_certificate.empty() || s.tls_key.empty()) {
    problem("`listen` serves HTTPS only: set `tls_certificate` and `tls_key`");
  }
  if (s.signature_key.empty() && s.username.empty() && s.token.empty()) {
    problem("`listen` is reachable from other hosts: set `signature_key`, `username` or `token`");
  }
}

void CheckStats(Config& config, std::vector<std::string>& errors) {
  std::set<std::string, std::less<>> exporters;
  for (ExporterConfig& e : config.exporters) {
    const std::string& name = e.text.name;
    if (!exporters.insert(name).second) {
      errors.push_back(fmt::format("{}: event_exporter '{}' is defined twice", e.where, name));
    }
    auto parsed = exporter::ParseExporterSettings(e.text);
    if (!parsed.ok()) {
      errors.push_back(
          fmt::format("{}: event_exporter {}: {}", e.where, name, parsed.status().message()));
      continue;
    }
    e.parsed = std::move(*parsed);
  }
  std::set<std::string, std::less<>> rule_names;
  for (RuleConfig& r : config.rules) {
    auto rule = rules::MakeRule(r.settings);
    if (!rule.ok()) {
      errors.push_back(fmt::format("{}: rule{}{}: {}", r.where, r.settings.name.empty() ? "" : " ",
                                   r.settings.name, rule.status().message()));
      continue;
    }
    if (!rule_names.insert(r.settings.name).second) {
      errors.push_back(fmt::format("{}: rule '{}' is defined twice", r.where, r.settings.name));
      continue;
    }
    r.rule = std::move(*rule);
  }
  std::set<std::string, std::less<>> log_names;
  for (const LogConfig& l : config.logs) {
    auto bad = [&](std::string_view problem) {
      errors.push_back(
          fmt::format("{}: logs{}{}: {}", l.where, l.name.empty() ? "" : " ", l.name, problem));
    };
    if (l.name.empty()) bad("name is required");
    if (l.name.find('/') != std::string::npos || l.name.starts_with('.')) {
      bad("name must not contain '/' nor begin with '.'");
    }
    if (!l.name.empty() && !log_names.insert(l.name).second) bad("defined twice");
    if (l.format != "qmail" && l.format != "stalwart")
      bad(fmt::format("unknown format '{}'; the formats are qmail and stalwart", l.format));
    if (l.files.empty()) bad("files is required");
    if (l.start != "end" && l.start != "start") bad("start must be end or start");
    if (!l.time_zone.empty()) {
      if (auto z = TimeZone::Load(l.time_zone); !z.ok()) bad(z.status().message());
    }
    if (l.poll_interval.count() <= 0 || l.checkpoint_interval.count() <= 0) {
      bad("poll_interval and checkpoint_interval must be positive");
    }
  }
  std::set<std::string, std::less<>> names;
  for (MetricConfig& m : config.metrics) {
    if (!names.insert(m.settings.name).second) {
      errors.push_back(fmt::format("{}: metric '{}' is defined twice", m.where, m.settings.name));
      continue;
    }
    auto def = stats::MakeMetric(m.settings);
    if (!def.ok()) {
      errors.push_back(
          fmt::format("{}: metric {}: {}", m.where, m.settings.name, def.status().message()));
      continue;
    }
    if (!m.settings.exporter.empty() && !exporters.contains(m.settings.exporter)) {
      errors.push_back(fmt::format("{}: metric {} refers to non-existent exporter '{}'", m.where,
                                   m.settings.name, m.settings.exporter));
    }
    m.definition = std::move(*def);
  }
}

// Adds the [metrics.NAME] tables of a catalog data file (the metrics mailscope
// ships for a source) to `config`, but for names the configuration defines.
void AddShippedMetrics(std::string_view file, Config& config, std::vector<std::string>& errors) {
  const std::string_view* text = nullptr;
  for (const auto& [name, content] : catalog::EmbeddedDataFiles()) {
    if (name == file) text = &content;
  }
  MS_CHECK(text != nullptr);  // compiled in with the catalog
  Config shipped;
  std::vector<std::string> problems = Schema().Parse(*text, file, shipped);
  errors.insert(errors.end(), problems.begin(), problems.end());
  for (MetricConfig& m : shipped.metrics) {
    const bool mine =
        std::any_of(config.metrics.begin(), config.metrics.end(),
                    [&](const MetricConfig& c) { return c.settings.name == m.settings.name; });
    if (!mine) config.metrics.push_back(std::move(m));
  }
}

}  // namespace

const ConfigSchema<Config>& Schema() {
  static const ConfigSchema<Config> schema = MakeSchema();
  return schema;
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = Schema().Settings();
  return settings;
}

Result<Config> ParseConfig(std::string_view toml_text, std::string_view name) {
  Config config;
  std::vector<std::string> errors = Schema().Parse(toml_text, name, config);
  if (errors.empty()) {
    for (const std::string& path : config.stats_dovecot_config) {
      std::filesystem::path p(path);
      if (p.is_relative()) p = std::filesystem::path(name).parent_path() / p;
      auto conf = LoadDovecotConf(p.string());
      if (!conf.ok()) {
        errors.push_back(conf.status().message());
        continue;
      }
      AddDovecotBlocks(*conf, config, errors);
    }
    if (config.exim_shipped_metrics) AddShippedMetrics("metrics.exim.toml", config, errors);
    if (config.stalwart.shipped_metrics) {
      AddShippedMetrics("metrics.stalwart.toml", config, errors);
    }
    CheckStalwart(config.stalwart, errors);
    // TLS files, like dovecot.conf files, are found from the configuration's directory.
    for (std::string* file : {&config.stalwart.tls_certificate, &config.stalwart.tls_key}) {
      std::filesystem::path p(*file);
      if (!file->empty() && p.is_relative()) {
        *file = (std::filesystem::path(name).parent_path() / p).string();
      }
    }
    for (const LogConfig& l : config.logs) {
      // Once per format; an unknown format is reported by CheckStats.
      const bool first = std::find_if(config.logs.begin(), config.logs.end(),
                                      [&](const LogConfig& o) { return o.format == l.format; }) ==
                         config.logs.begin() + (&l - config.logs.data());
      const bool known = l.format == "qmail" || l.format == "stalwart";
      if (l.shipped_metrics && known && first) {
        AddShippedMetrics(fmt::format("metrics.{}.toml", l.format), config, errors);
      }
    }
    CheckStats(config, errors);
  }
  if (config.old_stats_carbon_name.find('.') != std::string::npos) {
    errors.push_back(fmt::format("{}: old_stats.carbon_name: must not contain dots", name));
  }
  if (!errors.empty()) return InvalidArgument(fmt::format("{}", fmt::join(errors, "\n")));
  return config;
}

Status AddShippedLogMetrics(std::string_view format, Config& config) {
  std::vector<std::string> errors;
  AddShippedMetrics(fmt::format("metrics.{}.toml", format), config, errors);
  if (errors.empty()) CheckStats(config, errors);
  if (!errors.empty()) return InvalidArgument(fmt::format("{}", fmt::join(errors, "\n")));
  return Status::Ok();
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

ListenerConfig* ListenerSettings::Find(std::string_view name) {
  if (name == "old_stats_mail") return &old_stats_mail;
  if (name == "old_stats_user") return &old_stats_user;
  if (name == "old_stats") return &old_stats;
  if (name == "stats_writer") return &stats_writer;
  if (name == "stats_reader") return &stats_reader;
  if (name == "tail") return &tail;
  if (name == "exim_events") return &exim_events;
  if (name == "http") return &http;
  return nullptr;
}

const ListenerConfig* ListenerSettings::Find(std::string_view name) const {
  return const_cast<ListenerSettings*>(this)->Find(name);
}

std::string FallbackRunDir() { return fmt::format("/tmp/mailscope-{}", geteuid()); }
std::string FallbackDataDir() { return fmt::format("/tmp/mailscope-data-{}", geteuid()); }

std::string DefaultRunDir() {
  if (const char* e = std::getenv("MAILSCOPE_RUN_DIR"); e && *e) return e;
  if (geteuid() == 0) return "/run/mailscope";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/mailscope";
  return FallbackRunDir();
}

std::string DefaultDataDir() {
  if (const char* e = std::getenv("MAILSCOPE_DATA_DIR"); e && *e) return e;
  if (geteuid() == 0) return "/var/lib/mailscope";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/mailscope";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.local/state/mailscope";
  return FallbackDataDir();
}

std::string ConfigReferenceMarkdown() {
  std::string out = fmt::format(
      "# mailscope configuration\n\n"
      "`mailscope serve --config FILE` reads a TOML file. Every setting is optional; the\n"
      "defaults below are built in. `mailscope check-config --config FILE` validates a file\n"
      "and prints errors as `file:line: key: problem`; `serve` refuses to start on any of them.\n"
      "Settings marked *reload* take effect on SIGHUP; the others need a restart.\n\n"
      "Sizes take the units k, M, G (powers of 1024). Durations take s/secs, min/mins,\n"
      "h/hours, d/days, w/weeks, or a bare number of seconds, as in dovecot.conf.\n\n"
      "The default run directory is `$MAILSCOPE_RUN_DIR`, else `/run/mailscope` for root,\n"
      "else `$XDG_RUNTIME_DIR/mailscope`, else `/tmp/mailscope-<uid>`. The default data\n"
      "directory is `$MAILSCOPE_DATA_DIR`, else `/var/lib/mailscope` for root, else\n"
      "`$XDG_STATE_HOME/mailscope` or `~/.local/state/mailscope`, else\n"
      "`/tmp/mailscope-data-<uid>`. The two `/tmp` fallbacks are created with mode 0700, and\n"
      "`serve` refuses an existing one unless it is a directory (not a symlink) owned by its\n"
      "uid with no group or other permissions: any local user could have made it first.\n\n"
      "Each socket and FIFO of the run directory has its own `[listeners.NAME]` table with\n"
      "`user`, `group` and `mode`. By default they belong to the user and group mailscope runs\n"
      "as, the FIFOs, `stats_writer` and `exim_events` with mode 0660, the other sockets\n"
      "0600: nothing is writable by other users unless configured. docs/integrations/dovecot.md\n"
      "and docs/integrations/exim.md name the settings Dovecot's and Exim's processes need.\n"
      "They replace `old_stats.fifo_*` and\n"
      "`old_stats.socket_*`, which are errors now that name their replacement (the old FIFO\n"
      "default was 0666, and stats-writer took the FIFOs' setting).\n\n"
      "Each socket's table also bounds what its clients can make mailscope hold or wait for:\n"
      "`client_limit`, `buffer_limit`, `output_limit`, `line_timeout` and `write_timeout`\n"
      "(FIFOs have no clients of their own and take none of them). `[listeners.http]` is the\n"
      "HTTP listener of `[serve] http`: it takes `client_limit`, `line_timeout` and\n"
      "`write_timeout`; a request is bounded by its 16 KiB header limit and its route's body\n"
      "limit, and an idle connection holds no read buffer. A connection between lines\n"
      "holds no read buffer: every connection of a socket reads into one 64 KiB buffer when\n"
      "data is there and keeps only the unfinished end of a line. What the limits refuse or\n"
      "close is counted in `mailscope_listener_refused_total` and\n"
      "`mailscope_listener_closed_total{{listener,reason}}` (docs/metrics.md).\n\n"
      "Built-in limits that are not settings: a socket whose accept fails for want of\n"
      "descriptors (EMFILE, ENFILE) or memory pauses accepting 10 ms, doubling up to 1 s\n"
      "while it keeps failing, and serves its open connections meanwhile. A connection is read\n"
      "at most 16 times (1 MiB) in a row before the others get their turn. At start, `serve`\n"
      "raises its soft limit of open files to the hard limit, and warns when the sockets'\n"
      "`client_limit`s together do not fit in it.\n\n"
      "Dovecot 2.3 metrics come from `[metrics.NAME]` tables (the filter may use mailscope's\n"
      "size and duration units), from the `metric {{ }}` blocks of the dovecot.conf files named\n"
      "by `stats.dovecot_config` (Dovecot's own filter language, exactly), and at run time from\n"
      "`doveadm stats add`. Exporters come from `[exporters.NAME]` tables and `event_exporter {{ "
      "}}`\n"
      "blocks. Names are unique across all of them. On SIGHUP, metrics whose definition did not\n"
      "change keep their counts; changed ones start again from zero. Metrics added at run time\n"
      "come after the configured ones and, as in Dovecot, do not survive a restart.\n\n"
      "Each event source keeps its settings in a block of its own. Dovecot's keep the names\n"
      "they have always had: `[old_stats]` (the old stats process) and `[stats]` (2.3\n"
      "statistics). Every other source gets one `[sources.NAME]` table, NAME being the source\n"
      "(a source with several instances, such as several log files, takes an array of tables,\n"
      "`[[sources.NAME]]`); its keys are listed below once the source exists. Unknown tables\n"
      "and keys are errors naming the closest known one.\n\n"
      "Events reach the outputs {}, in that order.\n"
      "`[events]` applies to all of them, `[outputs.NAME]` to one; no other NAME is accepted.\n"
      "Without a level, an output takes {}:\n"
      "old_stats and metrics count every event, as Stalwart's metrics ignore levels and many\n"
      "of its events default to debug.\n\n"
      "| key | default | reload | meaning |\n|---|---|---|---|\n",
      fmt::join(catalog::kOutputNames, ", "), OutputLevelDefaults());
  for (const Setting& s : Settings()) {
    out += fmt::format("| `{}` | {} | {} | {} |\n", s.key, s.default_text,
                       s.reloadable ? "reload" : "restart", s.help);
  }
  out +=
      "\nExample:\n\n```toml\n[serve]\nhttp = \"127.0.0.1:9390\"\n\n[old_stats]\nmemory_limit = "
      "\"64M\"\n"
      "user_min_time = \"2 hours\"\ncarbon_server = \"127.0.0.1:2003\"\ncarbon_name = \"mx1\"\n"
      "\n[listeners.old_stats_mail]\ngroup = \"vmail\"\n\n"
      "[events]\ndisabled = [\"stalwart:acme.*\", \"dovecot:*_started\"]\n"
      "levels = { \"stalwart:auth.failed\" = \"warn\" }\n\n"
      "[outputs.metrics]\ndisabled = [\"stalwart:store.*\"]\n\n[outputs.tail]\nlevel = \"warn\"\n"
      "disabled = [\"exim:tcp:*\"]\n\n"
      "[metrics.imap_command]\ndescription = \"IMAP commands by name and reply state\"\n"
      "filter = \"event=imap_command_finished\"\nfields = [\"bytes_in\", \"bytes_out\"]\n"
      "group_by = [\"cmd_name\", \"tagged_reply_state\"]\n\n"
      "[metrics.slow_logins]\nfilter = \"event=auth_request_finished AND duration > 500ms\"\n"
      "group_by = \"duration:exponential:5:7:10\"\nexporter = \"slow\"\n\n"
      "[exporters.slow]\nformat = \"json\"\nformat_args = \"time-rfc3339\"\n"
      "transport = \"file\"\ntransport_args = \"/var/log/mailscope/slow-logins.json\"\n```\n";
  return out;
}

std::string ConfigReferenceText() {
  std::string out;
  for (const Setting& s : Settings()) {
    out += fmt::format("{}  (default {}, {})\n    {}\n", s.key, s.default_text,
                       s.reloadable ? "reloadable" : "restart to change", s.help);
  }
  return out;
}

}  // namespace mailscope::serve
