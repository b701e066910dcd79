// Decoder for the bodies Stalwart's webhooks POST (reference
// stalwart-telemetry.md §2): one JSON object per request,
//
//   {"events": [{"id": "...", "createdAt": "2025-06-15T10:20:53Z",
//                "type": "smtp.mail-from", "data": {...}}, ...]}
//
// in both naming eras (v0.12-v0.16). Each element becomes one Event of
// source stalwart, its fields as stalwart_fields.h lays down; the payload
// carries no level, so the dispatcher gives each event its catalog level
// with the configured overrides. `id` is opaque and no field: it only tells
// re-sent events apart (dedup_key()).
//
// A body is taken whole or not at all: Parse() reads and checks every event
// before any is handed out, so a malformed body changes no count. Within a
// well-formed body, values of another JSON type than Stalwart would send are
// kept as they came (a string `size` stays a string), unknown top-level and
// event members are ignored.
//
// The body is parsed in place (simdjson DOM) when the caller's buffer has
// simdjson's padding after it, else from a copy. No allocation per event:
// the event, its joined arrays and the names are reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "core/status.h"
#include "ingest/stalwart_fields.h"

namespace mailscope::ingest {

// Bytes a body buffer needs readable past its end to be parsed in place.
std::size_t StalwartWebhookPadding();

struct StalwartWebhookOptions {
  // Names new to mailscope's table (unknown event types, keys) the decoder
  // may add over its life: one budget for the route, as POSTs carry no
  // lasting client identity.
  std::uint32_t max_new_names = kDefaultMaxNewNamesPerClient;
  // After a body larger than this, the parser's buffers (several times the
  // body), and the decoder's own grown past it, are given back.
  std::size_t keep_parser_bytes = 8u << 20;
};

// Thread-compatible: one per route.
class StalwartWebhookDecoder {
 public:
  explicit StalwartWebhookDecoder(StalwartWebhookOptions options = {});
  ~StalwartWebhookDecoder();
  StalwartWebhookDecoder(const StalwartWebhookDecoder&) = delete;
  StalwartWebhookDecoder& operator=(const StalwartWebhookDecoder&) = delete;

  // Parses and checks one body; `capacity` is how many bytes from
  // body.data() may be read (body.size() when unknown). OK: size() events
  // wait for Decode(). Rejections (kInvalidArgument), by reason:
  //   bad_json    not valid JSON (truncated, bad UTF-8, ...)
  //   bad_batch   not an object with an "events" array
  //   bad_event   an element that is not an object with a string "type"
  //               and a createdAt of Stalwart's form, or whose "id" (when
  //               present) is not a string or number, or whose "data" (when
  //               present) is neither an object nor null; the first of a
  //               repeated member counts
  //   parser_memory  (kResourceExhausted) no memory for the parser: not
  //               the body's fault
  //   too_deep    arrays or objects nested below an event's data more than
  //               2 * kStalwartMaxNesting deep (kStalwartMaxNesting nested
  //               events, each an object and its data; anywhere in the body:
  //               the parser's depth limit)
  // An event with more fields than an Event holds keeps the first ones and
  // is marked truncated (FieldList::truncated).
  Status Parse(std::string_view body, std::size_t capacity);
  std::size_t size() const;

  // Decodes event `i` of the last good Parse() into `out` (cleared first).
  // Its strings stay valid until the next Parse() or the decoding of event
  // i + 2, so a caller may dispatch one event while it decodes the next.
  // Errors (the event is then not to be dispatched; counted by the caller):
  //   client_name_budget, name_table_full (kResourceExhausted): a new event
  //   type past the budget. A new key past it is left out of its event.
  Status Decode(std::size_t i, Event& out);
  // The identity of the event Decode() gave last, for de-duplication: a
  // hash of its type, createdAt and id as sent and of its data as decoded.
  // Equal for a re-sent event, different (but for a 2^-64 chance) for any
  // other that Stalwart can send. Data that decodes alike hashes alike:
  // keys past the name budget or past an Event's 96 fields, and values that
  // only a hand-made body holds (an array of arrays and its flat twin, an
  // array element with a TAB, `{"a":{"b":1}}` and `{"a.b":1}`).
  std::uint64_t dedup_key() const { return key_; }

  const NameBudget& names() const { return names_.budget(); }

 private:
  struct Json;
  struct Pending;  // a joined array waiting for its place in text_
  struct EventRef;
  Status ParseBody(std::string_view body, std::size_t capacity);
  void AllocateParser();
  void MakeDedupKey(const EventRef& ref, const Event& out);
  // A key's name and what its name says of its values.
  struct KeyInfo {
    NameId id = kNoName;
    Unit unit = Unit::kNone;  // StalwartKeyUnit
    bool timestamp = false;   // IsStalwartTimestampKey
  };
  void AddValue(const KeyInfo& key, const void* element, Event& out);
  void AddObject(NameId parent, const void* object, Event& out);
  // The key at `position` of the data of the event being decoded, whose
  // type's Shape is current_shape_.
  KeyInfo TopKey(std::size_t position, std::string_view key);
  // Appends an array's elements to text_, TAB between them.
  void JoinArray(const void* array);
  void Separate();  // the TAB before an element but the first

  StalwartWebhookOptions options_;
  StalwartNames names_;
  std::unique_ptr<Json> json_;
  std::vector<char> copy_;       // the body when the caller's buffer had no padding
  std::string texts_[2];         // the joined arrays of events 2k and 2k + 1
  std::string* text_ = texts_;   // the current event's
  std::size_t array_start_ = 0;  // where the array being joined begins in text_
  std::vector<Pending> pending_;
  std::vector<EventRef> events_;
  // The keys of the last event of each type, in order (TopKey).
  using Shape = std::vector<std::pair<std::string, KeyInfo>>;
  static constexpr std::size_t kMaxShapeKeys = 32;
  std::unordered_map<NameId, Shape> shapes_;
  Shape* current_shape_ = nullptr;
  std::uint64_t keys_seen_ = 0;  // bit (id % 64) of each key the event has
  bool span_seen_ = false;
  std::string key_bytes_;  // the last event, laid out for its dedup key
  std::uint64_t key_ = 0;
};

}  // namespace mailscope::ingest
