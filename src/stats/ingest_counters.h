// IngestCounters: accepted events per (source, event name) and rejected input
// per (source, reason) — the data behind mailscope_events_total and
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
  void CountEvent(Source source, NameId name) {
    auto& v = events_[static_cast<std::size_t>(source)];
    if (name >= v.size()) v.resize(name + 1);
    ++v[name];
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
  std::array<std::vector<std::uint64_t>, kSourceCount> events_;
  std::map<std::pair<Source, std::string>, std::uint64_t> rejected_;
};

}  // namespace mailscope::stats
