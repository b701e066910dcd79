#include "cli/log_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "export/json_writer.h"
#include "ingest/event_fields.h"

namespace mailscope::cli {
namespace {

constexpr std::int64_t kHourUs = 3600LL * 1000 * 1000;

using ingest::IntField;
using ingest::StringField;

// A microseconds field in seconds; negative when absent.
double Seconds(const Event& e, NameId key) {
  std::int64_t us = 0;
  return IntField(e, key, us) ? static_cast<double>(us) / 1e6 : -1;
}

template <typename Table, typename Key>
std::vector<std::pair<std::string_view, typename Table::mapped_type>> Top(const Table& t,
                                                                          std::size_t n, Key key) {
  std::vector<std::pair<std::string_view, typename Table::mapped_type>> rows(t.begin(), t.end());
  auto by = [&](const auto& x, const auto& y) {
    const auto kx = key(x.second), ky = key(y.second);
    return kx != ky ? kx > ky : x.first < y.first;
  };
  if (rows.size() > n) {
    std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n), rows.end(), by);
    rows.resize(n);
  } else {
    std::sort(rows.begin(), rows.end(), by);
  }
  return rows;
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

std::string HourText(std::int64_t hour_us) {
  const std::time_t t = hour_us / 1000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:00Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour);
}

}  // namespace

LogReport::LogReport() : k_(ingest::QmailFieldKeys()) {}

LogReport::Counts& LogReport::Row(Table& t, std::string_view key) {
  auto it = t.find(key);
  if (it != t.end()) return it->second;
  if (t.size() >= kMaxRows) key = kOtherRow;
  return t.try_emplace(std::string(key)).first->second;
}

void LogReport::Bump(Table& t, std::string_view key, int which, double d) {
  Counts& c = Row(t, key);
  (which == 0 ? c.a : which == 1 ? c.b : c.c) += 1;
  c.d += d;
}

void LogReport::Hour(const Event& e, int which) {
  const std::int64_t us = e.time.time_since_epoch().count();
  hours_[us - us % kHourUs][static_cast<std::size_t>(which)] += 1;
}

std::string_view LogReport::Consume(const Event& e) {
  ++events_;
  const NameId name = e.name;
  if (name == k_.ev_tcp_pid) {
    ++connections_;
    Bump(ips_, StringField(e, k_.remote_ip), 0);
    Hour(e, 0);
  } else if (name == k_.ev_tcp_deny) {
    ++denied_;
  } else if (name == k_.ev_tcp_end) {
    const double s = Seconds(e, k_.duration);
    if (s >= 0) {
      ++sessions_;
      session_seconds_ += s;
      session_q_.Add(s);
    }
  } else if (name == k_.ev_rbl_451 || name == k_.ev_rbl_553) {
    ++rbl_refused_;
    Bump(rbl_, name == k_.ev_rbl_451 ? "451" : "553", 0);
  } else if (name == k_.ev_delivery_success) {
    OnResult(e, 0);
  } else if (name == k_.ev_delivery_deferral) {
    OnResult(e, 1);
  } else if (name == k_.ev_delivery_failure) {
    OnResult(e, 2);
  } else if (name == k_.ev_end_msg) {
    OnEndMsg(e);
  } else if (name == k_.ev_new_msg) {
    ++new_messages_;
  } else {
    const std::string_view program = StringField(e, k_.program);
    if (program == "qmail-smtpd") {
      OnVerdict(e);
    } else if (program == "qmail-popup") {
      (StringField(e, k_.action) == "Accept" ? popup_accepted_ : popup_rejected_) += 1;
      Bump(verdicts_, NameText(name), 0);
    }
  }
  return {};
}

void LogReport::OnVerdict(const Event& e) {
  const std::string_view action = StringField(e, k_.action);
  const bool accept = action == "Accept";
  if (accept) {
    ++smtp_accepted_;
  } else if (action == "Deferred") {
    ++smtp_deferred_;
  } else {
    ++smtp_rejected_;
  }
  const int which = accept ? 1 : 2;
  Hour(e, which);
  Bump(verdicts_, NameText(e.name), 0);
  Bump(ips_, StringField(e, k_.remote_ip), which);
  if (const Field* f = e.Find(k_.helo)) Bump(helos_, f->value.as_string(), which);
  if (e.Find(k_.mail_from) != nullptr)
    Bump(sender_domains_, StringField(e, k_.mail_from_domain), which);
  if (e.Find(k_.rcpt_to) != nullptr) Bump(rcpt_domains_, StringField(e, k_.rcpt_to_domain), which);
  if (const Field* f = e.Find(k_.user); f != nullptr && StringField(e, k_.type) == "AUTH") {
    Bump(auth_users_, f->value.as_string(), which);
  }
}

void LogReport::OnResult(const Event& e, int outcome) {
  std::int64_t msg = 0;
  if (!IntField(e, k_.msg, msg)) {
    ++unmatched_results_;
    return;
  }
  ++attempts_[outcome];
  Hour(e, 3 + outcome);
  const double x = std::max(0.0, Seconds(e, k_.xdelay));
  xdelay_sum_ += x;
  xdelay_q_.Add(x);
  std::int64_t bytes = 0;
  const bool have_bytes = IntField(e, k_.bytes, bytes);
  Bump(destinations_, StringField(e, k_.recipient_domain), outcome,
       outcome == 0 && have_bytes ? static_cast<double>(bytes) : 0);
  Bump(recipients_, StringField(e, k_.recipient), outcome,
       outcome == 0 && have_bytes ? static_cast<double>(bytes) : 0);
  if (outcome == 0) {
    if (have_bytes) bytes_delivered_ += static_cast<std::uint64_t>(bytes);
    const double d = Seconds(e, k_.ddelay);
    if (d >= 0) {
      ddelay_sum_ += d;
      ddelay_q_.Add(d);
    }
  } else {
    Bump(outcome == 1 ? deferrals_ : failures_, StringField(e, k_.report), 0, x);
  }
}

void LogReport::OnEndMsg(const Event& e) {
  const Field* complete = e.Find(k_.complete);
  if (complete == nullptr || !complete->value.as_bool()) return;
  ++completed_;
  std::int64_t nk = 0, nz = 0, nd = 0, bytes = 0;
  IntField(e, k_.delivered, nk);
  IntField(e, k_.deferred, nz);
  IntField(e, k_.failed, nd);
  IntField(e, k_.bytes, bytes);
  completed_recipients_ += static_cast<std::uint64_t>(nk + nd);
  const double q = std::max(0.0, Seconds(e, k_.qtime));
  // zoverall's time span: from the first birth to the last end of the
  // completed messages.
  const std::int64_t end_us = e.time.time_since_epoch().count();
  std::int64_t qtime_us = 0;
  IntField(e, k_.qtime, qtime_us);
  const std::int64_t birth_us = end_us - qtime_us;
  if (first_us_ < 0 || birth_us < first_us_) first_us_ = birth_us;
  if (end_us > last_us_) last_us_ = end_us;
  qtime_sum_ += q;
  qtime_q_.Add(q);
  Counts& sender = Row(senders_, StringField(e, k_.sender));
  sender.a += 1;
  sender.b += static_cast<std::uint64_t>(nk + nd);
  sender.c += static_cast<std::uint64_t>(nk + nz + nd);
  sender.d += static_cast<double>(bytes);
}

namespace {

struct Quantiles {
  const char* name;
  const stats::QuantileSketch* q;
};

}  // namespace

std::string LogReport::Text(const Input& in, std::size_t top) const {
  std::string o;
  auto line = [&](std::string_view label, auto value) {
    o += fmt::format("{:<44}{}\n", label, value);
  };
  const double span = last_us_ > first_us_ ? static_cast<double>(last_us_ - first_us_) / 1e6 : 0;
  const std::uint64_t attempts = attempts_[0] + attempts_[1] + attempts_[2];
  o += "Overall\n";
  line("Files read", in.files);
  line("Bytes read", in.bytes);
  line("Lines read", in.lines);
  line("Lines parsed", in.lines_figures.parsed);
  line("Lines not parsed", in.lines_figures.unparsed);
  for (const auto& [reason, n] : in.lines_figures.unparsed_by_reason) {
    line(fmt::format("  {}", reason), n);
  }
  line("Events", events_);
  o += "\nMessages (qmail-send, as qmailanalog's zoverall)\n";
  line("Completed messages", completed_);
  line("Recipients for completed messages", completed_recipients_);
  line("Messages entering the queue (new msg)", new_messages_);
  line("Messages still in the queue at the end", in.messages_in_queue);
  line("Total delivery attempts", attempts);
  line("  success", attempts_[0]);
  line("  failure", attempts_[2]);
  line("  deferral", attempts_[1]);
  line("Delivery results without their start", unmatched_results_);
  line("Bytes delivered", bytes_delivered_);
  line("Average message qtime (s)", fmt::format("{:.3f}", Ratio(qtime_sum_, completed_)));
  line("Average ddelay per success (s)", fmt::format("{:.3f}", Ratio(ddelay_sum_, attempts_[0])));
  line("Average xdelay per attempt (s)", fmt::format("{:.3f}", Ratio(xdelay_sum_, attempts)));
  line("Time span (days)", fmt::format("{:.3f}", span / 86400));
  line("Average concurrency", fmt::format("{:.5f}", Ratio(xdelay_sum_, span)));
  o += "\nDelays (s)                                  p50       p90       p95       p99\n";
  for (const Quantiles& q :
       {Quantiles{"qtime per message", &qtime_q_}, Quantiles{"ddelay per success", &ddelay_q_},
        Quantiles{"xdelay per attempt", &xdelay_q_},
        Quantiles{"SMTP session duration", &session_q_}}) {
    o += fmt::format("{:<44}{:<10.3f}{:<10.3f}{:<10.3f}{:.3f}\n", q.name, q.q->Quantile(0.5),
                     q.q->Quantile(0.9), q.q->Quantile(0.95), q.q->Quantile(0.99));
  }
  o += "\nSMTP (tcpserver, rblsmtpd, qmail-smtpd)\n";
  line("Connections", connections_);
  line("Connections denied by tcpserver rules", denied_);
  line("Connections refused by rblsmtpd", rbl_refused_);
  line("Sessions ended", sessions_);
  line("Recipients accepted (Accept lines)", smtp_accepted_);
  line("Rejected (Reject lines)", smtp_rejected_);
  line("Deferred (Deferred lines)", smtp_deferred_);
  line("POP3 logins accepted / rejected", fmt::format("{} / {}", popup_accepted_, popup_rejected_));

  auto table = [&](std::string_view title, std::string_view head, const Table& t, auto key,
                   auto row) {
    if (t.empty()) return;
    o += fmt::format("\n{}\n{}\n", title, head);
    for (const auto& [k, c] : Top(t, top, key)) o += row(k.empty() ? "(empty)" : k, c);
  };
  auto total = [](const Counts& c) { return c.a + c.b + c.c; };
  table(
      "Verdicts (Action::Type::Condition)", "   lines  verdict", verdicts_,
      [](const Counts& c) { return c.a; },
      [](std::string_view k, const Counts& c) { return fmt::format("{:>8}  {}\n", c.a, k); });
  table(
      "rblsmtpd refusals", "   count  code", rbl_, [](const Counts& c) { return c.a; },
      [](std::string_view k, const Counts& c) { return fmt::format("{:>8}  {}\n", c.a, k); });
  table("Top IPs", "   conns  accepted  rejected  ip", ips_, total,
        [](std::string_view k, const Counts& c) {
          return fmt::format("{:>8}  {:>8}  {:>8}  {}\n", c.a, c.b, c.c, k);
        });
  auto ar = [](std::string_view k, const Counts& c) {
    return fmt::format("{:>8}  {:>8}  {}\n", c.b, c.c, k);
  };
  table("Top HELOs", "accepted  rejected  helo", helos_, total, ar);
  table("Top sender domains", "accepted  rejected  domain", sender_domains_, total, ar);
  table("Top recipient domains", "accepted  rejected  domain", rcpt_domains_, total, ar);
  table("SMTP AUTH users", "accepted  rejected  user", auth_users_, total, ar);
  table("Deliveries per destination domain", " success  deferral   failure         bytes  domain",
        destinations_, total, [](std::string_view k, const Counts& c) {
          return fmt::format("{:>8}  {:>8}  {:>8}  {:>12.0f}  {}\n", c.a, c.b, c.c, c.d, k);
        });
  auto reasons = [](std::string_view k, const Counts& c) {
    return fmt::format("{:>8}  {:>10.3f}  {}\n", c.a, c.d, k);
  };
  table(
      "Reasons for deferral (zdeferrals)", "     del      xdelay  reason", deferrals_,
      [](const Counts& c) { return c.a; }, reasons);
  table(
      "Reasons for failure (zfailures)", "     del      xdelay  reason", failures_,
      [](const Counts& c) { return c.a; }, reasons);
  table(
      "Senders (zsenders)", "    msgs      recips       tries         bytes  sender", senders_,
      [](const Counts& c) { return c.a; },
      [](std::string_view k, const Counts& c) {
        return fmt::format("{:>8}  {:>10}  {:>10}  {:>12.0f}  {}\n", c.a, c.b, c.c, c.d, k);
      });
  table("Recipients (zrecipients)", " success  deferral   failure         bytes  recipient",
        recipients_, total, [](std::string_view k, const Counts& c) {
          return fmt::format("{:>8}  {:>8}  {:>8}  {:>12.0f}  {}\n", c.a, c.b, c.c, c.d, k);
        });
  if (!hours_.empty()) {
    o += "\nPer hour (UTC)\n"
         "hour               conns  accepted  rejected  delivered  deferred  failed\n";
    for (const auto& [h, c] : hours_) {
      o += fmt::format("{}  {:>8}  {:>8}  {:>8}  {:>9}  {:>8}  {:>6}\n", HourText(h), c[0], c[1],
                       c[2], c[3], c[4], c[5]);
    }
  }
  return o;
}

std::string LogReport::Json(const Input& in, std::size_t top) const {
  std::string o = "{";
  bool first_member = true;
  auto key = [&](std::string_view k) {
    if (!first_member) o += ',';
    first_member = false;
    exporter::AppendJsonString(o, k);
    o += ':';
  };
  auto num = [&](std::string_view k, auto v) {
    key(k);
    o += fmt::format("{}", v);
  };
  auto begin = [&](std::string_view k) {
    key(k);
    o += '{';
    first_member = true;
  };
  auto end = [&] {
    o += '}';
    first_member = false;
  };
  const double span = last_us_ > first_us_ ? static_cast<double>(last_us_ - first_us_) / 1e6 : 0;
  const std::uint64_t attempts = attempts_[0] + attempts_[1] + attempts_[2];
  begin("totals");
  num("received", completed_);
  num("delivered", attempts_[0]);
  num("deferred", attempts_[1]);
  num("failed", attempts_[2]);
  num("rejected", smtp_rejected_);
  num("accepted", smtp_accepted_);
  num("smtp_deferred", smtp_deferred_);
  num("recipients", completed_recipients_);
  num("new_messages", new_messages_);
  num("messages_in_queue", in.messages_in_queue);
  num("delivery_attempts", attempts);
  num("results_without_start", unmatched_results_);
  num("bytes_delivered", bytes_delivered_);
  num("connections", connections_);
  num("connections_denied", denied_);
  num("rbl_refused", rbl_refused_);
  num("sessions", sessions_);
  num("sessions_open", in.sessions_open);
  num("pop3_accepted", popup_accepted_);
  num("pop3_rejected", popup_rejected_);
  num("events", events_);
  end();
  begin("input");
  num("files", in.files);
  num("bytes", in.bytes);
  num("lines", in.lines);
  num("parsed", in.lines_figures.parsed);
  num("unparsed", in.lines_figures.unparsed);
  begin("unparsed_by_reason");
  for (const auto& [reason, n] : in.lines_figures.unparsed_by_reason) num(reason, n);
  end();
  num("seconds", fmt::format("{:.3f}", in.seconds));
  end();
  begin("overall");
  num("average_qtime_seconds", fmt::format("{:.6f}", Ratio(qtime_sum_, completed_)));
  num("average_ddelay_seconds", fmt::format("{:.6f}", Ratio(ddelay_sum_, attempts_[0])));
  num("average_xdelay_seconds", fmt::format("{:.6f}", Ratio(xdelay_sum_, attempts)));
  num("time_span_seconds", fmt::format("{:.6f}", span));
  num("average_concurrency", fmt::format("{:.6f}", Ratio(xdelay_sum_, span)));
  end();
  begin("delays_seconds");
  for (const Quantiles& q : {Quantiles{"qtime", &qtime_q_}, Quantiles{"ddelay", &ddelay_q_},
                             Quantiles{"xdelay", &xdelay_q_}, Quantiles{"session", &session_q_}}) {
    begin(q.name);
    num("count", q.q->count());
    for (double p : {0.5, 0.9, 0.95, 0.99}) {
      num(fmt::format("p{}", static_cast<int>(p * 100)), fmt::format("{:.6f}", q.q->Quantile(p)));
    }
    end();
  }
  end();
  auto table = [&](std::string_view name, const Table& t, auto sort_key,
                   std::initializer_list<std::string_view> cols) {
    key(name);
    o += '[';
    bool first_row = true;
    for (const auto& [k, c] : Top(t, top, sort_key)) {
      if (!first_row) o += ',';
      first_row = false;
      o += '{';
      exporter::AppendJsonString(o, "key");
      o += ':';
      exporter::AppendJsonString(o, k);
      const double values[] = {static_cast<double>(c.a), static_cast<double>(c.b),
                               static_cast<double>(c.c), c.d};
      std::size_t i = 0;
      for (std::string_view col : cols) {
        if (!col.empty()) {
          o += ',';
          exporter::AppendJsonString(o, col);
          o += fmt::format(":{}", values[i]);
        }
        ++i;
      }
      o += '}';
    }
    o += ']';
  };
  auto a = [](const Counts& c) { return c.a; };
  auto total = [](const Counts& c) { return c.a + c.b + c.c; };
  table("verdicts", verdicts_, a, {"lines"});
  table("rbl", rbl_, a, {"refusals"});
  table("ips", ips_, total, {"connections", "accepted", "rejected"});
  table("helos", helos_, total, {"", "accepted", "rejected"});
  table("sender_domains", sender_domains_, total, {"", "accepted", "rejected"});
  table("recipient_domains", rcpt_domains_, total, {"", "accepted", "rejected"});
  table("auth_users", auth_users_, total, {"", "accepted", "rejected"});
  table("destinations", destinations_, total, {"success", "deferral", "failure", "bytes"});
  table("deferral_reasons", deferrals_, a, {"attempts", "", "", "xdelay_seconds"});
  table("failure_reasons", failures_, a, {"attempts", "", "", "xdelay_seconds"});
  table("senders", senders_, a, {"messages", "recipients", "attempts", "bytes"});
  table("recipients", recipients_, total, {"success", "deferral", "failure", "bytes"});
  key("hours");
  o += '[';
  bool first_hour = true;
  for (const auto& [h, c] : hours_) {
    if (!first_hour) o += ',';
    first_hour = false;
    o += fmt::format(
        "{{\"hour\":\"{}\",\"connections\":{},\"accepted\":{},\"rejected\":{},\"delivered\":{},"
        "\"deferred\":{},\"failed\":{}}}",
        HourText(h), c[0], c[1], c[2], c[3], c[4], c[5]);
  }
  o += "]}";
  o += '\n';
  return o;
}

}  // namespace mailscope::cli
