// SourceContext: what every source (listener plus decoder) hands its
// decoded events and its rejected input to. Loop thread only.
#pragma once

#include <functional>
#include <string_view>

#include "core/clock.h"
#include "core/event.h"
#include "core/status.h"
#include "pipeline/dispatcher.h"
#include "serve/rate_limited_log.h"
#include "stats/ingest_counters.h"

namespace mailscope::serve {

// What every source hands its events and errors to.
struct SourceContext {
  pipeline::Dispatcher& dispatcher;
  stats::IngestCounters& counters;
  RateLimitedLog& reject_log;
  const Clock& clock;
  // Test-only: when set, called with each event right before it is
  // dispatched (see Daemon::Options::before_dispatch_for_testing).
  std::function<void(const Event&)> before_dispatch_for_testing;

  // Counts and logs (rate-limited) one rejected piece of input; `where`
  // prefixes the logged message when not empty.
  void Reject(Source source, const Status& status, std::string_view where = {}) const;
  // Dispatches `event`. REQUIRES: event.name != kNoName.
  // Returns the verdict of the outputs (DESIGN.md, "Dispatch"), or an empty
  // view; it stays valid until the next dispatch.
  std::string_view Dispatch(Event& event) const;
};

// Counts and logs the exception being handled as the loss of one piece of
// input (reason handler_error). Called from a catch block only.
void RejectCurrentException(const SourceContext& context, Source source);

// Runs f, a source's handling of one piece of input. Decoders and outputs
// return errors as values (STYLE.md), so a throw out of one is a bug or an
// allocation failure. It costs the one piece being handled, counted and
// logged like rejected input, and the source reads on: the next piece does
// not depend on the lost one's outcome.
template <typename F>
void RunContainedInput(const SourceContext& context, Source source, F&& f) {
  try {
    f();
  } catch (...) {
    RejectCurrentException(context, source);
  }
}

}  // namespace mailscope::serve
