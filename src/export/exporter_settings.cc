#include "export/exporter_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace mailscope::exporter {
namespace {

// Dovecot's t_strsplit_spaces(text, " "): words between spaces, empty ones dropped.
template <typename F>
void ForEachWord(std::string_view text, F&& f) {
  while (!text.empty()) {
    const std::size_t start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) return;
    text.remove_prefix(start);
    const std::size_t end = std::min(text.find(' '), text.size());
    f(text.substr(0, end));
    text.remove_prefix(end);
  }
}

// Whether `p` is a non-empty, case-insensitive prefix of `word`
// (strncasecmp(p, word, strlen(p)) == 0 in settings-parser.c).
bool IsUnitPrefix(std::string_view p, std::string_view word) {
  if (p.empty() || p.size() > word.size()) return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(p[i])) != word[i]) return false;
  }
  return true;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IsUnitPrefix(s.substr(0, prefix.size()), prefix);
}

}  // namespace

std::string_view FormatName(EventFormat format) {
  switch (format) {
    case EventFormat::kNone:
      return "none";
    case EventFormat::kJson:
      return "json";
    case EventFormat::kTabText:
      return "tab-text";
  }
  return "none";
}

std::string_view TransportName(ExporterTransport transport) {
  switch (transport) {
    case ExporterTransport::kDrop:
      return "drop";
    case ExporterTransport::kLog:
      return "log";
    case ExporterTransport::kHttpPost:
      return "http-post";
    case ExporterTransport::kFile:
      return "file";
    case ExporterTransport::kUnix:
      return "unix";
  }
  return "drop";
}

// stats-metrics.c, stats_exporters_add_set().
std::string_view MimeType(EventFormat format) {
  switch (format) {
    case EventFormat::kNone:
      return "application/octet-stream";
    case EventFormat::kJson:
      return "application/json";
    case EventFormat::kTabText:
      return "text/plain";
  }
  return "application/octet-stream";
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  const std::string quoted = fmt::format("'{}'", url);
  if (StartsWithNoCase(url, "https://")) {
    return InvalidArgument("https is not supported (" + quoted +
                           "): the http-post transport speaks plain http:// only");
  }
  if (!StartsWithNoCase(url, "http://")) {
    return InvalidArgument("Invalid URL " + quoted + ": expected http://host[:port]/path");
  }
  std::string_view rest = url.substr(7);
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  const std::size_t slash = std::min(rest.find_first_of("/?"), rest.size());
  const std::string_view authority = rest.substr(0, slash);
  std::string_view target = rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("Invalid URL " + quoted + ": user information is not supported");
  }
  HttpUrl out;
  out.host_header = std::string(authority);
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument("Invalid URL " + quoted + ": unterminated IPv6 literal");
    }
    const std::string_view after = host.substr(close + 1);
    if (!after.empty()) {
      if (after.size() == 1 || after.front() != ':') {
        return InvalidArgument("Invalid URL " + quoted + ": bad port");
      }
      port = after.substr(1);
    }
    host = host.substr(1, close - 1);
  } else if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) return InvalidArgument("Invalid URL " + quoted + ": bad port");
  }
  if (host.empty()) return InvalidArgument("Invalid URL " + quoted + ": missing host");
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '\\' || c == '"') {
      return InvalidArgument("Invalid URL " + quoted + ": bad host");
    }
  }
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return InvalidArgument("Invalid URL " + quoted + ": bad port");
    }
    out.port = static_cast<std::uint16_t>(p);
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) == 0x7f) {
      return InvalidArgument("Invalid URL " + quoted + ": spaces or control characters in path");
    }
  }
  out.host = std::string(host);
  // A query without a path gets the root path before it.
  if (target.empty() || target.front() == '?') out.target.push_back('/');
  out.target.append(target.data(), target.size());
  return out;
}

Result<std::chrono::milliseconds> ParseDovecotMillis(std::string_view text) {
  const std::string invalid = fmt::format("Invalid time interval: {}", text);
  std::uint64_t num = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), num);
  if (ptr == text.data() || ec == std::errc::invalid_argument) return InvalidArgument(invalid);
  if (ec == std::errc::result_out_of_range) {
    return InvalidArgument(fmt::format("Time interval is too large: {}", text));
  }
  std::string_view unit = text.substr(static_cast<std::size_t>(ptr - text.data()));
  unit.remove_prefix(std::min(unit.find_first_not_of(' '), unit.size()));
  std::uint64_t multiply = 1;  // a bare number: milliseconds
  if (!unit.empty()) {
    struct Unit {
      std::string_view word;
      std::uint64_t ms;
    };
    // settings_get_time_full()'s order: minutes win over milliseconds for "m".
    static constexpr Unit kUnits[] = {
        {"secs", 1000},       {"seconds", 1000},    {"mins", 60'000},       {"minutes", 60'000},
        {"msecs", 1},         {"mseconds", 1},      {"millisecs", 1},       {"milliseconds", 1},
        {"hours", 3'600'000}, {"days", 86'400'000}, {"weeks", 604'800'000},
    };
    const auto* it = std::find_if(std::begin(kUnits), std::end(kUnits),
                                  [&](const Unit& u) { return IsUnitPrefix(unit, u.word); });
    if (it == std::end(kUnits)) return InvalidArgument(invalid);
    multiply = it->ms;
  }
  if (num > std::numeric_limits<std::uint32_t>::max() / multiply) {
    return InvalidArgument(fmt::format("Time interval is too large: {}", text));
  }
  return std::chrono::milliseconds(num * multiply);
}

Result<ExporterSettings> ParseExporterSettings(const ExporterSettingsText& text) {
  ExporterSettings out;
  out.name = text.name;
  if (text.name.empty()) return InvalidArgument("Exporter name can't be empty");

  bool time_required = false;
  if (text.format.empty()) {
    return InvalidArgument("Exporter format name can't be empty");
  } else if (text.format == "none") {
    out.format = EventFormat::kNone;
  } else if (text.format == "json") {
    out.format = EventFormat::kJson;
    time_required = true;
  } else if (text.format == "tab-text") {
    out.format = EventFormat::kTabText;
    time_required = true;
  } else {
    return InvalidArgument("Unknown exporter format '" + text.format + "'");
  }

  if (text.transport.empty()) {
    return InvalidArgument("Exporter transport name can't be empty");
  } else if (text.transport == "drop") {
    out.transport = ExporterTransport::kDrop;
  } else if (text.transport == "http-post") {
    out.transport = ExporterTransport::kHttpPost;
  } else if (text.transport == "log") {
    out.transport = ExporterTransport::kLog;
    out.max_field_bytes = kLogMaxFieldBytes;
  } else if (text.transport == "file") {
    out.transport = ExporterTransport::kFile;
  } else if (text.transport == "unix") {
    out.transport = ExporterTransport::kUnix;
  } else {
    return InvalidArgument("Unknown transport type '" + text.transport + "'");
  }

  // parse_format_args(): time-rfc3339 | time-unix; the same one twice is fine.
  bool has_time = false;
  std::string error;
  ForEachWord(text.format_args, [&](std::string_view arg) {
    if (!error.empty()) return;
    TimeFormat f;
    if (arg == "time-rfc3339") {
      f = TimeFormat::kRfc3339;
    } else if (arg == "time-unix") {
      f = TimeFormat::kUnix;
    } else {
      error = fmt::format("Unknown exporter format arg: {}", arg);
      return;
    }
    if (has_time && out.time_format != f) {
      error = "Exporter '" + text.name + "' specifies multiple time format args";
      return;
    }
    has_time = true;
    out.time_format = f;
  });
  if (!error.empty()) return InvalidArgument(error);
  if (time_required && !has_time) {
    return InvalidArgument(text.format + " exporter format requires a time-* argument");
  }

  if (!text.transport_timeout.empty()) {
    auto timeout = ParseDovecotMillis(text.transport_timeout);
    if (!timeout.ok()) return InvalidArgument("transport_timeout: " + timeout.status().message());
    out.transport_timeout = *timeout;
  }
  out.transport_args = text.transport_args;
  if (out.transport == ExporterTransport::kHttpPost) {
    auto url = ParseHttpUrl(text.transport_args);
    if (!url.ok()) return url.status();
    out.url = std::move(*url);
  } else if (out.transport == ExporterTransport::kFile ||
             out.transport == ExporterTransport::kUnix) {
    // event-exporter-transport-file.c: t_strcut(transport_args, ' ').
    out.path = text.transport_args.substr(0, text.transport_args.find(' '));
    if (out.path.empty()) {
      return InvalidArgument("transport_args must be a path for the " + text.transport +
                             " transport");
    }
  }
  return out;
}

ParsedInclude ParseExporterInclude(std::string_view text) {
  std::vector<std::string> words;
  ForEachWord(text, [&](std::string_view w) { words.emplace_back(w); });
  return ParseExporterInclude(words);
}

ParsedInclude ParseExporterInclude(std::span<const std::string> words) {
  ParsedInclude out;
  for (const std::string& w : words) {
    if (w == "name") {
      out.include.name = true;
    } else if (w == "hostname") {
      out.include.hostname = true;
    } else if (w == "timestamps") {
      out.include.timestamps = true;
    } else if (w == "categories") {
      out.include.categories = true;
    } else if (w == "fields") {
      out.include.fields = true;
    } else if (!w.empty()) {
      out.unknown.push_back(w);
    }
  }
  return out;
}

Status CheckMetricExporter(std::string_view metric, std::string_view exporter,
                           std::span<const ExporterSettings> exporters) {
  if (exporter.empty()) return Status::Ok();
  for (const ExporterSettings& e : exporters) {
    if (e.name == exporter) return Status::Ok();
  }
  return InvalidArgument(
      fmt::format("metric {} refers to non-existent exporter '{}'", metric, exporter));
}

}  // namespace mailscope::exporter
