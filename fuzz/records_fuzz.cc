// Fuzzes what the records store reads back: a run of encoded records, as a
// spool segment holds them, and each record's JSON columns, as a database
// row gives them. Any input gives records and events or errors with a
// reason, never a crash. A record that decodes is encoded again and must
// come out byte for byte; CountRecords() agrees with decoding one by one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/check.h"
#include "store/record.h"
#include "store/record_event.h"
#include "store/spool.h"

using namespace mailscope;

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
