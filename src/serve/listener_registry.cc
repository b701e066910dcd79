#include "serve/listener_registry.h"

#include <filesystem>
#include <type_traits>

namespace mailscope::serve {

namespace {

std::string FileName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

template <typename T>
T* ListenerRegistry::Keep(std::unique_ptr<T> listener, bool fifo, std::string name) {
  std::shared_ptr<T> owned(std::move(listener));
  T* raw = owned.get();
  std::function<ListenerFigures()> figures;
  if constexpr (std::is_same_v<T, net::LineServer> || std::is_same_v<T, net::HttpServer>) {
    figures = [raw, name] { return ListenerFigures{name, false, raw->figures()}; };
  } else if constexpr (std::is_same_v<T, net::FifoReader>) {
    figures = [raw, name] {
      ListenerFigures out{name, true, {}};
      out.server.handler_faults = raw->handler_faults();
      return out;
    };
  }
  entries_.push_back({fifo, owned, [raw] { raw->Close(); }, std::move(figures)});
  return raw;
}

std::vector<ListenerFigures> ListenerRegistry::Figures() const {
  std::vector<ListenerFigures> out;
  for (const Entry& e : entries_)
    if (e.figures) out.push_back(e.figures());
  return out;
}

Status ListenerRegistry::OpenFifo(const std::string& path, const net::PathPerms& perms,
                                  std::size_t max_line, net::ReadHandler on_read,
                                  net::LineHandler on_line, net::OverflowHandler on_overflow) {
  auto fifo = net::FifoReader::Open(io_, path, perms, max_line, std::move(on_read),
                                    std::move(on_line), std::move(on_overflow));
  if (!fifo.ok()) return fifo.status();
  Keep(std::move(*fifo), true, FileName(path));
  return Status::Ok();
}

Result<net::LineServer*> ListenerRegistry::ListenUnix(const std::string& path,
                                                      const net::PathPerms& perms,
                                                      std::size_t max_line,
                                                      net::ConnectionFactory factory,
                                                      const net::LineServerLimits& limits) {
  auto server = net::LineServer::ListenUnix(io_, path, perms, max_line, std::move(factory), limits);
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false, FileName(path));
}

Result<net::LineServer*> ListenerRegistry::ListenUnix(const std::string& path,
                                                      const net::PathPerms& perms,
                                                      std::size_t max_line,
                                                      net::RequestHandler handler,
                                                      const net::LineServerLimits& limits) {
  auto server = net::LineServer::ListenUnix(io_, path, perms, max_line, std::move(handler), limits);
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false, FileName(path));
}

Result<net::LineServer*> ListenerRegistry::ListenTcp(const std::string& address,
                                                     std::size_t max_line,
                                                     net::RequestHandler handler,
                                                     const net::LineServerLimits& limits) {
  auto server = net::LineServer::ListenTcp(io_, address, max_line, std::move(handler), limits);
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false, "tcp " + address);
}

Result<net::HttpServer*> ListenerRegistry::ListenHttp(const std::string& address,
                                                      net::HttpRouter router,
                                                      const net::LineServerLimits& limits) {
  auto server = net::HttpServer::Listen(io_, address, std::move(router), limits);
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false, "http " + address);
}

Result<net::HttpServer*> ListenerRegistry::ListenHttps(const std::string& address,
                                                       net::HttpRouter router,
                                                       const net::HttpTls& tls,
                                                       const net::LineServerLimits& limits) {
  auto server = net::HttpServer::ListenTls(io_, address, std::move(router), tls, limits);
  if (!server.ok()) return server.status();
  return Keep(std::move(*server), false, "https " + address);
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
