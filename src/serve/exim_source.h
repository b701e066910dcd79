// EximEventSource: the exim-events socket that Exim's event_action talks to
// through ${readsocket{...}} (docs/integrations/exim.md). Each connection
// carries one request, ended by an LF or by Exim's half-close; the reply is
// the verdict of the outputs for that event (empty unless a rule gives one),
// and the connection is closed after it, as readsocket reads to EOF. A
// rejected request gets an empty reply too: Exim then goes on as if mailscope
// were not there. Loop thread only.
#pragma once

#include <span>
#include <string>

#include "core/event.h"
#include "ingest/exim_event.h"
#include "net/listeners.h"
#include "serve/source_context.h"

namespace mailscope::serve {

class EximEventSource {
 public:
  EximEventSource(SourceContext context, ingest::EximDecoderOptions options)
      : context_(context), decoder_(options) {}
  net::LineConnection NewConnection();

 private:
  void OnRequest(std::span<char> request, std::string& reply);

  SourceContext context_;
  ingest::EximEventDecoder decoder_;
  Event event_;
};

}  // namespace mailscope::serve
