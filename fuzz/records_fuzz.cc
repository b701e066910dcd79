// Fuzzes what the records store reads back: a run of encoded records, as a
// spool segment holds them, and each record's JSON columns, as a database
// row gives them. Any input gives records and events or errors with a
// reason, never a crash. A record that decodes is encoded again and must
// come out byte for byte; CountRecords() agrees with decoding one by one.
// An event built from a record is recorded anew (Capture, then Finish, as
// the loop and the writer thread do) and built again: the same fields, of
// the same types and values, must come back.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "export/json_writer.h"
#include "store/record.h"
#include "store/record_event.h"
#include "store/spool.h"

using namespace mailscope;

namespace {

struct Flat {
  std::string key;
  Value::Type type;
  Unit unit;
  std::string text;
  std::uint64_t bits;
  bool operator==(const Flat&) const = default;
};

std::vector<Flat> Flatten(const Event& e) {
  std::vector<Flat> out;
  for (const Field& f : e.fields) {
    Flat x{std::string(NameText(f.key)), f.value.type(), f.value.unit(), {}, 0};
    switch (f.value.type()) {
      case Value::Type::kString:
        x.text = f.value.as_string();
        break;
      case Value::Type::kInt:
        x.bits = static_cast<std::uint64_t>(f.value.as_int());
        break;
      case Value::Type::kUint:
      case Value::Type::kBool:
        x.bits = f.value.as_uint();
        break;
      case Value::Type::kDouble: {
        const double d = f.value.as_double();
        std::memcpy(&x.bits, &d, sizeof d);
        break;
      }
      default:
        break;
    }
    out.push_back(std::move(x));
  }
  return out;
}

// `event` (built from a record) through Capture and Finish and built again.
void CheckRecordedAgain(const Event& event) {
  static store::RecordEncoder encoder;
  static store::RecordEventBuilder again_builder;
  // Names that are not text become U+FFFD when written (record.h): only
  // events whose keys are text come back whole.
  for (const Field& f : event.fields) {
    const std::string_view key = NameText(f.key);
    if (key.find('\0') != std::string_view::npos || !exporter::IsValidUtf8(key)) return;
  }
  const std::vector<Flat> before = Flatten(event);
  std::string capture, record;
  encoder.Capture(event, 5, 6, capture);
  std::size_t used = 0;
  MS_CHECK(encoder.Finish(capture, record, &used).ok());
  MS_CHECK(used == capture.size());
  store::RecordView r;
  std::size_t size = 0;
  MS_CHECK(store::DecodeRecord(record, r, &size).ok());
  Event again;
  MS_CHECK(again_builder.Build(r, again).ok());
  std::vector<Flat> after = Flatten(again);
  // A message id taken from another field comes back as a field of its own.
  if (after.size() == before.size() + 1 && after.back().key == "message_id") after.pop_back();
  // Keys repeated in the record keep their first position and last value.
  if (before.size() == after.size()) MS_CHECK(before == after);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static store::RecordEventBuilder builder;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t at = 0;
  std::uint64_t records = 0;
  std::string again;
  Event event;
  while (at < in.size()) {
    store::RecordView r;
    std::size_t used = 0;
    const Status s = store::DecodeRecord(in.substr(at), r, &used);
    if (!s.ok()) {
      MS_CHECK(s.reason() == "record_corrupt");
      break;
    }
    MS_CHECK(used >= store::kRecordHeaderBytes && used <= in.size() - at);
    again.clear();
    store::AppendRecord(r, again);
    MS_CHECK(again == in.substr(at, used));
    const Status b = builder.Build(r, event);
    if (b.ok()) {
      MS_CHECK(event.source == r.source);
      MS_CHECK(NameText(event.name) == r.event);
      CheckRecordedAgain(event);
    } else {
      MS_CHECK(b.reason() == "record_corrupt");
    }
    at += used;
    ++records;
  }
  const store::RecordCount count = store::CountRecords(in);
  MS_CHECK(count.records == records);
  MS_CHECK(count.bytes == at);
  return 0;
}
