#include "net/http_server.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <list>

#include "net/listeners.h"

namespace mailscope::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Request headers larger than this are refused.
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
// A connection that sends no complete request for this long is closed, so
// idle or trickling clients cannot hold sockets forever.
constexpr auto kIdleTimeout = std::chrono::seconds(30);

struct HttpServer::State {
  explicit State(asio::io_context& ctx) : io(ctx), acceptor(ctx) {}
  asio::io_context& io;
  tcp::acceptor acceptor;
  HttpHandler handler;
  bool closed = false;
  std::list<std::shared_ptr<tcp::socket>> connections;
};

namespace {

asio::awaitable<void> Serve(std::shared_ptr<HttpServer::State> state,
                            std::shared_ptr<tcp::socket> sock) {
  auto it = state->connections.insert(state->connections.end(), sock);
  boost::beast::flat_buffer buffer(kMaxHeaderBytes + kMaxBodyBytes);
  asio::steady_timer idle(state->io);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    idle.expires_after(kIdleTimeout);
    idle.async_wait([sock](boost::system::error_code ec) {
      if (!ec) {  // expired, not cancelled
        boost::system::error_code ignored;
        sock->close(ignored);
      }
    });
    auto [ec, n] = co_await http::async_read(*sock, buffer, parser, kTuple);
    idle.cancel();
    if (state->closed) break;
    HttpResponse resp;
    bool keep_alive = false;
    unsigned version = 11;
    bool head = false;
    if (ec == http::error::body_limit) {
      resp = {413,
              "text/plain; charset=utf-8",
              fmt::format("request body larger than {} bytes\n", kMaxBodyBytes),
              {}};
    } else if (ec) {
      break;
    } else {
      const auto& req = parser.get();
      auto view = [](boost::beast::string_view v) { return std::string_view(v.data(), v.size()); };
      HttpRequest r{view(req.method_string()), view(req.target()), view(req[http::field::accept]),
                    view(req[http::field::content_type]), req.body()};
      resp = state->handler(r);
      keep_alive = req.keep_alive();
      version = req.version();
      head = req.method() == http::verb::head;
    }
    http::response<http::string_body> out(static_cast<http::status>(resp.status), version);
    out.set(http::field::server, "mailscope");
    out.set(http::field::content_type, resp.content_type);
    if (!resp.allow.empty()) out.set(http::field::allow, resp.allow);
    out.keep_alive(keep_alive);
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
    if (wec || !out.keep_alive() || state->closed) break;
  }
  if (!state->closed) {
    boost::system::error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
    sock->close(ignored);
    state->connections.erase(it);
  }
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(asio::io_context& io,
                                                       const std::string& address,
                                                       HttpHandler handler) {
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (ec) return InvalidArgument("bad HTTP address \"" + hp->first + "\": need an IP literal");
  auto state = std::make_shared<State>(io);
  state->handler = std::move(handler);
  tcp::endpoint ep(ip, hp->second);
  state->acceptor.open(ep.protocol(), ec);
  if (!ec) state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(ep, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(fmt::format("HTTP listen {}: {}", address, ec.message()));
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->state_ = state;
  asio::co_spawn(
      io,
      [state]() -> asio::awaitable<void> {
        for (;;) {
          auto sock = std::make_shared<tcp::socket>(state->io);
          auto [aec] = co_await state->acceptor.async_accept(*sock, kTuple);
          if (state->closed || aec == asio::error::operation_aborted) co_return;
          if (aec) continue;
          asio::co_spawn(state->io, Serve(state, sock), asio::detached);
        }
      },
      asio::detached);
  return server;
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
  boost::system::error_code ec;
  state_->acceptor.close(ec);
  for (auto& s : state_->connections) s->close(ec);
  state_->connections.clear();
}

HttpServer::~HttpServer() { Close(); }

}  // namespace mailscope::net
