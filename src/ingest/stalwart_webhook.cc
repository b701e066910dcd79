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
  dom::element data;  // valid when has_data
  bool has_data = false;
  std::uint64_t key = 0;
};

namespace {

Status Bad(const char* reason, std::string message) { return Rejected(reason, std::move(message)); }

// The hash chain of a dedup key: each part under the hash of what came before.
std::uint64_t Mix(std::uint64_t h, std::string_view bytes) { return HashBytes(bytes, h); }
std::uint64_t Mix(std::uint64_t h, std::uint64_t v) {
  char bytes[8];
  std::memcpy(bytes, &v, sizeof v);
  return HashBytes({bytes, sizeof bytes}, h);
}

// Hashes a value with its JSON type, so that "1" and 1 differ; and checks
// that events nested in it stay within kStalwartMaxNesting.
bool HashValue(dom::element v, int depth, std::uint64_t& h) {
  const auto type = v.type();
  h = Mix(h, static_cast<std::uint64_t>(type));
  switch (type) {
    case dom::element_type::OBJECT: {
      if (depth >= kStalwartMaxNesting) return false;
      // Held in a local: ranging over the temporary result's value would dangle.
      const dom::object object = v.get_object().value_unsafe();
      for (dom::key_value_pair member : object) {
        h = Mix(h, member.key);
        if (!HashValue(member.value, depth + 1, h)) return false;
      }
      return true;
    }
    case dom::element_type::ARRAY: {
      if (depth >= kStalwartMaxNesting) return false;
      const dom::array array = v.get_array().value_unsafe();
      for (dom::element e : array) {
        if (!HashValue(e, depth + 1, h)) return false;
      }
      return true;
    }
    case dom::element_type::STRING:
      h = Mix(h, v.get_string().value_unsafe());
      return true;
    case dom::element_type::INT64:
      h = Mix(h, static_cast<std::uint64_t>(v.get_int64().value_unsafe()));
      return true;
    case dom::element_type::UINT64:
      h = Mix(h, v.get_uint64().value_unsafe());
      return true;
    case dom::element_type::DOUBLE: {
      const double d = v.get_double().value_unsafe();
      std::uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      h = Mix(h, bits);
      return true;
    }
    case dom::element_type::BOOL:
      h = Mix(h, std::uint64_t{v.get_bool().value_unsafe()});
      return true;
    case dom::element_type::NULL_VALUE:
      return true;
  }
  return true;
}

}  // namespace

StalwartWebhookDecoder::StalwartWebhookDecoder(StalwartWebhookOptions options)
    : options_(options),
      names_(NameBudget(NameInput::kStalwartPost, options.max_new_names)),
      json_(std::make_unique<Json>()) {}

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
  if (json_->parser.capacity() > options_.keep_parser_bytes) json_->parser = dom::parser();
  const char* data = body.data();
  if (capacity < body.size() + simdjson::SIMDJSON_PADDING) {
    copy_.resize(body.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(copy_.data(), body.data(), body.size());
    data = copy_.data();
  }
  dom::element root;
  if (auto e = json_->parser.parse(data, body.size(), false).get(root)) {
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
    std::string_view created;
    if (event["type"].get(ref.type) || ref.type.empty()) return bad("no string \"type\"");
    if (event["createdAt"].get(created) || !ParseStalwartTimestamp(created, ref.created)) {
      return bad("no \"createdAt\" of the form YYYY-MM-DDTHH:MM:SSZ");
    }
    std::uint64_t h = Mix(Mix(HashSeed(), ref.type), created);
    dom::element id;
    if (event["id"].get(id) == simdjson::SUCCESS) {
      if (!id.is_string() && !id.is_number()) return bad("\"id\" is neither a string nor a number");
      HashValue(id, 0, h);  // a scalar: never too deep
    }
    if (event["data"].get(ref.data) == simdjson::SUCCESS) {
      if (!ref.data.is_object() && !ref.data.is_null()) return bad("\"data\" is not an object");
      ref.has_data = ref.data.is_object();
      if (!HashValue(ref.data, 0, h)) {
        return Bad("too_deep", "Event " + std::to_string(index) + ": values nested deeper than " +
                                   std::to_string(kStalwartMaxNesting) + " levels");
      }
    }
    ref.key = h;
    ++index;
  }
  return Status::Ok();
}

std::size_t StalwartWebhookDecoder::size() const { return events_.size(); }

std::uint64_t StalwartWebhookDecoder::dedup_key(std::size_t i) const { return events_[i].key; }

Status StalwartWebhookDecoder::Decode(std::size_t i, Event& out) {
  const EventRef& ref = events_[i];
  out.Clear();
  out.source = Source::kStalwart;
  out.name = names_.EventName(ref.type);
  if (out.name == kNoName) {
    return NameRefusedStatus(names_.budget(), "event type", "");
  }
  out.time = TimePoint(std::chrono::seconds(ref.created));
  text_.clear();
  pending_.clear();
  if (ref.has_data) AddObject(kNoName, &ref.data, 0, out);
  // Every array is joined: text_ moves no more, so the views can be made.
  for (const Pending& p : pending_) {
    out.fields.at(p.field).value.set_string(std::string_view(text_).substr(p.offset, p.size));
  }
  return Status::Ok();
}

void StalwartWebhookDecoder::AddObject(NameId parent, const void* object, int depth, Event& out) {
  const dom::element& element = *static_cast<const dom::element*>(object);
  const dom::object members = element.get_object().value_unsafe();
  for (dom::key_value_pair member : members) {
    if (parent == kNoName && member.key == "spanId") {
      std::uint64_t span = 0;
      if (member.value.get(span) == simdjson::SUCCESS) {
        out.span_id = span;
        continue;
      }
    }
    // First occurrence wins, as Stalwart merges; JSON objects rarely repeat
    // a key, but a hand-made body may.
    const NameId key = names_.Key(parent, member.key);
    if (key == kNoName || out.Find(key) != nullptr) continue;
    AddValue(key, member.key, &member.value, depth, out);
  }
}

void StalwartWebhookDecoder::AddValue(NameId key, std::string_view key_text, const void* element,
                                      int depth, Event& out) {
  const dom::element& v = *static_cast<const dom::element*>(element);
  Value value;
  switch (v.type()) {
    case dom::element_type::STRING: {
      const std::string_view s = v.get_string().value_unsafe();
      std::int64_t seconds;
      if (IsStalwartTimestampKey(key_text) && ParseStalwartTimestamp(s, seconds)) {
        value.set_timeval({seconds, 0});
      } else {
        value.set_string(s);
      }
      break;
    }
    case dom::element_type::INT64: {
      const std::int64_t n = v.get_int64().value_unsafe();
      value = n < 0 ? Value::Int(n) : Value::Uint(static_cast<std::uint64_t>(n));
      value = value.WithUnit(StalwartKeyUnit(key_text));
      break;
    }
    case dom::element_type::UINT64:
      value = Value::Uint(v.get_uint64().value_unsafe()).WithUnit(StalwartKeyUnit(key_text));
      break;
    case dom::element_type::DOUBLE:
      value = Value::Double(v.get_double().value_unsafe()).WithUnit(StalwartKeyUnit(key_text));
      break;
    case dom::element_type::BOOL:
      value = Value::Bool(v.get_bool().value_unsafe());
      break;
    case dom::element_type::NULL_VALUE:
      return;
    case dom::element_type::ARRAY: {
      const std::size_t offset = text_.size();
      array_start_ = offset;
      JoinArray(&v);
      // A field past the event's capacity is dropped by Add: nothing to point.
      if (out.fields.size() < FieldList::kCapacity) {
        pending_.push_back({out.fields.size(), offset, text_.size() - offset});
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
        const NameId name = names_.EventName(type);
        value.set_string(name != kNoName ? NameText(name) : type);
        out.Add(key, value);
        AddObject(key, &data, depth + 1, out);
      } else {
        AddObject(key, &v, depth + 1, out);
      }
      return;
    }
  }
  out.Add(key, value);
}

void StalwartWebhookDecoder::Separate() {
  if (text_.size() > array_start_) text_ += '\t';
}

void StalwartWebhookDecoder::JoinArray(const void* array) {
  const dom::element& a = *static_cast<const dom::element*>(array);
  const dom::array elements = a.get_array().value_unsafe();
  for (dom::element e : elements) {
    std::string_view type;
    switch (e.type()) {
      case dom::element_type::STRING:
        Separate();
        text_ += e.get_string().value_unsafe();
        break;
      case dom::element_type::INT64:
        Separate();
        fmt::format_to(std::back_inserter(text_), "{}", e.get_int64().value_unsafe());
        break;
      case dom::element_type::UINT64:
        Separate();
        fmt::format_to(std::back_inserter(text_), "{}", e.get_uint64().value_unsafe());
        break;
      case dom::element_type::DOUBLE:
        Separate();
        fmt::format_to(std::back_inserter(text_), "{}", e.get_double().value_unsafe());
        break;
      case dom::element_type::BOOL:
        Separate();
        text_ += e.get_bool().value_unsafe() ? "true" : "false";
        break;
      case dom::element_type::ARRAY:
        JoinArray(&e);  // flattened into the same list
        break;
      case dom::element_type::OBJECT:
        // A nested event stands for its type; another object for nothing.
        if (e["type"].get(type) == simdjson::SUCCESS) {
          Separate();
          const NameId name = names_.EventName(type);
          text_ += name != kNoName ? NameText(name) : type;
        }
        break;
      case dom::element_type::NULL_VALUE:
        break;
    }
  }
}

}  // namespace mailscope::ingest
