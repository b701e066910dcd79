#include "net/event_transports.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "net/http_post_transport.h"
#include "net/queued_writer.h"
#include "net/spawn.h"

namespace mailscope::net {

namespace asio = boost::asio;
using exporter::ExporterSettings;
using exporter::ExporterTransport;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kRelaxed = std::memory_order_relaxed;

// event-exporter-transport-file.c: open and write errors are logged at most
// once a minute (EXPORTER_LAST_ERROR_DELAY).
constexpr auto kErrorLogInterval = std::chrono::seconds(60);

namespace {

// drop: nothing is queued, so a payload is done with when Send() returns.
class DropTransport final : public EventTransport {
 public:
  explicit DropTransport(const ExporterSettings& s) : EventTransport(s.name, s.transport) {}
  void Send(std::string_view) override {
    (closed_ ? counters_.dropped : counters_.sent).fetch_add(1, kRelaxed);
  }
  void Close() override { closed_ = true; }
  TransportCounters counters() const override { return counters_.Get(); }
  std::size_t queued() const override { return 0; }

 private:
  AtomicTransportCounters counters_;
  bool closed_ = false;
};

// file and log: Send() queues, a QueuedWriter's thread hands the batches to
// the transport's sink.
class QueuedTransport final : public EventTransport {
 public:
  QueuedTransport(const ExporterSettings& s, const EventTransportOptions& options,
                  std::unique_ptr<BatchSink> sink, bool lines)
      : EventTransport(s.name, s.transport),
        writer_(std::move(sink), {options.max_queue_events, options.max_queue_bytes, lines}) {}

  void Send(std::string_view payload) override { writer_.Push(payload); }
  void Reopen() override { writer_.Reopen(); }
  void Close() override { writer_.Close(); }
  QueuedWriter* writer() override { return &writer_; }
  TransportCounters counters() const override { return writer_.counters(); }
  std::size_t queued() const override { return writer_.queued(); }

 private:
  QueuedWriter writer_;
};

// Dovecot's log transport: i_info("%s", payload), one line per event.
class LogSink final : public BatchSink {
 public:
  bool Write(std::string_view bytes, std::span<const std::size_t> ends,
             const std::atomic<bool>&) override {
    std::size_t begin = 0;
    for (const std::size_t end : ends) {
      spdlog::info("{}", bytes.substr(begin, end - begin));
      begin = end;
    }
    return true;
  }
};

// --- file ------------------------------------------------------------------

// A batch is written with one write() where the file takes it whole.
class FileSink final : public BatchSink {
 public:
  FileSink(std::string name, std::string path) : name_(std::move(name)), path_(std::move(path)) {}
  ~FileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void Reopen() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // O_NONBLOCK: opening a FIFO without a reader must fail, not hang the
  // thread; a full FIFO is waited for in poll(), where an abort is seen.
  bool Write(std::string_view data, std::span<const std::size_t>,
             const std::atomic<bool>& abort) override {
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
      if (fd_ < 0) {
        LogError("open");
        return false;
      }
    }
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!WaitWritable(abort)) return false;
        continue;
      }
      if (n <= 0) {
        LogError("write");
        Reopen();  // reopened for the next batch, as Dovecot does
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

 private:
  // Until the reader makes room (true) or the writer is aborted (false).
  // Abort() cannot wake poll(), so it looks at `abort` again every 100 ms.
  bool WaitWritable(const std::atomic<bool>& abort) {
    constexpr int kAbortCheckMs = 100;
    while (!abort.load()) {
      pollfd p{fd_, POLLOUT, 0};
      const int n = ::poll(&p, 1, kAbortCheckMs);
      if (n > 0) return true;  // writable, or an error the next write() reports
      if (n < 0 && errno != EINTR) {
        LogError("poll");
        return false;
      }
    }
    return false;
  }

  void LogError(const char* what) {
    const int err = errno;
    const auto now = Clock::now();
    if (logged_ && now - last_log_ < kErrorLogInterval) return;
    logged_ = true;
    last_log_ = now;
    spdlog::warn("event_exporter {}: {}({}) failed: {}", name_, what, path_, std::strerror(err));
  }

  const std::string name_;
  const std::string path_;
  int fd_ = -1;
  bool logged_ = false;
  Clock::time_point last_log_{};
};

// --- unix --------------------------------------------------------------------

using UnixSocket = asio::local::stream_protocol::socket;

// Shared with the coroutines serving it, so the transport can go while one
// is suspended. Loop thread only, except the counters.
struct UnixState {
  enum class Phase { kIdle, kConnecting, kConnected, kWaiting };

  UnixState(asio::io_context& ctx, const ExporterSettings& s, const EventTransportOptions& o)
      : io(ctx),
        name(s.name),
        path(s.path),
        timeout(s.transport_timeout),
        options(o),
        socket(ctx),
        timer(ctx),
        backoff(o.reconnect_min) {}

  asio::io_context& io;
  const std::string name;
  const std::string path;
  const std::chrono::milliseconds timeout;
  const EventTransportOptions options;
  UnixSocket socket;
  asio::steady_timer timer;  // the connect timeout
  Phase phase = Phase::kIdle;
  std::uint64_t generation = 0;  // of the connection; bumped when one ends
  Clock::time_point retry_at{};
  std::chrono::milliseconds backoff;
  std::string pending, writing;
  std::size_t pending_events = 0, writing_events = 0;
  bool writing_active = false;
  bool closed = false;
  std::array<char, 512> discard{};
  bool logged = false;
  Clock::time_point last_log{};
  AtomicTransportCounters counters;

  // The connection failed or ended: what is queued cannot go; wait before
  // the next attempt.
  void Disconnect(std::string_view what, const boost::system::error_code& ec) {
    ++generation;
    boost::system::error_code ignored;
    socket.close(ignored);
    timer.cancel();
    phase = Phase::kWaiting;
    retry_at = Clock::now() + backoff;
    backoff = std::min(backoff * 2, options.reconnect_max);
    counters.dropped.fetch_add(std::exchange(pending_events, 0), kRelaxed);
    pending.clear();
    const auto now = Clock::now();
    if (!logged || now - last_log >= kErrorLogInterval) {
      logged = true;
      last_log = now;
      spdlog::warn("event_exporter {}: {}({}) failed: {}", name, what, path,
                   ec ? ec.message() : std::string("Connection closed by peer"));
    }
  }
};

// REQUIRES: s->writing_active was set by StartUnixWrite().
// Why a connection was dropped after an exception in one of its coroutines.
const boost::system::error_code kFaulted =
    boost::system::errc::make_error_code(boost::system::errc::state_not_recoverable);

asio::awaitable<void> UnixWrite(std::shared_ptr<UnixState> s) {
  const std::uint64_t gen = s->generation;
  while (!s->pending.empty() && s->phase == UnixState::Phase::kConnected && s->generation == gen) {
    s->writing.swap(s->pending);
    s->writing_events = std::exchange(s->pending_events, 0);
    auto [ec, n] = co_await asio::async_write(s->socket, asio::buffer(s->writing), kTuple);
    const std::size_t events = std::exchange(s->writing_events, 0);
    s->writing.clear();
    if (ec) {
      (s->closed ? s->counters.dropped : s->counters.failed).fetch_add(events, kRelaxed);
      if (!s->closed && s->generation == gen) s->Disconnect("write", ec);
      break;
    }
    s->counters.sent.fetch_add(events, kRelaxed);
  }
  s->writing_active = false;
}

void StartUnixWrite(const std::shared_ptr<UnixState>& s) {
  if (s->writing_active) return;
  s->writing_active = true;
  // After a fault the connection's state is unknown: start over from a new one.
  Spawn(s->io, "event_exporter " + s->name, UnixWrite(s), [s](std::exception_ptr e) {
    s->writing_active = false;
    if (e && !s->closed) s->Disconnect("write", kFaulted);
  });
}

// The peer is not expected to send anything: reading only notices when it goes.
asio::awaitable<void> UnixWatch(std::shared_ptr<UnixState> s) {
  const std::uint64_t gen = s->generation;
  for (;;) {
    auto [ec, n] = co_await s->socket.async_read_some(asio::buffer(s->discard), kTuple);
    if (s->closed || s->generation != gen) co_return;
    if (ec) {
      s->Disconnect("read", ec == asio::error::eof ? boost::system::error_code() : ec);
      co_return;
    }
  }
}

// REQUIRES: phase kConnecting, set by the caller. The socket is closed (never
// opened, or closed by Disconnect()); async_connect opens it.
asio::awaitable<void> UnixConnect(std::shared_ptr<UnixState> s) {
  const std::uint64_t gen = ++s->generation;
  if (s->timeout.count() > 0) {
    s->timer.expires_after(s->timeout);
    s->timer.async_wait([s, gen](boost::system::error_code ec) {
      if (ec || s->generation != gen || s->phase != UnixState::Phase::kConnecting) return;
      boost::system::error_code ignored;
      s->socket.close(ignored);  // the connect fails with operation_aborted
    });
  }
  auto [ec] =
      co_await s->socket.async_connect(asio::local::stream_protocol::endpoint(s->path), kTuple);
  if (s->closed || s->generation != gen) co_return;
  s->timer.cancel();
  if (ec) {
    s->Disconnect("connect", ec == asio::error::operation_aborted ? asio::error::timed_out : ec);
    co_return;
  }
  s->phase = UnixState::Phase::kConnected;
  s->backoff = s->options.reconnect_min;
  Spawn(s->io, "event_exporter " + s->name, UnixWatch(s), [s, gen](std::exception_ptr e) {
    if (e && !s->closed && s->generation == gen) s->Disconnect("read", kFaulted);
  });
  if (!s->pending.empty()) StartUnixWrite(s);
}

class UnixTransport final : public EventTransport {
 public:
  UnixTransport(asio::io_context& io, const ExporterSettings& s,
                const EventTransportOptions& options)
      : EventTransport(s.name, s.transport), s_(std::make_shared<UnixState>(io, s, options)) {}
  ~UnixTransport() override { Close(); }

  void Send(std::string_view payload) override {
    UnixState& s = *s_;
    if (s.phase == UnixState::Phase::kWaiting && Clock::now() >= s.retry_at) {
      s.phase = UnixState::Phase::kIdle;
    }
    if (s.closed || s.phase == UnixState::Phase::kWaiting ||
        s.pending_events >= s.options.max_queue_events ||
        s.pending.size() + payload.size() + 1 > s.options.max_queue_bytes) {
      s.counters.dropped.fetch_add(1, kRelaxed);
      return;
    }
    s.pending.append(payload);
    s.pending += '\n';
    ++s.pending_events;
    if (s.phase == UnixState::Phase::kIdle) {
      s.phase = UnixState::Phase::kConnecting;
      Spawn(s.io, "event_exporter " + s.name, UnixConnect(s_), [s = s_](std::exception_ptr e) {
        if (e && !s->closed && s->phase == UnixState::Phase::kConnecting)
          s->Disconnect("connect", kFaulted);
      });
    } else if (s.phase == UnixState::Phase::kConnected) {
      StartUnixWrite(s_);
    }
  }

  void Close() override {
    UnixState& s = *s_;
    if (s.closed) return;
    s.closed = true;
    ++s.generation;
    boost::system::error_code ignored;
    s.timer.cancel();
    s.socket.close(ignored);
    s.counters.dropped.fetch_add(std::exchange(s.pending_events, 0), kRelaxed);
    s.pending.clear();
  }

  TransportCounters counters() const override { return s_->counters.Get(); }
  std::size_t queued() const override { return s_->pending_events + s_->writing_events; }

 private:
  std::shared_ptr<UnixState> s_;
};

}  // namespace

std::unique_ptr<EventTransport> MakeEventTransport(asio::io_context& io,
                                                   const ExporterSettings& settings,
                                                   const EventTransportOptions& options) {
  switch (settings.transport) {
    case ExporterTransport::kDrop:
      return std::make_unique<DropTransport>(settings);
    case ExporterTransport::kLog:
      return std::make_unique<QueuedTransport>(settings, options, std::make_unique<LogSink>(),
                                               false);
    case ExporterTransport::kFile:
      return std::make_unique<QueuedTransport>(
          settings, options, std::make_unique<FileSink>(settings.name, settings.path), true);
    case ExporterTransport::kUnix:
      return std::make_unique<UnixTransport>(io, settings, options);
    case ExporterTransport::kHttpPost:
      return MakeHttpPostTransport(io, settings, options);
  }
  return std::make_unique<DropTransport>(settings);
}

}  // namespace mailscope::net
