#include "ingest/qmail_log.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/event_control.h"
#include "catalog/event_router.h"

namespace mailscope::ingest {
namespace {

struct Decoded {
  Event event;
  Status status;

  Value Field(std::string_view key) const {
    const NameId id = FindName(key);
    if (id == kNoName) return {};
    const mailscope::Field* f = event.Find(id);
    return f ? f->value : Value();
  }
  std::string Str(std::string_view key) const {
    const Value v = Field(key);
    EXPECT_EQ(v.type(), Value::Type::kString) << key;
    return std::string(v.as_string());
  }
  std::int64_t Int(std::string_view key) const {
    const Value v = Field(key);
    EXPECT_EQ(v.type(), Value::Type::kInt) << key;
    return v.as_int();
  }
  bool Has(std::string_view key) const { return Field(key).type() != Value::Type::kNone; }
  std::string Name() const { return std::string(NameText(event.name)); }
};

Decoded Decode(std::string_view line) {
  static QmailLineDecoder decoder;
  Decoded d;
  d.event.source = Source::kQmailLog;
  d.status = decoder.Decode(line, d.event);
  return d;
}

// Whether the catalog knows the event (by its name or an alias).
bool InCatalog(const Event& event) {
  static catalog::EventRouter router(
      catalog::Catalog::Get(),
      *catalog::EventControl::Build(catalog::Catalog::Get(), catalog::EventControlOptions{}));
  return router.Route(event).info != nullptr;
}

// Every row of the seed's table, as real s/qmail writes it (the reference's
// per-helper table decides which tags a line has), and the spellings real
// releases use beside the seed's.
struct VerdictRow {
  std::string_view verdict;
  bool with_envelope;     // F: and T:
  std::string_view tail;  // after the tags: a note or the auth user
};
const VerdictRow kVerdicts[] = {
    {"Reject::AUTH::missing", false, ""},
    {"Reject::AUTH::Missing", false, ""},
    {"Reject::AUTH::setup", true, ""},
    {"Reject::AUTH::plain", false, "?~ 'alice@example.org'"},
    {"Reject::AUTH::login", false, "?~ 'alice@example.org'"},
    {"Reject::AUTH::cram-md5", false, "?= 'alice'"},
    {"Reject::Auth::Method", false, "?~ 'none'"},
    {"Reject::AUTH::Auth_Meth", false, "?~ 'none'"},
    {"Accept::AUTH::plain", true, "?~ 'alice@example.org'"},
    {"Accept::AUTH::login", true, "?~ 'alice@example.org'"},
    {"Reject::DATA::Invalid_Size", true, ""},
    {"Reject::DATA::Bad_MIME", true, "'TVqQAAMAA'"},
    {"Reject::DATA::Bad_Loader", true, "'TVqQAAMAA'"},
    {"Reject::DATA::Virus_Infected", true, "'clamdscan'"},
    {"Reject::DATA::Spam_Message", true, "'spam'"},
    {"Reject::ORIG::Bad_Mailfrom", true, "'@'"},
    {"Reject::ORIG::DNS_MF", true, ""},
    {"Reject::ORIG::Failed_Auth", true, ""},
    {"Reject::ORIG::Require_Auth", true, ""},
    {"Reject::ORIG::Invalid_Sender", true, ""},
    {"Reject::ORIG::Missing_Auth", true, ""},
    {"Reject::ORIG::SPF", true, ""},
    {"Accept::ORIG::Local_Sender", true, ""},
    {"Accept::ORIG::Relay_Mailfrom", true, ""},
    {"Reject::RCPT::Bad_Rcptto", true, ""},
    {"Reject::RCPT::Toomany_Rcptto", true, ""},
    {"Reject::RCPT::Failed_Rcptto", true, ""},
    {"Accept::RCPT::Recipients_Cdb", true, ""},
    {"Accept::RCPT::Recipients_Pam", true, ""},
    {"Accept::RCPT::Recipients_Wild", true, ""},
    {"Accept::RCPT::Rcpthosts_Rcptto", true, ""},
    {"Reject::SNDR::Bad_Helo", true, "'*'"},
    {"Reject::SNDR::DNS_HELO", true, "'A'"},
    {"Reject::SNDR::DNS_Helo", true, "'A'"},
    {"Reject::SNDR::Invalid_Relay", true, ""},
    {"Accept::SNDR::Relay_Client", true, ""},
    {"Reject::TLS::missing", false, ""},
    {"Reject::TLS::required", true, ""},
    {"Accept::SPF::Recipients_Cdb", true, ""},
    {"Accept::SPF::Recipients_Pam", true, ""},
    {"Accept::SPF::Recipients_Wild", true, ""},
    {"Accept::SPF::Rcpthosts_Rcptto", true, ""},
    {"Reject::SPF::Fail", true, ""},
    {"Deferred::GREY::Grey_Listed", true, ""},
    {"Reject::DKIM::Signature", true, ""},
};

struct Peer {
  std::string_view ip, host;
};
const Peer kPeers[] = {{"198.51.100.23", "mail.example.net"}, {"2001:db8:1::7", "unknown"}};

std::string VerdictLine(const VerdictRow& row, const Peer& peer, bool seed_order) {
  const std::string s = "S:" + std::string(peer.ip) + ":" + std::string(peer.host);
  std::string line = "qmail-smtpd: pid 28113 " + std::string(row.verdict) + " ";
  line += seed_order ? s + " P:ESMTPS" : "P:ESMTPS " + s;
  line += " H:mail.example.net";
  if (row.with_envelope) line += " F:news@example.net T:bob@example.org";
  if (!row.tail.empty()) line += " " + std::string(row.tail);
  return line;
}

TEST(QmailLineDecoderTest, EveryVerdictInBothOrdersAndAddressFamilies) {
  for (const VerdictRow& row : kVerdicts) {
    for (const Peer& peer : kPeers) {
      for (bool seed_order : {false, true}) {
        const std::string line = VerdictLine(row, peer, seed_order);
        SCOPED_TRACE(line);
        const Decoded d = Decode(line);
        ASSERT_TRUE(d.status.ok()) << d.status.message();
        EXPECT_EQ(d.Name(), row.verdict);
        EXPECT_TRUE(InCatalog(d.event));
        const std::string_view v = row.verdict;
        const std::size_t c1 = v.find("::"), c2 = v.find("::", c1 + 2);
        EXPECT_EQ(d.Str("program"), "qmail-smtpd");
        EXPECT_EQ(d.Str("action"), v.substr(0, c1));
        EXPECT_EQ(d.Str("type"), v.substr(c1 + 2, c2 - c1 - 2));
        EXPECT_EQ(d.Str("condition"), v.substr(c2 + 2));
        EXPECT_EQ(d.Int("pid"), 28113);
        EXPECT_EQ(d.Str("protocol"), "ESMTPS");
        EXPECT_EQ(d.Str("remote_ip"), peer.ip);
        EXPECT_EQ(d.Str("remote_host"), peer.host);
        EXPECT_EQ(d.Str("helo"), "mail.example.net");
        EXPECT_EQ(d.Has("mail_from"), row.with_envelope);
        if (row.with_envelope) {
          EXPECT_EQ(d.Str("mail_from"), "news@example.net");
          EXPECT_EQ(d.Str("mail_from_domain"), "example.net");
          EXPECT_EQ(d.Str("rcpt_to"), "bob@example.org");
          EXPECT_EQ(d.Str("rcpt_to_domain"), "example.org");
        }
        const std::string_view tail = row.tail;
        if (tail.starts_with("?")) {
          EXPECT_EQ(d.Str("user"), tail.substr(4, tail.size() - 5));
          EXPECT_FALSE(d.Has("info"));
        } else if (!tail.empty()) {
          EXPECT_EQ(d.Str("info"), tail.substr(1, tail.size() - 2));
          EXPECT_FALSE(d.Has("user"));
        }
      }
    }
  }
}

TEST(QmailLineDecoderTest, RealCorpusLines) {
  const Decoded d = Decode(
      "qmail-smtpd: pid 100 Accept::AUTH::plain P:ESMTPSA S:127.0.0.2:unknown "
      "H:client.examples.invalid F:alice@examples.invalid T:bob@examples.invalid ?~ "
      "'alice@examples.invalid'");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Str("user"), "alice@examples.invalid");
  EXPECT_EQ(d.Str("condition"), "plain");
  const Decoded missing =
      Decode("qmail-smtpd: pid 100 Reject::AUTH::Missing P:ESMTPS S:127.0.0.2:unknown H:c.invalid");
  ASSERT_TRUE(missing.status.ok());
  EXPECT_FALSE(missing.Has("mail_from"));
  EXPECT_TRUE(InCatalog(missing.event));
}

TEST(QmailLineDecoderTest, OddButValidVerdictLines) {
  // An empty condition, a HELO with spaces, a null sender, an unknown verdict.
  Decoded d = Decode("qmail-smtpd: pid 7 Reject::AUTH:: P:ESMTP S:192.0.2.1:unknown H:x");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Str("condition"), "");
  d = Decode(
      "qmail-smtpd: pid 7 Reject::SNDR::Bad_Helo P:SMTP S:192.0.2.1:unknown H:my pc F: "
      "T:bob@example.org '*'");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Str("helo"), "my pc");
  EXPECT_EQ(d.Str("mail_from"), "");
  EXPECT_EQ(d.Str("mail_from_domain"), "");
  EXPECT_EQ(d.Str("info"), "*");
  d = Decode("qmail-smtpd: pid 7 Reject::NEW::Thing P:ESMTP S:192.0.2.1:unknown H:x");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Name(), "Reject::NEW::Thing");
  EXPECT_FALSE(InCatalog(d.event));
  // Old SPAMCONTROL lines: no H:, `!= 'tls'`.
  d = Decode("qmail-smtpd: pid 7 Accept::AUTH::login P:ESMTPA S:192.0.2.1:host ?= 'u'");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Str("user"), "u");
  EXPECT_FALSE(d.Has("helo"));
}

TEST(QmailLineDecoderTest, PopupLines) {
  const Decoded d = Decode(
      "qmail-popup: pid 30211 Accept::AUTH::User P:POP3S S:198.51.100.40:dsl-40.example.net ?~ "
      "'bob@example.org'");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Name(), "qmail-popup::Accept::AUTH::User");
  EXPECT_TRUE(InCatalog(d.event));
  EXPECT_EQ(d.Str("program"), "qmail-popup");
  EXPECT_EQ(d.Str("user"), "bob@example.org");
  EXPECT_EQ(d.Str("protocol"), "POP3S");
  for (std::string_view line :
       {"qmail-popup: pid 30215 Reject::AUTH::User P:POP3 S:203.0.113.66:unknown ?~ 'admin'",
        "qmail-popup: pid 30220 Reject::AUTH::Apop P:POP3 S:203.0.113.67:unknown ?~ 'carol'",
        "qmail-popup: pid 30221 Reject::STLS::Any P:POP3 S:203.0.113.68:unknown ?~ 'unknown'"}) {
    const Decoded p = Decode(line);
    ASSERT_TRUE(p.status.ok()) << line;
    EXPECT_TRUE(InCatalog(p.event)) << line;
  }
}

TEST(QmailLineDecoderTest, Tcpserver) {
  Decoded d = Decode("tcpserver: status: 3/100");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Name(), "tcpserver::status");
  EXPECT_EQ(d.Int("concurrency"), 3);
  EXPECT_EQ(d.Int("limit"), 100);
  EXPECT_TRUE(Decode("tcpserver: status: 1/40 sql: 0").status.ok());
  d = Decode("tcpserver: pid 28113 from 198.51.100.23");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Name(), "tcpserver::pid");
  EXPECT_EQ(d.Int("pid"), 28113);
  EXPECT_EQ(d.Str("remote_ip"), "198.51.100.23");
  d = Decode(
      "tcpserver: ok 28113 mx.example.org:192.0.2.25:25 mail.example.net:198.51.100.23::52144");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Name(), "tcpserver::ok");
  EXPECT_EQ(d.Str("local_host"), "mx.example.org");
  EXPECT_EQ(d.Str("local_ip"), "192.0.2.25");
  EXPECT_EQ(d.Int("local_port"), 25);
  EXPECT_EQ(d.Str("remote_host"), "mail.example.net");
  EXPECT_EQ(d.Str("remote_ip"), "198.51.100.23");
  EXPECT_EQ(d.Str("remote_info"), "");
  EXPECT_EQ(d.Int("remote_port"), 52144);
  // ucspi-tcp6: raw IPv6 addresses; djb's -H: empty names.
  d = Decode("tcpserver: ok 4711 mx.example.org:2001:db8::25:25 :2001:db8:1::7::50322");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Str("local_ip"), "2001:db8::25");
  EXPECT_EQ(d.Str("remote_ip"), "2001:db8:1::7");
  EXPECT_EQ(d.Str("remote_host"), "");
  EXPECT_EQ(d.Int("remote_port"), 50322);
  d = Decode("tcpserver: deny 9848 0:127.0.0.1:2023 :127.0.0.1:info:43424");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Name(), "tcpserver::deny");
  EXPECT_EQ(d.Str("remote_info"), "info");
  d = Decode("tcpserver: end 28113 status 25600");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Int("status"), 25600);
  EXPECT_EQ(d.Int("exit_code"), 100);
  EXPECT_FALSE(d.Has("signal"));
  d = Decode("tcpserver: end 28113 status 14");
  EXPECT_EQ(d.Int("signal"), 14);
  d = Decode("tcpserver: warning: dropping connection, unable to read from socket");
  EXPECT_EQ(d.Name(), "tcpserver::warning");
  EXPECT_EQ(d.Str("reason"), "unable to read from socket");
  d = Decode("tcpserver: fatal: unable to bind: address used");
  EXPECT_EQ(d.Name(), "tcpserver::fatal");
  d = Decode("sslserver: pid 5 from 192.0.2.9");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Str("program"), "sslserver");
  EXPECT_EQ(d.Name(), "tcpserver::pid");
}

TEST(QmailLineDecoderTest, Rblsmtpd) {
  Decoded d = Decode(
      "rblsmtpd: 203.0.113.200 pid 28190: 451 Blocked - see "
      "https://www.spamhaus.org/query/ip/203.0.113.200");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Name(), "rblsmtpd::451");
  EXPECT_EQ(d.Int("pid"), 28190);
  EXPECT_EQ(d.Str("remote_ip"), "203.0.113.200");
  EXPECT_EQ(d.Str("reason"), "Blocked - see https://www.spamhaus.org/query/ip/203.0.113.200");
  EXPECT_EQ(Decode("rblsmtpd: 192.0.2.1 pid 2: 553 Rejected").Name(), "rblsmtpd::553");
  EXPECT_EQ(Decode("rblsmtpd: 192.0.2.1 pid 2: [RBL info] listed").Name(), "rblsmtpd::rbl_info");
  d = Decode("rblsmtpd: 192.0.2.1 pid 2: greetdelay: 5");
  EXPECT_EQ(d.Name(), "rblsmtpd::greetdelay");
  EXPECT_EQ(d.Int("seconds"), 5);
}

TEST(QmailLineDecoderTest, QmailSend) {
  Decoded d = Decode("new msg 3587739");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Name(), "qmail-send::new_msg");
  EXPECT_EQ(d.Int("msg"), 3587739);
  d = Decode("info msg 3587739: bytes 953 from <sender@outside.invalid> qp 617 uid 89");
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.Int("bytes"), 953);
  EXPECT_EQ(d.Field("bytes").unit(), Unit::kBytes);
  EXPECT_EQ(d.Str("sender"), "sender@outside.invalid");
  EXPECT_EQ(d.Int("qp"), 617);
  EXPECT_EQ(d.Int("uid"), 89);
  d = Decode("info msg 5: bytes 10 from <> qp 1 uid 2");  // a bounce: null sender
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Str("sender"), "");
  d = Decode("starting delivery 1: msg 3587739 to local examples.invalid-bob@examples.invalid");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Int("delivery"), 1);
  EXPECT_EQ(d.Str("channel"), "local");
  EXPECT_EQ(d.Str("recipient"), "examples.invalid-bob@examples.invalid");
  EXPECT_EQ(d.Str("recipient_domain"), "examples.invalid");
  d = Decode("delivery 4: success: 192.0.2.60_accepted_message./Remote_host_said:_250_ok/");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Name(), "qmail-send::delivery::success");
  EXPECT_EQ(d.Str("result"), "success");
  EXPECT_EQ(d.Str("report"), "192.0.2.60_accepted_message./Remote_host_said:_250_ok/");
  EXPECT_EQ(Decode("delivery 9: deferral: Connected_to_192.0.2.62_but_died._(#4.4.2)/").Name(),
            "qmail-send::delivery::deferral");
  EXPECT_EQ(Decode("delivery 10: failure: Sorry,_no_host._(#5.1.2)/").Name(),
            "qmail-send::delivery::failure");
  d = Decode("status: local 1/10 remote 0/20");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.Int("local"), 1);
  EXPECT_EQ(d.Int("remote_limit"), 20);
  EXPECT_EQ(Decode("status: exiting").Name(), "qmail-send::status::exiting");
  EXPECT_EQ(Decode("status: qmail-send exiting").Name(), "qmail-send::status::exiting");
  EXPECT_EQ(Decode("end msg 3587739").Name(), "qmail-send::end_msg");
  d = Decode("bounce msg 3540009 qp 1892");
  EXPECT_EQ(d.Int("qp"), 1892);
  EXPECT_EQ(Decode("double bounce: discarding bounce/3540010").Name(), "qmail-send::double_bounce");
  EXPECT_EQ(Decode("triple bounce: discarding bounce/3540010").Int("msg"), 3540010);
  EXPECT_EQ(Decode("warning: trouble opening local/0/123; will try again later").Name(),
            "qmail-send::warning");
  EXPECT_EQ(Decode("alert: oh no! lost uid 7").Name(), "qmail-send::alert");
  // Every kind of line is a catalog event.
  for (std::string_view line :
       {"new msg 1", "info msg 1: bytes 2 from <a@b> qp 3 uid 4", "end msg 1",
        "starting delivery 1: msg 1 to remote a@b", "delivery 1: success: ok/",
        "status: local 0/10 remote 0/20", "status: exiting", "bounce msg 1 qp 2",
        "tcpserver: status: 1/40", "tcpserver: end 1 status 0", "rblsmtpd: 1.2.3.4 pid 5: 451 x"}) {
    EXPECT_TRUE(InCatalog(Decode(line).event)) << line;
  }
}

TEST(QmailLineDecoderTest, MalformedLinesAreErrorsWithReasons) {
  struct Bad {
    std::string_view line;
    std::string_view reason;
  };
  const Bad kBad[] = {
      {"", "unknown_line"},
      {"hello world", "unknown_line"},
      {"simscan:[123]:CLEAN (0.00/0.00)", "unknown_line"},
      {"qmail-smtpd: pid 1821 from 127.0.0.1 HELO <x> MAIL from: <a@b>", "malformed_qmail_smtpd"},
      {"qmail-smtpd: pid x Accept::RCPT::Recipients_Cdb P:ESMTP S:1.2.3.4:h",
       "malformed_qmail_smtpd"},
      {"qmail-smtpd: pid 5 Accept P:ESMTP S:1.2.3.4:h", "malformed_qmail_smtpd"},
      {"qmail-smtpd: pid 5 ::RCPT::x P:ESMTP S:1.2.3.4:h", "malformed_qmail_smtpd"},
      {"qmail-smtpd: pid 5 Accept::RCPT::x H:helo", "malformed_qmail_smtpd"},
      {"qmail-smtpd: pid 5 Accept::RCPT::x junk P:ESMTP S:1.2.3.4:h", "malformed_qmail_smtpd"},
      {"qmail-popup: pid 5 Accept::AUTH::User", "malformed_qmail_popup"},
      {"tcpserver: status: 3", "malformed_tcpserver"},
      {"tcpserver: pid 5 from", "malformed_tcpserver"},
      {"tcpserver: ok 5 local remote", "malformed_tcpserver"},
      {"tcpserver: ok 5 h:1.2.3.4:x h:1.2.3.4::5", "malformed_tcpserver"},
      {"tcpserver: end 5 status -1", "malformed_tcpserver"},
      {"tcpserver: something else", "malformed_tcpserver"},
      {"rblsmtpd: 1.2.3.4 pid 5 451 x", "malformed_rblsmtpd"},
      {"rblsmtpd: 1.2.3.4 pid 5: 250 x", "malformed_rblsmtpd"},
      {"new msg x", "malformed_qmail_send"},
      {"info msg 5: bytes 1 from <a> uid 3", "malformed_qmail_send"},
      {"starting delivery 1: msg 2 to sideways a@b", "malformed_qmail_send"},
      {"delivery 1: maybe: x", "malformed_qmail_send"},
      {"status: local 1 remote 2", "malformed_qmail_send"},
      {"end msg 99999999999999999999999", "malformed_qmail_send"},
  };
  for (const Bad& b : kBad) {
    const Decoded d = Decode(b.line);
    EXPECT_FALSE(d.status.ok()) << b.line;
    EXPECT_EQ(d.status.reason(), b.reason) << b.line;
  }
}

TEST(QmailLineDecoderTest, VerdictNamesAreBudgeted) {
  QmailLineDecoder decoder;
  Event e;
  int refused = 0;
  for (int i = 0; i < 1100; ++i) {
    const std::string line =
        "qmail-smtpd: pid 1 Reject::X::budget_" + std::to_string(i) + " P:SMTP S:1.2.3.4:h";
    const Status st = decoder.Decode(line, e);
    if (!st.ok()) {
      EXPECT_EQ(st.reason(), "too_many_names");
      ++refused;
    }
  }
  EXPECT_EQ(refused, 1100 - 1024);
}

}  // namespace
}  // namespace mailscope::ingest
