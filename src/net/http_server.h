// A small HTTP/1.1 server (Boost.Beast) on the loop thread, plain or TLS
// (OpenSSL): keep-alive, an
// HttpRouter choosing the handler. Used for /metrics, /healthz and the POSTs
// of event sources. The header (at most 16 KiB) is read first and the route
// resolved, so 404, 405, 415 and an oversized Content-Length (413) are
// answered before any body is read; such a response closes the connection,
// as does every 413. HEAD gets the GET response's headers without its body.
//
// Limits (LineServerLimits, the same settings as the line sockets'):
// client_limit connections are served; one more gets a 503 written without
// waiting and is closed. A connection that sends no complete request header
// within line_timeout of the previous response (or of its accept), or then
// no more of a body for line_timeout, is closed, and counted when it had
// sent part of a request. A response the client does not take
// for write_timeout (reset by every byte taken) closes the connection. An
// idle connection gives back its read buffer. buffer_limit and output_limit
// do not apply: a request is bounded by the header limit and its route's
// body limit, a response is written before the next request is read.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/http_router.h"
#include "net/line_limits.h"

namespace boost::asio::ssl {
class context;
}

namespace mailscope::net {

// A listener's TLS: PEM files of the certificate chain and its key. TLS 1.2
// and later, no renegotiation; the handshake is bounded by line_timeout like
// a request header (10 s when line_timeout is 0).
struct HttpTls {
  std::string certificate_file;
  std::string key_file;
};

// Owns the listening socket and its connections; loop thread only.
class HttpServer {
 public:
  // Listens on "ADDR:PORT" (port 0 picks one; see local_address()) and serves
  // `router`. Errors: kInvalidArgument for a bad address, kUnavailable when
  // the socket cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Listen(boost::asio::io_context& io,
                                                    const std::string& address, HttpRouter router,
                                                    const LineServerLimits& limits = {});
  // The same over TLS. Also kInvalidArgument when a file cannot be read or
  // the key does not fit the certificate.
  static Result<std::unique_ptr<HttpServer>> ListenTls(boost::asio::io_context& io,
                                                       const std::string& address,
                                                       HttpRouter router, const HttpTls& tls,
                                                       const LineServerLimits& limits = {});
  // One handler for every method and path, with the default body limit.
  static Result<std::unique_ptr<HttpServer>> Listen(boost::asio::io_context& io,
                                                    const std::string& address, HttpHandler handler,
                                                    const LineServerLimits& limits = {});
  // A TLS listener's certificate and key read again (a renewed certificate);
  // connections accepted from now on use them. Errors as ListenTls'; the
  // running ones stay then.
  Status ReloadTls(const HttpTls& tls);
  ~HttpServer();
  // Stops accepting and closes every connection; idempotent.
  void Close();
  std::string local_address() const;
  // Counters of the limits; held_input_bytes and queued_output_bytes stay 0.
  LineServerFigures figures() const;

  struct State;  // shared with the coroutines serving it

 private:
  HttpServer() = default;
  // Listen(), over TLS when `tls` (moved from) is not null.
  static Result<std::unique_ptr<HttpServer>> ListenWith(boost::asio::io_context& io,
                                                        const std::string& address,
                                                        HttpRouter router,
                                                        const LineServerLimits& limits,
                                                        boost::asio::ssl::context* tls);
  std::shared_ptr<State> state_;
};

}  // namespace mailscope::net
