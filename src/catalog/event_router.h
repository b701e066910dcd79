// EventRouter: the step between decoding and consuming for events of the
// four systems. It looks each event up in the catalog (name or alias),
// applies the configured control (effective level, per-output wishes), and
// keeps events the catalog does not know: they pass on as unknown, at the
// level their source gave, and are counted. It also gives each event its
// place in the taxonomy (kind, outcome, normalized fields), precompiled at
// construction so that routing allocates nothing once each event name has
// been seen. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/event_control.h"
#include "core/event.h"

namespace mailscope::catalog {

// The catalog system a source's events belong to; none for protocol records
// that are not catalog events (dovecot_old_stats).
constexpr std::optional<System> SystemOf(Source source) {
  switch (source) {
    case Source::kDovecot:
      return System::kDovecot;
    case Source::kStalwart:
    case Source::kStalwartLog:
      return System::kStalwart;
    case Source::kExim:
    case Source::kEximLog:
      return System::kExim;
    case Source::kQmailLog:
      return System::kQmail;
    case Source::kDovecotOldStats:
      return std::nullopt;
  }
  return std::nullopt;
}

// Whether a source's events say their level. Stalwart's webhook payload does
// not: its events take their catalog level, with the configured overrides,
// when routed. Every other source says it, or its events have no catalog
// level to take.
constexpr bool SourceCarriesLevel(Source source) { return source != Source::kStalwart; }

class EventRouter;
// A router over the compiled-in catalog, its control built from `options`;
// the error of EventControl::Build otherwise.
Result<std::unique_ptr<EventRouter>> MakeCatalogRouter(const EventControlOptions& options = {});

class EventRouter {
 public:
  struct Routed {
    const EventInfo* info = nullptr;  // nullptr: not in the catalog (kept, counted)
    Level level = kDefaultEventLevel;
    // Kind, the outcome of this very event and the normalized field names;
    // empty for unknown events and events without a kind. Copy it onto the
    // event (`event.taxonomy = routed.taxonomy`) before consumers see it.
    // The aliases stay valid while the router lives.
    Taxonomy taxonomy;
  };

  EventRouter(const Catalog& catalog, EventControl control);

  // Looks fields up with the event's chain (Event::FindInChain) to decide an
  // outcome read from a field. Allocates only on the first sight of a name.
  // REQUIRES: SystemOf(event.source) has a value.
  Routed Route(const Event& event);

  const Catalog& catalog() const { return catalog_; }
  const EventControl& control() const { return control_; }
  // Routes with `control` from now on (a reloaded configuration); the name
  // lookups and the unknown-event counts carry over.
  // REQUIRES: `control` was built for catalog().
  void SetControl(EventControl control) { control_ = std::move(control); }
  std::uint64_t unknown(Source source) const { return unknown_[static_cast<std::size_t>(source)]; }

 private:
  // The taxonomy of one catalog event, with names interned and rules read.
  struct CompiledTaxonomy {
    Taxonomy base;  // kind, constant outcome, aliases
    NameId outcome_field = kNoName;
    std::vector<NameId> rule_outcomes;  // by EventInfo::outcome_rules index
  };
  Taxonomy TaxonomyOf(const EventInfo& info, const Event& event) const;

  const Catalog& catalog_;
  EventControl control_;
  std::vector<CompiledTaxonomy> taxonomy_;  // by index in catalog_.events()
  std::vector<FieldAlias> aliases_;         // every event's, back to back
  // Per system, by interned name: nullptr = not looked up yet, &kUnknown =
  // not in the catalog, else the event.
  static const EventInfo kUnknown;
  std::array<std::vector<const EventInfo*>, 4> cache_;
  std::array<std::uint64_t, kSourceCount> unknown_{};
};

}  // namespace mailscope::catalog
