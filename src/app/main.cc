// mailscope: one binary, subcommands. main only dispatches.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "mailscope - event and statistics service for mail systems.\n"
      "A drop-in for Dovecot's old-stats service: real Dovecot mail processes write\n"
      "to it and doveadm oldstats reads from it.",
      "mailscope"};
  app.set_version_flag("--version", "mailscope 0.1.0");
  app.require_subcommand(1);
  int exit_code = 0;
  mailscope::cli::AddServeCommand(app, exit_code);
  mailscope::cli::AddDumpCommand(app, exit_code);
  mailscope::cli::AddResetCommand(app, exit_code);
  mailscope::cli::AddTopCommand(app, exit_code);
  mailscope::cli::AddCheckConfigCommand(app, exit_code);
  mailscope::cli::AddCatalogCommand(app, exit_code);
  mailscope::cli::AddTailCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
