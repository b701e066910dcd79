#include "catalog/event_router.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/check.h"

namespace mailscope::catalog {

const EventInfo EventRouter::kUnknown{};

EventRouter::EventRouter(const Catalog& catalog, EventControl control)
    : catalog_(catalog), control_(std::move(control)) {
  const std::vector<EventInfo>& events = catalog_.events();
  taxonomy_.resize(events.size());
  std::vector<std::uint32_t> alias_begin(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    const EventInfo& e = events[i];
    alias_begin[i] = static_cast<std::uint32_t>(aliases_.size());
    if (e.kind.empty()) continue;
    CompiledTaxonomy& t = taxonomy_[i];
    t.base.kind = InternName(e.kind);
    if (e.outcome_rules.empty()) {
      t.base.outcome = InternName(e.outcome);
    } else {
      t.outcome_field = InternName(e.outcome_field);
      for (const OutcomeRule& r : e.outcome_rules) t.rule_outcomes.push_back(InternName(r.outcome));
    }
    for (const auto& [normalized, field] : e.normalized_fields)
      aliases_.push_back({InternName(normalized), InternName(field)});
    t.base.alias_count = static_cast<std::uint32_t>(aliases_.size() - alias_begin[i]);
  }
  // The table is complete: pointers into it are stable from here on.
  for (std::size_t i = 0; i < events.size(); ++i)
    if (taxonomy_[i].base.alias_count > 0) taxonomy_[i].base.aliases = &aliases_[alias_begin[i]];
}

Taxonomy EventRouter::TaxonomyOf(const EventInfo& info, const Event& event) const {
  const CompiledTaxonomy& t = taxonomy_[static_cast<std::size_t>(&info - catalog_.events().data())];
  Taxonomy out = t.base;
  if (t.outcome_field == kNoName) return out;
  // The rules read the field as text; numbers as their decimal form (a
  // Stalwart SMTP code 550 against "5*").
  Value v;
  char buf[32];
  std::string_view text;
  if (event.FindInChain(t.outcome_field, NameText(t.outcome_field), v)) {
    switch (v.type()) {
      case Value::Type::kString:
        text = v.as_string();
        break;
      case Value::Type::kInt:
        text = {buf, static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v.as_int()).ptr -
                                              buf)};
        break;
      case Value::Type::kUint:
      case Value::Type::kBool:
        text = {buf, static_cast<std::size_t>(
                         std::to_chars(buf, buf + sizeof buf, v.as_uint()).ptr - buf)};
        break;
      case Value::Type::kDouble:
        text = {buf,
                std::min(sizeof buf, fmt::format_to_n(buf, sizeof buf, "{}", v.as_double()).size)};
        break;
      default:  // times and records have no text to compare
        break;
    }
  }
  for (std::size_t i = 0; i < info.outcome_rules.size(); ++i) {
    if (info.outcome_rules[i].Matches(text)) {
      out.outcome = t.rule_outcomes[i];
      break;
    }
  }
  return out;
}

EventRouter::Routed EventRouter::Route(const Event& event) {
  auto system = SystemOf(event.source);
  MS_CHECK(system.has_value());
  // Names are interned, so each distinct name is looked up in the catalog once.
  auto& cache = cache_[static_cast<std::size_t>(*system)];
  if (event.name >= cache.size()) cache.resize(event.name + 1, nullptr);
  const EventInfo*& slot = cache[event.name];
  if (slot == nullptr) {
    const EventInfo* info = catalog_.Find(*system, NameText(event.name));
    slot = info != nullptr ? info : &kUnknown;
  }
  if (slot == &kUnknown) {
    ++unknown_[static_cast<std::size_t>(event.source)];
    return {nullptr, event.level, {}};
  }
  return {slot, control_.EffectiveLevel(*slot), TaxonomyOf(*slot, event)};
}

Result<std::unique_ptr<EventRouter>> MakeCatalogRouter(const EventControlOptions& options) {
  auto control = EventControl::Build(Catalog::Get(), options);
  if (!control.ok()) return control.status();
  return std::make_unique<EventRouter>(Catalog::Get(), std::move(*control));
}

}  // namespace mailscope::catalog
