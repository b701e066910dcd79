// RecordEventBuilder: a record read back from a store made into an Event
// again, so that mailscope's filter language, the taxonomy and the event
// text format work on records as on live events (`mailscope events`).
//
// The fields come from the record's JSON (record.h): numbers as kInt, kUint
// or kDouble, booleans, strings ({"base64": ...} decoded back to its bytes),
// with the units of the `units` column; timevals come back as the strings
// they were stored as. A record whose message id came from another field
// (Exim's message_exim_id) gets a `message_id` field as well, last. Categories come back from their
// JSON array; the taxonomy is routed anew through the catalog. Names are interned as they come (a
// reading process has the name table to itself).
#pragma once

#include <simdjson.h>

#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/event_router.h"
#include "core/event.h"
#include "core/status.h"
#include "store/record.h"

namespace mailscope::store {

class RecordEventBuilder {
 public:
  RecordEventBuilder();

  // Fills `event` from `record`. The event's strings point into the builder
  // and `record`, valid until the next Build(). A record whose JSON does not
  // parse is an error (reason "record_corrupt").
  Status Build(const RecordView& record, Event& event);

 private:
  // Starts `doc` on a copy of `json` with simdjson's padding.
  Status Iterate(std::string_view json, const char* what, simdjson::ondemand::document& doc);
  Status ParseFields(std::string_view json, Event& event);
  Status ParseUnits(std::string_view json);
  Status ParseCategories(std::string_view json, Event& event);

  catalog::EventRouter router_;
  simdjson::ondemand::parser parser_;
  std::string padded_;
  std::deque<std::string> strings_;  // unescaped strings, stable while the event is used
  std::size_t strings_used_ = 0;
  std::vector<std::pair<NameId, Unit>> units_;  // of the record being built
};

}  // namespace mailscope::store
