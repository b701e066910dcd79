// ExporterSettings: Dovecot's event_exporter { } block, validated (reference
// dovecot-protocols.md §3.5, §3.9). A metric with `exporter = <name>` sends
// every event it matches through the exporter: EventFormatter renders it in
// the exporter's format, a transport (src/net/event_transports.h) delivers it.
// Pure: parsing and validation only.
//
// Dovecot 2.3.19 knows the transports drop, log and http-post; file and unix
// are Dovecot 2.4's (event-exporter-transport-file.c), with its semantics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mailscope::exporter {

// `format`: what an exported event looks like.
enum class EventFormat : std::uint8_t { kNone, kJson, kTabText };
// `format_args`: how timestamps and timeval fields are written.
enum class TimeFormat : std::uint8_t { kUnix, kRfc3339 };
// `transport`: where it goes.
enum class ExporterTransport : std::uint8_t { kDrop, kLog, kHttpPost, kFile, kUnix };

std::string_view FormatName(EventFormat format);  // "none", "json", "tab-text"
std::string_view TransportName(ExporterTransport transport);
// The Content-Type Dovecot sends: "application/octet-stream", "application/json", "text/plain".
std::string_view MimeType(EventFormat format);

// The log transport cuts string field values to this many bytes and appends
// "..." (Dovecot's LOG_EXPORTER_LONG_FIELD_TRUNCATE_LEN).
inline constexpr std::size_t kLogMaxFieldBytes = 1000;

// An http:// URL as http-post needs it.
struct HttpUrl {
  std::string host;  // a name, an IPv4 literal or an IPv6 literal without brackets
  std::uint16_t port = 80;
  std::string target;       // path and query, at least "/"
  std::string host_header;  // "host" or "host:port" as written, brackets kept
};

// Parses "http://host[:port][/path][?query]" (a #fragment is dropped).
// kInvalidArgument for anything else; an https:// URL gets "https is not
// supported ...", since mailscope's http-post speaks plain HTTP only.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// A Dovecot time interval in milliseconds (settings-parser.c): a number, then
// optional spaces and a unit that is a case-insensitive prefix of msecs,
// mseconds, millisecs, milliseconds, secs, seconds, mins, minutes, hours,
// days or weeks ("250ms", "2 secs", "1m"). A bare number is milliseconds,
// the unit of transport_timeout. kInvalidArgument "Invalid time interval:
// <text>" or "Time interval is too large: <text>" (past 2^32-1 ms).
Result<std::chrono::milliseconds> ParseDovecotMillis(std::string_view text);

// The event_exporter { } settings as Dovecot text (dovecot.conf).
struct ExporterSettingsText {
  std::string name;  // the section name
  std::string format;
  std::string format_args;
  std::string transport;
  std::string transport_args;
  std::string transport_timeout;  // empty: Dovecot's default, 250 ms

  friend bool operator==(const ExporterSettingsText&, const ExporterSettingsText&) = default;
};

// A validated exporter. Immutable once made.
struct ExporterSettings {
  std::string name;
  EventFormat format = EventFormat::kNone;
  TimeFormat time_format = TimeFormat::kUnix;  // for kNone: unused
  ExporterTransport transport = ExporterTransport::kDrop;
  std::string transport_args;  // as configured
  std::chrono::milliseconds transport_timeout{250};
  HttpUrl url;       // http-post only
  std::string path;  // file and unix: transport_args up to the first space
  // String field values are cut to this many bytes; 0: never. kLogMaxFieldBytes
  // for the log transport, as in Dovecot.
  std::size_t max_field_bytes = 0;

  std::string_view mime_type() const { return MimeType(format); }
};

// Validates like Dovecot's stats_exporter_settings_check(), in its order and
// with its texts: "Exporter name can't be empty", "Exporter format name can't
// be empty", "Unknown exporter format '<f>'", "Exporter transport name can't
// be empty", "Unknown transport type '<t>'", "Unknown exporter format arg:
// <a>", "Exporter '<n>' specifies multiple time format args", "<f> exporter
// format requires a time-* argument"; then ours: transport_timeout as
// ParseDovecotMillis, ParseHttpUrl's for http-post, "transport_args must be
// a path for the <t> transport" for file and unix. All kInvalidArgument.
Result<ExporterSettings> ParseExporterSettings(const ExporterSettingsText& text);

// A metric's exporter_include (metric { }): which parts of an event are
// exported. Dovecot's default is all five.
struct ExporterInclude {
  bool name = true;
  bool hostname = true;
  bool timestamps = true;
  bool categories = true;
  bool fields = true;

  static constexpr ExporterInclude None() { return {false, false, false, false, false}; }
  bool none() const { return !name && !hostname && !timestamps && !categories && !fields; }
  friend bool operator==(const ExporterInclude&, const ExporterInclude&) = default;
};

struct ParsedInclude {
  ExporterInclude include = ExporterInclude::None();
  // Words that are none of name hostname timestamps categories fields, in
  // order. Dovecot ignores them with the warning "Ignoring unknown exporter
  // include '<word>'" (e.g. "timestamp").
  std::vector<std::string> unknown;
};
// Words separated by spaces, or already split (MetricDefinition::exporter_include).
ParsedInclude ParseExporterInclude(std::string_view text);
ParsedInclude ParseExporterInclude(std::span<const std::string> words);

// Dovecot's check that a metric's exporter exists: OK when `exporter` is
// empty or names one of `exporters`, else kInvalidArgument "metric <metric>
// refers to non-existent exporter '<exporter>'".
Status CheckMetricExporter(std::string_view metric, std::string_view exporter,
                           std::span<const ExporterSettings> exporters);

}  // namespace mailscope::exporter
