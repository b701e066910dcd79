#include "catalog/catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace mailscope::catalog {
namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::vector<std::string> List(std::string_view s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  for (std::string_view part : Split(s, ',')) out.emplace_back(part);
  return out;
}

Result<Attributes> Pairs(std::string_view s, std::string_view where) {
  Attributes out;
  if (s.empty()) return out;
  for (std::string_view part : Split(s, ';')) {
    std::size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgument(fmt::format("{}: expected key=value, got \"{}\"", where, part));
    }
    out.emplace_back(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
  }
  return out;
}

// One TSV file: comment lines, a header with the expected columns, rows.
struct Table {
  std::vector<std::pair<int, std::vector<std::string_view>>> rows;  // (line, columns)
};

Result<Table> ReadTable(std::string_view file, std::string_view text,
                        const std::vector<std::string_view>& columns) {
  Table t;
  bool header_seen = false;
  int line_no = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!header_seen && line.front() == '#') continue;
    std::vector<std::string_view> cols = Split(line, '\t');
    if (!header_seen) {
      if (cols != columns) {
        return InvalidArgument(
            fmt::format("{}:{}: header must be: {}", file, line_no, fmt::join(columns, " TAB ")));
      }
      header_seen = true;
      continue;
    }
    if (cols.size() != columns.size()) {
      return InvalidArgument(fmt::format("{}:{}: {} columns, expected {}", file, line_no,
                                         cols.size(), columns.size()));
    }
    t.rows.emplace_back(line_no, std::move(cols));
  }
  if (!header_seen) return InvalidArgument(fmt::format("{}: no header line", file));
  return t;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// "field:<name>=<value>><outcome>,<value>><outcome>,..." (data/README.md).
Status ParseOutcomeRules(EventInfo& e, const KindInfo& kind, std::string_view where) {
  auto known = [&](std::string_view outcome) {
    return std::find(kind.outcomes.begin(), kind.outcomes.end(), outcome) != kind.outcomes.end();
  };
  std::string_view text = e.outcome;
  if (!text.starts_with("field:")) {
    if (!known(text))
      return InvalidArgument(
          fmt::format("{}: \"{}\" is not an outcome of kind {}", where, text, kind.kind));
    return Status::Ok();
  }
  text.remove_prefix(6);
  const std::size_t eq = text.find('=');
  if (eq == 0 || eq == std::string_view::npos)
    return InvalidArgument(fmt::format("{}: expected field:<name>=<rules>", where));
  e.outcome_field = text.substr(0, eq);
  for (std::string_view rule : Split(text.substr(eq + 1), ',')) {
    const std::size_t gt = rule.rfind('>');
    if (gt == std::string_view::npos || !known(rule.substr(gt + 1))) {
      return InvalidArgument(fmt::format(
          "{}: outcome rule \"{}\" must be <value>><outcome of kind {}>", where, rule, kind.kind));
    }
    e.outcome_rules.push_back({std::string(rule.substr(0, gt)), std::string(rule.substr(gt + 1))});
  }
  return Status::Ok();
}

}  // namespace

bool OutcomeRule::Matches(std::string_view value) const {
  if (pattern == "*") return true;
  if (pattern.ends_with('*'))
    return value.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1));
  return value == pattern;
}

std::string_view SystemName(System system) {
  switch (system) {
    case System::kDovecot:
      return "dovecot";
    case System::kStalwart:
      return "stalwart";
    case System::kExim:
      return "exim";
    case System::kQmail:
      return "qmail";
  }
  return "unknown";
}

std::optional<System> ParseSystem(std::string_view name) {
  for (System s : kSystems)
    if (SystemName(s) == name) return s;
  return std::nullopt;
}

std::optional<Level> ParseLevel(std::string_view name) {
  for (Level l : {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn, Level::kError})
    if (LevelName(l) == name) return l;
  return std::nullopt;
}

std::string_view EventInfo::Attribute(std::string_view key) const {
  for (const auto& [k, v] : attributes)
    if (k == key) return v;
  return {};
}

Result<Catalog> Catalog::Parse(const DataFiles& files) {
  Catalog c;
  auto find_file = [&](std::string_view name) -> const std::string_view* {
    for (const auto& [n, text] : files)
      if (n == name) return &text;
    return nullptr;
  };
  for (System system : kSystems) {
    std::string file = fmt::format("events.{}.tsv", SystemName(system));
    const std::string_view* text = find_file(file);
    if (text == nullptr) return InvalidArgument(file + ": missing");
    auto table =
        ReadTable(file, *text,
                  {"name", "subsystem", "level", "fields", "aliases", "attributes", "description"});
    if (!table.ok()) return table.status();
    for (const auto& [line, cols] : table->rows) {
      std::string where = fmt::format("{}:{}", file, line);
      EventInfo e;
      e.system = system;
      e.name = cols[0];
      e.subsystem = cols[1];
      if (e.name.empty()) return InvalidArgument(where + ": empty name");
      if (!cols[2].empty()) {
        e.level = ParseLevel(cols[2]);
        if (!e.level)
          return InvalidArgument(fmt::format("{}: unknown level \"{}\"", where, cols[2]));
      }
      e.fields = List(cols[3]);
      e.aliases = List(cols[4]);
      auto attrs = Pairs(cols[5], where);
      if (!attrs.ok()) return attrs.status();
      e.attributes = std::move(*attrs);
      e.description = cols[6];
      c.events_.push_back(std::move(e));
    }
  }
  // Index by (system, name) and (system, alias); names must be unique.
  for (std::size_t i = 0; i < c.events_.size(); ++i) {
    const EventInfo& e = c.events_[i];
    c.index_.push_back({{e.system, e.name}, i});
    for (const std::string& a : e.aliases) c.index_.push_back({{e.system, a}, i});
  }
  std::sort(c.index_.begin(), c.index_.end());
  for (std::size_t i = 1; i < c.index_.size(); ++i) {
    if (c.index_[i].first == c.index_[i - 1].first) {
      return InvalidArgument(fmt::format("events.{}.tsv: \"{}\" names two events",
                                         SystemName(c.index_[i].first.first),
                                         c.index_[i].first.second));
    }
  }

  if (const std::string_view* text = find_file("keys.stalwart.tsv")) {
    auto table = ReadTable("keys.stalwart.tsv", *text, {"key", "type", "description"});
    if (!table.ok()) return table.status();
    for (const auto& [line, cols] : table->rows)
      c.keys_.push_back({std::string(cols[0]), std::string(cols[1]), std::string(cols[2])});
  }

  const std::string_view* kinds_text = find_file("taxonomy.tsv");
  if (kinds_text == nullptr) return InvalidArgument("taxonomy.tsv: missing");
  auto kinds =
      ReadTable("taxonomy.tsv", *kinds_text, {"kind", "outcomes", "fields", "description"});
  if (!kinds.ok()) return kinds.status();
  for (const auto& [line, cols] : kinds->rows)
    c.kinds_.push_back({std::string(cols[0]), List(cols[1]), List(cols[2]), std::string(cols[3])});

  const std::string_view* map_text = find_file("taxonomy_map.tsv");
  if (map_text == nullptr) return InvalidArgument("taxonomy_map.tsv: missing");
  auto map =
      ReadTable("taxonomy_map.tsv", *map_text, {"system", "name", "kind", "outcome", "fields"});
  if (!map.ok()) return map.status();
  std::vector<bool> mapped(c.events_.size(), false);
  for (const auto& [line, cols] : map->rows) {
    std::string where = fmt::format("taxonomy_map.tsv:{}", line);
    auto system = ParseSystem(cols[0]);
    if (!system) return InvalidArgument(fmt::format("{}: unknown system \"{}\"", where, cols[0]));
    auto it = std::lower_bound(
        c.index_.begin(), c.index_.end(),
        std::pair<std::pair<System, std::string>, std::size_t>{{*system, std::string(cols[1])}, 0});
    if (it == c.index_.end() || it->first.first != *system || it->first.second != cols[1]) {
      return InvalidArgument(
          fmt::format("{}: no event {} in events.{}.tsv", where, cols[1], cols[0]));
    }
    EventInfo& e = c.events_[it->second];
    if (e.name != cols[1])
      return InvalidArgument(fmt::format("{}: {} is an alias; map the main name", where, cols[1]));
    if (mapped[it->second])
      return InvalidArgument(fmt::format("{}: {} mapped twice", where, cols[1]));
    mapped[it->second] = true;
    if (cols[2] == "-") continue;
    // (a named copy: clang 14 cannot capture structured bindings)
    const std::string_view kind_name = cols[2];
    const auto kind = std::find_if(c.kinds_.begin(), c.kinds_.end(),
                                   [&](const KindInfo& k) { return k.kind == kind_name; });
    if (kind == c.kinds_.end())
      return InvalidArgument(fmt::format("{}: unknown kind \"{}\"", where, cols[2]));
    e.kind = cols[2];
    e.outcome = cols[3];
    MS_RETURN_IF_ERROR(ParseOutcomeRules(e, *kind, where));
    auto fields = Pairs(cols[4], where);
    if (!fields.ok()) return fields.status();
    e.normalized_fields = std::move(*fields);
  }
  for (std::size_t i = 0; i < c.events_.size(); ++i) {
    if (!mapped[i]) {
      return InvalidArgument(fmt::format("taxonomy_map.tsv: {} event {} is not mapped (use kind -)",
                                         SystemName(c.events_[i].system), c.events_[i].name));
    }
  }
  return c;
}

const Catalog& Catalog::Get() {
  static const Catalog* catalog = [] {
    auto parsed = Parse(EmbeddedDataFiles());
    if (!parsed.ok()) {
      std::fprintf(stderr, "compiled-in event catalog is invalid: %s\n",
                   parsed.status().message().c_str());
      std::abort();
    }
    return new Catalog(std::move(*parsed));
  }();
  return *catalog;
}

const EventInfo* Catalog::Find(System system, std::string_view name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), system, [&](const auto& entry, System) {
    return entry.first.first < system || (entry.first.first == system && entry.first.second < name);
  });
  if (it == index_.end() || it->first.first != system || it->first.second != name) return nullptr;
  return &events_[it->second];
}

std::vector<const EventInfo*> Catalog::OfSystem(System system) const {
  std::vector<const EventInfo*> out;
  for (const EventInfo& e : events_)
    if (e.system == system) out.push_back(&e);
  return out;
}

std::vector<const EventInfo*> Catalog::Counterparts(const EventInfo& event) const {
  std::vector<const EventInfo*> out;
  if (event.kind.empty()) return out;
  const bool constant = !event.outcome.starts_with("field:");
  for (const EventInfo& e : events_) {
    if (e.system == event.system || e.kind != event.kind) continue;
    if (constant && !e.outcome.starts_with("field:") && e.outcome != event.outcome) continue;
    out.push_back(&e);
  }
  return out;
}

std::vector<std::string> Catalog::Closest(System system, std::string_view name,
                                          std::size_t max) const {
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& [key, index] : index_) {
    if (key.first != system) continue;
    scored.emplace_back(EditDistance(name, key.second), key.second);
  }
  std::sort(scored.begin(), scored.end());
  // Only names a typo away: at most a third of the name may differ.
  const std::size_t limit = std::max<std::size_t>(2, name.size() / 3);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && out.size() < max && scored[i].first <= limit; ++i)
    out.push_back(scored[i].second);
  return out;
}

}  // namespace mailscope::catalog
