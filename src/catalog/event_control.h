// EventControl: which catalog events each output wants and at what level,
// with Stalwart's tracer semantics applied to every source: start from every
// event, remove the disabled ones (exact names or wildcards: `*`, `pre*`,
// `*suf`, any `*`/`?` mix), then keep an event only when its effective level
// (a per-event override, else the default) is at least the output's level
// (configured, else the output's default level).
// Built once from the configuration; immutable and thread-safe afterwards.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/status.h"

namespace mailscope::catalog {

// The outputs events are dispatched to, in dispatch order. The configuration
// ([outputs.NAME]) and the dispatcher name outputs only from this list.
// `report` is `mailscope replay`'s report, which only that command has.
inline constexpr std::string_view kOutputNames[] = {"old_stats", "metrics", "tail",  "exporters",
                                                    "rules",     "records", "report"};

// Whether `name` is one of kOutputNames.
constexpr bool IsOutputName(std::string_view name) {
  for (std::string_view n : kOutputNames)
    if (n == name) return true;
  return false;
}

// The least severe level an output takes when the configuration sets none.
// old_stats and metrics count every event: Stalwart's metrics ignore levels,
// and 269 of its 605 events default to debug; rules see every event they may
// answer. tail and exporters show or send events one by one, so they start at
// info. Any other name: info.
constexpr Level DefaultOutputLevel(std::string_view output) {
  return output == "old_stats" || output == "metrics" || output == "rules" ? Level::kTrace
                                                                           : Level::kInfo;
}

struct OutputRules {
  std::optional<Level> level;         // least severe level taken; none: DefaultOutputLevel
  std::vector<std::string> disabled;  // event patterns the output never takes
};

struct EventControlOptions {
  // Event patterns are "system:pattern" or a bare pattern for every system,
  // e.g. "stalwart:smtp.*", "exim:msg:*", "*_started".
  std::vector<std::string> disabled;                  // for every output
  std::vector<std::pair<std::string, Level>> levels;  // per-event level overrides
  std::map<std::string, OutputRules> outputs;         // by name, one of kOutputNames
};

// Events without a default level (all but Stalwart's) count as this level.
inline constexpr Level kDefaultEventLevel = Level::kInfo;

class EventControl {
 public:
  // Checks every pattern against the catalog. An exact name that is unknown,
  // or a wildcard that matches nothing, is an error naming the closest known
  // events; an output name not in kOutputNames is an error naming them.
  static Result<EventControl> Build(const Catalog& catalog, const EventControlOptions& options);

  // Checks one pattern; the error names the closest known events.
  static Status CheckPattern(const Catalog& catalog, std::string_view pattern);

  Level EffectiveLevel(const EventInfo& event) const;
  // Not disabled for every output.
  bool Enabled(const EventInfo& event) const;
  // Enabled, not disabled for `output`, and at or above its level. An output
  // without rules takes every enabled event at DefaultOutputLevel(output) or
  // above.
  bool Wanted(std::string_view output, const EventInfo& event) const;
  // The least severe level `output` takes.
  Level OutputLevel(std::string_view output) const;

 private:
  std::size_t Index(const EventInfo& event) const;

  const Catalog* catalog_ = nullptr;
  std::vector<Level> level_;                                      // by event index
  std::vector<bool> enabled_;                                     // by event index
  std::map<std::string, std::vector<bool>, std::less<>> wanted_;  // by output, by event index
  std::map<std::string, Level, std::less<>> output_level_;
};

}  // namespace mailscope::catalog
