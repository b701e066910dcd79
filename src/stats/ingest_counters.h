// IngestCounters: accepted events per (source, event name), routed events per
// (source, kind, outcome) and rejected input per (source, reason) — the data
// behind mailscope_events_total, mailscope_taxonomy_events_total and
// mailscope_ingest_rejected_total. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/event.h"

namespace mailscope::stats {

class IngestCounters {
 public:
  // Event names a source may add to mailscope_events_total beyond those the
  // catalog knows, by default. Names are the sender's choice: without a cap
  // one client could make /metrics as long as it likes.
  static constexpr std::uint32_t kDefaultMaxUnknownEventSeries = 200;

  explicit IngestCounters(std::uint32_t max_unknown_event_series = kDefaultMaxUnknownEventSeries)
      : max_unknown_series_(max_unknown_event_series) {}

  // Counts an event under its name. A name the catalog does not know
  // (`known` false) gets a series of its own while the source has fewer than
  // the cap of such series; events of later new names are only counted in
  // folded().
  void CountEvent(Source source, NameId name, bool known = true) {
    const auto s = static_cast<std::size_t>(source);
    auto& v = events_[s];
    if (name < v.size() && v[name] != 0) {
      ++v[name];
      return;
    }
    if (!known) {
      if (unknown_series_[s] >= max_unknown_series_) {
        ++folded_[s];
        return;
      }
      ++unknown_series_[s];
    }
    if (name >= v.size()) v.resize(name + 1);
    ++v[name];
  }
  std::uint64_t folded(Source source) const { return folded_[static_cast<std::size_t>(source)]; }
  // An event the catalog placed in the taxonomy; `outcome` may be kNoName.
  // Kinds and outcomes come from the catalog, so the keys are few and fixed.
  void CountTaxonomy(Source source, NameId kind, NameId outcome) {
    const std::uint64_t key = TaxonomyKey(kind, outcome);
    auto& counts = taxonomy_[static_cast<std::size_t>(source)];
    for (TaxonomyCount& c : counts) {
      if (c.key == key) {
        ++c.n;
        return;
      }
    }
    counts.push_back({key, 1});
  }
  void CountRejected(Source source, std::string_view reason) {
    ++rejected_[{source, std::string(reason)}];
  }

  // Calls f(source, name, count) for every non-zero event counter.
  template <typename F>
  void ForEachEvent(F&& f) const {
    for (std::size_t s = 0; s < events_.size(); ++s)
      for (std::size_t n = 0; n < events_[s].size(); ++n)
        if (events_[s][n] != 0) f(static_cast<Source>(s), static_cast<NameId>(n), events_[s][n]);
  }
  // Calls f(source, kind, outcome, count) for every taxonomy counter, in no
  // particular order.
  template <typename F>
  void ForEachTaxonomy(F&& f) const {
    for (std::size_t s = 0; s < taxonomy_.size(); ++s)
      for (const TaxonomyCount& c : taxonomy_[s])
        f(static_cast<Source>(s), static_cast<NameId>(c.key >> 32),
          static_cast<NameId>(c.key & 0xffffffffu), c.n);
  }
  std::uint64_t taxonomy(Source source, NameId kind, NameId outcome) const {
    for (const TaxonomyCount& c : taxonomy_[static_cast<std::size_t>(source)])
      if (c.key == TaxonomyKey(kind, outcome)) return c.n;
    return 0;
  }
  const std::map<std::pair<Source, std::string>, std::uint64_t>& rejected() const {
    return rejected_;
  }

  std::uint64_t events(Source source, NameId name) const {
    const auto& v = events_[static_cast<std::size_t>(source)];
    return name < v.size() ? v[name] : 0;
  }
  std::uint64_t rejected(Source source, std::string_view reason) const {
    auto it = rejected_.find({source, std::string(reason)});
    return it == rejected_.end() ? 0 : it->second;
  }

 private:
  std::uint32_t max_unknown_series_;
  std::array<std::uint32_t, kSourceCount> unknown_series_{};
  std::array<std::uint64_t, kSourceCount> folded_{};

  static std::uint64_t TaxonomyKey(NameId kind, NameId outcome) {
    return (std::uint64_t{kind} << 32) | outcome;
  }

  std::array<std::vector<std::uint64_t>, kSourceCount> events_;
  // A scan: a source has a few dozen (kind, outcome) pairs at most, all of
  // the catalog's, and the scan beats hashing at that size.
  struct TaxonomyCount {
    std::uint64_t key;
    std::uint64_t n;
  };
  std::array<std::vector<TaxonomyCount>, kSourceCount> taxonomy_;
  std::map<std::pair<Source, std::string>, std::uint64_t> rejected_;
};

}  // namespace mailscope::stats
