#include "serve/stalwart_source.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>

#include "core/base64.h"

namespace mailscope::serve {

namespace {

constexpr std::string_view kWhere = "POST /ingest/stalwart";

// The length of a base64 HMAC-SHA256, as X-Signature carries it.
constexpr std::size_t kSignatureSize = 44;

// Whether `given` is `secret`, in a time that tells nothing of either: both
// are hashed first, so that not even the secret's length shows.
bool SameSecret(std::string_view given, std::string_view secret) {
  unsigned char a[EVP_MAX_MD_SIZE];
  unsigned char b[EVP_MAX_MD_SIZE];
  unsigned int a_size = 0;
  unsigned int b_size = 0;
  if (EVP_Digest(given.data(), given.size(), a, &a_size, EVP_sha256(), nullptr) != 1 ||
      EVP_Digest(secret.data(), secret.size(), b, &b_size, EVP_sha256(), nullptr) != 1) {
    return false;
  }
  return a_size == b_size && CRYPTO_memcmp(a, b, a_size) == 0;
}

// The credentials after `scheme` and a space in an Authorization value
// (the scheme compared without case), or nullopt for another scheme.
std::optional<std::string_view> Credentials(std::string_view authorization,
                                            std::string_view scheme) {
  if (authorization.size() <= scheme.size() || authorization[scheme.size()] != ' ') {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return std::nullopt;
    }
  }
  std::string_view rest = authorization.substr(scheme.size() + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  return rest;
}

}  // namespace

StalwartWebhookSource::StalwartWebhookSource(SourceContext context, const StalwartConfig& config,
                                             std::uint32_t max_new_names)
    : context_(context),
      max_body_size_(config.max_body_size),
      decoder_(ingest::StalwartWebhookOptions{.max_new_names = max_new_names}),
      dedup_(config.dedup_window, ingest::EventDedup::MaxKeysFor(config.dedup_memory)) {
  SetCredentials(config);
}

void StalwartWebhookSource::SetCredentials(const StalwartConfig& config) {
  signature_key_ = config.signature_key;
  const std::string user_secret = config.username + ":" + config.secret;
  basic_ = config.username.empty() ? std::string()
                                   : Base64Encode(user_secret.data(), user_secret.size());
  bearer_ = config.token;
}

net::HttpRouteOptions StalwartWebhookSource::RouteOptions() {
  net::HttpRouteOptions options;
  options.api = true;
  options.max_body_bytes = static_cast<std::size_t>(max_body_size_);
  options.body_padding = ingest::StalwartWebhookPadding();
  options.check_headers = [this](const net::HttpRequest& request) { return CheckHeaders(request); };
  options.on_refused = [this](const net::HttpResponse& response) {
    const char* reason = response.status == 413 ? "body_too_large" : "unsupported_content_type";
    context_.Reject(Source::kStalwart,
                    Rejected(reason, fmt::format("refused with {}", response.status)), kWhere);
  };
  return options;
}

net::HttpResponse StalwartWebhookSource::Refuse(const net::HttpRequest& request, unsigned status,
                                                const Status& why) {
  context_.Reject(Source::kStalwart, why, kWhere);
  net::HttpResponse response = request.Error(status, why.message());
  if (status == 401 && why.reason() == "missing_authorization") {
    response.headers.push_back(
        {"WWW-Authenticate", bearer_.empty() ? "Basic realm=\"mailscope\"" : "Bearer"});
  }
  return response;
}

std::optional<net::HttpResponse> StalwartWebhookSource::CheckHeaders(
    const net::HttpRequest& request) {
  // Everything that needs no body is checked before it is read, so that a
  // client without credentials makes mailscope neither hold nor hash one.
  if (!basic_.empty() || !bearer_.empty()) {
    const std::string_view authorization = request.header("Authorization");
    if (authorization.empty()) {
      return Refuse(request, 401, Rejected("missing_authorization", "no Authorization header"));
    }
    const auto basic = Credentials(authorization, "Basic");
    const auto bearer = Credentials(authorization, "Bearer");
    const bool good = (!basic_.empty() && basic && SameSecret(*basic, basic_)) ||
                      (!bearer_.empty() && bearer && SameSecret(*bearer, bearer_));
    if (!good) {
      return Refuse(request, 403,
                    Rejected("bad_authorization",
                             "the Authorization header does not carry the configured credentials"));
    }
  }
  if (!signature_key_.empty()) {
    const std::string_view given = request.header("X-Signature");
    if (given.empty()) {
      return Refuse(request, 401, Rejected("missing_signature", "no X-Signature header"));
    }
    if (given.size() != kSignatureSize) {
      return Refuse(request, 403,
                    Rejected("bad_signature", "X-Signature is not a base64 HMAC-SHA256"));
    }
  }
  return std::nullopt;
}

std::optional<net::HttpResponse> StalwartWebhookSource::CheckSignature(
    const net::HttpRequest& request) {
  if (signature_key_.empty()) return std::nullopt;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  if (HMAC(EVP_sha256(), signature_key_.data(), static_cast<int>(signature_key_.size()),
           reinterpret_cast<const unsigned char*>(request.body.data()), request.body.size(), mac,
           &mac_size) == nullptr) {
    return Refuse(request, 503, ResourceExhausted("signature_error", "HMAC-SHA256 failed"));
  }
  if (!SameSecret(request.header("X-Signature"), Base64Encode(mac, mac_size))) {
    return Refuse(
        request, 403,
        Rejected("bad_signature",
                 "X-Signature is not the HMAC-SHA256 of the body under the signature key"));
  }
  return std::nullopt;
}

net::HttpResponse StalwartWebhookSource::Handle(const net::HttpRequest& request) {
  // The server ran CheckHeaders() before it read the body; a request that
  // comes another way (a test) is checked here.
  if (!request.headers_checked) {
    if (auto refused = CheckHeaders(request)) return *refused;
  }
  if (auto refused = CheckSignature(request)) return *refused;
  if (Status st = decoder_.Parse(request.body, request.body_capacity); !st.ok()) {
    return Refuse(request, st.code() == StatusCode::kResourceExhausted ? 503 : 400, st);
  }
  ++batches_;
  const TimePoint now = context_.clock.Now();
  std::size_t dispatched = 0;
  std::size_t duplicates = 0;
  // Two events in flight: event i is decoded and its dedup slot fetched
  // from memory while event i - 1 is looked up and dispatched, so the
  // lookup rarely waits. The decoder keeps the strings of both.
  struct Pending {
    bool ready = false;
    std::uint64_t key = 0;
  } pending[2];
  auto finish = [&](std::size_t slot) {
    Pending& p = pending[slot];
    if (!p.ready) return;
    p.ready = false;
    if (dedup_.Seen(p.key, now)) {
      ++duplicates;
      return;
    }
    RunContainedInput(context_, Source::kStalwart, [&] {
      context_.Dispatch(events_[slot]);
      ++dispatched;
    });
  };
  for (std::size_t i = 0; i < decoder_.size(); ++i) {
    const std::size_t slot = i % 2;
    RunContainedInput(context_, Source::kStalwart, [&] {
      if (Status st = decoder_.Decode(i, events_[slot]); !st.ok()) {
        context_.Reject(Source::kStalwart, st, kWhere);
        return;
      }
      pending[slot] = {true, decoder_.dedup_key()};
      dedup_.Prefetch(pending[slot].key);
    });
    finish(1 - slot);
  }
  finish(decoder_.size() % 2 == 0 ? 1 : 0);
  return net::HttpResponse{
      200,
      "application/json",
      fmt::format("{{\"events\":{},\"duplicates\":{}}}\n", dispatched, duplicates),
      {}};
}

StalwartFigures StalwartWebhookSource::figures() const {
  return {.batches = batches_,
          .duplicates = dedup_.duplicates(),
          .dedup_evicted = dedup_.evicted(),
          .dedup_keys = dedup_.size(),
          .dedup_max_keys = dedup_.max_keys()};
}

}  // namespace mailscope::serve
