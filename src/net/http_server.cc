#include "net/http_server.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <list>

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
// A connection that sends no complete request for this long is closed, so
// idle or trickling clients cannot hold sockets forever.
constexpr auto kIdleTimeout = std::chrono::seconds(30);

struct HttpServer::State {
  explicit State(asio::io_context& ctx) : io(ctx), acceptor(ctx), restart(ctx) {}
  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer restart;  // of the accept loop after a fault, or its pause
  AcceptBackoff accept_backoff;
  std::string address;  // as configured, for logs
  HttpRouter router;
  FaultLog faults;
  bool closed = false;
  std::list<std::shared_ptr<tcp::socket>> connections;
};

namespace {

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

asio::awaitable<void> Serve(std::shared_ptr<HttpServer::State> state,
                            std::shared_ptr<tcp::socket> sock) {
  boost::beast::flat_buffer buffer(kReadBufferBytes);
  asio::steady_timer idle(state->io);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    // The route sets the body limit once the header is in; until then none,
    // or Beast would hold Content-Length against its own 1 MB default.
    parser.body_limit(boost::none);
    idle.expires_after(kIdleTimeout);
    idle.async_wait([sock](boost::system::error_code ec) {
      if (!ec) {  // expired, not cancelled
        boost::system::error_code ignored;
        sock->close(ignored);
      }
    });
    auto [ec, n] = co_await http::async_read_header(*sock, buffer, parser, kTuple);
    if (state->closed) break;
    if (ec) {
      idle.cancel();
      break;
    }
    const auto& req = parser.get();
    const std::string_view target = View(req.target());
    const std::string_view path = TargetPath(target);
    HttpRouter::Match match = state->router.Find(View(req.method_string()), path);
    HttpResponse resp;
    bool failed = false;
    if (match.route == nullptr) {
      resp = std::move(match.error);
    } else {
      const HttpRouter::Route& route = *match.route;
      const auto length = parser.content_length();
      if (length && *length > route.options.max_body_bytes) {
        resp = TooLarge(route.options);
      } else if (!parser.is_done() &&
                 !route.AcceptsContentType(View(req[http::field::content_type]))) {
        resp = HttpError(415, "unsupported content type", route.options.api);
      } else if (!parser.is_done()) {
        parser.body_limit(route.options.max_body_bytes);
        if (ExpectsContinue(req)) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          auto [cec, cn] = co_await asio::async_write(
              *sock, asio::buffer(kContinue.data(), kContinue.size()), kTuple);
          if (state->closed || cec) {
            idle.cancel();
            break;
          }
        }
        auto [bec, bn] = co_await http::async_read(*sock, buffer, parser, kTuple);
        if (state->closed) break;
        if (bec == http::error::body_limit) {
          resp = TooLarge(route.options);
        } else if (bec) {
          idle.cancel();
          break;
        }
      }
      if (parser.is_done()) {
        BeastHeaders headers(req);
        const HttpRequest request{.method = View(req.method_string()),
                                  .target = target,
                                  .path = path,
                                  .query = TargetQuery(target),
                                  .subpath = match.subpath,
                                  .accept = View(req[http::field::accept]),
                                  .content_type = View(req[http::field::content_type]),
                                  .body = req.body(),
                                  .headers = &headers,
                                  .api = route.options.api};
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
    idle.cancel();
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
    auto [wec, wn] = head ? co_await http::async_write_header(*sock, sr, kTuple)
                          : co_await http::async_write(*sock, sr, kTuple);
    if (wec || !keep_alive || state->closed) break;
  }
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
                                                       HttpRouter router) {
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) return InvalidArgument("bad HTTP address \"" + hp->first + "\": need an IP literal");
  auto state = std::make_shared<State>(io);
  state->router = std::move(router);
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

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(asio::io_context& io,
                                                       const std::string& address,
                                                       HttpHandler handler) {
  HttpRouter router;
  router.AddPrefix({}, "/", std::move(handler));
  return Listen(io, address, std::move(router));
}

std::string HttpServer::local_address() const {
  boost::system::error_code ec;
  auto ep = state_->acceptor.local_endpoint(ec);
  if (ec) return {};
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
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
