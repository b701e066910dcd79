// `mailscope tail`: the live events of every source that match a filter.
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "cli/connect.h"
#include "core/tab_escape.h"
#include "filter/filter.h"
#include "query/tail.h"
#include "serve/config.h"

namespace mailscope::cli {
namespace {

struct TailFlags {
  std::string filter;
  bool dovecot_syntax = false;
  std::string format = "text";
  std::uint64_t count = 0;  // 0: until interrupted
  double timeout = 0;       // seconds; 0: none
  std::string run_dir;
  std::string socket;
};

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Streams until the count is reached (0), the server ends the stream (1),
// the deadline passes (0 when at least one event came, else 1), stdout
// closes (0), or the server refuses the request (2).
int Stream(int fd, const TailFlags& f) {
  const filter::Dialect dialect =
      f.dovecot_syntax ? filter::Dialect::kDovecot : filter::Dialect::kMailscope;
  auto format = query::ParseTailFormat(f.format);
  if (!WriteAll(fd, query::TailRequestLine(*format, dialect, f.filter))) {
    fmt::print(stderr, "mailscope tail: cannot send the request: {}\n", std::strerror(errno));
    return 1;
  }
  std::string buf;
  std::uint64_t events = 0;
  bool started = false;
  const int timeout_ms = f.timeout > 0 ? static_cast<int>(f.timeout * 1000) : -1;
  for (;;) {
    std::size_t lf;
    while ((lf = buf.find('\n')) != std::string::npos) {
      std::string_view line(buf.data(), lf);
      if (!started) {
        if (line == "OK") {
          started = true;
        } else if (line.starts_with("ERROR\t")) {
          std::string msg(line.substr(6));
          std::vector<std::string_view> parts;
          SplitTabEscaped(std::span<char>(msg.data(), msg.size()), parts);
          fmt::print(stderr, "mailscope tail: {}\n", parts.empty() ? "" : parts[0]);
          return 2;
        } else {
          fmt::print(stderr, "mailscope tail: unexpected reply '{}'\n", line);
          return 1;
        }
      } else if (line.starts_with("E\t")) {
        line.remove_prefix(2);
        if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
            std::fputc('\n', stdout) == EOF || std::fflush(stdout) != 0) {
          return 0;  // the reader of stdout went away (| head)
        }
        if (++events == f.count) return 0;
      } else if (line.starts_with("D\t")) {
        fmt::print(stderr, "mailscope tail: {} events dropped: output not read fast enough\n",
                   line.substr(2));
      }
      buf.erase(0, lf + 1);
    }
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return events > 0 ? 0 : 1;  // --timeout passed
    char chunk[65536];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fmt::print(stderr, "mailscope tail: the server closed the stream{}\n",
                 n < 0 ? fmt::format(": {}", std::strerror(errno)) : "");
      return 1;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace

void AddTailCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<TailFlags>();
  CLI::App* cmd = app.add_subcommand(
      "tail",
      "Print the live events of every source that match a filter, one per line, as they\n"
      "reach mailscope serve (Dovecot's stats-writer and old-stats, and every other\n"
      "source serve takes). The filter is mailscope's event filter language (docs/filter.md):\n"
      "  mailscope tail --filter 'event=auth_request_finished AND NOT success=yes'\n"
      "  mailscope tail --filter 'event=imap_command_finished AND duration > 100ms'\n"
      "  mailscope tail --filter 'category=service:lmtp' --format json\n"
      "While a tail runs, Dovecot's processes are asked to send the events it wants as\n"
      "well. Without --filter every named event is printed.");
  cmd->add_option("-f,--filter", f->filter, "Event filter (mailscope's language, with units)");
  cmd->add_flag("--dovecot-syntax", f->dovecot_syntax,
                "Read the filter in Dovecot 2.3's language exactly (no units)");
  cmd->add_option("--format", f->format,
                  "text (time source name categories key=value...), json or tab-text "
                  "(Dovecot's event exporter formats, every part included)")
      ->check(CLI::IsMember({"text", "json", "tab-text"}));
  cmd->add_option("-n,--count", f->count, "Exit after this many events");
  cmd->add_option("--timeout", f->timeout,
                  "Exit after this many seconds without an event (status 1 if none came)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--run-dir", f->run_dir, "Run directory of mailscope serve (default: as serve)");
  cmd->add_option("-s,--socket", f->socket, "The tail socket (default: RUN_DIR/tail)");
  cmd->callback([f, &exit_code] {
    const filter::Dialect dialect =
        f->dovecot_syntax ? filter::Dialect::kDovecot : filter::Dialect::kMailscope;
    // Checked as serve will, but for the names: those are this process's
    // own here, and serve answers for its own budget (ERROR, status 2).
    NameBudget names(NameInput::kTail, UINT32_MAX);
    if (auto parsed = filter::ParseClientFilter(f->filter, dialect, names); !parsed.ok()) {
      fmt::print(stderr, "mailscope tail: {}\n", parsed.status().message());
      exit_code = 2;
      return;
    }
    std::string target = f->socket.empty()
                             ? (f->run_dir.empty() ? serve::DefaultRunDir() : f->run_dir) + "/tail"
                             : f->socket;
    auto fd = ConnectTo(target);
    if (!fd.ok()) {
      fmt::print(stderr, "mailscope tail: {}\n", fd.status().message());
      exit_code = 1;
      return;
    }
    std::signal(SIGPIPE, SIG_IGN);
    exit_code = Stream(*fd, *f);
    ::close(*fd);
  });
}

}  // namespace mailscope::cli
