// The `mailscope` subcommands. Each Add* registers one subcommand on the
// CLI11 app; its callback stores the process exit code in `exit_code`.
#pragma once

namespace CLI {
class App;
}

namespace mailscope::cli {

void AddServeCommand(CLI::App& app, int& exit_code);
void AddDumpCommand(CLI::App& app, int& exit_code);
void AddResetCommand(CLI::App& app, int& exit_code);
void AddTopCommand(CLI::App& app, int& exit_code);
void AddCheckConfigCommand(CLI::App& app, int& exit_code);
void AddCatalogCommand(CLI::App& app, int& exit_code);
void AddTailCommand(CLI::App& app, int& exit_code);
void AddEventsCommand(CLI::App& app, int& exit_code);
void AddRecordsCommand(CLI::App& app, int& exit_code);
void AddReplayCommand(CLI::App& app, int& exit_code);

}  // namespace mailscope::cli
