// Reading and adding an event's own fields by key, for decoders and the
// joins after them (qmail_log.cc, qmail_tracker.cc) and the reports built
// on their events. Field values are written in place (Value::set_*).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/event.h"

namespace mailscope::ingest {

// The string field `key` of `e` itself (no parents), or empty.
inline std::string_view StringField(const Event& e, NameId key) {
  const Field* f = e.Find(key);
  return f != nullptr && f->value.type() == Value::Type::kString ? f->value.as_string()
                                                                 : std::string_view();
}

// The integer field `key` of `e` itself into `out`; false when there is none.
inline bool IntField(const Event& e, NameId key, std::int64_t& out) {
  const Field* f = e.Find(key);
  if (f == nullptr || f->value.type() != Value::Type::kInt) return false;
  out = f->value.as_int();
  return true;
}

inline void AddStringField(Event& e, NameId key, std::string_view v) {
  Value x;
  x.set_string(v);
  e.Add(key, x);
}

inline void AddIntField(Event& e, NameId key, std::int64_t v, Unit unit = Unit::kNone) {
  Value x;
  x.set_int(v, unit);
  e.Add(key, x);
}

}  // namespace mailscope::ingest
