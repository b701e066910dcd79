// The `mailscope serve` daemon: the one place that knows every module. It
// only wires: the listener registry, the sources (listener + decoder), the
// dispatcher and the outputs registered with it (old-stats zoom levels,
// metrics, tail, exporters), the readers (old-stats EXPORT, stats-reader,
// HTTP), timers and signals. Everything runs on one loop thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/event.h"
#include "core/status.h"
#include "serve/config.h"

namespace mailscope::serve {

struct ServeFlags {
  std::string config_path;               // empty: embedded defaults only
  std::optional<std::string> run_dir;    // --run-dir
  std::optional<std::string> data_dir;   // --data-dir
  std::optional<std::string> http;       // --http
  std::optional<std::string> log_level;  // --log-level
};

// Runs until SIGTERM or SIGINT. Returns the process exit code: 0 after a
// clean shutdown, 2 for configuration errors, 1 when a listener cannot start.
int RunServe(const ServeFlags& flags);

class Daemon {
 public:
  struct Options {
    // SIGTERM and SIGINT stop it, SIGHUP reloads `config_path`. Off for a
    // daemon run inside another program (tests).
    bool handle_signals = true;
    // Test-only: called on the loop thread with each event of a Dovecot
    // source (FIFO lines, stats-writer) right before it is dispatched, so a
    // test can make the line's handling fail. Unset in production.
    std::function<void(const Event&)> before_dispatch_for_testing;
    // Test-only: called on the loop thread when a reload has been applied
    // (OK) or refused (the error), so a test can wait for it.
    std::function<void(const Status&)> after_reload_for_testing;
  };

  // `config` complete (run and data directories set); `config_path` is what
  // SIGHUP reloads, empty for none.
  Daemon(Config config, std::string config_path, Options options);
  ~Daemon();

  // Opens every listener. kInvalidArgument for settings that cannot work,
  // kUnavailable when a listener cannot be opened.
  Status Start();
  // Runs the loop until Stop() or a stop signal. An exception escaping a
  // handler is logged and the loop goes on (see net::RunContained).
  void Run();
  // Stops it: may be called from any thread. Run() returns once the file
  // and log exporters have written what they hold (at most 10 s).
  void Stop();
  // Reloads `config_path` as SIGHUP does: parsed off the loop, then applied
  // on it. May be called from any thread; returns at once.
  void Reload();
  // The HTTP listener's address ("127.0.0.1:PORT"); empty without one.
  std::string http_address() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace mailscope::serve
