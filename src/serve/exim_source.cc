#include "serve/exim_source.h"

namespace mailscope::serve {

net::LineConnection EximEventSource::NewConnection() {
  net::LineConnection conn;
  // Made when the connection is accepted: Exim's wait began about then.
  conn.on_line = [this, accepted = std::chrono::steady_clock::now()](std::span<char> request,
                                                                     std::string& reply) {
    OnRequest(request, accepted, reply);
    return false;  // one request per connection: reply, then close
  };
  conn.line_at_eof = true;
  return conn;
}

void EximEventSource::OnRequest(std::span<char> request, SteadyTime accepted, std::string& reply) {
  RunContainedInput(context_, Source::kExim, [&] {
    const Status st = decoder_.Decode(request, context_.clock.Now(), event_);
    if (!st.ok()) {
      context_.Reject(Source::kExim, st);
      return;
    }
    const std::string_view verdict = context_.Dispatch(event_);
    if (verdict.empty()) return;
    if (verdict_timeout_.count() > 0 &&
        std::chrono::steady_clock::now() - accepted > verdict_timeout_) {
      ++late_verdicts_;
      return;
    }
    reply.append(verdict);
  });
}

}  // namespace mailscope::serve
