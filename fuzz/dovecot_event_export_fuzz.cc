// Fuzzes the decoder of Dovecot's event exporter bodies and the formatter:
// the input is decoded as a JSON body and as a tab-text body. Every decoded
// event is rendered again in both formats (the log transport's cut included),
// and each rendering must decode to the same name, categories and field keys.
// The input lives in a heap buffer of its exact size, freed before the event
// is read: an event string pointing into the input would be read after free.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "export/event_format.h"
#include "export/json_writer.h"
#include "ingest/dovecot_event_export.h"

namespace {

using mailscope::Event;
using mailscope::Field;
using mailscope::FieldList;
using mailscope::NameId;
using mailscope::Status;
using mailscope::TimePoint;
using mailscope::Value;
using mailscope::exporter::EventFormat;
using mailscope::exporter::EventFormatter;
using mailscope::exporter::FormatSpec;
using mailscope::exporter::TimeFormat;
using mailscope::ingest::DovecotEventExportDecoder;
using mailscope::ingest::EventExportFormat;
using mailscope::ingest::EventExportOptions;

constexpr TimePoint kReceived{std::chrono::seconds(1'800'000'000)};

// What must survive rendering and decoding again.
struct Shape {
  NameId name;
  std::vector<NameId> categories;
  std::vector<NameId> keys;
};

Shape ShapeOf(const Event& e) {
  Shape s{e.name, {e.categories.begin(), e.categories.end()}, {}};
  for (const Field& f : e.fields) s.keys.push_back(f.key);
  return s;
}

// Whether every name of the shape and `host` are valid UTF-8: JSON rendering
// replaces each bad byte with U+FFFD (3 bytes), which can make two names one.
bool Utf8Names(const Shape& s, std::string_view host) {
  auto replacements = [](std::string_view t) {
    std::size_t n = 0;
    for (std::size_t at = t.find("\xEF\xBF\xBD"); at != t.npos;
         at = t.find("\xEF\xBF\xBD", at + 3)) {
      ++n;
    }
    return n;
  };
  auto valid = [&](std::string_view t) {
    std::string out;
    mailscope::exporter::AppendJsonEscaped(out, t);
    return replacements(out) == replacements(t);
  };
  if (!valid(mailscope::NameText(s.name)) || !valid(host)) return false;
  for (NameId c : s.categories) {
    if (!valid(mailscope::NameText(c))) return false;
  }
  for (NameId k : s.keys) {
    if (!valid(mailscope::NameText(k))) return false;
  }
  return true;
}

// Reads every string of `e`, so ASan sees a dangling one.
std::size_t Touch(const Event& e, std::string_view hostname) {
  std::size_t sum = hostname.size();
  for (char c : hostname) sum += static_cast<unsigned char>(c);
  for (const Field& f : e.fields) {
    if (f.value.type() != Value::Type::kString) continue;
    for (char c : f.value.as_string()) sum += static_cast<unsigned char>(c);
  }
  return sum;
}

void Check(DovecotEventExportDecoder& decoder, EventExportFormat format, std::string_view input) {
  std::string body;
  {
    auto copy = std::make_unique<char[]>(input.size() + 1);
    std::memcpy(copy.get(), input.data(), input.size());
    const Status st = decoder.Decode(format, std::string_view(copy.get(), input.size()), kReceived);
    MS_CHECK(st.ok() || !st.reason().empty());
    if (!st.ok()) return;
  }
  const Event& e = decoder.event();
  MS_CHECK(e.source == mailscope::Source::kDovecot);
  MS_CHECK(e.name != mailscope::kNoName);
  MS_CHECK(e.fields.size() <= FieldList::kCapacity);
  volatile std::size_t sink = Touch(e, decoder.hostname());
  (void)sink;
  const Shape want = ShapeOf(e);
  const std::string hostname(decoder.hostname());
  const TimePoint now = decoder.end_time().value_or(kReceived);

  // Render and decode again. time-unix: every decodable time can be written
  // in it (time-rfc3339 has no years before 0).
  const Event copy = e;  // the decoder is reused below
  EventFormatter formatter;
  std::string out;
  for (EventFormat f : {EventFormat::kJson, EventFormat::kTabText}) {
    for (std::size_t max : {std::size_t{0}, std::size_t{1000}}) {
      FormatSpec spec;
      spec.format = f;
      spec.time_format = TimeFormat::kUnix;
      spec.hostname = hostname;
      spec.max_field_bytes = max;
      formatter.Format(copy, spec, now, out);
      spec.time_format = TimeFormat::kRfc3339;
      std::string rfc;
      formatter.Format(copy, spec, now, rfc);  // must not crash; not decoded again
      if (max != 0) continue;
      // U+FFFD for bad UTF-8 bytes can triple a name's length.
      EventExportOptions wide;
      wide.max_name_bytes = 3 * EventExportOptions().max_name_bytes;
      wide.max_body_bytes = 16 * 1024 * 1024;
      wide.max_new_names = UINT32_MAX;
      DovecotEventExportDecoder again(wide);
      const Status st = again.Decode(
          f == EventFormat::kJson ? EventExportFormat::kJson : EventExportFormat::kTabText, out,
          kReceived);
      // A name with bad UTF-8 comes back from JSON as a different, new name:
      // the run's inputs may have filled the process-wide table by then.
      const bool renamed = f == EventFormat::kJson && !Utf8Names(want, hostname);
      MS_CHECK(st.ok() || (renamed && st.reason() == "name_table_full"));
      if (renamed) continue;
      const Shape got = ShapeOf(again.event());
      MS_CHECK(got.name == want.name);
      MS_CHECK(got.categories == want.categories);
      // A key with '=' (only JSON can carry one) splits at it in tab-text.
      bool eq_key = false;
      for (NameId k : want.keys) eq_key |= mailscope::NameText(k).find('=') != std::string::npos;
      MS_CHECK(got.keys == want.keys || (f == EventFormat::kTabText && eq_key));
      MS_CHECK(again.hostname() == hostname);
      MS_CHECK(again.event().time == copy.time);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  EventExportOptions options;
  options.max_body_bytes = 64 * 1024;
  // The decoder lives for the whole run, whose inputs make up far more names
  // than one client's budget: only the name table's own budget applies.
  options.max_new_names = UINT32_MAX;
  static DovecotEventExportDecoder* decoder = new DovecotEventExportDecoder(options);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Check(*decoder, EventExportFormat::kJson, input);
  Check(*decoder, EventExportFormat::kTabText, input);
  return 0;
}
