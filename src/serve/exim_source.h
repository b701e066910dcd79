// EximEventSource: the exim-events socket that Exim's event_action talks to
// through ${readsocket{...}} (docs/integrations/exim.md). Each connection
// carries one request, ended by an LF or by Exim's half-close; the reply is
// the verdict of the outputs for that event (empty unless a rule gives one),
// and the connection is closed after it, as readsocket reads to EOF. A
// rejected request gets an empty reply too: Exim then goes on as if mailscope
// were not there. So does a verdict ready later than `verdict_timeout` after
// the connection was accepted (the loop was busy before it read the request):
// Exim may have given up waiting, and a verdict must never arrive after Exim
// went on without it. Such verdicts are counted, and the event still is. Loop
// thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "core/event.h"
#include "ingest/exim_event.h"
#include "net/listeners.h"
#include "serve/source_context.h"

namespace mailscope::serve {

class EximEventSource {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  EximEventSource(SourceContext context, ingest::EximDecoderOptions options,
                  std::chrono::milliseconds verdict_timeout)
      : context_(context), decoder_(options), verdict_timeout_(verdict_timeout) {}
  net::LineConnection NewConnection();
  // Applies a reloaded [sources.exim] verdict_timeout; 0 disables it.
  void set_verdict_timeout(std::chrono::milliseconds timeout) { verdict_timeout_ = timeout; }
  // Verdicts not written for being late (mailscope_exim_verdicts_late_total).
  std::uint64_t late_verdicts() const { return late_verdicts_; }

 private:
  void OnRequest(std::span<char> request, SteadyTime accepted, std::string& reply);

  SourceContext context_;
  ingest::EximEventDecoder decoder_;
  std::chrono::milliseconds verdict_timeout_;
  std::uint64_t late_verdicts_ = 0;
  Event event_;
};

}  // namespace mailscope::serve
