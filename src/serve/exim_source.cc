#include "serve/exim_source.h"

namespace mailscope::serve {

net::LineConnection EximEventSource::NewConnection() {
  net::LineConnection conn;
  conn.on_line = [this](std::span<char> request, std::string& reply) {
    OnRequest(request, reply);
    return false;  // one request per connection: reply, then close
  };
  conn.line_at_eof = true;
  return conn;
}

void EximEventSource::OnRequest(std::span<char> request, std::string& reply) {
  RunContainedInput(context_, Source::kExim, [&] {
    const Status st = decoder_.Decode(request, context_.clock.Now(), event_);
    if (!st.ok()) {
      context_.Reject(Source::kExim, st);
      return;
    }
    reply.append(context_.Dispatch(event_));
  });
}

}  // namespace mailscope::serve
