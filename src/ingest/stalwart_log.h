// Decoder for the lines of Stalwart's text log, as its `log` and `console`
// tracers write them (reference stalwart-telemetry.md §3.1), one line at a
// time:
//
//   2025-06-15T10:21:02Z INFO Message delivered (delivery.delivered) queueId = 318470021458,
//       queueName = "remote", to = ["carol@example.com"], elapsed = 812ms, ...
//
//   [TIME SP] LEVEL SP description SP "(" type ")" [SP key " = " value {", " key " = " value}]
//
// The event becomes a mailscope Event as stalwart_fields.h sets out, as the
// webhook's does: the type's v0.16 name, the keys as fields, the LEVEL as
// the event's level. A repeated key keeps its first value; the log prints
// the span's keys before the event's own, so where both have a key the
// span's value is kept (the webhook's JSON keeps the event's). What this
// format adds:
//
//   - ANSI colour codes (a tracer with `ansi = true`) are removed first,
//     wherever they stand.
//   - The timestamp is usually taken off by the log machinery (log_time.h);
//     a line that still begins with one (the machinery cannot see a time
//     wrapped in colour codes) has its time read here into Event::time.
//   - The description is free text. The type is the first group
//     `(subsystem.name)` (lower case, digits and '-' around one '.') that
//     ends the line or is followed by a key list, so parentheses in the
//     description do not end it.
//   - Values: "quoted" (\r \n \t \\ \" \xNN escapes; older releases left a
//     `"` inside unescaped, so a quote ends the string only where a
//     separator follows), numbers, `<n>ms`, RFC 3339 times, `base64:...`,
//     true/false, addresses, `[a, b]`, `(null)`, and nested events
//     `Description (type) { k = v, ... }`; a bare word that is none of
//     these (older releases printed some constants unquoted) is a string.
//     An array element's text is a string's unescaped text, a duration's
//     number, bytes' base64, a nested event's type, nothing for `(null)`,
//     else the element as written.
//   - Nesting (events and arrays) deeper than kStalwartMaxNesting is an
//     error of the line.
//   - `multiline = true` logs are not read: their header line decodes as an
//     event without fields, and each TAB-indented key line after it is an
//     error (reason "multiline").
//
// Errors (a Status with a reason, counted per reason by LogLines): bad_line
// (empty, or only a time), bad_timestamp, bad_level, no_type, bad_key,
// bad_value (a value cut or garbled, a missing separator), too_deep,
// multiline, and client_name_budget / name_table_full when a new event type
// or key finds no room in the decoder's name budget.
//
// Thread-compatible: one decoder per log stream. The event's strings point
// into the line or into the decoder's buffers, valid until the next Decode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/names.h"
#include "core/status.h"
#include "ingest/stalwart_fields.h"

namespace mailscope::ingest {

class StalwartLineDecoder {
 public:
  // New event types and keys are charged to a budget of kMaxNewNames.
  static constexpr std::uint32_t kMaxNewNames = 4096;

  StalwartLineDecoder();

  // Decodes one line (no LF; with or without its leading time) into
  // out.name, out.level, out.fields, and out.time when the line has its
  // time. Fields are cleared first; source is the caller's. Errors as above.
  Status Decode(std::string_view line, Event& out);

  const NameBudget& name_budget() const { return names_.budget(); }

 private:
  enum class Context : std::uint8_t { kTop, kNested, kArray };

  Status DecodeClean(Event& out);
  // The parts of a line, from pos_ on. A value is added to `out` as field
  // `key` when `emit`; a key seen before, or a nested event inside an
  // array, is read without being kept. `depth` counts the events and arrays
  // around the value.
  Status ParseKeys(NameId parent, int depth, Context context, bool emit, Event& out);
  Status ParseValue(NameId key, std::string_view leaf, int depth, Context context, bool emit,
                    Event& out, Value& v);
  Status ParseArray(int depth, Event& out);
  Status ParseElement(int depth, Event& out);
  Status ParseNested(std::size_t open, std::size_t close, NameId key, int depth, bool emit,
                     Event& out, std::string_view& type);
  Status ParseQuoted(Context context, std::string_view& raw, bool& escaped);
  void Unescape(std::string_view raw);
  // The end of a bare value starting at pos_; `open` and `close` are the
  // parentheses of the type group when the value is a nested event, else
  // `open` is npos.
  std::size_t BareEnd(Context context, std::size_t& open, std::size_t& close) const;
  // Whether what stands at `i` ends a value in `context`.
  bool SeparatorAt(std::size_t i, Context context) const;
  // Appends to scratch_, which must not move.
  void Put(std::string_view s);
  Status Bad(const char* reason, std::string_view what) const;

  StalwartNames names_;
  std::string clean_;          // the line without ANSI codes, when it had any
  std::vector<char> scratch_;  // unescaped strings, joined arrays; see Put()
  std::string_view line_;      // the line as given, for error messages
  std::string_view text_;      // the line being parsed (line_ or clean_)
  std::size_t pos_ = 0;
};

// Whether `line` looks like a line of Stalwart's text log: an RFC 3339 time
// in UTC, a level and a `(type)` group (colour codes allowed). For sniffing
// the format of a log from its first line.
bool LooksLikeStalwartLogLine(std::string_view line);

class LogLineFormat;
// The "stalwart" format of LogLines (log_lines.h): StalwartLineDecoder on
// each line; nothing joins lines, so there is no state to save.
std::unique_ptr<LogLineFormat> MakeStalwartLineFormat();

}  // namespace mailscope::ingest
