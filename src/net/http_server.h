// A small HTTP/1.1 server (Boost.Beast) on the loop thread: keep-alive, one
// handler for every request. Used for /metrics, /healthz and the POSTs of
// Dovecot's event exporters. Requests are bounded (16 KiB of headers,
// kMaxBodyBytes of body: larger ones get 413 and the connection closes); a
// connection that sends no complete request for 30 seconds is closed.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mailscope::net {

inline constexpr std::size_t kMaxBodyBytes = 1u << 20;

struct HttpRequest {
  std::string_view method;
  std::string_view target;
  std::string_view accept;
  std::string_view content_type;
  std::string_view body;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;  // the Allow header of a 405
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Listens on "ADDR:PORT" (port 0 picks one; see local_address()).
  static Result<std::unique_ptr<HttpServer>> Listen(boost::asio::io_context& io,
                                                    const std::string& address,
                                                    HttpHandler handler);
  ~HttpServer();
  void Close();
  std::string local_address() const;

  struct State;  // shared with the coroutines serving it

 private:
  HttpServer() = default;
  std::shared_ptr<State> state_;
};

}  // namespace mailscope::net
