#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "catalog/event_control.h"
#include "cli/commands.h"
#include "cli/record_stores.h"
#include "serve/config.h"
#include "store/postgres_store.h"

namespace mailscope::cli {

void AddCheckConfigCommand(CLI::App& app, int& exit_code) {
  auto path = std::make_shared<std::string>();
  auto reference = std::make_shared<bool>(false);
  auto markdown = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "check-config",
      "Validate a configuration file. Prints every error as file:line: key: problem\n"
      "and exits 2 if there is any; prints the effective settings otherwise.");
  cmd->add_option("--config,config", *path, "TOML configuration file");
  cmd->add_flag("--help-config", *reference, "Describe every setting and exit");
  cmd->add_flag("--markdown", *markdown, "With --help-config: print docs/configuration.md");
  cmd->callback([=, &exit_code] {
    if (*reference) {
      fmt::print("{}", *markdown ? serve::ConfigReferenceMarkdown() : serve::ConfigReferenceText());
      exit_code = 0;
      return;
    }
    if (path->empty()) {
      fmt::print(stderr, "check-config: --config FILE is required\n");
      exit_code = 2;
      return;
    }
    auto config = serve::LoadConfigFile(*path);
    if (!config.ok()) {
      fmt::print(stderr, "{}\n", config.status().message());
      exit_code = 2;
      return;
    }
    const serve::Config& c = *config;
    fmt::print("{}: OK\n", *path);
    fmt::print("serve.run_dir = {}\n",
               c.run_dir.empty() ? serve::DefaultRunDir() + " (default)" : c.run_dir);
    fmt::print("serve.http = {}\n", c.http.empty() ? "(disabled)" : c.http);
    fmt::print("old_stats.memory_limit = {} bytes\n", c.old_stats_memory_limit);
    fmt::print("old_stats.min_times = command {}s, session {}s, user {}s, domain {}s, ip {}s\n",
               c.old_stats_command_min_time.count(), c.old_stats_session_min_time.count(),
               c.old_stats_user_min_time.count(), c.old_stats_domain_min_time.count(),
               c.old_stats_ip_min_time.count());
    auto control = catalog::EventControl::Build(catalog::Catalog::Get(), c.events);
    if (!control.ok()) {
      fmt::print(stderr, "{}: {}\n", *path, control.status().message());
      exit_code = 2;
      return;
    }
    const auto& events = catalog::Catalog::Get().events();
    std::size_t enabled = 0;
    for (const auto& e : events) enabled += control->Enabled(e) ? 1 : 0;
    fmt::print("events: {} of {} catalog events enabled\n", enabled, events.size());
    for (std::string_view output : catalog::kOutputNames) {
      auto rules = c.events.outputs.find(std::string(output));
      Level level = catalog::DefaultOutputLevel(output);
      if (rules != c.events.outputs.end() && rules->second.level) level = *rules->second.level;
      std::size_t wanted = 0;
      for (const auto& e : events) wanted += control->Wanted(output, e) ? 1 : 0;
      fmt::print("outputs.{}: level {}, takes {} events\n", output, LevelName(level), wanted);
    }
    for (const serve::MetricConfig& m : c.metrics) {
      // With the filter Dovecot's processes get.
      fmt::print("metric {} ({}): filter {}{}{}\n", m.settings.name, m.where,
                 m.definition.filter.ExportDovecot(),
                 m.settings.group_by.empty() ? "" : ", group_by " + m.settings.group_by,
                 m.settings.exporter.empty() ? "" : ", exporter " + m.settings.exporter);
    }
    for (const serve::ExporterConfig& e : c.exporters) {
      const exporter::ExporterSettingsText& t = e.text;
      fmt::print("exporter {} ({}): {} over {}{}\n", t.name, e.where, t.format, t.transport,
                 t.transport_args.empty() ? "" : " " + t.transport_args);
    }
    if (!c.old_stats_carbon_server.empty()) {
      fmt::print("old_stats.carbon = {} as {} every {}s\n", c.old_stats_carbon_server,
                 c.old_stats_carbon_name, c.old_stats_carbon_interval.count());
    }
    if (!c.records.filters.empty()) {
      const std::string store = c.records.database.empty()
                                    ? RecordsFileOf(c.data_dir)
                                    : "PostgreSQL " + store::RedactConninfo(c.records.database);
      fmt::print("records into {}, max_age {}s, max_size {}:\n", store, c.records.max_age.count(),
                 c.records.max_size == 0 ? std::string("none")
                                         : std::to_string(c.records.max_size) + " bytes");
      for (const std::string& f : c.records.filters) fmt::print("  filter {}\n", f);
    }
    exit_code = 0;
  });
}

}  // namespace mailscope::cli
