#include "ingest/dovecot_old_stats.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "catalog/dovecot_old_stats.h"
#include "core/base64.h"

namespace mailscope::ingest {
namespace {

// A real UPDATE-SESSION payload captured from Dovecot 2.3.19.1 (reference §2.10).
constexpr std::string_view kRealSessionPayload =
    "bWFpbAAAAAAAAAAAAKQgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAtAIAAAAAAADmAAAAAgAAACIAAAAIAAAAAE"
    "AAAAAAAAAAAAEAAAAAAC0AAAA+"
    "AAAATxcAAAAAAACTIQAAAAAAAAEAAAAAAAAAAQAAAAAAAAAeAAAAAAAAAAEAAAAAAAAA";

struct Decoded {
  DecodeResult result;
  Event event;
  std::string line;  // keeps the string views alive
  std::unique_ptr<DovecotOldStatsDecoder> decoder = std::make_unique<DovecotOldStatsDecoder>();
};

// Records point into the decoder's buffer: each Decoded keeps its decoder.
Decoded Decode(std::string line) {
  Decoded d;
  d.line = std::move(line);
  d.result = d.decoder->Decode(d.line, TimePoint(std::chrono::seconds(1'795'304'655)), d.event);
  return d;
}

// A field, or a column of one of the event's record fields; nullopt if absent.
std::optional<Value> Get(const Event& e, std::string_view key) {
  Value v = e.Lookup(key);
  if (v.type() == Value::Type::kNone) return std::nullopt;
  return v;
}

TEST(DovecotOldStatsDecoderTest, Connect) {
  auto d =
      Decode("CONNECT\t+0898NFgauV/AAAB\talice@example.com\timap\t19575\tlip=127.0.0.1\trip=::1");
  ASSERT_TRUE(d.result.emit);
  ASSERT_TRUE(d.result.status.ok());
  EXPECT_EQ(NameText(d.event.name), "CONNECT");
  EXPECT_EQ(d.event.source, Source::kDovecotOldStats);
  EXPECT_EQ(Get(d.event, "session")->as_string(), "+0898NFgauV/AAAB");
  EXPECT_EQ(Get(d.event, "user")->as_string(), "alice@example.com");
  EXPECT_EQ(Get(d.event, "service")->as_string(), "imap");
  EXPECT_EQ(Get(d.event, "pid")->as_int(), 19575);
  EXPECT_EQ(Get(d.event, "lip")->as_string(), "127.0.0.1");
  EXPECT_EQ(Get(d.event, "rip")->as_string(), "::1");
}

// Parameters past what an event holds are dropped and the event is marked
// truncated; the fields before them stay.
TEST(DovecotOldStatsDecoderTest, TooManyParametersTruncateTheFields) {
  std::string line = "CONNECT\tS\tu\timap\t1";
  for (std::size_t i = 0; i < FieldList::kCapacity; ++i)
    line += "\trip=192.0.2." + std::to_string(i % 250);
  auto d = Decode(line);
  ASSERT_TRUE(d.result.emit);
  EXPECT_TRUE(d.event.fields.truncated());
  EXPECT_EQ(d.event.fields.size(), FieldList::kCapacity);
  EXPECT_EQ(Get(d.event, "session")->as_string(), "S");
  EXPECT_EQ(Get(d.event, "rip")->as_string(), "192.0.2.0");
}

TEST(DovecotOldStatsDecoderTest, EscapedUsernameIsUnescaped) {
  auto d = Decode("CONNECT\tid\tweird\001tname\timap\t1");
  ASSERT_TRUE(d.result.emit);
  EXPECT_EQ(Get(d.event, "user")->as_string(), "weird\tname");
}

TEST(DovecotOldStatsDecoderTest, RealSessionPayloadDecodesEveryColumn) {
  auto d = Decode("UPDATE-SESSION\t+0898NFgauV/AAAB\t" + std::string(kRealSessionPayload));
  ASSERT_TRUE(d.result.status.ok()) << d.result.status.ToString();
  EXPECT_EQ(Get(d.event, "user_cpu")->as_timeval(), (Timeval{0, 8356}));
  EXPECT_EQ(Get(d.event, "sys_cpu")->as_timeval(), (Timeval{0, 0}));
  EXPECT_EQ(Get(d.event, "clock_time")->as_timeval(), (Timeval{0, 692}));
  EXPECT_EQ(Get(d.event, "min_faults")->as_uint(), 230u);
  EXPECT_EQ(Get(d.event, "maj_faults")->as_uint(), 2u);
  EXPECT_EQ(Get(d.event, "vol_cs")->as_uint(), 34u);
  EXPECT_EQ(Get(d.event, "invol_cs")->as_uint(), 8u);
  EXPECT_EQ(Get(d.event, "disk_input")->as_uint(), 16384u);
  EXPECT_EQ(Get(d.event, "disk_output")->as_uint(), 65536u);
  EXPECT_EQ(Get(d.event, "read_count")->as_uint(), 45u);
  EXPECT_EQ(Get(d.event, "write_count")->as_uint(), 62u);
  EXPECT_EQ(Get(d.event, "read_bytes")->as_uint(), 5967u);
  EXPECT_EQ(Get(d.event, "write_bytes")->as_uint(), 8595u);
  EXPECT_EQ(Get(d.event, "mail_lookup_path")->as_uint(), 1u);
  EXPECT_EQ(Get(d.event, "mail_lookup_attr")->as_uint(), 0u);
  EXPECT_EQ(Get(d.event, "mail_read_count")->as_uint(), 1u);
  EXPECT_EQ(Get(d.event, "mail_read_bytes")->as_uint(), 30u);
  EXPECT_EQ(Get(d.event, "mail_cache_hits")->as_uint(), 1u);
  EXPECT_EQ(Get(d.event, "auth_successes"), std::nullopt);  // the auth item was not sent
}

TEST(DovecotOldStatsDecoderTest, AddUserAuthPayload) {
  auto ok = Decode("ADD-USER\tcarol@example.net\timap\tYXV0aAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  ASSERT_TRUE(ok.result.status.ok());
  EXPECT_EQ(Get(ok.event, "auth_successes")->as_uint(), 1u);
  EXPECT_EQ(Get(ok.event, "auth_failures")->as_uint(), 0u);
  auto fail = Decode("ADD-USER\tdave@example.net\timap\tYXV0aAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAA=");
  EXPECT_EQ(Get(fail.event, "auth_failures")->as_uint(), 1u);
  EXPECT_EQ(Get(fail.event, "user_cpu"), std::nullopt);
}

TEST(DovecotOldStatsDecoderTest, UpdateCmdNewAndContinued) {
  auto n = Decode("UPDATE-CMD\tS\t7\t\tSELECT\tINBOX\t" + std::string(kRealSessionPayload));
  ASSERT_TRUE(n.result.status.ok());
  EXPECT_EQ(Get(n.event, "cmd_id")->as_uint(), 7u);
  EXPECT_FALSE(Get(n.event, "continued")->as_bool());
  EXPECT_EQ(Get(n.event, "cmd_name")->as_string(), "SELECT");
  EXPECT_EQ(Get(n.event, "cmd_args")->as_string(), "INBOX");
  auto c = Decode("UPDATE-CMD\tS\t7\tcd\t" + std::string(kRealSessionPayload));
  ASSERT_TRUE(c.result.status.ok());
  EXPECT_TRUE(Get(c.event, "continued")->as_bool());
  EXPECT_TRUE(Get(c.event, "done")->as_bool());
  EXPECT_EQ(Get(c.event, "cmd_name"), std::nullopt);
}

TEST(DovecotOldStatsDecoderTest, PayloadIsTheFieldNotTheRestOfTheLine) {
  // Parameters after the payload are ignored, as by Dovecot; an escape in
  // the payload is undone before decoding (\001 before an A is dropped).
  const std::string payload = "YXV0aAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  for (const std::string& tail : {payload + "\textra", payload + "\t", payload + "\t\t=\t",
                                  payload.substr(0, 20) + "\001" + payload.substr(20)}) {
    auto d = Decode("ADD-USER\tcarol@example.net\timap\t" + tail);
    ASSERT_TRUE(d.result.status.ok()) << tail;
    EXPECT_EQ(Get(d.event, "auth_successes")->as_uint(), 1u) << tail;
  }
  // The payload is the field before the TAB, not what follows it.
  auto bad = Decode("ADD-USER\tcarol@example.net\timap\tYXV0aA\t" + payload);
  EXPECT_EQ(bad.result.status.reason(), "unknown_stats_item");
  EXPECT_EQ(Get(bad.event, "auth_successes"), std::nullopt);
}

TEST(DovecotOldStatsDecoderTest, BadPayloadStillEmitsWithoutStatistics) {
  // A TAB inside raw (unescaped) IMAP args shifts the payload: Dovecot keeps
  // the command and logs "Invalid base64 input".
  auto d = Decode("UPDATE-CMD\tS\t18\t\tSEARCH\tSUBJECT \"tab\there\"\t" +
                  std::string(kRealSessionPayload));
  EXPECT_TRUE(d.result.emit);
  EXPECT_EQ(d.result.status.reason(), "invalid_base64");
  EXPECT_EQ(Get(d.event, "cmd_args")->as_string(), "SUBJECT \"tab");
  EXPECT_NE(Get(d.event, "payload_error"), std::nullopt);
  EXPECT_EQ(Get(d.event, "user_cpu"), std::nullopt);
}

TEST(DovecotOldStatsDecoderTest, MalformedLinesAreRejectedWithReasons) {
  std::string unknown_item = Base64Encode("nope\0abc", 8);
  std::string short_mail = Base64Encode("mail\0abc", 8);
  std::string no_nul = Base64Encode("mailmail", 8);
  struct Case {
    std::string line;
    std::string_view reason;
    bool emit;
  } cases[] = {
      {"", "empty_line", false},
      {"CONNECT\tid\tuser\timap", "too_few_fields", false},
      {"CONNECT\tid\tuser\timap\tnotapid", "invalid_pid", false},
      {"CONNECT\tid\tuser\timap\t-5", "invalid_pid", false},
      {"CONNECT\tid\tuser\timap\t99999999999999", "invalid_pid", false},
      {"DISCONNECT", "too_few_fields", false},
      {"UPDATE-SESSION", "too_few_fields", false},
      {"UPDATE-SESSION\tid", "invalid_base64", true},
      {"UPDATE-SESSION\tid\t!!!!", "invalid_base64", true},
      {"UPDATE-SESSION\tid\t" + unknown_item, "unknown_stats_item", true},
      {"UPDATE-SESSION\tid\t" + short_mail, "stats_too_small", true},
      {"UPDATE-SESSION\tid\t" + no_nul, "unknown_stats_item", true},
      {"UPDATE-CMD\tid\t1", "too_few_fields", false},
      {"UPDATE-CMD\tid\t0\t\tNOOP\t\tAAAA", "invalid_command_id", false},
      {"UPDATE-CMD\tid\tx\t\tNOOP\t\tAAAA", "invalid_command_id", false},
      {"UPDATE-CMD\tid\t1\tz\tNOOP\t\tAAAA", "invalid_flags", false},
      {"UPDATE-CMD\tid\t1\t\tNOOP", "too_few_fields", false},
      {"ADD-USER\tu\timap", "too_few_fields", false},
      {"ADD-USER\tu\timap\t%%%", "invalid_base64", true},
      {"connect\tid\tuser\timap\t1", "unknown_command", false},
      {"BOGUS", "unknown_command", false},
      {std::string("\x00\xff\x01\x02garbage", 11), "unknown_command", false},
  };
  for (const Case& c : cases) {
    auto d = Decode(c.line);
    EXPECT_FALSE(d.result.status.ok()) << c.line;
    EXPECT_EQ(d.result.status.reason(), c.reason) << c.line;
    EXPECT_EQ(d.result.emit, c.emit) << c.line;
  }
}

TEST(DovecotOldStatsDecoderTest, SessionIdsOfEveryObservedShapeAreOpaque) {
  for (std::string id :
       {"+0898NFgauV/AAAB", "KVsGLcowAmupMgAAg+zDdQ:R2", "lmtp:KVsGLcowAmupMgAAg+zDdQ",
        "0123456789abcdef0123456789abcdef", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "=+/:"}) {
    auto d = Decode("DISCONNECT\t" + id);
    ASSERT_TRUE(d.result.status.ok());
    EXPECT_EQ(Get(d.event, "session")->as_string(), id);
  }
}

}  // namespace
}  // namespace mailscope::ingest
