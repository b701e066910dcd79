#include "query/old_stats_query.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "core/tab_escape.h"
#include "core/wildcard.h"

namespace mailscope::query {
namespace {

using stats::OldCommand;
using stats::OldDomain;
using stats::OldIp;
using stats::OldLevel;
using stats::OldSession;
using stats::OldUser;

std::optional<OldLevel> ParseLevel(std::string_view s) {
  for (int i = 0; i < stats::kOldLevelCount; ++i) {
    auto level = static_cast<OldLevel>(i);
    if (s == stats::OldLevelName(level)) return level;
  }
  return std::nullopt;
}

bool Matches(const std::optional<std::string>& mask, std::string_view value) {
  return !mask || WildcardMatch(value, *mask);
}

bool HasWildcardStar(const std::optional<std::string>& s) {
  return s && s->find('*') != std::string::npos;
}

// The since filter compares whole seconds of last_update.
bool Since(const OldStatsFilter& f, TimePoint last_update) {
  return f.since <= UnixSeconds(last_update);
}

// A session without an IP never matches an IP filter (2.3.19 crashes there).
bool InNet(const OldStatsFilter& f, const OldSession& s) {
  return s.ip != nullptr && s.ip->ip.InNetwork(f.ip.ip, f.ip.bits);
}

bool MatchSession(const OldStatsFilter& f, const OldSession& s) {
  if (f.connected && s.disconnected) return false;
  if (!Since(f, s.last_update)) return false;
  if (f.session && s.id() != *f.session) return false;
  if (!Matches(f.user, s.user->name())) return false;
  if (!Matches(f.domain, s.user->domain->name)) return false;
  if (f.ip.bits > 0 && !InNet(f, s)) return false;
  return true;
}

bool MatchUserCommon(const OldStatsFilter& f, const OldUser& u) {
  if (!Matches(f.user, u.name())) return false;
  if (f.connected || f.ip.bits > 0) {
    bool connected = false, ip_ok = false;
    for (const OldSession* s = u.sessions; s != nullptr; s = s->in_user.next) {
      if (!s->disconnected) connected = true;
      if (f.ip.bits > 0 && InNet(f, *s)) ip_ok = true;
    }
    if (f.connected && !connected) return false;
    if (f.ip.bits > 0 && !ip_ok) return false;
  }
  return true;
}

bool MatchUser(const OldStatsFilter& f, const OldUser& u) {
  if (!Since(f, u.last_update)) return false;
  if (!Matches(f.domain, u.domain->name)) return false;
  return MatchUserCommon(f, u);
}

bool MatchDomain(const OldStatsFilter& f, const OldDomain& d) {
  if (!Since(f, d.last_update)) return false;
  if (!Matches(f.domain, d.name)) return false;
  if (f.user || f.connected || f.ip.bits > 0) {
    for (const OldUser* u = d.users; u != nullptr; u = u->in_domain.next) {
      if (MatchUserCommon(f, *u)) return true;
    }
    return false;
  }
  return true;
}

bool MatchIp(const OldStatsFilter& f, const OldIp& ip) {
  if (f.connected || f.ip.bits > 0) {
    bool connected = false, user_ok = false, domain_ok = false;
    for (const OldSession* s = ip.sessions; s != nullptr; s = s->in_ip.next) {
      if (!s->disconnected) connected = true;
      if (f.user && WildcardMatch(s->user->name(), *f.user)) user_ok = true;
      if (f.domain && WildcardMatch(s->user->domain->name, *f.domain)) domain_ok = true;
    }
    if (f.connected && !connected) return false;
    if (f.user && !user_ok) return false;
    if (f.domain && !domain_ok) return false;
  }
  if (!Since(f, ip.last_update)) return false;
  if (f.ip.bits > 0 && !ip.ip.InNetwork(f.ip.ip, f.ip.bits)) return false;
  return true;
}

void AppendTimeval(std::string& out, TimePoint t) {
  // "%ld.%06u": last_update is zero-padded, unlike the statistics timevals.
  fmt::format_to(std::back_inserter(out), "{}.{:06}", UnixSeconds(t), SubsecondMicros(t));
}

void AppendHeader(std::string& out, OldLevel level) {
  out += OldStatsFixedHeader(level);
  out += '\t';
  out += stats::OldStatsHeader();
  out += '\n';
}

void AppendCommand(std::string& out, const OldCommand& c) {
  AppendTabEscaped(out, c.name());
  out += '\t';
  AppendTabEscaped(out, c.args());
  out += '\t';
  out += c.session->id();
  out += '\t';
  AppendTabEscaped(out, c.session->user->name());
  out += '\t';
  AppendTimeval(out, c.last_update);
  out += '\t';
  c.stats.AppendAll(out);
  out += '\n';
}

void AppendSession(std::string& out, const OldSession& s) {
  out += s.id();
  out += '\t';
  AppendTabEscaped(out, s.user->name());
  out += '\t';
  if (s.ip != nullptr) out += s.ip->ip.ToString();
  out += '\t';
  AppendTabEscaped(out, s.service());
  fmt::format_to(std::back_inserter(out), "\t{}\t{}\t", s.pid, s.disconnected ? 0 : 1);
  AppendTimeval(out, s.last_update);
  fmt::format_to(std::back_inserter(out), "\t{}\t", s.num_cmds);
  s.stats.AppendAll(out);
  out += '\n';
}

void AppendUser(std::string& out, const OldUser& u) {
  AppendTabEscaped(out, u.name());
  fmt::format_to(std::back_inserter(out), "\t{}\t", u.reset_timestamp);
  AppendTimeval(out, u.last_update);
  fmt::format_to(std::back_inserter(out), "\t{}\t{}\t", u.num_logins, u.num_cmds);
  u.stats.AppendAll(out);
  out += '\n';
}

// The columns shared by domain, ip and global rows.
template <typename T>
void AppendGroup(std::string& out, const T& x) {
  fmt::format_to(std::back_inserter(out), "{}\t", x.reset_timestamp);
  AppendTimeval(out, x.last_update);
  fmt::format_to(std::back_inserter(out), "\t{}\t{}\t{}\t", x.num_logins, x.num_cmds,
                 x.num_connected_sessions);
  x.stats.AppendAll(out);
  out += '\n';
}

void AppendDomain(std::string& out, const OldDomain& d) {
  AppendTabEscaped(out, d.name);
  out += '\t';
  AppendGroup(out, d);
}

void AppendIp(std::string& out, const OldIp& ip) {
  out += ip.ip.ToString();
  out += '\t';
  AppendGroup(out, ip);
}

// Walks a newest-first list from `first`, as Dovecot's export iterators do.
template <typename T, typename Next, typename Match, typename Row>
void Walk(std::string& out, OldLevel level, const T* first, Next next, Match match, Row row) {
  AppendHeader(out, level);
  for (const T* x = first; x != nullptr; x = next(x))
    if (match(*x)) row(out, *x);
  out += '\n';
}

}  // namespace

std::string_view OldStatsFixedHeader(OldLevel level) {
  switch (level) {
    case OldLevel::kCommand:
      return "cmd\targs\tsession\tuser\tlast_update";
    case OldLevel::kSession:
      return "session\tuser\tip\tservice\tpid\tconnected\tlast_update\tnum_cmds";
    case OldLevel::kUser:
      return "user\treset_timestamp\tlast_update\tnum_logins\tnum_cmds";
    case OldLevel::kDomain:
      return "domain\treset_timestamp\tlast_update\tnum_logins\tnum_cmds\tnum_connected_sessions";
    case OldLevel::kIp:
      return "ip\treset_timestamp\tlast_update\tnum_logins\tnum_cmds\tnum_connected_sessions";
    case OldLevel::kGlobal:
      return "reset_timestamp\tlast_update\tnum_logins\tnum_cmds\tnum_connected_sessions";
  }
  return {};
}

Result<OldStatsFilter> ParseOldStatsFilter(std::span<const std::string> words) {
  OldStatsFilter f;
  for (const std::string& w : words) {
    std::string_view a = w;
    if (a.starts_with("user=")) {
      f.user.emplace(a.substr(5));
    } else if (a.starts_with("domain=")) {
      f.domain.emplace(a.substr(7));
    } else if (a.starts_with("session=")) {
      f.session.emplace(a.substr(8));
    } else if (a.starts_with("ip=")) {
      auto r = ParseIpRange(a.substr(3));
      if (!r) return Rejected("invalid_filter", "Invalid ip filter");
      f.ip = *r;
    } else if (a.starts_with("since=")) {
      std::string_view v = a.substr(6);
      std::uint64_t since = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), since);
      if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() ||
          since > static_cast<std::uint64_t>(INT64_MAX)) {
        return Rejected("invalid_filter", "Invalid since filter");
      }
      f.since = static_cast<std::int64_t>(since);
    } else if (a == "connected") {
      f.connected = true;
    }
  }
  return f;
}

Result<OldStatsRequest> ParseOldStatsRequest(std::span<char> line) {
  std::vector<std::string_view> args;
  SplitTabEscaped(line, args);
  if (args.empty()) return Rejected("empty_request", "Empty command");
  OldStatsRequest req;
  if (args[0] == "RESET") {
    req.kind = OldStatsRequest::Kind::kReset;
    return req;
  }
  if (args[0] != "EXPORT") return Rejected("unknown_command", "Unknown command");
  if (args.size() < 2) return Rejected("invalid_level", "Missing level parameter");
  auto level = ParseLevel(args[1]);
  if (!level) return Rejected("invalid_level", "Invalid level");
  req.level = *level;
  std::vector<std::string> words(args.begin() + 2, args.end());
  auto filter = ParseOldStatsFilter(words);
  if (!filter.ok()) return filter.status();
  req.filter = std::move(*filter);
  return req;
}

void AnswerExport(const stats::OldStatsStore& store, const OldStatsRequest& req, std::string& out) {
  const OldStatsFilter& f = req.filter;
  const OldLevel level = req.level;
  auto session_next = [](const OldSession* s) { return s->stable.next; };
  auto user_next = [](const OldUser* u) { return u->stable.next; };
  auto domain_next = [](const OldDomain* d) { return d->stable.next; };
  auto ip_next = [](const OldIp* ip) { return ip->stable.next; };
  auto match_session = [&](const OldSession& s) { return MatchSession(f, s); };
  auto match_user = [&](const OldUser& u) { return MatchUser(f, u); };

  // Exact lookups (no '*' in the mask, or a full-length IP) start the walk at
  // the named object; when it does not exist the reply is a bare LF.
  if (f.user && !HasWildcardStar(f.user) &&
      (level == OldLevel::kUser || level == OldLevel::kSession)) {
    const OldUser* u = store.FindUser(*f.user);
    if (u == nullptr) return out.push_back('\n');
    if (level == OldLevel::kSession) {
      if (u->sessions == nullptr) return out.push_back('\n');
      return Walk(out, level, u->sessions, session_next, match_session, AppendSession);
    }
    return Walk(out, level, u, user_next, match_user, AppendUser);
  }
  if (f.ip.bits > 0 && f.ip.bits == f.ip.ip.bits() &&
      (level == OldLevel::kIp || level == OldLevel::kSession)) {
    const OldIp* ip = store.FindIp(f.ip.ip);
    if (ip == nullptr) return out.push_back('\n');
    if (level == OldLevel::kSession) {
      if (ip->sessions == nullptr) return out.push_back('\n');
      return Walk(out, level, ip->sessions, session_next, match_session, AppendSession);
    }
    return Walk(
        out, level, ip, ip_next, [&](const OldIp& x) { return MatchIp(f, x); }, AppendIp);
  }
  if (f.domain && !HasWildcardStar(f.domain) &&
      (level == OldLevel::kDomain || level == OldLevel::kUser)) {
    const OldDomain* d = store.FindDomain(*f.domain);
    if (d == nullptr) return out.push_back('\n');
    if (level == OldLevel::kUser) {
      return Walk(out, level, d->users, user_next, match_user, AppendUser);
    }
    return Walk(
        out, level, d, domain_next, [&](const OldDomain& x) { return MatchDomain(f, x); },
        AppendDomain);
  }

  switch (level) {
    case OldLevel::kCommand: {
      const OldCommand* first = store.commands_oldest();
      if (first == nullptr) return out.push_back('\n');
      return Walk(
          out, level, first, [](const OldCommand* c) { return c->stable.next; },
          [&](const OldCommand& c) { return MatchSession(f, *c.session); }, AppendCommand);
    }
    case OldLevel::kSession: {
      const OldSession* first = store.sessions_newest();
      if (first == nullptr) return out.push_back('\n');
      return Walk(out, level, first, session_next, match_session, AppendSession);
    }
    case OldLevel::kUser: {
      const OldUser* first = store.users_newest();
      if (first == nullptr) return out.push_back('\n');
      return Walk(out, level, first, user_next, match_user, AppendUser);
    }
    case OldLevel::kDomain: {
      const OldDomain* first = store.domains_newest();
      if (first == nullptr) return out.push_back('\n');
      return Walk(
          out, level, first, domain_next, [&](const OldDomain& x) { return MatchDomain(f, x); },
          AppendDomain);
    }
    case OldLevel::kIp: {
      const OldIp* first = store.ips_newest();
      if (first == nullptr) return out.push_back('\n');
      return Walk(
          out, level, first, ip_next, [&](const OldIp& x) { return MatchIp(f, x); }, AppendIp);
    }
    case OldLevel::kGlobal: {
      AppendHeader(out, level);
      AppendGroup(out, store.global());
      out += '\n';
      return;
    }
  }
}

}  // namespace mailscope::query
