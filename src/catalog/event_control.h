// EventControl: which catalog events each output wants and at what level,
// with Stalwart's tracer semantics applied to every source: start from every
// event, remove the disabled ones (exact names or wildcards: `*`, `pre*`,
// `*suf`, any `*`/`?` mix), then keep an event only when its effective level
// (a per-event override, else the default) is at least the output's level.
// Built once from the configuration; immutable and thread-safe afterwards.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/status.h"

namespace mailscope::catalog {

struct OutputRules {
  Level level = Level::kInfo;         // least severe level the output takes
  std::vector<std::string> disabled;  // event patterns the output never takes
};

struct EventControlOptions {
  // Event patterns are "system:pattern" or a bare pattern for every system,
  // e.g. "stalwart:smtp.*", "exim:msg:*", "*_started".
  std::vector<std::string> disabled;                  // for every output
  std::vector<std::pair<std::string, Level>> levels;  // per-event level overrides
  std::map<std::string, OutputRules> outputs;         // by output name
};

// Events without a default level (all but Stalwart's) count as this level.
inline constexpr Level kDefaultEventLevel = Level::kInfo;

class EventControl {
 public:
  // Checks every pattern against the catalog. An exact name that is unknown,
  // or a wildcard that matches nothing, is an error naming the closest known
  // events.
  static Result<EventControl> Build(const Catalog& catalog, const EventControlOptions& options);

  // Checks one pattern; the error names the closest known events.
  static Status CheckPattern(const Catalog& catalog, std::string_view pattern);

  Level EffectiveLevel(const EventInfo& event) const;
  // Not disabled for every output.
  bool Enabled(const EventInfo& event) const;
  // The main names of the events of `system` that are not Enabled(), in
  // catalog order: what the FILTER sent to Dovecot excludes.
  std::vector<std::string> DisabledNames(System system) const;
  // Enabled, not disabled for `output`, and at or above its level. An output
  // without rules takes every enabled event at kDefaultEventLevel or above.
  bool Wanted(std::string_view output, const EventInfo& event) const;

 private:
  std::size_t Index(const EventInfo& event) const;

  const Catalog* catalog_ = nullptr;
  std::vector<Level> level_;                                      // by event index
  std::vector<bool> enabled_;                                     // by event index
  std::map<std::string, std::vector<bool>, std::less<>> wanted_;  // by output, by event index
};

}  // namespace mailscope::catalog
