#include "net/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <optional>

#include "net/accept_backoff.h"
#include "net/listeners.h"
#include "net/spawn.h"

namespace mailscope::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Request headers larger than this are refused.
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
// The read buffer holds a header and one read of the body at a time; bodies
// go straight into the message.
constexpr std::size_t kReadBufferBytes = kMaxHeaderBytes + 64 * 1024;
// What one read of a body asks for. Beast reads as much as the buffer has
// room for, and a flat_buffer does not grow by itself: left at its first
// 512 bytes, a large body came in 512-byte reads, each a system call and a
// wait on epoll.
constexpr std::size_t kBodyReadBytes = 64 * 1024;
// The TLS handshake's bound when line_timeout is 0 (none).
constexpr std::chrono::milliseconds kHandshakeTimeout{10000};

struct HttpServer::State {
  explicit State(asio::io_context& ctx) : io(ctx), acceptor(ctx), restart(ctx) {}
  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer restart;  // of the accept loop after a fault, or its pause
  AcceptBackoff accept_backoff;
  std::string address;  // as configured, for logs
  HttpRouter router;
  LineServerLimits limits;
  FaultLog faults;
  bool closed = false;
  std::list<std::shared_ptr<tcp::socket>> connections;
  std::uint64_t refused = 0;
  std::uint64_t closed_request_timeout = 0;
  std::uint64_t closed_write_timeout = 0;
  std::optional<asio::ssl::context> tls;  // set: every connection begins with a handshake
  std::uint64_t failed_handshakes = 0;
};

namespace {

// Logs the 1st, 2nd, 4th, 8th ... occurrence of something a client can make
// happen at will: the count is seen, the log is not flooded.
bool PowerOfTwo(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// The deadline of one connection's current read or write: when it passes,
// the socket is closed under the waiting operation, which then fails.
class Deadline {
 public:
  Deadline(asio::io_context& io, std::shared_ptr<tcp::socket> sock)
      : timer_(io), sock_(std::move(sock)), shared_(std::make_shared<Shared>()) {}

  // Starts a deadline `after` from now (0: none), replacing the previous.
  void Arm(std::chrono::milliseconds after) {
    Disarm();
    if (after.count() == 0) return;
    timer_.expires_after(after);
    timer_.async_wait(
        [sock = sock_, shared = shared_, gen = shared_->gen](boost::system::error_code ec) {
          // A handler already queued when the deadline was replaced is stale.
          if (ec || gen != shared->gen) return;
          shared->fired = true;
          boost::system::error_code ignored;
          sock->close(ignored);
        });
  }
  // Ends the deadline; fired() still tells whether it had passed.
  void Disarm() {
    ++shared_->gen;
    timer_.cancel();
  }
  bool fired() const { return shared_->fired; }
  void Reset() { shared_->fired = false; }

 private:
  struct Shared {
    std::uint64_t gen = 0;
    bool fired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<tcp::socket> sock_;
  std::shared_ptr<Shared> shared_;
};

std::string_view View(boost::beast::string_view v) { return {v.data(), v.size()}; }

// Header lookup straight on the parsed message: Beast compares field names
// case-insensitively.
class BeastHeaders final : public HttpHeaderSource {
 public:
  explicit BeastHeaders(const http::fields& fields) : fields_(fields) {}
  std::string_view Find(std::string_view name) const override {
    auto it = fields_.find(boost::beast::string_view(name.data(), name.size()));
    return it == fields_.end() ? std::string_view() : View(it->value());
  }

 private:
  const http::fields& fields_;
};

HttpResponse TooLarge(const HttpRouteOptions& options) {
  return HttpError(413, fmt::format("request body larger than {} bytes", options.max_body_bytes),
                   options.api);
}

bool ExpectsContinue(const http::request<http::string_body>& req) {
  return req.version() >= 11 &&
         boost::beast::iequals(req[http::field::expect], boost::beast::string_view("100-continue"));
}

// Serves the requests of one connection over `stream`, the socket itself or
// a TLS stream on it; `deadline` closes the socket.
template <typename Stream>
asio::awaitable<void> ServeRequests(std::shared_ptr<HttpServer::State> state, Stream& stream,
                                    Deadline& deadline) {
  boost::beast::flat_buffer buffer(kReadBufferBytes);
  const LineServerLimits& limits = state->limits;
  // A request cut by line_timeout is counted; an idle keep-alive connection
  // closed by it is not.
  auto read_failed = [&](const http::request_parser<http::string_body>& parser) {
    deadline.Disarm();
    if (deadline.fired() && (parser.got_some() || buffer.size() > 0) &&
        PowerOfTwo(++state->closed_request_timeout)) {
      spdlog::info("http {}: a request not complete within line_timeout closed ({} so far)",
                   state->address, state->closed_request_timeout);
    }
  };
  auto write_failed = [&] {
    deadline.Disarm();
    if (deadline.fired() && PowerOfTwo(++state->closed_write_timeout)) {
      spdlog::info("http {}: a response not taken within write_timeout closed ({} so far)",
                   state->address, state->closed_write_timeout);
    }
  };
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    // The route sets the body limit once the header is in; until then none,
    // or Beast would hold Content-Length against its own 1 MB default.
    parser.body_limit(boost::none);
    // Between requests the connection holds no read buffer.
    if (buffer.size() == 0) buffer.shrink_to_fit();
    deadline.Arm(limits.line_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    if (state->closed) break;
    if (ec) {
      read_failed(parser);
      break;
    }
    const auto& req = parser.get();
    const std::string_view target = View(req.target());
    const std::string_view path = TargetPath(target);
    HttpRouter::Match match = state->router.Find(View(req.method_string()), path);
    HttpResponse resp;
    bool failed = false;
    BeastHeaders headers(req);
    auto make_request = [&](const HttpRouter::Route& route) {
      return HttpRequest{.method = View(req.method_string()),
                         .target = target,
                         .path = path,
                         .query = TargetQuery(target),
                         .subpath = match.subpath,
                         .accept = View(req[http::field::accept]),
                         .content_type = View(req[http::field::content_type]),
                         .body = req.body(),
                         .body_capacity = req.body().capacity(),
                         .headers = &headers,
                         .api = route.options.api,
                         .headers_checked = static_cast<bool>(route.options.check_headers)};
    };
    std::optional<HttpResponse> refused;
    if (match.route == nullptr) {
      resp = std::move(match.error);
    } else {
      const HttpRouter::Route& route = *match.route;
      const auto length = parser.content_length();
      if (length && *length > route.options.max_body_bytes) {
        refused = TooLarge(route.options);
        if (route.options.on_refused) route.options.on_refused(*refused);
      } else if (!parser.is_done() &&
                 !route.AcceptsContentType(View(req[http::field::content_type]))) {
        refused = HttpError(415, "unsupported content type", route.options.api);
        if (route.options.on_refused) route.options.on_refused(*refused);
      } else if (route.options.check_headers) {
        refused = route.options.check_headers(make_request(route));
      }
      if (!refused && !parser.is_done()) {
        parser.body_limit(route.options.max_body_bytes);
        if (!length || *length > buffer.size()) {
          buffer.reserve(std::min(buffer.max_size(), buffer.size() + kBodyReadBytes));
        }
        // The body is appended within this capacity, so the padding stays.
        if (length && route.options.body_padding > 0) {
          parser.get().body().reserve(static_cast<std::size_t>(*length) +
                                      route.options.body_padding);
        }
        if (ExpectsContinue(req)) {
          // The interim response is small: the request's deadline covers it.
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          auto [cec, cn] = co_await asio::async_write(
              stream, asio::buffer(kContinue.data(), kContinue.size()), kTuple);
          if (state->closed) break;
          if (cec) {
            read_failed(parser);
            break;
          }
        }
        // line_timeout bounds each wait for more of the body, not the whole
        // body: a large one on a slow link takes as long as it takes, as
        // long as it keeps coming.
        boost::system::error_code bec;
        while (!bec && !parser.is_done()) {
          deadline.Arm(limits.line_timeout);
          auto [e, bn] = co_await http::async_read_some(stream, buffer, parser, kTuple);
          bec = e;
          if (state->closed) break;
        }
        if (state->closed) break;
        if (bec == http::error::body_limit) {
          refused = TooLarge(route.options);
          if (route.options.on_refused) route.options.on_refused(*refused);
        } else if (bec) {
          read_failed(parser);
          break;
        }
      }
      if (refused) {
        resp = std::move(*refused);
      } else if (parser.is_done()) {
        const HttpRequest request = make_request(route);
        try {
          resp = route.handler(request);
        } catch (...) {
          // The handler's state is unknown after a throw: answer, then close.
          state->faults.Record("http " + std::string(path), "one request",
                               std::current_exception());
          resp = HttpError(500, "internal error", route.options.api);
          failed = true;
        }
      }
    }
    deadline.Disarm();
    // A body left unread (refused early, or past the limit) makes the rest of
    // the stream unparseable: close.
    const bool keep_alive = req.keep_alive() && parser.is_done() && resp.status != 413 && !failed;
    const bool head = req.method() == http::verb::head;
    http::response<http::string_body> out(static_cast<http::status>(resp.status), req.version());
    out.set(http::field::server, "mailscope");
    out.set(http::field::content_type, resp.content_type);
    for (const auto& h : resp.headers) {
      out.insert(boost::beast::string_view(h.name), boost::beast::string_view(h.value));
    }
    out.keep_alive(keep_alive);
    // These statuses carry no body (RFC 9110 15.3.5, 15.4.5); Beast throws
    // rather than send one, so a handler's stray body is dropped here.
    if (resp.status < 200 || resp.status == 204 || resp.status == 304) resp.body.clear();
    if (head) {
      out.content_length(resp.body.size());
    } else {
      out.body() = std::move(resp.body);
      out.prepare_payload();
    }
    http::serializer<false, http::string_body> sr(out);
    if (head) sr.split(true);
    boost::system::error_code wec;
    while (!wec && !(head ? sr.is_header_done() : sr.is_done())) {
      deadline.Arm(limits.write_timeout);  // each write that moves bytes starts it again
      auto [e, wn] = co_await http::async_write_some(stream, sr, kTuple);
      wec = e;
      if (state->closed) co_return;
    }
    if (wec) {
      write_failed();
      break;
    }
    deadline.Disarm();
    deadline.Reset();
    if (!keep_alive) break;
  }
}

asio::awaitable<void> Serve(std::shared_ptr<HttpServer::State> state,
                            std::shared_ptr<tcp::socket> sock) {
  Deadline deadline(state->io, sock);
  if (!state->tls) {
    co_await ServeRequests(state, *sock, deadline);
    co_return;
  }
  asio::ssl::stream<tcp::socket&> tls(*sock, *state->tls);
  // Bounded even when line_timeout is 0: a peer that never finishes the
  // handshake must not keep its place under client_limit.
  deadline.Arm(state->limits.line_timeout.count() > 0 ? state->limits.line_timeout
                                                      : kHandshakeTimeout);
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, kTuple);
  deadline.Disarm();
  if (state->closed) co_return;
  if (ec) {
    if (PowerOfTwo(++state->failed_handshakes)) {
      spdlog::info("http {}: TLS handshake failed: {} ({} so far)", state->address, ec.message(),
                   state->failed_handshakes);
    }
    co_return;
  }
  co_await ServeRequests(state, tls, deadline);
}

// Serves one accepted connection; however Serve ends, even by a throw, the
// socket is closed and forgotten.
void StartServing(std::shared_ptr<HttpServer::State> state, std::shared_ptr<tcp::socket> sock) {
  auto it = state->connections.insert(state->connections.end(), sock);
  boost::system::error_code ec;
  auto peer = sock->remote_endpoint(ec);
  std::string name = ec ? std::string("http connection")
                        : fmt::format("http peer {}:{}", peer.address().to_string(), peer.port());
  Spawn(state->io, std::move(name), Serve(state, sock), [state, sock, it](std::exception_ptr) {
    if (state->closed) return;
    boost::system::error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
    sock->close(ignored);
    state->connections.erase(it);
  });
}

// A connection over client_limit: a 503 written if the socket takes it at
// once, then closed.
void Refuse(HttpServer::State& state, tcp::socket& sock) {
  static constexpr std::string_view k503 =
      "HTTP/1.1 503 Service Unavailable\r\nServer: mailscope\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 30\r\n"
      "Connection: close\r\n\r\ntoo many open HTTP connections";
  boost::system::error_code ec;
  sock.non_blocking(true, ec);
  if (!ec) sock.write_some(asio::buffer(k503.data(), k503.size()), ec);
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
  if (PowerOfTwo(++state.refused)) {
    spdlog::warn("http {}: client_limit {} reached, connection refused ({} so far)", state.address,
                 state.limits.client_limit, state.refused);
  }
}

asio::awaitable<void> AcceptLoop(std::shared_ptr<HttpServer::State> state) {
  for (;;) {
    auto sock = std::make_shared<tcp::socket>(state->io);
    auto [aec] = co_await state->acceptor.async_accept(*sock, kTuple);
    if (state->closed || aec == asio::error::operation_aborted) co_return;
    if (aec) {
      // EMFILE and friends: the open connections are served meanwhile.
      state->restart.expires_after(
          state->accept_backoff.Failed("http " + state->address, aec.message()));
      co_await state->restart.async_wait(kTuple);
      if (state->closed) co_return;
      continue;
    }
    state->accept_backoff.Succeeded();
    if (state->connections.size() >= state->limits.client_limit) {
      Refuse(*state, *sock);
      continue;
    }
    StartServing(state, sock);
  }
}

// Accepting goes on until Close(): after a fault it restarts after a pause,
// so a fault on every accept cannot spin.
void StartAccepting(std::shared_ptr<HttpServer::State> state) {
  Spawn(state->io, "http " + state->address, AcceptLoop(state), [state](std::exception_ptr e) {
    if (!e || state->closed) return;
    state->restart.expires_after(std::chrono::milliseconds(100));
    state->restart.async_wait([state](boost::system::error_code ec) {
      if (!ec && !state->closed) StartAccepting(state);
    });
  });
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(asio::io_context& io,
                                                       const std::string& address,
                                                       HttpRouter router,
                                                       const LineServerLimits& limits) {
  return ListenWith(io, address, std::move(router), limits, nullptr);
}

Result<std::unique_ptr<HttpServer>> HttpServer::ListenWith(asio::io_context& io,
                                                           const std::string& address,
                                                           HttpRouter router,
                                                           const LineServerLimits& limits,
                                                           asio::ssl::context* tls) {
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) return InvalidArgument("bad HTTP address \"" + hp->first + "\": need an IP literal");
  auto state = std::make_shared<State>(io);
  state->router = std::move(router);
  state->limits = limits;
  // Set before the first accept: every connection of a TLS listener is TLS.
  if (tls != nullptr) state->tls.emplace(std::move(*tls));
  tcp::endpoint ep(ip, hp->second);
  state->acceptor.open(ep.protocol(), ec);
  if (!ec) state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(ep, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(fmt::format("HTTP listen {}: {}", address, ec.message()));
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->state_ = state;
  state->address = address;
  StartAccepting(state);
  return server;
}

namespace {

// A server context of `tls`'s files, or the error that names the file.
Status MakeTlsContext(const HttpTls& tls, std::optional<asio::ssl::context>& out) {
  asio::ssl::context& context = out.emplace(asio::ssl::context::tls_server);
  context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  // No renegotiation: a peer could make the server redo the costly part of
  // a handshake at will.
  SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  context.use_certificate_chain_file(tls.certificate_file, ec);
  if (ec) {
    return InvalidArgument(
        fmt::format("TLS certificate {}: {}", tls.certificate_file, ec.message()));
  }
  context.use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
  if (ec) return InvalidArgument(fmt::format("TLS key {}: {}", tls.key_file, ec.message()));
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    return InvalidArgument(fmt::format("TLS key {} does not belong to the certificate of {}",
                                       tls.key_file, tls.certificate_file));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::ListenTls(asio::io_context& io,
                                                          const std::string& address,
                                                          HttpRouter router, const HttpTls& tls,
                                                          const LineServerLimits& limits) {
  std::optional<asio::ssl::context> context;
  MS_RETURN_IF_ERROR(MakeTlsContext(tls, context));
  return ListenWith(io, address, std::move(router), limits, &*context);
}

Status HttpServer::ReloadTls(const HttpTls& tls) {
  if (!state_->tls) return FailedPrecondition("not a TLS listener");
  std::optional<asio::ssl::context> context;
  MS_RETURN_IF_ERROR(MakeTlsContext(tls, context));
  // Connections made before keep the old context: OpenSSL counts its users.
  state_->tls.emplace(std::move(*context));
  return Status::Ok();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(asio::io_context& io,
                                                       const std::string& address,
                                                       HttpHandler handler,
                                                       const LineServerLimits& limits) {
  HttpRouter router;
  router.AddPrefix({}, "/", std::move(handler));
  return Listen(io, address, std::move(router), limits);
}

std::string HttpServer::local_address() const {
  boost::system::error_code ec;
  auto ep = state_->acceptor.local_endpoint(ec);
  if (ec) return {};
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

LineServerFigures HttpServer::figures() const {
  LineServerFigures f;
  f.connections = state_->connections.size();
  f.handler_faults = state_->faults.count();
  f.accept_failures = state_->accept_backoff.failures();
  f.refused = state_->refused;
  f.closed_line_timeout = state_->closed_request_timeout;
  f.closed_write_timeout = state_->closed_write_timeout;
  f.closed_tls_handshake = state_->failed_handshakes;
  return f;
}

void HttpServer::Close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
  state_->restart.cancel();
  boost::system::error_code ec;
  state_->acceptor.close(ec);
  for (auto& s : state_->connections) s->close(ec);
  state_->connections.clear();
}

HttpServer::~HttpServer() { Close(); }

}  // namespace mailscope::net
