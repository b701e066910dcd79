// A blocking client of the old-stats EXPORT protocol, for `mailscope dump`
// and `mailscope top`: a UNIX socket path or a TCP "ADDR:PORT".
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace mailscope::cli {

class OldStatsClient {
 public:
  // `target` is a socket path, or "tcp:ADDR:PORT".
  static Result<OldStatsClient> Connect(const std::string& target);
  OldStatsClient(OldStatsClient&& other) noexcept;
  OldStatsClient& operator=(OldStatsClient&&) = delete;
  ~OldStatsClient();

  // Sends EXPORT and reads the reply. Returns the rows, header first; empty
  // when the server had nothing to walk (its bare-newline reply).
  Result<std::vector<std::string>> Export(const std::string& level,
                                          const std::vector<std::string>& filters);
  Status Reset();

 private:
  explicit OldStatsClient(int fd) : fd_(fd) {}
  Result<std::string> ReadLine();

  int fd_ = -1;
  std::string buf_;
};

// The run directory's query socket.
std::string DefaultSocket(const std::string& run_dir);

}  // namespace mailscope::cli
