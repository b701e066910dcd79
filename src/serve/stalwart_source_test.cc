#include "serve/stalwart_source.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <string>
#include <vector>

#include "catalog/event_router.h"
#include "core/base64.h"

namespace mailscope::serve {
namespace {

using namespace std::chrono_literals;

// Keeps the name and level of every event it is handed.
class Recorder : public pipeline::Consumer {
 public:
  std::string_view Consume(const Event& event) override {
    seen.emplace_back(std::string(NameText(event.name)), event.level);
    return {};
  }
  std::vector<std::pair<std::string, Level>> seen;
};

struct Fixture {
  explicit Fixture(catalog::EventControlOptions options = {}) {
    auto router = catalog::MakeCatalogRouter(options);
    EXPECT_TRUE(router.ok());
    dispatcher = std::make_unique<pipeline::Dispatcher>(counters, std::move(*router));
    dispatcher->Register("metrics", recorder);  // metrics take every level
  }
  SourceContext Context() { return SourceContext{*dispatcher, counters, log, clock, nullptr}; }
  std::uint64_t Events(std::string_view name) const {
    return counters.events(Source::kStalwart, InternName(name));
  }

  stats::IngestCounters counters;
  std::unique_ptr<pipeline::Dispatcher> dispatcher;
  Recorder recorder;
  RateLimitedLog log{10, 10s};
  FakeClock clock;
};

class Headers : public net::HttpHeaderSource {
 public:
  std::map<std::string, std::string> fields;  // lower-case names
  std::string_view Find(std::string_view name) const override {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = fields.find(lower);
    return it == fields.end() ? std::string_view() : std::string_view(it->second);
  }
};

net::HttpResponse Post(StalwartWebhookSource& source, const std::string& body,
                       const Headers& headers = {}) {
  net::HttpRequest req;
  req.method = "POST";
  req.target = req.path = "/ingest/stalwart";
  req.body = body;
  req.body_capacity = body.size();
  req.headers = &headers;
  req.api = true;
  return source.Handle(req);
}

std::string Sign(std::string_view key, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &size);
  return Base64Encode(mac, size);
}

std::string Event(std::string_view id, std::string_view type, std::string_view data = "{}") {
  return R"({"id":")" + std::string(id) + R"(","createdAt":"2025-06-15T10:20:53Z","type":")" +
         std::string(type) + R"(","data":)" + std::string(data) + "}";
}

std::string Batch(std::initializer_list<std::string> events) {
  std::string body = R"({"events":[)";
  for (const std::string& e : events) {
    if (body.back() != '[') body += ',';
    body += e;
  }
  return body + "]}";
}

TEST(StalwartWebhookSourceTest, CountsEachEventOnceAcrossResentBatches) {
  Fixture f;
  StalwartWebhookSource source(f.Context(), StalwartConfig{}, 1000);
  const std::string a = Event("17499828531444", "smtp.mail-from", R"({"from":"a@x"})");
  const std::string b = Event("17499828531445", "smtp.rcpt-to", R"({"to":"b@y"})");
  net::HttpResponse r = Post(source, Batch({a}));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "{\"events\":1,\"duplicates\":0}\n");
  // Re-sent whole after a timeout, then merged with a newer event.
  EXPECT_EQ(Post(source, Batch({a})).body, "{\"events\":0,\"duplicates\":1}\n");
  EXPECT_EQ(Post(source, Batch({b, a})).body, "{\"events\":1,\"duplicates\":1}\n");
  EXPECT_EQ(f.Events("smtp.mail-from"), 1u);
  EXPECT_EQ(f.Events("smtp.rcpt-to"), 1u);
  EXPECT_EQ(source.figures().duplicates, 2u);
  EXPECT_EQ(source.figures().batches, 3u);
  // Past the window the same event is new again.
  f.clock.Set(f.clock.Now() + 5min);
  EXPECT_EQ(Post(source, Batch({a})).body, "{\"events\":1,\"duplicates\":0}\n");
}

TEST(StalwartWebhookSourceTest, AZeroWindowCountsEveryEvent) {
  Fixture f;
  StalwartConfig config;
  config.dedup_window = 0s;
  StalwartWebhookSource source(f.Context(), config, 1000);
  const std::string a = Event("1", "smtp.ehlo");
  Post(source, Batch({a}));
  Post(source, Batch({a}));
  EXPECT_EQ(f.Events("smtp.ehlo"), 2u);
}

TEST(StalwartWebhookSourceTest, AMalformedBodyIsA400AndCountsNothing) {
  Fixture f;
  StalwartWebhookSource source(f.Context(), StalwartConfig{}, 1000);
  const std::string good = Event("1", "smtp.ehlo");
  for (const std::string& body :
       {Batch({good, "7"}), Batch({good}).substr(0, 40), std::string("{\"events\":\"x\"}")}) {
    net::HttpResponse r = Post(source, body);
    EXPECT_EQ(r.status, 400u) << body;
    EXPECT_EQ(r.content_type, "application/json");
  }
  EXPECT_EQ(f.Events("smtp.ehlo"), 0u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "bad_event"), 1u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "bad_json"), 1u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "bad_batch"), 1u);
  // The good body after them is taken as if they had not come.
  EXPECT_EQ(Post(source, Batch({good})).status, 200u);
  EXPECT_EQ(f.Events("smtp.ehlo"), 1u);
}

TEST(StalwartWebhookSourceTest, TheSignatureIsCheckedBeforeTheBody) {
  Fixture f;
  StalwartConfig config;
  config.signature_key = "s3cr3t-key";
  StalwartWebhookSource source(f.Context(), config, 1000);
  const std::string body = Batch({Event("1", "auth.failed", R"({"remoteIp":"198.51.100.7"})")});
  Headers none;
  EXPECT_EQ(Post(source, body, none).status, 401u);
  Headers wrong;
  wrong.fields["x-signature"] = Sign("other-key", body);
  EXPECT_EQ(Post(source, body, wrong).status, 403u);
  Headers other_body;
  other_body.fields["x-signature"] = Sign("s3cr3t-key", body + " ");
  EXPECT_EQ(Post(source, body, other_body).status, 403u);
  // A bad body with a bad signature is refused for the signature.
  EXPECT_EQ(Post(source, "{", wrong).status, 403u);
  // Not the length of a base64 HMAC-SHA256: refused from the header alone.
  Headers short_one;
  short_one.fields["x-signature"] = "c2hvcnQ=";
  const net::HttpResponse r = Post(source, body, short_one);
  EXPECT_EQ(r.status, 403u);
  EXPECT_TRUE(r.headers.empty()) << "WWW-Authenticate is for Authorization only";
  EXPECT_EQ(f.Events("auth.failed"), 0u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "missing_signature"), 1u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "bad_signature"), 4u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "bad_json"), 0u);
  Headers good;
  good.fields["x-signature"] = Sign("s3cr3t-key", body);
  EXPECT_EQ(Sign("s3cr3t-key", body).size(), 44u);
  EXPECT_EQ(Post(source, body, good).status, 200u);
  EXPECT_EQ(f.Events("auth.failed"), 1u);
}

TEST(StalwartWebhookSourceTest, BasicAndBearerAuthorization) {
  Fixture f;
  StalwartConfig config;
  config.username = "stalwart";
  config.secret = "pa:ss";
  config.token = "tok-123";
  StalwartWebhookSource source(f.Context(), config, 1000);
  const std::string body = Batch({Event("1", "smtp.ehlo")});
  auto status = [&](std::string authorization) {
    Headers h;
    if (!authorization.empty()) h.fields["authorization"] = authorization;
    return Post(source, body, h).status;
  };
  EXPECT_EQ(status(""), 401u);
  EXPECT_EQ(status("Basic " + Base64Encode("stalwart:pa:ss", 14)), 200u);
  EXPECT_EQ(status("basic " + Base64Encode("stalwart:pa:ss", 14)), 200u);
  EXPECT_EQ(status("Bearer tok-123"), 200u);
  EXPECT_EQ(status("Basic " + Base64Encode("stalwart:wrong", 14)), 403u);
  EXPECT_EQ(status("Bearer tok-124"), 403u);
  EXPECT_EQ(status("Bearer " + Base64Encode("stalwart:pa:ss", 14)), 403u);
  EXPECT_EQ(status("Digest x"), 403u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "missing_authorization"), 1u);
  EXPECT_EQ(f.counters.rejected(Source::kStalwart, "bad_authorization"), 4u);
  // Reloaded credentials apply to the next POST.
  config.token = "tok-new";
  source.SetCredentials(config);
  EXPECT_EQ(status("Bearer tok-123"), 403u);
  EXPECT_EQ(status("Bearer tok-new"), 200u);
}

TEST(StalwartWebhookSourceTest, EventsTakeTheirCatalogLevelWithOverrides) {
  catalog::EventControlOptions options;
  options.levels.emplace_back("stalwart:smtp.ehlo", Level::kError);
  Fixture f(options);
  StalwartWebhookSource source(f.Context(), StalwartConfig{}, 1000);
  Post(source, Batch({Event("1", "smtp.ehlo"), Event("2", "auth.failed"),
                      Event("3", "delivery.raw-input")}));
  std::map<std::string, Level> levels(f.recorder.seen.begin(), f.recorder.seen.end());
  ASSERT_EQ(levels.count("smtp.ehlo"), 1u);
  EXPECT_EQ(levels["smtp.ehlo"], Level::kError) << "the configured override";
  const auto* failed = catalog::Catalog::Get().Find(catalog::System::kStalwart, "auth.failed");
  ASSERT_NE(failed, nullptr);
  ASSERT_TRUE(failed->level.has_value());
  EXPECT_EQ(levels["auth.failed"], *failed->level) << "the catalog's default";
}

}  // namespace
}  // namespace mailscope::serve
