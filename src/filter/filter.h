// The event filter language of Dovecot 2.3.19 (reference §3.4), mailscope's
// one filter language: metrics, exporters, `mailscope tail --filter` and rules
// all select events of every source with it. Parse() turns text into a Filter;
// Filter::Matches() tests one Event without allocating.
//
//   event=imap_command_finished AND (cmd_name=SELECT OR NOT category=storage)
//
// Two dialects share one grammar. kDovecot is 2.3.19 exactly: use it for all
// text that comes from or goes to Dovecot (dovecot.conf metrics, FILTER lines).
// kMailscope adds units to numbers, nothing else:
//   sizes      k K kB KB = 1024, M MB = 1024^2, G GB = 1024^3
//   durations  us, ms = 1000 us, s, min, h, d
// A bare value of digits with an optional fraction and '-' sign followed by
// one of these units becomes the whole number it stands for: `size>=1.5k`
// is size>=1536, `duration>10ms` is duration>10000. Durations are converted
// to microseconds because Dovecot's `duration` field and its `*_usecs` fields
// count microseconds. A number value that its decoder tagged with a unit
// (Value::unit()) is compared in its kind's base unit, microseconds or bytes,
// whatever the literal: Stalwart's `elapsed` of 15 (ms) matches
// `elapsed>10ms` and `elapsed>10000`; a literal with a unit of the other kind
// (`elapsed>1k`) never matches it. Untagged values compare as they are, so a
// field the decoder does not tag needs a number in its own unit. The
// conversion of literals applies to field comparisons only, also against
// string fields; a quoted value ("10ms") is always literal text. kDovecot
// ignores units on values (Dovecot's own fields count µs and bytes already). Fractions that do not
// give a whole number ("0.5us") and results beyond 64 bits are parse errors. The one other
// difference: kMailscope rejects a quoted string left open at the end of the text, which 2.3.19
// drops silently (`a=1 "x` is a=1 there).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/names.h"
#include "core/status.h"

namespace mailscope::filter {

enum class Dialect {
  kDovecot,    // Dovecot 2.3.19's language, no units
  kMailscope,  // kDovecot plus size and duration units; never sent to Dovecot as typed
};

class Filter;

namespace internal {
struct Program;
struct Access;  // analysis.cc
// Parse() and ParseClientFilter(); `names` is nullptr for trusted text.
Result<Filter> ParseFilter(std::string_view text, Dialect dialect, NameBudget* names);
}  // namespace internal

// Where Matches() finds the value of a field it compares, for a caller that
// has the event's fields at hand already (the metrics engine looks up the
// same few for every metric).
class FieldSource {
 public:
  // What the event's chain holds under the key, as Event::FindInChain()
  // finds it; false when it holds none. Matches() then tries the keys the
  // pipeline defines itself.
  virtual bool Find(NameId id, std::string_view key, Value& out) = 0;

 protected:
  ~FieldSource() = default;
};

// A parsed filter: a list of queries, matching an event when any query does
// (one query per Parse(), several after Merge()). An empty filter has no
// query and matches nothing. Immutable, so thread-safe; copies are cheap and
// share the parsed form.
//
// Leaf semantics are Dovecot's (reference §3.4), on the Event model:
//  - event=<mask>: the event's name, case-sensitive wildcard; unnamed events
//    never match.
//  - category=<name>: Event::categories of the event, its parents, the global
//    event and its parents (decoders add ancestors, so descendants match).
//    debug info warning error fatal panic test Event::level instead
//    (Level::kWarn is "warning"; Level::kTrace has no Dovecot log type and
//    matches none of them).
//  - source_location=<file>[:<line>]: Event::source_file exactly, and
//    source_line unless the line is 0 or absent.
//  - any other key is a field, looked up in the event's fields, then the
//    columns of its record fields, then the same on each parent, then on the
//    global event and its parents. Missing: matches only "" (with any
//    operator). Strings: '=' only, case-insensitive ASCII wildcard; an empty
//    string matches only "". kInt, kUint and kBool (as 0/1): compared as
//    numbers when the value is an integer greater than -2147483648 (Dovecot
//    takes INT_MIN and below for "not a number"), else '=' against a wildcard
//    on the decimal text; a value with neither wildcard nor number never
//    matches (2.3.19 dereferences the integer as a string there). kDouble
//    (not a Dovecot type): compared as numbers when the value is a number,
//    else like integers. kTimeval and kRecord values never match. Dovecot's
//    string lists have no Value type yet; when they get one, '=' should match
//    when any element matches.
//  - Keys the pipeline defines, tested only when the event chain has no field
//    of that name (the event's own field wins: Dovecot events carry `user`):
//    `source` is SourceName(Event::source) ("dovecot", "exim", ...); `kind`
//    and `outcome` are the names in Event::taxonomy, missing when kNoName;
//    a normalized name of the taxonomy (`remote_ip`, `user`, `reason`, ...)
//    is the source field its alias names on this event, looked up like any
//    field. The first two compare as strings; an aliased field compares as
//    its own type. An event routed without a kind has none of them but
//    `source`. So `kind=auth AND outcome=failure` selects failed logins of
//    every source.
//  - Like Dovecot, a filter whose every query requires an event name
//    (RequiresEventName) never matches an unnamed event, even through NOT.
class Filter {
 public:
  Filter() = default;  // empty

  // Whether the event matches any query, with the values of the fields it
  // compares taken from `fields` when given. Never allocates.
  bool Matches(const Event& event, FieldSource* fields = nullptr) const;

  bool empty() const;
  std::size_t query_count() const;

  // Dovecot's client-side rule (§3.3): a query requires a name if it is an
  // event= test, NOT of a query that requires one, AND where either side
  // does, or OR where both sides do. True when every query requires a name
  // (and for the empty filter). Note that the 2.3.19 stats server never
  // counts unnamed events at all, whatever this says, because merging never
  // clears the flag; a metrics engine wanting that parity tests the name.
  bool RequiresEventName() const;

  // The event names that can match, when the filter pins them down: a named
  // event whose name is not in `names` never matches. `exact`: a named event
  // matches exactly when its name is in `names` (the filter tests nothing
  // else). nullopt when some query can match a named event of any name (a
  // wildcard, NOT, or a query without an event= test on every path). The
  // empty filter gives an empty, exact set. Unnamed events are not covered.
  struct EventNames {
    std::vector<NameId> names;  // sorted, unique
    bool exact = true;
  };
  std::optional<EventNames> RequiredEventNames() const;

  // A field that every query compares with plain strings: on each query's
  // AND path, a `key=value` comparison, or an OR of them on that one key,
  // whose values are not empty, not numbers and not masks. Such a
  // comparison holds only when the field, looked up as Matches() looks it
  // up (Lookup()), is a string equal to one of values() ASCII case aside, so
  // an event whose field is anything else (missing, a number, another
  // string) matches no query. The first query's keys are tried in order.
  // Valid while the filter lives.
  class RequiredField {
   public:
    NameId key() const;
    // Lowercase ASCII, sorted, unique.
    const std::vector<std::string>& values() const { return values_; }
    // The value `key=...` is compared with on `event`: the chain's, else the
    // pipeline's (`source`, `kind`, a normalized name). False when there is
    // none.
    bool Lookup(const Event& event, Value& out) const;

   private:
    friend class Filter;
    const internal::Program* program_ = nullptr;
    std::uint32_t node_ = 0;  // one of the comparisons, for the key and its lookup
    std::vector<std::string> values_;
  };
  // nullopt when no key qualifies, or the filter is empty.
  std::optional<RequiredField> RequiredFieldValues() const;

  // The filter in Dovecot's export format, as the stats server sends it in
  // FILTER: queries joined by " OR ", each wrapped in "(...)"; inner nodes
  // "(a AND b)", "(a OR b)", "(NOT a)"; leaves event="x", category="x" or
  // bare log types (category=error), source_location="f:l", "key"="value";
  // '"', '\' and '\'' escaped with a backslash. Units of a kMailscope filter
  // appear as plain integers, so the text always parses in Dovecot 2.3.19
  // (and in Parse(kDovecot)) with the same meaning, with the quirks of
  // §3.4: a '\'' comes back as "\'", and a file name ending in ":<digits>"
  // with no line re-parses as a line number.
  std::string ExportDovecot() const;

  // For diagnostics: the export text, or "(empty filter)".
  std::string ToString() const;

  // The union of the queries of `filters`, in order: one query per parsed
  // filter, as the stats server builds its FILTER from the metrics.
  // REQUIRES: no nullptr.
  static Filter Merge(const std::vector<const Filter*>& filters);

 private:
  friend Result<Filter> internal::ParseFilter(std::string_view text, Dialect dialect,
                                              NameBudget* names);
  friend struct internal::Access;
  explicit Filter(std::shared_ptr<const internal::Program> program);

  std::shared_ptr<const internal::Program> program_;  // nullptr: empty
};

// Parses one filter. Whitespace only gives the empty filter. Errors are
// kInvalidArgument naming the 1-based byte position and what was found, e.g.
// "event filter: syntax error at 14, unexpected ')', expecting AND, OR or
// end of filter", and "event filter: Only fields support inequality
// comparisons ..." for < > <= >= on event, category or source_location.
// Nesting deeper than kMaxDepth (after reading chains of one operator as one
// level) is rejected; Dovecot accepts more, no real filter needs it.
// The names the filter tests (event names, categories, field keys) are
// interned for good, unbudgeted: for trusted text only (configuration, the
// catalog, Dovecot's own FILTER lines); filters from clients go through
// ParseClientFilter().
inline constexpr int kMaxDepth = 256;
Result<Filter> Parse(std::string_view text, Dialect dialect);

// Longest filter a client may send. Filters are typed by people (`mailscope
// tail`) or set in `doveadm stats add`, whose lines are at most 1 KiB; 4 KiB
// leaves room for any of them and keeps the FILTER that every Dovecot
// process gets (the clients' filters joined) short.
inline constexpr std::size_t kMaxClientFilterBytes = 4096;

// Parse() for a filter that a client sends (`mailscope tail`, METRICS-ADD).
// Names new to mailscope's name table count against the client's `names`
// budget and are added all or none, and only once the whole filter has
// parsed: a refused filter adds no name. Errors besides Parse()'s, both
// kResourceExhausted: "event filter: 5000 bytes long, more than the 4096 a
// filter from a client may have" and "event filter: no room for its 12 new
// names (names new to mailscope per client: at most 4096, 3 left); the first
// past the room: 'x' at 40" ("(mailscope's name table is full)" when the
// table's budget is the one spent).
Result<Filter> ParseClientFilter(std::string_view text, Dialect dialect, NameBudget& names);

// Appends `s` quoted as Dovecot's str_append_escaped() writes it in a filter:
// a backslash before '"', '\' and '\''. The 2.3.19 lexer does not decode
// "\'", so a '\'' grows a backslash per round trip.
void AppendDovecotQuoted(std::string& out, std::string_view s);

}  // namespace mailscope::filter
