// old_stats_load: load generator for the old-stats ingest path.
//
// Builds the stream of lines that Dovecot 2.3 mail processes (old_stats + imap_old_stats
// plugins) and auth (auth_stats = yes) write into the old-stats FIFOs: CONNECT, UPDATE-CMD,
// UPDATE-SESSION, ADD-USER and DISCONNECT (reference/dovecot-protocols.md §2.3, §2.4). The stream
// is either synthetic and deterministic for a seed, or replayed from a file (raw lines, or a
// fifotap capture as in reference/dovecot-captures/old-stats-mail-fifo.txt). It is built completely
// in memory before the first byte is written, so generation cost stays out of the measurement, and
// it is written with blocking writes of whole lines: the reader is fed as fast as it reads and
// no record is lost. (Dovecot's writers use O_NONBLOCK and drop on EAGAIN; a benchmark that
// compares two servers needs both to see the same bytes.)
//
// Standalone on purpose: the C++ standard library and POSIX only, so the same binary drives
// Dovecot's own old-stats process and mailscope.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Dovecot writes each record with one write() of at most PIPE_BUF bytes; longer UPDATE-CMD
// lines get their args cut (reference §2.4). The server side reads 8192-byte lines at most.
constexpr std::size_t kMaxLineBytes = 4096;
constexpr std::size_t kMailStatsBytes = 136;  // x86_64 struct mail_stats (reference §2.3)
constexpr std::size_t kAuthStatsBytes = 24;   // struct auth_stats: 6 x u32
constexpr std::size_t kMailPayloadChars = (5 + kMailStatsBytes + 2) / 3 * 4;  // base64, 188
constexpr std::uint64_t kStartUsec = 1795305600ULL * 1000000;  // synthetic clock origin

struct Options {
  std::uint64_t records = 1000000;
  std::uint64_t users = 10000;
  std::uint64_t domains = 100;
  std::uint64_t ips = 2000;
  std::uint64_t seed = 1;
  std::uint64_t concurrency = 500;  // sessions connected at the same time
  std::uint64_t pop3_percent = 12;
  std::uint64_t lmtp_percent = 8;
  std::uint64_t chunk_bytes = 1 << 20;
  std::string in;          // replay this file instead of generating
  std::string out;         // FIFO or file to feed
  std::string write_file;  // pre-generate into this regular file
};

// Counts of what a stream holds, and what a server must show after consuming all of it: global
// num_logins = CONNECT records, num_cmds = new-command UPDATE-CMD records (for a replayed
// recording that holds updates of sessions it never connected, Dovecot also counts the
// placeholder sessions it creates as logins).
struct StreamCounts {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t connect = 0;
  std::uint64_t disconnect = 0;
  std::uint64_t update_session = 0;
  std::uint64_t update_cmd_new = 0;
  std::uint64_t update_cmd_cont = 0;
  std::uint64_t add_user = 0;
  std::uint64_t other = 0;
  // Only known for generated streams: the sums of the sessions' final cumulative values,
  // i.e. what the global level must show for these u64 counters.
  std::optional<std::uint64_t> read_bytes;
  std::optional<std::uint64_t> mail_cache_hits;
  std::optional<std::uint64_t> auth_successes;
  std::optional<std::uint64_t> auth_failures;
};

struct Stream {
  std::string bytes;
  StreamCounts counts;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "old_stats_load: %s\n", message.c_str());
  std::exit(2);
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

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

// The `mail` stats item, cumulative. CPU and clock time are kept in microseconds and written
// as struct timeval {sec, usec} with usec < 1000000.
struct MailStats {
  std::uint64_t user_cpu_us = 0, sys_cpu_us = 0, clock_us = 0;
  std::uint32_t min_faults = 0, maj_faults = 0, vol_cs = 0, invol_cs = 0;
  std::uint64_t disk_input = 0, disk_output = 0;
  std::uint32_t read_count = 0, write_count = 0;
  std::uint64_t read_bytes = 0, write_bytes = 0;
  std::uint32_t lookup_path = 0, lookup_attr = 0, files_read_count = 0;
  std::uint64_t files_read_bytes = 0, cache_hits = 0;

  void Add(const MailStats& d) {
    user_cpu_us += d.user_cpu_us;
    sys_cpu_us += d.sys_cpu_us;
    clock_us += d.clock_us;
    min_faults += d.min_faults;
    maj_faults += d.maj_faults;
    vol_cs += d.vol_cs;
    invol_cs += d.invol_cs;
    disk_input += d.disk_input;
    disk_output += d.disk_output;
    read_count += d.read_count;
    write_count += d.write_count;
    read_bytes += d.read_bytes;
    write_bytes += d.write_bytes;
    lookup_path += d.lookup_path;
    lookup_attr += d.lookup_attr;
    files_read_count += d.files_read_count;
    files_read_bytes += d.files_read_bytes;
    cache_hits += d.cache_hits;
  }
};

void PutLe(unsigned char* p, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

void AppendBase64(std::string& out, const unsigned char* p, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < n) {
    const std::uint32_t v = (p[i] << 16) | (i + 1 < n ? p[i + 1] << 8 : 0);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
}

// "mail\0" + the 136-byte struct in x86_64 layout (field offsets from reference §2.3; note the
// struct order read_count, write_count, read_bytes, write_bytes and the padding at 116).
void AppendMailPayload(std::string& out, const MailStats& s) {
  std::array<unsigned char, 5 + kMailStatsBytes> buf{};
  std::memcpy(buf.data(), "mail", 5);
  unsigned char* p = buf.data() + 5;
  const auto timeval = [p](std::size_t at, std::uint64_t us) {
    PutLe(p + at, us / 1000000, 8);
    PutLe(p + at + 8, us % 1000000, 8);
  };
  timeval(0, s.user_cpu_us);
  timeval(16, s.sys_cpu_us);
  timeval(32, s.clock_us);
  PutLe(p + 48, s.min_faults, 4);
  PutLe(p + 52, s.maj_faults, 4);
  PutLe(p + 56, s.vol_cs, 4);
  PutLe(p + 60, s.invol_cs, 4);
  PutLe(p + 64, s.disk_input, 8);
  PutLe(p + 72, s.disk_output, 8);
  PutLe(p + 80, s.read_count, 4);
  PutLe(p + 84, s.write_count, 4);
  PutLe(p + 88, s.read_bytes, 8);
  PutLe(p + 96, s.write_bytes, 8);
  PutLe(p + 104, s.lookup_path, 4);
  PutLe(p + 108, s.lookup_attr, 4);
  PutLe(p + 112, s.files_read_count, 4);
  PutLe(p + 120, s.files_read_bytes, 8);
  PutLe(p + 128, s.cache_hits, 8);
  AppendBase64(out, buf.data(), buf.size());
}

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

enum class Service { kImap, kPop3, kLmtp };

std::string_view ServiceName(Service s) {
  switch (s) {
    case Service::kImap:
      return "imap";
    case Service::kPop3:
      return "pop3";
    case Service::kLmtp:
      return "lmtp";
  }
  return "imap";
}

struct IpAddr {
  bool v6 = false;
  std::array<unsigned char, 16> raw{};  // network order; 4 bytes used for IPv4
  std::string text;
};

// Client address number k: every tenth one is IPv6 (2001:db8:1::/64), the others come from the
// RFC 2544 benchmark range 198.18.0.0/15 and, past its size, from 10.0.0.0/8.
IpAddr ClientIp(std::uint64_t k) {
  IpAddr ip;
  char text[64];
  if (k % 10 == 9) {
    ip.v6 = true;
    const unsigned char prefix[8] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00};
    std::memcpy(ip.raw.data(), prefix, 8);
    for (int i = 0; i < 8; ++i) ip.raw[15 - i] = static_cast<unsigned char>(k >> (8 * i));
    const auto high = static_cast<unsigned>((k >> 16) & 0xffff);
    const auto low = static_cast<unsigned>(k & 0xffff);
    if (high == 0) {
      std::snprintf(text, sizeof(text), "2001:db8:1::%x", low);
    } else {
      std::snprintf(text, sizeof(text), "2001:db8:1::%x:%x", high, low);
    }
  } else {
    const std::uint32_t v4 = k < 131070 ? 0xc6120001u + static_cast<std::uint32_t>(k)
                                        : 0x0a000001u + static_cast<std::uint32_t>(k - 131070);
    for (int i = 0; i < 4; ++i) ip.raw[i] = static_cast<unsigned char>(v4 >> (24 - 8 * i));
    std::snprintf(text, sizeof(text), "%u.%u.%u.%u", ip.raw[0], ip.raw[1], ip.raw[2], ip.raw[3]);
  }
  ip.text = text;
  return ip;
}

// One IMAP command kind. weight: relative frequency; cost: scale of the resources one execution
// uses (NOOP = 1); max_continuations: "c" records a long run may add (APPEND always sends one
// after its literal arrives, as in the capture).
enum class Args {
  kNone,
  kMailbox,
  kStatus,
  kFetch,
  kUidFetch,
  kUidStore,
  kUidSearch,
  kSearch,
  kStore,
  kAppend,
  kList,
  kCopy,
  kCreate,
  kEnable
};
struct CommandKind {
  std::string_view name;
  std::uint32_t weight;
  std::uint32_t cost;
  std::uint32_t max_continuations;
  Args args;
};
constexpr CommandKind kCommands[] = {
    {"NOOP", 160, 1, 0, Args::kNone},         {"SELECT", 110, 6, 0, Args::kMailbox},
    {"EXAMINE", 15, 5, 0, Args::kMailbox},    {"STATUS", 90, 3, 0, Args::kStatus},
    {"FETCH", 80, 10, 2, Args::kFetch},       {"UID FETCH", 120, 12, 3, Args::kUidFetch},
    {"UID STORE", 40, 4, 0, Args::kUidStore}, {"UID SEARCH", 35, 8, 1, Args::kUidSearch},
    {"SEARCH", 20, 8, 1, Args::kSearch},      {"STORE", 25, 4, 0, Args::kStore},
    {"APPEND", 25, 9, 1, Args::kAppend},      {"LIST", 40, 4, 0, Args::kList},
    {"LSUB", 8, 3, 0, Args::kList},           {"COPY", 15, 6, 0, Args::kCopy},
    {"EXPUNGE", 25, 5, 0, Args::kNone},       {"CLOSE", 15, 3, 0, Args::kNone},
    {"CREATE", 4, 5, 0, Args::kCreate},       {"CAPABILITY", 20, 1, 0, Args::kNone},
    {"ENABLE", 10, 1, 0, Args::kEnable},      {"CHECK", 3, 2, 0, Args::kNone},
};
constexpr CommandKind kLogout = {"LOGOUT", 0, 2, 0, Args::kNone};

constexpr std::string_view kMailboxes[] = {"INBOX",
                                           "INBOX",
                                           "INBOX",
                                           "Sent",
                                           "Drafts",
                                           "Archive",
                                           "Trash",
                                           "Junk",
                                           "Lists/dovecot",
                                           "Archive/2026",
                                           "Projects/mailscope"};

enum class State { kAuthed, kActive, kDisconnectPending };

struct Session {
  std::string id;
  std::uint32_t user = 0;
  std::uint64_t ip = 0;
  std::uint32_t pid = 0;
  Service service = Service::kImap;
  State state = State::kAuthed;
  std::uint32_t work_left = 0;  // imap: new commands to send; pop3/lmtp: updates to send
  std::uint32_t next_cmd_id = 1;
  std::uint32_t conts_left = 0;  // "c" records still due for the current command
  const CommandKind* cmd_kind = nullptr;
  MailStats cmd;         // cumulative stats of the current command
  MailStats total;       // cumulative stats of the session
  bool dirty = false;    // total changed since the last UPDATE-SESSION
  bool dup_due = false;  // the plugin sends one unchanged update after a change
};

// Generates the synthetic stream. Records arrive interleaved from `concurrency` sessions, each
// ADD-USER -> CONNECT -> commands/updates -> final UPDATE-SESSION -> DISCONNECT, and the stream
// holds exactly `records` lines with every connected session disconnected at the end.
class Generator {
 public:
  explicit Generator(const Options& options) : o_(options), rng_(options.seed) {
    users_.reserve(o_.users);
    for (std::uint64_t i = 0; i < o_.users; ++i) {
      // One user in fifty has no domain (e.g. "dave" in the capture); Dovecot files those under
      // the domain "".
      std::string name = "user" + std::to_string(i);
      if (i % 50 != 49) name += "@dom" + std::to_string(i % o_.domains) + ".example";
      users_.push_back(std::move(name));
    }
    for (const auto& kind : kCommands) total_weight_ += kind.weight;
  }

  Stream Generate() {
    out_.reserve(o_.records * 190);
    while (c_.records < o_.records) {
      const std::uint64_t slack = o_.records - c_.records - need_;  // need_ <= remaining
      if (slack == 0) {
        DrainOne();
      } else if (slack >= 3 && pool_.size() < o_.concurrency && (ramped_ || rng_.PerMille(500))) {
        // While the pool fills up, new logins interleave with the traffic of earlier ones.
        StartSession();
        ramped_ = ramped_ || pool_.size() == o_.concurrency;
      } else if (pool_.empty()) {
        AddUser(static_cast<std::uint32_t>(PickUser()), Service::kImap, /*success=*/false);
      } else {
        Advance(rng_.Below(pool_.size()), slack);
      }
    }
    c_.bytes = out_.size();
    c_.read_bytes = read_bytes_;
    c_.mail_cache_hits = cache_hits_;
    c_.auth_successes = auth_successes_;
    c_.auth_failures = auth_failures_;
    return Stream{std::move(out_), c_};
  }

 private:
  // Skewed popularity without floating point: half the picks go to the busiest tenth of users.
  std::uint64_t PickUser() {
    const std::uint64_t hot = o_.users / 10 == 0 ? 1 : o_.users / 10;
    return rng_.PerMille(500) ? rng_.Below(hot) : rng_.Below(o_.users);
  }

  // Most sessions of a user come from its usual address.
  std::uint64_t PickIp(std::uint64_t user) {
    if (rng_.PerMille(800)) return (user * 2654435761ULL) % o_.ips;
    return rng_.Below(o_.ips);
  }

  std::string LoginSessionId(std::uint64_t usec, const IpAddr& ip) {
    // Login processes: base64 of 48-bit µs timestamp (LE), 16-bit remote port, then the remote
    // address: 12 bytes -> 16 chars for IPv4, 24 -> 32 chars for IPv6 (reference §2.4).
    std::array<unsigned char, 24> raw{};
    PutLe(raw.data(), usec, 6);
    PutLe(raw.data() + 6, rng_.Range(1024, 65535), 2);
    const std::size_t n = ip.v6 ? 16 : 4;
    std::memcpy(raw.data() + 8, ip.raw.data(), n);
    std::string id;
    AppendBase64(id, raw.data(), 8 + n);
    return id;
  }

  std::string StorageSessionId(std::uint64_t serial) {
    // Storage-service sessions (LMTP): base64 of a 16-byte GUID without the trailing "==",
    // ":R<n>" for a later recipient of the same delivery.
    std::array<unsigned char, 16> guid{};
    PutLe(guid.data(), serial * 0x9e3779b97f4a7c15ULL, 8);  // odd factor: still unique
    PutLe(guid.data() + 8, rng_.Next(), 8);
    std::string id;
    AppendBase64(id, guid.data(), guid.size());
    id.resize(22);
    if (rng_.PerMille(300)) id += ":R" + std::to_string(rng_.Range(2, 4));
    return id;
  }

  void BeginLine() { now_us_ += rng_.Range(1, 400); }
  void EndLine(std::size_t line_start) {
    out_ += '\n';
    if (out_.size() - line_start > kMaxLineBytes) Die("internal error: line longer than 4096");
    ++c_.records;
  }

  void AddUser(std::uint32_t user, Service service, bool success) {
    BeginLine();
    const std::size_t start = out_.size();
    out_ += "ADD-USER\t";
    AppendTabEscaped(out_, users_[user]);
    out_ += '\t';
    out_ += ServiceName(service);
    out_ += '\t';
    std::array<unsigned char, 5 + kAuthStatsBytes> buf{};
    std::memcpy(buf.data(), "auth", 5);
    // auth_successes, auth_master_successes, auth_failures, db_tempfails, cache hits, misses
    PutLe(buf.data() + 5 + (success ? 0 : 8), 1, 4);
    AppendBase64(out_, buf.data(), buf.size());
    EndLine(start);
    ++c_.add_user;
    (success ? auth_successes_ : auth_failures_) += 1;
  }

  void StartSession() {
    Session s;
    s.user = static_cast<std::uint32_t>(PickUser());
    const std::uint64_t roll = rng_.Below(100);
    s.service = roll < o_.lmtp_percent                     ? Service::kLmtp
                : roll < o_.lmtp_percent + o_.pop3_percent ? Service::kPop3
                                                           : Service::kImap;
    s.pid = 2000 + static_cast<std::uint32_t>(started_++ % 4000000);
    if (s.service == Service::kLmtp) {
      // Deliveries do not authenticate; the CONNECT follows directly.
      s.work_left = static_cast<std::uint32_t>(rng_.Range(1, 2));
      pool_.push_back(std::move(s));
      return;
    }
    s.ip = PickIp(s.user);
    if (s.service == Service::kImap) {
      // Mostly short sessions (mean about a dozen commands), one in a hundred very long.
      s.work_left = rng_.PerMille(10)
                        ? static_cast<std::uint32_t>(rng_.Range(100, 400))
                        : static_cast<std::uint32_t>(1 + rng_.Below(12) + rng_.Below(12));
    } else {
      s.work_left = static_cast<std::uint32_t>(rng_.Range(1, 4));
    }
    // One login in sixteen starts with a mistyped password.
    if (rng_.PerMille(60)) AddUser(s.user, s.service, /*success=*/false);
    AddUser(s.user, s.service, /*success=*/true);
    pool_.push_back(std::move(s));
  }

  void Remove(std::size_t i) {
    if (i + 1 != pool_.size()) pool_[i] = std::move(pool_.back());
    pool_.pop_back();
  }

  void Advance(std::size_t i, std::uint64_t slack) {
    Session& s = pool_[i];
    switch (s.state) {
      case State::kAuthed:
        // A CONNECT commits to two more records (final update, DISCONNECT); without room for
        // them the client gives up after authenticating.
        if (slack < 3) {
          Remove(i);
          return;
        }
        Connect(s);
        return;
      case State::kActive:
        Activity(s);
        return;
      case State::kDisconnectPending:
        Disconnect(s);
        Remove(i);
        return;
    }
  }

  // Called when the remaining records are exactly those needed to close the open sessions.
  void DrainOne() {
    while (!pool_.empty()) {
      Session& s = pool_.back();
      if (s.state == State::kAuthed) {
        pool_.pop_back();
        continue;
      }
      if (s.state == State::kActive) {
        FinalUpdate(s);
      } else {
        Disconnect(s);
        pool_.pop_back();
      }
      return;
    }
    Die("internal error: record budget without open sessions");
  }

  void Connect(Session& s) {
    BeginLine();
    ++serial_;
    std::string lip, rip;
    if (s.service == Service::kLmtp) {
      // LMTP over a UNIX socket: lip= and rip= present but empty (capture).
      s.id = StorageSessionId(serial_);
    } else {
      const IpAddr ip = ClientIp(s.ip);
      s.id = LoginSessionId(now_us_, ip);
      lip = ip.v6 ? "2001:db8::25" : "192.0.2.25";
      rip = ip.text;
    }
    // Login ids carry a strictly increasing timestamp, storage ids a serial: all unique, so
    // the server never sees "Duplicate session ID".
    const std::size_t start = out_.size();
    out_ += "CONNECT\t";
    out_ += s.id;
    out_ += '\t';
    AppendTabEscaped(out_, users_[s.user]);
    out_ += '\t';
    out_ += ServiceName(s.service);
    out_ += '\t';
    out_ += std::to_string(s.pid);
    out_ += "\tlip=";
    out_ += lip;
    out_ += "\trip=";
    out_ += rip;
    EndLine(start);
    ++c_.connect;
    s.state = State::kActive;
    need_ += 2;
  }

  MailStats Cost(std::uint32_t cost, bool reads_mail) {
    MailStats d;
    d.user_cpu_us = rng_.Range(5, 120 * cost);
    d.sys_cpu_us = rng_.Range(0, 40 * cost);
    d.clock_us = d.user_cpu_us + d.sys_cpu_us + rng_.Range(0, 400 * cost);
    d.min_faults = static_cast<std::uint32_t>(rng_.Below(10 * cost));
    d.maj_faults = rng_.PerMille(5) ? 1 : 0;
    d.vol_cs = static_cast<std::uint32_t>(rng_.Below(2 * cost));
    d.invol_cs = rng_.PerMille(150) ? 1 : 0;
    d.disk_input = rng_.PerMille(30) ? 4096 * rng_.Range(1, cost) : 0;
    d.disk_output = 4096 * rng_.Below(cost);
    d.read_count = static_cast<std::uint32_t>(rng_.Range(1, 2 * cost));
    d.write_count = static_cast<std::uint32_t>(rng_.Range(1, 2 * cost));
    d.read_bytes = rng_.Range(100, 300 * cost);
    d.write_bytes = rng_.Range(20, 800 * cost);
    if (reads_mail) {
      d.lookup_path = static_cast<std::uint32_t>(rng_.Below(cost));
      d.files_read_count = static_cast<std::uint32_t>(rng_.Below(cost));
      d.files_read_bytes =
          1000 * static_cast<std::uint64_t>(d.files_read_count) * rng_.Range(1, 40);
      d.cache_hits = rng_.Below(2 * cost);
    }
    return d;
  }

  void AppendArgs(std::string& a, Args kind) {
    char buf[256];
    const std::uint64_t n = rng_.Range(1, 5000);
    switch (kind) {
      case Args::kNone:
        break;
      case Args::kMailbox:
        a += kMailboxes[rng_.Below(std::size(kMailboxes))];
        break;
      case Args::kStatus:
        a += kMailboxes[rng_.Below(std::size(kMailboxes))];
        a += rng_.PerMille(500) ? " (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)" : " (MESSAGES)";
        break;
      case Args::kFetch:
        if (rng_.PerMille(400)) {
          a += "1:* (FLAGS)";
        } else {
          std::snprintf(buf, sizeof(buf),
                        "%llu:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject "
                        "Date Message-ID) ])",
                        static_cast<unsigned long long>(n));
          a += buf;
        }
        break;
      case Args::kUidFetch:
        if (rng_.PerMille(5)) {
          // A long sequence set, as clients send after a big search: exercises long lines.
          std::uint64_t uid = n;
          while (a.size() < 3000) {
            a += std::to_string(uid) + ":" + std::to_string(uid + rng_.Range(1, 9)) + ",";
            uid += rng_.Range(11, 40);
          }
          a.back() = ' ';
          a += "(UID FLAGS)";
        } else if (rng_.PerMille(500)) {
          std::snprintf(buf, sizeof(buf), "%llu (UID RFC822.SIZE BODY.PEEK[])",
                        static_cast<unsigned long long>(n));
          a += buf;
        } else {
          std::snprintf(buf, sizeof(buf), "%llu:* (UID FLAGS) (CHANGEDSINCE %llu)",
                        static_cast<unsigned long long>(n),
                        static_cast<unsigned long long>(n * 7 + 1));
          a += buf;
        }
        break;
      case Args::kUidStore:
        std::snprintf(buf, sizeof(buf), "%llu +FLAGS.SILENT (\\Seen)",
                      static_cast<unsigned long long>(n));
        a += buf;
        break;
      case Args::kUidSearch:
        a += rng_.PerMille(500) ? "UNSEEN" : "SINCE 1-Nov-2026";
        break;
      case Args::kSearch:
        a += rng_.PerMille(400) ? "ALL" : "SUBJECT \"invoice\"";
        break;
      case Args::kStore:
        std::snprintf(buf, sizeof(buf), "%llu +FLAGS (\\Deleted)",
                      static_cast<unsigned long long>(n));
        a += buf;
        break;
      case Args::kAppend: {
        // One draw per statement: argument evaluation order differs between compilers, and
        // the stream must not.
        const auto minute = static_cast<unsigned>(rng_.Below(60));
        const auto second = static_cast<unsigned>(rng_.Below(60));
        const auto size = static_cast<unsigned long long>(rng_.Range(300, 200000));
        std::snprintf(buf, sizeof(buf),
                      "Sent (\\Seen) \"22-Nov-2026 00:%02u:%02u +0000\" <%llu byte literal>",
                      minute, second, size);
        a += buf;
        break;
      }
      case Args::kList:
        a += rng_.PerMille(700) ? "\"\" *" : "\"\" %";
        break;
      case Args::kCopy:
        a += std::to_string(n);
        a += " Archive";
        break;
      case Args::kCreate:
        a += "Archive/2026";
        break;
      case Args::kEnable:
        a += "CONDSTORE QRESYNC";
        break;
    }
  }

  const CommandKind& PickCommand() {
    std::uint64_t r = rng_.Below(total_weight_);
    for (const auto& kind : kCommands) {
      if (r < kind.weight) return kind;
      r -= kind.weight;
    }
    return kCommands[0];
  }

  void CommandLine(Session& s, bool is_new, std::uint32_t cmd_id, std::string_view args) {
    BeginLine();
    const std::size_t start = out_.size();
    out_ += "UPDATE-CMD\t";
    out_ += s.id;
    out_ += '\t';
    out_ += std::to_string(cmd_id);
    out_ += is_new ? "\t\t" : "\tc\t";
    if (is_new) {
      // Name and args are written raw; the plugin cuts args so the line fits in PIPE_BUF.
      out_ += s.cmd_kind->name;
      out_ += '\t';
      const std::size_t fixed = out_.size() - start + 1 + kMailPayloadChars + 1;
      out_ += args.substr(0, std::min(args.size(), kMaxLineBytes - fixed));
      out_ += '\t';
    }
    AppendMailPayload(out_, s.cmd);
    EndLine(start);
  }

  void NewCommand(Session& s, const CommandKind& kind) {
    s.cmd_kind = &kind;
    s.cmd = Cost(kind.cost, kind.cost >= 5);
    s.total.Add(s.cmd);
    s.dirty = true;
    // Only long-running commands report again while they run; APPEND always does once its
    // literal has arrived (capture).
    s.conts_left = 0;
    if (kind.args == Args::kAppend) {
      s.conts_left = 1;
    } else if (kind.max_continuations > 0 && rng_.PerMille(250)) {
      s.conts_left = static_cast<std::uint32_t>(rng_.Range(1, kind.max_continuations));
    }
    std::string args;
    AppendArgs(args, kind.args);
    CommandLine(s, true, s.next_cmd_id++, args);
    ++c_.update_cmd_new;
  }

  void Continuation(Session& s) {
    const MailStats more = Cost(s.cmd_kind->cost, true);
    s.cmd.Add(more);
    s.total.Add(more);
    s.dirty = true;
    --s.conts_left;
    CommandLine(s, false, s.next_cmd_id - 1, {});
    ++c_.update_cmd_cont;
  }

  void SessionUpdate(Session& s) {
    BeginLine();
    const std::size_t start = out_.size();
    out_ += "UPDATE-SESSION\t";
    out_ += s.id;
    out_ += '\t';
    AppendMailPayload(out_, s.total);
    EndLine(start);
    ++c_.update_session;
  }

  void Activity(Session& s) {
    if (s.service != Service::kImap) {
      // POP3 and LMTP have no command records; their work shows up in session updates only.
      if (s.work_left == 0) return FinalUpdate(s);
      --s.work_left;
      s.total.Add(Cost(s.service == Service::kPop3 ? 8 : 5, true));
      return SessionUpdate(s);
    }
    if (s.conts_left > 0 && rng_.PerMille(700)) return Continuation(s);
    if (s.dup_due && rng_.PerMille(400)) {
      s.dup_due = false;
      return SessionUpdate(s);
    }
    if (s.dirty && rng_.PerMille(220)) {
      s.total.Add(Cost(1, false));  // ioloop work between commands
      s.dirty = false;
      s.dup_due = rng_.PerMille(500);
      return SessionUpdate(s);
    }
    if (s.work_left > 0) {
      --s.work_left;
      // Most clients end with LOGOUT, the rest just drop the connection.
      if (s.work_left == 0 && rng_.PerMille(700)) return NewCommand(s, kLogout);
      return NewCommand(s, PickCommand());
    }
    if (s.conts_left > 0) return Continuation(s);
    FinalUpdate(s);
  }

  // Sent at user deinit, right before DISCONNECT; carries the session's final totals.
  void FinalUpdate(Session& s) {
    SessionUpdate(s);
    read_bytes_ += s.total.read_bytes;
    cache_hits_ += s.total.cache_hits;
    s.state = State::kDisconnectPending;
    --need_;
  }

  void Disconnect(Session& s) {
    BeginLine();
    const std::size_t start = out_.size();
    out_ += "DISCONNECT\t";
    out_ += s.id;
    EndLine(start);
    ++c_.disconnect;
    --need_;
  }

  const Options& o_;
  Rng rng_;
  std::vector<std::string> users_;
  std::uint64_t total_weight_ = 0;
  std::vector<Session> pool_;
  bool ramped_ = false;     // the pool has been full once
  std::uint64_t need_ = 0;  // records still owed to close every connected session
  std::uint64_t now_us_ = kStartUsec;
  std::uint64_t serial_ = 0;   // connected sessions so far
  std::uint64_t started_ = 0;  // sessions started so far
  std::uint64_t read_bytes_ = 0, cache_hits_ = 0, auth_successes_ = 0, auth_failures_ = 0;
  StreamCounts c_;
  std::string out_;
};

void CountLine(std::string_view line, StreamCounts& c) {
  ++c.records;
  const std::string_view cmd = line.substr(0, line.find('\t'));
  if (cmd == "CONNECT") {
    ++c.connect;
  } else if (cmd == "DISCONNECT") {
    ++c.disconnect;
  } else if (cmd == "UPDATE-SESSION") {
    ++c.update_session;
  } else if (cmd == "ADD-USER") {
    ++c.add_user;
  } else if (cmd == "UPDATE-CMD") {
    // UPDATE-CMD <session> <id> <flags> ...: a record is a new command unless flags hold 'c'.
    std::size_t pos = 0;
    for (int i = 0; i < 3 && pos != std::string_view::npos; ++i) pos = line.find('\t', pos + 1);
    const std::string_view flags = pos == std::string_view::npos
                                       ? std::string_view{}
                                       : line.substr(pos + 1, line.find('\t', pos + 1) - pos - 1);
    (flags.find('c') == std::string_view::npos ? c.update_cmd_new : c.update_cmd_cont) += 1;
  } else {
    ++c.other;
  }
}

// fifotap capture lines look like `<time> len=<n> <escaped line>` with \t \n \\ \xNN escapes.
bool IsCaptureLine(std::string_view line) {
  const std::size_t sp = line.find(' ');
  return sp != std::string_view::npos && sp > 0 && line.substr(sp + 1, 4) == "len=" &&
         (line[0] >= '0' && line[0] <= '9');
}

std::string UnescapeCapture(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t body = line.find(' ', line.find(' ') + 1);
    if (!IsCaptureLine(line) || body == std::string_view::npos) continue;
    line.remove_prefix(body + 1);
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '\\' || i + 1 == line.size()) {
        out += line[i];
        continue;
      }
      const char e = line[++i];
      if (e == 't') {
        out += '\t';
      } else if (e == 'n') {
        out += '\n';
      } else if (e == 'x' && i + 2 < line.size()) {
        unsigned v = 0;
        std::from_chars(line.data() + i + 1, line.data() + i + 3, v, 16);
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += e;
      }
    }
  }
  return out;
}

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

Stream LoadReplay(const std::string& path) {
  Stream s{ReadFile(path), {}};
  const std::string_view first(s.bytes.data(), std::min<std::size_t>(s.bytes.size(), 4096));
  std::size_t p = 0;
  while (p < first.size() && first[p] == '#') {
    const std::size_t eol = first.find('\n', p);
    p = eol == std::string_view::npos ? first.size() : eol + 1;
  }
  if (p < first.size() && IsCaptureLine(first.substr(p))) s.bytes = UnescapeCapture(s.bytes);
  if (!s.bytes.empty() && s.bytes.back() != '\n') s.bytes += '\n';
  std::string_view rest(s.bytes);
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    if (eol + 1 > kMaxLineBytes) {
      std::fprintf(stderr, "old_stats_load: warning: line over 4096 bytes\n");
    }
    CountLine(rest.substr(0, eol), s.counts);
    rest.remove_prefix(eol + 1);
  }
  s.counts.bytes = s.bytes.size();
  return s;
}

void WriteAll(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) Die("write " + path + ": " + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Writes whole lines in chunks of up to chunk_bytes. A FIFO is opened non-blocking first so a
// missing reader is an error instead of a hang, then switched to blocking writes.
double WriteStream(const std::string& path, std::string_view data, std::size_t chunk_bytes) {
  struct stat st {};
  int fd;
  if (stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
    fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENXIO) Die("no reader on FIFO " + path);
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  } else {
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (fd < 0) Die("open " + path + ": " + std::strerror(errno));
  const auto start = std::chrono::steady_clock::now();
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t end = std::min(data.size(), pos + chunk_bytes);
    if (end < data.size()) {
      const std::size_t nl = data.rfind('\n', end - 1);
      end = nl != std::string_view::npos && nl >= pos ? nl + 1 : data.find('\n', end) + 1;
      if (end == 0) end = data.size();
    }
    WriteAll(fd, data.data() + pos, end - pos, path);
    pos = end;
  }
  if (close(fd) != 0) Die("close " + path + ": " + std::strerror(errno));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void PrintSummary(const StreamCounts& c) {
  std::printf(
      "records=%llu bytes=%llu connect=%llu disconnect=%llu update_session=%llu "
      "update_cmd_new=%llu update_cmd_cont=%llu add_user=%llu other=%llu "
      "expect_num_logins=%llu expect_num_cmds=%llu",
      static_cast<unsigned long long>(c.records), static_cast<unsigned long long>(c.bytes),
      static_cast<unsigned long long>(c.connect), static_cast<unsigned long long>(c.disconnect),
      static_cast<unsigned long long>(c.update_session),
      static_cast<unsigned long long>(c.update_cmd_new),
      static_cast<unsigned long long>(c.update_cmd_cont),
      static_cast<unsigned long long>(c.add_user), static_cast<unsigned long long>(c.other),
      static_cast<unsigned long long>(c.connect),
      static_cast<unsigned long long>(c.update_cmd_new));
  const auto opt = [](const char* name, const std::optional<std::uint64_t>& v) {
    if (v) std::printf(" %s=%llu", name, static_cast<unsigned long long>(*v));
  };
  opt("expect_read_bytes", c.read_bytes);
  opt("expect_mail_cache_hits", c.mail_cache_hits);
  opt("expect_auth_successes", c.auth_successes);
  opt("expect_auth_failures", c.auth_failures);
  std::printf("\n");
}

constexpr char kUsage[] =
    "usage: old_stats_load [options] (--write-file FILE | --out PATH)\n"
    "       old_stats_load --in FILE --out PATH\n"
    "Generates (or replays with --in) a stream of Dovecot old-stats FIFO records and writes it\n"
    "with blocking writes of whole lines. --write-file pre-generates into a regular file;\n"
    "--out writes into a FIFO (which must have a reader) or a file. The whole stream is built\n"
    "in memory before writing starts. Prints one summary line on stdout.\n"
    "  --records N       records in the stream (default 1000000)\n"
    "  --users N         distinct users (default 10000)\n"
    "  --domains N       distinct domains (default 100)\n"
    "  --ips N           distinct client addresses (default 2000)\n"
    "  --concurrency N   sessions connected at once (default 500)\n"
    "  --pop3-percent N  share of POP3 sessions (default 12)\n"
    "  --lmtp-percent N  share of LMTP deliveries (default 8)\n"
    "  --seed N          generator seed (default 1)\n"
    "  --chunk-bytes N   write size, rounded down to whole lines (default 1048576)\n"
    "  --in FILE         replay FILE: raw lines, or a fifotap capture (\"<t> len=<n> <line>\")\n";

struct NumberFlag {
  std::string_view name;
  std::uint64_t Options::*field;
};
constexpr NumberFlag kNumberFlags[] = {
    {"--records", &Options::records},
    {"--users", &Options::users},
    {"--domains", &Options::domains},
    {"--ips", &Options::ips},
    {"--seed", &Options::seed},
    {"--concurrency", &Options::concurrency},
    {"--pop3-percent", &Options::pop3_percent},
    {"--lmtp-percent", &Options::lmtp_percent},
    {"--chunk-bytes", &Options::chunk_bytes},
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
  if (o.out.empty() == o.write_file.empty()) {
    Die(std::string("give one of --out, --write-file\n") + kUsage);
  }
  if (o.users == 0 || o.domains == 0 || o.ips == 0 || o.concurrency == 0 || o.chunk_bytes == 0) {
    Die("--users, --domains, --ips, --concurrency and --chunk-bytes must be positive");
  }
  if (o.users > 0xffffffffULL) Die("--users must fit in 32 bits");
  if (o.pop3_percent + o.lmtp_percent > 100) Die("--pop3-percent + --lmtp-percent > 100");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that goes away must show up as EPIPE and an error message, not a silent death.
  std::signal(SIGPIPE, SIG_IGN);
  const Options o = ParseOptions(argc, argv);
  const Stream stream = o.in.empty() ? Generator(o).Generate() : LoadReplay(o.in);
  if (!o.write_file.empty()) {
    WriteStream(o.write_file, stream.bytes, o.chunk_bytes);
    PrintSummary(stream.counts);
    return 0;
  }
  const double seconds = WriteStream(o.out, stream.bytes, o.chunk_bytes);
  PrintSummary(stream.counts);
  std::printf("wrote records=%llu bytes=%llu seconds=%.3f records_per_second=%.0f\n",
              static_cast<unsigned long long>(stream.counts.records),
              static_cast<unsigned long long>(stream.counts.bytes), seconds,
              seconds > 0 ? static_cast<double>(stream.counts.records) / seconds : 0.0);
  return 0;
}
