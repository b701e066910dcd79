// Fuzzes the Stalwart text log path the way `mailscope replay` and `serve`
// run it: the input is split into lines, and each goes through LogLines with
// the stalwart format, so the timestamp-prefix parser and
// StalwartLineDecoder both see it. Every line is parsed or counted unparsed
// with a reason, never a crash; a parsed event has a name, named fields and
// strings that can be read (ASan checks they point at live memory).
// Each line also goes through a bare decoder twice, once behind a colour
// code that stripping removes: both give the same outcome and the same
// event. At the end the (empty) state is saved and loaded again; the raw
// input is offered to LoadState() once, and to the format sniffer.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/time_zone.h"
#include "ingest/log_lines.h"
#include "ingest/stalwart_log.h"

namespace {

using namespace mailscope;

const TimePoint kReference(std::chrono::seconds(1'704'672'000));

std::unique_ptr<ingest::LogLines> NewLines() {
  return std::make_unique<ingest::LogLines>(ingest::MakeLogLineFormat("stalwart"), TimeZone::Utc(),
                                            kReference);
}

// The outcome and event as text, reading every byte of every string.
std::string Describe(const Status& st, const Event& e) {
  std::string out(st.ok() ? "ok" : st.reason());
  if (!st.ok()) return out;
  MS_CHECK(e.name != kNoName);
  out += ' ';
  out += NameText(e.name);
  out += ' ';
  out += LevelName(e.level);
  out += ' ';
  out += std::to_string(UnixSeconds(e.time));
  out += ' ';
  out += std::to_string(e.span_id);
  for (const Field& f : e.fields) {
    MS_CHECK(f.key != kNoName);
    out += '|';
    out += NameText(f.key);
    out += '=';
    const Value& v = f.value;
    out += std::to_string(static_cast<int>(v.type()));
    out += ':';
    switch (v.type()) {
      case Value::Type::kString:
        out += v.as_string();
        break;
      case Value::Type::kUint:
      case Value::Type::kBool:
        out += std::to_string(v.as_uint());
        break;
      case Value::Type::kInt:
        out += std::to_string(v.as_int());
        break;
      case Value::Type::kDouble:
        out += std::to_string(v.as_double());
        break;
      case Value::Type::kTimeval:
        out += std::to_string(v.as_timeval().sec);
        break;
      default:
        MS_CHECK(false);  // the decoder makes no other kind
    }
    out += UnitName(v.unit());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)ingest::SniffLogFormat(input);
  {
    std::unique_ptr<ingest::LogLines> raw = NewLines();
    (void)raw->LoadState(input);
  }
  std::unique_ptr<ingest::LogLines> lines = NewLines();
  static ingest::StalwartLineDecoder bare;
  Event event;
  std::size_t count = 0;
  std::string coloured;
  std::string_view rest = input;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);

    const Status st = lines->Decode(line, kReference, event);
    if (st.ok()) {
      MS_CHECK(event.source == Source::kStalwartLog);
    } else {
      MS_CHECK(!st.reason().empty());
    }
    (void)Describe(st, event);
    const ingest::LogLineFigures& f = lines->figures();
    MS_CHECK(f.parsed + f.unparsed == ++count);

    event.Clear();
    const Status plain_st = bare.Decode(line, event);
    const std::string plain = Describe(plain_st, event);
    coloured.assign("\x1b[0m");
    coloured.append(line);
    event.Clear();
    const Status coloured_st = bare.Decode(coloured, event);
    MS_CHECK(Describe(coloured_st, event) == plain);
  }
  const std::string saved = lines->SaveState();
  std::unique_ptr<ingest::LogLines> fresh = NewLines();
  MS_CHECK(fresh->LoadState(saved).ok());
  MS_CHECK(fresh->SaveState() == saved);
  return 0;
}
