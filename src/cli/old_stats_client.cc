#include "cli/old_stats_client.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/connect.h"
#include "core/tab_escape.h"
#include "serve/config.h"

namespace mailscope::cli {

std::string DefaultSocket(const std::string& run_dir) {
  return (run_dir.empty() ? serve::DefaultRunDir() : run_dir) + "/old-stats";
}

Result<OldStatsClient> OldStatsClient::Connect(const std::string& target) {
  auto fd = ConnectTo(target);
  if (!fd.ok()) return fd.status();
  return OldStatsClient(*fd);
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
