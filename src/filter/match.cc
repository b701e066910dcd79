// Filter::Matches(): Dovecot 2.3.19's leaf semantics (event-filter.c) on the
// Event model. Nothing here allocates: names were interned at parse time and
// numbers are formatted into stack buffers.
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdint>

#include "core/ascii.h"
#include "core/wildcard.h"
#include "filter/filter.h"
#include "filter/program.h"

namespace mailscope::filter {
namespace internal {
namespace {

// event_find_field_recursive(), on the Event model.
bool FindField(const Event& event, const Node& n, Value& out) {
  return event.FindInChain(n.id, n.key, out);
}

bool NameValue(NameId id, Value& out) {
  if (id == kNoName) return false;
  out.set_string(NameText(id));
  return true;
}

// What the pipeline says when the event chain lacks the field: the source
// and the taxonomy the router set, or the source field a normalized name
// stands for on this event.
bool FindPipelineField(const Event& event, const Node& n, Value& out) {
  switch (n.pipeline) {
    case PipelineKey::kSource:
      out.set_string(SourceName(event.source));
      return true;
    case PipelineKey::kKind:
      return NameValue(event.taxonomy.kind, out);
    case PipelineKey::kOutcome:
      return NameValue(event.taxonomy.outcome, out);
    case PipelineKey::kNone:
      break;
  }
  const NameId field = event.taxonomy.FieldFor(n.id);
  return field != kNoName && event.FindInChain(field, NameText(field), out);
}

bool Compare(int order, Cmp cmp) {
  switch (cmp) {
    case Cmp::kEq:
      return order == 0;
    case Cmp::kGt:
      return order > 0;
    case Cmp::kLt:
      return order < 0;
    case Cmp::kGe:
      return order >= 0;
    case Cmp::kLe:
      return order <= 0;
  }
  return false;
}

template <typename T>
int Order(T a, T b) {
  return (a > b) - (a < b);
}

// A number against a value that is not one: only '=' with a wildcard, on
// the decimal text. A literal here never matches: 2.3.19 reads the integer
// as a string pointer in that case.
bool MatchNumberText(const Node& n, std::string_view text) {
  return n.cmp == Cmp::kEq && !n.literal && WildcardMatchIcase(text, n.value);
}

template <typename T>
bool MatchIntegerText(const Node& n, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return MatchNumberText(n, std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

bool MatchValue(const Node& n, const Value& v) {
  switch (v.type()) {
    case Value::Type::kString: {
      if (n.cmp != Cmp::kEq) return false;
      const std::string_view s = v.as_string();
      if (s.empty()) return n.value.empty();
      return n.literal ? EqualsAsciiIcase(s, n.value) : WildcardMatchIcase(s, n.value);
    }
    case Value::Type::kInt:
      if (n.has_int) return Compare(Order(v.as_int(), n.int_value), n.cmp);
      return MatchIntegerText(n, v.as_int());
    case Value::Type::kUint:
    case Value::Type::kBool: {
      const std::uint64_t u = v.as_uint();
      if (n.has_int) {
        const int order = n.int_value < 0 ? 1 : Order(u, static_cast<std::uint64_t>(n.int_value));
        return Compare(order, n.cmp);
      }
      return MatchIntegerText(n, u);
    }
    case Value::Type::kDouble: {
      const double d = v.as_double();
      if (std::isnan(d)) return false;
      if (n.has_double) return Compare(Order(d, n.double_value), n.cmp);
      char buf[32];
      auto r = fmt::format_to_n(buf, sizeof buf, "{}", d);
      return MatchNumberText(n, std::string_view(buf, r.size));
    }
    case Value::Type::kTimeval:  // "no point to support matching exact timestamps"
    case Value::Type::kRecord:
    case Value::Type::kNone:
      return false;
  }
  return false;
}

// kMailscope, a number tagged with a unit: compared in its kind's base unit
// (what the literal counts in), saturated; a literal of the other kind
// (`bytes_out>10ms`) never matches it.
bool MatchInBaseUnit(const Node& n, const Value& v) {
  const Value::Type t = v.type();
  if (t != Value::Type::kInt && t != Value::Type::kUint && t != Value::Type::kDouble)
    return MatchValue(n, v);
  if (n.unit != Unit::kNone && KindOf(n.unit) != KindOf(v.unit())) return false;
  const std::uint64_t factor = BaseFactor(v.unit());
  if (factor == 1) return MatchValue(n, v);
  if (t == Value::Type::kInt) {
    std::int64_t x = 0;
    if (__builtin_mul_overflow(v.as_int(), static_cast<std::int64_t>(factor), &x))
      x = v.as_int() < 0 ? INT64_MIN : INT64_MAX;
    return MatchValue(n, Value::Int(x));
  }
  if (t == Value::Type::kUint) {
    std::uint64_t x = 0;
    if (__builtin_mul_overflow(v.as_uint(), factor, &x)) x = UINT64_MAX;
    return MatchValue(n, Value::Uint(x));
  }
  return MatchValue(n, Value::Double(v.as_double() * static_cast<double>(factor)));
}

// LookupField(), inline on the match path.
[[gnu::always_inline]] inline bool FieldValue(const Node& n, const Event& e, FieldSource* fields,
                                              Value& out) {
  const bool found = fields != nullptr ? fields->Find(n.id, n.key, out) : FindField(e, n, out);
  return found || FindPipelineField(e, n, out);
}

bool MatchField(const Node& n, const Event& e, FieldSource* fields) {
  Value v;
  if (!FieldValue(n, e, fields, v)) return n.value.empty();
  // Untagged values, and every value under kDovecot, compare as sent.
  if (n.base_units && v.unit() != Unit::kNone) return MatchInBaseUnit(n, v);
  return MatchValue(n, v);
}

}  // namespace

bool LookupField(const Node& n, const Event& e, Value& out) {
  return FieldValue(n, e, nullptr, out);
}

bool Eval(const Program& program, std::uint32_t node, const Event& e, FieldSource* fields) {
  const Node& n = program.nodes[node];
  switch (n.kind) {
    case Kind::kAnd:
      for (std::uint32_t c : n.children)
        if (!Eval(program, c, e, fields)) return false;
      return true;
    case Kind::kOr:
      for (std::uint32_t c : n.children)
        if (Eval(program, c, e, fields)) return true;
      return false;
    case Kind::kNot:
      return !Eval(program, n.children[0], e, fields);
    case Kind::kEventName:
      return n.id != kNoName && e.name == n.id;
    case Kind::kEventWildcard:
      return e.name != kNoName && WildcardMatch(NameText(e.name), n.value);
    case Kind::kCategory:
      return n.id != kNoName &&
             e.VisitChain([&](const Event& x) { return x.categories.contains(n.id); });
    case Kind::kLogType:
      return e.level == n.level;
    case Kind::kSourceLocation:
      return !e.source_file.empty() && e.source_file == n.value &&
             (n.line == 0 || e.source_line == n.line);
    case Kind::kField:
      return MatchField(n, e, fields);
  }
  return false;
}

}  // namespace internal

bool Filter::Matches(const Event& event, FieldSource* fields) const {
  if (program_ == nullptr) return false;
  const internal::Program& p = *program_;
  // Dovecot's fast path, which also decides: a filter whose every query
  // requires a name skips unnamed events, even where NOT would match them.
  if (p.requires_name && event.name == kNoName) return false;
  for (const internal::Query& q : p.queries)
    if (internal::Eval(p, q.root, event, fields)) return true;
  return false;
}

}  // namespace mailscope::filter
