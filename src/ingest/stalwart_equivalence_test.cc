// The same emissions of Stalwart, as its webhook posts them and as its text
// log writes them (reference stalwart-telemetry.md §2.3 and §3.1: the JSON's
// data has the event's keys first and no repeats, the log's line the span's
// keys first, spanId left out), decode to the same events: name, time and
// every field with its type, unit and value.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ingest/log_lines.h"
#include "ingest/stalwart_webhook.h"

namespace mailscope::ingest {
namespace {

struct Emission {
  std::string json;  // one element of "events"
  std::string line;  // the log line
};

// A full inbound session, an outbound delivery and an authentication failure
// with a nested cause, in both era's names (the old one in the log).
const std::vector<Emission>& Emissions() {
  static const std::vector<Emission> kEmissions = {
      {R"({"id":"17499828530417","createdAt":"2025-06-15T10:20:53Z","type":"smtp.connection-start","data":{"listenerId":"smtp","localPort":25,"remoteIp":"203.0.113.5","remotePort":51234,"spanId":8340150942317542113}})",
       R"(2025-06-15T10:20:53Z INFO SMTP connection started (smtp.connection-start) listenerId = "smtp", localPort = 25, remoteIp = 203.0.113.5, remotePort = 51234)"},
      {R"({"id":"17499828531444","createdAt":"2025-06-15T10:20:53Z","type":"smtp.mail-from","data":{"spanId":8340150942317542113,"from":"alice@example.net","listenerId":"smtp","localPort":25,"remoteIp":"203.0.113.5","remotePort":51234}})",
       R"(2025-06-15T10:20:53Z INFO SMTP MAIL FROM command (smtp.mail-from) listenerId = "smtp", localPort = 25, remoteIp = 203.0.113.5, remotePort = 51234, from = "alice@example.net")"},
      {R"({"id":"17499828542380","createdAt":"2025-06-15T10:20:54Z","type":"queue.message-queued","data":{"spanId":8340150942317542113,"queueId":318470021457,"from":"alice@example.net","to":["bob@example.org","carol@example.org"],"size":48213,"nextRetry":"2025-06-15T10:20:54Z","nextDsn":"2025-06-16T10:20:54Z","expires":"2025-06-20T10:20:54Z","listenerId":"smtp","localPort":25,"remoteIp":"203.0.113.5","remotePort":51234}})",
       R"(2025-06-15T10:20:54Z INFO Queued message for delivery (queue.queue-message) listenerId = "smtp", localPort = 25, remoteIp = 203.0.113.5, remotePort = 51234, queueId = 318470021457, from = "alice@example.net", to = ["bob@example.org", "carol@example.org"], size = 48213, nextRetry = 2025-06-15T10:20:54Z, nextDsn = 2025-06-16T10:20:54Z, expires = 2025-06-20T10:20:54Z)"},
      {R"({"id":"17499828553283","createdAt":"2025-06-15T10:20:55Z","type":"message-ingest.ham","data":{"spanId":1193046000171,"accountId":42,"documentId":1871,"mailboxId":[0],"blobId":"9f2c0de1","changeId":90211,"messageId":"<CAF=abc123@mail.example.net>","size":48213,"elapsed":12}})",
       R"(2025-06-15T10:20:55Z INFO Message ingested (message-ingest.ham) accountId = 42, documentId = 1871, mailboxId = [0], blobId = "9f2c0de1", changeId = 90211, messageId = "<CAF=abc123@mail.example.net>", size = 48213, elapsed = 12ms)"},
      {R"({"id":"17499828554416","createdAt":"2025-06-15T10:20:55Z","type":"smtp.connection-end","data":{"spanId":8340150942317542113,"elapsed":2140,"listenerId":"smtp","localPort":25,"remoteIp":"203.0.113.5","remotePort":51234}})",
       R"(2025-06-15T10:20:55Z DEBUG SMTP connection ended (smtp.connection-end) listenerId = "smtp", localPort = 25, remoteIp = 203.0.113.5, remotePort = 51234, elapsed = 2140ms)"},
      {R"({"id":"1749982861577","createdAt":"2025-06-15T10:21:01Z","type":"delivery.attempt-start","data":{"spanId":77129,"queueId":318470021458,"queueName":"remote","from":"alice@example.org","to":["carol@example.com"],"size":5120,"total":1}})", R"(2025-06-15T10:21:01Z INFO Delivery attempt started (delivery.attempt-start) queueId = 318470021458, queueName = "remote", from = "alice@example.org", to = ["carol@example.com"], size = 5120, total = 1)"},
      {R"({"id":"1749982862684","createdAt":"2025-06-15T10:21:02Z","type":"delivery.rcpt-to-rejected","data":{"spanId":77129,"hostname":"mx1.example.com","to":"carol@example.com","code":451,"details":"4.7.1 Try \"later\"\tplease","elapsed":812,"queueId":318470021458,"queueName":"remote","from":"alice@example.org","size":5120,"total":1}})",
       R"(2025-06-15T10:21:02Z INFO Recipient rejected (delivery.rcpt-to-rejected) queueId = 318470021458, queueName = "remote", from = "alice@example.org", to = ["carol@example.com"], size = 5120, total = 1, hostname = "mx1.example.com", to = "carol@example.com", code = 451, details = "4.7.1 Try \"later\"\tplease", elapsed = 812ms)"},
      {R"({"id":"1749983000935","createdAt":"2025-06-15T10:23:20Z","type":"auth.failed","data":{"accountName":"bob@example.org","remoteIp":"198.51.100.7","spanId":5512,"causedBy":{"type":"store.ldap-error","data":{"reason":"connection refused"}}}})",
       R"(2025-06-15T10:23:20Z DEBUG Authentication failed (auth.failed) accountName = "bob@example.org", remoteIp = 198.51.100.7, causedBy = LDAP error (store.ldap-error) { reason = "connection refused" })"},
  };
  return kEmissions;
}

// An event as comparable text: name, time, and fields sorted by key.
struct Shape {
  std::string name;
  std::int64_t time;
  std::map<std::string, std::tuple<Value::Type, Unit, std::string>> fields;
  bool operator==(const Shape&) const = default;
};

std::string Text(const Value& v) {
  switch (v.type()) {
    case Value::Type::kString:
      return std::string(v.as_string());
    case Value::Type::kUint:
      return std::to_string(v.as_uint());
    case Value::Type::kInt:
      return std::to_string(v.as_int());
    case Value::Type::kTimeval:
      return std::to_string(v.as_timeval().sec);
    case Value::Type::kBool:
      return v.as_bool() ? "true" : "false";
    case Value::Type::kDouble:
      return std::to_string(v.as_double());
    default:
      return "?";
  }
}

Shape ShapeOf(const Event& e) {
  Shape s{std::string(NameText(e.name)), UnixSeconds(e.time), {}};
  for (const Field& f : e.fields) {
    s.fields[std::string(NameText(f.key))] = {f.value.type(), f.value.unit(), Text(f.value)};
  }
  return s;
}

TEST(StalwartEquivalenceTest, WebhookAndTextLogGiveTheSameEvents) {
  std::string body = R"({"events":[)";
  for (const Emission& e : Emissions()) {
    if (body.back() != '[') body += ',';
    body += e.json;
  }
  body += "]}";
  StalwartWebhookDecoder webhook;
  ASSERT_TRUE(webhook.Parse(body, body.size()).ok());
  ASSERT_EQ(webhook.size(), Emissions().size());
  LogLines log(MakeLogLineFormat("stalwart"), TimeZone::Utc(), TimePoint{});
  for (std::size_t i = 0; i < Emissions().size(); ++i) {
    Event from_json;
    Event from_log;
    ASSERT_TRUE(webhook.Decode(i, from_json).ok());
    const Status st = log.Decode(Emissions()[i].line, TimePoint{}, from_log);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(from_json.source, Source::kStalwart);
    EXPECT_EQ(from_log.source, Source::kStalwartLog);
    const Shape a = ShapeOf(from_json);
    const Shape b = ShapeOf(from_log);
    EXPECT_EQ(a.name, b.name) << i;
    EXPECT_EQ(a.time, b.time) << a.name;
    EXPECT_EQ(a.fields.size(), b.fields.size()) << a.name;
    for (const auto& [key, value] : a.fields) {
      auto it = b.fields.find(key);
      ASSERT_NE(it, b.fields.end()) << a.name << ": the log has no " << key;
      EXPECT_EQ(value, it->second) << a.name << ": " << key << " webhook " << std::get<2>(value)
                                   << ", log " << std::get<2>(it->second);
    }
  }
}

}  // namespace
}  // namespace mailscope::ingest
