#include "export/event_text.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <array>
#include <iterator>

namespace mailscope::exporter {
namespace {

constexpr int kMaxKeys = 256;  // distinct keys printed per event

bool Bare(std::string_view v) {
  if (v.empty()) return false;
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) return false;
  }
  return true;
}

void AppendText(std::string_view v, std::string& out) {
  if (Bare(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void AppendValue(const Value& v, std::string& out) {
  auto it = std::back_inserter(out);
  switch (v.type()) {
    case Value::Type::kNone:
      out += "\"\"";
      break;
    case Value::Type::kInt:
      fmt::format_to(it, "{}", v.as_int());
      break;
    case Value::Type::kUint:
      fmt::format_to(it, "{}", v.as_uint());
      break;
    case Value::Type::kDouble:
      fmt::format_to(it, "{}", v.as_double());
      break;
    case Value::Type::kString:
      AppendText(v.as_string(), out);
      break;
    case Value::Type::kTimeval: {
      Timeval tv = v.as_timeval();
      fmt::format_to(it, "{}.{:06}", tv.sec, tv.usec);
      break;
    }
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Type::kRecord:
      out += "\"\"";
      break;  // columns are printed as fields
  }
}

class KeySet {
 public:
  // True the first time a key is seen (and when the set is full: better a
  // repeated key than a lost one).
  bool Insert(std::string_view key) {
    for (std::size_t i = 0; i < size_; ++i)
      if (keys_[i] == key) return false;
    if (size_ < keys_.size()) keys_[size_++] = key;
    return true;
  }

 private:
  std::array<std::string_view, kMaxKeys> keys_{};
  std::size_t size_ = 0;
};

void AppendField(std::string_view key, const Value& v, KeySet& seen, std::string& out) {
  if (v.type() == Value::Type::kRecord) {
    const RecordSchema* schema = v.record_schema();
    for (std::size_t i = 0; i < schema->column_count; ++i) {
      const RecordColumn& col = schema->columns[i];
      if (!seen.Insert(col.name)) continue;
      out += ' ';
      out += col.name;
      out += '=';
      AppendValue(v.RecordColumnValue(col), out);
    }
    return;
  }
  if (!seen.Insert(key)) return;
  out += ' ';
  AppendText(key, out);
  out += '=';
  AppendValue(v, out);
}

void AppendCategories(const Event& event, std::string& out) {
  std::size_t written = 0;
  std::array<NameId, 64> seen{};
  std::size_t seen_count = 0;
  event.VisitChain([&](const Event& e) {
    for (NameId c : e.categories) {
      bool dup = false;
      for (std::size_t i = 0; i < seen_count; ++i) dup = dup || seen[i] == c;
      if (dup) continue;
      if (seen_count < seen.size()) seen[seen_count++] = c;
      out += written++ == 0 ? " categories=" : ",";
      out += NameText(c);
    }
    return false;
  });
}

}  // namespace

void AppendEventText(const Event& event, std::string& out) {
  fmt::format_to(std::back_inserter(out), "{:%Y-%m-%dT%H:%M:%S}.{:06}Z {} ",
                 std::chrono::sys_seconds(std::chrono::seconds(UnixSeconds(event.time))),
                 SubsecondMicros(event.time), SourceName(event.source));
  out += event.name == kNoName ? std::string_view("-") : NameText(event.name);
  AppendCategories(event, out);
  KeySet seen;
  event.VisitChain([&](const Event& e) {
    for (const Field& f : e.fields) AppendField(NameText(f.key), f.value, seen, out);
    return false;
  });
}

}  // namespace mailscope::exporter
