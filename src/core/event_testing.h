// An event as one line of text, for tests and fuzz targets that compare
// what two decoders made of the same input, field for field.
#pragma once

#include <sstream>
#include <string>

#include "core/event.h"
#include "core/names.h"

namespace mailscope {

// Name, level, time, ids, the parent's and global event's span ids, source
// location, categories, and every field with its type, unit and value.
inline std::string DescribeEventForTesting(const Event& e) {
  std::ostringstream out;
  out << NameText(e.name) << " level=" << static_cast<int>(e.level)
      << " time=" << e.time.time_since_epoch().count() << " span=" << e.span_id
      << " parent=" << e.parent_id << "/" << (e.parent != nullptr ? e.parent->span_id : 0)
      << " global=" << (e.global != nullptr ? e.global->span_id : 0) << " src=" << e.source_file
      << ":" << e.source_line << " truncated=" << e.fields.truncated() << " cats=";
  for (NameId c : e.categories) out << NameText(c) << ",";
  for (const Field& f : e.fields) {
    out << " " << NameText(f.key) << "=" << static_cast<int>(f.value.type()) << "/"
        << static_cast<int>(f.value.unit()) << ":";
    switch (f.value.type()) {
      case Value::Type::kString:
        out << "[" << f.value.as_string() << "]";
        break;
      case Value::Type::kInt:
        out << f.value.as_int();
        break;
      case Value::Type::kUint:
      case Value::Type::kBool:
        out << f.value.as_uint();
        break;
      case Value::Type::kDouble:
        out << f.value.as_double();
        break;
      case Value::Type::kTimeval:
        out << f.value.as_timeval().sec << "." << f.value.as_timeval().usec;
        break;
      case Value::Type::kRecord:
      case Value::Type::kNone:
        out << "-";
        break;
    }
  }
  return out.str();
}

}  // namespace mailscope
