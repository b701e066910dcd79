// Decoder for the lines of s/qmail's logs (reference/qmail-logs.md), one line
// at a time, after its timestamp prefix (ingest/log_time.h) is taken off:
//
//   qmail-smtpd: pid P Action::Type::Condition P:proto S:ip:host H:helo F:from T:to [info]
//   qmail-popup: pid P Action::Type::Condition P:proto S:ip:host ?~ 'user'
//   tcpserver: status: N/L | pid P from IP | ok|deny P local remote | end P status W
//              | warning: ... | fatal: ...          (sslserver: the same shapes)
//   rblsmtpd: IP pid P: 451|553 reason | [RBL info] reason | greetdelay: S
//   qmail-send: new msg M | info msg M: bytes B from <S> qp Q uid U
//              | starting delivery D: msg M to local|remote R
//              | delivery D: success|deferral|failure: REPORT | status: local l/L remote r/R
//              | end msg M | bounce msg M qp Q | double bounce: ... | triple bounce: ...
//              | warning: ... | alert: ...
//
// The event is named as the catalog names it (events.qmail.tsv): a verdict
// exactly as the line writes it (`Reject::AUTH::Missing`, `Accept::AUTH::plain`
// are the catalog's aliases), `qmail-popup::` + verdict, other lines
// `<program>::<keyword>[::<variant>]`. Every field of the line becomes a field
// of the event (names in the catalog's `fields` column); a verdict line also
// has `program`, `action`, `type`, `condition`, and `mail_from_domain` and
// `rcpt_to_domain` for F: and T:. The information tags are found wherever they
// stand (s/qmail prints P: before S:, the seed's table S: first), an IPv6
// address in S: is read up to the last colon, and a HELO with spaces in it is
// kept whole. Numbers are integers, `bytes` tagged as bytes.
//
// Thread-compatible: one decoder per log stream. String fields point into
// the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/event.h"
#include "core/names.h"
#include "core/status.h"

namespace mailscope::ingest {

// The field keys and fixed event names of qmail log events, interned once.
struct QmailKeys {
  QmailKeys();
  NameId program, pid, action, type, condition, protocol, remote_ip, remote_host, helo, mail_from,
      mail_from_domain, rcpt_to, rcpt_to_domain, user, info;
  NameId concurrency, limit, local_host, local_ip, local_port, remote_info, remote_port, status,
      exit_code, signal, reason, seconds;
  NameId msg, bytes, sender, qp, uid, delivery, channel, recipient, recipient_domain, report,
      result, local, local_limit, remote, remote_limit, text;
  // What QmailTracker adds (qmail_tracker.h).
  NameId duration, accepted, rejected, rbl, sender_domain, xdelay, ddelay, qtime, delivered,
      deferred, failed, complete;
  // The event names of lines other than verdicts.
  NameId ev_tcp_status, ev_tcp_pid, ev_tcp_ok, ev_tcp_deny, ev_tcp_end, ev_tcp_warning,
      ev_tcp_fatal, ev_rbl_451, ev_rbl_553, ev_rbl_info, ev_rbl_greetdelay, ev_new_msg, ev_info_msg,
      ev_starting_delivery, ev_delivery_success, ev_delivery_deferral, ev_delivery_failure,
      ev_send_status, ev_send_exiting, ev_end_msg, ev_bounce_msg, ev_double_bounce,
      ev_triple_bounce, ev_send_warning, ev_send_alert;
};
const QmailKeys& QmailFieldKeys();

class QmailLineDecoder {
 public:
  QmailLineDecoder();

  // Decodes one line's message (no timestamp prefix, no LF) into out.name and
  // out.fields, which it clears first; time and source are the caller's. A
  // line that is none of the above, or one of them cut or garbled, is an
  // error with a reason for counting: unknown_line, or malformed_<program>.
  // Names of verdicts the catalog does not know are made as they come, from
  // `budget` (an event name is needed to count them); past it, an error.
  Status Decode(std::string_view line, Event& out);

  const NameBudget& name_budget() const { return budget_; }

 private:
  Status DecodeVerdict(std::string_view program, std::string_view rest, Event& out);
  Status DecodeTcpserver(std::string_view program, std::string_view rest, Event& out);
  Status DecodeRblsmtpd(std::string_view rest, Event& out);
  Status DecodeQmailSend(std::string_view line, Event& out);
  // The id of an event name, known or new within the budget; kNoName past it.
  NameId EventName(std::string_view name);

  const QmailKeys& k_;
  NameBudget budget_;
  std::string scratch_;    // "qmail-popup::" + verdict
  std::string_view line_;  // the line being decoded, for error messages
};

// The domain of an address: after its last '@', or empty.
std::string_view DomainOf(std::string_view address);

}  // namespace mailscope::ingest
