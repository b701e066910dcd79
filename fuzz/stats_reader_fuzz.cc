// Fuzzes a stats-reader connection: handshake, line framing across reads,
// DUMP and DUMP-RESET formatting (percent parsing included) and METRICS-ADD /
// METRICS-REMOVE (metric, filter and group_by validation), against an engine
// with a few metrics and events. Metrics the input adds are then fed the same
// events and dumped again, so accepted group_by specs get bucketed too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "query/stats_reader.h"
#include "stats/metrics_engine.h"

namespace {

using mailscope::Event;
using mailscope::InternName;
using mailscope::Value;
namespace stats = mailscope::stats;

void AddMetric(stats::MetricsEngine& engine, const char* name, const char* filter,
               const char* fields, const char* group_by) {
  stats::MetricSettings s;
  s.name = name;
  s.filter = filter;
  s.fields = fields;
  s.group_by = group_by;
  auto def = stats::MakeMetric(s);
  if (def.ok()) (void)engine.Add(std::move(*def), stats::MetricsEngine::Origin::kConfig);
}

void FeedEvents(stats::MetricsEngine& engine) {
  static const char* const kCommands[] = {"SELECT", "NOOP", "FETCH", "a b\tc", ""};
  Event global;
  global.Add(InternName("user"), Value::String("alice@example.com"));
  for (int i = 0; i < 12; ++i) {
    Event e;
    e.name = InternName(i % 5 == 4 ? "mail_delivery_finished" : "imap_command_finished");
    e.global = &global;
    e.Add(InternName("cmd_name"), Value::String(kCommands[i % 5]));
    e.Add(InternName("tagged_reply_state"), Value::String(i % 3 ? "OK" : "NO"));
    e.Add(InternName("duration"), Value::Int(i * i * 97 - 5));
    e.Add(InternName("bytes_out"), Value::Int(i * 131));
    e.Add(InternName("size"), Value::Tv({i, i * 7}));
    engine.Process(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stats::MetricsEngine engine(stats::MetricsOptions{.max_sub_metrics = 64});
  AddMetric(engine, "imap_command", "event=imap_command_finished", "bytes_out size user",
            "cmd_name tagged_reply_state");
  AddMetric(engine, "hist", "event=*", "",
            "duration:exponential:1:5:10 bytes_out:linear:0:1000:250");
  FeedEvents(engine);

  mailscope::query::StatsReaderConnection conn(
      engine, {.exporter_exists = [](std::string_view n) { return n == "json"; },
               .metrics_changed = [] {}});
  std::string out(mailscope::query::StatsReaderGreeting());
  // The first byte picks the read size, so lines also arrive split across reads.
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t chunk = 1;
  if (!input.empty()) {
    chunk = 1 + static_cast<unsigned char>(input[0]) % 64;
    input.remove_prefix(1);
  }
  while (!input.empty() && conn.open()) {
    const std::size_t n = std::min(chunk, input.size());
    conn.Feed(input.substr(0, n), out);
    input.remove_prefix(n);
  }
  FeedEvents(engine);
  const std::string_view all[] = {"count",  "sum",      "min", "max",  "avg",
                                  "median", "variance", "%95", "%0.1", "bogus"};
  mailscope::query::AppendStatsReaderDump(engine, all, out);
  return 0;
}
