// The parsed form of a Filter, shared by the parser, the evaluator and the
// exporter. Internal to src/filter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/names.h"
#include "filter/filter.h"

namespace mailscope::filter::internal {

enum class Kind : std::uint8_t {
  kAnd,  // all children, in order; a left-nested chain of one operator is one node
  kOr,
  kNot,            // one child
  kEventName,      // literal name: compares Event::name with `id`
  kEventWildcard,  // name mask with '*' or '?'
  kCategory,       // `id` in the categories of the event chain
  kLogType,        // Event::level == `level`
  kSourceLocation,
  kField,
};

enum class Cmp : std::uint8_t { kEq, kGt, kLt, kGe, kLe };

// Field keys the pipeline gives a meaning when the event lacks the field.
enum class PipelineKey : std::uint8_t { kNone, kSource, kKind, kOutcome };

struct Node {
  Kind kind = Kind::kAnd;
  Cmp cmp = Cmp::kEq;
  bool literal = true;      // kField: the value has no '*' or '?'
  bool has_int = false;     // kField: the value is a Dovecot integer (int_value)
  bool has_double = false;  // kField: the value is a number (double_value)
  // kField, kMailscope: values tagged with a unit compare in their kind's
  // base unit; `unit` is the literal's (kMicroseconds or kBytes), if any.
  bool base_units = false;
  Unit unit = Unit::kNone;
  PipelineKey pipeline = PipelineKey::kNone;  // kField
  Level level = Level::kInfo;                 // kLogType
  std::uint16_t depth = 1;                    // levels of nodes below and including this one
  NameId id = kNoName;                        // event name, category or field key
  std::int64_t int_value = 0;
  double double_value = 0;
  std::uint64_t line = 0;               // kSourceLocation; 0 = any line
  std::string key;                      // kField: the key text (record columns, export)
  std::string value;                    // mask, category, file or field value, as exported
  std::vector<std::uint32_t> children;  // indexes into Program::nodes
};

struct Query {
  std::uint32_t root;
  bool requires_name;
};

struct Program {
  std::vector<Node> nodes;
  std::vector<Query> queries;
  bool requires_name = true;  // every query requires a name
};

// Evaluates one query's node (match.cc).
// `fields`: where kField leaves look up their values; nullptr for the chain.
bool Eval(const Program& program, std::uint32_t node, const Event& event,
          FieldSource* fields = nullptr);
// The value a kField node compares on `event`: the chain's, else the one
// the pipeline defines (match.cc).
bool LookupField(const Node& n, const Event& event, Value& out);
// Appends one query's node in Dovecot's export format (export.cc).
void Export(const Program& program, std::uint32_t node, std::string& out);

}  // namespace mailscope::filter::internal
