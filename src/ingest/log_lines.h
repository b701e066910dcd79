// LogLines: the lines of one log stream (a live file and its rotated
// predecessors, or the files of one `mailscope replay`) into Events, the same
// way for every log format: the timestamp prefix comes off (log_time.h), the
// format's decoder reads the rest with what earlier lines told it, and every
// line is counted as parsed or unparsed, by reason. What is format-specific
// stays in a LogLineFormat; the tailing and replay machinery never sees it.
// Thread-compatible: one per stream.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/event.h"
#include "core/status.h"
#include "core/time_zone.h"
#include "ingest/log_time.h"

namespace mailscope::ingest {

// One log format: its decoder and the state that joins its lines.
class LogLineFormat {
 public:
  virtual ~LogLineFormat() = default;
  // "qmail", "stalwart": the `format` label of mailscope_log_lines_total.
  virtual std::string_view name() const = 0;
  virtual Source source() const = 0;
  // Decodes one line's message (without timestamp prefix and LF) into `out`,
  // whose time is set already: DecodeLine(), then Join(). Lines come in log
  // order.
  Status Decode(std::string_view message, Event& out) {
    MS_RETURN_IF_ERROR(DecodeLine(message, out));
    Join(out);
    return Status::Ok();
  }
  // The two halves, for a reader that decodes on one thread and dispatches
  // on another: DecodeLine() reads the line alone (it may keep names, not
  // what lines mean together); Join() adds what earlier lines tell and
  // remembers what later ones need, in log order. They touch disjoint state,
  // so each may run on a thread of its own.
  virtual Status DecodeLine(std::string_view message, Event& out) = 0;
  // Whether an RFC 3339 time at the start of a line is followed by a
  // syslog header (log_time.h); false for a format whose own text follows.
  virtual bool iso8601_syslog_header() const { return true; }
  virtual void Join(Event& out) = 0;
  // What Join() holds open now: sessions without their end, messages still
  // in the queue.
  struct InFlight {
    std::uint64_t sessions = 0;
    std::uint64_t messages = 0;
  };
  virtual InFlight in_flight() const { return {}; }
  // The state in flight (sessions, messages in the queue), for a checkpoint
  // or the next file; LoadState() takes it back.
  virtual std::string SaveState() const = 0;
  virtual Status LoadState(std::string_view saved) = 0;
};

// The formats by name: "qmail", "stalwart". nullptr for another name.
std::unique_ptr<LogLineFormat> MakeLogLineFormat(std::string_view name);
// The name of the format the first lines of a log look like, or empty.
std::string_view SniffLogFormat(std::string_view head);

struct LogLineFigures {
  std::uint64_t parsed = 0;
  std::uint64_t unparsed = 0;
  std::map<std::string, std::uint64_t, std::less<>> unparsed_by_reason;
};

class LogLines {
 public:
  // Local times without a zone are read in `zone`; a syslog line's missing
  // year is inferred from `reference` (the file's modification time, or now).
  LogLines(std::unique_ptr<LogLineFormat> format, const TimeZone& zone, TimePoint reference);

  // Decodes one line (no LF). On success `out` is ready to be dispatched:
  // source, name, time (the line's, else `fallback_time`), fields. Else the
  // line is counted as unparsed under the error's reason.
  Status Decode(std::string_view line, TimePoint fallback_time, Event& out) {
    MS_RETURN_IF_ERROR(DecodeLine(line, fallback_time, out));
    format_->Join(out);
    return Status::Ok();
  }
  // The same in two steps (LogLineFormat::DecodeLine and Join): the first
  // with the prefix and the counts, the second on the line's event, in order.
  Status DecodeLine(std::string_view line, TimePoint fallback_time, Event& out);
  void Join(Event& out) { format_->Join(out); }

  const LogLineFormat& format() const { return *format_; }
  LogLineFormat& format() { return *format_; }
  const LogLineFigures& figures() const { return figures_; }

  // The format's state and the timestamp parser's, as one text.
  std::string SaveState() const;
  Status LoadState(std::string_view saved);

 private:
  Status Unparsed(Status status);

  std::unique_ptr<LogLineFormat> format_;
  LogTimeParser time_;
  LogLineFigures figures_;
};

}  // namespace mailscope::ingest
