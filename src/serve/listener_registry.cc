#include "serve/listener_registry.h"

namespace mailscope::serve {

template <typename T>
T* ListenerRegistry::Keep(std::unique_ptr<T> listener, bool fifo) {
  std::shared_ptr<T> owned(std::move(listener));
  T* raw = owned.get();
  entries_.push_back({fifo, owned, [raw] { raw->Close(); }});
  return raw;
}

Status ListenerRegistry::OpenFifo(const std::string& path, const net::PathPerms& perms,
                                  std::size_t max_line, net::ReadHandler on_read,
                                  net::LineHandler on_line, net::OverflowHandler on_overflow) {
  auto fifo = net::FifoReader::Open(io_, path, perms, max_line, std::move(on_read),
                                    std::move(on_line), std::move(on_overflow));
  if (!fifo.ok()) return fifo.status();
  Keep(std::move(*fifo), true);
  return Status::Ok();
}

Result<net::LineServer*> ListenerRegistry::ListenUnix(const std::string& path,
                                                      const net::PathPerms& perms,
                                                      std::size_t max_line,
                                                      net::ConnectionFactory factory) {
  auto server = net::LineServer::ListenUnix(io_, path, perms, max_line, std::move(factory));
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false);
}

Result<net::LineServer*> ListenerRegistry::ListenUnix(const std::string& path,
                                                      const net::PathPerms& perms,
                                                      std::size_t max_line,
                                                      net::RequestHandler handler) {
  auto server = net::LineServer::ListenUnix(io_, path, perms, max_line, std::move(handler));
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false);
}

Result<net::LineServer*> ListenerRegistry::ListenTcp(const std::string& address,
                                                     std::size_t max_line,
                                                     net::RequestHandler handler) {
  auto server = net::LineServer::ListenTcp(io_, address, max_line, std::move(handler));
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false);
}

Result<net::HttpServer*> ListenerRegistry::ListenHttp(const std::string& address,
                                                      net::HttpRouter router) {
  auto server = net::HttpServer::Listen(io_, address, std::move(router));
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false);
}

void ListenerRegistry::CloseAll() {
  for (bool fifos : {true, false}) {
    for (Entry& e : entries_) {
      if (e.fifo == fifos && e.close) {
        e.close();
        e.close = nullptr;
      }
    }
  }
}

}  // namespace mailscope::serve
