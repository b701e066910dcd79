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

// Requests larger than this are refused: every resource here is a short GET.
constexpr std::size_t kMaxRequestBytes = 16 * 1024;
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
  boost::beast::flat_buffer buffer(kMaxRequestBytes);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBytes);
    parser.header_limit(kMaxRequestBytes);
    auto [ec, n] = co_await http::async_read(*sock, buffer, parser, kTuple);
    if (ec || state->closed) break;
    const auto& req = parser.get();
    HttpRequest r{
        std::string_view(req.method_string().data(), req.method_string().size()),
        std::string_view(req.target().data(), req.target().size()),
        std::string_view(req[http::field::accept].data(), req[http::field::accept].size())};
    HttpResponse resp = state->handler(r);
    http::response<http::string_body> out(static_cast<http::status>(resp.status), req.version());
    out.set(http::field::server, "mailscope");
    out.set(http::field::content_type, resp.content_type);
    if (!resp.allow.empty()) out.set(http::field::allow, resp.allow);
    out.keep_alive(req.keep_alive());
    if (req.method() == http::verb::head) {
      out.content_length(resp.body.size());
    } else {
      out.body() = std::move(resp.body);
      out.prepare_payload();
    }
    http::serializer<false, http::string_body> sr(out);
    if (req.method() == http::verb::head) sr.split(true);
    auto [wec, wn] = req.method() == http::verb::head
                         ? co_await http::async_write_header(*sock, sr, kTuple)
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
