// Fuzzes the old-stats FIFO path end to end: framing, decoding and applying
// to a store with a tiny memory limit (so eviction runs too). Any input must
// leave the store consistent: no crash, no sanitizer report, limit held.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "ingest/dovecot_old_stats.h"
#include "ingest/line_framer.h"
#include "stats/old_stats_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mailscope;
  FakeClock clock;
  stats::OldStatsOptions options;
  options.memory_limit_bytes = 8 * 1024;
  stats::OldStatsStore store(options, clock);
  ingest::DovecotOldStatsDecoder decoder;
  ingest::LineFramer framer(ingest::kOldStatsMaxLineBytes, 512);
  Event event;
  while (size > 0) {
    auto space = framer.WriteSpace();
    std::size_t n = std::min(space.size(), size);
    std::memcpy(space.data(), data, n);
    framer.Commit(n);
    data += n;
    size -= n;
    framer.Drain(
        [&](std::span<char> line) {
          auto r = decoder.Decode(line, clock.Now(), event);
          if (r.emit) (void)store.Apply(event);
          clock.Advance(std::chrono::seconds(7));
          store.Tick();
        },
        [](std::size_t) {});
    MS_CHECK(store.memory_used_bytes() <= options.memory_limit_bytes ||
             store.count(stats::OldLevel::kSession) > 0);
  }
  return 0;
}
