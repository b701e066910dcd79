// Catalog: every event Dovecot, Stalwart, Exim and s/qmail are known to
// emit, with subsystem, default level, fields, aliases, system-specific
// attributes and the taxonomy kind, loaded from the data files compiled into
// the binary (src/catalog/data/). Immutable after loading; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/event.h"
#include "core/status.h"

namespace mailscope::catalog {

enum class System { kDovecot, kStalwart, kExim, kQmail };
inline constexpr System kSystems[] = {System::kDovecot, System::kStalwart, System::kExim,
                                      System::kQmail};
std::string_view SystemName(System system);  // "dovecot", "stalwart", "exim", "qmail"
std::optional<System> ParseSystem(std::string_view name);

// "trace" ... "error" <-> Level.
std::optional<Level> ParseLevel(std::string_view name);

using Attributes = std::vector<std::pair<std::string, std::string>>;

// One rule of an outcome read from a field (data/README.md): the first rule
// whose pattern matches the field's text gives the outcome.
struct OutcomeRule {
  std::string pattern;  // "*" anything, "<prefix>*" by prefix, "" absent or empty, else exact
  std::string outcome;

  // `value`: the field's text, empty when the field is absent.
  bool Matches(std::string_view value) const;
};

struct EventInfo {
  System system = System::kDovecot;
  std::string name;            // the system's own identifier
  std::string subsystem;       // Stalwart subsystem, Dovecot category, Exim first part, qmail Type
  std::optional<Level> level;  // Stalwart's default level; none elsewhere
  std::vector<std::string> fields;
  std::vector<std::string> aliases;
  Attributes attributes;
  std::string description;
  // Taxonomy (taxonomy_map.tsv): kind empty when the event has no counterpart.
  std::string kind;
  std::string outcome;        // constant, or "field:<name>" rules; see data/README.md
  std::string outcome_field;  // the field the rules read; empty when the outcome is constant
  std::vector<OutcomeRule> outcome_rules;
  Attributes normalized_fields;  // normalized name -> source field

  // The attribute's value, or empty.
  std::string_view Attribute(std::string_view key) const;
};

struct KindInfo {
  std::string kind;
  std::vector<std::string> outcomes;
  std::vector<std::string> fields;
  std::string description;
};

struct KeyInfo {  // a key of Stalwart's events
  std::string key, type, description;
};

// The raw texts of the data files, by file name ("events.stalwart.tsv", ...).
using DataFiles = std::vector<std::pair<std::string, std::string_view>>;

class Catalog {
 public:
  // The catalog compiled into the binary. Loaded on first use; a data error
  // there is a build defect and aborts (MS_CHECK) with the file and line.
  static const Catalog& Get();

  // Parses data files; errors name file:line. Used by Get() and by tests.
  static Result<Catalog> Parse(const DataFiles& files);

  const std::vector<EventInfo>& events() const { return events_; }
  const std::vector<KindInfo>& kinds() const { return kinds_; }
  const std::vector<KeyInfo>& stalwart_keys() const { return keys_; }

  // Looks an event up by its name or one of its aliases. nullptr if unknown.
  const EventInfo* Find(System system, std::string_view name) const;
  // Every event of a system, in file order.
  std::vector<const EventInfo*> OfSystem(System system) const;
  // Events of the other systems with the same kind (and outcome when constant).
  std::vector<const EventInfo*> Counterparts(const EventInfo& event) const;
  // Names (or aliases) of this system a typo away from `name`, best first;
  // for "did you mean" messages.
  std::vector<std::string> Closest(System system, std::string_view name, std::size_t max = 3) const;

 private:
  std::vector<EventInfo> events_;
  std::vector<KindInfo> kinds_;
  std::vector<KeyInfo> keys_;
  // Sorted (system, name or alias) -> index into events_.
  std::vector<std::pair<std::pair<System, std::string>, std::size_t>> index_;
};

// The data files compiled into the binary (generated catalog_data.cc).
const DataFiles& EmbeddedDataFiles();

}  // namespace mailscope::catalog
