#include "catalog/event_control.h"

#include <fmt/format.h>

#include "core/wildcard.h"

namespace mailscope::catalog {
namespace {

struct Pattern {
  std::optional<System> system;  // none: every system
  std::string_view mask;
};

Pattern Split(std::string_view spec) {
  if (std::size_t colon = spec.find(':'); colon != std::string_view::npos) {
    if (auto system = ParseSystem(spec.substr(0, colon))) return {system, spec.substr(colon + 1)};
  }
  return {std::nullopt, spec};
}

bool IsWildcard(std::string_view mask) {
  return mask.find_first_of("*?") != std::string_view::npos;
}

// Matches the event's name or one of its aliases.
bool Matches(const Pattern& p, const EventInfo& e) {
  if (p.system && *p.system != e.system) return false;
  if (WildcardMatch(e.name, p.mask)) return true;
  for (const std::string& a : e.aliases)
    if (WildcardMatch(a, p.mask)) return true;
  return false;
}

}  // namespace

Status EventControl::CheckPattern(const Catalog& catalog, std::string_view spec) {
  Pattern p = Split(spec);
  if (p.mask.empty()) return InvalidArgument(fmt::format("empty event name in \"{}\"", spec));
  for (const EventInfo& e : catalog.events())
    if (Matches(p, e)) return Status::Ok();
  std::vector<std::string> hints;
  for (System s : kSystems) {
    if (p.system && *p.system != s) continue;
    for (const std::string& n : catalog.Closest(s, p.mask, p.system ? 3 : 1))
      hints.push_back(fmt::format("{}:{}", SystemName(s), n));
  }
  return InvalidArgument(
      fmt::format("{} \"{}\"{}{}", IsWildcard(p.mask) ? "no event matches" : "unknown event", spec,
                  hints.empty() ? "" : "; closest: ", fmt::join(hints, ", ")));
}

Result<EventControl> EventControl::Build(const Catalog& catalog,
                                         const EventControlOptions& options) {
  EventControl c;
  c.catalog_ = &catalog;
  const std::size_t n = catalog.events().size();
  c.level_.resize(n);
  c.enabled_.assign(n, true);
  for (std::size_t i = 0; i < n; ++i)
    c.level_[i] = catalog.events()[i].level.value_or(kDefaultEventLevel);

  for (const auto& [spec, level] : options.levels) {
    MS_RETURN_IF_ERROR(CheckPattern(catalog, spec));
    Pattern p = Split(spec);
    for (std::size_t i = 0; i < n; ++i)
      if (Matches(p, catalog.events()[i])) c.level_[i] = level;
  }
  for (const std::string& spec : options.disabled) {
    MS_RETURN_IF_ERROR(CheckPattern(catalog, spec));
    Pattern p = Split(spec);
    for (std::size_t i = 0; i < n; ++i)
      if (Matches(p, catalog.events()[i])) c.enabled_[i] = false;
  }
  for (const auto& [name, rules] : options.outputs) {
    if (!IsOutputName(name)) {
      return InvalidArgument(fmt::format("unknown output \"{}\"; the outputs are {}", name,
                                         fmt::join(kOutputNames, ", ")));
    }
    const Level least = rules.level.value_or(DefaultOutputLevel(name));
    std::vector<bool> wanted(n);
    std::vector<Pattern> off;
    for (const std::string& spec : rules.disabled) {
      MS_RETURN_IF_ERROR(CheckPattern(catalog, spec));
      off.push_back(Split(spec));
    }
    for (std::size_t i = 0; i < n; ++i) {
      bool w = c.enabled_[i] && c.level_[i] >= least;
      for (const Pattern& p : off) w = w && !Matches(p, catalog.events()[i]);
      wanted[i] = w;
    }
    c.wanted_.emplace(name, std::move(wanted));
    c.output_level_.emplace(name, least);
  }
  return c;
}

std::size_t EventControl::Index(const EventInfo& event) const {
  return static_cast<std::size_t>(&event - catalog_->events().data());
}

Level EventControl::EffectiveLevel(const EventInfo& event) const { return level_[Index(event)]; }

bool EventControl::Enabled(const EventInfo& event) const { return enabled_[Index(event)]; }

bool EventControl::Wanted(std::string_view output, const EventInfo& event) const {
  const std::size_t i = Index(event);
  auto it = wanted_.find(output);
  if (it == wanted_.end()) return enabled_[i] && level_[i] >= DefaultOutputLevel(output);
  return it->second[i];
}

Level EventControl::OutputLevel(std::string_view output) const {
  auto it = output_level_.find(output);
  return it == output_level_.end() ? DefaultOutputLevel(output) : it->second;
}

}  // namespace mailscope::catalog
