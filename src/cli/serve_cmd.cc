#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "serve/daemon.h"

namespace mailscope::cli {

void AddServeCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<serve::ServeFlags>();
  auto run_dir = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>();
  auto http = std::make_shared<std::string>();
  auto level = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Run the statistics service in the foreground until SIGTERM or SIGINT.\n"
      "Creates in the run directory, under Dovecot's own names, the FIFOs\n"
      "old-stats-mail and old-stats-user and the sockets old-stats, stats-writer and\n"
      "stats-reader; exim-events for Exim's event_action (docs/integrations/exim.md);\n"
      "and tail. Serves /metrics and /healthz over HTTP. SIGHUP reloads the\n"
      "reloadable settings, [[rules]] among them.");
  cmd->add_option("--config", flags->config_path,
                  "TOML configuration file (see docs/configuration.md)");
  auto* o_run = cmd->add_option("--run-dir", *run_dir, "Directory for FIFOs and sockets");
  auto* o_data = cmd->add_option("--data-dir", *data_dir, "Directory for persistent data");
  auto* o_http =
      cmd->add_option("--http", *http, "HTTP listener ADDR:PORT (\"\" disables; port 0 picks one)");
  auto* o_level = cmd->add_option("--log-level", *level, "trace, debug, info, warn or error")
                      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  cmd->callback([=, &exit_code] {
    if (o_run->count()) flags->run_dir = *run_dir;
    if (o_data->count()) flags->data_dir = *data_dir;
    if (o_http->count()) flags->http = *http;
    if (o_level->count()) flags->log_level = *level;
    exit_code = serve::RunServe(*flags);
  });
}

}  // namespace mailscope::cli
