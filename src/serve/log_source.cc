#include "serve/log_source.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/tab_escape.h"
#include "ingest/text.h"

namespace mailscope::serve {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The state file: a header line, then per stream
//   "stream " PATH LF "position " LogPosition LF "sequence " S LF "state " N LF
//   N bytes LF
// with PATH and LogPosition tab-escaped; S is the place of the next line.
constexpr std::string_view kStateHeader = "mailscope-log-state 1\n";
// Chunks handled in one turn of the loop before other work gets its turn.
constexpr int kChunksPerTurn = 16;

bool Line(std::string_view& text, std::string_view prefix, std::string_view& value) {
  const std::size_t nl = text.find('\n');
  if (nl == std::string_view::npos || !text.starts_with(prefix)) return false;
  value = text.substr(prefix.size(), nl - prefix.size());
  text.remove_prefix(nl + 1);
  return true;
}

// Writes `text` to `path` so that a crash leaves the old file or the new
// one: a temporary file, fsync'd, renamed over, and the directory fsync'd.
Status WriteFileAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable(tmp + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Unavailable(tmp + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  const int synced = ::fsync(fd);
  const int sync_errno = errno;
  const int closed = ::close(fd);
  if (synced != 0 || closed != 0) {
    const int err = synced != 0 ? sync_errno : errno;
    ::unlink(tmp.c_str());
    return Unavailable(tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Unavailable(path + ": " + std::strerror(errno));
  }
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
  return Status::Ok();
}

void AddFigures(ingest::LogLineFigures& to, const ingest::LogLineFigures& from) {
  to.parsed += from.parsed;
  to.unparsed += from.unparsed;
  for (const auto& [reason, n] : from.unparsed_by_reason) to.unparsed_by_reason[reason] += n;
}

}  // namespace

LogSource::LogSource(asio::io_context& io, SourceContext context, LogConfig config,
                     std::string state_dir)
    : io_(io),
      context_(context),
      config_(std::move(config)),
      state_path_(state_dir + "/" + config_.name + ".state"),
      checkpoint_timer_(io),
      backlog_timer_(io) {}

LogSource::~LogSource() { Stop(); }

Status LogSource::Start() {
  if (!config_.time_zone.empty()) {
    auto z = TimeZone::Load(config_.time_zone);
    if (!z.ok()) return z.status();
    zone_ = std::move(*z);
  } else {
    zone_ = TimeZone::System();
  }
  std::map<std::string, ingest::LogPosition> positions;
  MS_RETURN_IF_ERROR(LoadState(positions));

  ingest::LogFollowerOptions options;
  options.patterns = config_.files;
  options.from = config_.start == "start" ? ingest::StartFrom::kStart : ingest::StartFrom::kEnd;
  options.poll_interval = config_.poll_interval;
  options.max_line_bytes = config_.max_line_size;
  options.queue_bytes = config_.queue_size;
  options.on_ready = [this] {
    // The reader thread: the loop takes it from here.
    asio::post(io_, [this] {
      drain_posted_ = false;
      Drain();
    });
  };
  options.notice = [name = config_.name](std::string_view text) {
    spdlog::warn("logs {}: {}", name, text);
  };
  follower_ = std::make_unique<ingest::LogFollower>(std::move(options));
  MS_RETURN_IF_ERROR(follower_->Start(std::move(positions)));
  checkpointer_ = std::jthread([this](std::stop_token stop) { CheckpointThread(stop); });
  ScheduleCheckpoint();
  spdlog::info("logs {}: {} files of format {} ({} streams resumed from {})", config_.name,
               config_.files.size(), config_.format, streams_.size(), state_path_);
  return Status::Ok();
}

LogSource::Stream& LogSource::StreamOf(const std::string& path) {
  auto it = streams_.find(path);
  if (it != streams_.end()) return it->second;
  Stream& s = streams_[path];
  s.lines = std::make_unique<ingest::LogLines>(ingest::MakeLogLineFormat(config_.format), zone_,
                                               context_.clock.Now());
  // The origin of its lines: the log and the stream, by a hash fixed by the
  // state file's format (FNV-1a), never 0.
  s.origin = ingest::LogFingerprint(config_.name + '\n' + path) | 1;
  return s;
}

void LogSource::Drain() {
  if (follower_ == nullptr) return;
  // Lines are only taken while the outputs that keep events have room: a
  // record dropped for a full queue would be a line lost after its
  // position is saved. The follower's queue fills meanwhile and its reader
  // waits; nothing is dropped.
  if (context_.dispatcher.Backlogged()) {
    if (!backlog_wait_) {
      backlog_wait_ = true;
      backlog_timer_.expires_after(20ms);
      backlog_timer_.async_wait([this](boost::system::error_code ec) {
        backlog_wait_ = false;
        if (!ec && !stopped_) Drain();
      });
    }
    return;
  }
  ingest::LogChunk chunk;
  for (int i = 0; i < kChunksPerTurn; ++i) {
    if (!follower_->TryPop(chunk)) return;
    Process(chunk);
    follower_->Release(std::move(chunk));
  }
  // More may wait: the rest in a later turn, after other work had its own.
  if (!drain_posted_ && !stopped_) {
    drain_posted_ = true;
    asio::post(io_, [this] {
      drain_posted_ = false;
      Drain();
    });
  }
}

void LogSource::Process(const ingest::LogChunk& chunk) {
  Stream& s = StreamOf(chunk.stream);
  std::string_view rest = chunk.lines;
  const TimePoint now = context_.clock.Now();
  while (!rest.empty()) {
    std::size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) nl = rest.size();
    const std::string_view line = rest.substr(0, nl);
    // A line's place: the bytes of the lines before it in this stream, all
    // files together. Read again from a saved position, the same lines come
    // the same way (cut ones too), so they get the same places.
    const std::uint64_t seq = s.sequence;
    s.sequence += nl + 1;
    rest.remove_prefix(std::min(rest.size(), nl + 1));
    RunContainedInput(context_, s.lines->format().source(), [&] {
      const Status st = s.lines->Decode(line, now, event_);
      if (!st.ok()) {
        context_.Reject(s.lines->format().source(), st, chunk.file);
        return;
      }
      event_.origin_stream = s.origin;
      event_.origin_seq = seq;
      context_.Dispatch(event_);
    });
  }
  s.position = chunk.end;
  dirty_ = true;
}

std::string LogSource::SnapshotText() const {
  std::string out(kStateHeader);
  for (const auto& [path, s] : streams_) {
    const std::string state = s.lines->SaveState();
    // Paths may hold any byte but NUL: tab-escaped, a line each.
    out += "stream ";
    AppendTabEscaped(out, path);
    out += "\nposition ";
    AppendTabEscaped(out, s.position.ToString());
    out += "\nsequence ";
    out += std::to_string(s.sequence);
    out += "\nstate ";
    out += std::to_string(state.size());
    out += '\n';
    out += state;
    out += '\n';
  }
  return out;
}

Status LogSource::LoadState(std::map<std::string, ingest::LogPosition>& positions) {
  struct stat st {};
  if (::stat(state_path_.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();  // the first start
    return Unavailable(state_path_ + ": " + std::strerror(errno));
  }
  std::ifstream in(state_path_, std::ios::binary);
  if (!in) return Unavailable(state_path_ + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::string_view rest = text;
  auto bad = [&](std::string_view what) {
    return InvalidArgument(state_path_ + ": " + std::string(what) +
                           "; move the file away to start this log source afresh");
  };
  if (!rest.starts_with(kStateHeader)) return bad("not a log state file");
  rest.remove_prefix(kStateHeader.size());
  while (!rest.empty()) {
    std::string_view path_text, position_text, sequence_text, size_text;
    std::uint64_t size = 0, sequence = 0;
    if (!Line(rest, "stream ", path_text) || !Line(rest, "position ", position_text) ||
        !Line(rest, "sequence ", sequence_text) || !Line(rest, "state ", size_text) ||
        !ingest::ParseDecimal(sequence_text, sequence) || !ingest::ParseDecimal(size_text, size) ||
        size >= rest.size() || rest[size] != '\n') {
      return bad("malformed");
    }
    std::string path(path_text), position(position_text);
    path.resize(UnescapeTabInPlace(std::span<char>(path.data(), path.size())).size());
    position.resize(UnescapeTabInPlace(std::span<char>(position.data(), position.size())).size());
    auto pos = ingest::LogPosition::Parse(position);
    if (!pos.ok()) return bad(pos.status().message());
    Stream& s = StreamOf(path);
    s.sequence = sequence;
    if (Status loaded = s.lines->LoadState(rest.substr(0, size)); !loaded.ok()) {
      return bad(loaded.message());
    }
    rest.remove_prefix(size + 1);
    s.position = *pos;
    positions[path] = *pos;
  }
  return Status::Ok();
}

void LogSource::ScheduleCheckpoint() {
  checkpoint_timer_.expires_after(config_.checkpoint_interval);
  checkpoint_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    bool waiting;
    {
      std::lock_guard lock(mu_);
      waiting = !pending_.empty();
    }
    // One snapshot at a time: while the durable outputs have not reached the
    // last one, a newer one would only take memory (the state of every
    // session and queued message) and time on the loop.
    if (dirty_ && !waiting) {
      dirty_ = false;
      Snapshot snap{SnapshotText(), context_.dispatcher.MarkDurable()};
      {
        std::lock_guard lock(mu_);
        pending_.push_back(std::move(snap));
      }
      wake_.notify_all();
    }
    ScheduleCheckpoint();
  });
}

void LogSource::CheckpointThread(std::stop_token stop) {
  std::unique_lock lock(mu_);
  auto final_deadline = std::chrono::steady_clock::time_point::max();
  for (;;) {
    // The newest snapshot the durable outputs have reached; older ones go.
    std::optional<std::string> ready;
    while (!pending_.empty()) {
      std::size_t newest = pending_.size();
      for (std::size_t i = pending_.size(); i-- > 0;) {
        if (context_.dispatcher.Reached(pending_[i].mark)) {
          newest = i;
          break;
        }
      }
      if (newest == pending_.size()) break;
      ready = std::move(pending_[newest].text);
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(newest) + 1);
    }
    if (ready) {
      lock.unlock();
      WriteState(*ready);
      lock.lock();
      continue;
    }
    if (final_) {
      if (pending_.empty()) return;
      if (final_deadline == std::chrono::steady_clock::time_point::max()) {
        final_deadline = std::chrono::steady_clock::now() + kFinalCheckpointWait;
      } else if (std::chrono::steady_clock::now() >= final_deadline) {
        spdlog::error(
            "logs {}: the records of the last lines read were not written in time; their "
            "position is not saved, and they are read again at the next start",
            config_.name);
        return;
      }
    } else if (stop.stop_requested()) {
      return;
    }
    // Durable outputs settle on their own threads: look again soon.
    wake_.wait_for(lock, pending_.empty() ? 1s : 20ms);
  }
}

bool LogSource::WriteState(const std::string& text) {
  const Status st = WriteFileAtomically(state_path_, text);
  if (!st.ok()) {
    checkpoint_errors_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("logs {}: read positions not saved: {}", config_.name, st.message());
    return false;
  }
  checkpoints_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void LogSource::Stop() {
  if (stopped_ || follower_ == nullptr) {
    stopped_ = true;
    return;
  }
  stopped_ = true;
  checkpoint_timer_.cancel();
  backlog_timer_.cancel();
  follower_->Stop();
  // What was read before the stop is dispatched: its position is saved.
  ingest::LogChunk chunk;
  while (follower_->TryPop(chunk)) {
    Process(chunk);
    follower_->Release(std::move(chunk));
  }
  {
    std::lock_guard lock(mu_);
    if (dirty_) pending_.push_back(Snapshot{SnapshotText(), context_.dispatcher.MarkDurable()});
    final_ = true;
  }
  dirty_ = false;
  wake_.notify_all();
}

LogSourceFigures LogSource::figures() const {
  LogSourceFigures f;
  f.name = config_.name;
  f.format = config_.format;
  for (const auto& [path, s] : streams_) AddFigures(f.lines, s.lines->figures());
  if (follower_ != nullptr) f.follower = follower_->figures();
  f.checkpoints = checkpoints_.load(std::memory_order_relaxed);
  f.checkpoint_errors = checkpoint_errors_.load(std::memory_order_relaxed);
  return f;
}

}  // namespace mailscope::serve
