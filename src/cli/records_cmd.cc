// `mailscope records`: the records store itself (`migrate`).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/record_stores.h"
#include "serve/config.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace mailscope::cli {
namespace {

struct MigrateFlags {
  std::string config;
  std::string data_dir;
  std::string database;
};

int Migrate(const MigrateFlags& f) {
  std::string database = f.database;
  std::string data_dir = f.data_dir;
  if (!f.config.empty()) {
    auto config = serve::LoadConfigFile(f.config);
    if (!config.ok()) {
      fmt::print(stderr, "mailscope records migrate: {}\n", config.status().message());
      return 2;
    }
    if (database.empty()) database = config->records.database;
    if (data_dir.empty()) data_dir = config->data_dir;
  }
  if (!database.empty()) {
    auto pg = store::PostgresStore::Open(database, false);
    if (!pg.ok()) {
      fmt::print(stderr, "mailscope records migrate: {}\n", pg.status().message());
      return 2;
    }
    Status s = (*pg)->Connect(/*migrate=*/true);
    auto version = s.ok() ? (*pg)->SchemaVersion() : Result<int>(s);
    if (!version.ok()) {
      fmt::print(stderr, "mailscope records migrate: {}\n", version.status().message());
      return 1;
    }
    fmt::print("PostgreSQL ({}): schema version {}\n", (*pg)->display_name(), *version);
    return 0;
  }
  const std::string path = RecordsFileOf(data_dir);
  auto db = store::SqliteStore::Open(path, store::SqliteStore::Mode::kReadWrite);
  if (!db.ok()) {
    fmt::print(stderr, "mailscope records migrate: {}\n", db.status().message());
    return 1;
  }
  fmt::print("{}: schema version {}\n", path, store::kSqliteSchemaVersion);
  return 0;
}

}  // namespace

void AddRecordsCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "records", "The store of the events mailscope serve records ([records]; docs/records.md).");
  cmd->require_subcommand(1);
  auto f = std::make_shared<MigrateFlags>();
  CLI::App* migrate = cmd->add_subcommand(
      "migrate",
      "Make the records tables, or bring them to this mailscope's schema version, and print\n"
      "the version. serve does the same when it starts writing; this does it ahead of time,\n"
      "for instance as the owner of the database before serve runs with fewer rights.\n"
      "  mailscope records migrate --database postgresql://mailscope@127.0.0.1/mailscope\n"
      "  mailscope records migrate --config /etc/mailscope/mailscope.toml");
  migrate->add_option("--config", f->config,
                      "Take [records] database and the data directory from this file");
  migrate->add_option("--data-dir", f->data_dir,
                      "The SQLite store's data directory (default: as serve)");
  migrate->add_option(
      "--database", f->database,
      "A PostgreSQL conninfo: postgresql://USER@HOST/DB or \"host=... dbname=...\"");
  migrate->callback([f, &exit_code] { exit_code = Migrate(*f); });
}

}  // namespace mailscope::cli
