// The cost of Filter::Matches() per event, for the filter shapes metrics use.
#include <benchmark/benchmark.h>

#include "core/names.h"
#include "filter/filter.h"

namespace mailscope::filter {
namespace {

Event& CommandEvent() {
  static Event* e = [] {
    auto* ev = new Event();
    static Event parent;
    parent.Add(InternName("user"), Value::String("alice@example.com"));
    parent.categories.push_back(InternName("imap"));
    ev->name = InternName("imap_command_finished");
    ev->parent = &parent;
    ev->Add(InternName("cmd_name"), Value::String("SELECT"));
    ev->Add(InternName("tagged_reply_state"), Value::String("OK"));
    ev->Add(InternName("running_usecs"), Value::Int(5352));
    ev->Add(InternName("bytes_out"), Value::Int(311));
    ev->Add(InternName("duration"), Value::Int(5388));
    // As the catalog's router leaves it.
    static const FieldAlias aliases[] = {{InternName("reason"), InternName("tagged_reply")}};
    ev->taxonomy = {InternName("command"), InternName("success"), aliases, 1};
    return ev;
  }();
  return *e;
}

void BM_Matches(benchmark::State& state, const char* text) {
  auto f = Parse(text, Dialect::kMailscope);
  if (!f.ok()) {
    state.SkipWithError(f.status().message().c_str());
    return;
  }
  const Event& e = CommandEvent();
  for (auto _ : state) benchmark::DoNotOptimize(f->Matches(e));
}

BENCHMARK_CAPTURE(BM_Matches, event_name, "event=imap_command_finished");
BENCHMARK_CAPTURE(BM_Matches, other_event_name, "event=auth_request_finished");
BENCHMARK_CAPTURE(BM_Matches, event_wildcard, "event=imap_*");
BENCHMARK_CAPTURE(BM_Matches, name_and_string_field,
                  "event=imap_command_finished AND cmd_name=select");
BENCHMARK_CAPTURE(BM_Matches, name_and_number, "event=imap_command_finished AND duration>1ms");
BENCHMARK_CAPTURE(BM_Matches, parent_field_wildcard, "user=\"*@example.com\"");
BENCHMARK_CAPTURE(BM_Matches, category, "category=imap AND NOT category=storage");
// The event lacks these fields: the path where the pipeline's keys are tried.
BENCHMARK_CAPTURE(BM_Matches, missing_field, "NOT cmd_args=x");
BENCHMARK_CAPTURE(BM_Matches, kind_and_outcome, "kind=command AND outcome=success");
BENCHMARK_CAPTURE(BM_Matches, normalized_name, "reason=\"\"");

void BM_MatchesMergedMetrics(benchmark::State& state) {
  const char* texts[] = {
      "event=imap_command_finished",
      "event=auth_request_finished AND success=yes",
      "event=mail_delivery_finished",
      "event=imap_command_finished AND cmd_name=SELECT",
      "event=smtp_server_transaction_finished",
      "event=pop3_command_finished AND cmd_name=RETR",
  };
  std::vector<Filter> parsed;
  for (const char* t : texts) parsed.push_back(*Parse(t, Dialect::kDovecot));
  std::vector<const Filter*> ptrs;
  for (const Filter& f : parsed) ptrs.push_back(&f);
  const Filter merged = Filter::Merge(ptrs);
  const Event& e = CommandEvent();
  for (auto _ : state) benchmark::DoNotOptimize(merged.Matches(e));
}
BENCHMARK(BM_MatchesMergedMetrics);

void BM_Parse(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(
        Parse("event=imap_command_finished AND (cmd_name=SELECT OR NOT category=storage)",
              Dialect::kDovecot));
}
BENCHMARK(BM_Parse);

}  // namespace
}  // namespace mailscope::filter

BENCHMARK_MAIN();
