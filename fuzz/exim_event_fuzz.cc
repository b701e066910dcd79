// Fuzzes the decoder of Exim's event_action requests. Any input gives an
// event or an error with a reason, never a crash. A decoded event is written
// back as the fragment would send it (every value through Exim's ${quote:})
// and decoded again: the same event, field for field, must come back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"
#include "ingest/exim_event.h"

namespace {

using namespace mailscope;

// What Exim 4.96's ${quote:} makes of a value.
std::string Quote(std::string_view v) {
  bool bare = !v.empty();
  for (char c : v) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-';
    bare = bare && word;
  }
  if (bare) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Flat {
  std::string key;
  Value::Type type;
  std::string text;
  std::int64_t number;
  bool operator==(const Flat&) const = default;
};

std::vector<Flat> Flatten(const Event& e) {
  std::vector<Flat> out;
  for (const Field& f : e.fields) {
    Flat x{std::string(NameText(f.key)), f.value.type(), {}, 0};
    if (f.value.type() == Value::Type::kString) x.text = f.value.as_string();
    if (f.value.type() == Value::Type::kInt) x.number = f.value.as_int();
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > ingest::kEximRequestMaxBytes) return 0;
  static ingest::EximEventDecoder decoder;
  std::string request(reinterpret_cast<const char*>(data), size);
  Event event;
  const TimePoint now{};
  const Status st = decoder.Decode(std::span<char>(request.data(), request.size()), now, event);
  if (!st.ok()) {
    MS_CHECK(!st.reason().empty());
    return 0;
  }
  MS_CHECK(event.name != kNoName);
  MS_CHECK(event.source == Source::kExim);
  // Written back as the fragment writes it: the fields the decoder derives
  // from $event_defer_errno are left out, it derives them again.
  std::string again = "event event_name=" + Quote(NameText(event.name));
  for (const Field& f : event.fields) {
    const std::string_view key = NameText(f.key);
    if (key == "smtp_code" || key == "defer_lookup" || key == "defer_errno_name" ||
        key == "queue_time") {
      continue;
    }
    again += " " + std::string(key) + "=";
    if (f.value.type() == Value::Type::kInt) {
      again += std::to_string(f.value.as_int());
    } else {
      again += Quote(f.value.as_string());
    }
  }
  Event second;
  const Status st2 = decoder.Decode(std::span<char>(again.data(), again.size()), now, second);
  MS_CHECK(st2.ok());
  MS_CHECK(second.name == event.name);
  MS_CHECK(Flatten(second) == Flatten(event));
  return 0;
}
