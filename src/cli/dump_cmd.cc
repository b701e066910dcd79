#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/dump_format.h"
#include "cli/old_stats_client.h"

namespace mailscope::cli {

namespace {
struct DumpFlags {
  std::string level;
  std::vector<std::string> filters;
  std::string run_dir;
  std::string socket;
  bool json = false;
};
}  // namespace

void AddDumpCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<DumpFlags>();
  CLI::App* cmd = app.add_subcommand(
      "dump",
      "Print the old-stats figures of one zoom level as TSV (as doveadm oldstats dump).\n"
      "LEVEL is command, session, user, domain, ip or global. FILTERs, all optional:\n"
      "  connected            only connected sessions, or objects that have one\n"
      "  since=UNIXTIME       last updated at or after this time\n"
      "  user=WILDCARD        user name matches (* and ?)\n"
      "  domain=WILDCARD      domain matches\n"
      "  session=ID           exactly this session\n"
      "  ip=IP[/BITS]         IP inside this network (IPv4 or IPv6)\n"
      "Timevals user_cpu, sys_cpu and clock_time print as Dovecot does (<sec>.<usec>,\n"
      "usec not zero-padded); --json gives them in seconds.");
  cmd->add_option("level", f->level, "Zoom level")
      ->required()
      ->check(CLI::IsMember({"command", "session", "user", "domain", "ip", "global"}));
  cmd->add_option("filter", f->filters, "Filters, e.g. connected user=ali*");
  cmd->add_option("--run-dir", f->run_dir, "Run directory of mailscope serve (default: as serve)");
  cmd->add_option("-s,--socket", f->socket, "Query socket path, or tcp:ADDR:PORT");
  cmd->add_flag("--json", f->json, "Print a JSON array of objects");
  cmd->callback([f, &exit_code] {
    std::string target = f->socket.empty() ? DefaultSocket(f->run_dir) : f->socket;
    auto client = OldStatsClient::Connect(target);
    if (!client.ok()) {
      fmt::print(stderr, "mailscope dump: {}\n", client.status().message());
      exit_code = 1;
      return;
    }
    auto rows = client->Export(f->level, f->filters);
    if (!rows.ok()) {
      fmt::print(stderr, "mailscope dump: {}\n", rows.status().message());
      exit_code = 1;
      return;
    }
    if (f->json) {
      fmt::print("{}", RowsToJson(*rows));
    } else if (rows->empty()) {
      fmt::print(stderr, "no statistics available\n");
    } else {
      for (const std::string& r : *rows) fmt::print("{}\n", r);
    }
    exit_code = 0;
  });
}

void AddResetCommand(CLI::App& app, int& exit_code) {
  auto run_dir = std::make_shared<std::string>();
  auto socket = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "reset",
      "Reset the old-stats global figures (as doveadm oldstats reset); other levels are kept.");
  cmd->add_option("--run-dir", *run_dir, "Run directory of mailscope serve");
  cmd->add_option("-s,--socket", *socket, "Query socket path, or tcp:ADDR:PORT");
  cmd->callback([=, &exit_code] {
    auto client = OldStatsClient::Connect(socket->empty() ? DefaultSocket(*run_dir) : *socket);
    Status st = client.ok() ? client->Reset() : client.status();
    if (!st.ok()) {
      fmt::print(stderr, "mailscope reset: {}\n", st.message());
      exit_code = 1;
      return;
    }
    fmt::print("Stats reset\n");
    exit_code = 0;
  });
}

}  // namespace mailscope::cli
