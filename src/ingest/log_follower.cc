#include "ingest/log_follower.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <tuple>
#include <utility>

#include "ingest/log_reader.h"

namespace mailscope::ingest {

namespace {

using Clock = std::chrono::steady_clock;

// Reading one stream stops after this many blocks so that the others get
// their turn; the round then starts again without sleeping.
constexpr int kRoundBlocks = 8;
// Queue bytes a chunk costs beyond its lines, so that position-only chunks
// are bounded too.
constexpr std::size_t kChunkOverhead = 256;
// Predecessors kept open while a stream catches up (the newest ones).
constexpr std::size_t kMaxPredecessors = 256;
// A held partial line gives its memory back past this size.
constexpr std::size_t kKeepPartialBytes = 64 << 10;
// Listings of the rotated files taken again when one vanished before it
// could be opened (logrotate renaming or compressing meanwhile).
constexpr int kListAttempts = 3;
// How much older than Start() a rotated file's mtime may be and still be
// new: file timestamps come from a coarse clock, on some filesystems in
// whole seconds.
constexpr std::int64_t kMtimeMarginNs = 1'000'000'000;

std::string SystemError(const std::string& name, const char* what) {
  return name + ": " + what + ": " + std::strerror(errno);
}

std::int64_t MtimeNs(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::string_view BaseName(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string DirName(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }

// Reads up to `n` bytes at `offset`, fewer only at the end of the file.
Result<std::string> PreadUpTo(int fd, std::uint64_t offset, std::size_t n,
                              const std::string& name) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Unavailable(SystemError(name, "read"));
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

enum class Role {
  kCatchUp,  // a finished file: read to its end, then the next
  kLive,     // the file the stream's path names: it may grow, be truncated or renamed
  kRenamed,  // was live; read on until finished, then the successors
};

}  // namespace

// One open file of a stream. The descriptor pins it: it stays readable
// through renames, compression of a copy and deletion.
struct LogFollower::File {
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    reader.reset();
    if (fd >= 0) ::close(fd);
  }

  int fd = -1;       // -1: a placeholder for a listed file that is not open
  std::string name;  // path when opened (listed)
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t mtime_ns = 0;
  LogFormat format = LogFormat::kPlain;
  Role role = Role::kCatchUp;
  std::string head;  // first content bytes, up to kFingerprintBytes
  bool head_known = false;
  std::uint64_t start = 0;  // content offset where reading begins
  std::optional<LogReader> reader;
  std::uint64_t seen_size = 0;    // kLive: size at the last check
  Clock::time_point last_growth;  // kRenamed: when it last grew
  bool finished_mark = false;     // kRenamed: multilog marked it finished (mode 744)
  std::string unread;             // a placeholder: why it is not open
  // LogFingerprint(head) for head.size() == hashed_len. The head only grows,
  // except when a truncation replaces it (which resets hashed_len).
  mutable std::size_t hashed_len = SIZE_MAX;
  mutable std::uint64_t hash = 0;

  std::uint64_t Fingerprint() const {
    if (hashed_len != head.size()) {
      hash = LogFingerprint(head);
      hashed_len = head.size();
    }
    return hash;
  }
  bool Matches(const LogPosition& p) const {
    return head_known && head.size() >= p.fingerprint_len &&
           LogFingerprint(std::string_view(head).substr(0, p.fingerprint_len)) == p.fingerprint;
  }
};

struct LogFollower::Stream {
  std::string path;  // the live path: the stream's name
  bool initial = false;
  std::optional<LogPosition> saved;
  bool begun = false;
  std::unique_ptr<File> file;              // being read
  std::deque<std::unique_ptr<File>> next;  // then these, in order; the live file last
  std::uint64_t line_start = 0;            // content offset in `file` of the next line
  std::string partial;                     // the incomplete line from line_start (bounded)
  bool skipping = false;  // the held line was cut: the rest is skipped up to its LF
  bool resync = false;    // started inside a line: skip up to the next LF
  std::string error;      // of the last poll
  bool error_now = false;
};

// ---------------------------------------------------------------------------
// Positions and names.

std::uint64_t LogFingerprint(std::string_view head) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : head) {
    h ^= c;
    h *= 1099511628211ull;  // FNV-1a 64 prime
  }
  return h;
}

std::string LogPosition::ToString() const {
  char hex[17];
  auto r = std::to_chars(hex, hex + sizeof hex, fingerprint, 16);
  std::string out = "1:";
  out.append(static_cast<std::size_t>(16 - (r.ptr - hex)), '0');
  out.append(hex, r.ptr);
  for (std::uint64_t n : {std::uint64_t{fingerprint_len}, offset, dev, ino}) {
    out += ':';
    out += std::to_string(n);
  }
  out += ':';
  out += path;
  return out;
}

Result<LogPosition> LogPosition::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Rejected("bad_position", "log position \"" + std::string(text.substr(0, 80)) +
                                        "\": " + std::string(why));
  };
  if (text.substr(0, 2) != "1:") return bad("not version 1");
  std::string_view rest = text.substr(2);
  std::uint64_t fields[5];
  for (int i = 0; i < 5; ++i) {
    const std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("too few fields");
    const std::string_view field = rest.substr(0, colon);
    auto [ptr, ec] =
        std::from_chars(field.data(), field.data() + field.size(), fields[i], i == 0 ? 16 : 10);
    if (ec != std::errc() || ptr != field.data() + field.size() || (i == 0 && field.size() > 16)) {
      return bad("a field is not a number");
    }
    rest.remove_prefix(colon + 1);
  }
  if (fields[1] > kFingerprintBytes) return bad("fingerprint length over 1024");
  LogPosition p;
  p.fingerprint = fields[0];
  p.fingerprint_len = static_cast<std::uint32_t>(fields[1]);
  p.offset = fields[2];
  p.dev = fields[3];
  p.ino = fields[4];
  p.path = std::string(rest);
  return p;
}

std::optional<RotatedName> MatchRotatedName(std::string_view live_name, std::string_view name) {
  if (live_name.empty()) return std::nullopt;
  std::string_view rest = name;
  for (std::string_view ext : {".gz", ".zst"}) {
    if (rest.size() > ext.size() && rest.ends_with(ext)) {
      rest.remove_suffix(ext.size());
      break;
    }
  }
  RotatedName out;
  if (live_name == "current" && rest.size() == 27 && rest[0] == '@' &&
      (rest.ends_with(".s") || rest.ends_with(".u"))) {
    const std::string_view label = rest.substr(1, 24);
    if (std::all_of(label.begin(), label.end(), IsLowerHex)) {
      out.kind = RotatedKind::kMultilog;
      out.label = label;
      return out;
    }
    return std::nullopt;
  }
  if (rest.size() <= live_name.size() + 1 || !rest.starts_with(live_name)) return std::nullopt;
  const char sep = rest[live_name.size()];
  const std::string_view suffix = rest.substr(live_name.size() + 1);
  if (sep == '.') {
    if (suffix.size() > 19 || !std::all_of(suffix.begin(), suffix.end(), IsDigit)) {
      return std::nullopt;
    }
    out.kind = RotatedKind::kNumbered;
    std::from_chars(suffix.data(), suffix.data() + suffix.size(), out.number);
    return out;
  }
  if (sep == '-' && IsDigit(suffix.front()) &&
      std::all_of(suffix.begin(), suffix.end(),
                  [](char c) { return IsDigit(c) || c == '-' || c == '_'; })) {
    out.kind = RotatedKind::kDated;
    out.label = suffix;
    return out;
  }
  return std::nullopt;
}

std::vector<RotatedFile> ListRotatedFiles(const std::string& live_path) {
  std::vector<RotatedFile> out;
  const std::string dir = DirName(live_path);
  const std::string_view live_name = BaseName(live_path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view entry = e->d_name;
    const std::optional<RotatedName> name = MatchRotatedName(live_name, entry);
    if (!name) continue;
    RotatedFile f;
    f.path = (dir == "/" ? "" : dir) + "/" + std::string(entry);
    struct stat st;
    if (::stat(f.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    f.kind = name->kind;
    f.label = name->label;
    f.number = name->number;
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.mtime_ns = MtimeNs(st);
    out.push_back(std::move(f));
  }
  ::closedir(d);
  // A changed rotation scheme leaves files of two kinds: the kind written
  // to most recently is the newer one.
  std::int64_t newest[3] = {INT64_MIN, INT64_MIN, INT64_MIN};
  for (const RotatedFile& f : out) {
    auto& n = newest[static_cast<int>(f.kind)];
    n = std::max(n, f.mtime_ns);
  }
  std::sort(out.begin(), out.end(), [&](const RotatedFile& a, const RotatedFile& b) {
    const int ka = static_cast<int>(a.kind), kb = static_cast<int>(b.kind);
    if (ka != kb) return std::pair(newest[ka], ka) < std::pair(newest[kb], kb);
    if (a.kind == RotatedKind::kNumbered && a.number != b.number) return a.number > b.number;
    if (a.label != b.label) return a.label < b.label;
    return std::pair(a.mtime_ns, a.path) < std::pair(b.mtime_ns, b.path);
  });
  return out;
}

Result<StartFrom> ParseStartFrom(std::string_view text) {
  if (text == "end") return StartFrom::kEnd;
  if (text == "start") return StartFrom::kStart;
  return InvalidArgument("from: \"" + std::string(text) + "\" is neither \"end\" nor \"start\"");
}

// ---------------------------------------------------------------------------
// Queue side.

LogFollower::LogFollower(LogFollowerOptions options) : options_(std::move(options)) {}

LogFollower::~LogFollower() { Stop(); }

Status LogFollower::Start(std::map<std::string, LogPosition> saved) {
  if (options_.patterns.empty()) return InvalidArgument("log follower: no file pattern");
  if (options_.poll_interval.count() <= 0 || options_.max_line_bytes == 0 ||
      options_.chunk_bytes == 0 || options_.queue_bytes == 0 || options_.read_block_bytes == 0) {
    return InvalidArgument("log follower: poll interval and sizes must be positive");
  }
  {
    std::lock_guard lock(mu_);
    if (started_) return FailedPrecondition("log follower: already started");
    started_ = true;
  }
  saved_ = std::move(saved);
  struct timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  new_since_ns_ =
      static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec - kMtimeMarginNs;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  return Status::Ok();
}

void LogFollower::Stop() {
  std::lock_guard lock(stop_mu_);
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

bool LogFollower::TryPop(LogChunk& chunk) {
  std::lock_guard lock(mu_);
  if (queue_.empty()) return false;
  chunk = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

void LogFollower::Release(LogChunk&& chunk) {
  {
    std::lock_guard lock(mu_);
    in_use_ -= std::min(in_use_, chunk.charge);
    chunk.charge = 0;
    const std::size_t keep = std::min<std::size_t>(
        64, options_.queue_bytes / std::max<std::size_t>(options_.chunk_bytes, 1) + 2);
    if (free_.size() < keep && chunk.lines.capacity() <= 2 * options_.chunk_bytes) {
      chunk.lines.clear();
      free_.push_back(std::move(chunk.lines));
    }
  }
  room_.notify_all();
}

bool LogFollower::Push(LogChunk&& chunk) {
  chunk.charge = chunk.lines.size() + kChunkOverhead;
  const std::size_t lines = chunk.line_count;
  bool was_empty;
  {
    std::unique_lock lock(mu_);
    auto fits = [&] { return in_use_ == 0 || in_use_ + chunk.charge <= options_.queue_bytes; };
    if (!fits()) {
      queue_waits_.fetch_add(1, std::memory_order_relaxed);
      if (!room_.wait(lock, stop_, fits)) return false;  // stopping
    }
    was_empty = queue_.empty();
    in_use_ += chunk.charge;
    queue_.push_back(std::move(chunk));
  }
  lines_.fetch_add(lines, std::memory_order_relaxed);
  chunks_.fetch_add(1, std::memory_order_relaxed);
  if (was_empty && options_.on_ready) options_.on_ready();
  return true;
}

LogFollowerFigures LogFollower::figures() const {
  LogFollowerFigures f;
  f.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  f.lines = lines_.load(std::memory_order_relaxed);
  f.chunks = chunks_.load(std::memory_order_relaxed);
  f.rotations = rotations_.load(std::memory_order_relaxed);
  f.truncations = truncations_.load(std::memory_order_relaxed);
  f.lost_rotations = lost_rotations_.load(std::memory_order_relaxed);
  f.oversize_lines = oversize_.load(std::memory_order_relaxed);
  f.read_errors = read_errors_.load(std::memory_order_relaxed);
  f.queue_waits = queue_waits_.load(std::memory_order_relaxed);
  f.polls = polls_.load(std::memory_order_relaxed);
  f.streams = stream_count_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    f.queued_bytes = in_use_;
  }
  std::lock_guard lock(status_mu_);
  f.last_error = last_error_;
  return f;
}

std::vector<LogStreamStatus> LogFollower::streams() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

// ---------------------------------------------------------------------------
// Chunks.

LogPosition LogFollower::PositionOf(const Stream& s) const {
  LogPosition p;
  p.offset = s.line_start;
  if (s.file == nullptr) return p;
  const File& f = *s.file;
  p.fingerprint = f.Fingerprint();
  p.fingerprint_len = static_cast<std::uint32_t>(f.head.size());
  p.path = f.name;
  p.dev = f.dev;
  p.ino = f.ino;
  return p;
}

void LogFollower::StartChunk(Stream& s) {
  building_.stream = s.path;
  building_.file = s.file->name;
  building_.begin = PositionOf(s);
  building_.line_count = 0;
  building_.charge = 0;
  building_.lines.clear();
  {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      building_.lines = std::move(free_.back());
      free_.pop_back();
    }
  }
  building_open_ = true;
}

void LogFollower::Flush(Stream& s) {
  if (!building_open_) return;
  building_.end = PositionOf(s);
  building_open_ = false;
  Push(std::move(building_));
  building_ = LogChunk();
}

void LogFollower::PushPosition(Stream& s) {
  Flush(s);
  StartChunk(s);
  Flush(s);
}

void LogFollower::AppendLine(Stream& s, const char* data, std::size_t n, std::uint64_t end_offset) {
  if (building_open_ && building_.line_count > 0 &&
      building_.lines.size() + n + 1 > options_.chunk_bytes) {
    Flush(s);
  }
  if (!building_open_) StartChunk(s);
  building_.lines.append(data, n);
  building_.lines.push_back('\n');
  ++building_.line_count;
  s.line_start = end_offset;
}

void LogFollower::EmitHeld(Stream& s, std::uint64_t end_offset) {
  AppendLine(s, s.partial.data(), s.partial.size(), end_offset);
  s.partial.clear();
  if (s.partial.capacity() > kKeepPartialBytes) std::string().swap(s.partial);
}

// Complete lines go into chunks; an incomplete end is held until its LF.
// A line over the bound keeps its first max_line_bytes and is counted; the
// rest of it is skipped, and it is handed over when its LF comes, so every
// position handed over is a line start.
void LogFollower::Split(Stream& s, const char* data, std::size_t n, std::uint64_t base) {
  const std::size_t max = options_.max_line_bytes;
  const char* p = data;
  const char* const end = data + n;
  auto offset_of = [&](const char* q) { return base + static_cast<std::uint64_t>(q - data); };
  while (p < end) {
    const char* lf = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (s.resync || s.skipping) {
      if (lf == nullptr) return;
      p = lf + 1;
      if (s.resync) {
        s.resync = false;
        Flush(s);
        s.line_start = offset_of(p);
        PushPosition(s);  // a jump: lines follow on from a handed-over position
      } else {
        s.skipping = false;
        EmitHeld(s, offset_of(p));
      }
      continue;
    }
    const std::size_t len = static_cast<std::size_t>((lf != nullptr ? lf : end) - p);
    const std::size_t room = max - s.partial.size();
    if (lf == nullptr) {
      s.partial.append(p, std::min(len, room));
      if (len > room) {
        s.skipping = true;
        oversize_.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (len > room) oversize_.fetch_add(1, std::memory_order_relaxed);
    if (s.partial.empty()) {
      AppendLine(s, p, std::min(len, room), offset_of(lf + 1));
    } else {
      s.partial.append(p, std::min(len, room));
      EmitHeld(s, offset_of(lf + 1));
    }
    p = lf + 1;
  }
}

// ---------------------------------------------------------------------------
// Files.

Result<std::unique_ptr<LogFollower::File>> LogFollower::OpenFile(const std::string& path,
                                                                 bool live) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const bool missing = errno == ENOENT;
    std::string message = SystemError(path, "open");
    return missing ? NotFound(std::move(message)) : Unavailable(std::move(message));
  }
  auto f = std::make_unique<File>();
  f->fd = fd;
  f->name = path;
  struct stat st;
  if (::fstat(fd, &st) != 0) return Unavailable(SystemError(path, "fstat"));
  if (!S_ISREG(st.st_mode)) return Unavailable(path + ": not a regular file");
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->mtime_ns = MtimeNs(st);
  f->role = live ? Role::kLive : Role::kCatchUp;
  if (!live) {
    // Rotated files may have been compressed; the live one is written as text.
    auto magic = PreadUpTo(fd, 0, 4, path);
    if (!magic.ok()) return magic.status();
    f->format = DetectLogFormat(*magic);
  }
  return f;
}

Status LogFollower::EnsureHead(File& f) {
  if (f.head_known) return Status::Ok();
  if (f.format == LogFormat::kPlain) {
    auto head = PreadUpTo(f.fd, 0, kFingerprintBytes, f.name);
    if (!head.ok()) return head.status();
    f.head = std::move(*head);
  } else {
    // A small input block: only the first KiB of content is wanted.
    LogReader r = LogReader::OverFd(f.fd, f.name, f.format, 16 << 10);
    std::string head(kFingerprintBytes, '\0');
    std::size_t got = 0;
    while (got < head.size()) {
      auto n = r.Read(std::span<char>(head.data() + got, head.size() - got));
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      got += *n;
    }
    head.resize(got);
    f.head = std::move(head);
  }
  f.head_known = true;
  return Status::Ok();
}

// A live file shorter than kFingerprintBytes grows its head as it is read.
void LogFollower::GrowHead(File& f, std::uint64_t base, std::size_t n) {
  if (f.head.size() >= kFingerprintBytes || base > f.head.size() || base + n <= f.head.size()) {
    return;
  }
  const std::size_t from = static_cast<std::size_t>(f.head.size() - base);
  f.head.append(block_.get() + from, std::min(n - from, kFingerprintBytes - f.head.size()));
}

// A listed file is opened at once, which pins it. One that cannot be, or
// that is older than the newest kMaxPredecessors, is kept as a placeholder
// (fd -1): Chain counts it lost if it comes to be read.
//
// multilog passes a full `current` through a name of no rotated form: it
// renames it `previous`, creates the next `current`, and only then marks
// the old one finished, links it to its `@...` name and removes `previous`.
// Meanwhile that file is the newest predecessor of `current`.
std::vector<std::unique_ptr<LogFollower::File>> LogFollower::Predecessors(const Stream& s,
                                                                          const File& live) {
  const bool multilog = BaseName(s.path) == "current";
  for (int attempt = 1;; ++attempt) {
    // `previous` before the listing: a file that is no longer there has its
    // `@...` name by then.
    std::unique_ptr<File> previous;
    if (multilog) {
      const std::string dir = DirName(s.path);
      if (auto f = OpenFile((dir == "/" ? "" : dir) + "/previous", false); f.ok()) {
        previous = std::move(*f);
      }
    }
    const std::vector<RotatedFile> listed = ListRotatedFiles(s.path);
    const std::size_t first_open =
        listed.size() > kMaxPredecessors ? listed.size() - kMaxPredecessors : 0;
    std::vector<std::unique_ptr<File>> out;
    bool vanished = false;
    bool reached_live = false;
    for (std::size_t i = 0; i < listed.size(); ++i) {
      const RotatedFile& r = listed[i];
      // The live file itself among them was rotated after it was opened: it
      // and anything newer are handled when its own rotation is seen.
      if (r.dev == live.dev && r.ino == live.ino) {
        reached_live = true;
        break;
      }
      if (previous != nullptr && r.dev == previous->dev && r.ino == previous->ino) {
        previous.reset();  // linked already, not yet removed: listed here
      }
      std::string unread;
      if (i < first_open) {
        unread = "older than the newest " + std::to_string(kMaxPredecessors) + " rotated files";
      } else {
        auto f = OpenFile(r.path, false);
        if (f.ok()) {
          if ((*f)->dev == live.dev && (*f)->ino == live.ino) {
            reached_live = true;
            break;
          }
          out.push_back(std::move(*f));
          continue;
        }
        // Gone meanwhile: renamed (a fresh listing finds it) or removed.
        if (f.status().code() == StatusCode::kNotFound) vanished = true;
        unread = f.status().message();
      }
      auto placeholder = std::make_unique<File>();
      placeholder->name = r.path;
      placeholder->dev = r.dev;
      placeholder->ino = r.ino;
      placeholder->mtime_ns = r.mtime_ns;
      placeholder->unread = std::move(unread);
      out.push_back(std::move(placeholder));
    }
    // Newer than the live file, or the live file itself: not a predecessor.
    if (previous != nullptr && !reached_live &&
        (previous->dev != live.dev || previous->ino != live.ino)) {
      out.push_back(std::move(previous));
    }
    if (!vanished || attempt == kListAttempts) return out;
  }
}

// The newest predecessor holding the file of `p`: by device and inode when
// the content confirms it, else by fingerprint, a plain copy before a
// compressed one (logrotate may be compressing it right now).
std::optional<std::size_t> LogFollower::Locate(std::vector<std::unique_ptr<File>>& files,
                                               const LogPosition& p) {
  for (std::size_t i = 0; i < files.size(); ++i) {
    File& f = *files[i];
    if (f.fd >= 0 && f.dev == p.dev && f.ino == p.ino && f.format == LogFormat::kPlain &&
        EnsureHead(f).ok() && f.Matches(p)) {
      return i;
    }
  }
  std::optional<std::size_t> best;
  for (std::size_t i = files.size(); i-- > 0;) {
    File& f = *files[i];
    if (f.fd < 0 || !EnsureHead(f).ok() || !f.Matches(p)) continue;
    if (!best) {
      best = i;
      if (f.format == LogFormat::kPlain) break;
    } else if (f.format == LogFormat::kPlain && f.head == files[*best]->head) {
      best = i;
      break;
    }
  }
  return best;
}

// Reading goes on with `files` in order (the same content once), then
// `live`. `done_head` is the head of the file just finished, if any. A
// placeholder among `files` cannot be read: it is counted lost.
void LogFollower::Chain(Stream& s, std::vector<std::unique_ptr<File>> files,
                        std::unique_ptr<File> live, const std::string* done_head) {
  s.next.clear();
  for (auto& f : files) {
    if (f == nullptr) continue;
    if (f->fd < 0) {
      lost_rotations_.fetch_add(1, std::memory_order_relaxed);
      Notice(s.path + ": the rotated file " + f->name + " is passed over unread (" + f->unread +
             "); its lines are lost");
      continue;
    }
    if (EnsureHead(*f).ok()) {
      const bool seen = (done_head != nullptr && *done_head == f->head) ||
                        std::any_of(s.next.begin(), s.next.end(), [&](const auto& g) {
                          return g->head_known && g->head == f->head;
                        });
      if (seen) continue;
    }
    f->role = Role::kCatchUp;
    s.next.push_back(std::move(f));
  }
  live->role = Role::kLive;
  s.next.push_back(std::move(live));
  Activate(s);
}

// Makes the first of s.next the file being read, at its start offset, and
// tells the consumer where the stream now stands.
void LogFollower::Activate(Stream& s) {
  Flush(s);
  MS_CHECK(!s.next.empty());
  s.file = std::move(s.next.front());
  s.next.pop_front();
  File& f = *s.file;
  s.partial.clear();
  s.skipping = false;
  s.resync = false;
  Status st = EnsureHead(f);
  f.reader.emplace(LogReader::OverFd(f.fd, f.name, f.format, options_.read_block_bytes));
  if (st.ok()) st = f.reader->SeekTo(f.start);
  s.line_start = f.reader->position();
  if (!st.ok()) Error(s, st.message());
  if (f.role == Role::kLive) {
    struct stat sb;
    if (::fstat(f.fd, &sb) == 0) f.seen_size = static_cast<std::uint64_t>(sb.st_size);
  }
  PushPosition(s);
}

// Where "only new lines" starts: after the last LF, so that a line being
// written is handed over whole. Second: a last line over the bound is
// skipped instead.
std::pair<std::uint64_t, bool> LogFollower::LastLineStart(const File& f) {
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return {0, false};
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t scanned = 0;
  while (scanned < size && scanned <= options_.max_line_bytes) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(64 << 10, size - scanned));
    const std::uint64_t at = size - scanned - n;
    auto block = PreadUpTo(f.fd, at, n, f.name);
    if (!block.ok()) return {size, true};
    const void* lf = ::memrchr(block->data(), '\n', block->size());
    if (lf != nullptr) {
      return {at + static_cast<std::uint64_t>(static_cast<const char*>(lf) - block->data()) + 1,
              false};
    }
    scanned += block->size();
    if (block->size() < n) break;
  }
  if (scanned >= size) return {0, false};
  return {size, true};
}

// ---------------------------------------------------------------------------
// The reader thread.

void LogFollower::Run(std::stop_token stop) {
  stop_ = stop;
  block_ = std::make_unique<char[]>(options_.read_block_bytes);
  bool initial = true;
  while (!stop.stop_requested()) {
    Discover(initial);
    initial = false;
    bool more = false;
    for (std::size_t i = 0; i < streams_.size() && !stop.stop_requested(); ++i) {
      Stream& s = *streams_[i];
      s.error_now = false;
      more |= Poll(s);
      Flush(s);
      if (!s.error_now) s.error.clear();
      Publish(i);
    }
    polls_.fetch_add(1, std::memory_order_relaxed);
    if (!more) {
      std::unique_lock lock(sleep_mu_);
      sleep_.wait_for(lock, stop, options_.poll_interval, [] { return false; });
    }
  }
}

void LogFollower::Discover(bool initial) {
  std::vector<std::string> matches;
  for (const std::string& pattern : options_.patterns) {
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (std::size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
  }
  std::sort(matches.begin(), matches.end());
  matches.erase(std::unique(matches.begin(), matches.end()), matches.end());
  // A pattern such as dir/* also matches rotated files: they belong to the
  // stream of their live file, whose name is a prefix of theirs.
  auto rotated = [&](const std::string& m) {
    const std::string_view base = BaseName(m);
    if (base.ends_with(".gz") || base.ends_with(".zst") || MatchRotatedName("current", base)) {
      return true;
    }
    const std::size_t dir_len = m.size() - base.size();
    // multilog's file on its way from `current` to its rotated name.
    if (base == "previous" &&
        std::binary_search(matches.begin(), matches.end(), m.substr(0, dir_len) + "current")) {
      return true;
    }
    for (std::size_t i = 1; i < base.size(); ++i) {
      if (base[i] != '.' && base[i] != '-') continue;
      const std::string live = m.substr(0, dir_len + i);
      if (MatchRotatedName(base.substr(0, i), base) &&
          std::binary_search(matches.begin(), matches.end(), live)) {
        return true;
      }
    }
    return false;
  };
  for (const std::string& m : matches) {
    if (by_path_.contains(m) || rotated(m)) continue;
    struct stat st;
    if (::stat(m.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto s = std::make_unique<Stream>();
    s->path = m;
    s->initial = initial;
    if (auto it = saved_.find(m); it != saved_.end()) {
      s->saved = std::move(it->second);
      saved_.erase(it);
    }
    by_path_[m] = s.get();
    streams_.push_back(std::move(s));
    {
      std::lock_guard lock(status_mu_);
      status_.push_back(LogStreamStatus{m, "", {}, ""});
    }
    stream_count_.store(streams_.size(), std::memory_order_relaxed);
  }
}

bool LogFollower::Begin(Stream& s) {
  auto opened = OpenFile(s.path, true);
  if (!opened.ok()) {
    // Missing for a moment (a rotation under way) is no error: try again.
    if (opened.status().code() != StatusCode::kNotFound) Error(s, opened.status().message());
    return false;
  }
  std::unique_ptr<File> live = std::move(*opened);
  if (Status st = EnsureHead(*live); !st.ok()) {
    Error(s, st.message());
    return false;
  }
  struct stat sb;
  const std::uint64_t size =
      ::fstat(live->fd, &sb) == 0 ? static_cast<std::uint64_t>(sb.st_size) : 0;
  std::vector<std::unique_ptr<File>> chain;
  bool resync = false;
  if (s.saved) {
    const LogPosition& p = *s.saved;
    if (live->Matches(p) && size >= p.offset) {
      live->start = p.offset;
    } else {
      std::vector<std::unique_ptr<File>> preds = Predecessors(s, *live);
      if (auto at = Locate(preds, p)) {
        // Rotated (perhaps compressed since): the rest of it, the newer
        // ones, then the live file from its start.
        preds[*at]->start = p.offset;
        chain.assign(std::make_move_iterator(preds.begin() + static_cast<std::ptrdiff_t>(*at)),
                     std::make_move_iterator(preds.end()));
      } else if (live->Matches(p)) {
        truncations_.fetch_add(1, std::memory_order_relaxed);
        Notice(s.path + ": truncated since the saved position; reading it from its start");
      } else {
        lost_rotations_.fetch_add(1, std::memory_order_relaxed);
        Notice(s.path + ": the file of the saved position (" + p.path +
               ") is gone; what it held past offset " + std::to_string(p.offset) + " is lost");
      }
    }
  } else if (!s.initial) {
    // Found after the start, so new: the writer may have rotated it
    // already, perhaps several times, before it was first seen. What was
    // rotated from it since the start comes first; older files were there
    // before (by their mtime).
    for (std::unique_ptr<File>& f : Predecessors(s, *live)) {
      if (f->mtime_ns >= new_since_ns_) chain.push_back(std::move(f));
    }
  } else if (options_.from == StartFrom::kEnd) {
    std::tie(live->start, resync) = LastLineStart(*live);
  }
  s.saved.reset();
  s.begun = true;
  Chain(s, std::move(chain), std::move(live), nullptr);
  s.resync = resync;
  return true;
}

bool LogFollower::Poll(Stream& s) {
  if (!s.begun && !Begin(s)) return false;
  int blocks = kRoundBlocks;
  while (!stop_.stop_requested()) {
    File& f = *s.file;
    if (f.role == Role::kLive) {
      const Step step = CheckLiveSize(s);
      if (step == Step::kStop) return false;
      if (step == Step::kAgain) continue;
    }
    bool unreadable = false;
    for (;;) {
      if (blocks == 0) return true;
      const std::uint64_t base = f.reader->position();
      auto n = f.reader->Read(std::span<char>(block_.get(), options_.read_block_bytes));
      if (!n.ok()) {
        Error(s, n.status().message());
        // Corrupt compressed data: the rest of the file cannot be read.
        if (n.status().code() != StatusCode::kInvalidArgument) return false;
        unreadable = true;
        break;
      }
      if (*n == 0) break;
      --blocks;
      GrowHead(f, base, *n);
      bytes_read_.fetch_add(*n, std::memory_order_relaxed);
      if (f.role == Role::kRenamed) f.last_growth = Clock::now();
      Split(s, block_.get(), *n, base);
      if (stop_.stop_requested()) return false;
    }
    if (f.role == Role::kCatchUp || unreadable) {
      FinishFile(s);
      if (s.next.empty()) return false;  // an unreadable live file: nothing else to read
      Activate(s);
      rotations_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (f.role == Role::kLive) {
      if (!CheckRenamed(s)) return false;
      continue;  // renamed: read what came meanwhile, then decide
    }
    // kRenamed. Renamed back: live again.
    if (struct stat st;
        ::stat(s.path.c_str(), &st) == 0 && st.st_dev == f.dev && st.st_ino == f.ino) {
      f.role = Role::kLive;
      return false;
    }
    // Multilog marks a finished file with mode 744 after its last write, so
    // one more read after seeing the mark gets everything.
    if (!f.finished_mark) {
      struct stat st;
      if (::fstat(f.fd, &st) == 0 && (st.st_mode & S_IXUSR) != 0) {
        f.finished_mark = true;
        continue;
      }
    }
    if (!f.finished_mark && Clock::now() - f.last_growth < options_.rename_grace) return false;
    if (!SwitchToSuccessor(s)) return false;
  }
  return false;
}

LogFollower::Step LogFollower::CheckLiveSize(Stream& s) {
  File& f = *s.file;
  struct stat st;
  if (::fstat(f.fd, &st) != 0) {
    Error(s, SystemError(f.name, "fstat"));
    return Step::kStop;
  }
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t pos = f.reader->position();
  if (size == f.seen_size && size >= pos) return Step::kRead;
  // Shorter than what was read, or rewritten from the start (copytruncate,
  // then more lines than were read before): read it again from 0.
  bool truncated = size < pos;
  if (!truncated && f.head_known && !f.head.empty()) {
    auto now = PreadUpTo(f.fd, 0, f.head.size(), f.name);
    if (!now.ok()) {
      Error(s, now.status().message());
      return Step::kStop;
    }
    truncated = *now != f.head;
  }
  f.seen_size = size;
  if (!truncated) return Step::kRead;
  HandleTruncation(s);
  return Step::kAgain;
}

void LogFollower::HandleTruncation(Stream& s) {
  Flush(s);
  truncations_.fetch_add(1, std::memory_order_relaxed);
  Notice(s.path + ": truncated; reading it again from its start");
  const LogPosition was = PositionOf(s);
  std::unique_ptr<File> live = std::move(s.file);
  live->head.clear();
  live->head_known = false;
  live->hashed_len = SIZE_MAX;
  live->start = 0;
  live->reader.reset();
  if (Status st = EnsureHead(*live); !st.ok()) Error(s, st.message());
  // copytruncate copied the file before truncating it: the lines not read
  // yet are in the copy.
  std::vector<std::unique_ptr<File>> preds = Predecessors(s, *live);
  std::vector<std::unique_ptr<File>> chain;
  if (auto at = Locate(preds, was)) {
    preds[*at]->start = was.offset;
    chain.push_back(std::move(preds[*at]));
  }
  Chain(s, std::move(chain), std::move(live), nullptr);
}

bool LogFollower::CheckRenamed(Stream& s) {
  File& f = *s.file;
  struct stat st;
  if (::stat(s.path.c_str(), &st) != 0) {
    // Gone (multilog between its rename and the new `current`, or deleted):
    // the open file is read on until the path names another.
    if (errno != ENOENT) Error(s, SystemError(s.path, "stat"));
    return false;
  }
  if (st.st_dev == f.dev && st.st_ino == f.ino) return false;
  f.role = Role::kRenamed;
  f.last_growth = Clock::now();
  return true;
}

void LogFollower::FinishFile(Stream& s) {
  const std::uint64_t end = s.file->reader->position();
  if (s.skipping || !s.partial.empty()) {
    s.skipping = false;
    EmitHeld(s, end);  // the file ended without a final LF
  }
  s.resync = false;
  s.line_start = end;
  Flush(s);
}

bool LogFollower::SwitchToSuccessor(Stream& s) {
  auto opened = OpenFile(s.path, true);
  if (!opened.ok()) {
    if (opened.status().code() != StatusCode::kNotFound) Error(s, opened.status().message());
    return false;
  }
  std::unique_ptr<File> live = std::move(*opened);
  if (live->dev == s.file->dev && live->ino == s.file->ino) {
    s.file->role = Role::kLive;  // renamed back: still the same file
    return true;
  }
  if (Status st = EnsureHead(*live); !st.ok()) {
    Error(s, st.message());
    return false;
  }
  FinishFile(s);
  const LogPosition was = PositionOf(s);
  std::unique_ptr<File> old = std::move(s.file);
  struct stat st;
  const std::int64_t old_mtime = ::fstat(old->fd, &st) == 0 ? MtimeNs(st) : old->mtime_ns;
  // Several rotations may have happened since the last poll: the files
  // rotated after the old one come first.
  std::vector<std::unique_ptr<File>> preds = Predecessors(s, *live);
  std::optional<std::size_t> at = Locate(preds, was);
  for (std::size_t i = 0; !at && i < preds.size(); ++i) {
    // Listed but not opened: still known by its device and inode, which
    // cannot have been reused while `old` holds it open.
    if (preds[i]->fd < 0 && preds[i]->dev == old->dev && preds[i]->ino == old->ino) at = i;
  }
  std::vector<std::unique_ptr<File>> chain;
  if (at) {
    chain.assign(std::make_move_iterator(preds.begin() + static_cast<std::ptrdiff_t>(*at) + 1),
                 std::make_move_iterator(preds.end()));
  } else {
    // The old file is no longer in the directory (multilog removed it as the
    // oldest): the newer ones are told by their modification time. The
    // oldest go first, so one as old as it (coarse timestamps) is newer.
    for (auto& f : preds) {
      if (f->mtime_ns >= old_mtime && (f->dev != old->dev || f->ino != old->ino)) {
        chain.push_back(std::move(f));
      }
    }
  }
  rotations_.fetch_add(1, std::memory_order_relaxed);
  Chain(s, std::move(chain), std::move(live), &old->head);
  return true;
}

void LogFollower::Error(Stream& s, const std::string& text) {
  s.error_now = true;
  if (text == s.error) return;
  s.error = text;
  read_errors_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(status_mu_);
    last_error_ = text;
  }
  Notice(text);
}

void LogFollower::Notice(const std::string& text) {
  if (options_.notice) options_.notice(text);
}

void LogFollower::Publish(std::size_t index) {
  const Stream& s = *streams_[index];
  LogStreamStatus st{s.path, s.file != nullptr ? s.file->name : "", PositionOf(s), s.error};
  std::lock_guard lock(status_mu_);
  status_[index] = std::move(st);
}

}  // namespace mailscope::ingest
