#include "cli/old_stats_client.h"

#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/tab_escape.h"
#include "serve/config.h"

namespace mailscope::cli {

std::string DefaultSocket(const std::string& run_dir) {
  return (run_dir.empty() ? serve::DefaultRunDir() : run_dir) + "/old-stats";
}

Result<OldStatsClient> OldStatsClient::Connect(const std::string& target) {
  if (target.starts_with("tcp:")) {
    std::string hp = target.substr(4);
    std::size_t colon = hp.rfind(':');
    if (colon == std::string::npos) return InvalidArgument("expected tcp:ADDR:PORT");
    std::string host = hp.substr(0, colon), port = hp.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      return Unavailable(fmt::format("{}: {}", target, gai_strerror(rc)));
    }
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : ::connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    ::freeaddrinfo(res);
    if (rc != 0) {
      if (fd >= 0) ::close(fd);
      return Unavailable(fmt::format("connect {}: {}", target, std::strerror(err)));
    }
    return OldStatsClient(fd);
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (target.size() >= sizeof addr.sun_path)
    return InvalidArgument("socket path too long: " + target);
  std::memcpy(addr.sun_path, target.c_str(), target.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    return Unavailable(
        fmt::format("connect {}: {}{}", target, std::strerror(err),
                    err == ENOENT ? " (is mailscope serve running with this run directory?)" : ""));
  }
  return OldStatsClient(fd);
}

OldStatsClient::OldStatsClient(OldStatsClient&& other) noexcept
    : fd_(other.fd_), buf_(std::move(other.buf_)) {
  other.fd_ = -1;
}

OldStatsClient::~OldStatsClient() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string> OldStatsClient::ReadLine() {
  for (;;) {
    if (std::size_t lf = buf_.find('\n'); lf != std::string::npos) {
      std::string line = buf_.substr(0, lf);
      buf_.erase(0, lf + 1);
      return line;
    }
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable("the server closed the connection (bad request?)");
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

Result<std::vector<std::string>> OldStatsClient::Export(const std::string& level,
                                                        const std::vector<std::string>& filters) {
  std::string req = "EXPORT\t";
  AppendTabEscaped(req, level);
  for (const std::string& f : filters) {
    req += '\t';
    AppendTabEscaped(req, f);
  }
  req += '\n';
  if (::write(fd_, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    return Unavailable(fmt::format("write: {}", std::strerror(errno)));
  }
  std::vector<std::string> rows;
  auto header = ReadLine();
  if (!header.ok()) return header.status();
  if (header->empty()) return rows;
  rows.push_back(std::move(*header));
  for (;;) {
    auto line = ReadLine();
    if (!line.ok()) return line.status();
    if (line->empty()) return rows;
    rows.push_back(std::move(*line));
  }
}

Status OldStatsClient::Reset() {
  if (::write(fd_, "RESET\n", 6) != 6)
    return Unavailable(fmt::format("write: {}", std::strerror(errno)));
  auto line = ReadLine();
  if (!line.ok()) return line.status();
  if (!line->starts_with("OK")) return Unavailable("unexpected reply to RESET: " + *line);
  return Status::Ok();
}

}  // namespace mailscope::cli
