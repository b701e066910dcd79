// The taxonomy as compiled in: every event of every system is mapped onto a
// kind or explicitly marked as having none, kinds and outcomes are declared in
// taxonomy.tsv, and the equivalences between systems hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"

namespace mailscope::catalog {
namespace {

using Values = std::map<std::string, std::string>;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    std::size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

const KindInfo* FindKind(std::string_view kind) {
  for (const KindInfo& k : Catalog::Get().kinds())
    if (k.kind == kind) return &k;
  return nullptr;
}

// An outcome rule `field:<name>=<value>><outcome>,...` taken apart.
struct Rule {
  std::string field;
  std::vector<std::pair<std::string, std::string>> pairs;  // value -> outcome
};

Rule ParseRule(std::string_view outcome) {
  Rule rule;
  outcome.remove_prefix(std::string_view("field:").size());
  std::size_t eq = outcome.find('=');
  rule.field = std::string(outcome.substr(0, eq));
  for (std::string_view pair : Split(outcome.substr(eq + 1), ',')) {
    std::size_t gt = pair.rfind('>');
    rule.pairs.emplace_back(std::string(pair.substr(0, gt)),
                            gt == std::string_view::npos ? "" : std::string(pair.substr(gt + 1)));
  }
  return rule;
}

// The outcome of an event whose fields hold `values`, as data/taxonomy_map.tsv
// defines it: first matching pair; `*` anything, `x*` a prefix, empty = absent or empty.
std::string OutcomeOf(const EventInfo& e, const Values& values = {}) {
  if (!e.outcome.starts_with("field:")) return e.outcome;
  Rule rule = ParseRule(e.outcome);
  auto it = values.find(rule.field);
  const std::string value = it == values.end() ? "" : it->second;
  for (const auto& [want, outcome] : rule.pairs) {
    if (want == "*") return outcome;
    if (!want.empty() && want.back() == '*') {
      if (value.starts_with(std::string_view(want).substr(0, want.size() - 1))) return outcome;
    } else if (want == value) {
      return outcome;
    }
  }
  return "";
}

const EventInfo& Event(System system, std::string_view name) {
  const EventInfo* e = Catalog::Get().Find(system, name);
  if (e == nullptr) {
    ADD_FAILURE() << SystemName(system) << " has no event " << name;
    static const EventInfo kNone;
    return kNone;
  }
  return *e;
}

std::string Source(const EventInfo& e, std::string_view normalized) {
  for (const auto& [n, source] : e.normalized_fields)
    if (n == normalized) return source;
  return "";
}

TEST(TaxonomyTest, EveryEventHasExactlyOneRow) {
  std::string_view map_text;
  for (const auto& [name, text] : EmbeddedDataFiles())
    if (name == "taxonomy_map.tsv") map_text = text;
  ASSERT_FALSE(map_text.empty());

  std::map<std::pair<std::string, std::string>, int> rows;
  bool header_seen = false;
  for (std::string_view line : Split(map_text, '\n')) {
    if (line.empty() || (!header_seen && line.front() == '#')) continue;
    std::vector<std::string_view> cols = Split(line, '\t');
    ASSERT_EQ(cols.size(), 5u) << line;
    if (!header_seen) {
      header_seen = true;
      continue;
    }
    EXPECT_FALSE(cols[2].empty()) << line << ": kind must be a kind or -";
    if (cols[2] == "-") {
      EXPECT_TRUE(cols[3].empty() && cols[4].empty()) << line << ": - carries no outcome or fields";
    }
    ++rows[{std::string(cols[0]), std::string(cols[1])}];
  }
  std::size_t events = 0;
  for (System system : kSystems) {
    std::vector<const EventInfo*> of = Catalog::Get().OfSystem(system);
    EXPECT_FALSE(of.empty()) << SystemName(system);
    for (const EventInfo* e : of) {
      ++events;
      EXPECT_EQ((rows[{std::string(SystemName(system)), e->name}]), 1)
          << SystemName(system) << " " << e->name;
    }
  }
  EXPECT_EQ(rows.size(), events) << "rows for events the catalog does not have";
}

TEST(TaxonomyTest, KindsAreTheDocumentedOnes) {
  std::set<std::string> kinds;
  const std::set<std::string> normalized = {"outcome",  "remote_ip", "user",   "domain",
                                            "sender",   "recipient", "reason", "smtp_code",
                                            "duration", "protocol"};
  for (const KindInfo& k : Catalog::Get().kinds()) {
    kinds.insert(k.kind);
    EXPECT_FALSE(k.outcomes.empty()) << k.kind;
    EXPECT_FALSE(k.description.empty()) << k.kind;
    for (const std::string& f : k.fields) EXPECT_TRUE(normalized.contains(f)) << k.kind << " " << f;
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"auth", "connection", "message", "delivery", "rejection",
                                          "tls_failure", "verdict", "command"}));
}

TEST(TaxonomyTest, MappedEventsUseDeclaredKindsOutcomesAndFields) {
  for (const EventInfo& e : Catalog::Get().events()) {
    std::string where = std::string(SystemName(e.system)) + " " + e.name;
    if (e.kind.empty()) {
      EXPECT_TRUE(e.outcome.empty()) << where;
      EXPECT_TRUE(e.normalized_fields.empty()) << where;
      continue;
    }
    const KindInfo* kind = FindKind(e.kind);
    ASSERT_NE(kind, nullptr) << where << ": kind " << e.kind;
    auto declared = [&](const std::string& outcome) {
      return std::find(kind->outcomes.begin(), kind->outcomes.end(), outcome) !=
             kind->outcomes.end();
    };
    if (e.outcome.starts_with("field:")) {
      Rule rule = ParseRule(e.outcome);
      EXPECT_FALSE(rule.field.empty()) << where;
      ASSERT_FALSE(rule.pairs.empty()) << where;
      for (const auto& [value, outcome] : rule.pairs)
        EXPECT_TRUE(declared(outcome)) << where << ": " << outcome;
      // Every event gets an outcome: the rule ends with a catch-all.
      EXPECT_EQ(rule.pairs.back().first, "*") << where;
      if (!e.fields.empty()) {
        EXPECT_NE(std::find(e.fields.begin(), e.fields.end(), rule.field), e.fields.end())
            << where << ": the outcome depends on " << rule.field << ", which the event lacks";
      }
    } else {
      EXPECT_TRUE(declared(e.outcome)) << where << ": outcome \"" << e.outcome << "\"";
    }
    for (const auto& [normalized, source] : e.normalized_fields) {
      EXPECT_NE(std::find(kind->fields.begin(), kind->fields.end(), normalized), kind->fields.end())
          << where << ": " << e.kind << " has no field " << normalized;
      EXPECT_FALSE(source.empty()) << where << ": " << normalized;
      // Dovecot and qmail list every field their events carry (Dovecot's stats
      // process adds duration and reason_code to any event). Exim's and Stalwart's
      // lists are partial: variables and span keys set around the event are not listed.
      bool listed = std::find(e.fields.begin(), e.fields.end(), source) != e.fields.end();
      if (e.system == System::kDovecot) {
        EXPECT_TRUE(listed || source == "duration" || source == "reason_code")
            << where << ": " << source;
      } else if (e.system == System::kQmail) {
        EXPECT_TRUE(listed) << where << ": " << source;
      }
    }
  }
}

struct Expected {
  System system;
  std::string_view name;
  std::string_view kind;  // "" = no counterpart
  std::string_view outcome;
  Values values = {};  // field values for a field-dependent outcome
};

void ExpectAll(const std::vector<Expected>& cases) {
  for (const Expected& c : cases) {
    const EventInfo& e = Event(c.system, c.name);
    EXPECT_EQ(e.kind, c.kind) << SystemName(c.system) << " " << c.name;
    EXPECT_EQ(OutcomeOf(e, c.values), c.outcome) << SystemName(c.system) << " " << c.name;
  }
}

constexpr System kD = System::kDovecot, kS = System::kStalwart, kE = System::kExim,
                 kQ = System::kQmail;

TEST(TaxonomyTest, AuthenticationIsOneKindEverywhere) {
  ExpectAll({
      {kD, "auth_request_finished", "auth", "success", {{"success", "yes"}}},
      {kD, "auth_request_finished", "auth", "failure", {{"error", "Password mismatch"}}},
      {kS, "auth.success", "auth", "success"},
      {kS, "auth.failed", "auth", "failure"},
      {kS, "auth.too-many-attempts", "auth", "failure"},
      {kE, "auth:fail", "auth", "failure"},
      {kQ, "Accept::AUTH::type", "auth", "success"},
      {kQ, "Reject::AUTH::type", "auth", "failure"},
      {kQ, "Reject::AUTH::plain", "auth", "failure"},  // an alias of Reject::AUTH::type
      {kQ, "Reject::Auth::Method", "auth", "failure"},
      {kQ, "Reject::AUTH::setup", "auth", "failure"},
      {kQ, "qmail-popup::Accept::AUTH::User", "auth", "success"},
      {kQ, "qmail-popup::Reject::AUTH::Apop", "auth", "failure"},
      // No attempt was made: MAIL without the required AUTH is a refused sender.
      {kQ, "Reject::AUTH::missing", "rejection", "sender"},
      {kS, "smtp.mail-from-unauthenticated", "rejection", "sender"},
      // Views of the same login that are not counted a second time.
      {kD, "auth_client_request_finished", "", ""},
      {kD, "auth_passdb_request_finished", "", ""},
  });
  EXPECT_EQ(Source(Event(kD, "auth_request_finished"), "remote_ip"), "remote_ip");
  EXPECT_EQ(Source(Event(kD, "auth_request_finished"), "user"), "user");
  EXPECT_EQ(Source(Event(kS, "auth.failed"), "remote_ip"), "remoteIp");
  EXPECT_EQ(Source(Event(kS, "auth.failed"), "user"), "accountName");
  EXPECT_EQ(Source(Event(kE, "auth:fail"), "user"), "authenticated_fail_id");
  EXPECT_EQ(Source(Event(kQ, "Reject::AUTH::type"), "remote_ip"), "remote_ip");
  EXPECT_EQ(Source(Event(kQ, "Reject::AUTH::type"), "user"), "user");

  // A failed Stalwart login finds its counterpart in every other system.
  std::set<System> systems;
  for (const EventInfo* other : Catalog::Get().Counterparts(Event(kS, "auth.failed")))
    systems.insert(other->system);
  EXPECT_EQ(systems, (std::set<System>{kD, kE, kQ}));
}

TEST(TaxonomyTest, ConnectionsOpenAndClose) {
  ExpectAll({
      {kS, "smtp.connection-start", "connection", "open"},
      {kS, "smtp.connection-end", "connection", "close"},
      {kS, "imap.connection-start", "connection", "open"},
      {kS, "pop3.connection-end", "connection", "close"},
      {kQ, "tcpserver::pid", "connection", "open"},
      {kQ, "tcpserver::end", "connection", "close"},
      {kQ, "tcpserver::ok", "", ""},  // the same connection, after the rules
      // Connections the server opens itself, and Dovecot's internal sockets.
      {kE, "tcp:connect", "", ""},
      {kS, "delivery.connect", "", ""},
      {kD, "client_connection_connected", "", ""},
  });
  EXPECT_EQ(Source(Event(kS, "smtp.connection-start"), "remote_ip"), "remoteIp");
  EXPECT_EQ(Source(Event(kS, "smtp.connection-end"), "duration"), "elapsed");
  EXPECT_EQ(Source(Event(kQ, "tcpserver::pid"), "remote_ip"), "remote_ip");
}

TEST(TaxonomyTest, MessagesReceivedAndQueued) {
  ExpectAll({
      {kS, "queue.message-queued", "message", "received"},
      {kS, "queue.queue-message", "message", "received"},  // the v0.12-v0.15 spelling
      {kS, "queue.authenticated-message-queued", "message", "received"},
      {kS, "queue.dsn-queued", "message", "queued"},
      {kQ, "qmail-send::info_msg", "message", "queued"},
      {kQ, "qmail-send::new_msg", "", ""},  // info msg follows for the same message
      {kE, "msg:complete", "", ""},
  });
  EXPECT_EQ(Source(Event(kS, "queue.message-queued"), "sender"), "from");
  EXPECT_EQ(Source(Event(kQ, "qmail-send::info_msg"), "sender"), "sender");
}

TEST(TaxonomyTest, DeliveriesDeliveredDeferredFailed) {
  ExpectAll({
      {kS, "delivery.delivered", "delivery", "delivered"},
      {kS, "message-ingest.ham", "delivery", "delivered"},
      {kS, "delivery.rcpt-to-rejected", "delivery", "failed", {{"code", "550"}}},
      {kS, "delivery.rcpt-to-rejected", "delivery", "deferred", {{"code", "451"}}},
      {kS, "delivery.message-rejected", "delivery", "deferred"},  // no reply code: I/O error
      {kS, "delivery.failed", "delivery", "failed"},
      {kE, "msg:delivery", "delivery", "delivered"},
      {kE, "msg:defer", "delivery", "deferred"},
      {kE, "msg:rcpt:defer", "delivery", "deferred"},
      {kE, "msg:fail:delivery", "delivery", "failed"},
      {kE, "msg:fail:internal", "delivery", "failed"},
      {kQ, "qmail-send::delivery::success", "delivery", "delivered"},
      {kQ, "qmail-send::delivery::deferral", "delivery", "deferred"},
      {kQ, "qmail-send::delivery::failure", "delivery", "failed"},
      {kD, "mail_delivery_finished", "delivery", "delivered"},
      {kD, "mail_delivery_finished", "delivery", "failed", {{"error", "Quota exceeded"}}},
      // Per-host steps whose outcome the events above report.
      {kE, "msg:host:defer", "", ""},
      {kE, "msg:rcpt:host:defer", "", ""},
      {kS, "delivery.connect-error", "", ""},
      {kS, "queue.rescheduled", "", ""},
  });
  EXPECT_EQ(Source(Event(kS, "delivery.delivered"), "smtp_code"), "code");
  EXPECT_EQ(Source(Event(kS, "delivery.delivered"), "recipient"), "to");
  EXPECT_EQ(Source(Event(kE, "msg:delivery"), "remote_ip"), "host_address");
  EXPECT_EQ(Source(Event(kE, "msg:fail:delivery"), "reason"), "event_data");
  EXPECT_EQ(Source(Event(kQ, "qmail-send::delivery::failure"), "reason"), "report");
  EXPECT_EQ(Source(Event(kD, "mail_delivery_finished"), "recipient"), "rcpt_to");
}

TEST(TaxonomyTest, RejectionsNameWhatWasRefused) {
  ExpectAll({
      {kS, "security.ip-blocked", "rejection", "connection"},
      {kQ, "rblsmtpd::451", "rejection", "connection"},
      {kQ, "tcpserver::deny", "rejection", "connection"},
      {kS, "smtp.invalid-ehlo", "rejection", "helo"},
      {kQ, "Reject::SNDR::Bad_Helo", "rejection", "helo"},
      {kQ, "Reject::SNDR::DNS_Helo", "rejection", "helo"},  // an alias of DNS_HELO
      {kS, "smtp.mail-from-not-allowed", "rejection", "sender"},
      {kQ, "Reject::ORIG::Bad_Mailfrom", "rejection", "sender"},
      {kQ, "Reject::SPF::Fail", "rejection", "sender"},
      {kQ, "Reject::TLS::missing", "rejection", "sender"},
      {kS, "smtp.mailbox-does-not-exist", "rejection", "recipient"},
      {kS, "smtp.relay-not-allowed", "rejection", "recipient"},
      {kS, "smtp.rcpt-to-greylisted", "rejection", "recipient"},
      {kQ, "Reject::RCPT::Failed_Rcptto", "rejection", "recipient"},
      {kQ, "Reject::SNDR::Invalid_Relay", "rejection", "recipient"},
      {kQ, "Deferred::GREY::Grey_Listed", "rejection", "recipient"},
      {kS, "smtp.message-too-large", "rejection", "message"},
      {kQ, "Reject::DATA::Invalid_Size", "rejection", "message"},
      // Accepted envelope steps are not in the taxonomy.
      {kQ, "Accept::RCPT::Recipients_Cdb", "", ""},
      {kS, "smtp.rcpt-to", "", ""},
  });
  EXPECT_EQ(Source(Event(kQ, "Reject::SNDR::Bad_Helo"), "reason"), "info");
  EXPECT_EQ(Source(Event(kQ, "Reject::RCPT::Failed_Rcptto"), "recipient"), "rcpt_to");
  EXPECT_EQ(Source(Event(kS, "smtp.mailbox-does-not-exist"), "recipient"), "to");
  EXPECT_EQ(Source(Event(kQ, "rblsmtpd::553"), "reason"), "reason");
}

TEST(TaxonomyTest, TlsFailuresInboundAndOutbound) {
  ExpectAll({
      {kS, "tls.handshake-error", "tls_failure", "inbound"},
      {kE, "tls:fail:connect", "tls_failure", "inbound"},
      {kS, "delivery.start-tls-error", "tls_failure", "outbound"},
      {kS, "dane.authentication-failure", "tls_failure", "outbound"},
      {kE, "dane:fail", "tls_failure", "outbound"},
      {kS, "tls.handshake", "", ""},
      {kE, "tls:cert", "", ""},
  });
  EXPECT_EQ(Source(Event(kE, "tls:fail:connect"), "remote_ip"), "sender_host_address");
}

TEST(TaxonomyTest, SpamAndVirusVerdicts) {
  ExpectAll({
      {kQ, "Reject::DATA::Spam_Message", "verdict", "spam"},
      {kQ, "Reject::DATA::Virus_Infected", "verdict", "virus"},
      {kS, "message-ingest.spam", "verdict", "spam"},
      {kS, "spam.classify", "", ""},
  });
  EXPECT_EQ(Source(Event(kQ, "Reject::DATA::Virus_Infected"), "reason"), "info");
}

TEST(TaxonomyTest, MailboxAccessCommands) {
  ExpectAll({
      {kD, "imap_command_finished", "command", "success", {{"tagged_reply_state", "OK"}}},
      {kD, "imap_command_finished", "command", "failure", {{"tagged_reply_state", "NO"}}},
      {kD, "imap_command_finished", "command", "failure", {{"tagged_reply_state", "BAD"}}},
      {kD, "managesieve_command_finished", "command", "success"},
      {kD, "managesieve_command_finished", "command", "failure", {{"error", "Script is invalid"}}},
      {kS, "imap.select", "command", "success"},
      {kS, "imap.fetch", "command", "success"},
      {kS, "imap.idle-stop", "command", "success"},
      {kS, "imap.error", "command", "failure"},
      {kS, "pop3.fetch", "command", "success"},
      {kS, "pop3.uidl", "command", "success"},
      {kS, "pop3.quit", "command", "success"},
      {kS, "pop3.error", "command", "failure"},
      {kS, "manage-sieve.create-script", "command", "success"},
      // Not commands: raw protocol traces, the start of IDLE (counted when it ends), SMTP.
      {kS, "imap.raw-input", "", ""},
      {kS, "imap.idle-start", "", ""},
      {kS, "smtp.ehlo", "", ""},
      {kD, "smtp_server_command_finished", "", ""},
  });
  EXPECT_EQ(Source(Event(kD, "imap_command_finished"), "user"), "user");
  EXPECT_EQ(Source(Event(kD, "imap_command_finished"), "duration"), "duration");
  EXPECT_EQ(Source(Event(kS, "imap.fetch"), "duration"), "elapsed");
}

}  // namespace
}  // namespace mailscope::catalog
