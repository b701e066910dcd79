// Fuzzes the s/qmail log path the way `mailscope replay` and `serve` run it:
// the input is split into lines, and each goes through LogLines with the
// qmail format, so the timestamp-prefix parser, QmailLineDecoder and
// QmailTracker all see it, in order and with what earlier lines left behind.
// Every line is parsed or counted unparsed with a reason, never a crash.
// Every kCheckpointLines lines, and after the last, the state is saved and
// loaded into a fresh LogLines, whose own save must be the same text; the
// rest of the input then runs on the reloaded one, so a state that loads but
// joins wrongly shows up too. The raw input is also offered to LoadState()
// once, as a damaged checkpoint would be: it is refused or taken.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/time_zone.h"
#include "ingest/log_lines.h"

namespace {

using namespace mailscope;

// Lines between checkpoints: inputs of a few kilobytes reach one.
constexpr std::size_t kCheckpointLines = 100;
// A fixed "now": the syslog year is inferred from it.
const TimePoint kReference(std::chrono::seconds(1'704'672'000));

std::unique_ptr<ingest::LogLines> NewLines() {
  return std::make_unique<ingest::LogLines>(ingest::MakeLogLineFormat("qmail"), TimeZone::Utc(),
                                            kReference);
}

// Saves `lines`, loads the text into a fresh LogLines and makes that the one
// in use. A saved state that does not load, or loads into something that
// saves differently, is a fault.
void Checkpoint(std::unique_ptr<ingest::LogLines>& lines) {
  const std::string saved = lines->SaveState();
  std::unique_ptr<ingest::LogLines> fresh = NewLines();
  if (!fresh->LoadState(saved).ok()) __builtin_trap();
  if (fresh->SaveState() != saved) __builtin_trap();
  lines = std::move(fresh);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  {
    std::unique_ptr<ingest::LogLines> raw = NewLines();
    (void)raw->LoadState(input);
  }
  std::unique_ptr<ingest::LogLines> lines = NewLines();
  Event event;
  std::size_t count = 0;  // lines since the last checkpoint
  std::string_view rest = input;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    const Status st = lines->Decode(line, kReference, event);
    if (st.ok()) {
      MS_CHECK(event.name != kNoName);
      MS_CHECK(event.source == Source::kQmailLog);
    } else {
      MS_CHECK(!st.reason().empty());
    }
    // Each line counted once, as parsed or as unparsed.
    const ingest::LogLineFigures& f = lines->figures();
    MS_CHECK(f.parsed + f.unparsed == ++count);
    if (count == kCheckpointLines) {
      Checkpoint(lines);
      count = 0;
    }
  }
  Checkpoint(lines);
  return 0;
}
