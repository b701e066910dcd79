// LogReport: what `mailscope replay` tells a postmaster about the logs it
// read, gathered as an output of the pipeline from the events of s/qmail's
// logs (ingest/qmail_log.h, ingest/qmail_tracker.h). It covers qmailanalog's
// reports: zoverall (completed messages, recipients, delivery attempts by
// result, average qtime, ddelay and xdelay, time span, concurrency),
// zdeferrals and zfailures (attempts and xdelay per reason), zsenders and
// zrecipients (per sender and recipient), and adds what qmail-smtpd's
// verdicts tell: counts per Action::Type::Condition, rejections per reason,
// top IPs, HELOs and domains, deliveries per destination domain, delay
// percentiles and a per-hour histogram. Rendered as text or one JSON object.
// Loop thread only.
#pragma once

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/hash.h"
#include "ingest/log_lines.h"
#include "ingest/qmail_log.h"
#include "pipeline/dispatcher.h"
#include "stats/sketch.h"

namespace mailscope::cli {

class LogReport final : public pipeline::Consumer {
 public:
  LogReport();
  std::string_view Consume(const Event& event) override;

  // What was read: files, bytes and the lines' figures, for the totals.
  struct Input {
    std::uint64_t files = 0;
    std::uint64_t bytes = 0;
    std::uint64_t lines = 0;
    ingest::LogLineFigures lines_figures;
    std::uint64_t messages_in_queue = 0;  // still queued at the end
    std::uint64_t sessions_open = 0;      // connections without their end
    double seconds = 0;                   // wall time of the run
  };
  std::string Text(const Input& input, std::size_t top) const;
  std::string Json(const Input& input, std::size_t top) const;

 private:
  struct Counts {
    std::uint64_t a = 0, b = 0, c = 0;  // meaning per table, see log_report.cc
    double d = 0;
  };
  using Table = boost::unordered_flat_map<std::string, Counts, SeededStringHash, std::equal_to<>>;
  // The row of `key`: made when new while the table holds fewer than
  // kMaxRows, else the shared row kOtherRow, so memory stays bounded however
  // many addresses, HELOs or senders a log holds.
  static constexpr std::size_t kMaxRows = 100'000;
  static constexpr std::string_view kOtherRow = "(other)";
  static Counts& Row(Table& t, std::string_view key);
  static void Bump(Table& t, std::string_view key, int which, double d = 0);

  void OnVerdict(const Event& e);
  void OnResult(const Event& e, int outcome);
  void OnEndMsg(const Event& e);
  void Hour(const Event& e, int which);

  const ingest::QmailKeys& k_;

  // Totals.
  std::uint64_t events_ = 0;
  std::uint64_t smtp_accepted_ = 0, smtp_rejected_ = 0, smtp_deferred_ = 0;
  std::uint64_t popup_accepted_ = 0, popup_rejected_ = 0;
  std::uint64_t connections_ = 0, denied_ = 0, sessions_ = 0, rbl_refused_ = 0;
  std::uint64_t new_messages_ = 0, completed_ = 0, completed_recipients_ = 0;
  std::uint64_t attempts_[3] = {0, 0, 0};  // success, deferral, failure
  std::uint64_t unmatched_results_ = 0;
  double qtime_sum_ = 0, ddelay_sum_ = 0, xdelay_sum_ = 0, session_seconds_ = 0;
  std::int64_t first_us_ = -1, last_us_ = -1;  // completed messages: first birth, last end
  std::uint64_t bytes_delivered_ = 0;

  Table verdicts_;        // Action::Type::Condition: a = lines
  Table rbl_;             // rblsmtpd code: a = refusals
  Table ips_;             // a = connections, b = accepted, c = rejected
  Table helos_;           // a = verdict lines, b = accepted, c = rejected
  Table sender_domains_;  // b = accepted, c = rejected (qmail-smtpd)
  Table rcpt_domains_;    // b = accepted, c = rejected (qmail-smtpd)
  Table auth_users_;      // b = accepted, c = rejected
  Table destinations_;    // recipient domain: a = success, b = deferral, c = failure, d = bytes
  Table deferrals_;       // reason: a = attempts, d = xdelay seconds
  Table failures_;        // reason: a = attempts, d = xdelay seconds
  Table senders_;         // a = messages, b = recipients, c = attempts, d = bytes
  Table recipients_;      // a = success, b = deferral, c = failure, d = bytes
  std::map<std::int64_t, std::array<std::uint64_t, 6>>
      hours_;  // connections, accepted, rejected, ok, z, d
  stats::QuantileSketch xdelay_q_, ddelay_q_, qtime_q_, session_q_;
};

}  // namespace mailscope::cli
