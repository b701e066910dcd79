#include "ingest/stalwart_webhook.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <iterator>

#include "core/hash.h"

namespace mailscope::ingest {

namespace dom = simdjson::dom;

std::size_t StalwartWebhookPadding() { return simdjson::SIMDJSON_PADDING; }

struct StalwartWebhookDecoder::Json {
  dom::parser parser;
};

// An array's joined text, written to text_ while the event is decoded and
// pointed to once text_ no longer moves.
struct StalwartWebhookDecoder::Pending {
  std::size_t field;
  std::size_t offset;
  std::size_t size;
};

struct StalwartWebhookDecoder::EventRef {
  std::string_view type;
  std::int64_t created = 0;
  dom::element id;    // valid when has_id
  dom::element data;  // valid when has_data
  bool has_id = false;
  bool has_data = false;
};

namespace {

Status Bad(const char* reason, std::string message) { return Rejected(reason, std::move(message)); }

// Containers nested in a body before an event's values: the body object,
// "events", the event and its "data".
constexpr std::size_t kEnvelopeDepth = 4;
// Containers a value may nest below "data": a nested event is two (itself
// and its "data"), and kStalwartMaxNesting of them are taken, as in the text
// log; arrays count one each.
constexpr std::size_t kValueDepth = 2 * kStalwartMaxNesting;
// simdjson refuses a body (DEPTH_ERROR) whose containers nest this deep.
constexpr std::size_t kMaxDepth = kEnvelopeDepth + kValueDepth + 1;

template <typename T>
void AppendRaw(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void AppendText(std::string& out, std::string_view text) {
  AppendRaw(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

}  // namespace

StalwartWebhookDecoder::StalwartWebhookDecoder(StalwartWebhookOptions options)
    : options_(options),
      names_(NameBudget(NameInput::kStalwartPost, options.max_new_names)),
      json_(std::make_unique<Json>()) {
  AllocateParser();
}

void StalwartWebhookDecoder::AllocateParser() {
  json_->parser = dom::parser();
  // The depth limit holds as the parser grows: simdjson keeps it.
  if (json_->parser.allocate(64 * 1024, kMaxDepth) != simdjson::SUCCESS) {
    throw std::bad_alloc();
  }
}

StalwartWebhookDecoder::~StalwartWebhookDecoder() = default;

Status StalwartWebhookDecoder::Parse(std::string_view body, std::size_t capacity) {
  events_.clear();
  Status st = ParseBody(body, capacity);
  if (!st.ok()) events_.clear();
  return st;
}

Status StalwartWebhookDecoder::ParseBody(std::string_view body, std::size_t capacity) {
  // A parser sized for a huge batch holds several times its size: give that
  // back before the next body rather than keep it for good.
  if (json_->parser.capacity() > options_.keep_parser_bytes) AllocateParser();
  // So do the buffers a huge event's arrays and dedup layout grew.
  for (std::string* buffer : {&texts_[0], &texts_[1], &key_bytes_}) {
    if (buffer->capacity() > options_.keep_parser_bytes) *buffer = std::string();
  }
  const char* data = body.data();
  if (capacity < body.size() + simdjson::SIMDJSON_PADDING) {
    copy_.resize(body.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(copy_.data(), body.data(), body.size());
    data = copy_.data();
  }
  dom::element root;
  if (auto e = json_->parser.parse(data, body.size(), false).get(root)) {
    // Not the sender's fault: a 400 would have Stalwart re-send the batch
    // (larger) for nothing. The route answers kResourceExhausted with 503.
    if (e == simdjson::MEMALLOC || e == simdjson::CAPACITY) {
      return ResourceExhausted("parser_memory", std::string("No memory to parse the body: ") +
                                                    simdjson::error_message(e));
    }
    if (e == simdjson::DEPTH_ERROR) {
      return Bad("too_deep", "Values nested deeper than " + std::to_string(kValueDepth) +
                                 " arrays or objects below an event's data");
    }
    return Bad("bad_json", std::string("Invalid JSON: ") + simdjson::error_message(e));
  }
  if (copy_.size() > options_.keep_parser_bytes) {
    // The copy is only read through the parser's own buffers from here on.
    copy_ = {};
  }
  dom::object top;
  dom::array events;
  if (root.get(top) || top["events"].get(events)) {
    return Bad("bad_batch", "The body is not an object with an \"events\" array");
  }
  std::size_t index = 0;
  for (dom::element element : events) {
    auto bad = [&](std::string_view what) {
      return Bad("bad_event", "Event " + std::to_string(index) + ": " + std::string(what));
    };
    dom::object event;
    if (element.get(event)) return bad("not an object");
    EventRef& ref = events_.emplace_back();
    bool created = false;
    bool data_seen = false;
    // One pass over the members; the first of a repeated one counts.
    for (dom::key_value_pair member : event) {
      const dom::element v = member.value;
      if (member.key == "type" && ref.type.empty()) {
        if (v.get(ref.type) || ref.type.empty()) return bad("no string \"type\"");
      } else if (member.key == "createdAt" && !created) {
        std::string_view text;
        if (v.get(text) || !ParseStalwartTimestamp(text, ref.created)) {
          return bad("no \"createdAt\" of the form YYYY-MM-DDTHH:MM:SSZ");
        }
        created = true;
      } else if (member.key == "id" && !ref.has_id) {
        if (!v.is_string() && !v.is_number()) return bad("\"id\" is neither a string nor a number");
        ref.id = v;
        ref.has_id = true;
      } else if (member.key == "data" && !data_seen) {
        data_seen = true;
        if (!v.is_object() && !v.is_null()) return bad("\"data\" is not an object");
        ref.data = v;
        ref.has_data = v.is_object();
      }
    }
    if (ref.type.empty()) return bad("no string \"type\"");
    if (!created) return bad("no \"createdAt\" of the form YYYY-MM-DDTHH:MM:SSZ");
    ++index;
  }
  return Status::Ok();
}

std::size_t StalwartWebhookDecoder::size() const { return events_.size(); }

Status StalwartWebhookDecoder::Decode(std::size_t i, Event& out) {
  const EventRef& ref = events_[i];
  out.Clear();
  out.source = Source::kStalwart;
  out.name = names_.EventName(ref.type);
  if (out.name == kNoName) {
    return NameRefusedStatus(names_.budget(), "event type", "");
  }
  out.time = TimePoint(std::chrono::seconds(ref.created));
  // Events i and i + 1 each have their own: a caller may hold one while it
  // decodes the next.
  text_ = &texts_[i % 2];
  text_->clear();
  pending_.clear();
  if (ref.has_data) {
    current_shape_ = &shapes_[out.name];
    keys_seen_ = 0;
    span_seen_ = false;
    AddObject(kNoName, &ref.data, out);
  }
  // Every array is joined: text_ moves no more, so the views can be made.
  for (const Pending& p : pending_) {
    out.fields.at(p.field).value.set_string(std::string_view(*text_).substr(p.offset, p.size));
  }
  MakeDedupKey(ref, out);
  return Status::Ok();
}

void StalwartWebhookDecoder::MakeDedupKey(const EventRef& ref, const Event& out) {
  // The event as sent, in one buffer hashed once: type, createdAt, id, then
  // spanId and the fields (key, type, unit and value) as decoded. Data that
  // differs decodes differently: a value's JSON type gives its Value type,
  // nested keys their own names.
  std::string& b = key_bytes_;
  b.clear();
  AppendText(b, ref.type);
  AppendRaw(b, ref.created);
  if (ref.has_id) {
    const dom::element& id = ref.id;
    AppendRaw(b, static_cast<std::uint8_t>(id.type()));
    if (id.is_string()) {
      AppendText(b, id.get_string().value_unsafe());
    } else if (id.is_double()) {
      AppendRaw(b, id.get_double().value_unsafe());
    } else if (id.is_int64()) {
      AppendRaw(b, id.get_int64().value_unsafe());
    } else {
      AppendRaw(b, id.get_uint64().value_unsafe());
    }
  }
  AppendRaw(b, out.span_id);
  for (const Field& f : out.fields) {
    AppendRaw(b, f.key);
    AppendRaw(b, static_cast<std::uint8_t>(f.value.type()));
    AppendRaw(b, static_cast<std::uint8_t>(f.value.unit()));
    switch (f.value.type()) {
      case Value::Type::kString:
        AppendText(b, f.value.as_string());
        break;
      case Value::Type::kTimeval:
        AppendRaw(b, f.value.as_timeval().sec);
        break;
      case Value::Type::kDouble:
        AppendRaw(b, f.value.as_double());
        break;
      case Value::Type::kInt:
        AppendRaw(b, f.value.as_int());
        break;
      case Value::Type::kBool:
        AppendRaw(b, static_cast<std::uint8_t>(f.value.as_bool()));
        break;
      default:  // kUint
        AppendRaw(b, f.value.as_uint());
        break;
    }
  }
  key_ = HashBytes(b);
}

void StalwartWebhookDecoder::AddObject(NameId parent, const void* object, Event& out) {
  const dom::element& element = *static_cast<const dom::element*>(object);
  const dom::object members = element.get_object().value_unsafe();
  std::size_t position = 0;
  for (dom::key_value_pair member : members) {
    if (parent == kNoName && member.key == "spanId") {
      // The first spanId that is an unsigned integer is the span; another
      // value stays a field, a later one is dropped like any repeated key.
      std::uint64_t span = 0;
      if (member.value.get(span) == simdjson::SUCCESS) {
        if (!span_seen_) out.span_id = span;
        span_seen_ = true;
        continue;
      }
    }
    KeyInfo key;
    if (parent == kNoName) {
      key = TopKey(position++, member.key);
    } else {
      key = {names_.Key(parent, member.key), StalwartKeyUnit(member.key),
             IsStalwartTimestampKey(member.key)};
    }
    if (key.id == kNoName) continue;
    // First occurrence wins, as Stalwart merges; JSON objects rarely repeat
    // a key, but a hand-made body may. A bit per key's id modulo 64 tells
    // most keys new without a search.
    const std::uint64_t bit = std::uint64_t{1} << (key.id % 64);
    if ((keys_seen_ & bit) != 0 && out.Find(key.id) != nullptr) continue;
    keys_seen_ |= bit;
    AddValue(key, &member.value, out);
  }
}

StalwartWebhookDecoder::KeyInfo StalwartWebhookDecoder::TopKey(std::size_t position,
                                                               std::string_view key) {
  // Events of a type carry their keys in one order: the key at this
  // position last time is compared first, which costs no hashing.
  Shape& shape = *current_shape_;
  if (position < shape.size() && shape[position].first == key) return shape[position].second;
  const KeyInfo info{names_.Key(kNoName, key), StalwartKeyUnit(key), IsStalwartTimestampKey(key)};
  if (info.id == kNoName || position > shape.size() || position >= kMaxShapeKeys) return info;
  if (position == shape.size()) {
    shape.emplace_back(std::string(key), info);
  } else {
    shape[position] = {std::string(key), info};
  }
  return info;
}

void StalwartWebhookDecoder::AddValue(const KeyInfo& key, const void* element, Event& out) {
  const dom::element& v = *static_cast<const dom::element*>(element);
  Value value;
  switch (v.type()) {
    case dom::element_type::STRING: {
      const std::string_view s = v.get_string().value_unsafe();
      std::int64_t seconds;
      if (key.timestamp && ParseStalwartTimestamp(s, seconds)) {
        value.set_timeval({seconds, 0});
      } else {
        value.set_string(s);
      }
      break;
    }
    case dom::element_type::INT64: {
      const std::int64_t n = v.get_int64().value_unsafe();
      value = n < 0 ? Value::Int(n) : Value::Uint(static_cast<std::uint64_t>(n));
      value = value.WithUnit(key.unit);
      break;
    }
    case dom::element_type::UINT64:
      value = Value::Uint(v.get_uint64().value_unsafe()).WithUnit(key.unit);
      break;
    case dom::element_type::DOUBLE:
      value = Value::Double(v.get_double().value_unsafe()).WithUnit(key.unit);
      break;
    case dom::element_type::BOOL:
      value = Value::Bool(v.get_bool().value_unsafe());
      break;
    case dom::element_type::NULL_VALUE:
      return;
    case dom::element_type::ARRAY: {
      const std::size_t offset = text_->size();
      array_start_ = offset;
      JoinArray(&v);
      // A field past the event's capacity is dropped by Add: nothing to point.
      if (out.fields.size() < FieldList::kCapacity) {
        pending_.push_back({out.fields.size(), offset, text_->size() - offset});
      }
      value.set_string({});
      break;
    }
    case dom::element_type::OBJECT: {
      // A nested event ({"type": ..., "data": {...}}): the key names its
      // type, its keys follow under `key.`. Another object: its members
      // under `key.`, the key itself holds nothing.
      dom::object object = v.get_object().value_unsafe();
      std::string_view type;
      dom::element data;
      if (object["type"].get(type) == simdjson::SUCCESS &&
          object["data"].get(data) == simdjson::SUCCESS && data.is_object()) {
        value.set_string(StalwartTypeSpelling(type));
        out.Add(key.id, value);
        AddObject(key.id, &data, out);
      } else {
        AddObject(key.id, &v, out);
      }
      return;
    }
  }
  out.Add(key.id, value);
}

void StalwartWebhookDecoder::Separate() {
  if (text_->size() > array_start_) *text_ += '\t';
}

void StalwartWebhookDecoder::JoinArray(const void* array) {
  const dom::element& a = *static_cast<const dom::element*>(array);
  const dom::array elements = a.get_array().value_unsafe();
  for (dom::element e : elements) {
    std::string_view type;
    switch (e.type()) {
      case dom::element_type::STRING:
        Separate();
        *text_ += e.get_string().value_unsafe();
        break;
      case dom::element_type::INT64:
        Separate();
        fmt::format_to(std::back_inserter(*text_), "{}", e.get_int64().value_unsafe());
        break;
      case dom::element_type::UINT64:
        Separate();
        fmt::format_to(std::back_inserter(*text_), "{}", e.get_uint64().value_unsafe());
        break;
      case dom::element_type::DOUBLE:
        Separate();
        fmt::format_to(std::back_inserter(*text_), "{}", e.get_double().value_unsafe());
        break;
      case dom::element_type::BOOL:
        Separate();
        *text_ += e.get_bool().value_unsafe() ? "true" : "false";
        break;
      case dom::element_type::ARRAY:
        JoinArray(&e);  // flattened into the same list
        break;
      case dom::element_type::OBJECT:
        // A nested event stands for its type; another object for nothing.
        if (e["type"].get(type) == simdjson::SUCCESS) {
          Separate();
          *text_ += StalwartTypeSpelling(type);
        }
        break;
      case dom::element_type::NULL_VALUE:
        break;
    }
  }
}

}  // namespace mailscope::ingest
