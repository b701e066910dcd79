// QmailTracker: what the lines of one s/qmail log mean together.
//
// Sessions: tcpserver, rblsmtpd and qmail-smtpd write the lines of one SMTP
// connection with one PID (reference/qmail-logs.md §0), from `tcpserver: pid
// P from IP` to `tcpserver: end P status W`. The tracker keeps each open
// connection by PID and gives its `end` event the session: `remote_ip`,
// `remote_host`, `local_port`, `protocol`, `helo`, `mail_from`,
// `mail_from_domain`, `user` (the last seen of each), `accepted` and
// `rejected` (its verdict lines), `rbl` (rblsmtpd's answer, when it refused
// the connection) and `duration` (microseconds, from `pid … from` to `end`).
// A PID seen again in `pid … from` before its `end` starts a new session
// (the old one's `end` was lost); it is counted.
//
// Messages, the way qmailanalog's matchup joins them: `starting delivery D:
// msg M to CHANNEL R` is remembered under D, and the result line `delivery D:
// …` gets `msg`, `channel`, `recipient`, `recipient_domain`, and from M's
// `info msg` `sender`, `sender_domain` and `bytes`, with `xdelay` (the
// attempt's time, microseconds) and on success `ddelay` (from the message's
// `new msg` to the end of this delivery). `end msg M` gets `sender`,
// `sender_domain`, `bytes`, `qp`, `uid`, `qtime` (its time in the queue,
// microseconds) and `delivered`, `deferred`, `failed` (its attempts), and
// `complete` (true when its `new msg` and `info msg` were seen: the messages
// qmailanalog's zoverall counts). D restarts from 1 when qmail-send starts
// again, so `status: exiting` forgets the deliveries in flight.
//
// Everything in flight is saved with Save() and taken back with Load(), so a
// log read in pieces (a restart, the next rotated file) joins across them, as
// matchup's pending file does. The tables are bounded; what falls out of a
// bound is counted. Thread-compatible: one tracker per log stream.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/event.h"
#include "core/status.h"
#include "ingest/qmail_log.h"

namespace mailscope::ingest {

struct QmailTrackerLimits {
  std::size_t max_sessions = 1u << 16;    // open SMTP connections
  std::size_t max_messages = 1u << 20;    // messages in the queue
  std::size_t max_deliveries = 1u << 16;  // deliveries in progress
};

struct QmailTrackerFigures {
  std::uint64_t sessions_open = 0;
  std::uint64_t messages_queued = 0;
  std::uint64_t deliveries_open = 0;
  std::uint64_t sessions_replaced = 0;  // a PID reused before its end was seen
  std::uint64_t evicted = 0;            // entries dropped at a table's bound
  std::uint64_t results_unmatched = 0;  // `delivery D:` without its start
};

class QmailTracker {
 public:
  explicit QmailTracker(QmailTrackerLimits limits = {});

  // Called with every decoded event of the log, in log order, before it is
  // dispatched: adds what earlier lines tell, and remembers what later ones
  // need. The strings it adds stay valid until the next Apply() or Load().
  void Apply(Event& event);

  // The state in flight, as text; Load() of it restores the tracker.
  std::string Save() const;
  Status Load(std::string_view saved);

  QmailTrackerFigures figures() const;

 private:
  struct Session {
    std::int64_t start_us = 0;
    std::int64_t local_port = -1;
    std::int64_t accepted = 0;
    std::int64_t rejected = 0;
    std::string remote_ip, remote_host, protocol, helo, mail_from, user, rbl;
  };
  struct Message {
    std::int64_t birth_us = -1;  // new msg; -1 when not seen
    std::int64_t bytes = -1;     // info msg; -1 when not seen
    std::int64_t qp = -1;
    std::int64_t uid = -1;
    std::int64_t delivered = 0, deferred = 0, failed = 0;
    std::string sender;
  };
  struct Delivery {
    std::int64_t msg = 0;
    std::int64_t start_us = 0;
    bool remote = false;
    std::string recipient;
  };

  void OnVerdict(const Event& event);
  void OnSessionEnd(Event& event, std::int64_t pid);
  void OnResult(Event& event, std::int64_t d, int outcome);
  void OnEndMsg(Event& event, std::int64_t msg);
  template <typename Map>
  bool Room(Map& map, std::size_t limit);

  QmailTrackerLimits limits_;
  const QmailKeys& k_;
  boost::unordered_flat_map<std::int64_t, Session> sessions_;
  boost::unordered_flat_map<std::int64_t, Message> messages_;
  boost::unordered_flat_map<std::int64_t, Delivery> deliveries_;
  // What the last event's added strings point into, kept until the next Apply().
  Session ended_session_;
  Message ended_message_;
  Delivery ended_delivery_;
  Message result_message_;
  QmailTrackerFigures figures_;
};

}  // namespace mailscope::ingest

namespace mailscope::ingest {
class LogLineFormat;
// The s/qmail format of ingest/log_lines.h: QmailLineDecoder, then QmailTracker.
std::unique_ptr<LogLineFormat> MakeQmailLineFormat(QmailTrackerLimits limits = {});
}  // namespace mailscope::ingest
