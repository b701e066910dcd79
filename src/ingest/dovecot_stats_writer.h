// Decoder for one connection of Dovecot 2.3's stats-writer protocol: every
// Dovecot process sends its events to the stats process over it (reference
// dovecot-protocols.md §3.2). The decoder enforces the VERSION handshake,
// keeps the connection's state (registered categories, BEGIN-ed events) and
// turns each BEGIN and EVENT line into one Event, source dovecot:
//   name      the `n` item, interned; kNoName for unnamed events
//   level     the log type: 0..5 -> kDebug kInfo kWarn kError kFatal kPanic
//   time      tv_created. The end is tv_last_sent = time + `duration`, an
//             integer field in µs added as Dovecot's stats process does before
//             filtering: last_sent - created, or 0 without an `l` item (most
//             BEGINs; lmtp's do carry one) or when it would be negative
//   fields    S -> kString, I -> kInt, T -> kTimeval, L (string list) -> kString
//             with the elements joined by TAB (Value has no list type; an element
//             holding a TAB is then ambiguous). A repeated key: the last value wins
//   categories  each `c` item together with all its ancestors
//   parent    the stored BEGIN-ed event named by parent-id, so lookups follow the
//             chain; `global` likewise for EVENT's global-id
//   span_id, parent_id  the line's event id (BEGIN only) and parent-id
// Leniency: Dovecot closes the connection on any error, which drops every
// BEGIN-ed event of the process until it reconnects. This decoder rejects the
// bad line only: the line changes no state, and later lines decode against the
// state as it was (reference §5 point 3). Only a failed handshake asks for the
// connection to be closed, unless Options::close_on_error asks for parity.
// Categories are registered per connection (Dovecot keeps one registry for the
// whole process; every client announces all its categories on connect).
#pragma once

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/names.h"
#include "core/status.h"

namespace mailscope::ingest {

// Longest line worth accepting. Dovecot 2.3.19 closes writer connections at
// 128 KiB, which long IMAP command arguments exceed (reference §5 point 4).
inline constexpr std::size_t kStatsWriterMaxLineBytes = 1024 * 1024;

// What the server sends as soon as a writer connects, before any FILTER line.
inline constexpr std::string_view kStatsServerVersionLine = "VERSION\tstats-server\t4\t0\n";

struct StatsWriterOptions {
  // BEGIN-ed events held at once, including ended ones that live children
  // still reference. A BEGIN past the bound is rejected (too_many_events).
  std::size_t max_events = 4096;
  // Registered categories. A new one past the bound: too_many_categories.
  std::size_t max_categories = 1024;
  // Bytes of held events: their Event objects plus their strings. A BEGIN or
  // UPDATE that would pass the bound is rejected (state_limit).
  std::size_t max_state_bytes = 16 * 1024 * 1024;
  // Dovecot 2.3.19 parity: any rejected line closes the connection.
  bool close_on_error = false;
  // Names new to mailscope's name table (event names, field keys,
  // categories) this connection may add (NameBudget). Past it a new
  // category or event name is rejected (client_name_budget) and a new field
  // key is left out of its event, as when the table is full.
  std::uint32_t max_new_names = kDefaultMaxNewNamesPerClient;
};

struct StatsWriterResult {
  enum class Emit : std::uint8_t {
    kNone,   // nothing to dispatch
    kBegin,  // a BEGIN: Dovecot runs it through metrics, but never counts it (unnamed)
    kEvent,  // an EVENT
  };
  Emit emit = Emit::kNone;
  // OK, or the rejection with its counter label: after VERSION failures
  // invalid_handshake wrong_service unsupported_version, then closed; for
  // commands empty_line unknown_command too_few_fields invalid_id
  // invalid_log_type duplicate_event_id unknown_parent_event
  // unknown_global_event unknown_event_id parent_changed invalid_timestamp
  // invalid_source_line unregistered_category missing_field_name
  // missing_field_value invalid_field_value invalid_list_count
  // list_too_few_values missing_category_name unknown_parent_category
  // category_parent_changed (all kInvalidArgument), and too_many_events
  // too_many_categories state_limit client_name_budget name_table_full
  // (kResourceExhausted).
  Status status;
  // The server must close the connection: the handshake failed, or the
  // line was rejected with Options::close_on_error set.
  bool close = false;
};

// Thread-compatible: one decoder per writer connection, owned by the loop
// thread that reads it. Owns the connection's categories and BEGIN-ed events.
// An EVENT allocates nothing in the steady state; a BEGIN reuses the storage
// of ENDed events and allocates one index node.
class DovecotStatsWriterDecoder {
 public:
  explicit DovecotStatsWriterDecoder(StatsWriterOptions options = {});
  ~DovecotStatsWriterDecoder();
  DovecotStatsWriterDecoder(const DovecotStatsWriterDecoder&) = delete;
  DovecotStatsWriterDecoder& operator=(const DovecotStatsWriterDecoder&) = delete;

  // Decodes one line without its LF; the line is unescaped in place. After a
  // result with close set, every further line is rejected (reason "closed").
  StatsWriterResult Decode(std::span<char> line);

  // The event of the last Decode() that emitted. Valid until the next
  // Decode() of any decoder of this thread (the decoders of a thread share
  // one workspace for the line being decoded, so a connection between lines
  // costs only its own state); an EVENT's strings point into that call's
  // line, which must stay unchanged meanwhile. The Events it points to (parent, global) are owned
  // by this decoder. REQUIRES: the last Decode() emitted.
  const Event& event() const;
  // The same, for the one step after decoding that annotates it (the
  // dispatcher sets its taxonomy).
  Event& mutable_event();

  bool handshake_done() const { return state_ == State::kReady; }
  // BEGIN-ed events not yet ENDed.
  std::size_t live_events() const { return live_.size(); }
  // Live events plus ended ones kept because a held child references them.
  std::size_t held_events() const { return held_.size(); }
  std::size_t categories() const { return categories_.size(); }
  // What Options::max_state_bytes bounds.
  std::size_t state_bytes() const { return state_bytes_; }
  // The names this connection added to the table, and those refused to it.
  const NameBudget& names() const { return names_; }

  // Walks the held events and checks the counts and links above; false on
  // any inconsistency.
  bool CheckInvariantsForTesting() const;
  // Every line down the general path (no line shapes, no END without a
  // split), as the reference of their differential tests.
  void DisableFastPathsForTesting() { fast_paths_ = false; }
  // EVENT and BEGIN lines decoded by their shape.
  std::uint64_t lines_by_shape() const { return lines_by_shape_; }
  // Line shapes held (at most kMaxShapes).
  std::size_t shapes_held() const { return shape_count_; }

 private:
  enum class State : std::uint8_t { kAwaitingVersion, kReady, kClosed };
  struct Stored;  // one held BEGIN-ed event
  struct Parsed;  // one <event-export>, parsed

  using Emit = StatsWriterResult::Emit;
  // The result of a command line: `emit` if `status` is OK; closing the
  // connection on an error if Options::close_on_error asks for it.
  StatsWriterResult Finish(Emit emit, Status status);
  StatsWriterResult Handshake(std::span<const std::string_view> args);
  Status Category(std::span<const std::string_view> args);
  Status Begin(std::span<const std::string_view> args, std::span<char> line);
  Status Update(std::span<const std::string_view> args, std::span<char> line);
  Status EventLine(std::span<const std::string_view> args, std::span<char> line);
  // The EVENT of parsed_ into event_, and emitted.
  void EmitEvent(std::uint64_t parent_id, Level level, Stored* global, Stored* parent);
  // The BEGIN of parsed_ held and emitted; its id is new and not 0, its
  // parent held (or none), and there is room for one more event.
  Status HoldBegin(std::uint64_t id, std::uint64_t parent_id, Level level, Stored* parent);
  Status End(std::span<const std::string_view> args);
  // END of a parsed id.
  Status EndEvent(std::uint64_t id);
  // Parses args[from..] (an <event-export>) into parsed_.
  Status ParseExport(std::span<const std::string_view> args, std::size_t from,
                     std::span<char> line);
  // Copies parsed_ into `s`, merged with `s`'s fields when `merge` is set,
  // and its strings into `s`'s own storage.
  Status Store(Stored& s, bool merge);
  Stored* FindLive(std::uint64_t id) const;
  // FindLive(id), nullptr for id 0, or Rejected(reason) naming it `what`.
  Result<Stored*> LiveOrNone(std::string_view cmd, std::uint64_t id, const char* reason,
                             const char* what) const;
  // Frees `s` and the ended ancestors it alone kept.
  void Release(Stored* s);
  // kResourceExhausted for a new name TryInternName() refused: reason
  // client_name_budget or name_table_full.
  Status NameRefused(std::string_view cmd, std::string_view what, std::string_view name) const;
  // TryInternName() and FindName() through name_cache_: the same field keys and
  // event names come on every line, and the global table hashes under a lock.
  // `unit`, when given, receives the field unit of the name
  // (DovecotFieldUnit()), kept in the cache with the id.
  NameId Intern(std::string_view name, Unit* unit = nullptr);
  NameId Find(std::string_view name, Unit* unit = nullptr);
  // Both, by `intern`: the hit inline, the miss out of line (23 instructions
  // less a name than both in one function, callgrind).
  NameId Cached(std::string_view name, Unit* unit, bool intern);
  NameId CacheMiss(std::string_view name, Unit* unit, bool intern);

  // Direct-mapped: slot = hash of the text; a slot holds an id and its
  // (permanent) text, compared before use, so a collision only costs a miss.
  // Names longer than 64 KiB are not cached (size is 16 bits, to keep the
  // unit within 16 bytes a slot).
  struct CachedName {
    const char* text = nullptr;
    std::uint16_t size = 0;
    Unit unit = Unit::kNone;
    NameId id = kNoName;
  };
  static constexpr std::size_t kNameCacheSlots = 512;
  CachedName* CacheSlot(std::string_view name);

  // Line shapes: an EVENT or BEGIN line that repeats the source file, name,
  // categories and keys of an earlier one is decoded by comparing its tokens
  // with that line's, not by the general path (see the .cc).
  struct Shape;
  // Slots a shape may take (two for each) and shapes held at once: slots
  // four times the shapes keep three shapes from competing for two slots.
  static constexpr std::size_t kShapeSlots = 128;
  static constexpr std::size_t kMaxShapes = 32;
  // Decodes an EVENT line, or a BEGIN line if `begin`, that matches its
  // slot's shape, and emits it; false (the line and every state untouched)
  // sends it down the general path.
  bool DecodeByShape(std::span<char> line, bool begin);
  // Keeps the shape of the EVENT or BEGIN line just decoded by the general
  // path (args unescaped: none held an escape), if it has one.
  void RecordShape(std::span<const std::string_view> args);

  StatsWriterOptions options_;
  NameBudget names_;
  State state_ = State::kAwaitingVersion;
  NameId duration_key_;
  // What decoding one line needs and no line keeps: the parsed fields, the
  // emitted EVENT, the name cache. One per thread, shared by its decoders.
  struct Workspace;
  static std::shared_ptr<Workspace> ThreadWorkspace();
  std::shared_ptr<Workspace> work_;
  Parsed* parsed_;                                        // work_'s
  Event* event_;                                          // work_'s: the last EVENT
  Event* emitted_ = nullptr;                              // event_ or a stored BEGIN
  boost::unordered_flat_map<NameId, NameId> categories_;  // category -> parent, or kNoName
  boost::unordered_flat_map<std::uint64_t, Stored*> live_;
  std::vector<std::unique_ptr<Stored>> held_;
  std::vector<std::unique_ptr<Stored>> spare_;  // freed events, reused by BEGIN
  std::vector<char> text_;                      // scratch for Store()
  // Allocated when first recorded: at most kMaxShapes shapes and the one
  // being built, each of at most 512 bytes of tokens and 48 items: about
  // 75 KiB a connection at most; 0 - 15 KB in the connections of the
  // benchmark's streams.
  std::array<std::unique_ptr<Shape>, kShapeSlots> shapes_;
  std::size_t shape_count_ = 0;           // of shapes_ not null
  std::unique_ptr<Shape> scratch_shape_;  // where RecordShape() builds one
  bool fast_paths_ = true;
  std::uint64_t lines_by_shape_ = 0;
  std::size_t state_bytes_ = 0;
};

}  // namespace mailscope::ingest
