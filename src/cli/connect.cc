#include "cli/connect.h"

#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailscope::cli {

Result<int> ConnectTo(const std::string& target) {
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
    return fd;
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
  return fd;
}

}  // namespace mailscope::cli
