#include "filter/filter.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/ascii.h"
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

// A comparison that holds only for a string field equal to a plain value
// (see RequiredFieldValues()): MatchValue() compares nothing else with
// '=' and a literal that is not a number, and a missing field matches
// only "".
bool PlainStringTest(const internal::Node& n) {
  return n.kind == internal::Kind::kField && n.cmp == internal::Cmp::kEq && n.literal &&
         !n.has_int && !n.has_double && n.unit == Unit::kNone && !n.value.empty() &&
         n.id != kNoName;
}

// A field test a query's node requires: its key, one of its nodes, and the
// values it allows.
struct FieldTest {
  NameId key;
  std::uint32_t node;
  std::vector<std::string> values;
};

// Node `i` as one field test: a plain comparison, or an OR of them on one
// key; nullopt for anything else.
std::optional<FieldTest> FieldTestOf(const internal::Program& p, std::uint32_t i) {
  const internal::Node& n = p.nodes[i];
  if (PlainStringTest(n)) return FieldTest{n.id, i, {AsciiLowercase(n.value)}};
  if (n.kind != internal::Kind::kOr) return std::nullopt;
  FieldTest out{kNoName, i, {}};
  for (std::uint32_t c : n.children) {
    const internal::Node& child = p.nodes[c];
    if (!PlainStringTest(child) || (out.key != kNoName && child.id != out.key)) {
      return std::nullopt;
    }
    out.key = child.id;
    out.node = c;
    out.values.push_back(AsciiLowercase(child.value));
  }
  if (out.key == kNoName) return std::nullopt;
  return out;
}

// The field tests a query requires: its root, or the root's AND children.
std::vector<FieldTest> FieldTestsOf(const internal::Program& p, std::uint32_t root) {
  std::vector<FieldTest> out;
  const internal::Node& n = p.nodes[root];
  if (n.kind != internal::Kind::kAnd) {
    if (auto t = FieldTestOf(p, root)) out.push_back(std::move(*t));
    return out;
  }
  for (std::uint32_t c : n.children)
    if (auto t = FieldTestOf(p, c)) out.push_back(std::move(*t));
  return out;
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

std::optional<Filter::RequiredField> Filter::RequiredFieldValues() const {
  if (program_ == nullptr) return std::nullopt;
  std::vector<std::vector<FieldTest>> tests;
  for (const internal::Query& q : program_->queries)
    tests.push_back(FieldTestsOf(*program_, q.root));
  for (const FieldTest& first : tests.front()) {
    RequiredField out;
    out.program_ = program_.get();
    out.node_ = first.node;
    bool on_every_query = true;
    for (const std::vector<FieldTest>& query : tests) {
      const auto same_key = std::find_if(query.begin(), query.end(),
                                         [&](const FieldTest& t) { return t.key == first.key; });
      if (same_key == query.end()) {
        on_every_query = false;
        break;
      }
      out.values_.insert(out.values_.end(), same_key->values.begin(), same_key->values.end());
    }
    if (!on_every_query) continue;
    std::sort(out.values_.begin(), out.values_.end());
    out.values_.erase(std::unique(out.values_.begin(), out.values_.end()), out.values_.end());
    return out;
  }
  return std::nullopt;
}

NameId Filter::RequiredField::key() const { return program_->nodes[node_].id; }

bool Filter::RequiredField::Lookup(const Event& event, Value& out) const {
  return internal::LookupField(program_->nodes[node_], event, out);
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
