// Decoder for the bodies Dovecot's event exporters send with the http-post
// transport (reference dovecot-protocols.md §3.9): one POST per event,
// Content-Type application/json (format json) or text/plain (format
// tab-text). mailscope takes them on POST /dovecot/events and turns each into
// one Event, source dovecot:
//   name        "event" / event:, interned. A body without it is rejected
//               (missing_event): an unnamed event matches no metric.
//   time        start_time, either time format. Without timestamps: the
//               `received` time given to Decode().
//   level       kDebug: the body does not say; Dovecot's named stats events
//               are debug events.
//   categories  in the body's order, interned.
//   fields      in the body's order. JSON: integers -> kInt (kUint past
//               INT64_MAX), <sec>.<6 digits> -> kTimeval (a timeval field in
//               time-unix), other numbers -> kDouble, strings -> kString,
//               true/false -> kBool, arrays of strings -> kString with the
//               elements joined by TAB (as dovecot_stats_writer.h keeps
//               string lists), null -> no field. tab-text: a canonical
//               decimal integer -> kInt (kUint past INT64_MAX), anything else
//               -> kString, unescaped once (so a string list arrives
//               TAB-joined). A repeated key keeps its first place and takes
//               the last value.
//   hostname, end_time  not fields; see hostname() and end_time().
// Total and lenient: any bytes give an event or a rejection with a reason;
// unknown top-level JSON keys and unknown tab-text items are ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "core/names.h"
#include "core/status.h"

namespace mailscope::ingest {

// The body formats, by the Content-Type Dovecot sends with each.
enum class EventExportFormat : std::uint8_t {
  kJson,     // application/json
  kTabText,  // text/plain
  kNone,     // application/octet-stream: format = none, an empty body
};

// The format of a Content-Type header value (type and subtype compared
// without case, parameters such as "; charset=utf-8" ignored), or
// Rejected("unsupported_content_type").
Result<EventExportFormat> EventExportFormatFromContentType(std::string_view content_type);

struct EventExportOptions {
  // Longer bodies are rejected (body_too_large) before parsing. Dovecot's
  // events are a few KiB; IMAP command arguments make the long ones.
  std::size_t max_body_bytes = 1024 * 1024;
  // Longer event names, category names and field keys: name_too_long. They
  // are interned for the life of the process, so they are kept short.
  std::size_t max_name_bytes = 256;
  // Names new to mailscope's name table this decoder may add (NameBudget).
  // Past it a new event or category name is rejected (client_name_budget)
  // and a new field key is left out of its event, as when the table is full.
  // The budget is the decoder's, not a connection's: POSTs carry no lasting
  // client identity (Dovecot's HTTP client opens and closes connections as it
  // likes), so every body the decoder takes shares it.
  std::uint32_t max_new_names = kDefaultMaxNewNamesPerClient;
};

// Which of the exporter's exporter_include parts the last body carried.
struct EventExportParts {
  bool name = false;
  bool hostname = false;
  bool timestamps = false;
  bool categories = false;
  bool fields = false;
};

// Thread-compatible: one decoder per loop thread (or per connection). Owns
// a copy of the body and every string of the event it decodes; reuses its
// buffers, so the steady state allocates nothing.
class DovecotEventExportDecoder {
 public:
  explicit DovecotEventExportDecoder(EventExportOptions options = {});
  ~DovecotEventExportDecoder();
  DovecotEventExportDecoder(const DovecotEventExportDecoder&) = delete;
  DovecotEventExportDecoder& operator=(const DovecotEventExportDecoder&) = delete;

  // Decodes one POST body. OK: event() holds it until the next Decode().
  // Rejections (kInvalidArgument unless noted), by reason:
  //   unsupported_content_type  (the Content-Type overload)
  //   no_payload                format none: the body carries no event
  //   body_too_large            (kResourceExhausted)
  //   bad_json                  not one JSON object, or not valid JSON
  //   bad_categories            "categories" is not an array of strings
  //   bad_fields                "fields" is not an object
  //   bad_field_value           a value that is none of the types above
  //   bad_time                  start_time or end_time unreadable
  //   bad_item                  a tab-text field: item without '='
  //   missing_event             no event name
  //   name_too_long             (kResourceExhausted)
  //   client_name_budget        a new event or category name past
  //                             Options::max_new_names (kResourceExhausted)
  //   name_table_full           the same past the table's budget (kResourceExhausted)
  //   too_many_fields           more than FieldList::kCapacity (kResourceExhausted)
  //   too_many_categories       more than CategoryList::kCapacity (kResourceExhausted)
  Status Decode(EventExportFormat format, std::string_view body, TimePoint received);
  Status Decode(std::string_view content_type, std::string_view body, TimePoint received);

  // REQUIRES: the last Decode() returned OK.
  const Event& event() const { return event_; }
  Event& mutable_event() { return event_; }  // for the dispatcher's annotations
  // The body's hostname; empty when it had none. Valid like event().
  std::string_view hostname() const { return hostname_; }
  // The body's end_time (Dovecot's time of export), if it had one.
  std::optional<TimePoint> end_time() const { return end_time_; }
  const EventExportParts& parts() const { return parts_; }
  // The names this decoder added to the table, and those refused to it.
  const NameBudget& names() const { return names_; }

 private:
  struct Json;  // simdjson state
  Status DecodeJson(TimePoint received);
  Status DecodeTabText(TimePoint received);
  Status AddField(std::string_view key, Value value);
  Status AddCategory(std::string_view name);
  Status SetName(std::string_view name);
  // kResourceExhausted for a new name TryInternName() refused.
  Status NameRefused(std::string_view what) const;

  EventExportOptions options_;
  NameBudget names_;
  std::unique_ptr<Json> json_;
  std::vector<char> body_;     // the body, padded for simdjson; tab-text unescapes in place
  std::vector<char> text_;     // joined string lists; reserved so views stay valid
  std::vector<Field> fields_;  // the fields while decoding, then copied into event_
  Event event_;
  std::string_view hostname_;
  std::optional<TimePoint> end_time_;
  EventExportParts parts_;
};

// A Dovecot exporter time: "<sec>.<usec>" (time-unix; up to 6 fraction
// digits, none allowed) or "YYYY-MM-DDTHH:MM:SS[.frac]Z" (time-rfc3339).
std::optional<TimePoint> ParseExportTime(std::string_view text);

}  // namespace mailscope::ingest
