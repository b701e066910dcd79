// `mailscope catalog`: the events of Dovecot, Stalwart, Exim and s/qmail as
// mailscope knows them, searchable, with their taxonomy kinds.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <regex>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "export/json_writer.h"

namespace mailscope::cli {
namespace {

using catalog::Catalog;
using catalog::EventInfo;
using exporter::AppendJsonString;

struct CatalogFlags {
  std::string system, level, kind, grep, event;
  bool json = false;
};

void AppendJsonList(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    AppendJsonString(out, items[i]);
  }
  out += ']';
}

void AppendJsonEvent(std::string& out, const EventInfo& e) {
  out += "{\"system\": ";
  AppendJsonString(out, catalog::SystemName(e.system));
  out += ", \"name\": ";
  AppendJsonString(out, e.name);
  out += ", \"subsystem\": ";
  AppendJsonString(out, e.subsystem);
  out += ", \"level\": ";
  if (e.level)
    AppendJsonString(out, LevelName(*e.level));
  else
    out += "null";
  out += ", \"kind\": ";
  if (!e.kind.empty())
    AppendJsonString(out, e.kind);
  else
    out += "null";
  out += ", \"fields\": ";
  AppendJsonList(out, e.fields);
  out += ", \"aliases\": ";
  AppendJsonList(out, e.aliases);
  out += ", \"attributes\": {";
  for (std::size_t i = 0; i < e.attributes.size(); ++i) {
    if (i > 0) out += ", ";
    AppendJsonString(out, e.attributes[i].first);
    out += ": ";
    AppendJsonString(out, e.attributes[i].second);
  }
  out += "}, \"description\": ";
  AppendJsonString(out, e.description);
  out += '}';
}

// "stalwart:auth.failed", or a bare name looked up in every system.
std::vector<const EventInfo*> Resolve(const Catalog& c, std::string_view spec) {
  std::vector<const EventInfo*> found;
  if (std::size_t colon = spec.find(':'); colon != std::string_view::npos) {
    if (auto system = catalog::ParseSystem(spec.substr(0, colon))) {
      if (const EventInfo* e = c.Find(*system, spec.substr(colon + 1))) found.push_back(e);
      return found;
    }
  }
  for (catalog::System s : catalog::kSystems)
    if (const EventInfo* e = c.Find(s, spec)) found.push_back(e);
  return found;
}

int Show(const CatalogFlags& f) {
  const Catalog& c = Catalog::Get();
  auto found = Resolve(c, f.event);
  if (found.empty()) {
    fmt::print(stderr, "mailscope catalog show: unknown event \"{}\"", f.event);
    std::vector<std::string> hints;
    for (catalog::System s : catalog::kSystems)
      for (const std::string& n : c.Closest(s, f.event, 1))
        hints.push_back(fmt::format("{}:{}", catalog::SystemName(s), n));
    if (!hints.empty()) fmt::print(stderr, "; closest: {}", fmt::join(hints, ", "));
    fmt::print(stderr, "\n");
    return 1;
  }
  if (f.json) {
    std::string out = "[";
    for (std::size_t i = 0; i < found.size(); ++i) {
      if (i > 0) out += ",";
      out += "\n  ";
      AppendJsonEvent(out, *found[i]);
    }
    fmt::print("{}\n]\n", out);
    return 0;
  }
  for (const EventInfo* e : found) {
    fmt::print("{}:{}\n", catalog::SystemName(e->system), e->name);
    fmt::print("  subsystem    {}\n", e->subsystem);
    fmt::print("  level        {}\n", e->level ? LevelName(*e->level) : "(none)");
    if (!e->aliases.empty()) fmt::print("  aliases      {}\n", fmt::join(e->aliases, ", "));
    if (!e->fields.empty()) fmt::print("  fields       {}\n", fmt::join(e->fields, ", "));
    for (const auto& [k, v] : e->attributes) fmt::print("  {:<12} {}\n", k, v);
    if (!e->description.empty()) fmt::print("  description  {}\n", e->description);
    if (e->kind.empty()) {
      fmt::print("  kind         (no counterpart in the taxonomy)\n");
      continue;
    }
    fmt::print("  kind         {}\n", e->kind);
    if (!e->outcome.empty()) fmt::print("  outcome      {}\n", e->outcome);
    for (const auto& [norm, src] : e->normalized_fields) fmt::print("  {:<12} <- {}\n", norm, src);
    auto counterparts = c.Counterparts(*e);
    if (!counterparts.empty()) {
      fmt::print("  counterparts\n");
      for (const EventInfo* other : counterparts) {
        fmt::print("    {}:{}{}\n", catalog::SystemName(other->system), other->name,
                   other->outcome.empty() ? "" : " (" + other->outcome + ")");
      }
    }
  }
  return 0;
}

int List(const CatalogFlags& f) {
  const Catalog& c = Catalog::Get();
  std::optional<catalog::System> system;
  if (!f.system.empty()) system = catalog::ParseSystem(f.system);
  std::optional<Level> level;
  if (!f.level.empty()) level = catalog::ParseLevel(f.level);
  std::optional<std::regex> re;
  if (!f.grep.empty()) {
    try {
      re.emplace(f.grep, std::regex::ECMAScript | std::regex::icase);
    } catch (const std::regex_error& e) {
      fmt::print(stderr, "mailscope catalog: bad --grep pattern: {}\n", e.what());
      return 2;
    }
  }
  std::vector<const EventInfo*> rows;
  for (const EventInfo& e : c.events()) {
    if (system && e.system != *system) continue;
    if (level && e.level != level) continue;
    if (!f.kind.empty() && (f.kind == "none" ? !e.kind.empty() : e.kind != f.kind)) continue;
    if (re) {
      bool hit = std::regex_search(e.name, *re) || std::regex_search(e.subsystem, *re) ||
                 std::regex_search(e.description, *re);
      for (const std::string& a : e.aliases) hit = hit || std::regex_search(a, *re);
      if (!hit) continue;
    }
    rows.push_back(&e);
  }
  if (f.json) {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (i > 0) out += ",";
      out += "\n  ";
      AppendJsonEvent(out, *rows[i]);
    }
    fmt::print("{}{}]\n", out, rows.empty() ? "" : "\n");
    return 0;
  }
  fmt::print("{:<9} {:<44} {:<20} {:<6} {}\n", "SYSTEM", "NAME", "SUBSYSTEM", "LEVEL", "KIND");
  for (const EventInfo* e : rows) {
    fmt::print("{:<9} {:<44} {:<20} {:<6} {}\n", catalog::SystemName(e->system), e->name,
               e->subsystem, e->level ? LevelName(*e->level) : "-",
               e->kind.empty() ? "-" : e->kind);
  }
  fmt::print(stderr, "{} events\n", rows.size());
  return 0;
}

}  // namespace

void AddCatalogCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<CatalogFlags>();
  CLI::App* cmd = app.add_subcommand(
      "catalog",
      "List the events of Dovecot, Stalwart, Exim and s/qmail known to mailscope, with\n"
      "subsystem, default level and taxonomy kind. Filters combine.");
  cmd->add_option("--system", f->system, "dovecot, stalwart, exim or qmail")
      ->check(CLI::IsMember({"dovecot", "stalwart", "exim", "qmail"}));
  cmd->add_option("--level", f->level, "Default level: trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  cmd->add_option("--kind", f->kind, "Taxonomy kind (auth, connection, ...), or none");
  cmd->add_option("--grep", f->grep, "Regular expression over name, alias, subsystem, description");
  cmd->add_flag("--json", f->json, "One JSON array, an object per event");
  CLI::App* show = cmd->add_subcommand(
      "show", "Everything known about one event, with its counterparts in the other systems");
  show->add_option("event", f->event, "Event name or alias, optionally SYSTEM:NAME")->required();
  show->add_flag("--json", f->json, "JSON output");
  cmd->callback([f, cmd, show, &exit_code] {
    if (show->parsed()) return;
    exit_code = List(*f);
    (void)cmd;
  });
  show->callback([f, &exit_code] { exit_code = Show(*f); });
}

}  // namespace mailscope::cli
