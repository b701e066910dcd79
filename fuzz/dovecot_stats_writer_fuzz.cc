// Fuzzes one stats-writer connection: the input is split on LF and each line
// decoded by one decoder with small bounds, so eviction of state and the
// limits run too. Input that does not start with "VERSION" gets the real
// handshake first, so most inputs reach the commands. Each line lives in its
// own heap buffer, freed after use: a stored event that kept a view into a
// line would be read after free by a later event's parent chain.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/event_testing.h"
#include "ingest/dovecot_stats_writer.h"

namespace {

using mailscope::Event;
using mailscope::Field;
using mailscope::FieldList;
using mailscope::Value;
using mailscope::ingest::DovecotStatsWriterDecoder;
using mailscope::ingest::StatsWriterResult;

// Reads every string of `e`, so ASan sees a dangling one.
std::size_t Touch(const Event& e) {
  std::size_t sum = e.source_file.empty() ? 0 : static_cast<unsigned char>(e.source_file.back());
  for (const Field& f : e.fields) {
    if (f.value.type() != Value::Type::kString) continue;
    for (char c : f.value.as_string()) sum += static_cast<unsigned char>(c);
  }
  return sum;
}

void CheckEvent(const DovecotStatsWriterDecoder& decoder, const StatsWriterResult& r) {
  const Event& e = decoder.event();
  MS_CHECK(e.source == mailscope::Source::kDovecot);
  MS_CHECK(e.fields.size() <= FieldList::kCapacity);
  const Field* duration = e.Find(mailscope::FindName("duration"));
  MS_CHECK(duration != nullptr && duration->value.type() == Value::Type::kInt);
  MS_CHECK(duration->value.as_int() >= 0);
  MS_CHECK(r.emit != StatsWriterResult::Emit::kBegin || e.span_id != 0);
  MS_CHECK(r.emit != StatsWriterResult::Emit::kEvent || e.span_id == 0);
  MS_CHECK((e.parent == nullptr) == (e.parent_id == 0));
  MS_CHECK(e.parent == nullptr || e.parent->span_id == e.parent_id);
  // The parent chains end: no cycles, no longer than what is held.
  volatile std::size_t sink = Touch(e);
  for (const Event* chain : {e.parent, e.global}) {
    std::size_t depth = 0;
    for (const Event* p = chain; p != nullptr; p = p->parent) {
      MS_CHECK(++depth <= decoder.held_events());
      MS_CHECK(p->span_id != 0);
      sink = sink + Touch(*p);
    }
  }
  (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mailscope::ingest::StatsWriterOptions options;
  options.max_events = 16;
  options.max_categories = 16;
  options.max_state_bytes = 128 * 1024;
  options.close_on_error = size % 5 == 0;
  DovecotStatsWriterDecoder decoder(options);
  // Every line again down the general path alone: the line shapes must give
  // the same verdicts and events.
  DovecotStatsWriterDecoder general(options);
  general.DisableFastPathsForTesting();

  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto feed = [&](std::string_view text) {
    auto line = std::make_unique<char[]>(text.size() + 1);  // +1: never a zero-size buffer
    std::memcpy(line.get(), text.data(), text.size());
    const StatsWriterResult r = decoder.Decode({line.get(), text.size()});
    MS_CHECK(r.status.ok() || r.emit == StatsWriterResult::Emit::kNone);
    MS_CHECK(r.status.ok() || !r.status.reason().empty());
    MS_CHECK(!r.close || !r.status.ok());
    MS_CHECK(!r.close || options.close_on_error || !decoder.handshake_done());
    if (r.emit != StatsWriterResult::Emit::kNone) CheckEvent(decoder, r);
    MS_CHECK(decoder.CheckInvariantsForTesting());
    // Copied before the other decoder runs: the decoders of a thread share
    // the EVENT they emit.
    const std::string shaped = r.emit != StatsWriterResult::Emit::kNone
                                   ? mailscope::DescribeEventForTesting(decoder.event())
                                   : std::string();
    auto copy = std::make_unique<char[]>(text.size() + 1);
    std::memcpy(copy.get(), text.data(), text.size());
    const StatsWriterResult g = general.Decode({copy.get(), text.size()});
    MS_CHECK(g.status.ToString() == r.status.ToString() && g.emit == r.emit && g.close == r.close);
    MS_CHECK(r.emit == StatsWriterResult::Emit::kNone ||
             shaped == mailscope::DescribeEventForTesting(general.event()));
    return !r.close;
  };
  if (!input.starts_with("VERSION")) feed("VERSION\tstats-client\t4\t0");
  while (!input.empty()) {
    const std::size_t lf = input.find('\n');
    const std::string_view line = input.substr(0, lf);
    input.remove_prefix(lf == std::string_view::npos ? input.size() : lf + 1);
    if (!feed(line)) break;
  }
  return 0;
}
