// mailscope: one binary, subcommands. main only dispatches.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

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
  mailscope::cli::AddEventsCommand(app, exit_code);
  mailscope::cli::AddRecordsCommand(app, exit_code);
  mailscope::cli::AddReplayCommand(app, exit_code);
  // Subcommands run inside parse(). Our code returns errors as values; an
  // exception reaching here is a fault of the program, not of its input or
  // environment: it ends the process with EX_SOFTWARE (sysexits.h) and a
  // message, rather than std::terminate's abort.
  constexpr int kInternalError = 70;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mailscope: internal error: %s\n", e.what());
    return kInternalError;
  } catch (...) {
    std::fprintf(stderr, "mailscope: internal error: unknown exception\n");
    return kInternalError;
  }
  return exit_code;
}
