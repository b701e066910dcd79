// StalwartWebhookSource: POST /ingest/stalwart, where Stalwart's webhooks
// send their batches (docs/integrations/stalwart.md). Each POST is checked
// against the configured credentials: Authorization and the presence of
// X-Signature from its header, before the body is read; the signature over
// the body before the body is parsed. It is then parsed whole (a malformed body is a 400 and
// counts nothing), and each of its events not seen within the dedup window
// is dispatched. The reply is a 200 with the counts as soon as the events
// are dispatched: Stalwart takes any 2xx, and re-sends the whole batch on
// anything else. Loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ingest/event_dedup.h"
#include "ingest/stalwart_webhook.h"
#include "net/http_router.h"
#include "serve/config.h"
#include "serve/source_context.h"

namespace mailscope::serve {

struct StalwartFigures {
  std::uint64_t batches = 0;     // POSTs taken
  std::uint64_t duplicates = 0;  // events seen before within the window
  std::uint64_t dedup_evicted = 0;
  std::uint64_t dedup_keys = 0;  // events remembered now
  std::uint64_t dedup_max_keys = 0;
};

class StalwartWebhookSource {
 public:
  StalwartWebhookSource(SourceContext context, const StalwartConfig& config,
                        std::uint32_t max_new_names);

  // The route's options: its body limit and padding, refusals counted.
  net::HttpRouteOptions RouteOptions();
  net::HttpResponse Handle(const net::HttpRequest& request);
  // Applies reloaded credentials; the rest of [sources.stalwart] waits for
  // a restart.
  void SetCredentials(const StalwartConfig& config);

  StalwartFigures figures() const;

 private:
  // The refusal of a request whose headers lack the configured credentials
  // (Authorization; an X-Signature of the right length), before its body is
  // read; nullopt when they are there.
  std::optional<net::HttpResponse> CheckHeaders(const net::HttpRequest& request);
  // The refusal of a body that X-Signature does not sign; nullopt when it
  // does or no key is set.
  std::optional<net::HttpResponse> CheckSignature(const net::HttpRequest& request);
  // Counts and logs `why`, and answers it with `status`.
  net::HttpResponse Refuse(const net::HttpRequest& request, unsigned status, const Status& why);

  SourceContext context_;
  std::string signature_key_;
  std::string basic_;   // "username:secret" in base64, as Authorization carries it
  std::string bearer_;  // the token
  std::uint64_t max_body_size_;
  ingest::StalwartWebhookDecoder decoder_;
  ingest::EventDedup dedup_;
  std::uint64_t batches_ = 0;
  Event events_[2];  // decoded, waiting for dispatch
};

}  // namespace mailscope::serve
