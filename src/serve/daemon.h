// The `mailscope serve` daemon: the only place that knows every module. It
// owns the loop, the old-stats store and every listener, and wires decoded
// events to consumers. Single-threaded: everything runs on the loop thread.
#pragma once

#include <optional>
#include <string>

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

}  // namespace mailscope::serve
