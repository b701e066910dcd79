#include "ingest/qmail_log.h"

#include <array>
#include <string>

#include "ingest/event_fields.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

constexpr std::uint32_t kMaxVerdictNames = 1024;

bool Consume(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// The text up to the first space (all of `s` when there is none); `s` keeps
// what follows that space.
std::string_view Token(std::string_view& s) {
  const std::size_t sp = s.find(' ');
  const std::string_view t = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  return t;
}

template <typename T>
bool NumberToken(std::string_view& s, T& out) {
  return ParseDecimal(Token(s), out);
}

// `a/b` as two numbers.
bool Ratio(std::string_view s, std::int64_t& a, std::int64_t& b) {
  const std::size_t slash = s.find('/');
  return slash != std::string_view::npos && ParseDecimal(s.substr(0, slash), a) &&
         ParseDecimal(s.substr(slash + 1), b);
}

Status Malformed(const char* reason, std::string_view what, std::string_view line) {
  return Rejected(reason, std::string(what) + ": \"" + QuoteForLog(line) + "\"");
}

}  // namespace

std::string_view DomainOf(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

QmailKeys::QmailKeys()
    : program(InternName("program")),
      pid(InternName("pid")),
      action(InternName("action")),
      type(InternName("type")),
      condition(InternName("condition")),
      protocol(InternName("protocol")),
      remote_ip(InternName("remote_ip")),
      remote_host(InternName("remote_host")),
      helo(InternName("helo")),
      mail_from(InternName("mail_from")),
      mail_from_domain(InternName("mail_from_domain")),
      rcpt_to(InternName("rcpt_to")),
      rcpt_to_domain(InternName("rcpt_to_domain")),
      user(InternName("user")),
      info(InternName("info")),
      concurrency(InternName("concurrency")),
      limit(InternName("limit")),
      local_host(InternName("local_host")),
      local_ip(InternName("local_ip")),
      local_port(InternName("local_port")),
      remote_info(InternName("remote_info")),
      remote_port(InternName("remote_port")),
      status(InternName("status")),
      exit_code(InternName("exit_code")),
      signal(InternName("signal")),
      reason(InternName("reason")),
      seconds(InternName("seconds")),
      msg(InternName("msg")),
      bytes(InternName("bytes")),
      sender(InternName("sender")),
      qp(InternName("qp")),
      uid(InternName("uid")),
      delivery(InternName("delivery")),
      channel(InternName("channel")),
      recipient(InternName("recipient")),
      recipient_domain(InternName("recipient_domain")),
      report(InternName("report")),
      result(InternName("result")),
      local(InternName("local")),
      local_limit(InternName("local_limit")),
      remote(InternName("remote")),
      remote_limit(InternName("remote_limit")),
      text(InternName("text")),
      duration(InternName("duration")),
      accepted(InternName("accepted")),
      rejected(InternName("rejected")),
      rbl(InternName("rbl")),
      sender_domain(InternName("sender_domain")),
      xdelay(InternName("xdelay")),
      ddelay(InternName("ddelay")),
      qtime(InternName("qtime")),
      delivered(InternName("delivered")),
      deferred(InternName("deferred")),
      failed(InternName("failed")),
      complete(InternName("complete")),
      ev_tcp_status(InternName("tcpserver::status")),
      ev_tcp_pid(InternName("tcpserver::pid")),
      ev_tcp_ok(InternName("tcpserver::ok")),
      ev_tcp_deny(InternName("tcpserver::deny")),
      ev_tcp_end(InternName("tcpserver::end")),
      ev_tcp_warning(InternName("tcpserver::warning")),
      ev_tcp_fatal(InternName("tcpserver::fatal")),
      ev_rbl_451(InternName("rblsmtpd::451")),
      ev_rbl_553(InternName("rblsmtpd::553")),
      ev_rbl_info(InternName("rblsmtpd::rbl_info")),
      ev_rbl_greetdelay(InternName("rblsmtpd::greetdelay")),
      ev_new_msg(InternName("qmail-send::new_msg")),
      ev_info_msg(InternName("qmail-send::info_msg")),
      ev_starting_delivery(InternName("qmail-send::starting_delivery")),
      ev_delivery_success(InternName("qmail-send::delivery::success")),
      ev_delivery_deferral(InternName("qmail-send::delivery::deferral")),
      ev_delivery_failure(InternName("qmail-send::delivery::failure")),
      ev_send_status(InternName("qmail-send::status")),
      ev_send_exiting(InternName("qmail-send::status::exiting")),
      ev_end_msg(InternName("qmail-send::end_msg")),
      ev_bounce_msg(InternName("qmail-send::bounce_msg")),
      ev_double_bounce(InternName("qmail-send::double_bounce")),
      ev_triple_bounce(InternName("qmail-send::triple_bounce")),
      ev_send_warning(InternName("qmail-send::warning")),
      ev_send_alert(InternName("qmail-send::alert")) {}

const QmailKeys& QmailFieldKeys() {
  static const QmailKeys keys;
  return keys;
}

QmailLineDecoder::QmailLineDecoder()
    : k_(QmailFieldKeys()), budget_(NameInput::kLogFile, kMaxVerdictNames) {}

NameId QmailLineDecoder::EventName(std::string_view name) { return TryInternName(name, budget_); }

Status QmailLineDecoder::Decode(std::string_view line, Event& out) {
  out.name = kNoName;
  out.fields.clear();
  line_ = line;
  std::string_view rest = line;
  if (Consume(rest, "qmail-smtpd: pid ")) return DecodeVerdict("qmail-smtpd", rest, out);
  if (Consume(rest, "qmail-popup: pid ")) return DecodeVerdict("qmail-popup", rest, out);
  if (Consume(rest, "tcpserver: ")) return DecodeTcpserver("tcpserver", rest, out);
  if (Consume(rest, "sslserver: ")) return DecodeTcpserver("sslserver", rest, out);
  if (Consume(rest, "rblsmtpd: ")) return DecodeRblsmtpd(rest, out);
  return DecodeQmailSend(line, out);
}

// PID SP Action::Type::Condition then the information tags, in any order.
Status QmailLineDecoder::DecodeVerdict(std::string_view program, std::string_view rest,
                                       Event& out) {
  const bool popup = program == "qmail-popup";
  const char* const reason = popup ? "malformed_qmail_popup" : "malformed_qmail_smtpd";
  const std::string_view line = line_;
  std::int64_t pid = 0;
  if (!NumberToken(rest, pid)) return Malformed(reason, "no pid", line);
  const std::string_view verdict = Token(rest);
  const std::size_t c1 = verdict.find("::");
  const std::size_t c2 = c1 == std::string_view::npos ? c1 : verdict.find("::", c1 + 2);
  if (c2 == std::string_view::npos || c1 == 0 || c2 == c1 + 2) {
    return Malformed(reason, "no Action::Type::Condition", line);
  }
  const std::string_view action = verdict.substr(0, c1);
  const std::string_view type = verdict.substr(c1 + 2, c2 - c1 - 2);
  const std::string_view condition = verdict.substr(c2 + 2);
  AddStringField(out, k_.program, program);
  AddIntField(out, k_.pid, pid);
  AddStringField(out, k_.action, action);
  AddStringField(out, k_.type, type);
  AddStringField(out, k_.condition, condition);

  // The tags P: S: H: F: T: begin at a space; a word that begins no tag
  // belongs to the value before it (a HELO with spaces). `?~ 'user'` (`?=`
  // in older releases) and a quoted note end the line.
  enum Tag { kP, kS, kH, kF, kT, kTags };
  std::array<std::string_view, kTags> tags{};
  std::array<bool, kTags> seen{};
  int current = -1;
  std::string_view user, note;
  bool have_user = false, have_note = false;
  while (!rest.empty()) {
    const char* const word_begin = rest.data();
    if (rest.starts_with("?~ ") || rest.starts_with("?= ")) {
      std::string_view u = rest.substr(3);
      if (u.size() >= 2 && u.front() == '\'' && u.back() == '\'') u = u.substr(1, u.size() - 2);
      user = u;
      have_user = true;
      break;
    }
    if (rest.front() == '\'' || rest.starts_with("!= ")) {
      std::string_view n = rest.front() == '\'' ? rest : rest.substr(3);
      if (n.size() >= 2 && n.front() == '\'' && n.back() == '\'') n = n.substr(1, n.size() - 2);
      note = n;
      have_note = true;
      break;
    }
    const std::string_view word = Token(rest);
    int tag = -1;
    if (word.size() >= 2 && word[1] == ':') {
      switch (word[0]) {
        case 'P':
          tag = kP;
          break;
        case 'S':
          tag = kS;
          break;
        case 'H':
          tag = kH;
          break;
        case 'F':
          tag = kF;
          break;
        case 'T':
          tag = kT;
          break;
        default:
          break;
      }
    }
    if (tag >= 0 && !seen[tag]) {
      seen[tag] = true;
      tags[tag] = word.substr(2);
      current = tag;
    } else if (current >= 0) {
      // Widen the value over the space to this word.
      const char* const begin = tags[current].data();
      tags[current] =
          std::string_view(begin, static_cast<std::size_t>(word_begin - begin) + word.size());
    } else {
      return Malformed(reason, "text before the first tag", line);
    }
  }
  if (!seen[kP] || !seen[kS]) return Malformed(reason, "no P: or S: tag", line);
  // Named only now: a garbled line spends no name.
  if (popup) {
    scratch_.assign("qmail-popup::");
    scratch_.append(verdict);
    out.name = EventName(scratch_);
  } else {
    out.name = EventName(verdict);
  }
  if (out.name == kNoName) {
    return Rejected("too_many_names",
                    "more than " + std::to_string(kMaxVerdictNames) + " distinct verdicts");
  }
  AddStringField(out, k_.protocol, tags[kP]);
  const std::string_view s = tags[kS];
  const std::size_t colon = s.rfind(':');
  AddStringField(out, k_.remote_ip, colon == std::string_view::npos ? s : s.substr(0, colon));
  AddStringField(out, k_.remote_host,
                 colon == std::string_view::npos ? std::string_view() : s.substr(colon + 1));
  if (seen[kH]) AddStringField(out, k_.helo, tags[kH]);
  if (seen[kF]) {
    AddStringField(out, k_.mail_from, tags[kF]);
    AddStringField(out, k_.mail_from_domain, DomainOf(tags[kF]));
  }
  if (seen[kT]) {
    AddStringField(out, k_.rcpt_to, tags[kT]);
    AddStringField(out, k_.rcpt_to_domain, DomainOf(tags[kT]));
  }
  if (have_user) AddStringField(out, k_.user, user);
  if (have_note) AddStringField(out, k_.info, note);
  return Status::Ok();
}

Status QmailLineDecoder::DecodeTcpserver(std::string_view program, std::string_view rest,
                                         Event& out) {
  const std::string_view line = line_;
  AddStringField(out, k_.program, program);
  if (Consume(rest, "status: ")) {
    std::int64_t n = 0, limit = 0;
    // indimail's tcpserver appends " sql: 0|1".
    if (!Ratio(Token(rest), n, limit)) return Malformed("malformed_tcpserver", "status", line);
    out.name = k_.ev_tcp_status;
    AddIntField(out, k_.concurrency, n);
    AddIntField(out, k_.limit, limit);
    return Status::Ok();
  }
  if (Consume(rest, "pid ")) {
    std::int64_t pid = 0;
    if (!NumberToken(rest, pid) || !Consume(rest, "from ") || rest.empty()) {
      return Malformed("malformed_tcpserver", "pid", line);
    }
    out.name = k_.ev_tcp_pid;
    AddIntField(out, k_.pid, pid);
    AddStringField(out, k_.remote_ip, rest);
    return Status::Ok();
  }
  const bool ok = rest.starts_with("ok ");
  if (ok || rest.starts_with("deny ")) {
    Token(rest);
    std::int64_t pid = 0;
    if (!NumberToken(rest, pid)) return Malformed("malformed_tcpserver", "ok/deny pid", line);
    const std::string_view local = Token(rest);
    const std::string_view remote = rest;
    // local = host:ip:port, remote = host:ip:info:port; the host has no
    // colon, the port none either, the IP (v6 with ucspi-tcp6) may.
    const std::size_t l1 = local.find(':'), l2 = local.rfind(':');
    const std::size_t r1 = remote.find(':'), r2 = remote.rfind(':');
    if (l1 == std::string_view::npos || l1 == l2 || r1 == std::string_view::npos || r1 == r2) {
      return Malformed("malformed_tcpserver", "ok/deny addresses", line);
    }
    const std::string_view middle = remote.substr(r1 + 1, r2 - r1 - 1);
    const std::size_t m = middle.rfind(':');
    if (m == std::string_view::npos) return Malformed("malformed_tcpserver", "remote info", line);
    std::int64_t lport = 0, rport = 0;
    if (!ParseDecimal(local.substr(l2 + 1), lport) || !ParseDecimal(remote.substr(r2 + 1), rport)) {
      return Malformed("malformed_tcpserver", "port", line);
    }
    out.name = ok ? k_.ev_tcp_ok : k_.ev_tcp_deny;
    AddIntField(out, k_.pid, pid);
    AddStringField(out, k_.local_host, local.substr(0, l1));
    AddStringField(out, k_.local_ip, local.substr(l1 + 1, l2 - l1 - 1));
    AddIntField(out, k_.local_port, lport);
    AddStringField(out, k_.remote_host, remote.substr(0, r1));
    AddStringField(out, k_.remote_ip, middle.substr(0, m));
    AddStringField(out, k_.remote_info, middle.substr(m + 1));
    AddIntField(out, k_.remote_port, rport);
    return Status::Ok();
  }
  if (Consume(rest, "end ")) {
    std::int64_t pid = 0, wstat = 0;
    if (!NumberToken(rest, pid) || !Consume(rest, "status ") || !ParseDecimal(rest, wstat) ||
        wstat < 0) {
      return Malformed("malformed_tcpserver", "end", line);
    }
    out.name = k_.ev_tcp_end;
    AddIntField(out, k_.pid, pid);
    AddIntField(out, k_.status, wstat);
    // A wait() status: exited with (W >> 8) when the low 7 bits are 0, else
    // killed by the signal they hold.
    if ((wstat & 0x7f) == 0) {
      AddIntField(out, k_.exit_code, (wstat >> 8) & 0xff);
    } else {
      AddIntField(out, k_.signal, wstat & 0x7f);
    }
    return Status::Ok();
  }
  if (Consume(rest, "warning: ")) {
    Consume(rest, "dropping connection, ");
    out.name = k_.ev_tcp_warning;
    AddStringField(out, k_.reason, rest);
    return Status::Ok();
  }
  if (Consume(rest, "fatal: ")) {
    out.name = k_.ev_tcp_fatal;
    AddStringField(out, k_.reason, rest);
    return Status::Ok();
  }
  return Malformed("malformed_tcpserver", "unknown tcpserver line", line);
}

// IP " pid " P ": " text
Status QmailLineDecoder::DecodeRblsmtpd(std::string_view rest, Event& out) {
  const std::string_view line = line_;
  const std::string_view ip = Token(rest);
  std::int64_t pid = 0;
  if (ip.empty() || !Consume(rest, "pid ")) return Malformed("malformed_rblsmtpd", "pid", line);
  const std::size_t colon = rest.find(": ");
  if (colon == std::string_view::npos || !ParseDecimal(rest.substr(0, colon), pid)) {
    return Malformed("malformed_rblsmtpd", "pid", line);
  }
  rest.remove_prefix(colon + 2);
  AddStringField(out, k_.program, "rblsmtpd");
  AddStringField(out, k_.remote_ip, ip);
  AddIntField(out, k_.pid, pid);
  if (Consume(rest, "451 ")) {
    out.name = k_.ev_rbl_451;
  } else if (Consume(rest, "553 ")) {
    out.name = k_.ev_rbl_553;
  } else if (Consume(rest, "[RBL info] ")) {
    out.name = k_.ev_rbl_info;
  } else if (Consume(rest, "greetdelay: ")) {
    std::int64_t seconds = 0;
    if (!ParseDecimal(rest, seconds)) return Malformed("malformed_rblsmtpd", "greetdelay", line);
    out.name = k_.ev_rbl_greetdelay;
    AddIntField(out, k_.seconds, seconds, Unit::kSeconds);
    return Status::Ok();
  } else {
    return Malformed("malformed_rblsmtpd", "unknown rblsmtpd text", line);
  }
  AddStringField(out, k_.reason, rest);
  return Status::Ok();
}

Status QmailLineDecoder::DecodeQmailSend(std::string_view line, Event& out) {
  std::string_view rest = line;
  auto send = [&](NameId name) {
    out.name = name;
    AddStringField(out, k_.program, "qmail-send");
  };
  auto malformed = [&](std::string_view what) {
    out.name = kNoName;
    out.fields.clear();
    return Malformed("malformed_qmail_send", what, line);
  };
  if (Consume(rest, "new msg ")) {
    std::int64_t msg = 0;
    if (!ParseDecimal(rest, msg)) return malformed("new msg");
    send(k_.ev_new_msg);
    AddIntField(out, k_.msg, msg);
    return Status::Ok();
  }
  if (Consume(rest, "info msg ")) {
    // M: bytes B from <S> qp Q uid U; S may hold anything, so the end is
    // read from the right.
    std::int64_t msg = 0, bytes = 0, qp = 0, uid = 0;
    const std::size_t colon = rest.find(": bytes ");
    if (colon == std::string_view::npos || !ParseDecimal(rest.substr(0, colon), msg)) {
      return malformed("info msg");
    }
    rest.remove_prefix(colon + 8);
    if (!NumberToken(rest, bytes) || !Consume(rest, "from <")) return malformed("info msg");
    const std::size_t qp_at = rest.rfind("> qp ");
    if (qp_at == std::string_view::npos) return malformed("info msg");
    const std::string_view sender = rest.substr(0, qp_at);
    rest.remove_prefix(qp_at + 5);
    if (!NumberToken(rest, qp) || !Consume(rest, "uid ") || !ParseDecimal(rest, uid)) {
      return malformed("info msg");
    }
    send(k_.ev_info_msg);
    AddIntField(out, k_.msg, msg);
    AddIntField(out, k_.bytes, bytes, Unit::kBytes);
    AddStringField(out, k_.sender, sender);
    AddIntField(out, k_.qp, qp);
    AddIntField(out, k_.uid, uid);
    return Status::Ok();
  }
  if (Consume(rest, "starting delivery ")) {
    std::int64_t d = 0, msg = 0;
    const std::size_t colon = rest.find(": msg ");
    if (colon == std::string_view::npos || !ParseDecimal(rest.substr(0, colon), d)) {
      return malformed("starting delivery");
    }
    rest.remove_prefix(colon + 6);
    if (!NumberToken(rest, msg) || !Consume(rest, "to ")) return malformed("starting delivery");
    const std::string_view channel = Token(rest);
    if ((channel != "local" && channel != "remote") || rest.empty()) {
      return malformed("starting delivery");
    }
    send(k_.ev_starting_delivery);
    AddIntField(out, k_.delivery, d);
    AddIntField(out, k_.msg, msg);
    AddStringField(out, k_.channel, channel);
    AddStringField(out, k_.recipient, rest);
    AddStringField(out, k_.recipient_domain, DomainOf(rest));
    return Status::Ok();
  }
  if (Consume(rest, "delivery ")) {
    std::int64_t d = 0;
    const std::size_t colon = rest.find(": ");
    if (colon == std::string_view::npos || !ParseDecimal(rest.substr(0, colon), d)) {
      return malformed("delivery");
    }
    rest.remove_prefix(colon + 2);
    NameId name;
    std::string_view result;
    if (Consume(rest, "success:")) {
      name = k_.ev_delivery_success;
      result = "success";
    } else if (Consume(rest, "deferral:")) {
      name = k_.ev_delivery_deferral;
      result = "deferral";
    } else if (Consume(rest, "failure:")) {
      name = k_.ev_delivery_failure;
      result = "failure";
    } else {
      return malformed("delivery result");
    }
    Consume(rest, " ");
    send(name);
    AddIntField(out, k_.delivery, d);
    AddStringField(out, k_.result, result);
    AddStringField(out, k_.report, rest);
    return Status::Ok();
  }
  if (Consume(rest, "status: ")) {
    if (Consume(rest, "local ")) {
      std::int64_t l = 0, ll = 0, r = 0, rl = 0;
      if (!Ratio(Token(rest), l, ll) || !Consume(rest, "remote ") || !Ratio(rest, r, rl)) {
        return malformed("status");
      }
      send(k_.ev_send_status);
      AddIntField(out, k_.local, l);
      AddIntField(out, k_.local_limit, ll);
      AddIntField(out, k_.remote, r);
      AddIntField(out, k_.remote_limit, rl);
      return Status::Ok();
    }
    // "exiting" (qmail), "qmail-send exiting", "qmail-todo stop processing
    // asap" (s/qmail).
    if (rest.ends_with("exiting") || rest.ends_with("stop processing asap")) {
      send(k_.ev_send_exiting);
      AddStringField(out, k_.text, rest);
      return Status::Ok();
    }
    return malformed("status");
  }
  if (Consume(rest, "end msg ")) {
    std::int64_t msg = 0;
    if (!ParseDecimal(rest, msg)) return malformed("end msg");
    send(k_.ev_end_msg);
    AddIntField(out, k_.msg, msg);
    return Status::Ok();
  }
  if (Consume(rest, "bounce msg ")) {
    std::int64_t msg = 0, qp = 0;
    if (!NumberToken(rest, msg) || !Consume(rest, "qp ") || !ParseDecimal(rest, qp)) {
      return malformed("bounce msg");
    }
    send(k_.ev_bounce_msg);
    AddIntField(out, k_.msg, msg);
    AddIntField(out, k_.qp, qp);
    return Status::Ok();
  }
  if (Consume(rest, "double bounce: ")) {
    send(k_.ev_double_bounce);
    AddStringField(out, k_.text, rest);
    return Status::Ok();
  }
  if (Consume(rest, "triple bounce: ")) {
    // "discarding bounce/M"
    std::int64_t msg = 0;
    const std::size_t slash = rest.rfind('/');
    send(k_.ev_triple_bounce);
    if (slash != std::string_view::npos && ParseDecimal(rest.substr(slash + 1), msg)) {
      AddIntField(out, k_.msg, msg);
    }
    AddStringField(out, k_.text, rest);
    return Status::Ok();
  }
  if (Consume(rest, "warning: ")) {
    send(k_.ev_send_warning);
    AddStringField(out, k_.text, rest);
    return Status::Ok();
  }
  if (Consume(rest, "alert: ")) {
    send(k_.ev_send_alert);
    AddStringField(out, k_.text, rest);
    return Status::Ok();
  }
  return Rejected("unknown_line", "not an s/qmail line: \"" + QuoteForLog(line) + "\"");
}

}  // namespace mailscope::ingest
