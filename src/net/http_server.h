// A small HTTP/1.1 server (Boost.Beast) on the loop thread: keep-alive, an
// HttpRouter choosing the handler. Used for /metrics, /healthz and the POSTs
// of event sources. The header (at most 16 KiB) is read first and the route
// resolved, so 404, 405, 415 and an oversized Content-Length (413) are
// answered before any body is read; such a response closes the connection,
// as does every 413. A connection that sends no complete request for 30
// seconds is closed. HEAD gets the GET response's headers without its body.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/http_router.h"

namespace mailscope::net {

// Owns the listening socket and its connections; loop thread only.
class HttpServer {
 public:
  // Listens on "ADDR:PORT" (port 0 picks one; see local_address()) and serves
  // `router`. Errors: kInvalidArgument for a bad address, kUnavailable when
  // the socket cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Listen(boost::asio::io_context& io,
                                                    const std::string& address, HttpRouter router);
  // One handler for every method and path, with the default body limit.
  static Result<std::unique_ptr<HttpServer>> Listen(boost::asio::io_context& io,
                                                    const std::string& address,
                                                    HttpHandler handler);
  ~HttpServer();
  // Stops accepting and closes every connection; idempotent.
  void Close();
  std::string local_address() const;

  struct State;  // shared with the coroutines serving it

 private:
  HttpServer() = default;
  std::shared_ptr<State> state_;
};

}  // namespace mailscope::net
