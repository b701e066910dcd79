#include "ingest/qmail_tracker.h"

#include <algorithm>
#include <span>
#include <vector>

#include "core/tab_escape.h"
#include "ingest/event_fields.h"
#include "ingest/log_lines.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

constexpr std::string_view kSaveHeader = "qmail-tracker 1";

std::int64_t Micros(const Event& e) { return e.time.time_since_epoch().count(); }

void AddMicros(Event& e, NameId key, std::int64_t from, std::int64_t to) {
  if (from >= 0 && to >= from) AddIntField(e, key, to - from, Unit::kMicroseconds);
}

void Put(std::string& out, std::int64_t v) {
  out += '\t';
  out += std::to_string(v);
}
void Put(std::string& out, std::string_view v) {
  out += '\t';
  AppendTabEscaped(out, v);
}

// The entries of a table by key. A hash table's order is its history (a
// table that grew and emptied again iterates unlike one just loaded with the
// same entries), and one state must save as one text.
template <typename Map>
std::vector<const typename Map::value_type*> ByKey(const Map& map) {
  std::vector<const typename Map::value_type*> out;
  out.reserve(map.size());
  for (const auto& entry : map) out.push_back(&entry);
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  return out;
}

}  // namespace

QmailTracker::QmailTracker(QmailTrackerLimits limits) : limits_(limits), k_(QmailFieldKeys()) {}

template <typename Map>
bool QmailTracker::Room(Map& map, std::size_t limit) {
  if (map.size() < limit) return true;
  if (limit == 0) return false;
  // No order is kept: any entry goes. A bound is reached only when ends are
  // being lost (a log without tcpserver -v ends, a queue bigger than planned).
  map.erase(map.begin());
  ++figures_.evicted;
  return true;
}

void QmailTracker::Apply(Event& event) {
  const NameId name = event.name;
  std::int64_t id = 0;
  if (name == k_.ev_tcp_pid) {
    if (!IntField(event, k_.pid, id)) return;
    if (sessions_.contains(id)) {
      ++figures_.sessions_replaced;
    } else if (!Room(sessions_, limits_.max_sessions)) {
      return;
    }
    Session& s = sessions_[id];
    s = Session();
    s.start_us = Micros(event);
    s.remote_ip = StringField(event, k_.remote_ip);
  } else if (name == k_.ev_tcp_ok) {
    if (!IntField(event, k_.pid, id)) return;
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    IntField(event, k_.local_port, it->second.local_port);
    it->second.remote_host = StringField(event, k_.remote_host);
  } else if (name == k_.ev_tcp_end) {
    if (IntField(event, k_.pid, id)) OnSessionEnd(event, id);
  } else if (name == k_.ev_rbl_451 || name == k_.ev_rbl_553) {
    if (!IntField(event, k_.pid, id)) return;
    auto it = sessions_.find(id);
    if (it != sessions_.end()) it->second.rbl = name == k_.ev_rbl_451 ? "451" : "553";
  } else if (name == k_.ev_new_msg) {
    if (!IntField(event, k_.msg, id)) return;
    if (!messages_.contains(id) && !Room(messages_, limits_.max_messages)) return;
    Message& m = messages_[id];
    m = Message();
    m.birth_us = Micros(event);
  } else if (name == k_.ev_info_msg) {
    if (!IntField(event, k_.msg, id)) return;
    if (!messages_.contains(id) && !Room(messages_, limits_.max_messages)) return;
    Message& m = messages_[id];
    IntField(event, k_.bytes, m.bytes);
    IntField(event, k_.qp, m.qp);
    IntField(event, k_.uid, m.uid);
    m.sender = StringField(event, k_.sender);
  } else if (name == k_.ev_starting_delivery) {
    std::int64_t msg = 0;
    if (!IntField(event, k_.delivery, id) || !IntField(event, k_.msg, msg)) return;
    if (!deliveries_.contains(id) && !Room(deliveries_, limits_.max_deliveries)) return;
    Delivery& d = deliveries_[id];
    d.msg = msg;
    d.start_us = Micros(event);
    d.remote = StringField(event, k_.channel) == "remote";
    d.recipient = StringField(event, k_.recipient);
  } else if (name == k_.ev_delivery_success || name == k_.ev_delivery_deferral ||
             name == k_.ev_delivery_failure) {
    if (IntField(event, k_.delivery, id))
      OnResult(event, id,
               name == k_.ev_delivery_success    ? 0
               : name == k_.ev_delivery_deferral ? 1
                                                 : 2);
  } else if (name == k_.ev_end_msg) {
    if (IntField(event, k_.msg, id)) OnEndMsg(event, id);
  } else if (name == k_.ev_send_exiting) {
    deliveries_.clear();
  } else if (StringField(event, k_.program) == "qmail-smtpd") {
    OnVerdict(event);
  }
}

void QmailTracker::OnVerdict(const Event& event) {
  std::int64_t pid = 0;
  if (!IntField(event, k_.pid, pid)) return;
  auto it = sessions_.find(pid);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  if (StringField(event, k_.action) == "Accept") {
    ++s.accepted;
  } else {
    ++s.rejected;
  }
  if (const auto v = StringField(event, k_.protocol); !v.empty()) s.protocol = v;
  if (const Field* f = event.Find(k_.helo)) s.helo = f->value.as_string();
  if (const Field* f = event.Find(k_.mail_from)) s.mail_from = f->value.as_string();
  if (const Field* f = event.Find(k_.user)) {
    // Accepted AUTH only: a refused one names who tried, not who is in.
    if (StringField(event, k_.action) == "Accept") s.user = f->value.as_string();
  }
}

void QmailTracker::OnSessionEnd(Event& event, std::int64_t pid) {
  auto it = sessions_.find(pid);
  if (it == sessions_.end()) return;
  ended_session_ = std::move(it->second);
  sessions_.erase(it);
  const Session& s = ended_session_;
  AddStringField(event, k_.remote_ip, s.remote_ip);
  if (!s.remote_host.empty()) AddStringField(event, k_.remote_host, s.remote_host);
  if (s.local_port >= 0) AddIntField(event, k_.local_port, s.local_port);
  if (!s.protocol.empty()) AddStringField(event, k_.protocol, s.protocol);
  if (!s.helo.empty()) AddStringField(event, k_.helo, s.helo);
  if (!s.mail_from.empty()) {
    AddStringField(event, k_.mail_from, s.mail_from);
    AddStringField(event, k_.mail_from_domain, DomainOf(s.mail_from));
  }
  if (!s.user.empty()) AddStringField(event, k_.user, s.user);
  if (!s.rbl.empty()) AddStringField(event, k_.rbl, s.rbl);
  AddIntField(event, k_.accepted, s.accepted);
  AddIntField(event, k_.rejected, s.rejected);
  AddMicros(event, k_.duration, s.start_us, Micros(event));
}

void QmailTracker::OnResult(Event& event, std::int64_t d, int outcome) {
  auto it = deliveries_.find(d);
  if (it == deliveries_.end()) {
    ++figures_.results_unmatched;
    return;
  }
  ended_delivery_ = std::move(it->second);
  deliveries_.erase(it);
  const Delivery& dl = ended_delivery_;
  const std::int64_t now = Micros(event);
  AddIntField(event, k_.msg, dl.msg);
  AddStringField(event, k_.channel, dl.remote ? "remote" : "local");
  AddStringField(event, k_.recipient, dl.recipient);
  AddStringField(event, k_.recipient_domain, DomainOf(dl.recipient));
  AddMicros(event, k_.xdelay, dl.start_us, now);
  auto m = messages_.find(dl.msg);
  if (m == messages_.end()) return;
  Message& msg = m->second;
  (outcome == 0 ? msg.delivered : outcome == 1 ? msg.deferred : msg.failed) += 1;
  if (msg.bytes >= 0) AddIntField(event, k_.bytes, msg.bytes, Unit::kBytes);
  if (msg.bytes >= 0) {
    // A copy: the table's entries move when it grows, and the event is
    // dispatched after this returns.
    result_message_.sender = msg.sender;
    AddStringField(event, k_.sender, result_message_.sender);
    AddStringField(event, k_.sender_domain, DomainOf(result_message_.sender));
  }
  if (outcome == 0) AddMicros(event, k_.ddelay, msg.birth_us, now);
}

void QmailTracker::OnEndMsg(Event& event, std::int64_t msg) {
  auto it = messages_.find(msg);
  if (it == messages_.end()) {
    event.Add(k_.complete, Value::Bool(false));
    return;
  }
  ended_message_ = std::move(it->second);
  messages_.erase(it);
  const Message& m = ended_message_;
  const bool complete = m.birth_us >= 0 && m.bytes >= 0;
  if (m.bytes >= 0) {
    AddStringField(event, k_.sender, m.sender);
    AddStringField(event, k_.sender_domain, DomainOf(m.sender));
    AddIntField(event, k_.bytes, m.bytes, Unit::kBytes);
    AddIntField(event, k_.qp, m.qp);
    AddIntField(event, k_.uid, m.uid);
  }
  AddMicros(event, k_.qtime, m.birth_us, Micros(event));
  AddIntField(event, k_.delivered, m.delivered);
  AddIntField(event, k_.deferred, m.deferred);
  AddIntField(event, k_.failed, m.failed);
  event.Add(k_.complete, Value::Bool(complete));
}

std::string QmailTracker::Save() const {
  std::string out(kSaveHeader);
  out += '\n';
  for (const auto* entry : ByKey(sessions_)) {
    const auto& [pid, s] = *entry;
    out += 's';
    Put(out, pid);
    Put(out, s.start_us);
    Put(out, s.local_port);
    Put(out, s.accepted);
    Put(out, s.rejected);
    for (const std::string* v :
         {&s.remote_ip, &s.remote_host, &s.protocol, &s.helo, &s.mail_from, &s.user, &s.rbl}) {
      Put(out, *v);
    }
    out += '\n';
  }
  for (const auto* entry : ByKey(messages_)) {
    const auto& [id, m] = *entry;
    out += 'm';
    for (std::int64_t v :
         {id, m.birth_us, m.bytes, m.qp, m.uid, m.delivered, m.deferred, m.failed}) {
      Put(out, v);
    }
    Put(out, m.sender);
    out += '\n';
  }
  for (const auto* entry : ByKey(deliveries_)) {
    const auto& [id, d] = *entry;
    out += 'd';
    for (std::int64_t v : {id, d.msg, d.start_us, static_cast<std::int64_t>(d.remote)}) Put(out, v);
    Put(out, d.recipient);
    out += '\n';
  }
  return out;
}

Status QmailTracker::Load(std::string_view saved) {
  decltype(sessions_) sessions;
  decltype(messages_) messages;
  decltype(deliveries_) deliveries;
  std::string text(saved);
  std::vector<std::string_view> f;
  std::size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::span<char> line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line_no == 1) {
      if (std::string_view(line.data(), line.size()) != kSaveHeader) {
        return InvalidArgument("qmail tracker state: unknown header");
      }
      continue;
    }
    SplitTabEscaped(line, f);
    auto bad = [&] {
      return InvalidArgument("qmail tracker state: line " + std::to_string(line_no) +
                             " is malformed");
    };
    std::vector<std::int64_t> n;
    auto numbers = [&](std::size_t count) {
      n.assign(count, 0);
      if (f.size() < count + 1) return false;
      for (std::size_t i = 0; i < count; ++i) {
        if (!ParseDecimal(f[i + 1], n[i])) return false;
      }
      return true;
    };
    if (f.empty()) return bad();
    if (f[0] == "s") {
      if (f.size() != 13 || !numbers(5)) return bad();
      Session& s = sessions[n[0]];
      s.start_us = n[1];
      s.local_port = n[2];
      s.accepted = n[3];
      s.rejected = n[4];
      s.remote_ip = f[6];
      s.remote_host = f[7];
      s.protocol = f[8];
      s.helo = f[9];
      s.mail_from = f[10];
      s.user = f[11];
      s.rbl = f[12];
    } else if (f[0] == "m") {
      if (f.size() != 10 || !numbers(8)) return bad();
      Message& m = messages[n[0]];
      m.birth_us = n[1];
      m.bytes = n[2];
      m.qp = n[3];
      m.uid = n[4];
      m.delivered = n[5];
      m.deferred = n[6];
      m.failed = n[7];
      m.sender = f[9];
    } else if (f[0] == "d") {
      if (f.size() != 6 || !numbers(4)) return bad();
      Delivery& d = deliveries[n[0]];
      d.msg = n[1];
      d.start_us = n[2];
      d.remote = n[3] != 0;
      d.recipient = f[5];
    } else {
      return bad();
    }
  }
  if (line_no == 0) return InvalidArgument("qmail tracker state: empty");
  sessions_ = std::move(sessions);
  messages_ = std::move(messages);
  deliveries_ = std::move(deliveries);
  return Status::Ok();
}

QmailTrackerFigures QmailTracker::figures() const {
  QmailTrackerFigures f = figures_;
  f.sessions_open = sessions_.size();
  f.messages_queued = messages_.size();
  f.deliveries_open = deliveries_.size();
  return f;
}

}  // namespace mailscope::ingest

namespace mailscope::ingest {
namespace {

class QmailLineFormat final : public LogLineFormat {
 public:
  explicit QmailLineFormat(QmailTrackerLimits limits) : tracker_(limits) {}
  std::string_view name() const override { return "qmail"; }
  Source source() const override { return Source::kQmailLog; }
  Status DecodeLine(std::string_view message, Event& out) override {
    return decoder_.Decode(message, out);
  }
  void Join(Event& out) override { tracker_.Apply(out); }
  InFlight in_flight() const override {
    const QmailTrackerFigures f = tracker_.figures();
    return {f.sessions_open, f.messages_queued};
  }
  std::string SaveState() const override { return tracker_.Save(); }
  Status LoadState(std::string_view saved) override { return tracker_.Load(saved); }

 private:
  QmailLineDecoder decoder_;
  QmailTracker tracker_;
};

}  // namespace

std::unique_ptr<LogLineFormat> MakeQmailLineFormat(QmailTrackerLimits limits) {
  return std::make_unique<QmailLineFormat>(limits);
}

}  // namespace mailscope::ingest
