// ListenerRegistry: every FIFO and socket the daemon reads or serves, opened
// and closed in one place. Sources and readers ask it for their listeners;
// at shutdown it closes the FIFOs first (what writers already sent is read
// and accounted), then everything else in the order opened. Loop thread
// only. Owns the listeners.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/http_server.h"
#include "net/listeners.h"
#include "serve/metrics_page.h"

namespace mailscope::serve {

class ListenerRegistry {
 public:
  explicit ListenerRegistry(boost::asio::io_context& io) : io_(io) {}
  ~ListenerRegistry() { CloseAll(); }

  boost::asio::io_context& io() { return io_; }

  Status OpenFifo(const std::string& path, const net::PathPerms& perms, std::size_t max_line,
                  net::ReadHandler on_read, net::LineHandler on_line,
                  net::OverflowHandler on_overflow);
  Result<net::LineServer*> ListenUnix(const std::string& path, const net::PathPerms& perms,
                                      std::size_t max_line, net::ConnectionFactory factory,
                                      const net::LineServerLimits& limits = {});
  Result<net::LineServer*> ListenUnix(const std::string& path, const net::PathPerms& perms,
                                      std::size_t max_line, net::RequestHandler handler,
                                      const net::LineServerLimits& limits = {});
  Result<net::LineServer*> ListenTcp(const std::string& address, std::size_t max_line,
                                     net::RequestHandler handler,
                                     const net::LineServerLimits& limits = {});
  Result<net::HttpServer*> ListenHttp(const std::string& address, net::HttpRouter router,
                                      const net::LineServerLimits& limits = {});
  Result<net::HttpServer*> ListenHttps(const std::string& address, net::HttpRouter router,
                                       const net::HttpTls& tls,
                                       const net::LineServerLimits& limits = {});

  // Closes every listener; idempotent.
  void CloseAll();

  // The FIFOs and line sockets, in the order opened (not the HTTP listener).
  std::vector<ListenerFigures> Figures() const;

 private:
  struct Entry {
    bool fifo;
    std::shared_ptr<void> owner;
    std::function<void()> close;
    std::function<ListenerFigures()> figures;  // empty: not shown
  };
  template <typename T>
  T* Keep(std::unique_ptr<T> listener, bool fifo, std::string name);

  boost::asio::io_context& io_;
  std::vector<Entry> entries_;
};

}  // namespace mailscope::serve
