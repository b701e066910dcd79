#include "net/listeners.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <list>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ingest/line_assembler.h"
#include "ingest/line_framer.h"
#include "net/accept_backoff.h"
#include "net/spawn.h"

namespace mailscope::net {

namespace asio = boost::asio;
using asio::awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

std::string Errno(std::string_view what, const std::string& path) {
  return fmt::format("{} {}: {}", what, path, std::strerror(errno));
}

Status ApplyPerms(const std::string& path, const PathPerms& perms) {
  if (::chmod(path.c_str(), perms.mode) != 0) return Unavailable(Errno("chmod", path));
  if (perms.uid || perms.gid) {
    if (::chown(path.c_str(), perms.uid.value_or(static_cast<uid_t>(-1)),
                perms.gid.value_or(static_cast<gid_t>(-1))) != 0) {
      return Unavailable(Errno("chown", path));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<PathPerms> ResolvePerms(const std::string& user, const std::string& group, mode_t mode) {
  PathPerms p;
  p.mode = mode;
  if (!user.empty()) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) return InvalidArgument("unknown user \"" + user + "\"");
    p.uid = pw->pw_uid;
  }
  if (!group.empty()) {
    const struct group* gr = ::getgrnam(group.c_str());
    if (gr == nullptr) return InvalidArgument("unknown group \"" + group + "\"");
    p.gid = gr->gr_gid;
  } else {
    p.gid = ::getegid();
  }
  return p;
}

Result<std::pair<std::string, unsigned short>> SplitHostPort(std::string_view address) {
  std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos)
    return InvalidArgument("expected ADDR:PORT, got \"" + std::string(address) + "\"");
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
    return InvalidArgument("bad port in \"" + std::string(address) + "\"");
  }
  if (host.empty()) host = "0.0.0.0";
  return std::pair<std::string, unsigned short>(std::string(host), static_cast<unsigned short>(p));
}

// --- FifoReader

namespace {

// Restarts of a FIFO read loop that ended while the reader is open: a read
// error or a fault outside a line handler. Doubling up to a ceiling, so a
// fault on every read cannot spin the CPU, while a single one costs little.
constexpr std::chrono::milliseconds kFifoRestartMin(100);
constexpr std::chrono::milliseconds kFifoRestartMax(5000);
// A FIFO's pipe is grown to hold this much, and a busy FIFO is read in
// chunks up to it (Linux's default is 64 KiB, which a writer fills in one
// 64 KiB write): a wakeup of the loop and a read call per 1 MiB rather than
// per 64 KiB. Up to /proc/sys/fs/pipe-max-size, whose default this is; where
// the kernel refuses it, the pipe keeps its size, and a larger one is kept.
constexpr int kFifoPipeBytes = 1024 * 1024;
constexpr std::size_t kFifoReadChunk = 64 * 1024;
// Writers that send one record per write() (Dovecot's mail processes do)
// would wake the loop for every record once it keeps up with them: two
// system calls and a coroutine resumption per record, which made a stream
// of single-record writes cost four times what the same bytes in 1 MiB
// writes cost. So a small read that follows the previous one closely waits
// kFifoCoalesceDelay before the next read, and that read takes what came
// meanwhile. A FIFO written now and then is read at once as before; a busy
// one delivers its records at most this late. Only with a pipe of at least
// kFifoPipeBytes, which holds what a writer sends in that time many times
// over: Dovecot's writers drop a record rather than wait on a full pipe.
constexpr std::size_t kFifoCoalesceBelow = 16 * 1024;
constexpr std::chrono::microseconds kFifoCoalesceWindow(100);
constexpr std::chrono::microseconds kFifoCoalesceDelay(500);

// Creates the FIFO at `path` unless one is there and opens it for reading.
Result<int> OpenFifoFd(const std::string& path, const PathPerms& perms) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISFIFO(st.st_mode)) return Unavailable(path + " exists and is not a FIFO");
  } else if (::mkfifo(path.c_str(), 0600) != 0) {
    return Unavailable(Errno("mkfifo", path));
  }
  MS_RETURN_IF_ERROR(ApplyPerms(path, perms));
  // O_RDWR: we are a writer too, so the read side never sees EOF when the
  // last mail process closes, and writers never get ENXIO.
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Unavailable(Errno("open", path));
  if (::fcntl(fd, F_GETPIPE_SZ) < kFifoPipeBytes && ::fcntl(fd, F_SETPIPE_SZ, kFifoPipeBytes) < 0) {
    spdlog::debug("{}; keeping the pipe's size", Errno("F_SETPIPE_SZ", path));
  }
  return fd;
}

// Whether reads of `fd` may wait between small reads (kFifoCoalesceDelay).
bool PipeHoldsACoalescingDelay(int fd) { return ::fcntl(fd, F_GETPIPE_SZ) >= kFifoPipeBytes; }

}  // namespace

struct FifoReader::State {
  State(asio::io_context& ctx, std::string p, const PathPerms& pp, std::size_t max_line)
      : io(ctx),
        fd(ctx),
        restart(ctx),
        coalesce(ctx),
        path(std::move(p)),
        perms(pp),
        framer(max_line, kFifoReadChunk, kFifoPipeBytes) {}
  asio::io_context& io;
  asio::posix::stream_descriptor fd;
  asio::steady_timer restart;
  asio::steady_timer coalesce;  // the wait between small reads close together
  // The FIFO during that wait, out of the loop's epoll set; also kept here
  // when it could not be put back, for the restart to try again.
  int parked_fd = -1;
  bool may_coalesce = false;  // the pipe is large enough (PipeHoldsACoalescingDelay)
  std::string path;
  PathPerms perms;
  ingest::LineFramer framer;
  ReadHandler on_read;
  LineHandler on_line;
  OverflowHandler on_overflow;
  FaultLog faults;
  std::chrono::milliseconds backoff = kFifoRestartMin;
  bool closed = false;

  ~State() {
    if (parked_fd >= 0) ::close(parked_fd);
  }

  // Reads what `descriptor` holds into the handlers, until it holds nothing.
  void DrainNow(int descriptor) {
    for (;;) {
      auto space = framer.WriteSpace();
      ssize_t n = ::read(descriptor, space.data(), space.size());
      if (n <= 0) break;
      framer.Commit(static_cast<std::size_t>(n));
      HandleRead();
    }
  }

  // Hands one read to the handlers. A throw out of a handler costs only its
  // own line: the pipe must keep being emptied, or Dovecot's writers block
  // on a full pipe, and every line from a mail process stands alone.
  void HandleRead() {
    try {
      on_read();
    } catch (...) {
      faults.Record("fifo " + path, "nothing", std::current_exception());
    }
    framer.Drain(
        [this](std::span<char> line) {
          try {
            on_line(line);
          } catch (...) {
            faults.Record("fifo " + path, "one line", std::current_exception());
          }
        },
        [this](std::size_t bytes) {
          try {
            on_overflow(bytes);
          } catch (...) {
            faults.Record("fifo " + path, "one overlong line", std::current_exception());
          }
        });
  }
};

namespace {

void StartReading(std::shared_ptr<FifoReader::State> state);

awaitable<void> ReadFifo(std::shared_ptr<FifoReader::State> state) {
  std::chrono::steady_clock::time_point last_read{};
  for (;;) {
    auto space = state->framer.WriteSpace();
    auto [ec, n] =
        co_await state->fd.async_read_some(asio::buffer(space.data(), space.size()), kTuple);
    if (state->closed) co_return;
    if (ec) {
      spdlog::warn("fifo {}: read: {}; reopening it", state->path, ec.message());
      boost::system::error_code ignored;
      state->fd.close(ignored);
      co_return;
    }
    state->backoff = kFifoRestartMin;
    state->framer.Commit(n);
    state->HandleRead();
    const auto now = std::chrono::steady_clock::now();
    const bool trickle =
        state->may_coalesce && n < kFifoCoalesceBelow && now - last_read < kFifoCoalesceWindow;
    last_read = now;
    if (trickle) {
      // Out of the epoll set meanwhile: each write into the pipe would wake
      // the loop otherwise, with nothing to read it for.
      state->parked_fd = state->fd.release();
      state->coalesce.expires_after(kFifoCoalesceDelay);
      co_await state->coalesce.async_wait(kTuple);
      if (state->closed) co_return;  // Close() took the descriptor
      boost::system::error_code assign_error;
      state->fd.assign(state->parked_fd, assign_error);
      if (assign_error) {
        // Still open and parked: the pipe keeps its read end, and the
        // restart puts it back.
        spdlog::warn("fifo {}: {}; reading again later", state->path, assign_error.message());
        co_return;
      }
      state->parked_fd = -1;
    }
  }
}

// After the back-off: reopens the FIFO if the loop closed it, then reads again.
void ScheduleRestart(std::shared_ptr<FifoReader::State> state) {
  spdlog::warn("fifo {}: reading again in {} ms", state->path, state->backoff.count());
  state->restart.expires_after(state->backoff);
  state->backoff = std::min(state->backoff * 2, kFifoRestartMax);
  state->restart.async_wait([state](boost::system::error_code ec) {
    if (ec || state->closed) return;
    if (!state->fd.is_open()) {
      int fd = state->parked_fd;
      if (fd < 0) {
        auto opened = OpenFifoFd(state->path, state->perms);
        if (!opened.ok()) {
          spdlog::warn("fifo {}: {}", state->path, opened.status().message());
          return ScheduleRestart(state);
        }
        fd = *opened;
        state->may_coalesce = PipeHoldsACoalescingDelay(fd);
      }
      boost::system::error_code assign_error;
      state->fd.assign(fd, assign_error);
      if (assign_error) {
        // Kept (parked) for the next try: closing it would drop what the
        // pipe holds when no writer has it open.
        spdlog::warn("fifo {}: {}", state->path, assign_error.message());
        state->parked_fd = fd;
        return ScheduleRestart(state);
      }
      state->parked_fd = -1;
    }
    StartReading(state);
  });
}

// The read loop must run as long as the reader is open: Dovecot's writers
// open the FIFO once and never retry, so however the loop ends, it restarts.
void StartReading(std::shared_ptr<FifoReader::State> state) {
  Spawn(state->io, "fifo " + state->path, ReadFifo(state), [state](std::exception_ptr) {
    if (!state->closed) ScheduleRestart(state);
  });
}

}  // namespace

Result<std::unique_ptr<FifoReader>> FifoReader::Open(asio::io_context& io, const std::string& path,
                                                     const PathPerms& perms, std::size_t max_line,
                                                     ReadHandler on_read, LineHandler on_line,
                                                     OverflowHandler on_overflow) {
  auto fd = OpenFifoFd(path, perms);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<FifoReader> reader(new FifoReader());
  reader->path_ = path;
  auto state = std::make_shared<State>(io, path, perms, max_line);
  state->may_coalesce = PipeHoldsACoalescingDelay(*fd);
  state->fd.assign(*fd);
  state->on_read = std::move(on_read);
  state->on_line = std::move(on_line);
  state->on_overflow = std::move(on_overflow);
  reader->state_ = state;
  StartReading(state);
  return reader;
}

void FifoReader::Close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
  state_->restart.cancel();
  state_->coalesce.cancel();
  // Take what the writers already put into the pipe before going away.
  if (state_->parked_fd >= 0) {
    const int parked = std::exchange(state_->parked_fd, -1);
    state_->DrainNow(parked);
    ::close(parked);
  }
  if (!state_->fd.is_open()) return;
  state_->DrainNow(state_->fd.native_handle());
  boost::system::error_code ec;
  state_->fd.close(ec);
  // The FIFO stays: writers that keep their descriptor across a restart of
  // mailscope are connected to the next reader of the same FIFO, while a
  // new FIFO at the path would leave them writing into a dead pipe.
}

std::uint64_t FifoReader::handler_faults() const { return state_ ? state_->faults.count() : 0; }

FifoReader::~FifoReader() { Close(); }

// --- LineServer

// One open connection: its closer and an ordered output queue, so replies
// and broadcasts never interleave two writes on one socket.
struct LineServer::Conn {
  std::function<void()> close;        // closes the socket; a waiting reader wakes
  std::function<void()> start_write;  // drains `pending` unless already writing
  std::string pending;                // queued, not yet handed to the writer
  std::size_t in_flight = 0;          // handed to the writer, not yet written
  bool writing = false;
  std::uint64_t write_progress = 0;  // bumped by each write that moved bytes
  // Set while the reader waits for the output to drain (or the writer to
  // end); the writer calls it after each write.
  std::function<void()> wake_reader;

  std::size_t queued() const { return pending.size() + in_flight; }
  void WakeReader() {
    if (wake_reader) wake_reader();
  }
};

// What a Pusher reaches: the connection while it is open.
struct Pusher::Impl {
  std::weak_ptr<LineServer::Conn> conn;
};

bool Pusher::alive() const {
  auto impl = impl_.lock();
  return impl && !impl->conn.expired();
}

std::size_t Pusher::pending_bytes() const {
  auto impl = impl_.lock();
  auto conn = impl ? impl->conn.lock() : nullptr;
  return conn ? conn->queued() : 0;
}

void Pusher::Send(std::string_view text) {
  auto impl = impl_.lock();
  auto conn = impl ? impl->conn.lock() : nullptr;
  if (!conn) return;
  conn->pending.append(text);
  conn->start_write();
}

namespace {

// Why a connection was closed or refused by a limit: the label values of
// mailscope_listener_closed_total and LineServerFigures' counters.
enum class CloseReason { kLineTooLong, kLineTimeout, kWriteTimeout, kBufferLimit };

// Logs the 1st, 2nd, 4th, 8th ... occurrence of something that can happen at
// a client's will, so a client cannot flood the log but the count is seen.
bool PowerOfTwo(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

struct LineServer::State {
  explicit State(asio::io_context& ctx) : io(ctx), restart(ctx) {}
  asio::io_context& io;
  std::optional<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::optional<asio::ip::tcp::acceptor> tcp_acceptor;
  asio::steady_timer restart;  // of the accept loop after a fault, or its pause
  AcceptBackoff accept_backoff;
  std::string unix_path;
  std::string name;  // for logs: "unix PATH" or "tcp ADDR:PORT"
  std::size_t max_line = 0;
  LineServerLimits limits;
  ConnectionFactory factory;
  FaultLog faults;
  bool closed = false;
  std::list<std::shared_ptr<Conn>> conns;
  // Every connection reads into this, one at a time: a read is handed to its
  // connection's lines before the loop can run another, so an idle
  // connection owns no read buffer at all.
  std::vector<char> scratch = std::vector<char>(kScratchBytes);
  std::size_t held_bytes = 0;  // of incomplete lines, all connections together
  LineServerFigures figures;

  static constexpr std::size_t kScratchBytes = 64 * 1024;

  void CountClose(CloseReason reason, std::string_view peer) {
    std::uint64_t* count = nullptr;
    std::string_view what;
    switch (reason) {
      case CloseReason::kLineTooLong:
        count = &figures.closed_line_too_long;
        what = "a line over the limit";
        break;
      case CloseReason::kLineTimeout:
        count = &figures.closed_line_timeout;
        what = "a line not finished within line_timeout";
        break;
      case CloseReason::kWriteTimeout:
        count = &figures.closed_write_timeout;
        what = "output not taken within write_timeout";
        break;
      case CloseReason::kBufferLimit:
        count = &figures.closed_buffer_limit;
        what = "incomplete lines of all connections over buffer_limit";
        break;
    }
    if (PowerOfTwo(++*count)) spdlog::warn("{}: closed for {} ({} so far)", peer, what, *count);
  }
};

namespace {

// A pause before accepting again after a fault, so one on every accept cannot spin.
constexpr std::chrono::milliseconds kAcceptRestartDelay(100);
// Reads of one connection per wakeup before the others get their turn.
constexpr int kReadsPerWakeup = 16;
// An idle queue keeps at most this much memory after a large reply.
constexpr std::size_t kKeepOutputCapacity = 4096;

// One connection as its serving coroutine, its timers and that coroutine's
// completion share it: the completion closes it, whether the coroutine
// ended or threw.
template <typename Socket>
struct Serving {
  Serving(asio::io_context& io, std::size_t max_line) : lines(max_line), line_deadline(io) {}
  std::shared_ptr<Socket> sock;
  std::shared_ptr<LineServer::Conn> conn;
  std::list<std::shared_ptr<LineServer::Conn>>::iterator conn_it;
  LineConnection handler;
  std::shared_ptr<Pusher::Impl> push_target;
  std::string name;  // for logs: listener and peer
  ingest::LineAssembler lines;
  std::size_t held_counted = 0;  // of lines.held_bytes(), in State::held_bytes
  asio::steady_timer line_deadline;
  bool line_deadline_armed = false;

  // Brings State::held_bytes up to date with this connection's lines.
  void AccountHeld(LineServer::State& state) {
    state.held_bytes = state.held_bytes - held_counted + lines.held_bytes();
    held_counted = lines.held_bytes();
  }
};

template <typename Socket>
awaitable<void> DrainOutput(std::shared_ptr<LineServer::State> state, std::shared_ptr<Socket> sock,
                            std::shared_ptr<LineServer::Conn> conn) {
  const std::chrono::milliseconds timeout = state->limits.write_timeout;
  asio::steady_timer deadline(state->io);
  std::string buffer;
  boost::system::error_code ec;
  while (!ec && !conn->pending.empty()) {
    buffer.swap(conn->pending);
    std::size_t done = 0;
    while (!ec && done < buffer.size()) {
      conn->in_flight = buffer.size() - done;
      if (timeout.count() > 0) {
        // Closes the connection unless this write moved bytes in time; a
        // peer that reads slowly but steadily is not cut off.
        deadline.expires_after(timeout);
        deadline.async_wait([state, weak = std::weak_ptr(conn), progress = conn->write_progress,
                             name = state->name](boost::system::error_code wec) {
          auto c = weak.lock();
          if (wec || !c || c->write_progress != progress) return;
          state->CountClose(CloseReason::kWriteTimeout, name);
          c->close();
        });
      }
      std::size_t n = 0;
      std::tie(ec, n) = co_await sock->async_write_some(
          asio::buffer(buffer.data() + done, buffer.size() - done), kTuple);
      deadline.cancel();
      done += n;
      ++conn->write_progress;
      conn->in_flight = buffer.size() - done;
      if (conn->queued() <= state->limits.output_limit) conn->WakeReader();
    }
    buffer.clear();
  }
  if (ec) conn->pending.clear();
  conn->in_flight = 0;
  if (conn->pending.capacity() > kKeepOutputCapacity) std::string().swap(conn->pending);
  conn->writing = false;
  conn->WakeReader();
}

// Waits until `ready()` holds or the connection is closed; the writer wakes
// it after each write.
template <typename Socket>
awaitable<void> WaitForWriter(LineServer::State& state, Serving<Socket>& s,
                              const std::function<bool()>& ready) {
  while (!ready() && !state.closed && s.sock->is_open()) {
    asio::steady_timer wake(state.io, asio::steady_timer::time_point::max());
    s.conn->wake_reader = [&wake] { wake.cancel(); };
    co_await wake.async_wait(kTuple);
    s.conn->wake_reader = nullptr;
  }
}

// A line begun must end within line_timeout: a client cannot hold a
// connection's memory by stopping in the middle of one.
template <typename Socket>
void UpdateLineDeadline(std::shared_ptr<LineServer::State> state,
                        std::shared_ptr<Serving<Socket>> s) {
  const bool mid_line = s->lines.mid_line();
  if (mid_line == s->line_deadline_armed || state->limits.line_timeout.count() == 0) return;
  s->line_deadline_armed = mid_line;
  if (!mid_line) {
    s->line_deadline.cancel();
    return;
  }
  s->line_deadline.expires_after(state->limits.line_timeout);
  s->line_deadline.async_wait([state, weak = std::weak_ptr(s)](boost::system::error_code ec) {
    auto live = weak.lock();
    if (ec || !live || !live->line_deadline_armed || state->closed) return;
    state->CountClose(CloseReason::kLineTimeout, live->name);
    live->conn->close();
  });
}

template <typename Socket>
awaitable<void> ServeLines(std::shared_ptr<LineServer::State> state,
                           std::shared_ptr<Serving<Socket>> s) {
  LineServer::Conn& conn = *s->conn;
  s->handler = state->factory();
  if (!s->handler.greeting.empty()) {
    conn.pending += s->handler.greeting;
    conn.start_write();
  }
  // The Pusher's target lives exactly as long as this connection is served.
  s->push_target = std::make_shared<Pusher::Impl>(Pusher::Impl{s->conn});
  if (s->handler.on_open) s->handler.on_open(Pusher(s->push_target));
  std::string reply;
  bool keep_open = true;
  const auto output_drained = [&] { return conn.queued() <= state->limits.output_limit; };
  // Returns false to stop between lines: the peer has not read the replies
  // so far, and the rest waits in the connection's backlog.
  auto on_line = [&](std::span<char> line) {
    if (!keep_open) return false;
    const std::size_t replied = reply.size();
    try {
      keep_open = s->handler.on_line(line, reply);
    } catch (...) {
      // What the handler appended before throwing is not a reply.
      reply.resize(replied);
      state->faults.Record(s->name, "one line", std::current_exception());
      keep_open = s->handler.keep_reading_after_fault;
    }
    return keep_open && conn.queued() + reply.size() <= state->limits.output_limit;
  };
  auto on_overflow = [&](std::size_t) {
    if (keep_open) state->CountClose(CloseReason::kLineTooLong, s->name);
    keep_open = false;
  };
  bool at_end = false;
  while (keep_open && !state->closed && !(at_end && !s->lines.backlog())) {
    const std::size_t held_before = s->lines.held_bytes();
    if (s->lines.backlog()) {
      s->lines.Resume(on_line, on_overflow);
    } else {
      auto [wait_ec] = co_await s->sock->async_wait(Socket::wait_read, kTuple);
      if (wait_ec || state->closed) break;
      for (int i = 0; i < kReadsPerWakeup && keep_open && !s->lines.backlog(); ++i) {
        boost::system::error_code ec;
        const std::size_t n = s->sock->read_some(asio::buffer(state->scratch), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) break;
        if (ec) {
          at_end = true;
          break;
        }
        s->lines.Feed(std::span<char>(state->scratch.data(), n), on_line, on_overflow);
        if (n < state->scratch.size()) break;
      }
    }
    if (at_end && keep_open && s->handler.line_at_eof && !s->lines.backlog())
      s->lines.FinishAtEnd(on_line);
    s->AccountHeld(*state);
    if (s->lines.held_bytes() > held_before && state->held_bytes > state->limits.buffer_limit) {
      if (keep_open) state->CountClose(CloseReason::kBufferLimit, s->name);
      keep_open = false;
    }
    // A line over the bound closes the connection as soon as it is seen.
    if (s->lines.skipping()) on_overflow(0);
    if (!reply.empty()) {
      conn.pending += reply;
      reply.clear();
      conn.start_write();
    }
    UpdateLineDeadline(state, s);
    // Requests wait while the peer has not taken the replies to earlier ones.
    co_await WaitForWriter(*state, *s, output_drained);
  }
  // Let queued replies go out before closing, as a request/response peer expects.
  co_await WaitForWriter(*state, *s, [&conn] { return !conn.writing; });
}

// Ends a connection however its coroutine ended: on_close runs exactly once,
// so a peer's registrations (a tail's filter) never outlive it.
template <typename Socket>
void FinishConnection(LineServer::State& state, Serving<Socket>& s) {
  s.push_target.reset();
  s.line_deadline_armed = false;
  s.line_deadline.cancel();
  state.held_bytes -= s.held_counted;
  s.held_counted = 0;
  if (auto on_close = std::exchange(s.handler.on_close, nullptr)) {
    try {
      on_close();
    } catch (...) {
      state.faults.Record(s.name, "nothing", std::current_exception());
    }
  }
  if (!state.closed) {
    boost::system::error_code ec;
    s.sock->close(ec);
    state.conns.erase(s.conn_it);
  }
}

template <typename Socket>
void StartConnection(std::shared_ptr<LineServer::State> state, Socket sock) {
  auto s = std::make_shared<Serving<Socket>>(state->io, state->max_line);
  s->sock = std::make_shared<Socket>(std::move(sock));
  s->name = state->name;
  boost::system::error_code ec;
  // Reads are made when the socket is readable and must not block.
  s->sock->non_blocking(true, ec);
  if constexpr (std::is_same_v<Socket, asio::ip::tcp::socket>) {
    auto peer = s->sock->remote_endpoint(ec);
    if (!ec) s->name += fmt::format(" peer {}:{}", peer.address().to_string(), peer.port());
  }
  s->conn = std::make_shared<LineServer::Conn>();
  std::weak_ptr<LineServer::Conn> weak = s->conn;
  s->conn->close = [sock = s->sock, weak] {
    boost::system::error_code ignored;
    sock->close(ignored);
    if (auto c = weak.lock()) c->WakeReader();
  };
  s->conn->start_write = [state, sock = s->sock, weak] {
    auto c = weak.lock();
    if (!c || c->writing || c->pending.empty()) return;
    c->writing = true;
    Spawn(state->io, state->name + " writer", DrainOutput(state, sock, c),
          [c](std::exception_ptr e) {
            if (!e) return;
            c->pending.clear();
            c->in_flight = 0;
            c->writing = false;
            c->WakeReader();
          });
  };
  s->conn_it = state->conns.insert(state->conns.end(), s->conn);
  Spawn(state->io, s->name, ServeLines(state, s),
        [state, s](std::exception_ptr) { FinishConnection(*state, *s); });
}

template <typename Acceptor>
awaitable<void> AcceptLoop(std::shared_ptr<LineServer::State> state, Acceptor& acceptor) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kTuple);
    if (state->closed) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // EMFILE and friends: the open connections are served meanwhile.
      state->restart.expires_after(state->accept_backoff.Failed(state->name, ec.message()));
      co_await state->restart.async_wait(kTuple);
      if (state->closed) co_return;
      continue;
    }
    state->accept_backoff.Succeeded();
    if (state->conns.size() >= state->limits.client_limit) {
      // Taken from the backlog and closed at once: the peer learns now, and
      // the backlog stays free for when a connection ends.
      if (PowerOfTwo(++state->figures.refused)) {
        spdlog::warn("{}: client_limit {} reached, connection refused ({} so far)", state->name,
                     state->limits.client_limit, state->figures.refused);
      }
      boost::system::error_code ignored;
      sock.close(ignored);
      continue;
    }
    StartConnection(state, std::move(sock));
  }
}

// Accepting goes on until Close(): after a fault it restarts, after a pause.
template <typename Acceptor>
void StartAccepting(std::shared_ptr<LineServer::State> state, Acceptor& acceptor) {
  Spawn(state->io, state->name, AcceptLoop(state, acceptor),
        [state, &acceptor](std::exception_ptr e) {
          if (!e || state->closed) return;
          state->restart.expires_after(kAcceptRestartDelay);
          state->restart.async_wait([state, &acceptor](boost::system::error_code ec) {
            if (!ec && !state->closed) StartAccepting(state, acceptor);
          });
        });
}

}  // namespace

Result<std::unique_ptr<LineServer>> LineServer::ListenUnix(
    asio::io_context& io, const std::string& path, const PathPerms& perms, std::size_t max_line,
    RequestHandler handler, const LineServerLimits& limits) {
  return ListenUnix(
      io, path, perms, max_line,
      [handler = std::move(handler)] {
        LineConnection c;
        c.on_line = handler;
        return c;
      },
      limits);
}

Result<std::unique_ptr<LineServer>> LineServer::ListenUnix(
    asio::io_context& io, const std::string& path, const PathPerms& perms, std::size_t max_line,
    ConnectionFactory factory, const LineServerLimits& limits) {
  using asio::local::stream_protocol;
  constexpr std::size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;
  if (path.size() > kMaxPath) {
    return InvalidArgument(fmt::format("{}: a UNIX socket's path is at most {} bytes, this is {}",
                                       path, kMaxPath, path.size()));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Unavailable(path + " exists and is not a socket");
    stream_protocol::socket probe(io);
    boost::system::error_code ec;
    probe.connect(stream_protocol::endpoint(path), ec);
    if (!ec) return Unavailable(path + " is in use by a running process");
    ::unlink(path.c_str());
  }
  auto state = std::make_shared<State>(io);
  state->max_line = max_line;
  state->limits = limits;
  state->factory = std::move(factory);
  state->unix_path = path;
  state->name = "unix " + path;
  boost::system::error_code ec;
  auto& acc = state->unix_acceptor.emplace(io);
  acc.open(stream_protocol(), ec);
  if (!ec) acc.bind(stream_protocol::endpoint(path), ec);
  if (ec) return Unavailable(fmt::format("bind {}: {}", path, ec.message()));
  MS_RETURN_IF_ERROR(ApplyPerms(path, perms));
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(fmt::format("listen {}: {}", path, ec.message()));
  std::unique_ptr<LineServer> server(new LineServer());
  server->state_ = state;
  StartAccepting(state, acc);
  return server;
}

Result<std::unique_ptr<LineServer>> LineServer::ListenTcp(asio::io_context& io,
                                                          const std::string& address,
                                                          std::size_t max_line,
                                                          RequestHandler handler,
                                                          const LineServerLimits& limits) {
  using asio::ip::tcp;
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) return InvalidArgument("bad address \"" + hp->first + "\": need an IP literal");
  auto state = std::make_shared<State>(io);
  state->max_line = max_line;
  state->limits = limits;
  state->factory = [handler = std::move(handler)] {
    LineConnection c;
    c.on_line = handler;
    return c;
  };
  state->name = "tcp " + address;
  auto& acc = state->tcp_acceptor.emplace(io);
  tcp::endpoint ep(ip, hp->second);
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(fmt::format("listen {}: {}", address, ec.message()));
  std::unique_ptr<LineServer> server(new LineServer());
  server->state_ = state;
  StartAccepting(state, acc);
  return server;
}

std::string LineServer::local_address() const {
  if (!state_) return {};
  if (state_->tcp_acceptor) {
    boost::system::error_code ec;
    auto ep = state_->tcp_acceptor->local_endpoint(ec);
    return ec ? std::string() : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }
  return state_->unix_path;
}

void LineServer::Broadcast(std::string_view text) {
  if (!state_ || state_->closed) return;
  for (auto& conn : state_->conns) {
    conn->pending.append(text);
    conn->start_write();
  }
}

std::size_t LineServer::connection_count() const { return state_ ? state_->conns.size() : 0; }

LineServerFigures LineServer::figures() const {
  if (!state_) return {};
  LineServerFigures f = state_->figures;
  f.connections = state_->conns.size();
  f.handler_faults = state_->faults.count();
  f.accept_failures = state_->accept_backoff.failures();
  f.held_input_bytes = state_->held_bytes;
  for (const auto& conn : state_->conns) f.queued_output_bytes += conn->queued();
  return f;
}

void LineServer::Close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
  state_->restart.cancel();
  boost::system::error_code ec;
  if (state_->unix_acceptor) state_->unix_acceptor->close(ec);
  if (state_->tcp_acceptor) state_->tcp_acceptor->close(ec);
  for (auto& conn : state_->conns) conn->close();
  state_->conns.clear();
  if (!state_->unix_path.empty()) ::unlink(state_->unix_path.c_str());
}

LineServer::~LineServer() { Close(); }

// --- SendOnce

void SendOnce(asio::io_context& io, const std::string& address, std::string payload,
              std::chrono::milliseconds timeout, std::function<void(Status)> done) {
  using asio::ip::tcp;
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return done(hp.status());
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) return done(InvalidArgument("\"" + hp->first + "\" is not an IP address"));
  auto sock = std::make_shared<tcp::socket>(io);
  auto timer = std::make_shared<asio::steady_timer>(io, timeout);
  timer->async_wait([sock](boost::system::error_code wec) {
    if (!wec) {
      boost::system::error_code ignored;
      sock->close(ignored);
    }
  });
  asio::co_spawn(
      io,
      [sock, timer, ep = tcp::endpoint(ip, hp->second), data = std::move(payload),
       address]() -> awaitable<Status> {
        auto [cec] = co_await sock->async_connect(ep, kTuple);
        if (cec) co_return Unavailable(fmt::format("connect {}: {}", address, cec.message()));
        auto [wec, n] = co_await asio::async_write(*sock, asio::buffer(data), kTuple);
        if (wec) co_return Unavailable(fmt::format("write {}: {}", address, wec.message()));
        boost::system::error_code ignored;
        sock->shutdown(tcp::socket::shutdown_send, ignored);
        sock->close(ignored);
        co_return Status::Ok();
      },
      [timer, address, done = std::move(done)](std::exception_ptr e, Status st) {
        timer->cancel();
        done(e ? Internal("send to " + address + " failed: " + DescribeException(e)) : st);
      });
}

}  // namespace mailscope::net
