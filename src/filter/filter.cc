#include "filter/filter.h"

#include <algorithm>
#include <iterator>

#include "filter/program.h"

namespace mailscope::filter {
namespace {

using EventNames = Filter::EventNames;

// Union of two name sets: nullopt (any name) absorbs.
std::optional<EventNames> Union(std::optional<EventNames> a, const std::optional<EventNames>& b) {
  if (!a || !b) return std::nullopt;
  std::vector<NameId> out;
  std::set_union(a->names.begin(), a->names.end(), b->names.begin(), b->names.end(),
                 std::back_inserter(out));
  return EventNames{std::move(out), a->exact && b->exact};
}

// What node `i` requires of a named event's name (see RequiredEventNames()).
std::optional<EventNames> NamesOf(const internal::Program& p, std::uint32_t i) {
  const internal::Node& n = p.nodes[i];
  switch (n.kind) {
    case internal::Kind::kEventName:
      // Eval(): an uninterned (empty) name never matches.
      if (n.id == kNoName) return EventNames{};
      return EventNames{{n.id}, true};
    case internal::Kind::kAnd: {
      // Every child must match: the names are those all constrained children
      // allow; exact only when every child is.
      std::optional<EventNames> out;
      bool exact = true;
      for (std::uint32_t c : n.children) {
        std::optional<EventNames> child = NamesOf(p, c);
        if (!child) {
          exact = false;
          continue;
        }
        exact = exact && child->exact;
        if (!out) {
          out = std::move(child);
          continue;
        }
        std::vector<NameId> both;
        std::set_intersection(out->names.begin(), out->names.end(), child->names.begin(),
                              child->names.end(), std::back_inserter(both));
        out->names = std::move(both);
      }
      if (out) out->exact = exact;
      return out;
    }
    case internal::Kind::kOr: {
      std::optional<EventNames> out = EventNames{};
      for (std::uint32_t c : n.children) out = Union(std::move(out), NamesOf(p, c));
      return out;
    }
    default:  // NOT, wildcards and every other leaf can match any name
      return std::nullopt;
  }
}

}  // namespace

Filter::Filter(std::shared_ptr<const internal::Program> program) : program_(std::move(program)) {}

bool Filter::empty() const { return program_ == nullptr; }

std::size_t Filter::query_count() const {
  return program_ == nullptr ? 0 : program_->queries.size();
}

bool Filter::RequiresEventName() const { return program_ == nullptr || program_->requires_name; }

std::optional<Filter::EventNames> Filter::RequiredEventNames() const {
  std::optional<EventNames> out = EventNames{};
  if (program_ == nullptr) return out;
  for (const internal::Query& q : program_->queries) {
    out = Union(std::move(out), NamesOf(*program_, q.root));
  }
  return out;
}

Filter Filter::Merge(const std::vector<const Filter*>& filters) {
  internal::Program merged;
  for (const Filter* f : filters) {
    MS_CHECK(f != nullptr);
    if (f->program_ == nullptr) continue;
    const auto offset = static_cast<std::uint32_t>(merged.nodes.size());
    for (internal::Node n : f->program_->nodes) {
      for (std::uint32_t& c : n.children) c += offset;
      merged.nodes.push_back(std::move(n));
    }
    for (internal::Query q : f->program_->queries) {
      q.root += offset;
      merged.queries.push_back(q);
      merged.requires_name = merged.requires_name && q.requires_name;
    }
  }
  if (merged.queries.empty()) return Filter();
  return Filter(std::make_shared<const internal::Program>(std::move(merged)));
}

}  // namespace mailscope::filter
