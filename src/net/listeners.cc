#include "net/listeners.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
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

#include "ingest/line_framer.h"

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

struct FifoReader::State {
  explicit State(asio::io_context& io, std::size_t max_line) : fd(io), framer(max_line) {}
  asio::posix::stream_descriptor fd;
  ingest::LineFramer framer;
  ReadHandler on_read;
  LineHandler on_line;
  OverflowHandler on_overflow;
  bool closed = false;

  void Drain() { framer.Drain(on_line, on_overflow); }
};

Result<std::unique_ptr<FifoReader>> FifoReader::Open(asio::io_context& io, const std::string& path,
                                                     const PathPerms& perms, std::size_t max_line,
                                                     ReadHandler on_read, LineHandler on_line,
                                                     OverflowHandler on_overflow) {
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
  std::unique_ptr<FifoReader> reader(new FifoReader());
  reader->path_ = path;
  auto state = std::make_shared<State>(io, max_line);
  state->fd.assign(fd);
  state->on_read = std::move(on_read);
  state->on_line = std::move(on_line);
  state->on_overflow = std::move(on_overflow);
  reader->state_ = state;
  asio::co_spawn(
      io,
      [state]() -> awaitable<void> {
        for (;;) {
          auto space = state->framer.WriteSpace();
          auto [ec, n] =
              co_await state->fd.async_read_some(asio::buffer(space.data(), space.size()), kTuple);
          if (ec || state->closed) co_return;
          state->framer.Commit(n);
          state->on_read();
          state->Drain();
        }
      },
      asio::detached);
  return reader;
}

void FifoReader::Close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
  // Take what the writers already put into the pipe before going away.
  int fd = state_->fd.native_handle();
  for (;;) {
    auto space = state_->framer.WriteSpace();
    ssize_t n = ::read(fd, space.data(), space.size());
    if (n <= 0) break;
    state_->framer.Commit(static_cast<std::size_t>(n));
    state_->on_read();
    state_->Drain();
  }
  boost::system::error_code ec;
  state_->fd.close(ec);
  // The FIFO stays: writers that keep their descriptor across a restart of
  // mailscope are connected to the next reader of the same FIFO, while a
  // new FIFO at the path would leave them writing into a dead pipe.
}

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
  explicit State(asio::io_context& ctx) : io(ctx) {}
  asio::io_context& io;
  std::optional<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::optional<asio::ip::tcp::acceptor> tcp_acceptor;
  std::string unix_path;
  std::size_t max_line = 0;
  ConnectionFactory factory;
  bool closed = false;
  std::list<std::shared_ptr<Conn>> conns;
};

namespace {

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
awaitable<void> ServeLines(std::shared_ptr<LineServer::State> state, Socket sock) {
  auto self = std::make_shared<Socket>(std::move(sock));
  auto conn = std::make_shared<LineServer::Conn>();
  conn->close = [self] {
    boost::system::error_code ec;
    self->close(ec);
  };
  std::weak_ptr<LineServer::Conn> weak = conn;
  conn->start_write = [state, self, weak] {
    auto c = weak.lock();
    if (!c || c->writing || c->pending.empty()) return;
    c->writing = true;
    asio::co_spawn(state->io, DrainOutput(self, c), asio::detached);
  };
  auto conn_it = state->conns.insert(state->conns.end(), conn);
  LineConnection handler = state->factory();
  if (!handler.greeting.empty()) {
    conn->pending += handler.greeting;
    conn->start_write();
  }
  // The Pusher's target lives exactly as long as this coroutine serves.
  auto push_target = std::make_shared<Pusher::Impl>(Pusher::Impl{conn});
  if (handler.on_open) handler.on_open(Pusher(push_target));
  // 4 KiB reads for a quiet connection, up to 64 KiB while a writer keeps
  // the socket full (fewer system calls per byte).
  ingest::LineFramer framer(state->max_line, 4096, 64 * 1024);
  std::string reply;
  bool keep_open = true;
  while (keep_open && !state->closed) {
    auto space = framer.WriteSpace();
    auto [ec, n] = co_await self->async_read_some(asio::buffer(space.data(), space.size()), kTuple);
    if (ec || state->closed) break;
    framer.Commit(n);
    framer.Drain(
        [&](std::span<char> line) {
          if (keep_open) keep_open = handler.on_line(line, reply);
        },
        [&](std::size_t) { keep_open = false; });
    if (!reply.empty()) {
      conn->pending += reply;
      reply.clear();
      conn->start_write();
    }
  }
  // Let queued replies go out before closing, as a request/response peer expects.
  while (conn->writing && !state->closed) {
    asio::steady_timer wait(state->io, std::chrono::milliseconds(1));
    co_await wait.async_wait(kTuple);
  }
  push_target.reset();
  if (handler.on_close) handler.on_close();
  if (!state->closed) {
    boost::system::error_code ec;
    self->close(ec);
    state->conns.erase(conn_it);
  }
}

template <typename Acceptor>
awaitable<void> AcceptLoop(std::shared_ptr<LineServer::State> state, Acceptor& acceptor) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kTuple);
    if (state->closed) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;  // EMFILE and friends: keep serving the others
    }
    asio::co_spawn(state->io, ServeLines(state, std::move(sock)), asio::detached);
  }
}

}  // namespace

Result<std::unique_ptr<LineServer>> LineServer::ListenUnix(asio::io_context& io,
                                                           const std::string& path,
                                                           const PathPerms& perms,
                                                           std::size_t max_line,
                                                           RequestHandler handler) {
  return ListenUnix(io, path, perms, max_line, [handler = std::move(handler)] {
    return LineConnection{{}, handler, {}, {}};
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
  asio::co_spawn(io, AcceptLoop(state, acc), asio::detached);
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
  state->factory = [handler = std::move(handler)] { return LineConnection{{}, handler, {}, {}}; };
  auto& acc = state->tcp_acceptor.emplace(io);
  tcp::endpoint ep(ip, hp->second);
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(fmt::format("listen {}: {}", address, ec.message()));
  std::unique_ptr<LineServer> server(new LineServer());
  server->state_ = state;
  asio::co_spawn(io, AcceptLoop(state, acc), asio::detached);
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

void LineServer::Close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
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
      [timer, done = std::move(done)](std::exception_ptr e, Status st) {
        timer->cancel();
        done(e ? Internal("carbon send failed") : st);
      });
}

}  // namespace mailscope::net
