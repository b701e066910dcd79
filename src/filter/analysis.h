// Analyses of a parsed Filter for code that rewrites it for a peer which
// knows less than mailscope (the FILTER sent to Dovecot, src/catalog): the
// comparisons of each query, their three-valued evaluation, and the export of
// a query with some comparisons relaxed away. Not on the match path; these
// allocate freely. Thread-safe (filters are immutable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/event.h"
#include "filter/filter.h"

namespace mailscope::filter {

enum class Truth : std::uint8_t { kFalse, kTrue, kUnknown };

// One comparison of a parsed query. Valid while its filter lives.
class Leaf {
 public:
  enum class Type : std::uint8_t {
    kEvent,           // event=<mask>
    kCategory,        // category=<name>, log types included
    kSourceLocation,  // source_location=<file>[:<line>]
    kField,           // any other key
  };
  Type type() const;
  // The field key (kField), else "event", "category" or "source_location".
  std::string_view key() const;
  // The value as written: the event mask, category, file or field value.
  std::string_view value() const;
  // What Filter::Matches() gives for this comparison alone on `event`.
  bool Matches(const Event& event) const;

 private:
  friend struct internal::Access;
  Leaf(const internal::Program& program, std::uint32_t node) : program_(&program), node_(node) {}
  const internal::Program* program_;
  std::uint32_t node_;
};

// Kleene's three-valued logic over query `query` of `filter`, `leaf`
// deciding each comparison. REQUIRES: query < filter.query_count().
Truth Evaluate(const Filter& filter, std::size_t query,
               const std::function<Truth(const Leaf&)>& leaf);

// Whether a comparison of the query satisfies `pred`.
// REQUIRES: query < filter.query_count().
bool AnyLeaf(const Filter& filter, std::size_t query, const std::function<bool(const Leaf&)>& pred);

// Query `query` in Dovecot's export format (as Filter::ExportDovecot()
// writes each query inside its "(...)"), with every comparison `drop`
// selects removed so that the result matches at least the events the query
// matches: a dropped comparison counts as true under an even number of NOTs
// and as false under an odd one, and the constants fold away. `truth` is
// kUnknown with the text, or kTrue / kFalse (empty text) when nothing is
// left. With nothing dropped, the text is exactly the export.
// REQUIRES: query < filter.query_count().
struct Relaxed {
  Truth truth = Truth::kUnknown;
  std::string text;
};
Relaxed ExportRelaxed(const Filter& filter, std::size_t query,
                      const std::function<bool(const Leaf&)>& drop);

}  // namespace mailscope::filter
