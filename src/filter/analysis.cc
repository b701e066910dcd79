#include "filter/analysis.h"

#include <utility>
#include <vector>

#include "core/check.h"
#include "filter/program.h"

namespace mailscope::filter {
namespace internal {

struct Access {
  static const Program& ProgramOf(const Filter& filter, std::size_t query) {
    MS_CHECK(filter.program_ != nullptr && query < filter.program_->queries.size());
    return *filter.program_;
  }
  static Leaf MakeLeaf(const Program& program, std::uint32_t node) { return Leaf(program, node); }
  static const Node& NodeOf(const Leaf& leaf) { return leaf.program_->nodes[leaf.node_]; }
  static const Program& ProgramOf(const Leaf& leaf) { return *leaf.program_; }
  static std::uint32_t Index(const Leaf& leaf) { return leaf.node_; }
};

namespace {

Truth Kleene(const Program& p, std::uint32_t i, const std::function<Truth(const Leaf&)>& leaf) {
  const Node& n = p.nodes[i];
  switch (n.kind) {
    case Kind::kAnd:
    case Kind::kOr: {
      // AND: false absorbs; OR: true absorbs; otherwise unknown taints.
      const Truth absorbing = n.kind == Kind::kAnd ? Truth::kFalse : Truth::kTrue;
      Truth out = n.kind == Kind::kAnd ? Truth::kTrue : Truth::kFalse;
      for (std::uint32_t c : n.children) {
        const Truth t = Kleene(p, c, leaf);
        if (t == absorbing) return absorbing;
        if (t == Truth::kUnknown) out = Truth::kUnknown;
      }
      return out;
    }
    case Kind::kNot:
      switch (Kleene(p, n.children[0], leaf)) {
        case Truth::kFalse:
          return Truth::kTrue;
        case Truth::kTrue:
          return Truth::kFalse;
        case Truth::kUnknown:
          return Truth::kUnknown;
      }
      return Truth::kUnknown;
    default:
      return leaf(Access::MakeLeaf(p, i));
  }
}

bool Any(const Program& p, std::uint32_t i, const std::function<bool(const Leaf&)>& pred) {
  const Node& n = p.nodes[i];
  switch (n.kind) {
    case Kind::kAnd:
    case Kind::kOr:
    case Kind::kNot:
      for (std::uint32_t c : n.children)
        if (Any(p, c, pred)) return true;
      return false;
    default:
      return pred(Access::MakeLeaf(p, i));
  }
}

// `positive`: under an even number of NOTs.
Relaxed Relax(const Program& p, std::uint32_t i, bool positive,
              const std::function<bool(const Leaf&)>& drop) {
  const Node& n = p.nodes[i];
  switch (n.kind) {
    case Kind::kAnd:
    case Kind::kOr: {
      const Truth absorbing = n.kind == Kind::kAnd ? Truth::kFalse : Truth::kTrue;
      std::vector<std::string> kept;
      for (std::uint32_t c : n.children) {
        Relaxed r = Relax(p, c, positive, drop);
        if (r.truth == absorbing) return {absorbing, {}};
        if (r.truth == Truth::kUnknown) kept.push_back(std::move(r.text));
      }
      if (kept.empty()) return {n.kind == Kind::kAnd ? Truth::kTrue : Truth::kFalse, {}};
      // Export()'s binary nesting: ((a AND b) AND c).
      const std::string_view op = n.kind == Kind::kAnd ? " AND " : " OR ";
      std::string out(kept.size() - 1, '(');
      out += kept[0];
      for (std::size_t k = 1; k < kept.size(); ++k) {
        out += op;
        out += kept[k];
        out += ')';
      }
      return {Truth::kUnknown, std::move(out)};
    }
    case Kind::kNot: {
      Relaxed r = Relax(p, n.children[0], !positive, drop);
      if (r.truth == Truth::kTrue) return {Truth::kFalse, {}};
      if (r.truth == Truth::kFalse) return {Truth::kTrue, {}};
      return {Truth::kUnknown, "(NOT " + r.text + ")"};
    }
    default: {
      if (drop(Access::MakeLeaf(p, i))) return {positive ? Truth::kTrue : Truth::kFalse, {}};
      Relaxed r;
      Export(p, i, r.text);
      return r;
    }
  }
}

}  // namespace
}  // namespace internal

using internal::Access;

Leaf::Type Leaf::type() const {
  switch (Access::NodeOf(*this).kind) {
    case internal::Kind::kEventName:
    case internal::Kind::kEventWildcard:
      return Type::kEvent;
    case internal::Kind::kCategory:
    case internal::Kind::kLogType:
      return Type::kCategory;
    case internal::Kind::kSourceLocation:
      return Type::kSourceLocation;
    default:
      return Type::kField;
  }
}

std::string_view Leaf::key() const {
  switch (type()) {
    case Type::kEvent:
      return "event";
    case Type::kCategory:
      return "category";
    case Type::kSourceLocation:
      return "source_location";
    case Type::kField:
      break;
  }
  return Access::NodeOf(*this).key;
}

std::string_view Leaf::value() const { return Access::NodeOf(*this).value; }

bool Leaf::Matches(const Event& event) const {
  return internal::Eval(Access::ProgramOf(*this), Access::Index(*this), event);
}

Truth Evaluate(const Filter& filter, std::size_t query,
               const std::function<Truth(const Leaf&)>& leaf) {
  const internal::Program& p = Access::ProgramOf(filter, query);
  return internal::Kleene(p, p.queries[query].root, leaf);
}

bool AnyLeaf(const Filter& filter, std::size_t query,
             const std::function<bool(const Leaf&)>& pred) {
  const internal::Program& p = Access::ProgramOf(filter, query);
  return internal::Any(p, p.queries[query].root, pred);
}

Relaxed ExportRelaxed(const Filter& filter, std::size_t query,
                      const std::function<bool(const Leaf&)>& drop) {
  const internal::Program& p = Access::ProgramOf(filter, query);
  return internal::Relax(p, p.queries[query].root, true, drop);
}

}  // namespace mailscope::filter
