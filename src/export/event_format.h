// EventFormatter: Dovecot 2.3.19's event exporter formats (reference
// dovecot-protocols.md §3.9; src/stats/event-exporter-fmt-*.c). The metrics
// engine calls its ExportSink for each event a metric with an exporter
// matches; the sink renders the event here and hands the bytes to the
// exporter's transport. Pure: no I/O, no clock (the export time is passed in).
//
// What is rendered, in Dovecot's order and bytes:
//  - the event is flattened first: the global event's chain (root first),
//    then the event's parent chain (root first), then the event itself.
//    A field seen again takes the later value but keeps its first position;
//    record values (Value::kRecord) contribute their columns as fields.
//  - json:  {"event":<name>,"hostname":<h>,"start_time":<T>,"end_time":<T>,
//           "categories":[...],"fields":{...}} with the parts the metric's
//           exporter_include asks for ({} when none); no trailing newline.
//  - tab-text: event:<name> hostname:<h> start_time:<T> end_time:<T>
//           category:<c>... field:<key>=<value>... joined by TAB, each item
//           tab-escaped. Dovecot's quirk is kept: with categories included but
//           none present, an empty item (two TABs) stands in their place.
//  - none:  nothing.
//  - start_time is the event's time, end_time the `now` passed in (Dovecot:
//    the stats process's time of export). <T> is <sec>.<usec, 6 digits> for
//    time-unix, "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (UTC) for time-rfc3339, quoted
//    in JSON; timeval fields likewise.
//  - categories: each category of the flattened event once, in the order of
//    first appearance along the flattening. Dovecot prints them in the order
//    of a pointer hash table, which changes between runs (both
//    ["service:auth","auth"] and ["auth","service:auth"] are in the
//    captures); first appearance is stable and matches the common case
//    (service:imap before imap). Decoders put each category's ancestors in
//    the event's CategoryList, so they are exported too.
//  - fields: all fields of the flattened event, or, when the metric has
//    `fields`, just those in the metric's order, missing ones skipped.
//    kInt, kUint: decimal. kDouble: shortest round-trip decimal (JSON: null
//    when not finite). kBool: true/false. kString: JSON string (invalid UTF-8
//    bytes become U+FFFD, U+2028/2029 escaped, as json_append_escaped) or
//    tab-escaped text. kTimeval: a time as above.
//  - string lists: Value has no list type; decoders join list elements with
//    TAB (dovecot_stats_writer.h). Fields whose key is in the formatter's
//    list keys (Dovecot 2.3.19's only list field, reason_code, by default)
//    are split on TAB and written as a JSON array, or in tab-text as the
//    tab-escaped elements joined by TAB and escaped again, as Dovecot does.
//  - FormatSpec::max_field_bytes (the log transport's 1000) cuts each string
//    value, or each JSON list element, to that many bytes plus "...".
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "export/exporter_settings.h"

namespace mailscope::exporter {

// How one metric exports: its exporter's format and its own include/fields.
// The views must outlive the Format() call.
struct FormatSpec {
  EventFormat format = EventFormat::kJson;
  TimeFormat time_format = TimeFormat::kUnix;
  ExporterInclude include;
  // The metric's `fields`; empty exports all fields.
  std::span<const std::string> fields;
  // The exported "hostname" (Dovecot: my_hostname, what gethostname() gives).
  std::string_view hostname;
  // 0: values are never cut (see ExporterSettings::max_field_bytes).
  std::size_t max_field_bytes = 0;
};

// The FormatSpec of a metric exported through `exporter`.
FormatSpec MakeFormatSpec(const ExporterSettings& exporter, const ExporterInclude& include,
                          std::span<const std::string> metric_fields, std::string_view hostname);

// Thread-compatible: one per loop thread. Keeps scratch space between calls,
// so formatting allocates nothing once it has seen events of a given size.
class EventFormatter {
 public:
  // Dovecot 2.3.19's string-list fields.
  static constexpr std::string_view kDefaultListKeys[] = {"reason_code"};

  EventFormatter();
  // `list_keys`: fields exported as string lists (see above).
  explicit EventFormatter(std::span<const std::string_view> list_keys);

  // Replaces `out` with the event rendered as `spec` says; `now` is the
  // export time (end_time). Event chains are followed for at most
  // Event::kMaxChain events each.
  void Format(const Event& event, const FormatSpec& spec, TimePoint now, std::string& out);

 private:
  struct Entry {
    std::string_view key;
    Value value;
  };
  void Flatten(const Event& event);
  void AddFields(const Event& e);
  const Entry* FindFlat(std::string_view key) const;
  bool IsListKey(std::string_view key) const;
  void FormatJson(const Event& event, const FormatSpec& spec, TimePoint now, std::string& out);
  void FormatTabText(const Event& event, const FormatSpec& spec, TimePoint now, std::string& out);
  void AppendJsonValue(std::string& out, const Entry& e, const FormatSpec& spec);
  void AppendTabValue(std::string& out, const Entry& e, const FormatSpec& spec);

  std::vector<std::string> list_keys_;
  std::vector<const Event*> chain_;  // scratch: events in flattening order
  std::vector<Entry> flat_;          // scratch: the flattened fields
  std::vector<NameId> categories_;   // scratch: the flattened categories
  std::string scratch_;              // scratch: a tab-text list before its second escaping
};

// Appends a time as Dovecot's exporters write it: "<sec>.<usec:06>" or
// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (no quotes). The usec part is printed as given.
void AppendExportTime(std::string& out, Timeval tv, TimeFormat format);
Timeval ToTimeval(TimePoint t);

}  // namespace mailscope::exporter
