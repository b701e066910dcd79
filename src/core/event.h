// Event: the one normalized record that crosses from decoding to consuming.
// Every decoder produces Events; every consumer reads them and never parses bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "core/clock.h"
#include "core/names.h"

namespace mailscope {

// Where an event came from. The names are the `source` label of
// mailscope_events_total and mailscope_ingest_rejected_total.
enum class Source : std::uint8_t {
  kDovecotOldStats,  // Dovecot old_stats mail-process / auth FIFOs
  kDovecot,          // Dovecot 2.3 stats-writer and event exporter input
  kExim,             // Exim event_action over readsocket
  kStalwart,         // Stalwart webhook
  kQmailLog,
  kEximLog,
  kStalwartLog,
};
inline constexpr int kSourceCount = 7;
std::string_view SourceName(Source source);
// The Source whose SourceName() is `name`; false when there is none.
bool ParseSourceName(std::string_view name, Source& out);

// Severity, least first. kFatal and kPanic exist for Dovecot's log types;
// Stalwart's levels stop at kError.
enum class Level : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kFatal, kPanic };
std::string_view LevelName(Level level);
// The Level whose LevelName() is `name`; false when there is none.
bool ParseLevelName(std::string_view name, Level& out);

// A (sec, usec) pair kept exactly as a C struct timeval, because Dovecot's
// arithmetic and text form depend on the unnormalized parts.
struct Timeval {
  std::int64_t sec = 0;
  std::int64_t usec = 0;
  friend bool operator==(const Timeval&, const Timeval&) = default;
};

// The layout of a record value: named, typed columns at fixed offsets of a
// binary struct, as some wire formats carry them (Dovecot's old-stats
// payload is a raw C struct). Schemas are static data (see src/catalog).
struct RecordColumn {
  enum class Type : std::uint8_t { kU32, kU64, kTimeval };
  std::string_view name;
  Type type;
  std::size_t offset;
};
struct RecordSchema {
  std::string_view name;
  std::size_t size;  // bytes of the struct
  const RecordColumn* columns;
  std::size_t column_count;
};

// The unit a source gives a number in. Decoders tag the numbers whose unit
// their source defines (Dovecot's `duration` counts microseconds, Stalwart's
// `elapsed` milliseconds); everything else stays kNone and means "as sent".
// Units of one kind convert to one another through the kind's base unit.
enum class Unit : std::uint8_t { kNone, kMicroseconds, kMilliseconds, kSeconds, kBytes };
enum class UnitKind : std::uint8_t { kNone, kTime, kSize };
std::string_view UnitName(Unit unit);  // "us", "ms", "s", "bytes"; "" for kNone
constexpr UnitKind KindOf(Unit unit) {
  return unit == Unit::kNone    ? UnitKind::kNone
         : unit == Unit::kBytes ? UnitKind::kSize
                                : UnitKind::kTime;
}
// The base unit of a kind: microseconds for time (Dovecot's unit, and what a
// duration literal of the filter language converts to), bytes for size.
constexpr Unit BaseUnit(UnitKind kind) {
  return kind == UnitKind::kTime   ? Unit::kMicroseconds
         : kind == UnitKind::kSize ? Unit::kBytes
                                   : Unit::kNone;
}
// What one `unit` is in its kind's base unit; 1 for kNone.
constexpr std::uint64_t BaseFactor(Unit unit) {
  return unit == Unit::kMilliseconds ? 1000 : unit == Unit::kSeconds ? 1000 * 1000 : 1;
}

// A typed field value, with the unit its source gave it (kNone unless a
// decoder tags it; meaningful for numbers only). Strings and records are
// views into the decoder's buffer and are valid only while the event is
// being dispatched. Trivially copyable, 24 bytes.
class Value {
 public:
  enum class Type : std::uint8_t { kNone, kInt, kUint, kDouble, kString, kTimeval, kBool, kRecord };

  Value() = default;
  static Value Int(std::int64_t v) {
    Value x(Type::kInt);
    x.u_.i = v;
    return x;
  }
  static Value Uint(std::uint64_t v) {
    Value x(Type::kUint);
    x.u_.u = v;
    return x;
  }
  static Value Double(double v) {
    Value x(Type::kDouble);
    x.u_.d = v;
    return x;
  }
  static Value Bool(bool v) {
    Value x(Type::kBool);
    x.u_.u = v ? 1 : 0;
    return x;
  }
  static Value String(std::string_view v) {
    Value x(Type::kString);
    x.u_.s = {v.data(), v.size()};
    return x;
  }
  static Value Tv(Timeval tv) {
    Value x(Type::kTimeval);
    x.u_.tv = tv;
    return x;
  }
  // REQUIRES: `data` holds schema->size bytes, alive while the value is used.
  static Value Record(const RecordSchema* schema, const void* data) {
    Value x(Type::kRecord);
    x.u_.r = {schema, data};
    return x;
  }

  // The same value tagged with `unit`.
  Value WithUnit(Unit unit) const {
    Value x = *this;
    x.unit_ = unit;
    return x;
  }

  // The same as assigning Int(v).WithUnit(unit), Tv(tv), String(v), written
  // in place: decoders fill fields with these, and a temporary copied in
  // costs a store-forwarding stall per field.
  void set_int(std::int64_t v, Unit unit = Unit::kNone) {
    u_.tv = {};
    u_.i = v;
    type_ = Type::kInt;
    unit_ = unit;
  }
  void set_uint(std::uint64_t v) {
    u_.tv = {};
    u_.u = v;
    type_ = Type::kUint;
    unit_ = Unit::kNone;
  }
  void set_bool(bool v) {
    u_.tv = {};
    u_.u = v ? 1 : 0;
    type_ = Type::kBool;
    unit_ = Unit::kNone;
  }
  void set_record(const RecordSchema* schema, const void* data) {
    u_.r = {schema, data};
    type_ = Type::kRecord;
    unit_ = Unit::kNone;
  }
  void set_timeval(Timeval tv) {
    u_.tv = tv;
    type_ = Type::kTimeval;
    unit_ = Unit::kNone;
  }
  void set_string(std::string_view v) {
    u_.s = {v.data(), v.size()};
    type_ = Type::kString;
    unit_ = Unit::kNone;
  }

  Type type() const { return type_; }
  Unit unit() const { return unit_; }
  // REQUIRES: the matching type.
  std::int64_t as_int() const { return u_.i; }
  std::uint64_t as_uint() const { return u_.u; }
  double as_double() const { return u_.d; }
  bool as_bool() const { return u_.u != 0; }
  std::string_view as_string() const { return {u_.s.data, u_.s.size}; }
  Timeval as_timeval() const { return u_.tv; }
  const RecordSchema* record_schema() const { return u_.r.schema; }
  const void* record_data() const { return u_.r.data; }
  // A column of a record value, decoded (unaligned-safe).
  Value RecordColumnValue(const RecordColumn& column) const;

 private:
  explicit Value(Type t) : type_(t) {}
  struct Str {
    const char* data;
    std::size_t size;
  };
  struct Rec {
    const RecordSchema* schema;
    const void* data;
  };
  union U {
    std::int64_t i;
    std::uint64_t u;
    double d;
    Str s;
    Timeval tv;
    Rec r;
  } u_{};
  Type type_ = Type::kNone;
  Unit unit_ = Unit::kNone;  // in the padding after type_
};
static_assert(sizeof(Value) == 24);
static_assert(std::is_trivially_copyable_v<Value>);

struct Field {
  NameId key = kNoName;
  Value value;
};

// The fields of one event, stored inline: filling them never allocates.
// Fields past the capacity are dropped and the list is marked truncated.
class FieldList {
 public:
  static constexpr std::size_t kCapacity = 96;

  void clear() {
    size_ = 0;
    truncated_ = false;
  }
  void push_back(const Field& f) {
    if (size_ == kCapacity) {
      truncated_ = true;
      return;
    }
    data_[size_++] = f;
  }
  // Appends a field with `key` and returns its value for setting in place.
  // When the list is full, the list is marked truncated and the value set
  // goes to a scratch slot that nothing reads.
  Value& AppendValue(NameId key) {
    Field* f = Append(1);
    if (f == nullptr) return spill_.value;
    f->key = key;
    return f->value;
  }
  // Appends n default fields and returns them for filling in place, or
  // nullptr (and marks the list truncated) when they do not fit.
  Field* Append(std::size_t n) {
    if (kCapacity - size_ < n) {
      truncated_ = true;
      return nullptr;
    }
    Field* f = data_.data() + size_;
    size_ += n;
    return f;
  }
  // REQUIRES: n <= size().
  void resize(std::size_t n) { size_ = n; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool truncated() const { return truncated_; }
  const Field* begin() const { return data_.data(); }
  const Field* end() const { return data_.data() + size_; }
  const Field& operator[](std::size_t i) const { return data_[i]; }
  // For a decoder that completes a field after adding it. REQUIRES: i < size().
  Field& at(std::size_t i) { return data_[i]; }

 private:
  std::array<Field, kCapacity> data_;
  std::size_t size_ = 0;
  bool truncated_ = false;
  Field spill_;  // where AppendValue() writes once full
};

// The categories of one event (Dovecot's), stored inline. A decoder adds
// each category together with all its ancestors, so a test for a category
// matches its descendants too. Categories past the capacity are dropped.
class CategoryList {
 public:
  static constexpr std::size_t kCapacity = 16;
  void clear() { size_ = 0; }
  void push_back(NameId c) {
    if (size_ < kCapacity) data_[size_++] = c;
  }
  bool contains(NameId c) const {
    for (std::size_t i = 0; i < size_; ++i)
      if (data_[i] == c) return true;
    return false;
  }
  std::size_t size() const { return size_; }
  const NameId* begin() const { return data_.data(); }
  const NameId* end() const { return data_.data() + size_; }

 private:
  std::array<NameId, kCapacity> data_{};
  std::size_t size_ = 0;
};

// A normalized field name of the taxonomy ("remote_ip") and the field of the
// source system that carries it ("sender_host_address").
struct FieldAlias {
  NameId normalized = kNoName;
  NameId field = kNoName;
};

// Where an event sits in the catalog's common taxonomy (src/catalog): its
// kind ("auth"), its outcome ("failure") and its normalized field names.
// kNoName when unknown or not applicable. Filled by the catalog's router
// before any consumer sees the event; `aliases` points into the router's
// tables and stays valid while the router lives. Trivially copyable.
struct Taxonomy {
  NameId kind = kNoName;
  NameId outcome = kNoName;
  const FieldAlias* aliases = nullptr;
  std::uint32_t alias_count = 0;

  // The source field a normalized name maps to, or kNoName.
  NameId FieldFor(NameId normalized) const {
    for (std::uint32_t i = 0; i < alias_count; ++i)
      if (aliases[i].normalized == normalized) return aliases[i].field;
    return kNoName;
  }
};
static_assert(std::is_trivially_copyable_v<Taxonomy>);

// Thread-compatible. Decoders reuse one Event per stream (clear + refill), so
// the steady state allocates nothing.
struct Event {
  Source source = Source::kDovecotOldStats;
  NameId name = kNoName;  // the source system's own event name
  Level level = Level::kInfo;
  TimePoint time{};  // when it happened, or when it was received
  std::uint64_t span_id = 0;
  std::uint64_t parent_id = 0;
  FieldList fields;
  CategoryList categories;
  // Where lookups continue when a field or category is not on this event:
  // the parent chain, then the global event and its parents (Dovecot's event
  // model). Valid during dispatch only; nullptr when there is none.
  const Event* parent = nullptr;
  const Event* global = nullptr;
  // Where the event was emitted, when the source says ("imap-client.c", 1016).
  std::string_view source_file;
  std::uint32_t source_line = 0;
  Taxonomy taxonomy;  // set by routing; empty until then
  // Where the event was read, when its source can name that place durably:
  // a log line's file (origin_stream, never 0 then) and offset (origin_seq).
  // Outputs that keep events key them by it, so that an event read again
  // after a crash is kept once. 0 when the source cannot say.
  std::uint64_t origin_stream = 0;
  std::uint64_t origin_seq = 0;

  void Clear() {
    name = kNoName;
    level = Level::kInfo;
    time = {};
    span_id = parent_id = 0;
    fields.clear();
    categories.clear();
    parent = global = nullptr;
    source_file = {};
    source_line = 0;
    taxonomy = {};
    origin_stream = origin_seq = 0;
  }
  void Add(NameId key, Value v) { fields.push_back({key, v}); }
  // Appends a field whose value the caller then sets in place (set_string,
  // set_uint, ...): what hot decoders use, since copying a Value just built
  // on the stack costs a store-forwarding stall per field. When the list is
  // full, the value set lands in a scratch slot and the list is truncated.
  Value& AddInPlace(NameId key) { return fields.AppendValue(key); }
  // Returns the first field with this key, or nullptr.
  const Field* Find(NameId key) const {
    for (const Field& f : fields)
      if (f.key == key) return &f;
    return nullptr;
  }
  // The value of the first field with this key that holds one (kNone fields
  // are passed over), or nullptr: what FindHere() finds among the fields,
  // before any record's columns.
  const Value* OwnValue(NameId key) const {
    if (key == kNoName) return nullptr;
    for (const Field& f : fields)
      if (f.key == key && f.value.type() != Value::Type::kNone) return &f.value;
    return nullptr;
  }
  // Looks `key` up among the fields, then among the columns of record
  // fields. A kNone value when absent.
  Value Lookup(std::string_view key) const;

  // Dovecot's event_find_field_recursive(): the field on this event (its
  // fields, then the columns of its record fields), then on each parent, then
  // on the global event and its parents. `key` is NameText(id). Chains are
  // followed for at most kMaxChain events. Never allocates.
  static constexpr int kMaxChain = 256;
  bool FindInChain(NameId id, std::string_view key, Value& out) const;

  // Dovecot's lookup order: calls visit(const Event&) on this event and its
  // parents, then on the global event and its parents (at most kMaxChain
  // events of each chain), until visit returns true. Returns whether it did.
  template <typename Visit>
  bool VisitChain(Visit&& visit) const {
    for (const Event* chain : {this, global}) {
      int hops = 0;
      for (const Event* e = chain; e != nullptr && hops < kMaxChain; e = e->parent, ++hops) {
        if (visit(*e)) return true;
      }
    }
    return false;
  }
  // The same on this event alone.
  bool FindHere(NameId id, std::string_view key, Value& out) const;
};

}  // namespace mailscope
