#include "catalog/dovecot_filter.h"

#include <set>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "filter/analysis.h"

namespace mailscope::catalog {
namespace {

using filter::Leaf;
using filter::Truth;

// One name under which a Dovecot process may send a catalog event.
struct Candidate {
  std::string_view wire;
  NameId name = kNoName;
  Taxonomy taxonomy;  // outcome kNoName when read from a field
  bool outcome_from_field = false;
  bool excluded = false;
};

class Exporter {
 public:
  Exporter(const Catalog& catalog, std::span<const std::string> excluded) {
    const std::set<std::string_view> excluded_set(excluded.begin(), excluded.end());
    for (std::string_view f : kDovecotCommonFields) dovecot_fields_.emplace(f);
    for (const KindInfo& k : catalog.kinds()) normalized_.insert(k.fields.begin(), k.fields.end());
    for (const EventInfo& e : catalog.events())
      for (const auto& [normalized, field] : e.normalized_fields) normalized_.insert(normalized);

    const std::vector<const EventInfo*> events = catalog.OfSystem(System::kDovecot);
    std::vector<std::size_t> alias_begin;
    for (const EventInfo* e : events) {
      dovecot_fields_.insert(e->fields.begin(), e->fields.end());
      alias_begin.push_back(aliases_.size());
      for (const auto& [normalized, field] : e->normalized_fields)
        aliases_.push_back({InternName(normalized), InternName(field)});
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      const EventInfo& e = *events[i];
      Candidate c;
      if (!e.kind.empty()) {
        c.taxonomy.kind = InternName(e.kind);
        c.outcome_from_field = !e.outcome_rules.empty();
        if (!c.outcome_from_field) c.taxonomy.outcome = InternName(e.outcome);
        c.taxonomy.alias_count = static_cast<std::uint32_t>(e.normalized_fields.size());
        if (c.taxonomy.alias_count > 0) c.taxonomy.aliases = &aliases_[alias_begin[i]];
      }
      c.excluded = excluded_set.contains(e.name);
      for (const std::string& a : e.aliases) c.excluded = c.excluded || excluded_set.contains(a);
      c.wire = e.name;
      c.name = InternName(c.wire);
      candidates_.push_back(c);
      for (const std::string& a : e.aliases) {
        c.wire = a;
        c.name = InternName(a);
        candidates_.push_back(c);
      }
    }
    for (const Candidate& c : candidates_) wire_names_.insert(c.wire);
    for (std::string_view x : excluded)
      if (!wire_names_.contains(x)) excluded_unknown_.push_back(x);
  }

  // Appends query `q` of `f`, "(...)" and its " OR " separator, if it wants anything.
  void Add(const filter::Filter& f, std::size_t q, std::string& out) {
    const bool rewrite = filter::AnyLeaf(f, q, [&](const Leaf& l) { return IsPipelineField(l); });
    const std::vector<std::string_view> exclusions = Exclusions(f, q);
    if (!rewrite && exclusions.empty()) {  // today's export, byte for byte
      Append(filter::ExportRelaxed(f, q, [](const Leaf&) { return false; }).text, out);
      return;
    }
    std::vector<std::string_view> wanted;  // wire names the query can match
    for (const Candidate& c : candidates_)
      if (!c.excluded && Possible(f, q, &c)) wanted.push_back(c.wire);
    const bool unknown = Possible(f, q, nullptr);
    if (wanted.empty() && !unknown) return;

    std::string text;
    if (!rewrite || unknown) {
      // Unknown events can match: the names cannot be listed, so the query
      // keeps its Dovecot keys, minus the exclusions.
      filter::Relaxed r =
          filter::ExportRelaxed(f, q, [&](const Leaf& l) { return IsPipelineField(l); });
      if (r.truth == Truth::kFalse) return;
      text = r.truth == Truth::kTrue ? std::string("event=\"*\"") : std::move(r.text);
      for (std::string_view x : exclusions) {
        text.insert(0, 1, '(');
        text += " AND (NOT event=";
        filter::AppendDovecotQuoted(text, x);
        text += "))";
      }
    } else {
      // Event names are known per candidate and listed, so only the rest of
      // the query on Dovecot's keys stays.
      filter::Relaxed r = filter::ExportRelaxed(f, q, [&](const Leaf& l) {
        return IsPipelineField(l) || l.type() == Leaf::Type::kEvent;
      });
      if (r.truth == Truth::kFalse) return;
      text.assign(wanted.size() - 1, '(');
      for (std::size_t i = 0; i < wanted.size(); ++i) {
        if (i > 0) text += " OR ";
        text += "event=";
        filter::AppendDovecotQuoted(text, wanted[i]);
        if (i > 0) text += ')';
      }
      if (r.truth == Truth::kUnknown) text = "(" + text + " AND " + r.text + ")";
    }
    Append(text, out);
  }

 private:
  static void Append(std::string_view query, std::string& out) {
    if (!out.empty()) out += " OR ";
    out += '(';
    out += query;
    out += ')';
  }

  // A key only mailscope gives meaning to on Dovecot's events.
  bool IsPipelineField(const Leaf& l) const {
    if (l.type() != Leaf::Type::kField) return false;
    const std::string_view key = l.key();
    if (key == "source" || key == "kind" || key == "outcome") return true;
    return normalized_.contains(key) && !dovecot_fields_.contains(key);
  }

  // Excluded names the query could match.
  std::vector<std::string_view> Exclusions(const filter::Filter& f, std::size_t q) {
    std::vector<std::string_view> out;
    for (const Candidate& c : candidates_)
      if (c.excluded && Possible(f, q, &c)) out.push_back(c.wire);
    if (!excluded_unknown_.empty() && Possible(f, q, nullptr))
      out.insert(out.end(), excluded_unknown_.begin(), excluded_unknown_.end());
    return out;
  }

  // Whether the query is not definitely false on candidate `c`, or on an
  // event the catalog does not know (nullptr).
  bool Possible(const filter::Filter& f, std::size_t q, const Candidate* c) {
    return filter::Evaluate(f, q, [&](const Leaf& l) { return Decide(l, c); }) != Truth::kFalse;
  }

  Truth Decide(const Leaf& l, const Candidate* c) {
    switch (l.type()) {
      case Leaf::Type::kCategory:
      case Leaf::Type::kSourceLocation:
        return Truth::kUnknown;
      case Leaf::Type::kEvent:
        if (c == nullptr) {
          // An unknown event has no catalog name, and any other.
          const std::string_view mask = l.value();
          const bool literal = mask.find_first_of("*?") == std::string_view::npos;
          return literal && wire_names_.contains(mask) ? Truth::kFalse : Truth::kUnknown;
        }
        break;
      case Leaf::Type::kField:
        if (!IsPipelineField(l)) return Truth::kUnknown;  // Dovecot's own fields
        if (c != nullptr) {
          if (l.key() == "outcome" && c->outcome_from_field) return Truth::kUnknown;
          if (c->taxonomy.FieldFor(FindName(l.key())) != kNoName) return Truth::kUnknown;
        }
        break;
    }
    // Known from what the catalog says of the event: its name, source and taxonomy.
    scratch_.Clear();
    scratch_.source = Source::kDovecot;
    if (c != nullptr) {
      scratch_.name = c->name;
      scratch_.taxonomy = c->taxonomy;
    }
    return l.Matches(scratch_) ? Truth::kTrue : Truth::kFalse;
  }

  std::vector<FieldAlias> aliases_;  // complete before candidates point into it
  std::vector<Candidate> candidates_;
  std::set<std::string_view> wire_names_;
  std::vector<std::string_view> excluded_unknown_;
  std::set<std::string, std::less<>> dovecot_fields_, normalized_;
  Event scratch_;
};

}  // namespace

std::string ExportDovecotFilter(std::span<const filter::Filter* const> filters,
                                const Catalog& catalog,
                                std::span<const std::string> excluded_events) {
  Exporter exporter(catalog, excluded_events);
  std::string out;
  for (const filter::Filter* f : filters) {
    MS_CHECK(f != nullptr);
    for (std::size_t q = 0; q < f->query_count(); ++q) exporter.Add(*f, q, out);
  }
  return out;
}

}  // namespace mailscope::catalog
