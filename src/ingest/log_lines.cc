#include "ingest/log_lines.h"

#include "ingest/qmail_tracker.h"
#include "ingest/stalwart_log.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

// The saved state: "log-lines 1\n" YEAR SP MONTH "\n" then the format's.
constexpr std::string_view kStateHeader = "log-lines 1\n";

}  // namespace

std::unique_ptr<LogLineFormat> MakeLogLineFormat(std::string_view name) {
  if (name == "qmail") return MakeQmailLineFormat();
  if (name == "stalwart") return MakeStalwartLineFormat();
  return nullptr;
}

std::string_view SniffLogFormat(std::string_view head) {
  // A Stalwart line begins with its own time, level and (type): the first
  // line tells, and no qmail line looks like one.
  if (LooksLikeStalwartLogLine(head.substr(0, head.find('\n')))) return "stalwart";
  for (std::string_view mark : {"qmail-smtpd: pid ", "qmail-popup: pid ", "tcpserver: ",
                                "rblsmtpd: ", "starting delivery ", "new msg ", "info msg "}) {
    if (head.find(mark) != std::string_view::npos) return "qmail";
  }
  return {};
}

LogLines::LogLines(std::unique_ptr<LogLineFormat> format, const TimeZone& zone, TimePoint reference)
    : format_(std::move(format)), time_(zone, reference) {
  time_.set_iso8601_syslog_header(format_->iso8601_syslog_header());
}

Status LogLines::Unparsed(Status status) {
  ++figures_.unparsed;
  auto it = figures_.unparsed_by_reason.find(status.reason());
  if (it == figures_.unparsed_by_reason.end()) {
    it = figures_.unparsed_by_reason.emplace(std::string(status.reason()), 0).first;
  }
  ++it->second;
  return status;
}

Status LogLines::DecodeLine(std::string_view line, TimePoint fallback_time, Event& out) {
  // A CR before the LF (a log that passed through a CRLF relay) is not text.
  if (line.ends_with('\r')) line.remove_suffix(1);
  out.Clear();
  out.source = format_->source();
  const std::optional<LogTime> t = time_.Parse(line);
  if (!t) {
    return Unparsed(
        Rejected("bad_timestamp", std::string(time_.error()) + ": \"" + QuoteForLog(line) + "\""));
  }
  out.time = t->kind == LogTimeKind::kNone ? fallback_time : t->time;
  Status st = format_->DecodeLine(t->message, out);
  if (!st.ok()) return Unparsed(std::move(st));
  ++figures_.parsed;
  return Status::Ok();
}

std::string LogLines::SaveState() const {
  const LogTimeParser::State s = time_.state();
  std::string out(kStateHeader);
  out += std::to_string(s.year);
  out += ' ';
  out += std::to_string(s.month);
  out += '\n';
  out += format_->SaveState();
  return out;
}

Status LogLines::LoadState(std::string_view saved) {
  if (!saved.starts_with(kStateHeader)) return InvalidArgument("log state: unknown header");
  saved.remove_prefix(kStateHeader.size());
  const std::size_t nl = saved.find('\n');
  const std::string_view time_line = saved.substr(0, nl);
  const std::size_t sp = time_line.find(' ');
  LogTimeParser::State s;
  if (nl == std::string_view::npos || sp == std::string_view::npos ||
      !ParseDecimal(time_line.substr(0, sp), s.year) ||
      !ParseDecimal(time_line.substr(sp + 1), s.month)) {
    return InvalidArgument("log state: malformed time state");
  }
  MS_RETURN_IF_ERROR(format_->LoadState(saved.substr(nl + 1)));
  time_.set_state(s);
  return Status::Ok();
}

}  // namespace mailscope::ingest
