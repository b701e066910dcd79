#include "store/record_event.h"

#include <fmt/format.h>

#include <cstring>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/event_control.h"
#include "core/base64.h"
#include "core/check.h"

namespace mailscope::store {
namespace {

namespace od = simdjson::ondemand;

catalog::EventControl DefaultControl() {
  auto control = catalog::EventControl::Build(catalog::Catalog::Get(), {});
  MS_CHECK(control.ok());
  return std::move(*control);
}

Status Corrupt(std::string_view what, simdjson::error_code e) {
  return Rejected("record_corrupt",
                  fmt::format("{} of a record: {}", what, simdjson::error_message(e)));
}

// Past the document's value, current_location() is out of bounds unless more follows.
bool TrailingBytes(od::document& doc) {
  const char* trailing = nullptr;
  return doc.current_location().get(trailing) == simdjson::SUCCESS;
}

Unit UnitNamed(std::string_view name) {
  for (Unit u : {Unit::kMicroseconds, Unit::kMilliseconds, Unit::kSeconds, Unit::kBytes})
    if (UnitName(u) == name) return u;
  return Unit::kNone;
}

}  // namespace

RecordEventBuilder::RecordEventBuilder() : router_(catalog::Catalog::Get(), DefaultControl()) {}

Status RecordEventBuilder::Build(const RecordView& r, Event& event) {
  event.Clear();
  strings_used_ = 0;
  event.source = r.source;
  event.level = r.level;
  event.name = InternName(r.event);
  event.time = TimePoint(std::chrono::microseconds(r.time_us));
  units_.clear();
  if (!r.units.empty()) MS_RETURN_IF_ERROR(ParseUnits(r.units));
  MS_RETURN_IF_ERROR(ParseFields(r.fields, event));
  // The record's message id, when the source calls it otherwise (Exim's
  // message_exim_id), is a field too: `message_id=...` finds a message's
  // records whatever the server, through the column's index.
  static const NameId kMessageId = InternName("message_id");
  if (!r.message_id.empty() && event.Find(kMessageId) == nullptr)
    event.Add(kMessageId, Value::String(r.message_id));
  if (!r.categories.empty()) MS_RETURN_IF_ERROR(ParseCategories(r.categories, event));
  // Old-stats records belong to no system of the catalog: no taxonomy.
  if (catalog::SystemOf(event.source).has_value()) event.taxonomy = router_.Route(event).taxonomy;
  return Status::Ok();
}

Status RecordEventBuilder::Iterate(std::string_view json, const char* what,
                                   simdjson::ondemand::document& doc) {
  padded_.assign(json);
  padded_.resize(json.size() + simdjson::SIMDJSON_PADDING);
  if (auto e =
          parser_.iterate(simdjson::padded_string_view(padded_.data(), json.size(), padded_.size()))
              .get(doc))
    return Corrupt(what, e);
  return Status::Ok();
}

Status RecordEventBuilder::ParseFields(std::string_view json, Event& event) {
  od::document doc;
  MS_RETURN_IF_ERROR(Iterate(json, "the fields", doc));
  od::object object;
  if (auto e = doc.get_object().get(object)) return Corrupt("the fields", e);
  auto keep = [this](std::string_view s) -> std::string_view {
    if (strings_used_ == strings_.size()) strings_.emplace_back();
    std::string& slot = strings_[strings_used_++];
    slot.assign(s);
    return slot;
  };
  for (auto field : object) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Corrupt("a field name", e);
    const NameId id = InternName(key);
    od::value v;
    if (auto e = field.value().get(v)) return Corrupt("a field", e);
    od::json_type type;
    if (auto e = v.type().get(type)) return Corrupt("a field", e);
    switch (type) {
      case od::json_type::string: {
        std::string_view s;
        if (auto e = v.get_string().get(s)) return Corrupt("a field", e);
        event.Add(id, Value::String(keep(s)));
        break;
      }
      case od::json_type::number: {
        od::number n;
        if (auto e = v.get_number().get(n)) return Corrupt("a field", e);
        Unit unit = Unit::kNone;
        for (const auto& [name, u] : units_)
          if (name == id) unit = u;
        if (n.is_int64()) {
          event.Add(id, Value::Int(n.get_int64()).WithUnit(unit));
        } else if (n.is_uint64()) {
          event.Add(id, Value::Uint(n.get_uint64()).WithUnit(unit));
        } else {
          event.Add(id, Value::Double(n.get_double()).WithUnit(unit));
        }
        break;
      }
      case od::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b)) return Corrupt("a field", e);
        event.Add(id, Value::Bool(b));
        break;
      }
      case od::json_type::object: {
        od::object o;
        std::string_view b64;
        if (auto e = v.get_object().get(o)) return Corrupt("a field", e);
        if (auto e = o["base64"].get_string().get(b64)) return Corrupt("a base64 field", e);
        std::string& slot =
            strings_used_ == strings_.size() ? strings_.emplace_back() : strings_[strings_used_];
        ++strings_used_;
        slot.resize(Base64DecodedSize(b64.size()));
        const std::ptrdiff_t n = Base64DecodeTo(b64, reinterpret_cast<std::uint8_t*>(slot.data()));
        if (n < 0) return Rejected("record_corrupt", "a base64 field of a record does not decode");
        slot.resize(static_cast<std::size_t>(n));
        event.Add(id, Value::String(slot));
        break;
      }
      case od::json_type::null:
        break;  // a double that was not finite
      default:
        return Rejected("record_corrupt", fmt::format("field {} of a record is an array", key));
    }
  }
  if (TrailingBytes(doc)) return Rejected("record_corrupt", "bytes after the fields of a record");
  return Status::Ok();
}

Status RecordEventBuilder::ParseUnits(std::string_view json) {
  od::document doc;
  MS_RETURN_IF_ERROR(Iterate(json, "the units", doc));
  od::object object;
  if (auto e = doc.get_object().get(object)) return Corrupt("the units", e);
  for (auto field : object) {
    std::string_view key, unit;
    if (auto e = field.unescaped_key().get(key)) return Corrupt("the units", e);
    if (auto e = field.value().get_string().get(unit)) return Corrupt("the units", e);
    units_.emplace_back(InternName(key), UnitNamed(unit));
  }
  if (TrailingBytes(doc)) return Rejected("record_corrupt", "bytes after the units of a record");
  return Status::Ok();
}

Status RecordEventBuilder::ParseCategories(std::string_view json, Event& event) {
  od::document doc;
  MS_RETURN_IF_ERROR(Iterate(json, "the categories", doc));
  od::array array;
  if (auto e = doc.get_array().get(array)) return Corrupt("the categories", e);
  for (auto item : array) {
    std::string_view c;
    if (auto e = item.get_string().get(c)) return Corrupt("the categories", e);
    event.categories.push_back(InternName(c));
  }
  if (TrailingBytes(doc))
    return Rejected("record_corrupt", "bytes after the categories of a record");
  return Status::Ok();
}

}  // namespace mailscope::store
