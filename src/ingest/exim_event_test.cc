#include "ingest/exim_event.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace mailscope::ingest {
namespace {

const TimePoint kNow = TimePoint{} + std::chrono::seconds(1'800'000'000);

// One decode of `request` (a copy: values are unescaped in place).
struct Decoded {
  std::string bytes;
  Event event;
  Status status;

  Value Field(std::string_view key) const {
    const NameId id = FindName(key);
    if (id == kNoName) return {};
    const mailscope::Field* f = event.Find(id);
    return f ? f->value : Value();
  }
  std::string Str(std::string_view key) const { return std::string(Field(key).as_string()); }
};

Decoded Decode(std::string request, EximEventDecoder& decoder) {
  Decoded d;
  d.bytes = std::move(request);
  d.status = decoder.Decode(std::span<char>(d.bytes.data(), d.bytes.size()), kNow, d.event);
  return d;
}

Decoded Decode(std::string request) {
  EximEventDecoder decoder;
  return Decode(std::move(request), decoder);
}

// The request the shipped fragment makes for S08 of the captures (a 451 to
// RCPT from a host found by its A record), the fields Exim left empty
// written as ${quote:} writes them.
constexpr std::string_view kRcptDefer =
    "event hook=transport exim_version=4.96 event_name=\"msg:rcpt:defer\" "
    "event_data=\"SMTP error from remote mail server after RCPT TO:<tempfail@ok.example>: 451 "
    "4.3.0 <tempfail@ok.example>: try again later (sink)\" event_defer_errno=13121 "
    "message_exim_id=1xUuw4-0001X0-1j sender_address=\"alice@test.local\" message_size=448 "
    "received_time=1795305358 domain=ok.example local_part=tempfail host=127.0.0.1 "
    "host_address=127.0.0.1 host_port=2627 router_name=smarthost transport_name=remote_smtp "
    "verify_mode=\"\" tls_out_cipher=\"TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:"
    "256\" tls_out_bits=256 pid=5840";

TEST(EximEventDecoderTest, DecodesACapturedRcptDefer) {
  Decoded d = Decode(std::string(kRcptDefer));
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.event.source, Source::kExim);
  EXPECT_EQ(NameText(d.event.name), "msg:rcpt:defer");
  EXPECT_EQ(d.event.time, kNow);
  EXPECT_EQ(d.Str("hook"), "transport");
  EXPECT_EQ(d.Str("domain"), "ok.example");
  EXPECT_EQ(d.Str("sender_address"), "alice@test.local");
  EXPECT_EQ(d.Str("message_exim_id"), "1xUuw4-0001X0-1j");
  EXPECT_EQ(d.Str("event_data"),
            "SMTP error from remote mail server after RCPT TO:<tempfail@ok.example>: 451 4.3.0 "
            "<tempfail@ok.example>: try again later (sink)");
  EXPECT_EQ(d.Field("event_defer_errno").as_int(), 13121);
  EXPECT_EQ(d.Field("host_port").type(), Value::Type::kInt);
  EXPECT_EQ(d.Field("host_port").as_int(), 2627);
  EXPECT_EQ(d.Field("message_size").as_int(), 448);
  EXPECT_EQ(d.Field("message_size").unit(), Unit::kBytes);
  // (51 << 8) | 'A': a 451 from a host found by its A record.
  EXPECT_EQ(d.Field("smtp_code").as_int(), 451);
  EXPECT_EQ(d.Str("defer_lookup"), "A");
  // received_time 1795305358 is 4694642 s before kNow: its queue time.
  EXPECT_EQ(d.Field("queue_time").as_int(), 1'800'000'000 - 1795305358);
  EXPECT_EQ(d.Field("queue_time").unit(), Unit::kSeconds);
  // Empty variables are left out; the event name is not a field.
  EXPECT_EQ(d.Field("verify_mode").type(), Value::Type::kNone);
  EXPECT_EQ(d.Field("event_name").type(), Value::Type::kNone);
}

TEST(EximEventDecoderTest, QuotedValuesComeBackByteForByte) {
  // ${quote:} of a multi-line EHLO response with a TAB, a quote, a
  // backslash, a CR and 8-bit text, as Exim 4.96 writes it.
  Decoded d = Decode(
      "event event_name=\"smtp:ehlo\" event_data=\"250-sink.test Hello\\n250-SIZE\t52428800\\r\\n"
      "250 \\\"caf\xc3\xa9\\\" \\\\o/\" host=\"a b\"");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Str("event_data"),
            "250-sink.test Hello\n250-SIZE\t52428800\r\n250 \"caf\xc3\xa9\" \\o/");
  EXPECT_EQ(d.Str("host"), "a b");
}

TEST(EximEventDecoderTest, ToleratesSpacingAndAMissingNewlineOnly) {
  Decoded d = Decode("  event   event_name=tcp:close   host_port=25  ");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(NameText(d.event.name), "tcp:close");
  EXPECT_EQ(d.Field("host_port").as_int(), 25);
}

TEST(EximEventDecoderTest, DeferErrnoOfHostDefersByName) {
  Decoded refused = Decode("event event_name=msg:host:defer event_defer_errno=111");
  ASSERT_TRUE(refused.status.ok());
  EXPECT_EQ(refused.Str("defer_errno_name"), "ECONNREFUSED");
  EXPECT_EQ(refused.Field("smtp_code").type(), Value::Type::kNone);
  // -58 is ERRNO_EVENT in 4.96: a tcp:connect verdict stopped the connection.
  Decoded verdict = Decode("event exim_version=4.96 event_name=msg:defer event_defer_errno=-58");
  EXPECT_EQ(verdict.Str("defer_errno_name"), "ERRNO_EVENT");
  // Codes below -50 were renumbered after 4.96: a later version keeps the number only.
  Decoded later = Decode("event exim_version=4.98 event_name=msg:defer event_defer_errno=-58");
  EXPECT_EQ(later.Field("defer_errno_name").type(), Value::Type::kNone);
  EXPECT_EQ(later.Field("event_defer_errno").as_int(), -58);
  Decoded tls = Decode("event exim_version=4.98 event_name=msg:host:defer event_defer_errno=-37");
  EXPECT_EQ(tls.Str("defer_errno_name"), "ERRNO_TLSFAILURE");
  // Stale in later events of the same process (S08: tcp:close after the
  // 451): not decoded there.
  Decoded stale = Decode("event event_name=tcp:close event_defer_errno=13121");
  EXPECT_EQ(stale.Field("smtp_code").type(), Value::Type::kNone);
  EXPECT_EQ(stale.Field("defer_errno_name").type(), Value::Type::kNone);
}

TEST(EximEventDecoderTest, DecodeDeferErrnoCoversEveryForm) {
  EXPECT_EQ(DecodeDeferErrno("msg:rcpt:host:defer", (51 << 8) | 'M', "4.96").lookup, "MX");
  EXPECT_EQ(DecodeDeferErrno("msg:rcpt:host:defer", (51 << 8) | 'M', "4.96").smtp_code, 451);
  EXPECT_EQ(DecodeDeferErrno("msg:rcpt:defer", (21 << 8) | 'A', "").smtp_code, 421);
  // Not the more_errno form: nothing.
  EXPECT_EQ(DecodeDeferErrno("msg:rcpt:defer", 111, "").smtp_code, 0);
  EXPECT_EQ(DecodeDeferErrno("msg:rcpt:defer", -58, "4.96").name, "");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", -1, "").name, "ERRNO_UNKNOWNERROR");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", -50, "").name, "ERRNO_HOST_IS_LOCAL");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", -51, "4.96").name, "ERRNO_TAINT");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", -54, "4.96").name, "ERRNO_HRETRY");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", -59, "4.96").name, "");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", -51, "").name, "");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", 110, "").name, "ETIMEDOUT");
  EXPECT_EQ(DecodeDeferErrno("msg:defer", 1'000'000, "").name, "");
  EXPECT_EQ(DecodeDeferErrno("msg:delivery", 111, "").name, "");
}

TEST(EximEventDecoderTest, EventsNewerThan496AreDecodedToo) {
  // auth:fail (4.97), dns:fail (4.98) and smtp:fail:* (4.99) as a later
  // Exim would send them with the same fragment.
  Decoded auth = Decode(
      "event exim_version=4.97 event_name=auth:fail event_data=\"535 Incorrect authentication "
      "data\" sender_host_authenticated=plain_server authenticated_fail_id=testuser "
      "sender_host_address=192.0.2.7");
  ASSERT_TRUE(auth.status.ok()) << auth.status.message();
  EXPECT_EQ(NameText(auth.event.name), "auth:fail");
  EXPECT_EQ(auth.Str("authenticated_fail_id"), "testuser");
  Decoded dns =
      Decode("event exim_version=4.98 event_name=dns:fail event_data=\"DNS_NOMATCH:x.example:A\"");
  ASSERT_TRUE(dns.status.ok());
  EXPECT_EQ(dns.Str("event_data"), "DNS_NOMATCH:x.example:A");
  for (const char* name : {"smtp:fail:protocol", "smtp:fail:syntax"}) {
    Decoded smtp = Decode(std::string("event exim_version=4.99 event_name=") + name +
                          " event_data=\"unrecognized command\" sender_host_address=192.0.2.9");
    ASSERT_TRUE(smtp.status.ok()) << name;
    EXPECT_EQ(NameText(smtp.event.name), name);
  }
}

struct BadRequest {
  std::string request;
  std::string_view reason;
};

TEST(EximEventDecoderTest, MalformedRequestsAreRejectedWithAReason) {
  const BadRequest cases[] = {
      {"", "empty_line"},
      {"   ", "empty_line"},
      {"EVENT event_name=tcp:connect", "unknown_command"},
      {"acl step=rcpt", "unknown_command"},
      {std::string("event event_name=tcp:connect host=\"a\0b\"", 40), "malformed_request"},
      {"event event_name=\"tcp:connect", "malformed_request"},
      {"event event_name=tcp:connect host=\"x\\", "malformed_request"},
      {"event event_name=tcp:connect host=\"\\t\"", "malformed_request"},
      {"event event_name=tcp:connect host=\"x\"y", "malformed_request"},
      {"event event_name=tcp:connect host=x\"y", "malformed_request"},
      {"event event_name=tcp:connect host", "malformed_request"},
      {"event event_name=tcp:connect =x", "malformed_request"},
      {"event event_name=tcp:connect Host=x", "malformed_request"},
      {"event event_name=tcp:connect host=a host=b", "malformed_request"},
      {"event event_name=a event_name=b", "malformed_request"},
      {"event event_name=tcp:connect " + std::string(65, 'k') + "=1", "malformed_request"},
      {"event event_name=msg:defer smtp_code=451", "malformed_request"},
      {"event event_name=msg:defer queue_time=1", "malformed_request"},
      {"event host=x", "no_event_name"},
      {"event event_name=\"\"", "no_event_name"},
      {"event event_name=\"tcp connect\"", "invalid_event_name"},
      {"event event_name=" + std::string(65, 'e'), "invalid_event_name"},
      {"event event_name=tcp:connect host_port=25x", "invalid_number"},
      {"event event_name=tcp:connect event_defer_errno=99999999999999999999", "invalid_number"},
  };
  for (const BadRequest& c : cases) {
    Decoded d = Decode(c.request);
    EXPECT_FALSE(d.status.ok()) << c.request;
    EXPECT_EQ(d.status.reason(), c.reason) << c.request << ": " << d.status.message();
  }
}

TEST(EximEventDecoderTest, TooManyFieldsAreRejected) {
  std::string request = "event event_name=tcp:connect";
  for (std::size_t i = 0; i < kEximRequestMaxFields; ++i)
    request += " f" + std::to_string(i) + "=1";
  Decoded d = Decode(request);
  EXPECT_EQ(d.status.reason(), "too_many_fields") << d.status.message();
}

TEST(EximEventDecoderTest, NewNamesComeFromOneBudgetForTheEndpoint) {
  EximDecoderOptions options;
  options.max_new_names = 2;
  EximEventDecoder decoder(options);
  // As the catalog and earlier requests leave them.
  InternName("msg:delivery");
  InternName("domain");
  const std::string prefix = "event event_name=msg:delivery ";
  // Names the table holds already cost nothing.
  EXPECT_TRUE(Decode(prefix + "domain=a", decoder).status.ok());
  EXPECT_TRUE(Decode(prefix + "exim_budget_key_one=1", decoder).status.ok());
  EXPECT_TRUE(Decode("event event_name=exim:budget:new", decoder).status.ok());
  // Later requests come on other connections: the budget is the decoder's.
  Decoded refused = Decode(prefix + "exim_budget_key_two=1", decoder);
  EXPECT_EQ(refused.status.reason(), "client_name_budget") << refused.status.message();
  Decoded refused_name = Decode("event event_name=exim:budget:newer", decoder);
  EXPECT_EQ(refused_name.status.reason(), "client_name_budget");
  EXPECT_EQ(decoder.name_budget().added(), 2u);
  EXPECT_EQ(decoder.name_budget().refused(), 2u);
  EXPECT_TRUE(Decode(prefix + "domain=b", decoder).status.ok());
}

}  // namespace
}  // namespace mailscope::ingest
