#include "catalog/event_router.h"

#include "core/check.h"

namespace mailscope::catalog {

std::optional<System> SystemOf(Source source) {
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

const EventInfo EventRouter::kUnknown{};

EventRouter::EventRouter(const Catalog& catalog, EventControl control)
    : catalog_(catalog), control_(std::move(control)) {}

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
    return {nullptr, event.level};
  }
  return {slot, control_.EffectiveLevel(*slot)};
}

bool EventRouter::Wanted(std::string_view output, const Routed& routed, Level output_level) const {
  if (routed.info == nullptr) return routed.level >= output_level;
  return control_.Wanted(output, *routed.info);
}

}  // namespace mailscope::catalog
