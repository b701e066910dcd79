#include "net/listeners.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
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
#include <type_traits>
#include <utility>

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
  return fd;
}

}  // namespace

struct FifoReader::State {
  State(asio::io_context& ctx, std::string p, const PathPerms& pp, std::size_t max_line)
      : io(ctx), fd(ctx), restart(ctx), path(std::move(p)), perms(pp), framer(max_line) {}
  asio::io_context& io;
  asio::posix::stream_descriptor fd;
  asio::steady_timer restart;
  std::string path;
  PathPerms perms;
  ingest::LineFramer framer;
  ReadHandler on_read;
  LineHandler on_line;
  OverflowHandler on_overflow;
  FaultLog faults;
  std::chrono::milliseconds backoff = kFifoRestartMin;
  bool closed = false;

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
      auto fd = OpenFifoFd(state->path, state->perms);
      if (!fd.ok()) {
        spdlog::warn("fifo {}: {}", state->path, fd.status().message());
        return ScheduleRestart(state);
      }
      state->fd.assign(*fd);
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
  if (!state_->fd.is_open()) return;
  // Take what the writers already put into the pipe before going away.
  int fd = state_->fd.native_handle();
  for (;;) {
    auto space = state_->framer.WriteSpace();
    ssize_t n = ::read(fd, space.data(), space.size());
    if (n <= 0) break;
    state_->framer.Commit(static_cast<std::size_t>(n));
    state_->HandleRead();
  }
  boost::system::error_code ec;
  state_->fd.close(ec);
  // The FIFO stays: writers that keep their descriptor across a restart of
  // mailscope are connected to the next reader of the same FIFO, while a
  // new FIFO at the path would leave them writing into a dead pipe.
}

std::uint64_t FifoReader::handler_faults() const { return state_ ? state_->faults.count() : 0; }

FifoReader::~FifoReader() { Close(); }

// --- LineServer

// One open connection: its socket's closer and an ordered output queue, so
// replies and broadcasts never interleave two writes on one socket.
struct LineServer::Conn {
  std::function<void()> close;
  std::function<void()> start_write;  // drains `pending` unless already writing
  std::string pending;
  bool writing = false;
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
  return conn ? conn->pending.size() : 0;
}

void Pusher::Send(std::string_view text) {
  auto impl = impl_.lock();
  auto conn = impl ? impl->conn.lock() : nullptr;
  if (!conn) return;
  conn->pending.append(text);
  conn->start_write();
}

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
  ConnectionFactory factory;
  FaultLog faults;
  bool closed = false;
  std::list<std::shared_ptr<Conn>> conns;
};

namespace {

// A pause before accepting again after a fault, so one on every accept cannot spin.
constexpr std::chrono::milliseconds kAcceptRestartDelay(100);

// One connection as its serving coroutine and that coroutine's completion
// share it: the completion closes it, whether the coroutine ended or threw.
template <typename Socket>
struct Serving {
  std::shared_ptr<Socket> sock;
  std::shared_ptr<LineServer::Conn> conn;
  std::list<std::shared_ptr<LineServer::Conn>>::iterator conn_it;
  LineConnection handler;
  std::shared_ptr<Pusher::Impl> push_target;
  std::string name;  // for logs: listener and peer
};

template <typename Socket>
awaitable<void> DrainOutput(std::shared_ptr<Socket> sock, std::shared_ptr<LineServer::Conn> conn) {
  std::string buffer;
  while (!conn->pending.empty()) {
    buffer.swap(conn->pending);
    conn->pending.clear();
    auto [ec, n] = co_await asio::async_write(*sock, asio::buffer(buffer), kTuple);
    buffer.clear();
    if (ec) {
      conn->pending.clear();
      break;
    }
  }
  conn->writing = false;
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
  // 4 KiB reads for a quiet connection, up to 64 KiB while a writer keeps
  // the socket full (fewer system calls per byte).
  ingest::LineFramer framer(state->max_line, 4096, 64 * 1024);
  std::string reply;
  bool keep_open = true;
  while (keep_open && !state->closed) {
    auto space = framer.WriteSpace();
    auto [ec, n] =
        co_await s->sock->async_read_some(asio::buffer(space.data(), space.size()), kTuple);
    if (ec || state->closed) break;
    framer.Commit(n);
    framer.Drain(
        [&](std::span<char> line) {
          if (!keep_open) return;
          const std::size_t replied = reply.size();
          try {
            keep_open = s->handler.on_line(line, reply);
          } catch (...) {
            // What the handler appended before throwing is not a reply.
            reply.resize(replied);
            state->faults.Record(s->name, "one line", std::current_exception());
            keep_open = s->handler.keep_reading_after_fault;
          }
        },
        [&](std::size_t) { keep_open = false; });
    if (!reply.empty()) {
      conn.pending += reply;
      reply.clear();
      conn.start_write();
    }
  }
  // Let queued replies go out before closing, as a request/response peer expects.
  while (conn.writing && !state->closed) {
    asio::steady_timer wait(state->io, std::chrono::milliseconds(1));
    co_await wait.async_wait(kTuple);
  }
}

// Ends a connection however its coroutine ended: on_close runs exactly once,
// so a peer's registrations (a tail's filter) never outlive it.
template <typename Socket>
void FinishConnection(LineServer::State& state, Serving<Socket>& s) {
  s.push_target.reset();
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
  auto s = std::make_shared<Serving<Socket>>();
  s->sock = std::make_shared<Socket>(std::move(sock));
  s->name = state->name;
  if constexpr (std::is_same_v<Socket, asio::ip::tcp::socket>) {
    boost::system::error_code ec;
    auto peer = s->sock->remote_endpoint(ec);
    if (!ec) s->name += fmt::format(" peer {}:{}", peer.address().to_string(), peer.port());
  }
  s->conn = std::make_shared<LineServer::Conn>();
  s->conn->close = [sock = s->sock] {
    boost::system::error_code ec;
    sock->close(ec);
  };
  std::weak_ptr<LineServer::Conn> weak = s->conn;
  s->conn->start_write = [state, sock = s->sock, weak] {
    auto c = weak.lock();
    if (!c || c->writing || c->pending.empty()) return;
    c->writing = true;
    Spawn(state->io, state->name + " writer", DrainOutput(sock, c), [c](std::exception_ptr e) {
      if (!e) return;
      c->pending.clear();
      c->writing = false;
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

Result<std::unique_ptr<LineServer>> LineServer::ListenUnix(asio::io_context& io,
                                                           const std::string& path,
                                                           const PathPerms& perms,
                                                           std::size_t max_line,
                                                           RequestHandler handler) {
  return ListenUnix(io, path, perms, max_line, [handler = std::move(handler)] {
    LineConnection c;
    c.on_line = handler;
    return c;
  });
}

Result<std::unique_ptr<LineServer>> LineServer::ListenUnix(asio::io_context& io,
                                                           const std::string& path,
                                                           const PathPerms& perms,
                                                           std::size_t max_line,
                                                           ConnectionFactory factory) {
  using asio::local::stream_protocol;
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
                                                          RequestHandler handler) {
  using asio::ip::tcp;
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) return InvalidArgument("bad address \"" + hp->first + "\": need an IP literal");
  auto state = std::make_shared<State>(io);
  state->max_line = max_line;
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

std::uint64_t LineServer::handler_faults() const { return state_ ? state_->faults.count() : 0; }

std::uint64_t LineServer::accept_failures() const {
  return state_ ? state_->accept_backoff.failures() : 0;
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
