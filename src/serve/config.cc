#include "serve/config.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

// Header-only, without exceptions: errors come back as values, and the
// packaged library (built with exceptions) is not needed.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
// toml++ 3.3 asserts on input it then rejects properly (a table header such
// as "[= 1"): its assertions are turned off so bad configs give errors.
#define TOML_ASSERT(expr) static_assert(true)
#include <toml++/toml.h>

#include "serve/dovecot_conf.h"

namespace mailscope::serve {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "16 M" / "30secs" into number and unit.
bool SplitNumberUnit(std::string_view text, std::uint64_t& number, std::string_view& unit) {
  text = Trim(text);
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || ptr == text.data()) return false;
  unit = Trim(std::string_view(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr)));
  return true;
}

bool MulOk(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

using Setter = std::function<Status(Config&, const toml::node&)>;

struct Entry {
  Setting meta;
  Setter set;
};

Status TypeError(std::string_view what) { return InvalidArgument(std::string(what)); }

std::optional<std::string> AsText(const toml::node& n) {
  if (auto s = n.value<std::string>()) return *s;
  return std::nullopt;
}

Setter StringSetter(std::string Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    auto s = AsText(n);
    if (!s) return TypeError("expected a string");
    c.*member = *s;
    return Status::Ok();
  };
}

Setter AddressSetter(std::string Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    auto s = AsText(n);
    if (!s) return TypeError("expected a string \"ADDR:PORT\"");
    if (!s->empty()) {
      std::size_t colon = s->rfind(':');
      unsigned port = 0;
      std::string_view p =
          colon == std::string::npos ? std::string_view() : std::string_view(*s).substr(colon + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (colon == std::string::npos || p.empty() || ec != std::errc() ||
          ptr != p.data() + p.size() || port > 65535) {
        return TypeError("expected \"ADDR:PORT\", got \"" + *s + "\"");
      }
    }
    c.*member = *s;
    return Status::Ok();
  };
}

Setter SizeSetter(std::uint64_t Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    if (auto i = n.value<std::int64_t>(); i && n.is_integer()) {
      if (*i <= 0) return TypeError("must be positive");
      c.*member = static_cast<std::uint64_t>(*i);
      return Status::Ok();
    }
    auto s = AsText(n);
    auto v = s ? ParseSize(*s) : std::nullopt;
    if (!v || *v == 0) return TypeError("expected a size such as \"16M\"");
    c.*member = *v;
    return Status::Ok();
  };
}

Setter DurationSetter(std::chrono::seconds Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    if (auto i = n.value<std::int64_t>(); i && n.is_integer()) {
      if (*i < 0) return TypeError("must not be negative");
      c.*member = std::chrono::seconds(*i);
      return Status::Ok();
    }
    auto s = AsText(n);
    auto v = s ? ParseDuration(*s) : std::nullopt;
    if (!v) return TypeError("expected a duration such as \"30 secs\" or \"12 hours\"");
    c.*member = *v;
    return Status::Ok();
  };
}

Setter PositiveDurationSetter(std::chrono::seconds Config::*member) {
  Setter inner = DurationSetter(member);
  return [member, inner](Config& c, const toml::node& n) -> Status {
    MS_RETURN_IF_ERROR(inner(c, n));
    if ((c.*member).count() <= 0) return TypeError("must be at least 1 second");
    return Status::Ok();
  };
}

Setter ModeSetter(ListenerPerms Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    std::uint64_t mode = 0;
    if (auto i = n.value<std::int64_t>(); i && n.is_integer()) {
      mode = static_cast<std::uint64_t>(*i);  // write it as 0o666 in TOML
    } else if (auto s = AsText(n)) {
      std::string_view t = *s;
      if (t.starts_with("0o")) t.remove_prefix(2);
      auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), mode, 8);
      if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) {
        return TypeError("expected an octal mode such as \"0666\"");
      }
    } else {
      return TypeError("expected an octal mode such as \"0666\"");
    }
    if (mode > 07777) return TypeError("mode out of range");
    (c.*member).mode = static_cast<mode_t>(mode);
    return Status::Ok();
  };
}

Setter OwnerSetter(ListenerPerms Config::*member, std::string ListenerPerms::*field) {
  return [member, field](Config& c, const toml::node& n) -> Status {
    auto s = AsText(n);
    if (!s) return TypeError("expected a user or group name");
    (c.*member).*field = *s;
    return Status::Ok();
  };
}

Setter LogLevelSetter() {
  return [](Config& c, const toml::node& n) -> Status {
    auto s = AsText(n);
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
    if (s) {
      for (const char* l : kLevels) {
        if (*s == l) {
          c.log_level = *s;
          return Status::Ok();
        }
      }
    }
    return TypeError("expected one of trace, debug, info, warn, error");
  };
}

// A string, or an array of strings joined with spaces (Dovecot's lists).
std::optional<std::string> AsWords(const toml::node& n) {
  if (auto s = AsText(n)) return s;
  const toml::array* arr = n.as_array();
  if (arr == nullptr) return std::nullopt;
  std::string out;
  for (const toml::node& item : *arr) {
    auto s = AsText(item);
    if (!s) return std::nullopt;
    if (!out.empty()) out += ' ';
    out += *s;
  }
  return out;
}

Setter PathListSetter(std::vector<std::string> Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    std::vector<std::string> paths;
    if (auto s = AsText(n)) {
      paths.push_back(*s);
    } else if (const toml::array* arr = n.as_array()) {
      for (const toml::node& item : *arr) {
        auto p = AsText(item);
        if (!p) return TypeError("expected a path or an array of paths");
        paths.push_back(*p);
      }
    } else {
      return TypeError("expected a path or an array of paths");
    }
    c.*member = std::move(paths);
    return Status::Ok();
  };
}

Setter CountSetter(std::uint64_t Config::*member) {
  return [member](Config& c, const toml::node& n) -> Status {
    auto i = n.value<std::int64_t>();
    if (!i || !n.is_integer() || *i <= 0) return TypeError("expected a positive integer");
    c.*member = static_cast<std::uint64_t>(*i);
    return Status::Ok();
  };
}

const std::vector<Entry>& Entries() {
  static const std::vector<Entry> entries = {
      {{"serve.run_dir", SettingType::kString, false, "(see below)",
        "Directory of the FIFOs and sockets (old-stats-mail, old-stats-user, old-stats). "
        "--run-dir overrides it."},
       StringSetter(&Config::run_dir)},
      {{"serve.data_dir", SettingType::kString, false, "(see below)",
        "Directory for persistent data. --data-dir overrides it."},
       StringSetter(&Config::data_dir)},
      {{"serve.http", SettingType::kAddress, false, "127.0.0.1:9390",
        "HTTP listener for /metrics and /healthz, ADDR:PORT. Port 0 picks a free port; "
        "an empty string disables HTTP. --http overrides it."},
       AddressSetter(&Config::http)},
      {{"serve.log_level", SettingType::kLogLevel, true, "info",
        "Least severe level logged to stderr: trace, debug, info, warn or error."},
       LogLevelSetter()},
      {{"old_stats.memory_limit", SettingType::kSize, true, "16M",
        "Memory the old-stats zoom levels may hold (Dovecot: old_stats_memory_limit). Every "
        "byte of every entry and index is counted."},
       SizeSetter(&Config::old_stats_memory_limit)},
      {{"old_stats.command_min_time", SettingType::kDuration, true, "1 min",
        "Minimum time a finished command is kept when memory is tight."},
       DurationSetter(&Config::old_stats_command_min_time)},
      {{"old_stats.session_min_time", SettingType::kDuration, true, "15 mins",
        "Minimum time a disconnected session is kept when memory is tight."},
       DurationSetter(&Config::old_stats_session_min_time)},
      {{"old_stats.user_min_time", SettingType::kDuration, true, "1 hour",
        "Minimum time a user is kept after its last session went."},
       DurationSetter(&Config::old_stats_user_min_time)},
      {{"old_stats.domain_min_time", SettingType::kDuration, true, "12 hours",
        "Minimum time a domain is kept after its last user went."},
       DurationSetter(&Config::old_stats_domain_min_time)},
      {{"old_stats.ip_min_time", SettingType::kDuration, true, "12 hours",
        "Minimum time an IP is kept after its last session went."},
       DurationSetter(&Config::old_stats_ip_min_time)},
      {{"old_stats.carbon_server", SettingType::kAddress, true, "\"\"",
        "Graphite plaintext receiver, IP:PORT. Empty disables the export."},
       AddressSetter(&Config::old_stats_carbon_server)},
      {{"old_stats.carbon_name", SettingType::kString, true, "\"\"",
        "Name in the metric path dovecot.<name>.global.<field>; no dots. Export needs it set."},
       StringSetter(&Config::old_stats_carbon_name)},
      {{"old_stats.carbon_interval", SettingType::kDuration, true, "30 secs",
        "How often the global figures are sent to carbon_server."},
       PositiveDurationSetter(&Config::old_stats_carbon_interval)},
      {{"old_stats.tcp", SettingType::kAddress, false, "\"\"",
        "Optional TCP listener for the EXPORT/RESET protocol, ADDR:PORT (use a loopback "
        "address: the protocol has no authentication)."},
       AddressSetter(&Config::old_stats_tcp)},
      {{"old_stats.fifo_mode", SettingType::kMode, false, "0666",
        "Mode of the old-stats-mail and old-stats-user FIFOs. Mail processes run as the "
        "mail users and must be able to write."},
       ModeSetter(&Config::old_stats_fifo)},
      {{"old_stats.fifo_user", SettingType::kString, false, "\"\"",
        "Owner of the FIFOs (empty: the user mailscope runs as)."},
       OwnerSetter(&Config::old_stats_fifo, &ListenerPerms::user)},
      {{"old_stats.fifo_group", SettingType::kString, false, "\"\"",
        "Group of the FIFOs (empty: unchanged)."},
       OwnerSetter(&Config::old_stats_fifo, &ListenerPerms::group)},
      {{"old_stats.socket_mode", SettingType::kMode, false, "0600",
        "Mode of the old-stats query socket, as Dovecot's default."},
       ModeSetter(&Config::old_stats_socket)},
      {{"old_stats.socket_user", SettingType::kString, false, "\"\"",
        "Owner of the query socket (empty: the user mailscope runs as)."},
       OwnerSetter(&Config::old_stats_socket, &ListenerPerms::user)},
      {{"old_stats.socket_group", SettingType::kString, false, "\"\"",
        "Group of the query socket (empty: unchanged)."},
       OwnerSetter(&Config::old_stats_socket, &ListenerPerms::group)},
      {{"events.disabled", SettingType::kEventList, false, "[]",
        "Catalog events no output takes: \"system:name\" or a bare name for every system; "
        "wildcards `*`, `pre*`, `*suf`. Unknown names are errors."},
       nullptr},
      {{"events.levels", SettingType::kEventLevels, false, "{}",
        "Per-event level overrides, e.g. { \"stalwart:auth.failed\" = \"warn\" }; events "
        "without a default level count as info."},
       nullptr},
      {{"outputs.<name>.level", SettingType::kLogLevel, false, "info",
        "Least severe event level the output (metrics, log, tail) takes."},
       nullptr},
      {{"outputs.<name>.disabled", SettingType::kEventList, false, "[]",
        "Catalog events this output does not take (same patterns as events.disabled)."},
       nullptr},
      {{"stats.dovecot_config", SettingType::kStringList, true, "[]",
        "dovecot.conf files (or snippets of one) whose `metric { }` and `event_exporter { }` "
        "blocks are taken as they are, in Dovecot's filter language; `!include` is followed, "
        "everything else skipped. Relative paths start at this file's directory."},
       PathListSetter(&Config::stats_dovecot_config)},
      {{"stats.max_sub_metrics", SettingType::kCount, true, "1000",
        "Sub-metrics (group_by values, all levels) per metric; new values past it are "
        "counted in mailscope_metric_sub_metrics_dropped_total and not kept."},
       CountSetter(&Config::stats_max_sub_metrics)},
      {{"metrics.<name>.filter", SettingType::kFilter, true, "(required)",
        "Events the metric counts, in the event filter language with mailscope's size and "
        "duration units (docs/filter.md)."},
       nullptr},
      {{"metrics.<name>.fields", SettingType::kStringList, true, "[]",
        "Numeric fields whose count, sum, min, max, avg and quantiles are kept besides "
        "`duration` (array, or one string of space-separated names)."},
       nullptr},
      {{"metrics.<name>.group_by", SettingType::kStringList, true, "[]",
        "Sub-metrics per field value, nested in order: `field`, `field:discrete`, "
        "`field:linear:MIN:MAX:STEP`, `field:exponential:MIN:MAX:BASE` (Dovecot's group_by)."},
       nullptr},
      {{"metrics.<name>.description", SettingType::kString, true, "\"\"",
        "Text of the metric's HELP line on /metrics."},
       nullptr},
      {{"metrics.<name>.exporter", SettingType::kString, true, "\"\"",
        "Name of an exporter that gets every event the metric counts."},
       nullptr},
      {{"metrics.<name>.exporter_include", SettingType::kStringList, true,
        "name hostname timestamps categories fields", "Parts of the event the exporter sends."},
       nullptr},
      {{"exporters.<name>.format", SettingType::kString, true, "(required)",
        "`json`, `tab-text` or `none`, as Dovecot's event_exporter."},
       nullptr},
      {{"exporters.<name>.format_args", SettingType::kString, true, "\"\"",
        "`time-rfc3339` or `time-unix` (required for json and tab-text)."},
       nullptr},
      {{"exporters.<name>.transport", SettingType::kString, true, "(required)",
        "`drop`, `log`, `http-post`, `file` or `unix`."},
       nullptr},
      {{"exporters.<name>.transport_args", SettingType::kString, true, "\"\"",
        "http-post: the http:// URL; file: the path; unix: the socket path."},
       nullptr},
      {{"exporters.<name>.transport_timeout", SettingType::kDuration, true, "250 ms",
        "How long one delivery may take; a bare number counts milliseconds."},
       nullptr},
  };
  return entries;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Closest(std::string_view key) {
  std::string best;
  std::size_t best_d = SIZE_MAX;
  for (const Entry& e : Entries()) {
    std::size_t d = EditDistance(key, e.meta.key);
    if (d < best_d) {
      best_d = d;
      best = e.meta.key;
    }
  }
  return best_d <= std::max<std::size_t>(3, key.size() / 3) ? best : std::string();
}

// Rejects what TOML forbids anyway and what toml++ 3.3 mishandles: control
// characters other than TAB, CR and LF, and non-ASCII bytes anywhere but in
// whole-line comments (toml++ 3.3 classifies a stray non-ASCII character by
// reaching an "unreachable" point). Every setting's value is ASCII anyway.
Status PrecheckToml(std::string_view text, std::string_view name) {
  int line = 1;
  bool line_start = true;  // only whitespace so far on this line
  bool comment_line = false;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      ++line;
      line_start = true;
      comment_line = false;
      continue;
    }
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
      return InvalidArgument(
          fmt::format("{}:{}: control character 0x{:02x} is not allowed", name, line, c));
    }
    if (line_start && c == '#') comment_line = true;
    if (c != ' ' && c != '\t') line_start = false;
    if (c >= 0x80 && !comment_line) {
      return InvalidArgument(fmt::format(
          "{}:{}: non-ASCII character (allowed only in whole-line comments)", name, line));
    }
  }
  return Status::Ok();
}

}  // namespace

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = [] {
    std::vector<Setting> s;
    for (const Entry& e : Entries()) s.push_back(e.meta);
    return s;
  }();
  return settings;
}

std::optional<std::uint64_t> ParseSize(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, n, unit)) return std::nullopt;
  std::uint64_t mul = 1;
  std::string u;
  for (char c : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.empty() || u == "b")
    mul = 1;
  else if (u == "k" || u == "kb" || u == "kib")
    mul = 1ull << 10;
  else if (u == "m" || u == "mb" || u == "mib")
    mul = 1ull << 20;
  else if (u == "g" || u == "gb" || u == "gib")
    mul = 1ull << 30;
  else if (u == "t" || u == "tb" || u == "tib")
    mul = 1ull << 40;
  else
    return std::nullopt;
  std::uint64_t out = 0;
  if (!MulOk(n, mul, out)) return std::nullopt;
  return out;
}

std::optional<std::chrono::seconds> ParseDuration(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, n, unit)) return std::nullopt;
  std::string u;
  for (char c : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t mul = 0;
  if (u.empty() || u == "s" || u == "sec" || u == "secs" || u == "second" || u == "seconds")
    mul = 1;
  else if (u == "m" || u == "min" || u == "mins" || u == "minute" || u == "minutes")
    mul = 60;
  else if (u == "h" || u == "hour" || u == "hours")
    mul = 3600;
  else if (u == "d" || u == "day" || u == "days")
    mul = 86400;
  else if (u == "w" || u == "week" || u == "weeks")
    mul = 7 * 86400;
  else
    return std::nullopt;
  std::uint64_t out = 0;
  if (!MulOk(n, mul, out) || out > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return std::chrono::seconds(static_cast<std::int64_t>(out));
}

// The setting `key` of a metric, or nullptr. `words`: a list, which TOML may
// also give as an array.
std::string* MetricField(stats::MetricSettings& m, std::string_view key, bool& words) {
  words = key == "fields" || key == "group_by" || key == "exporter_include";
  if (key == "filter") return &m.filter;
  if (key == "description") return &m.description;
  if (key == "exporter") return &m.exporter;
  if (key == "fields") return &m.fields;
  if (key == "group_by") return &m.group_by;
  if (key == "exporter_include") return &m.exporter_include;
  return nullptr;
}

// The setting `key` of an event_exporter (its name aside), or nullptr.
std::string* ExporterField(exporter::ExporterSettingsText& e, std::string_view key) {
  if (key == "format") return &e.format;
  if (key == "format_args") return &e.format_args;
  if (key == "transport") return &e.transport;
  if (key == "transport_args") return &e.transport_args;
  if (key == "transport_timeout") return &e.transport_timeout;
  return nullptr;
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
        bool words = false;
        if (std::string* target = MetricField(m.settings, s.key, words)) {
          *target = s.value;
        } else if (s.key == "metric_name") {
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
      if (std::string* target = ExporterField(e.text, s.key)) {
        *target = s.value;
      } else if (s.key == "name") {
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

Result<Config> ParseConfig(std::string_view toml_text, std::string_view name) {
  MS_RETURN_IF_ERROR(PrecheckToml(toml_text, name));
  toml::parse_result parsed = toml::parse(toml_text, name);
  if (!parsed) {
    const auto& err = parsed.error();
    return InvalidArgument(
        fmt::format("{}:{}: {}", name, err.source().begin.line, err.description()));
  }
  const toml::table& root = parsed.table();
  Config config;
  std::vector<std::string> errors;
  auto fail = [&](const toml::node& n, std::string_view key, std::string_view msg) {
    errors.push_back(fmt::format("{}:{}: {}: {}", name, n.source().begin.line, key, msg));
  };
  auto event_list = [&](const toml::node& node, std::string_view key,
                        std::vector<std::string>& out) {
    const toml::array* arr = node.as_array();
    if (arr == nullptr) return fail(node, key, "expected an array of event names");
    for (const toml::node& item : *arr) {
      auto text = item.value<std::string>();
      if (!text) {
        fail(item, key, "expected a string");
        continue;
      }
      Status st = catalog::EventControl::CheckPattern(catalog::Catalog::Get(), *text);
      if (!st.ok()) {
        fail(item, key, st.message());
        continue;
      }
      out.push_back(*text);
    }
  };
  auto level_of = [&](const toml::node& node, std::string_view key) -> std::optional<Level> {
    auto text = node.value<std::string>();
    auto level = text ? catalog::ParseLevel(*text) : std::nullopt;
    if (!level) fail(node, key, "expected one of trace, debug, info, warn, error");
    return level;
  };
  for (const auto& [section_key, section] : root) {
    const toml::table* table = section.as_table();
    if (table != nullptr && section_key.str() == "events") {
      for (const auto& [key, value] : *table) {
        std::string full = fmt::format("events.{}", key.str());
        if (key.str() == "disabled") {
          event_list(value, full, config.events.disabled);
        } else if (key.str() == "levels" && value.is_table()) {
          for (const auto& [event, level_node] : *value.as_table()) {
            std::string k = fmt::format("events.levels.{}", event.str());
            Status st = catalog::EventControl::CheckPattern(catalog::Catalog::Get(), event.str());
            if (!st.ok()) {
              fail(level_node, k, st.message());
              continue;
            }
            if (auto level = level_of(level_node, k))
              config.events.levels.emplace_back(event.str(), *level);
          }
        } else if (key.str() == "levels") {
          fail(value, full, "expected a table of event = level");
        } else {
          fail(value, full, "unknown setting; [events] takes disabled and levels");
        }
      }
      continue;
    }
    if (table != nullptr && section_key.str() == "outputs") {
      for (const auto& [output, rules] : *table) {
        std::string base = fmt::format("outputs.{}", output.str());
        const toml::table* rt = rules.as_table();
        if (rt == nullptr) {
          fail(rules, base, "expected a table such as [outputs.metrics]");
          continue;
        }
        catalog::OutputRules& r = config.events.outputs[std::string(output.str())];
        for (const auto& [key, value] : *rt) {
          std::string full = fmt::format("{}.{}", base, key.str());
          if (key.str() == "level") {
            if (auto level = level_of(value, full)) r.level = *level;
          } else if (key.str() == "disabled") {
            event_list(value, full, r.disabled);
          } else {
            fail(value, full, "unknown setting; an output takes level and disabled");
          }
        }
      }
      continue;
    }
    if (table != nullptr && section_key.str() == "metrics") {
      for (const auto& [metric_name, body] : *table) {
        std::string base = fmt::format("metrics.{}", metric_name.str());
        const toml::table* mt = body.as_table();
        if (mt == nullptr) {
          fail(body, base, "expected a table such as [metrics.imap_command]");
          continue;
        }
        MetricConfig m;
        m.settings.name = std::string(metric_name.str());
        m.settings.dialect = filter::Dialect::kMailscope;
        m.where = fmt::format("{}:{}", name, body.source().begin.line);
        for (const auto& [key, value] : *mt) {
          std::string full = fmt::format("{}.{}", base, key.str());
          bool words = false;
          std::string* target = MetricField(m.settings, key.str(), words);
          if (target == nullptr) {
            fail(value, full,
                 "unknown setting; a metric takes filter, fields, group_by, description, "
                 "exporter and exporter_include");
            continue;
          }
          auto text = words ? AsWords(value) : AsText(value);
          if (!text) {
            fail(value, full,
                 words ? "expected a string or an array of strings" : "expected a string");
            continue;
          }
          *target = *text;
        }
        config.metrics.push_back(std::move(m));
      }
      continue;
    }
    if (table != nullptr && section_key.str() == "exporters") {
      for (const auto& [exporter_name, body] : *table) {
        std::string base = fmt::format("exporters.{}", exporter_name.str());
        const toml::table* et = body.as_table();
        if (et == nullptr) {
          fail(body, base, "expected a table such as [exporters.siem]");
          continue;
        }
        ExporterConfig e;
        e.text.name = std::string(exporter_name.str());
        e.where = fmt::format("{}:{}", name, body.source().begin.line);
        for (const auto& [key, value] : *et) {
          std::string full = fmt::format("{}.{}", base, key.str());
          std::string* target = ExporterField(e.text, key.str());
          if (target == nullptr) {
            fail(value, full,
                 "unknown setting; an exporter takes format, format_args, transport, "
                 "transport_args and transport_timeout");
            continue;
          }
          std::optional<std::string> text = AsText(value);
          if (!text && key.str() == "transport_timeout" && value.is_integer()) {
            text = std::to_string(*value.value<std::int64_t>());
          }
          if (!text) {
            fail(value, full, "expected a string");
            continue;
          }
          *target = *text;
        }
        config.exporters.push_back(std::move(e));
      }
      continue;
    }
    if (table == nullptr) {
      std::string k(section_key.str());
      std::string hint = Closest(k);
      fail(section, k,
           hint.empty() ? "unknown setting (settings live in tables such as [old_stats])"
                        : "unknown setting; did you mean " + hint + "?");
      continue;
    }
    for (const auto& [key, value] : *table) {
      std::string full = fmt::format("{}.{}", section_key.str(), key.str());
      const Entry* entry = nullptr;
      for (const Entry& e : Entries())
        if (full == e.meta.key && e.set) entry = &e;
      if (entry == nullptr) {
        std::string hint = Closest(full);
        fail(value, full,
             hint.empty() ? "unknown setting" : "unknown setting; did you mean " + hint + "?");
        continue;
      }
      Status st = entry->set(config, value);
      if (!st.ok()) fail(value, full, st.message());
    }
  }
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
    CheckStats(config, errors);
  }
  if (!config.old_stats_carbon_name.empty() &&
      config.old_stats_carbon_name.find('.') != std::string::npos) {
    errors.push_back(fmt::format("{}: old_stats.carbon_name: must not contain dots", name));
  }
  if (!errors.empty()) {
    std::string all;
    for (const std::string& e : errors) {
      if (!all.empty()) all += '\n';
      all += e;
    }
    return InvalidArgument(all);
  }
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

std::string DefaultRunDir() {
  if (const char* e = std::getenv("MAILSCOPE_RUN_DIR"); e && *e) return e;
  if (geteuid() == 0) return "/run/mailscope";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/mailscope";
  return fmt::format("/tmp/mailscope-{}", geteuid());
}

std::string DefaultDataDir() {
  if (const char* e = std::getenv("MAILSCOPE_DATA_DIR"); e && *e) return e;
  if (geteuid() == 0) return "/var/lib/mailscope";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/mailscope";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.local/state/mailscope";
  return fmt::format("/tmp/mailscope-data-{}", geteuid());
}

std::string ConfigReferenceMarkdown() {
  std::string out =
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
      "`$XDG_STATE_HOME/mailscope` or `~/.local/state/mailscope`.\n\n"
      "Dovecot 2.3 metrics come from `[metrics.NAME]` tables (the filter may use mailscope's\n"
      "size and duration units), from the `metric { }` blocks of the dovecot.conf files named\n"
      "by `stats.dovecot_config` (Dovecot's own filter language, exactly), and at run time from\n"
      "`doveadm stats add`. Exporters come from `[exporters.NAME]` tables and `event_exporter { "
      "}`\n"
      "blocks. Names are unique across all of them. On SIGHUP, metrics whose definition did not\n"
      "change keep their counts; changed ones start again from zero. Metrics added at run time\n"
      "come after the configured ones and, as in Dovecot, do not survive a restart.\n\n"
      "| key | default | reload | meaning |\n|---|---|---|---|\n";
  for (const Setting& s : Settings()) {
    out += fmt::format("| `{}` | {} | {} | {} |\n", s.key, s.default_text,
                       s.reloadable ? "reload" : "restart", s.help);
  }
  out +=
      "\nExample:\n\n```toml\n[serve]\nhttp = \"127.0.0.1:9390\"\n\n[old_stats]\nmemory_limit = "
      "\"64M\"\n"
      "user_min_time = \"2 hours\"\ncarbon_server = \"127.0.0.1:2003\"\ncarbon_name = \"mx1\"\n"
      "fifo_mode = \"0660\"\nfifo_group = \"vmail\"\n\n"
      "[events]\ndisabled = [\"stalwart:acme.*\", \"dovecot:*_started\"]\n"
      "levels = { \"stalwart:auth.failed\" = \"warn\" }\n\n"
      "[outputs.metrics]\nlevel = \"debug\"\n\n[outputs.log]\nlevel = \"warn\"\n"
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
