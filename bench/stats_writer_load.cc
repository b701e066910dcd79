// stats_writer_load: load generator for the stats-writer ingest path.
//
// Builds what Dovecot 2.3 processes send to the stats process over
// $base_dir/stats-writer (reference/dovecot-protocols.md §3.2): per connection the
// `VERSION\tstats-client\t4\t0` handshake and the CATEGORY lines, then BEGIN, UPDATE, EVENT
// and END lines shaped after reference/dovecot-captures/stats-writer-wire.txt. Each connection
// plays one long-lived process: auth, imap-login, pop3-login (auth_client_request_finished),
// imap (imap_command_finished, mail_opened, mail_user_session_finished, with the session,
// storage, mailbox, command and mail parents as the capture shows them), pop3 and lmtp
// (smtp_server_command_finished, mail_delivery_finished, UPDATEs of the DATA command's global
// event). Sessions interleave on a connection like clients of one process with client_limit > 1.
//
// The stream is synthetic and deterministic for a seed, or read from a file written before with
// --write-file, or from a unixproxy capture like stats-writer-wire.txt (its client-to-server
// bytes, one connection each). It is built in memory before the first connect, so generation
// cost stays out of the measurement. Replaying opens one UNIX socket connection per recorded
// connection and sends its bytes as a Dovecot client does: the VERSION and CATEGORY lines first,
// then it waits for the server's VERSION and FILTER lines (5 s, as a client's first connection),
// and only then the rest. The FILTER is read and kept, not obeyed: every event is sent whatever
// the filter asks for, so the servers see exactly the same bytes (with no metrics, a real client
// would send nothing). Writes block, so each server is fed as fast as it reads (or, with
// --bytes-per-second, at that pace: a steady load while something else is measured). At the
// end each connection shuts down its write side and waits for the server to close: a server
// closes only after it has consumed everything before the EOF, so when this program exits the
// server has processed the whole stream.
//
// Standalone on purpose: the C++ standard library and POSIX only, so the same binary drives
// Dovecot's own stats process and mailscope.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::uint64_t kStartUsec = 1795305600ULL * 1000000;  // synthetic clock origin
constexpr std::string_view kClientVersion = "VERSION\tstats-client\t4\t0\n";
constexpr std::string_view kStreamMagic = "# stats_writer_load stream v1";

struct Options {
  std::uint64_t events = 1000000;  // EVENT lines, at least (open sessions are finished)
  std::uint64_t connections = 8;
  std::uint64_t concurrency = 200;  // sessions in progress at once, over all connections
  std::uint64_t users = 10000;
  std::uint64_t domains = 100;
  std::uint64_t ips = 2000;
  std::uint64_t seed = 1;
  std::uint64_t chunk_bytes = 1 << 20;
  std::uint64_t handshake_timeout_ms = 5000;
  std::uint64_t drain_timeout_s = 900;
  // The replay's pace over all connections; 0: as fast as the server reads.
  std::uint64_t bytes_per_second = 0;

  std::string mix = "capture";  // the mix of sessions and commands (kMixes)
  std::string in;               // replay this file instead of generating
  std::string out;              // stats-writer socket to feed
  std::string write_file;       // write the stream to this file
  std::string filter_out;       // write the FILTER line the server sent here
};

// What a generated stream is made of. "capture" follows the capture instance's traffic; the
// other two stress what makes a stats process work hardest per event.
struct Mix {
  std::string_view name;
  std::uint32_t imap_percent, pop3_percent;  // of sessions; the rest are LMTP deliveries
  std::uint32_t long_imap_per_mille;         // IMAP sessions of 20..200 commands
  std::uint32_t imap_commands_max;           // the others: 1..this many
  std::uint32_t fetch_opens_per_mille;       // FETCHes that open mails (mail_opened)
  std::uint64_t mails_min, mails_max;        // mails such a FETCH opens
  std::uint32_t fetch_weight_factor;         // FETCH and UID FETCH weigh this much more
  bool mailbox_free_commands;                // only commands that need no selected mailbox
};
constexpr Mix kMixes[] = {
    {"capture", 72, 10, 100, 20, 300, 1, 4, 1, false},
    // Long parent chains: most events are mail_opened under the FETCH command's event, under
    // the mailbox, the storage, the mail user and the client.
    {"deep", 90, 10, 300, 20, 1000, 2, 8, 6, false},
    // Short sessions: logins (auth and login-process events) and a few commands that need no
    // mailbox, then LOGOUT.
    {"short", 90, 10, 0, 3, 0, 0, 0, 1, true},
};
const Mix* FindMix(std::string_view name) {
  for (const Mix& m : kMixes)
    if (m.name == name) return &m;
  return nullptr;
}

// Also called from the replay threads: no static destructors while they run.
[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "stats_writer_load: %s\n", message.c_str());
  std::fflush(nullptr);
  std::_Exit(2);
}

// xoshiro256** seeded through splitmix64: the same stream for a seed on every platform, which
// the standard distributions do not promise. Only integer arithmetic below for the same reason.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  std::uint64_t Next() {
    const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n); the modulo bias is below 1e-9 for the sizes used here.
  std::uint64_t Below(std::uint64_t n) { return n == 0 ? 0 : Next() % n; }
  std::uint64_t Range(std::uint64_t lo, std::uint64_t hi) { return lo + Below(hi - lo + 1); }
  bool PerMille(std::uint64_t p) { return Below(1000) < p; }
  // Roughly log-uniform over [base, base * 2^doublings): many short, a long tail.
  std::uint64_t Skewed(std::uint64_t base, std::uint64_t doublings) {
    const std::uint64_t low = base << Below(doublings);
    return low + Below(low);
  }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

// ---- the stream ------------------------------------------------------------------------------

// What one connection sends, and the process it plays.
struct ConnStream {
  std::string bytes;
  std::string label;  // e.g. "imap", "auth", or the capture's process title
};

struct Stream {
  std::vector<ConnStream> conns;
};

// Dovecot tab-escaping (reference §1.2): \001 -> \0011, TAB -> \001t, CR -> \001r, LF -> \001n.
void AppendTabEscaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '\001':
        out += "\0011";
        break;
      case '\t':
        out += "\001t";
        break;
      case '\r':
        out += "\001r";
        break;
      case '\n':
        out += "\001n";
        break;
      default:
        out += c;
    }
  }
}

void AppendNumber(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Builds one line of the stats-writer protocol in the order lib-event exports an event:
// created time, s, l, n, the c items, then the fields (reference §3.2 <event-export>).
class Line {
 public:
  Line(std::string& out, std::string_view cmd) : out_(out) { out_ += cmd; }
  Line& U(std::uint64_t v) {
    out_ += '\t';
    AppendNumber(out_, v);
    return *this;
  }
  Line& Time(std::uint64_t us) { return U(us / 1000000).U(us % 1000000); }
  Line& Source(std::string_view file, std::uint64_t line) {
    out_ += "\ts";
    out_ += file;
    return U(line);
  }
  Line& LastSent(std::uint64_t us) {
    out_ += "\tl";
    AppendNumber(out_, us / 1000000);
    return U(us % 1000000);
  }
  Line& Name(std::string_view name) {
    out_ += "\tn";
    out_ += name;
    return *this;
  }
  Line& Cat(std::string_view category) {
    out_ += "\tc";
    out_ += category;
    return *this;
  }
  Line& S(std::string_view key, std::string_view value) {
    out_ += "\tS";
    out_ += key;
    out_ += '\t';
    AppendTabEscaped(out_, value);
    return *this;
  }
  Line& I(std::string_view key, std::uint64_t value) {
    out_ += "\tI";
    out_ += key;
    return U(value);
  }
  Line& T(std::string_view key, std::uint64_t us) {
    out_ += "\tT";
    out_ += key;
    return Time(us);
  }
  Line& L(std::string_view key, std::initializer_list<std::string_view> values) {
    out_ += "\tL";
    out_ += key;
    U(values.size());
    for (std::string_view v : values) {
      out_ += '\t';
      AppendTabEscaped(out_, v);
    }
    return *this;
  }
  ~Line() { out_ += '\n'; }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

 private:
  std::string& out_;
};

// ---- the generator ---------------------------------------------------------------------------

enum class Role : std::uint8_t { kAuth, kImapLogin, kPop3Login, kImap, kPop3, kLmtp };
constexpr std::size_t kRoles = 6;
// Connections take their roles in this order; connections past the sixth play imap.
constexpr Role kRoleOrder[kRoles] = {Role::kAuth, Role::kImapLogin, Role::kImap,
                                     Role::kLmtp, Role::kPop3Login, Role::kPop3};

std::string_view ServiceOf(Role r) {
  switch (r) {
    case Role::kAuth:
      return "auth";
    case Role::kImapLogin:
      return "imap-login";
    case Role::kPop3Login:
      return "pop3-login";
    case Role::kImap:
      return "imap";
    case Role::kPop3:
      return "pop3";
    case Role::kLmtp:
      return "lmtp";
  }
  return "imap";
}

// Category parents as Dovecot registers them (capture: maildir, mailbox under storage; mail
// under mailbox).
std::string_view ParentCategory(std::string_view c) {
  if (c == "maildir" || c == "mailbox") return "storage";
  if (c == "mail") return "mailbox";
  return {};
}

// The categories each process announces right after VERSION (capture), the rest on first use.
std::vector<std::string_view> InitialCategories(Role r) {
  switch (r) {
    case Role::kAuth:
      return {"service:auth", "auth", "http-client"};
    case Role::kImapLogin:
      return {"service:imap-login", "auth", "auth-client", "imap"};
    case Role::kPop3Login:
      return {"service:pop3-login", "auth", "auth-client", "pop3"};
    case Role::kImap:
      return {"service:imap", "auth-client", "imap",    "storage",   "maildir",
              "fs",           "mail-index",  "mailbox", "mail-cache"};
    case Role::kPop3:
      return {"service:pop3", "auth-client", "storage",    "maildir", "fs",
              "mail-index",   "mailbox",     "mail-cache", "mail"};
    case Role::kLmtp:
      return {"service:lmtp", "smtp-server"};
  }
  return {};
}

// One connection: one Dovecot process, or several roles when there are fewer than six
// connections.
struct Conn {
  std::string out;
  std::vector<Role> roles;
  std::vector<std::string> categories;  // registered so far
  std::uint64_t next_id = 1;
  std::uint64_t auth_root = 0;           // auth: the auth process' event (sauth.c), sent once
  std::uint64_t login_root[2] = {0, 0};  // imap-login, pop3-login: the auth client's event
  std::uint64_t auth_request_id = 0;     // login: the `id` of auth client requests
};

struct Net {
  std::string local_ip;
  std::string remote_ip;
  std::uint64_t local_port = 0;
  std::uint64_t remote_port = 0;
};

enum class ArgsKind {
  kNone,
  kMailbox,
  kStatus,
  kFetch,
  kUidFetch,
  kStore,
  kSearch,
  kUidSearch,
  kCopy,
  kAppend,
  kList,
  kEnable
};

// One IMAP command kind: cmd_name, relative frequency, arguments, whether it works on the
// selected mailbox (and so carries `mailbox`), the OK reply, the duration scale in µs and its
// spread in doublings, the reply size scale and its spread.
struct ImapCommand {
  std::string_view name;
  std::uint32_t weight;
  ArgsKind args;
  bool on_mailbox;
  std::string_view ok_reply;
  std::uint64_t base_us;
  std::uint64_t doublings;
  std::uint64_t out_bytes;
  std::uint64_t out_doublings;
};
constexpr ImapCommand kImapCommands[] = {
    {"NOOP", 150, ArgsKind::kNone, false, "OK NOOP completed.", 60, 6, 2, 4},
    {"SELECT", 100, ArgsKind::kMailbox, true, "OK [READ-WRITE] Select completed", 300, 6, 300, 2},
    {"EXAMINE", 10, ArgsKind::kMailbox, true, "OK [READ-ONLY] Examine completed", 300, 6, 300, 2},
    {"STATUS", 80, ArgsKind::kStatus, false, "OK Status completed.", 40, 7, 80, 1},
    {"FETCH", 80, ArgsKind::kFetch, true, "OK Fetch completed.", 100, 10, 100, 10},
    {"UID FETCH", 130, ArgsKind::kUidFetch, true, "OK Fetch completed.", 100, 10, 100, 12},
    {"UID STORE", 40, ArgsKind::kStore, true, "OK Store completed.", 100, 6, 40, 3},
    {"STORE", 20, ArgsKind::kStore, true, "OK Store completed.", 100, 6, 40, 3},
    {"UID SEARCH", 35, ArgsKind::kUidSearch, true, "OK Search completed", 80, 9, 20, 8},
    {"SEARCH", 15, ArgsKind::kSearch, true, "OK Search completed", 80, 9, 20, 8},
    {"APPEND", 25, ArgsKind::kAppend, false, "OK [APPENDUID 1795305646 %] Append completed.", 800,
     6, 30, 1},
    {"LIST", 35, ArgsKind::kList, false, "OK List completed.", 300, 5, 80, 5},
    {"LSUB", 5, ArgsKind::kList, false, "OK Lsub completed.", 200, 5, 80, 4},
    {"COPY", 15, ArgsKind::kCopy, true, "OK [COPYUID 1795305645 % %] Copy completed.", 500, 6, 30,
     1},
    {"EXPUNGE", 20, ArgsKind::kNone, true, "OK Expunge completed.", 500, 6, 13, 5},
    {"CLOSE", 10, ArgsKind::kNone, true, "OK Close completed.", 200, 5, 49, 1},
    {"CREATE", 3, ArgsKind::kMailbox, false, "OK Create completed.", 2000, 3, 57, 1},
    {"CAPABILITY", 15, ArgsKind::kNone, false, "OK Capability completed.", 20, 3, 200, 1},
    {"ENABLE", 10, ArgsKind::kEnable, false, "OK Enabled.", 20, 3, 30, 1},
    {"IDLE", 15, ArgsKind::kNone, true, "OK Idle completed.", 1000000, 10, 40, 6},
    {"CHECK", 2, ArgsKind::kNone, true, "OK Check completed.", 100, 3, 20, 1},
};
constexpr ImapCommand kLogout = {"LOGOUT", 0, ArgsKind::kNone, false, "OK Logout completed.", 60, 4,
                                 69,       1};

constexpr std::string_view kMailboxes[] = {"INBOX",   "INBOX",         "INBOX",        "Sent",
                                           "Drafts",  "Archive",       "Trash",        "Junk",
                                           "Archive", "Lists/dovecot", "Projects/mail"};

enum class Kind : std::uint8_t { kImap, kPop3, kLmtp };

// One client session (imap, pop3) or one LMTP connection, played step by step.
struct Session {
  Kind kind = Kind::kImap;
  std::size_t conn = 0;  // the mail process
  std::string user;
  std::string id;  // Dovecot's session id
  Net net;
  std::uint64_t started_us = 0;
  std::uint32_t phase = 0;  // 0: not logged in yet
  std::uint32_t work_left = 0;
  std::uint32_t tag = 1;
  std::string tag_prefix;
  // Event ids on the mail connection, 0 while not sent. imap: client, storage service, mail
  // user, storage, mailbox; pop3 the same without a client event; lmtp uses client, storage and
  // user for its client, smtp-server connection and connection events.
  std::uint64_t client = 0, service = 0, user_ev = 0, storage = 0, mailbox = 0;
  std::string selected;  // imap: the selected mailbox, "" none
  std::uint64_t messages = 0;
  std::vector<std::string> rcpts;  // lmtp: accepted recipients
  std::uint32_t rejected_rcpts = 0;
};

struct GenCounts {
  std::uint64_t events = 0;
  std::uint64_t sessions = 0;
};

class Generator {
 public:
  Generator(const Options& o, const Mix& mix) : o_(o), mix_(mix), rng_(o.seed) {
    conns_.resize(o_.connections);
    for (std::size_t i = 0; i < o_.connections; ++i) {
      const Role r = i < kRoles ? kRoleOrder[i] : Role::kImap;
      conns_[i].roles.push_back(r);
      by_role_[static_cast<std::size_t>(r)].push_back(i);
    }
    // Fewer connections than roles: a connection plays several processes.
    for (std::size_t k = 0; k < kRoles; ++k) {
      const auto r = static_cast<std::size_t>(kRoleOrder[k]);
      if (by_role_[r].empty()) {
        by_role_[r].push_back(k % o_.connections);
        conns_[k % o_.connections].roles.push_back(kRoleOrder[k]);
      }
    }
    for (Conn& c : conns_) {
      c.out += kClientVersion;
      for (Role r : c.roles)
        for (std::string_view cat : InitialCategories(r)) Register(c, cat);
    }
    for (const auto& cmd : kImapCommands) total_weight_ += Weight(cmd);
  }

  Stream Generate() {
    while (c_.events < o_.events || !pool_.empty()) {
      if (c_.events < o_.events && pool_.size() < o_.concurrency) {
        pool_.push_back(NewSession());
        continue;
      }
      const std::size_t i = rng_.Below(pool_.size());
      now_us_ += rng_.Below(400);
      if (!Step(pool_[i])) {
        pool_[i] = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    // The long-lived parents go when their processes stop.
    for (Conn& c : conns_) {
      if (c.auth_root != 0) Line(c.out, "END").U(c.auth_root);
      for (std::uint64_t id : c.login_root)
        if (id != 0) Line(c.out, "END").U(id);
    }
    Stream s;
    for (Conn& c : conns_) {
      std::string label;
      for (Role r : c.roles) {
        if (!label.empty()) label += '+';
        label += ServiceOf(r);
      }
      s.conns.push_back({std::move(c.out), std::move(label)});
    }
    return s;
  }

 private:
  // ---- helpers

  void Register(Conn& c, std::string_view cat) {
    if (std::find(c.categories.begin(), c.categories.end(), cat) != c.categories.end()) return;
    const std::string_view parent = ParentCategory(cat);
    if (!parent.empty()) Register(c, parent);
    c.categories.emplace_back(cat);
    Line l(c.out, "CATEGORY");
    c.out += '\t';
    c.out += cat;
    if (!parent.empty()) {
      c.out += '\t';
      c.out += parent;
    }
  }

  std::uint64_t NewId(Conn& c) {
    const std::uint64_t id = c.next_id;
    c.next_id += rng_.Range(1, 6);  // most events a process creates are never sent
    return id;
  }

  Conn& ConnOf(Role r, std::uint64_t k) {
    const auto& list = by_role_[static_cast<std::size_t>(r)];
    return conns_[list[k % list.size()]];
  }

  std::string SessionId(std::size_t chars) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string id;
    for (std::size_t i = 0; i < chars; ++i) id += kAlphabet[rng_.Below(64)];
    return id;
  }

  // Skewed popularity without floating point: half the picks go to the busiest tenth of users.
  std::string PickUser() {
    const std::uint64_t hot = std::max<std::uint64_t>(1, o_.users / 10);
    const std::uint64_t u = rng_.PerMille(500) ? rng_.Below(hot) : rng_.Below(o_.users);
    return "user" + std::to_string(u) + "@dom" + std::to_string(u % o_.domains) + ".example";
  }

  std::string PickIp() {
    const std::uint64_t k = rng_.Below(o_.ips);
    return "198.18." + std::to_string((k >> 8) & 0xff) + "." + std::to_string(k & 0xff);
  }

  // An event that lasted `us`: created now, sent `us` later. The clock moves on a little.
  std::pair<std::uint64_t, std::uint64_t> Span(std::uint64_t us) {
    const std::uint64_t created = now_us_;
    now_us_ += rng_.Below(50);
    return {created, created + us};
  }

  Session NewSession() {
    Session s;
    ++c_.sessions;
    const std::uint64_t p = rng_.Below(100);
    s.kind = p < mix_.imap_percent                       ? Kind::kImap
             : p < mix_.imap_percent + mix_.pop3_percent ? Kind::kPop3
                                                         : Kind::kLmtp;
    const Role role = s.kind == Kind::kImap   ? Role::kImap
                      : s.kind == Kind::kPop3 ? Role::kPop3
                                              : Role::kLmtp;
    const auto& list = by_role_[static_cast<std::size_t>(role)];
    s.conn = list[c_.sessions % list.size()];
    s.user = PickUser();
    s.started_us = now_us_;
    s.net.local_ip = "192.0.2.10";
    s.net.remote_ip = s.kind == Kind::kLmtp ? "192.0.2.25" : PickIp();
    s.net.local_port = s.kind == Kind::kImap ? 143 : s.kind == Kind::kPop3 ? 110 : 24;
    s.net.remote_port = rng_.Range(1024, 65535);
    s.id = SessionId(s.kind == Kind::kLmtp ? 22 : 16);
    if (s.kind != Kind::kLmtp) s.id.replace(12, 4, "AAAB");
    for (int i = 0; i < 4; ++i) s.tag_prefix += static_cast<char>('A' + rng_.Below(26));
    if (s.kind == Kind::kImap) {
      s.work_left = rng_.PerMille(mix_.long_imap_per_mille)
                        ? static_cast<std::uint32_t>(rng_.Range(20, 200))
                        : static_cast<std::uint32_t>(rng_.Range(1, mix_.imap_commands_max));
    } else if (s.kind == Kind::kPop3) {
      s.work_left = static_cast<std::uint32_t>(rng_.Range(0, 8));
    }
    return s;
  }

  // ---- login: imap-login / pop3-login and auth

  // Returns false when the login failed (the session ends there).
  bool Login(Session& s) {
    const bool ok = !rng_.PerMille(40);
    const bool imap = s.kind == Kind::kImap;
    const std::string_view mech = rng_.PerMille(850) ? "PLAIN" : "LOGIN";
    const std::string_view service = imap ? "imap" : "pop3";
    const std::string ip = s.net.remote_ip;

    // The auth process: its own root event, then one event per request.
    Conn& auth = ConnOf(Role::kAuth, c_.sessions);
    if (auth.auth_root == 0) {
      auth.auth_root = NewId(auth);
      Line(auth.out, "BEGIN")
          .U(auth.auth_root)
          .U(0)
          .U(0)
          .Time(kStartUsec - 3600000000ULL)
          .Source("auth.c", 399)
          .Cat("service:auth")
          .Cat("auth");
    }
    // A failed password costs the auth_failure_delay (2 s) on top.
    const auto [created, sent] = Span(ok ? rng_.Skewed(100, 6) : 2000000 + rng_.Below(100000));
    {
      Line l(auth.out, "EVENT");
      l.U(0).U(auth.auth_root).U(0).Time(created).Source("auth-request.c", 245).LastSent(sent);
      l.Name("auth_request_finished").Cat("auth");
      if (ok) l.S("success", "yes");
      l.S("policy_result", "ok").S("mechanism", mech).S("transport", "TLS");
      l.S("service", service).S("session", s.id).S("local_ip", s.net.local_ip);
      l.S("real_local_ip", s.net.local_ip).S("remote_ip", ip).S("real_remote_ip", ip);
      l.I("local_port", s.net.local_port).I("real_local_port", s.net.local_port);
      l.I("remote_port", s.net.remote_port).I("real_remote_port", s.net.remote_port);
      l.S("original_user", s.user).S("user", s.user).S("translated_user", s.user);
    }
    ++c_.events;

    // The login process: the auth client's event once, then one event per request.
    Conn& login = ConnOf(imap ? Role::kImapLogin : Role::kPop3Login, c_.sessions);
    std::uint64_t& root = login.login_root[imap ? 0 : 1];
    if (root == 0) {
      root = NewId(login);
      Line(login.out, "BEGIN")
          .U(root)
          .U(0)
          .U(0)
          .Time(kStartUsec - 3500000000ULL)
          .Source("auth-client.c", 24)
          .Cat(imap ? "service:imap-login" : "service:pop3-login")
          .Cat("auth-client");
    }
    {
      Line l(login.out, "EVENT");
      l.U(0).U(root).U(0).Time(created - 60).Source("auth-client-request.c", ok ? 327 : 336);
      l.LastSent(sent + 90).Name("auth_client_request_finished");
      if (!ok) l.S("error", "Authentication failed");
      l.I("id", ++login.auth_request_id).S("mechanism", mech).S("service", service);
      l.S("transport", "TLS").S("session", s.id).S("local_ip", s.net.local_ip);
      l.S("remote_ip", ip).I("local_port", s.net.local_port).I("remote_port", s.net.remote_port);
      l.S("real_local_ip", s.net.local_ip).S("real_remote_ip", ip);
      l.I("real_local_port", s.net.local_port).I("real_remote_port", s.net.remote_port);
      l.S("user", s.user);
    }
    ++c_.events;
    return ok;
  }

  // ---- imap

  std::uint64_t Weight(const ImapCommand& cmd) const {
    if (mix_.mailbox_free_commands &&
        (cmd.on_mailbox || cmd.args == ArgsKind::kMailbox || cmd.args == ArgsKind::kAppend ||
         cmd.args == ArgsKind::kCopy)) {
      return 0;
    }
    const bool fetch = cmd.args == ArgsKind::kFetch || cmd.args == ArgsKind::kUidFetch;
    return fetch ? std::uint64_t{cmd.weight} * mix_.fetch_weight_factor : cmd.weight;
  }

  const ImapCommand& PickCommand() {
    std::uint64_t w = rng_.Below(total_weight_);
    for (const auto& cmd : kImapCommands) {
      if (w < Weight(cmd)) return cmd;
      w -= Weight(cmd);
    }
    return kImapCommands[0];
  }

  void SendClient(Session& s) {
    Conn& c = conns_[s.conn];
    if (s.client != 0) return;
    s.client = NewId(c);
    Line(c.out, "BEGIN")
        .U(s.client)
        .U(0)
        .U(0)
        .Time(s.started_us)
        .Source("main.c", 250)
        .Cat("service:imap")
        .Cat("imap")
        .S("user", s.user)
        .S("local_ip", s.net.local_ip)
        .I("local_port", s.net.local_port)
        .S("remote_ip", s.net.remote_ip)
        .I("remote_port", s.net.remote_port)
        .S("session", s.id);
  }

  // The mail storage chain under `parent` (imap: the client event; pop3: none): storage
  // service, mail user, storage, as a mail_opened or the session's end sends them first.
  void SendStorageChain(Session& s, bool pop3) {
    Conn& c = conns_[s.conn];
    if (s.service != 0) return;
    s.service = NewId(c);
    {
      Line l(c.out, "BEGIN");
      l.U(s.service).U(pop3 ? 0 : s.client).U(0).Time(s.started_us + 900);
      l.Source("mail-storage-service.c", 1331);
      if (pop3) l.Cat("service:pop3");
      l.S("user", s.user).S("session", s.id);
    }
    s.user_ev = NewId(c);
    Line(c.out, "BEGIN")
        .U(s.user_ev)
        .U(s.service)
        .U(0)
        .Time(s.started_us + 1000)
        .Source("mail-user.c", 78)
        .Cat("storage")
        .S("user", s.user);
    s.storage = NewId(c);
    Line(c.out, "BEGIN")
        .U(s.storage)
        .U(s.user_ev)
        .U(0)
        .Time(s.started_us + 1400)
        .Source("mail-storage.c", 430)
        .Cat("maildir");
  }

  void SendMailbox(Session& s, std::string_view name) {
    Conn& c = conns_[s.conn];
    if (s.mailbox != 0) return;
    s.mailbox = NewId(c);
    Line(c.out, "BEGIN")
        .U(s.mailbox)
        .U(s.storage)
        .U(0)
        .Time(now_us_ - 2000)
        .Source("index-storage.c", 405)
        .Cat("mailbox")
        .S("mailbox", name);
  }

  void EndMailbox(Session& s) {
    if (s.mailbox == 0) return;
    Line(conns_[s.conn].out, "END").U(s.mailbox);
    s.mailbox = 0;
  }

  // One mail_opened: the global event `global` (the mail's own), the mailbox as parent.
  void MailOpened(Session& s, std::uint64_t global, std::uint64_t seq, std::string_view reason) {
    Conn& c = conns_[s.conn];
    const auto [created, sent] = Span(rng_.Range(5, 60));
    Line(c.out, "EVENT")
        .U(global)
        .U(s.mailbox)
        .U(0)
        .Time(created)
        .Source("mail.c", 680)
        .LastSent(sent)
        .Name("mail_opened")
        .Cat("mail")
        .S("reason", reason)
        .I("seq", seq)
        .I("uid", seq + 3)
        .I("mail_age_days", rng_.Below(400));
    ++c_.events;
  }

  void AppendArgs(std::string& a, const ImapCommand& cmd, Session& s) {
    const std::uint64_t n = std::max<std::uint64_t>(s.messages, 1);
    const std::uint64_t from = rng_.Range(1, n);
    switch (cmd.args) {
      case ArgsKind::kNone:
        break;
      case ArgsKind::kMailbox:
        a = kMailboxes[rng_.Below(std::size(kMailboxes))];
        break;
      case ArgsKind::kStatus:
        a = std::string(kMailboxes[rng_.Below(std::size(kMailboxes))]) +
            " (MESSAGES UIDNEXT UNSEEN)";
        break;
      case ArgsKind::kFetch:
        a = rng_.PerMille(600) ? "1:* (FLAGS)"
                               : std::to_string(from) + ":" + std::to_string(n) +
                                     " (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT) ])";
        break;
      case ArgsKind::kUidFetch:
        a = rng_.PerMille(500)
                ? std::to_string(from + 3) + ":* (UID FLAGS)"
                : std::to_string(from + 3) +
                      " (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject "
                      "Date Message-ID Priority X-Priority References Newsgroups In-Reply-To "
                      "Content-Type Reply-To)])";
        break;
      case ArgsKind::kStore:
        a = std::to_string(from) +
            (rng_.PerMille(700) ? " +FLAGS (\\Seen)" : " +FLAGS (\\Deleted)");
        break;
      case ArgsKind::kSearch:
        a = rng_.PerMille(500) ? "ALL" : "SUBJECT \"invoice\"";
        break;
      case ArgsKind::kUidSearch:
        a = rng_.PerMille(500) ? "ALL" : "UID " + std::to_string(from + 3) + ":*";
        break;
      case ArgsKind::kCopy:
        a = std::to_string(from) + " Archive";
        break;
      case ArgsKind::kAppend:
        a = "INBOX (\\Seen) \"22-Nov-2026 00:00:45 +0000\" <" +
            std::to_string(rng_.Skewed(1500, 8)) + " byte literal>";
        break;
      case ArgsKind::kList:
        a = "\"\" *";
        break;
      case ArgsKind::kEnable:
        a = rng_.PerMille(500) ? "CONDSTORE" : "QRESYNC";
        break;
    }
  }

  // "OK [APPENDUID 1795305646 %] ...": each % becomes a number.
  std::string Reply(std::string_view text) {
    std::string r;
    for (char ch : text) {
      if (ch == '%') {
        r += std::to_string(rng_.Range(1, 5000));
      } else {
        r += ch;
      }
    }
    return r;
  }

  static std::string ReasonCode(std::string_view name) {
    std::string r = "imap:cmd_";
    for (char ch : name)
      r += ch == ' ' ? '_' : static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    return r;
  }

  void ImapCommandEvent(Session& s, const ImapCommand& cmd) {
    Conn& c = conns_[s.conn];
    SendClient(s);
    std::string args;
    AppendArgs(args, cmd, s);
    std::string_view name = cmd.name;
    std::string_view input_name = cmd.name;
    std::string state = "OK";
    std::string reply;
    bool bad_unknown = false;
    // Some BAD and NO replies (0.6 % and 0.9 % of the commands of the default stream), with
    // the capture's texts.
    const std::uint64_t fate = rng_.Below(1000);
    if (fate < 5) {
      bad_unknown = true;
      name = "unknown";
      input_name = "XYZZY";
      args.clear();
      state = "BAD";
      reply = "BAD Error in IMAP command XYZZY: Unknown command.";
    } else if (fate < 10 && (cmd.args == ArgsKind::kFetch || cmd.args == ArgsKind::kUidFetch)) {
      args = "notaset (FLAGS)";
      state = "BAD";
      reply = "BAD Error in IMAP command " + std::string(cmd.name) + ": Invalid messageset";
    } else if (fate < 40 && cmd.args == ArgsKind::kMailbox && cmd.name != "CREATE") {
      args = "DoesNotExist";
      state = "NO";
      reply = "NO Mailbox doesn't exist: DoesNotExist";
    } else if (fate < 60 && cmd.args == ArgsKind::kCopy) {
      state = "NO";
      reply = "NO [TRYCREATE] Mailbox doesn't exist: Archive";
    } else if (fate < 80 && cmd.args == ArgsKind::kAppend) {
      state = "NO";
      reply = "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)";
    } else {
      reply = Reply(cmd.ok_reply);
    }
    // Commands on the selected mailbox need one; clients SELECT INBOX first.
    std::string mailbox;
    if (!bad_unknown) {
      if (cmd.name == "SELECT" || cmd.name == "EXAMINE") {
        if (state == "OK") {
          if (s.selected != args) EndMailbox(s);
          s.selected = args;
          s.messages = rng_.Skewed(20, 9);
        }
        mailbox = args;
      } else if (cmd.args == ArgsKind::kStatus || cmd.name == "CREATE") {
        mailbox = args.substr(0, args.find(' '));
      } else if (cmd.args == ArgsKind::kAppend) {
        mailbox = "INBOX";
      } else if (cmd.on_mailbox) {
        mailbox = s.selected;
      }
    }

    const std::uint64_t us = rng_.Skewed(cmd.base_us, cmd.doublings);
    const bool opens_mails = state == "OK" && !s.selected.empty() &&
                             (cmd.args == ArgsKind::kFetch || cmd.args == ArgsKind::kUidFetch) &&
                             rng_.PerMille(mix_.fetch_opens_per_mille);
    std::uint64_t parent = s.client;
    if (opens_mails) {
      // As in the capture: the command's event (BEGIN, parent of the mails), each mail's event
      // as the global event of its mail_opened, the storage chain and the mailbox as parents.
      Register(c, "mail");
      const std::uint64_t cmd_ev = NewId(c);
      Line(c.out, "BEGIN")
          .U(cmd_ev)
          .U(s.client)
          .U(0)
          .Time(now_us_)
          .Source("imap-client.c", 920)
          .S("cmd_name", cmd.name)
          .L("reason_code", {ReasonCode(cmd.name), "imap:fetch_header_fields", "imap:fetch_size"})
          .S("mailbox", s.selected);
      const std::uint64_t mails = rng_.Range(mix_.mails_min, mix_.mails_max);
      for (std::uint64_t k = 0; k < mails; ++k) {
        const std::uint64_t mail_ev = NewId(c);
        Line(c.out, "BEGIN")
            .U(mail_ev)
            .U(cmd_ev)
            .U(0)
            .Time(now_us_)
            .Source("index-mail.c", 2608)
            .L("reason_code", {"mail:header_fields"});
        SendStorageChain(s, false);
        SendMailbox(s, s.selected);
        MailOpened(s, mail_ev, rng_.Range(1, std::max<std::uint64_t>(s.messages, 1)),
                   "1/1 headers not cached (first=SUBJECT)");
        Line(c.out, "END").U(mail_ev);
      }
      parent = cmd_ev;
    }
    const auto [created, sent] = Span(us);
    {
      Line l(c.out, "EVENT");
      l.U(0).U(parent).U(0).Time(created).Source("imap-client.c", 1016).LastSent(sent);
      l.Name("imap_command_finished");
      l.S("cmd_tag", s.tag_prefix + std::to_string(++s.tag));
      l.S("cmd_name", name).S("cmd_input_name", input_name);
      if (!args.empty()) l.S("cmd_args", args).S("cmd_human_args", args);
      l.S("tagged_reply_state", state).S("tagged_reply", reply);
      l.T("last_run_time", created + us / 20).I("running_usecs", us - us / 10);
      l.I("lock_wait_usecs", rng_.PerMille(300) ? rng_.Below(us / 8 + 1) : 0);
      l.I("bytes_in", args.size() + 2);
      l.I("bytes_out",
          state == "OK" ? rng_.Skewed(cmd.out_bytes, cmd.out_doublings) : reply.size() + 10);
      // The command's event carried these when it was sent as the mails' parent.
      if (!bad_unknown && parent == s.client) {
        l.L("reason_code", {ReasonCode(name)});
        if (!mailbox.empty()) l.S("mailbox", mailbox);
      }
    }
    ++c_.events;
    if (parent != s.client) Line(c.out, "END").U(parent);
    if (cmd.name == "CLOSE" && state == "OK") {
      EndMailbox(s);
      s.selected.clear();
    }
  }

  // mail_user_session_finished, then the ENDs of what was sent. Dovecot merges the unsent
  // storage-service and user events into it (their fields, the storage category).
  void EndMailSession(Session& s, bool pop3) {
    Conn& c = conns_[s.conn];
    EndMailbox(s);
    // Created with the mail user, sent at its end: the duration is the session's.
    const std::uint64_t created = s.started_us + 1000, sent = now_us_;
    now_us_ += rng_.Below(50);
    {
      Line l(c.out, "EVENT");
      l.U(0).U(s.service != 0 ? s.user_ev : s.client).U(0).Time(created);
      l.Source("mail-user.c", 252).LastSent(sent).Name("mail_user_session_finished");
      if (s.service == 0) {
        l.Cat("storage");
        if (pop3) l.Cat("service:pop3");
      }
      if (rng_.PerMille(400)) l.I("utime", rng_.Range(1, 30));
      if (rng_.PerMille(200)) l.I("stime", rng_.Range(1, 10));
      l.I("minor_faults", rng_.Range(90, 4000)).I("rss", 5000000 + rng_.Below(4000000));
      l.I("vsz", 7000000 + rng_.Below(4000000));
      if (s.service == 0) l.S("user", s.user).S("session", s.id);
    }
    ++c_.events;
    for (std::uint64_t id : {s.storage, s.user_ev, s.service, s.client})
      if (id != 0) Line(c.out, "END").U(id);
  }

  bool StepImap(Session& s) {
    if (s.work_left > 0) {
      --s.work_left;
      const ImapCommand* cmd = &PickCommand();
      if (cmd->on_mailbox && s.selected.empty() && !rng_.PerMille(30)) cmd = &kImapCommands[1];
      ImapCommandEvent(s, *cmd);
      return true;
    }
    // Most clients say LOGOUT, the rest just drop the connection.
    if (rng_.PerMille(800)) ImapCommandEvent(s, kLogout);
    if (s.client == 0) SendClient(s);
    EndMailSession(s, false);
    return false;
  }

  // ---- pop3: one RETR or TOP per step; each opens one mail under its command's event

  bool StepPop3(Session& s) {
    Conn& c = conns_[s.conn];
    if (s.work_left > 0) {
      --s.work_left;
      const bool retr = rng_.PerMille(850);
      const std::uint64_t cmd_ev = NewId(c);
      Line(c.out, "BEGIN")
          .U(cmd_ev)
          .U(0)
          .U(0)
          .Time(now_us_)
          .Source("pop3-client.c", 752)
          .Cat("service:pop3")
          .L("reason_code", {retr ? "pop3:cmd_retr" : "pop3:cmd_top"});
      SendStorageChain(s, true);
      SendMailbox(s, "INBOX");
      MailOpened(s, cmd_ev, rng_.Range(1, 40), "access");
      Line(c.out, "END").U(cmd_ev);
      return true;
    }
    EndMailSession(s, true);
    return false;
  }

  // ---- lmtp: connection and envelope, then DATA with the deliveries, then QUIT

  void SmtpCommand(Session& s, std::string_view name, std::uint64_t status,
                   std::string_view enhanced, std::string_view args, std::string_view error) {
    Conn& c = conns_[s.conn];
    const auto [created, sent] = Span(rng_.Skewed(name == "DATA" ? 2000 : 30, 5));
    Line l(c.out, "EVENT");
    l.U(0).U(s.user_ev).U(0).Time(created).Source("smtp-server-command.c", 783).LastSent(sent);
    l.Name("smtp_server_command_finished").I("status_code", status);
    if (!enhanced.empty()) l.S("enhanced_code", enhanced);
    if (!error.empty()) l.S("error", error);
    std::string lower;
    for (char ch : name) lower += static_cast<char>(ch + 32);
    l.S("cmd_name", name).S("cmd_input_name", lower).S("cmd_args", args);
    l.S("cmd_human_args", args);
    ++c_.events;
  }

  bool StepLmtp(Session& s) {
    Conn& c = conns_[s.conn];
    Register(c, "lmtp");
    if (s.phase == 1) {
      // client (lmtp-client.c, with tv_last_sent), smtp-server connection, connection
      s.client = NewId(c);
      Line(c.out, "BEGIN")
          .U(s.client)
          .U(0)
          .U(0)
          .Time(now_us_)
          .Source("lmtp-client.c", 173)
          .LastSent(now_us_ + 700)
          .Cat("service:lmtp")
          .Cat("lmtp");
      s.service = NewId(c);
      Line(c.out, "BEGIN")
          .U(s.service)
          .U(s.client)
          .U(0)
          .Time(now_us_ + 600)
          .Source("smtp-server-connection.c", 745)
          .Cat("smtp-server")
          .S("protocol", "lmtp");
      s.user_ev = NewId(c);
      Line(c.out, "BEGIN")
          .U(s.user_ev)
          .U(s.service)
          .U(0)
          .Time(now_us_ + 610)
          .Source("connection.c", 542)
          .I("remote_pid", rng_.Range(1000, 60000))
          .I("remote_uid", 0)
          .S("connection_id", s.id)
          .S("session", s.id);
      SmtpCommand(s, "LHLO", 250, "", "mx.example.net", "");
      const std::string from = "sender" + std::to_string(rng_.Below(5000)) + "@example.net";
      SmtpCommand(s, "MAIL", 250, "2.1.0", "FROM:<" + from + ">", "");
      const std::uint64_t n = rng_.PerMille(800) ? 1 : rng_.Range(2, 4);
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::string to = PickUser();
        if (rng_.PerMille(50)) {
          ++s.rejected_rcpts;
          SmtpCommand(s, "RCPT", 550, "5.1.1", "TO:<" + to + ">",
                      "<" + to + "> User doesn't exist: " + to);
        } else {
          s.rcpts.push_back(to);
          SmtpCommand(s, "RCPT", 250, "2.1.5", "TO:<" + to + ">", "");
        }
      }
      s.user = from;
      return true;
    }
    if (s.phase == 2 && !s.rcpts.empty()) {
      // DATA: its global event, updated after every event sent under it (capture).
      for (const char* cat : {"storage", "auth-client", "mailbox", "mail-index", "mail-cache",
                              "maildir", "fs", "local-delivery", "mail"}) {
        Register(c, cat);
      }
      const std::uint64_t data = NewId(c);
      const std::uint64_t data_created = now_us_;
      auto data_line = [&](std::string_view cmd) {
        Line l(c.out, cmd);
        l.U(data).U(0);
        if (cmd == "BEGIN") l.U(0);
        l.Time(data_created).Source("smtp-server-connection.c", 1652).Cat("service:lmtp");
        l.L("reason_code", {"lmtp:cmd_data"});
      };
      data_line("BEGIN");
      const std::uint64_t trans = NewId(c);
      Line(c.out, "BEGIN")
          .U(trans)
          .U(s.user_ev)
          .U(0)
          .Time(now_us_ - 3000)
          .Source("smtp-server-transaction.c", 56)
          .S("transaction_id", s.id)
          .S("session", s.id)
          .S("mail_from", s.user)
          .S("mail_from_raw", s.user);
      const std::uint64_t size = rng_.Skewed(2000, 9);
      const std::string msgid = "<" + SessionId(12) + "@example.net>";
      std::vector<std::uint64_t> ends;
      for (std::size_t i = 0; i < s.rcpts.size(); ++i) {
        const std::string& to = s.rcpts[i];
        const std::string sid = i == 0 ? s.id : s.id + ":R" + std::to_string(i + 1);
        const std::uint64_t rcpt = NewId(c);
        Line(c.out, "BEGIN")
            .U(rcpt)
            .U(trans)
            .U(0)
            .Time(now_us_ - 2000)
            .Source("smtp-server-recipient.c", 42)
            .S("rcpt_to", to)
            .S("session", sid)
            .S("user", to);
        const std::uint64_t user = NewId(c);
        Line(c.out, "BEGIN")
            .U(user)
            .U(rcpt)
            .U(0)
            .Time(now_us_ - 1800)
            .Source("mail-storage-service.c", 1331)
            .S("user", to)
            .S("session", sid);
        if (rng_.PerMille(500)) {
          const auto [created, sent] = Span(rng_.Range(10, 60));
          Line(c.out, "EVENT")
              .U(data)
              .U(user)
              .U(0)
              .Time(created)
              .Source("mail.c", 680)
              .LastSent(sent)
              .Name("mail_opened")
              .Cat("storage")
              .Cat("maildir")
              .Cat("mailbox")
              .Cat("mail")
              .S("reason", "header Message-ID (Mail not cached)")
              .S("user", to)
              .S("mailbox", "INBOX")
              .I("seq", rng_.Range(1, 500))
              .I("uid", 0)
              .I("mail_age_days", 0);
          ++c_.events;
          data_line("UPDATE");
        }
        {
          const auto [created, sent] = Span(rng_.Skewed(800, 6));
          Line(c.out, "EVENT")
              .U(data)
              .U(rcpt)
              .U(0)
              .Time(created)
              .Source("mail-deliver.c", 643)
              .LastSent(sent)
              .Name("mail_delivery_finished")
              .Cat("local-delivery")
              .S("message_id", msgid)
              .S("message_subject", "Weekly report " + std::to_string(rng_.Below(100)))
              .S("message_from", s.user)
              .I("message_size", size)
              .I("message_vsize", size + size / 40)
              .S("rcpt_to", to);
          ++c_.events;
          data_line("UPDATE");
        }
        {
          const auto [created, sent] = Span(rng_.Skewed(2000, 5));
          Line l(c.out, "EVENT");
          l.U(data).U(user).U(0).Time(created).Source("mail-user.c", 252).LastSent(sent);
          l.Name("mail_user_session_finished").Cat("storage");
          l.I("minor_faults", rng_.Range(50, 300)).I("rss", 9500000 + rng_.Below(300000));
          l.I("vsz", 12900000 + rng_.Below(500000)).I("rchar", rng_.Range(9000, 30000));
          l.I("wchar", rng_.Range(1000, 10000)).I("syscr", rng_.Range(10, 90));
          l.I("syscw", rng_.Range(10, 90)).S("user", to);
        }
        ++c_.events;
        if (i + 1 < s.rcpts.size()) data_line("UPDATE");
        ends.push_back(user);
        ends.push_back(rcpt);
      }
      Line(c.out, "END").U(data);
      for (std::uint64_t id : ends) Line(c.out, "END").U(id);
      Line(c.out, "END").U(trans);
      SmtpCommand(s, "DATA", 250, "2.0.0", "", "");
      return true;
    }
    SmtpCommand(s, "QUIT", 221, "2.0.0", "", "");
    Register(c, "storage");  // when every recipient was rejected, DATA never registered it
    {
      const std::uint64_t created = s.started_us + 300, sent = now_us_;
      now_us_ += rng_.Below(50);
      Line(c.out, "EVENT")
          .U(0)
          .U(0)
          .U(0)
          .Time(created)
          .Source("mail-user.c", 252)
          .LastSent(sent)
          .Name("mail_user_session_finished")
          .Cat("storage")
          .Cat("service:lmtp")
          .I("minor_faults", rng_.Range(50, 300))
          .I("rss", 9500000 + rng_.Below(300000))
          .I("vsz", 12900000 + rng_.Below(500000))
          .S("user", "raw mail user");
      ++c_.events;
    }
    for (std::uint64_t id : {s.user_ev, s.service, s.client}) Line(c.out, "END").U(id);
    return false;
  }

  // Plays the next step of `s`; false when the session is over.
  bool Step(Session& s) {
    ++s.phase;
    if (s.kind == Kind::kLmtp) return StepLmtp(s);
    if (s.phase == 1) return Login(s);
    return s.kind == Kind::kImap ? StepImap(s) : StepPop3(s);
  }

  const Options& o_;
  const Mix& mix_;
  Rng rng_;
  std::vector<Conn> conns_;
  std::array<std::vector<std::size_t>, kRoles> by_role_;
  std::uint64_t total_weight_ = 0;
  std::vector<Session> pool_;
  std::uint64_t now_us_ = kStartUsec;
  GenCounts c_;
};

// ---- counting what a stream holds ------------------------------------------------------------

// What a server must show after the whole stream: events per name and the values the benchmark's
// metrics check. Fields are read from the EVENT line itself, categories from its c items and the
// connection's CATEGORY parents; that covers every generated event (their metric fields are
// their own), not every event Dovecot could send.
struct Counts {
  std::uint64_t connections = 0;
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;
  std::uint64_t max_line = 0;
  std::map<std::string, std::uint64_t> commands;
  std::map<std::string, std::uint64_t> events;  // EVENT lines by name ("" unnamed)
  std::uint64_t imap_special = 0;               // cmd_name SEARCH or STORE, or reply BAD or NO
  std::uint64_t auth_success = 0;               // auth_request_finished with success=yes
  std::uint64_t storage_mail_opened = 0;
  std::uint64_t imap_duration_sum = 0;
  std::uint64_t imap_bytes_in_sum = 0;
  std::uint64_t imap_bytes_out_sum = 0;
  std::uint64_t delivery_size_sum = 0;
};

bool EqualsIcase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::uint64_t ToU64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

void CountEventLine(const std::vector<std::string_view>& t,
                    const std::map<std::string, std::string, std::less<>>& parents, Counts& c) {
  // EVENT <global> <parent> <log-type> <sec> <usec> items...
  if (t.size() < 6) return;
  const std::uint64_t created = ToU64(t[4]) * 1000000 + ToU64(t[5]);
  std::uint64_t sent = 0;
  std::string_view name;
  bool storage = false;
  std::map<std::string_view, std::string_view> fields;
  for (std::size_t i = 6; i < t.size();) {
    const std::string_view item = t[i];
    const char code = item.empty() ? '\0' : item[0];
    const std::string_view rest = item.empty() ? item : item.substr(1);
    if (code == 's' || code == 'l') {
      if (code == 'l' && i + 1 < t.size()) sent = ToU64(rest) * 1000000 + ToU64(t[i + 1]);
      i += 2;
    } else if (code == 'n') {
      name = rest;
      ++i;
    } else if (code == 'c') {
      std::string_view cat = rest;
      for (int depth = 0; depth < 16 && !cat.empty(); ++depth) {
        if (cat == "storage") storage = true;
        auto it = parents.find(cat);
        cat = it == parents.end() ? std::string_view() : std::string_view(it->second);
      }
      ++i;
    } else if ((code == 'S' || code == 'I') && i + 1 < t.size()) {
      fields[rest] = t[i + 1];
      i += 2;
    } else if (code == 'T') {
      i += 3;
    } else if (code == 'L' && i + 1 < t.size()) {
      i += 2 + ToU64(t[i + 1]);
    } else {
      ++i;
    }
  }
  ++c.events[std::string(name)];
  const auto field = [&](std::string_view key) {
    auto it = fields.find(key);
    return it == fields.end() ? std::string_view() : it->second;
  };
  if (name == "imap_command_finished") {
    const std::string_view cmd = field("cmd_name"), state = field("tagged_reply_state");
    if (EqualsIcase(cmd, "SEARCH") || EqualsIcase(cmd, "STORE") || EqualsIcase(state, "BAD") ||
        EqualsIcase(state, "NO")) {
      ++c.imap_special;
    }
    c.imap_duration_sum += sent != 0 && sent > created ? sent - created : 0;
    c.imap_bytes_in_sum += ToU64(field("bytes_in"));
    c.imap_bytes_out_sum += ToU64(field("bytes_out"));
  } else if (name == "auth_request_finished") {
    if (EqualsIcase(field("success"), "yes")) ++c.auth_success;
  } else if (name == "mail_opened") {
    if (storage) ++c.storage_mail_opened;
  } else if (name == "mail_delivery_finished") {
    c.delivery_size_sum += ToU64(field("message_size"));
  }
}

// Dovecot's t_strsplit_tabescaped(): split on TAB, then unescape each field.
void SplitUnescaped(std::string_view line, std::vector<std::string>& store,
                    std::vector<std::string_view>& out) {
  store.clear();
  out.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t tab = line.find('\t', start);
    const std::string_view f = line.substr(start, tab - start);
    std::string u;
    for (std::size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '\001') {
        u += f[i];
      } else if (i + 1 < f.size()) {
        const char e = f[++i];
        u += e == '1'   ? '\001'
             : e == 't' ? '\t'
             : e == 'r' ? '\r'
             : e == 'n' ? '\n'
             : e == '0' ? '\0'
                        : e;
      }
    }
    store.push_back(std::move(u));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  for (const std::string& s : store) out.emplace_back(s);
}

Counts CountStream(const Stream& s) {
  Counts c;
  c.connections = s.conns.size();
  std::vector<std::string> store;
  std::vector<std::string_view> t;
  for (const ConnStream& cs : s.conns) {
    std::map<std::string, std::string, std::less<>> parents;  // this connection's categories
    c.bytes += cs.bytes.size();
    std::string_view rest(cs.bytes);
    while (!rest.empty()) {
      std::size_t eol = rest.find('\n');
      if (eol == std::string_view::npos) eol = rest.size();
      const std::string_view line = rest.substr(0, eol);
      rest.remove_prefix(std::min(rest.size(), eol + 1));
      ++c.lines;
      c.max_line = std::max<std::uint64_t>(c.max_line, line.size());
      const std::string_view cmd = line.substr(0, line.find('\t'));
      ++c.commands[std::string(cmd)];
      if (cmd == "CATEGORY" || cmd == "EVENT") SplitUnescaped(line, store, t);
      if (cmd == "CATEGORY" && t.size() >= 2) {
        parents[std::string(t[1])] = t.size() >= 3 ? std::string(t[2]) : std::string();
      } else if (cmd == "EVENT") {
        CountEventLine(t, parents, c);
      }
    }
  }
  return c;
}

void PrintSummary(const Counts& c) {
  const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  const auto get = [](const std::map<std::string, std::uint64_t>& m, const char* k) {
    auto it = m.find(k);
    return it == m.end() ? 0ULL : static_cast<unsigned long long>(it->second);
  };
  std::uint64_t named = 0;
  for (const auto& [name, n] : c.events)
    if (!name.empty()) named += n;
  std::printf("connections=%llu lines=%llu bytes=%llu max_line=%llu events=%llu named_events=%llu",
              u(c.connections), u(c.lines), u(c.bytes), u(c.max_line), get(c.commands, "EVENT"),
              u(named));
  for (const char* cmd : {"VERSION", "CATEGORY", "BEGIN", "UPDATE", "END"}) {
    std::string key = cmd;
    for (char& ch : key) ch = static_cast<char>(ch + 32);
    std::printf(" %s=%llu", key.c_str(), get(c.commands, cmd));
  }
  for (const auto& [name, n] : c.events) {
    std::printf(" ev_%s=%llu", name.empty() ? "unnamed" : name.c_str(), u(n));
  }
  std::printf(
      " imap_special=%llu auth_success=%llu storage_mail_opened=%llu imap_duration_sum=%llu "
      "imap_bytes_in_sum=%llu imap_bytes_out_sum=%llu delivery_size_sum=%llu\n",
      u(c.imap_special), u(c.auth_success), u(c.storage_mail_opened), u(c.imap_duration_sum),
      u(c.imap_bytes_in_sum), u(c.imap_bytes_out_sum), u(c.delivery_size_sum));
}

// ---- files -----------------------------------------------------------------------------------

std::string ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path + ": " + std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  std::string data;
  data.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Die("read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return data;
}

void WriteAll(int fd, const char* p, std::size_t n, const std::string& what) {
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) {
      const ssize_t fw = write(fd, p, n);
      if (fw < 0 && errno == EINTR) continue;
      if (fw < 0) Die("write " + what + ": " + std::strerror(errno));
      p += fw;
      n -= static_cast<std::size_t>(fw);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) Die("write " + what + ": " + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// The stream file: a magic line, then per connection `CONNECTION\t<index>\t<bytes>\t<label>\n`
// followed by exactly <bytes> bytes.
void WriteStreamFile(const std::string& path, const Stream& s) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path + ": " + std::strerror(errno));
  std::string head = std::string(kStreamMagic) + "\n";
  WriteAll(fd, head.data(), head.size(), path);
  for (std::size_t i = 0; i < s.conns.size(); ++i) {
    head = "CONNECTION\t" + std::to_string(i) + "\t" + std::to_string(s.conns[i].bytes.size()) +
           "\t" + s.conns[i].label + "\n";
    WriteAll(fd, head.data(), head.size(), path);
    WriteAll(fd, s.conns[i].bytes.data(), s.conns[i].bytes.size(), path);
  }
  if (close(fd) != 0) Die("close " + path + ": " + std::strerror(errno));
}

// unixproxy.py capture (stats-writer-wire.txt): `#<conn> <time> C>S len=<n> <escaped bytes>`
// with \t \n \r \\ \xNN escapes; the client-to-server bytes of each connection, in order.
Stream ParseCapture(std::string_view text) {
  std::map<std::uint64_t, ConnStream> conns;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() < 2 || line[0] != '#' || line[1] < '0' || line[1] > '9') continue;
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) continue;
    const std::uint64_t conn = ToU64(line.substr(1, sp1 - 1));
    std::string_view rest = line.substr(sp2 + 1);
    if (rest.substr(0, 5) == "OPEN ") {
      const std::size_t comm = rest.find("comm=");
      if (comm != std::string_view::npos) conns[conn].label = std::string(rest.substr(comm + 5));
      continue;
    }
    if (rest.substr(0, 8) != "C>S len=") continue;
    const std::size_t sp = rest.find(' ', 8);
    if (sp == std::string_view::npos) continue;
    rest.remove_prefix(sp + 1);
    std::string& out = conns[conn].bytes;
    for (std::size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] != '\\' || i + 1 == rest.size()) {
        out += rest[i];
        continue;
      }
      const char e = rest[++i];
      if (e == 't') {
        out += '\t';
      } else if (e == 'n') {
        out += '\n';
      } else if (e == 'r') {
        out += '\r';
      } else if (e == 'x' && i + 2 < rest.size()) {
        unsigned v = 0;
        std::from_chars(rest.data() + i + 1, rest.data() + i + 3, v, 16);
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += e;
      }
    }
  }
  Stream s;
  for (auto& [index, cs] : conns)
    if (!cs.bytes.empty()) s.conns.push_back(std::move(cs));
  return s;
}

Stream LoadStream(const std::string& path) {
  const std::string data = ReadFile(path);
  std::string_view rest(data);
  if (rest.substr(0, kStreamMagic.size()) != kStreamMagic) {
    if (rest.find(" C>S len=") != std::string_view::npos) return ParseCapture(rest);
    // Raw lines: one connection.
    Stream s;
    s.conns.push_back({data, "raw"});
    if (!s.conns[0].bytes.empty() && s.conns[0].bytes.back() != '\n') s.conns[0].bytes += '\n';
    return s;
  }
  rest.remove_prefix(std::min(rest.size(), rest.find('\n') + 1));
  Stream s;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    if (eol == std::string_view::npos || rest.substr(0, 11) != "CONNECTION\t") {
      Die(path + ": bad CONNECTION header");
    }
    const std::string_view head = rest.substr(0, eol);
    const std::size_t t1 = head.find('\t', 11);
    const std::size_t t2 = head.find('\t', t1 + 1);
    if (t1 == std::string_view::npos) Die(path + ": bad CONNECTION header");
    const std::uint64_t bytes = ToU64(head.substr(t1 + 1, t2 - t1 - 1));
    rest.remove_prefix(eol + 1);
    if (bytes > rest.size()) Die(path + ": truncated");
    ConnStream cs;
    cs.label = t2 == std::string_view::npos ? "" : std::string(head.substr(t2 + 1));
    cs.bytes.assign(rest.substr(0, bytes));
    rest.remove_prefix(bytes);
    s.conns.push_back(std::move(cs));
  }
  return s;
}

// ---- replay ----------------------------------------------------------------------------------

struct ConnResult {
  std::string filter;             // the FILTER line's text, as received
  std::uint64_t later_lines = 0;  // lines the server sent after its handshake
};

// The bytes a Dovecot client sends before it waits: VERSION and the CATEGORY lines after it.
std::size_t HandshakePrefix(std::string_view bytes) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::string_view rest = bytes.substr(pos);
    if (rest.substr(0, 8) != "VERSION\t" && rest.substr(0, 9) != "CATEGORY\t") break;
    const std::size_t eol = rest.find('\n');
    if (eol == std::string_view::npos) return bytes.size();
    pos += eol + 1;
  }
  return pos;
}

int Connect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) Die("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die("connect " + path + ": " + std::strerror(errno));
  }
  return fd;
}

// Reads into `in` until it holds `lines` LF-terminated lines, or EOF, or the deadline. Returns
// false on timeout.
bool ReadLines(int fd, std::string& in, std::size_t lines,
               std::chrono::steady_clock::time_point deadline, bool& eof) {
  eof = false;
  for (;;) {
    if (static_cast<std::size_t>(std::count(in.begin(), in.end(), '\n')) >= lines) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) Die(std::string("poll: ") + std::strerror(errno));
    if (r == 0) continue;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {  // EOF; a reset counts as one
      eof = true;
      return true;
    }
    in.append(buf, static_cast<std::size_t>(n));
  }
}

struct ReplayStats {
  double seconds = 0;  // from the end of the handshakes to the last server close
  std::vector<ConnResult> conns;
};

ReplayStats Replay(const Options& o, const Stream& s) {
  const std::size_t n = s.conns.size();
  ReplayStats stats;
  stats.conns.resize(n);
  std::barrier sync(static_cast<std::ptrdiff_t>(n + 1));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      const std::string_view bytes = s.conns[i].bytes;
      const std::string what = "connection " + std::to_string(i) + " (" + s.conns[i].label + ")";
      const int fd = Connect(o.out);
      // As a Dovecot client: VERSION and the categories at once, then wait for the server's
      // VERSION and FILTER (stats-client.c waits up to 5 s on its first connection).
      const std::size_t prefix = HandshakePrefix(bytes);
      WriteAll(fd, bytes.data(), prefix, what);
      std::string in;
      bool eof = false;
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(o.handshake_timeout_ms);
      if (!ReadLines(fd, in, 2, deadline, eof)) Die(what + ": timeout waiting for handshake");
      if (eof) Die(what + ": server closed the connection during the handshake");
      const std::size_t nl1 = in.find('\n');
      const std::size_t nl2 = in.find('\n', nl1 + 1);
      const std::string_view version = std::string_view(in).substr(0, nl1);
      const std::string_view filter = std::string_view(in).substr(nl1 + 1, nl2 - nl1 - 1);
      if (version.substr(0, 23) != "VERSION\tstats-server\t4\t") {
        Die(what + ": unexpected server handshake: " + std::string(version));
      }
      if (filter.substr(0, 7) != "FILTER\t" && filter != "FILTER") {
        Die(what + ": expected FILTER, got: " + std::string(filter));
      }
      stats.conns[i].filter = std::string(filter);
      in.erase(0, nl2 + 1);
      sync.arrive_and_wait();  // every connection is past its handshake
      // Paced: each connection sends its share of --bytes-per-second, a chunk at a time.
      const double share = static_cast<double>(o.bytes_per_second) / static_cast<double>(n);
      const auto paced_start = std::chrono::steady_clock::now();
      std::size_t pos = prefix;
      while (pos < bytes.size()) {
        std::size_t end = std::min(bytes.size(), pos + o.chunk_bytes);
        if (end < bytes.size()) {
          const std::size_t nl = bytes.rfind('\n', end - 1);
          end = nl != std::string_view::npos && nl >= pos ? nl + 1 : bytes.size();
        }
        WriteAll(fd, bytes.data() + pos, end - pos, what);
        if (share > 0) {
          std::this_thread::sleep_until(
              paced_start +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(static_cast<double>(end - prefix) / share)));
        }
        pos = end;
      }
      // EOF to the server; it closes once it has consumed everything before it.
      if (shutdown(fd, SHUT_WR) != 0) Die(what + ": shutdown: " + std::strerror(errno));
      const auto drain = std::chrono::steady_clock::now() + std::chrono::seconds(o.drain_timeout_s);
      while (!eof) {
        if (!ReadLines(fd, in, static_cast<std::size_t>(-1), drain, eof)) {
          Die(what + ": the server did not close the connection within the drain timeout");
        }
      }
      stats.conns[i].later_lines =
          static_cast<std::uint64_t>(std::count(in.begin(), in.end(), '\n'));
      close(fd);
    });
  }
  sync.arrive_and_wait();
  const auto start = std::chrono::steady_clock::now();
  for (auto& t : threads) t.join();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

constexpr char kUsage[] =
    "usage: stats_writer_load [options] --write-file FILE\n"
    "       stats_writer_load [options] --out SOCKET\n"
    "       stats_writer_load --in FILE (--out SOCKET | --write-file FILE)\n"
    "Generates (or loads with --in) a Dovecot 2.3 stats-writer stream of one or more\n"
    "connections. --write-file writes it to a file; --out replays it into a stats-writer\n"
    "socket, one connection each, with blocking writes, and returns once the server has\n"
    "closed every connection after their EOF. Prints one summary line of what the stream\n"
    "holds on stdout (and, with --out, one line about the replay).\n"
    "  --events N          EVENT lines to generate, at least (default 1000000)\n"
    "  --connections N     connections, i.e. Dovecot processes (default 8)\n"
    "  --concurrency N     sessions in progress at once (default 200)\n"
    "  --users N           distinct users (default 10000)\n"
    "  --domains N         distinct domains (default 100)\n"
    "  --ips N             distinct client addresses (default 2000)\n"
    "  --seed N            generator seed (default 1)\n"
    "  --mix NAME          what the sessions do (default capture):\n"
    "                      capture  the capture instance's traffic: IMAP, POP3 and LMTP\n"
    "                      deep     IMAP FETCHes opening 2-8 mails each: mail_opened events\n"
    "                               under command, mailbox, storage, user and client\n"
    "                      short    logins and 1-3 IMAP commands without a mailbox, then\n"
    "                               LOGOUT: auth and short command events\n"
    "  --chunk-bytes N     bytes per write, rounded down to whole lines (default 1048576)\n"
    "  --handshake-timeout-ms N   wait for the server's VERSION and FILTER (default 5000)\n"
    "  --drain-timeout-s N wait for the server to close after EOF (default 900)\n"
    "  --bytes-per-second N  replay at this pace, over all connections (default 0: as fast\n"
    "                      as the server reads)\n"
    "  --in FILE           load FILE: a --write-file stream, a unixproxy capture\n"
    "                      (stats-writer-wire.txt), or raw lines (one connection)\n"
    "  --filter-out FILE   write the FILTER line the server sent (first connection) to FILE\n";

struct NumberFlag {
  std::string_view name;
  std::uint64_t Options::*field;
};
constexpr NumberFlag kNumberFlags[] = {
    {"--events", &Options::events},
    {"--connections", &Options::connections},
    {"--concurrency", &Options::concurrency},
    {"--users", &Options::users},
    {"--domains", &Options::domains},
    {"--ips", &Options::ips},
    {"--seed", &Options::seed},
    {"--chunk-bytes", &Options::chunk_bytes},
    {"--handshake-timeout-ms", &Options::handshake_timeout_ms},
    {"--drain-timeout-s", &Options::drain_timeout_s},
    {"--bytes-per-second", &Options::bytes_per_second},
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    const std::size_t eq = arg.find('=');
    bool inline_value = false;
    if (arg.substr(0, 2) == "--" && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (!inline_value) {
      if (i + 1 >= argc) Die(std::string(arg) + " needs a value\n" + kUsage);
      value = argv[++i];
    }
    if (arg == "--in") {
      o.in = value;
    } else if (arg == "--out") {
      o.out = value;
    } else if (arg == "--write-file") {
      o.write_file = value;
    } else if (arg == "--filter-out") {
      o.filter_out = value;
    } else if (arg == "--mix") {
      if (FindMix(value) == nullptr) Die("unknown mix " + std::string(value) + "\n" + kUsage);
      o.mix = value;
    } else {
      const auto* flag = std::find_if(std::begin(kNumberFlags), std::end(kNumberFlags),
                                      [&](const NumberFlag& f) { return f.name == arg; });
      if (flag == std::end(kNumberFlags)) Die("unknown option " + std::string(arg) + "\n" + kUsage);
      std::uint64_t& field = o.*(flag->field);
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), field);
      if (ec != std::errc() || end != value.data() + value.size()) {
        Die("bad number for " + std::string(arg) + ": " + std::string(value));
      }
    }
  }
  if (o.out.empty() && o.write_file.empty())
    Die(std::string("give --out or --write-file\n") + kUsage);
  if (o.connections == 0 || o.connections > 1000 || o.concurrency == 0 || o.users == 0 ||
      o.domains == 0 || o.ips == 0 || o.chunk_bytes == 0) {
    Die("--connections (1..1000), --concurrency, --users, --domains, --ips and --chunk-bytes "
        "must be positive");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  // A server that goes away must show up as EPIPE and an error message, not a silent death.
  std::signal(SIGPIPE, SIG_IGN);
  const Options o = ParseOptions(argc, argv);
  const Stream stream = o.in.empty() ? Generator(o, *FindMix(o.mix)).Generate() : LoadStream(o.in);
  if (stream.conns.empty()) Die("the stream holds no connection");
  if (!o.write_file.empty()) WriteStreamFile(o.write_file, stream);
  const Counts counts = CountStream(stream);
  PrintSummary(counts);
  if (o.out.empty()) return 0;
  std::fflush(stdout);
  const ReplayStats r = Replay(o, stream);
  if (!o.filter_out.empty()) {
    const int fd = open(o.filter_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) Die("open " + o.filter_out + ": " + std::strerror(errno));
    const std::string line = r.conns[0].filter + "\n";
    WriteAll(fd, line.data(), line.size(), o.filter_out);
    close(fd);
  }
  std::uint64_t later = 0;
  bool same_filter = true;
  for (const ConnResult& c : r.conns) {
    later += c.later_lines;
    same_filter = same_filter && c.filter == r.conns[0].filter;
  }
  const std::uint64_t events = counts.commands.count("EVENT") ? counts.commands.at("EVENT") : 0;
  std::printf(
      "replayed connections=%zu bytes=%llu events=%llu seconds=%.3f events_per_second=%.0f "
      "filter_bytes=%zu same_filter_on_all=%s server_lines_after_handshake=%llu\n",
      r.conns.size(), static_cast<unsigned long long>(counts.bytes),
      static_cast<unsigned long long>(events), r.seconds,
      r.seconds > 0 ? static_cast<double>(events) / r.seconds : 0.0, r.conns[0].filter.size(),
      same_filter ? "yes" : "no", static_cast<unsigned long long>(later));
  return 0;
}
