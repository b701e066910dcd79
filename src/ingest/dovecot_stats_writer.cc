#include "ingest/dovecot_stats_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "core/check.h"
#include "core/tab_escape.h"
#include "ingest/dovecot_field_units.h"
#include "ingest/line_numbers.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

// Dovecot's connection.c: "VERSION\t<peer service>\t<major>\t<minor>"; the
// stats server expects the peer `stats-client`, major 4, any minor.
constexpr std::string_view kClientService = "stats-client";
constexpr std::uint32_t kMajorVersion = 4;

// Spare stored events kept for reuse; each holds an Event (~3 KiB).
constexpr std::size_t kMaxSpare = 32;
// A reused string buffer larger than this is given back instead.
constexpr std::size_t kMaxKeptTextBytes = 64 * 1024;

TimePoint ToTimePoint(Timeval tv) {
  return TimePoint(std::chrono::seconds(tv.sec) + std::chrono::microseconds(tv.usec));
}

Level LevelOf(std::uint32_t log_type) {
  static constexpr Level kLevels[] = {Level::kDebug, Level::kInfo,  Level::kWarn,
                                      Level::kError, Level::kFatal, Level::kPanic};
  return kLevels[log_type];
}

// Sets `key` among fields[0..n). A repeated key keeps its place and takes the
// new value (lib-event: the last one wins). A new key is appended while n <
// cap, else dropped; false then.
bool SetField(Field* fields, std::size_t& n, std::size_t cap, NameId key, Value v) {
  for (std::size_t i = 0; i < n; ++i) {
    if (fields[i].key == key) {
      fields[i].value = v;
      return true;
    }
  }
  if (n == cap) return false;
  fields[n++] = {key, v};
  return true;
}

// Cheap hash of a short text for the name cache: length, first and last 8
// bytes (fewer when shorter). Not seeded, and need not be: names that collide
// here cost only their own connection's cache hits, its lookups then going to
// the name table, whose hash is seeded; a writer gets no more by sending
// names it never sent before. (A seed would not stop collisions anyway: names
// of one length sharing their first and last 8 bytes always collide.)
[[gnu::always_inline]] inline std::size_t NameCacheSlot(std::string_view s, std::size_t slots) {
  std::uint64_t a = 0, b = 0;
  const std::size_t n = s.size();
  if (n >= 8) {
    std::memcpy(&a, s.data(), 8);
    std::memcpy(&b, s.data() + n - 8, 8);
  } else if (n >= 4) {
    std::uint32_t x = 0, y = 0;
    std::memcpy(&x, s.data(), 4);
    std::memcpy(&y, s.data() + n - 4, 4);
    a = x;
    b = y;
  } else {
    for (const char c : s) a = (a << 8) | static_cast<unsigned char>(c);
  }
  const std::uint64_t h = ((a ^ n) * 0x9e3779b97f4a7c15ULL) ^ (b * 0xc2b2ae3d27d4eb4fULL);
  return static_cast<std::size_t>(h >> 32) & (slots - 1);
}

// a[0..b.size()) == b for the short texts of names: first and last words
// compared inline, memcmp only for the middle of long ones.
[[gnu::always_inline]] inline bool SameBytes(const char* a, std::string_view b) {
  const std::size_t n = b.size();
  if (n >= 8) {
    std::uint64_t x0, y0, x1, y1;
    std::memcpy(&x0, a, 8);
    std::memcpy(&y0, b.data(), 8);
    std::memcpy(&x1, a + n - 8, 8);
    std::memcpy(&y1, b.data() + n - 8, 8);
    if (x0 != y0 || x1 != y1) return false;
    // The middle word by word; the last one overlaps the tail compared above.
    for (std::size_t i = 8; i + 8 < n; i += 8) {
      std::memcpy(&x0, a + i, 8);
      std::memcpy(&y0, b.data() + i, 8);
      if (x0 != y0) return false;
    }
    return true;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// FieldList has no setter for its truncated mark: asking for more room than
// it has sets it.
void MarkTruncated(FieldList& fields) { (void)fields.Append(FieldList::kCapacity + 1); }

Status Reject(std::string_view cmd, const char* reason, const std::string& msg) {
  return Rejected(reason, std::string(cmd) + ": " + msg);
}

// "<id> <parent-id> [<log-type>]", which open BEGIN, UPDATE and EVENT
// (client-writer.c). EVENT's id is its global event's, 0 for none.
struct Header {
  std::uint64_t id = 0;
  std::uint64_t parent_id = 0;
  Level level = Level::kDebug;
};

Result<Header> ParseHeader(std::span<const std::string_view> args, bool has_log_type) {
  const std::string_view cmd = args[0];
  Header h;
  std::uint32_t log_type = 0;
  if (args.size() < (has_log_type ? 4u : 3u)) {
    return Reject(cmd, "too_few_fields", "Too few parameters");
  }
  if (!ParseDecimal(args[1], h.id)) {
    return Reject(cmd, "invalid_id", "Invalid ID '" + QuoteForLog(args[1]) + "'");
  }
  if (!ParseDecimal(args[2], h.parent_id)) {
    return Reject(cmd, "invalid_id", "Invalid parent ID '" + QuoteForLog(args[2]) + "'");
  }
  if (has_log_type && (!ParseDecimal(args[3], log_type) || log_type > 5)) {
    return Reject(cmd, "invalid_log_type", "Invalid log type '" + QuoteForLog(args[3]) + "'");
  }
  h.level = LevelOf(log_type);
  return h;
}

// The scalars of a parsed <event-export>, reset per line.
struct ParsedHead {
  Timeval created;
  Timeval last_sent;  // sec 0: none, as in lib-event
  bool has_source = false;
  std::string_view source_file;
  std::uint32_t source_line = 0;
  bool has_name = false;
  NameId name = kNoName;
  CategoryList categories;
  std::size_t field_count = 0;
  bool truncated = false;      // fields were dropped
  std::uint64_t key_bits = 0;  // bit (key % 64) of every key in fields

  // As assigning ParsedHead(), without rewriting the categories' storage.
  void Reset() {
    created = last_sent = {};
    has_source = false;
    source_file = {};
    source_line = 0;
    has_name = false;
    name = kNoName;
    categories.clear();
    field_count = 0;
    truncated = false;
    key_bits = 0;
  }
};

}  // namespace

// One <event-export>, parsed; string values point into the line.
struct DovecotStatsWriterDecoder::Parsed : ParsedHead {
  std::array<Field, FieldList::kCapacity> fields;
  std::array<Field, FieldList::kCapacity> merged;  // scratch for UPDATE

  // The field of `key` among the line's fields, appended while fewer than
  // `cap`, else nullptr. A repeated key keeps its place (lib-event: the last
  // value wins). key_bits spares the scan for keys not seen yet.
  Field* FieldFor(NameId key, std::size_t cap) {
    const std::uint64_t bit = std::uint64_t{1} << (key % 64);
    if ((key_bits & bit) != 0) {
      for (std::size_t i = 0; i < field_count; ++i)
        if (fields[i].key == key) return &fields[i];
    }
    if (field_count == cap) return nullptr;
    key_bits |= bit;
    Field& f = fields[field_count++];
    f.key = key;
    return &f;
  }

  // Sets the `duration` field of BEGIN and EVENT (stats-metrics.c): last_sent -
  // created in µs, 0 without last_sent. Dovecot asserts it is not negative; a
  // client clock stepping back would make it so, and 0 keeps the event.
  // A key whose bit is not in key_bits is not among the fields: appended
  // without a scan of them.
  void AddDuration(NameId key) {
    std::int64_t d = (last_sent.sec - created.sec) * 1'000'000 + (last_sent.usec - created.usec);
    if (last_sent.sec == 0) d = 0;
    const Value v = Value::Int(std::max<std::int64_t>(d, 0)).WithUnit(Unit::kMicroseconds);
    const std::uint64_t bit = std::uint64_t{1} << (key % 64);
    if ((key_bits & bit) == 0 && field_count < fields.size()) {
      key_bits |= bit;
      fields[field_count++] = {key, v};
      return;
    }
    SetField(fields.data(), field_count, fields.size(), key, v);
  }
};

// A BEGIN-ed event. Its Event's strings point into `text`.
struct DovecotStatsWriterDecoder::Stored {
  Event event;
  std::vector<char> text;  // not a std::string: a swap must not move short strings
  Stored* parent = nullptr;
  std::size_t children = 0;  // held events whose parent this is
  std::size_t slot = 0;      // index in held_
  std::size_t bytes = 0;     // what this adds to state_bytes_
  bool ended = false;        // ENDed, held only for its children
};

struct DovecotStatsWriterDecoder::Workspace {
  Parsed parsed;
  TabSplitter splitter;  // the fields of the line being decoded
  Event event;
  std::array<CachedName, kNameCacheSlots> name_cache{};
};

std::shared_ptr<DovecotStatsWriterDecoder::Workspace> DovecotStatsWriterDecoder::ThreadWorkspace() {
  // Held weakly: the workspace goes when the thread's last decoder does.
  thread_local std::weak_ptr<Workspace> shared;
  std::shared_ptr<Workspace> work = shared.lock();
  if (!work) {
    work = std::make_shared<Workspace>();
    shared = work;
  }
  return work;
}

DovecotStatsWriterDecoder::DovecotStatsWriterDecoder(StatsWriterOptions options)
    : options_(options),
      names_(NameInput::kStatsWriter, options.max_new_names),
      duration_key_(InternName("duration")),
      work_(ThreadWorkspace()),
      parsed_(&work_->parsed),
      event_(&work_->event) {}

const Event& DovecotStatsWriterDecoder::event() const {
  MS_CHECK(emitted_ != nullptr);
  return *emitted_;
}

Event& DovecotStatsWriterDecoder::mutable_event() {
  MS_CHECK(emitted_ != nullptr);
  return *emitted_;
}

StatsWriterResult DovecotStatsWriterDecoder::Decode(std::span<char> line) {
  emitted_ = nullptr;
  if (state_ == State::kClosed) {
    return {Emit::kNone, Rejected("closed", "Line after the connection was to be closed"), true};
  }
  if (state_ == State::kReady && fast_paths_) {
    // Most lines are EVENTs and BEGINs of a shape already seen, and ENDs.
    const std::string_view head(line.data(), std::min<std::size_t>(line.size(), 6));
    if (head == "EVENT\t" && DecodeByShape(line, false)) return {Emit::kEvent, Status::Ok(), false};
    if (head == "BEGIN\t" && DecodeByShape(line, true)) return {Emit::kBegin, Status::Ok(), false};
    std::uint64_t id = 0;  // "END <id>" has nothing to split
    if (head.starts_with("END\t") &&
        ParseDecimal(std::string_view(line.data() + 4, line.size() - 4), id)) {
      return Finish(Emit::kNone, EndEvent(id));
    }
  }
  const std::span<const std::string_view> args = work_->splitter.Split(line);
  if (state_ == State::kAwaitingVersion) return Handshake(args);
  if (args.empty()) return Finish(Emit::kNone, Rejected("empty_line", "Empty line"));
  // Most frequent first.
  const std::string_view cmd = args[0];
  if (cmd == "EVENT") return Finish(Emit::kEvent, EventLine(args, line));
  if (cmd == "BEGIN") return Finish(Emit::kBegin, Begin(args, line));
  if (cmd == "END") return Finish(Emit::kNone, End(args));
  if (cmd == "CATEGORY") return Finish(Emit::kNone, Category(args));
  if (cmd == "UPDATE") return Finish(Emit::kNone, Update(args, line));
  return Finish(Emit::kNone, Rejected("unknown_command", "Unknown command: " + QuoteForLog(cmd)));
}

StatsWriterResult DovecotStatsWriterDecoder::Finish(Emit emit, Status status) {
  StatsWriterResult result{status.ok() ? emit : Emit::kNone, std::move(status), false};
  if (!result.status.ok() && options_.close_on_error) {
    result.close = true;
    state_ = State::kClosed;
  }
  return result;
}

StatsWriterResult DovecotStatsWriterDecoder::Handshake(std::span<const std::string_view> args) {
  StatsWriterResult result;
  result.close = true;
  state_ = State::kClosed;
  std::uint32_t major = 0, minor = 0;
  if (args.size() != 4 || args[0] != "VERSION" || !ParseDecimal(args[2], major) ||
      !ParseDecimal(args[3], minor)) {
    result.status =
        Rejected("invalid_handshake",
                 "Expected a VERSION line, got '" + QuoteForLog(args.empty() ? "" : args[0]) + "'");
  } else if (args[1] != kClientService) {
    result.status = Rejected("wrong_service", "Connected to the stats-writer socket as '" +
                                                  QuoteForLog(args[1]) + "', not stats-client");
  } else if (major != kMajorVersion) {
    result.status = Rejected("unsupported_version",
                             "Client speaks major version " + std::to_string(major) + ", not 4");
  } else {
    result.close = false;
    state_ = State::kReady;
  }
  return result;
}

// CATEGORY <name> [<parent name>]  (client-writer.c)
Status DovecotStatsWriterDecoder::Category(std::span<const std::string_view> args) {
  if (args.size() < 2 || args[1].empty()) {
    return Reject("CATEGORY", "missing_category_name", "Missing category name");
  }
  const std::string_view name = args[1];
  NameId parent = kNoName;
  if (args.size() > 2) {
    parent = FindName(args[2]);
    if (parent == kNoName || !categories_.contains(parent)) {
      return Reject("CATEGORY", "unknown_parent_category",
                    "Unknown parent category '" + QuoteForLog(args[2]) + "'");
    }
  }
  if (auto it = categories_.find(FindName(name)); it != categories_.end()) {
    if (it->second != parent) {
      return Reject("CATEGORY", "category_parent_changed",
                    "Category " + QuoteForLog(name) + " parent '" +
                        QuoteForLog(NameText(it->second)) + "' changed to '" +
                        QuoteForLog(NameText(parent)) + "'");
    }
    return Status::Ok();  // a repeat
  }
  if (categories_.size() >= options_.max_categories) {
    return {StatusCode::kResourceExhausted, "too_many_categories",
            "CATEGORY: More than " + std::to_string(options_.max_categories) + " categories"};
  }
  NameId id = TryInternName(name, names_);
  if (id == kNoName) return NameRefused("CATEGORY", "category", name);
  categories_.emplace(id, parent);
  return Status::Ok();
}

Status DovecotStatsWriterDecoder::ParseExport(std::span<const std::string_view> args,
                                              std::size_t from, std::span<char> line) {
  Parsed& p = *parsed_;
  p.Reset();
  const std::string_view cmd = args[0];
  if (args.size() < from + 2 || !ParseLineTimeval(args[from], args[from + 1], false, p.created)) {
    return Reject(cmd, "invalid_timestamp", "Missing or invalid create timestamp");
  }
  // The line's own fields leave room for `duration`, which BEGIN and EVENT add.
  constexpr std::size_t kFieldCap = FieldList::kCapacity - 1;
  const std::size_t n = args.size();
  std::size_t i = from + 2;
  while (i < n) {
    const std::string_view item = args[i];
    // lib-event's importer skips an item with an unknown code letter.
    const char code = item.empty() ? '\0' : item[0];
    const std::string_view rest = item.empty() ? item : item.substr(1);
    switch (code) {
      case 's':
        if (i + 1 >= n || !ParseDecimal(args[i + 1], p.source_line)) {
          return Reject(cmd, "invalid_source_line", "Missing or invalid source line number");
        }
        p.has_source = true;
        p.source_file = rest;
        i += 2;
        continue;
      case 'l':
        if (i + 1 >= n || !ParseLineTimeval(rest, args[i + 1], false, p.last_sent)) {
          return Reject(cmd, "invalid_timestamp", "Missing or invalid tv_last_sent");
        }
        i += 2;
        continue;
      case 'n':
        p.has_name = true;
        p.name = Intern(rest);
        if (p.name == kNoName && !rest.empty()) return NameRefused(cmd, "event name", rest);
        ++i;
        continue;
      case 'c': {
        NameId c = Find(rest);
        if (c == kNoName || !categories_.contains(c)) {
          return Reject(cmd, "unregistered_category",
                        "Unregistered category: '" + QuoteForLog(rest) + "'");
        }
        // The category and its ancestors; the registry is a forest (a
        // parent is registered first and never changes), the bound is a guard.
        for (std::size_t depth = 0; c != kNoName && depth <= categories_.size(); ++depth) {
          if (!p.categories.contains(c)) p.categories.push_back(c);
          c = categories_.find(c)->second;
        }
        ++i;
        continue;
      }
      case 'S':
      case 'I':
      case 'T':
      case 'L':
        break;
      default:  // 'a' (always_log_source) and unknown codes carry nothing for us
        ++i;
        continue;
    }
    if (rest.empty()) return Reject(cmd, "missing_field_name", "Field name is missing");
    if (i + 1 >= n) {
      return Reject(cmd, "missing_field_value",
                    "Field '" + QuoteForLog(rest) + "' value is missing");
    }
    const std::string_view arg = args[i + 1];
    // The value is parsed first, then stored straight into its field: a
    // Value built aside and copied in costs more than the parse.
    std::string_view text = arg;
    std::int64_t number = 0;
    Timeval tv;
    std::size_t used = 2;  // tokens this item takes
    if (code == 'I') {
      if (!ParseDecimal(arg, number)) {
        return Reject(
            cmd, "invalid_field_value",
            "Invalid number '" + QuoteForLog(arg) + "' for field '" + QuoteForLog(rest) + "'");
      }
    } else if (code == 'T') {
      if (i + 2 >= n || !ParseLineTimeval(arg, args[i + 2], true, tv)) {
        return Reject(cmd, "invalid_field_value",
                      "Missing or invalid timeval for field '" + QuoteForLog(rest) + "'");
      }
      used = 3;
    } else if (code == 'L') {  // <count> <v1> ... <vN>
      std::uint32_t count = 0;
      if (!ParseDecimal(arg, count)) {
        return Reject(
            cmd, "invalid_list_count",
            "Invalid list count '" + QuoteForLog(arg) + "' for field '" + QuoteForLog(rest) + "'");
      }
      if (count > n - i - 2) {
        return Reject(cmd, "list_too_few_values",
                      "Field '" + QuoteForLog(rest) + "' has fewer values than its count");
      }
      // Join the elements with TAB in place: each element starts at or after
      // where the joined text has reached, since unescaping only shrinks.
      char* const dst = count == 0 ? nullptr : line.data() + (args[i + 2].data() - line.data());
      std::size_t len = 0;
      for (std::size_t k = 0; k < count; ++k) {
        const std::string_view e = args[i + 2 + k];
        MS_CHECK(e.data() >= dst + len + (k > 0) &&
                 e.data() + e.size() <= line.data() + line.size());
        if (k > 0) dst[len++] = '\t';
        std::memmove(dst + len, e.data(), e.size());
        len += e.size();
      }
      text = std::string_view(dst, len);
      used = 2 + count;
    }
    // Once full, keys are looked up, not interned: a line of many distinct
    // keys must not grow the name table past what it can keep.
    Unit unit = Unit::kNone;
    const NameId key = p.field_count < kFieldCap ? Intern(rest, &unit) : Find(rest, &unit);
    Field* f = key == kNoName ? nullptr : p.FieldFor(key, kFieldCap);
    if (f == nullptr) {
      p.truncated = true;
    } else if (code == 'I') {
      f->value.set_int(number, unit);
    } else if (code == 'T') {
      f->value.set_timeval(tv);
    } else {  // 'S', and 'L' joined
      f->value.set_string(text);
    }
    i += used;
  }
  return Status::Ok();
}

Status DovecotStatsWriterDecoder::NameRefused(std::string_view cmd, std::string_view what,
                                              std::string_view name) const {
  return NameRefusedStatus(names_, std::string(what) + " '" + QuoteForLog(name) + "'",
                           std::string(cmd) + ": ");
}

// The one slot `name` may be cached in.
DovecotStatsWriterDecoder::CachedName* DovecotStatsWriterDecoder::CacheSlot(std::string_view name) {
  return &work_->name_cache[NameCacheSlot(name, kNameCacheSlots)];
}

[[gnu::always_inline]] inline NameId DovecotStatsWriterDecoder::Cached(std::string_view name,
                                                                       Unit* unit, bool intern) {
  const CachedName* slot = name.empty() ? nullptr : CacheSlot(name);
  if (slot != nullptr && slot->size == name.size() && SameBytes(slot->text, name)) {
    if (unit != nullptr) *unit = slot->unit;
    return slot->id;
  }
  return CacheMiss(name, unit, intern);
}

inline NameId DovecotStatsWriterDecoder::Intern(std::string_view name, Unit* unit) {
  return Cached(name, unit, true);
}

inline NameId DovecotStatsWriterDecoder::Find(std::string_view name, Unit* unit) {
  return Cached(name, unit, false);
}

[[gnu::noinline]] NameId DovecotStatsWriterDecoder::CacheMiss(std::string_view name, Unit* unit,
                                                              bool intern) {
  if (name.empty()) return kNoName;
  // A name not found is not kept: it may be interned later. Not interned:
  // this connection's or the table's budget is spent.
  const NameId id = intern ? TryInternName(name, names_) : FindName(name);
  if (id == kNoName) return kNoName;
  const Unit u = DovecotFieldUnit(name);
  if (unit != nullptr) *unit = u;
  const std::string_view text = NameText(id);
  if (text.size() <= UINT16_MAX)
    *CacheSlot(name) = {text.data(), static_cast<std::uint16_t>(text.size()), u, id};
  return id;
}

DovecotStatsWriterDecoder::Stored* DovecotStatsWriterDecoder::FindLive(std::uint64_t id) const {
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : it->second;
}

Result<DovecotStatsWriterDecoder::Stored*> DovecotStatsWriterDecoder::LiveOrNone(
    std::string_view cmd, std::uint64_t id, const char* reason, const char* what) const {
  if (id == 0) return static_cast<Stored*>(nullptr);
  if (Stored* s = FindLive(id)) return s;
  return Reject(cmd, reason, std::string("Unknown ") + what + " event ID " + std::to_string(id));
}

// BEGIN <id> <parent-id> <log-type> <event-export>
Status DovecotStatsWriterDecoder::Begin(std::span<const std::string_view> args,
                                        std::span<char> line) {
  Result<Header> h = ParseHeader(args, true);
  if (!h.ok()) return h.status();
  if (h->id == 0) return Reject("BEGIN", "invalid_id", "Invalid ID '0'");
  if (FindLive(h->id) != nullptr) {
    return Reject("BEGIN", "duplicate_event_id", "Duplicate event ID " + std::to_string(h->id));
  }
  Result<Stored*> parent = LiveOrNone("BEGIN", h->parent_id, "unknown_parent_event", "parent");
  if (!parent.ok()) return parent.status();
  if (held_.size() >= options_.max_events) {
    return {StatusCode::kResourceExhausted, "too_many_events",
            "BEGIN: More than " + std::to_string(options_.max_events) + " events held"};
  }
  MS_RETURN_IF_ERROR(ParseExport(args, 4, line));
  if (fast_paths_ && !work_->splitter.escaped()) RecordShape(args);
  return HoldBegin(h->id, h->parent_id, h->level, *parent);
}

Status DovecotStatsWriterDecoder::HoldBegin(std::uint64_t id, std::uint64_t parent_id, Level level,
                                            Stored* parent) {
  parsed_->AddDuration(duration_key_);
  auto s = spare_.empty() ? std::make_unique<Stored>() : std::move(spare_.back());
  if (!spare_.empty()) spare_.pop_back();
  s->event.Clear();
  if (Status st = Store(*s, false); !st.ok()) {
    spare_.push_back(std::move(s));
    return st;
  }
  Event& e = s->event;
  e.source = Source::kDovecot;
  e.level = level;
  e.span_id = id;
  e.parent_id = parent_id;
  s->parent = parent;
  if (s->parent != nullptr) {
    e.parent = &s->parent->event;
    ++s->parent->children;
  }
  s->slot = held_.size();
  emitted_ = &e;
  live_.emplace(id, s.get());
  held_.push_back(std::move(s));
  return Status::Ok();
}

Status DovecotStatsWriterDecoder::Store(Stored& s, bool merge) {
  Parsed& p = *parsed_;
  const Field* fields = p.fields.data();
  std::size_t count = p.field_count;
  bool truncated = p.truncated;
  if (merge) {
    // UPDATE: the stored fields, overwritten or extended by the line's.
    count = s.event.fields.size();
    truncated = truncated || s.event.fields.truncated();
    std::copy(s.event.fields.begin(), s.event.fields.end(), p.merged.begin());
    for (std::size_t i = 0; i < p.field_count; ++i) {
      if (!SetField(p.merged.data(), count, p.merged.size(), p.fields[i].key, p.fields[i].value)) {
        truncated = true;
      }
    }
    fields = p.merged.data();
  }
  const std::string_view source_file = p.has_source ? p.source_file : s.event.source_file;
  std::size_t text_bytes = source_file.size();
  for (std::size_t i = 0; i < count; ++i) {
    if (fields[i].value.type() == Value::Type::kString) {
      text_bytes += fields[i].value.as_string().size();
    }
  }
  const std::size_t bytes = sizeof(Stored) + text_bytes;
  if (state_bytes_ - s.bytes + bytes > options_.max_state_bytes) {
    return {StatusCode::kResourceExhausted, "state_limit",
            std::string(merge ? "UPDATE" : "BEGIN") + ": Held events would pass " +
                std::to_string(options_.max_state_bytes) + " bytes"};
  }

  // Copy every string into a buffer reserved up front, so the views taken
  // while appending stay valid; then swap it in. The old buffer (which merged
  // values may point into) becomes the next scratch.
  if (text_.capacity() > 2 * text_bytes + 1024) std::vector<char>().swap(text_);
  text_.clear();
  text_.reserve(text_bytes);
  auto own = [this](std::string_view v) {
    const std::size_t at = text_.size();
    text_.insert(text_.end(), v.begin(), v.end());
    return std::string_view(text_.data() + at, v.size());
  };
  Event& e = s.event;
  e.source_file = own(source_file);
  if (p.has_source) e.source_line = p.source_line;
  e.fields.clear();
  Field* out = e.fields.Append(count);
  MS_CHECK(out != nullptr);
  for (std::size_t i = 0; i < count; ++i) {
    out[i] = fields[i];
    if (out[i].value.type() == Value::Type::kString) {
      out[i].value = Value::String(own(out[i].value.as_string()));
    }
  }
  if (truncated) MarkTruncated(e.fields);
  MS_CHECK(text_.size() == text_bytes);
  s.text.swap(text_);
  // Categories are replaced by the line's list; the name only when sent.
  e.categories = p.categories;
  if (p.has_name || !merge) e.name = p.name;
  e.time = ToTimePoint(p.created);
  state_bytes_ = state_bytes_ - s.bytes + bytes;
  s.bytes = bytes;
  return Status::Ok();
}

// UPDATE <id> <parent-id> <event-export>   (no log type)
Status DovecotStatsWriterDecoder::Update(std::span<const std::string_view> args,
                                         std::span<char> line) {
  Result<Header> h = ParseHeader(args, false);
  if (!h.ok()) return h.status();
  Stored* s = FindLive(h->id);
  if (s == nullptr) return Reject("UPDATE", "unknown_event_id", "Unknown event ID");
  if (h->parent_id != s->event.parent_id) {
    return Reject("UPDATE", "parent_changed", "Event unexpectedly changed parent");
  }
  MS_RETURN_IF_ERROR(ParseExport(args, 3, line));
  return Store(*s, true);
}

// EVENT <global-id> <parent-id> <log-type> <event-export>
Status DovecotStatsWriterDecoder::EventLine(std::span<const std::string_view> args,
                                            std::span<char> line) {
  Result<Header> h = ParseHeader(args, true);
  if (!h.ok()) return h.status();
  Result<Stored*> global = LiveOrNone("EVENT", h->id, "unknown_global_event", "global");
  if (!global.ok()) return global.status();
  Result<Stored*> parent = LiveOrNone("EVENT", h->parent_id, "unknown_parent_event", "parent");
  if (!parent.ok()) return parent.status();
  MS_RETURN_IF_ERROR(ParseExport(args, 4, line));
  if (fast_paths_ && !work_->splitter.escaped()) RecordShape(args);
  EmitEvent(h->parent_id, h->level, *global, *parent);
  return Status::Ok();
}

void DovecotStatsWriterDecoder::EmitEvent(std::uint64_t parent_id, Level level, Stored* global,
                                          Stored* parent) {
  Parsed& p = *parsed_;
  p.AddDuration(duration_key_);
  Event& e = *event_;
  e.Clear();
  e.source = Source::kDovecot;
  e.name = p.name;
  e.level = level;
  e.time = ToTimePoint(p.created);
  e.parent_id = parent_id;
  Field* out = e.fields.Append(p.field_count);
  MS_CHECK(out != nullptr);
  std::copy_n(p.fields.begin(), p.field_count, out);
  if (p.truncated) MarkTruncated(e.fields);
  e.categories = p.categories;
  e.parent = parent != nullptr ? &parent->event : nullptr;
  e.global = global != nullptr ? &global->event : nullptr;
  e.source_file = p.source_file;
  e.source_line = p.source_line;
  emitted_ = &e;
}

// --- Line shapes
//
// A process sends the same kinds of events again and again: an EVENT (or a
// BEGIN) line of one kind repeats the source file, name, categories and keys
// of the last, in the same order, and only the numbers and strings between
// them change.
// The general path leaves the shape of such a line: those tokens as sent,
// with their names and places among the fields resolved. A later line whose
// tokens are the same is decoded by comparing them, with no split of the
// line, no name lookup and no search of the fields. Anything else (another
// token, an escape, an `a` item, a bad number, an unknown id) leaves the line
// untouched for the general path, which gives the answer or the error.
// Measured reason: 1,034 -> 944 M instructions for the `capture` stream with
// the 12 metrics (docs/PERFORMANCE.md, "Fifth round: line shapes").

namespace {

// Bounds of one shape; a line past them keeps the general path.
constexpr std::size_t kMaxShapeText = 512;
constexpr std::size_t kMaxShapeItems = 48;

// The tokens of a line as sent, front to back, for the shape path. A token
// holding an escape ends the walk (false), as does asking past the last one.
class RawTokens {
 public:
  explicit RawTokens(std::span<const char> line)
      : line_(line.data()), p_(line.data()), end_(line.data() + line.size()) {}

  bool done() const { return done_; }

  [[gnu::always_inline]] bool Next(std::string_view& token) {
    if (done_) return false;
    bool escaped = false;
    const auto left = static_cast<std::size_t>(end_ - p_);
    const std::size_t at = FindTabInLine(line_, p_, end_, escaped);
    if (escaped) return false;
    token = {p_, at};
    if (at == left) {
      done_ = true;
    } else {
      p_ += at + 1;
    }
    return true;
  }

  // The next token as a decimal number (ParseLineDecimal()).
  template <typename T>
  [[gnu::always_inline]] bool NextDecimal(T& out) {
    std::string_view token;
    return Next(token) && ParseLineDecimal(token, line_, out);
  }

  // Expect(text) where the token and its TAB are `word` under `mask` (see
  // Shape::Item): one compare of eight bytes while eight are left to read.
  [[gnu::always_inline]] bool Expect(std::string_view text, std::uint64_t word,
                                     std::uint64_t mask) {
    if (mask == 0 || done_ || end_ - p_ < 8) return Expect(text);
    std::uint64_t bytes = 0;
    std::memcpy(&bytes, p_, 8);
    if ((bytes & mask) != word) return false;  // with 8 left, the token is not the last
    p_ += text.size() + 1;
    return true;
  }

  // Takes the next token if it is `text`, which holds no TAB or escape.
  [[gnu::always_inline]] bool Expect(std::string_view text) {
    const std::size_t size = text.size();
    if (done_ || static_cast<std::size_t>(end_ - p_) < size || !SameBytes(p_, text)) return false;
    if (p_ + size == end_) {
      done_ = true;
    } else if (p_[size] == '\t') {
      p_ += size + 1;
    } else {
      return false;
    }
    return true;
  }

 private:
  const char* line_;
  const char* p_;
  const char* end_;
  bool done_ = false;
};

// The two slots a line's shape may take, from a hash of its source item's
// file and line number and its number of tokens (events of one kind often
// differ in their fields): two independent picks among four times as many
// slots as shapes, so that three shapes seldom compete for the same two.
// (32 slots, a slot and its neighbour, sent 4.8 % of the capture mix's
// EVENT lines down the general path, recording their shape again each time.)
std::array<std::size_t, 2> ShapeSlots(std::string_view file, std::uint32_t line, std::size_t tokens,
                                      std::size_t slots) {
  std::uint64_t h = NameCacheSlot(file, std::size_t{1} << 30) * 0x9e3779b97f4a7c15ULL;
  h ^= (std::uint64_t{line} << 32) + tokens;
  h *= 0xc2b2ae3d27d4eb4fULL;
  const auto first = static_cast<std::size_t>(h >> 40) & (slots - 1);
  const auto second = static_cast<std::size_t>(h >> 52) & (slots - 1);
  return {first, second != first ? second : first ^ 1};
}

}  // namespace

struct DovecotStatsWriterDecoder::Shape {
  enum class Kind : std::uint8_t { kLastSent, kName, kCategory, kString, kInt, kTimeval, kList };
  struct Item {
    Kind kind;
    std::uint8_t field = 0;   // kString kInt kTimeval kList: its place in Parsed::fields
    Unit unit = Unit::kNone;  // kInt
    std::uint16_t size = 0;   // the token in `text`; none for kLastSent
    std::uint32_t offset = 0;
    // A token of at most 7 bytes and its TAB as one little-endian word, and
    // the mask of their bytes; mask 0 for longer tokens.
    std::uint64_t word = 0;
    std::uint64_t mask = 0;
    bool operator==(const Item&) const = default;
  };
  // The tokens compared, back to back: first the source item ("s<file>"),
  // text[0..source_size), then those of `items`.
  std::string text;
  std::uint16_t source_size = 0;
  std::vector<Item> items;  // after the source item and its line number
  // Which lines it is for, with the source item.
  std::uint32_t source_line = 0;
  std::size_t tokens = 0;
  // What the general path left in Parsed, values aside.
  bool has_name = false;
  NameId name = kNoName;
  CategoryList categories;
  std::vector<NameId> keys;     // Parsed::fields' keys, in order
  std::uint64_t key_bits = 0;   // Parsed::key_bits of those keys
  std::uint64_t last_used = 0;  // lines_by_shape_ when it last decoded a line

  std::string_view Source() const { return {text.data(), source_size}; }
  std::string_view Token(const Item& item) const { return {text.data() + item.offset, item.size}; }
  bool For(std::string_view file, std::uint32_t line, std::size_t line_tokens) const {
    return tokens == line_tokens && source_line == line && Source() == file;
  }
};

// Here, where Shape is complete.
DovecotStatsWriterDecoder::~DovecotStatsWriterDecoder() = default;

void DovecotStatsWriterDecoder::RecordShape(std::span<const std::string_view> args) {
  // EVENT|BEGIN <id> <parent-id> <log-type> <sec> <usec> s<file> <line> ...
  constexpr std::size_t kFirstItem = 6;
  const Parsed& p = *parsed_;
  const std::size_t n = args.size();
  const std::string_view source = n > kFirstItem ? args[kFirstItem] : std::string_view();
  if (p.truncated || n < kFirstItem + 2 || !source.starts_with('s') ||
      source.size() > kMaxShapeText) {
    return;
  }
  // Built aside, so a line without a shape takes no slot from one with.
  if (scratch_shape_ == nullptr) scratch_shape_ = std::make_unique<Shape>();
  Shape& shape = *scratch_shape_;
  shape.text.assign(source);
  shape.source_size = static_cast<std::uint16_t>(source.size());
  shape.items.clear();
  bool ok = true;
  // The item, or nullptr past the bounds (and no shape): nothing kept grows past them.
  auto add = [&](Shape::Kind kind, std::string_view token) -> Shape::Item* {
    if (shape.text.size() + token.size() > kMaxShapeText || shape.items.size() == kMaxShapeItems) {
      ok = false;
      return nullptr;
    }
    Shape::Item item{kind};
    item.offset = static_cast<std::uint32_t>(shape.text.size());
    item.size = static_cast<std::uint16_t>(token.size());
    shape.text.append(token);
    if (!token.empty() && token.size() < 8) {
      char bytes[8] = {};
      std::memcpy(bytes, token.data(), token.size());
      bytes[token.size()] = '\t';
      std::memcpy(&item.word, bytes, 8);
      item.mask = token.size() == 7 ? ~std::uint64_t{0}
                                    : (std::uint64_t{1} << ((token.size() + 1) * 8)) - 1;
    }
    return &shape.items.emplace_back(item);
  };
  for (std::size_t i = kFirstItem + 2; ok && i < n;) {
    const std::string_view item = args[i];
    const char code = item.empty() ? '\0' : item[0];
    switch (code) {
      case 'l':
        add(Shape::Kind::kLastSent, {});
        i += 2;
        break;
      case 'n':
        add(Shape::Kind::kName, item);
        i += 1;
        break;
      case 'c':
        add(Shape::Kind::kCategory, item);
        i += 1;
        break;
      case 'S':
      case 'I':
      case 'T':
      case 'L': {
        Unit unit = Unit::kNone;
        const NameId key = Find(item.substr(1), &unit);
        const auto* end = p.fields.begin() + static_cast<std::ptrdiff_t>(p.field_count);
        const auto* f =
            std::find_if(p.fields.begin(), end, [&](const Field& x) { return x.key == key; });
        MS_CHECK(f != end);  // the general path just placed it
        Shape::Item* added = add(code == 'S'   ? Shape::Kind::kString
                                 : code == 'I' ? Shape::Kind::kInt
                                 : code == 'T' ? Shape::Kind::kTimeval
                                               : Shape::Kind::kList,
                                 item);
        if (added != nullptr) {
          added->field = static_cast<std::uint8_t>(f - p.fields.begin());
          added->unit = unit;
        }
        std::uint32_t count = 0;
        if (code == 'L') ok = ParseDecimal(args[i + 1], count);  // as the general path read it
        i += code == 'T' ? 3 : 2 + count;
        break;
      }
      default:  // a second source item, 'a', an unknown code: no shape
        ok = false;
        break;
    }
  }
  if (!ok) return;
  shape.source_line = p.source_line;
  shape.tokens = n;
  shape.has_name = p.has_name;
  shape.name = p.name;
  shape.categories = p.categories;
  shape.keys.clear();
  for (std::size_t i = 0; i < p.field_count; ++i) shape.keys.push_back(p.fields[i].key);
  shape.key_bits = p.key_bits;
  // Into the slot that holds this very shape, else a free one, else the one
  // used less lately; what it held becomes the next scratch. A line of the
  // same source and tokens but other keys (Dovecot's mail_user_session_finished
  // sends several such) takes the other slot, so both kinds keep a shape. A
  // shape more than kMaxShapes first frees the one used least lately of all.
  const auto [first, second] = ShapeSlots(source, p.source_line, n, kShapeSlots);
  auto same = [&](std::size_t k) {
    const Shape* held = shapes_[k].get();
    return held != nullptr && held->For(source, p.source_line, n) && held->text == shape.text &&
           held->items == shape.items;
  };
  auto older = [&](std::size_t a, std::size_t b) {
    return shapes_[a]->last_used < shapes_[b]->last_used ? a : b;
  };
  std::size_t k;
  std::unique_ptr<Shape> freed;
  if (same(first) || same(second)) {
    k = same(first) ? first : second;
  } else if (shapes_[first] != nullptr && shapes_[second] != nullptr) {
    k = older(first, second);
  } else {
    k = shapes_[first] == nullptr ? first : second;
    if (shape_count_ == kMaxShapes) {
      std::size_t oldest = kShapeSlots;
      for (std::size_t i = 0; i < kShapeSlots; ++i) {
        if (shapes_[i] != nullptr) oldest = oldest == kShapeSlots ? i : older(i, oldest);
      }
      freed = std::move(shapes_[oldest]);
    } else {
      ++shape_count_;
    }
  }
  shape.last_used = lines_by_shape_;
  std::swap(shapes_[k], scratch_shape_);
  if (freed != nullptr) scratch_shape_ = std::move(freed);
}

bool DovecotStatsWriterDecoder::DecodeByShape(std::span<char> line, bool begin) {
  RawTokens t(line);
  Parsed& p = *parsed_;
  p.Reset();
  Header h;
  std::uint32_t type = 0;
  std::string_view sec, usec, file;
  if (!t.Expect(begin ? "BEGIN" : "EVENT") || !t.NextDecimal(h.id) || !t.NextDecimal(h.parent_id) ||
      !t.NextDecimal(type) || type > 5 || !t.Next(sec) || !t.Next(usec) ||
      !ParseLineTimeval(sec, usec, false, p.created) || !t.Next(file) || !file.starts_with('s') ||
      !t.NextDecimal(p.source_line)) {
    return false;
  }
  const std::size_t tokens = CountTabs({line.data(), line.size()}) + 1;
  h.level = LevelOf(type);
  p.has_source = true;
  p.source_file = file.substr(1);
  // The rest of the line by one shape's items, from the tokens after the
  // source item: false at the first that differs.
  auto decode_items = [&p](const Shape& shape, RawTokens rest) {
    for (std::size_t k = 0; k < shape.keys.size(); ++k) p.fields[k].key = shape.keys[k];
    p.last_sent = {};
    std::string_view a, b;
    for (const Shape::Item& item : shape.items) {
      if (item.kind != Shape::Kind::kLastSent &&
          !rest.Expect(shape.Token(item), item.word, item.mask)) {
        return false;
      }
      Value& value = p.fields[item.field].value;
      switch (item.kind) {
        case Shape::Kind::kLastSent:
          if (!rest.Next(a) || !a.starts_with('l') || !rest.Next(b) ||
              !ParseLineTimeval(a.substr(1), b, false, p.last_sent)) {
            return false;
          }
          break;
        case Shape::Kind::kName:
        case Shape::Kind::kCategory:
          break;
        case Shape::Kind::kString:
          if (!rest.Next(a)) return false;
          value.set_string(a);
          break;
        case Shape::Kind::kInt: {
          std::int64_t number = 0;
          if (!rest.NextDecimal(number)) return false;
          value.set_int(number, item.unit);
          break;
        }
        case Shape::Kind::kTimeval: {
          Timeval tv;
          if (!rest.Next(a) || !rest.Next(b) || !ParseLineTimeval(a, b, true, tv)) return false;
          value.set_timeval(tv);
          break;
        }
        case Shape::Kind::kList: {
          // <count> <v1> ... <vN>: with no escape, the elements joined by TAB
          // are the line's bytes from the first to the last.
          std::uint32_t count = 0;
          if (!rest.NextDecimal(count)) return false;
          std::string_view head, last;
          for (std::uint32_t e = 0; e < count; ++e) {
            if (!rest.Next(last)) return false;
            if (e == 0) head = last;
          }
          value.set_string(
              count == 0 ? std::string_view()
                         : std::string_view(
                               head.data(),
                               static_cast<std::size_t>(last.data() + last.size() - head.data())));
          break;
        }
      }
    }
    return rest.done();  // else more items than the shape's
  };
  // Two kinds of line may share a source and a number of tokens: each slot's.
  const auto [first, second] = ShapeSlots(file, p.source_line, tokens, kShapeSlots);
  Shape* shape = nullptr;
  for (const std::size_t k : {first, second}) {
    Shape* held = shapes_[k].get();
    if (held != nullptr && held->For(file, p.source_line, tokens) && decode_items(*held, t)) {
      shape = held;
      break;
    }
  }
  if (shape == nullptr) return false;
  p.has_name = shape->has_name;
  p.name = shape->name;
  p.categories = shape->categories;
  p.field_count = shape->keys.size();
  p.key_bits = shape->key_bits;
  // The checks of Begin() and EventLine(); the general path tells what failed.
  Stored* parent = h.parent_id == 0 ? nullptr : FindLive(h.parent_id);
  if (h.parent_id != 0 && parent == nullptr) return false;
  if (begin) {
    if (h.id == 0 || FindLive(h.id) != nullptr || held_.size() >= options_.max_events ||
        !HoldBegin(h.id, h.parent_id, h.level, parent).ok()) {
      return false;
    }
  } else {
    Stored* global = h.id == 0 ? nullptr : FindLive(h.id);
    if (h.id != 0 && global == nullptr) return false;
    EmitEvent(h.parent_id, h.level, global, parent);
  }
  shape->last_used = ++lines_by_shape_;
  return true;
}

// END <id>
Status DovecotStatsWriterDecoder::End(std::span<const std::string_view> args) {
  std::uint64_t id = 0;
  if (args.size() < 2) return Reject("END", "too_few_fields", "Too few parameters");
  if (!ParseDecimal(args[1], id)) return Reject("END", "invalid_id", "Invalid ID");
  return EndEvent(id);
}

Status DovecotStatsWriterDecoder::EndEvent(std::uint64_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return Reject("END", "unknown_event_id", "Unknown event ID");
  Stored* s = it->second;
  live_.erase(it);
  // Dovecot's children hold a reference on their parent: an ENDed parent
  // stays readable through them until the last one goes.
  s->ended = true;
  Release(s);
  return Status::Ok();
}

void DovecotStatsWriterDecoder::Release(Stored* s) {
  while (s != nullptr && s->ended && s->children == 0) {
    Stored* parent = s->parent;
    const std::size_t slot = s->slot;
    MS_CHECK(slot < held_.size() && held_[slot].get() == s);
    std::unique_ptr<Stored> owned = std::move(held_[slot]);
    if (slot + 1 != held_.size()) {
      held_[slot] = std::move(held_.back());
      held_[slot]->slot = slot;
    }
    held_.pop_back();
    state_bytes_ -= owned->bytes;
    owned->bytes = 0;
    owned->parent = nullptr;
    owned->ended = false;
    if (spare_.size() < kMaxSpare) {
      if (owned->text.capacity() > kMaxKeptTextBytes) std::vector<char>().swap(owned->text);
      spare_.push_back(std::move(owned));
    }
    if (parent != nullptr) --parent->children;
    s = parent;
  }
}

bool DovecotStatsWriterDecoder::CheckInvariantsForTesting() const {
  std::unordered_map<const Stored*, std::size_t> children;
  std::size_t bytes = 0, live = 0, with_parent = 0, linked = 0;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    const Stored& s = *held_[i];
    bytes += s.bytes;
    live += s.ended ? 0 : 1;
    if (s.parent != nullptr) {
      ++children[s.parent];
      ++with_parent;
    }
    if (s.slot != i || (s.ended && s.children == 0) ||  // an unheld ENDed event is freed
        (s.parent == nullptr) != (s.event.parent_id == 0) ||
        s.event.parent != (s.parent != nullptr ? &s.parent->event : nullptr) ||
        (!s.ended && FindLive(s.event.span_id) != &s)) {
      return false;
    }
  }
  for (const auto& h : held_) {
    if (h->children != children[h.get()]) return false;
    linked += h->children;
  }
  return linked == with_parent &&  // so every parent is held
         live == live_.size() && bytes == state_bytes_ && held_.size() <= options_.max_events &&
         state_bytes_ <= options_.max_state_bytes && categories_.size() <= options_.max_categories;
}

}  // namespace mailscope::ingest
