#include "pipeline/dispatcher.h"

#include <algorithm>

#include "core/check.h"

namespace mailscope::pipeline {

Dispatcher::Dispatcher(stats::IngestCounters& counters,
                       std::unique_ptr<catalog::EventRouter> router)
    : counters_(counters), router_(std::move(router)) {
  MS_CHECK(router_ != nullptr);
}

void Dispatcher::Register(std::string_view name, Consumer& consumer, SourceSet sources) {
  MS_CHECK(OutputIndex(name) < 0);
  MS_CHECK(outputs_.size() < kMaxOutputs);
  Output out{std::string(name), &consumer, sources, {}, false};
  Settle(out);
  outputs_.push_back(std::move(out));
}

void Dispatcher::Settle(Output& out) const {
  // Each output's wishes are settled once per catalog event, so that
  // dispatching looks a bit up instead of a name.
  const catalog::EventControl& control = router_->control();
  const auto& events = router_->catalog().events();
  out.wanted.assign(events.size(), false);
  for (std::size_t i = 0; i < events.size(); ++i)
    out.wanted[i] = control.Wanted(out.name, events[i]);
  out.takes_unknown = catalog::kDefaultEventLevel >= control.OutputLevel(out.name);
}

void Dispatcher::SetControl(catalog::EventControl control) {
  router_->SetControl(std::move(control));
  for (Output& out : outputs_) Settle(out);
}

Dispatcher::DurableMark Dispatcher::MarkDurable() const {
  DurableMark mark;
  mark.taken.reserve(outputs_.size());
  for (const Output& out : outputs_) mark.taken.push_back(out.consumer->DurableTaken());
  return mark;
}

bool Dispatcher::Reached(const DurableMark& mark) const {
  for (std::size_t i = 0; i < mark.taken.size() && i < outputs_.size(); ++i) {
    if (outputs_[i].consumer->DurableSettled() < mark.taken[i]) return false;
  }
  return true;
}

bool Dispatcher::Backlogged() const {
  for (const Output& out : outputs_) {
    if (out.consumer->Backlogged()) return true;
  }
  return false;
}

int Dispatcher::OutputIndex(std::string_view name) const {
  for (std::size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i].name == name) return static_cast<int>(i);
  return -1;
}

bool Dispatcher::Takes(std::string_view name, const catalog::EventInfo& event) const {
  const int i = OutputIndex(name);
  if (i < 0) return false;
  const auto& events = router_->catalog().events();
  return outputs_[static_cast<std::size_t>(i)]
      .wanted[static_cast<std::size_t>(&event - events.data())];
}

std::vector<std::string> Dispatcher::Refused(std::string_view name, catalog::System system) const {
  const int i = OutputIndex(name);
  const auto& events = router_->catalog().events();
  std::vector<std::string> out;
  for (std::size_t e = 0; e < events.size(); ++e) {
    if (events[e].system != system) continue;
    if (i < 0 || !outputs_[static_cast<std::size_t>(i)].wanted[e]) out.push_back(events[e].name);
  }
  return out;
}

std::string_view Dispatcher::Dispatch(Event& event) {
  ++sequence_;
  // Records of sources outside the catalog (old-stats) are not catalog
  // events: no event control applies, only the outputs' levels. Their names
  // are the decoder's own, so they count as known.
  catalog::EventRouter::Routed routed;
  const bool catalog_source = catalog::SystemOf(event.source).has_value();
  if (catalog_source) routed = router_->Route(event);
  counters_.CountEvent(event.source, event.name, !catalog_source || routed.info != nullptr);
  event.taxonomy = routed.taxonomy;
  if (routed.info != nullptr && !catalog::SourceCarriesLevel(event.source)) {
    event.level = routed.level;
  }
  if (routed.taxonomy.kind != kNoName)
    counters_.CountTaxonomy(event.source, routed.taxonomy.kind, routed.taxonomy.outcome);
  std::size_t index = 0;
  if (routed.info != nullptr) {
    index = static_cast<std::size_t>(routed.info - router_->catalog().events().data());
  }
  std::uint32_t mask = 0;
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    const Output& out = outputs_[i];
    if (!out.sources.contains(event.source)) continue;
    const bool takes = routed.info != nullptr ? out.wanted[index] : out.takes_unknown;
    if (takes) mask |= 1u << i;
  }
  current_mask_ = mask;
  std::string_view verdict;
  std::size_t giver = 0;
  for (std::size_t i = 0; mask != 0 && i < outputs_.size(); ++i) {
    if (((mask >> i) & 1u) == 0) continue;
    std::string_view v = outputs_[i].consumer->Consume(event);
    if (verdict.empty() && !v.empty()) {
      verdict = v;
      giver = i;
    }
  }
  current_mask_ = 0;
  if (!verdict.empty()) DispatchVerdict(event, verdict, giver);
  return verdict;
}

void Dispatcher::DispatchVerdict(const Event& asking, std::string_view verdict, std::size_t giver) {
  static const NameId kName = InternName(kVerdictEventName);
  static const NameId kEventKey = InternName("for_event");
  static const NameId kRuleKey = InternName("rule");
  static const NameId kVerdictKey = InternName("verdict");
  Event& v = verdict_event_;
  v.Clear();
  v.source = asking.source;
  v.name = kName;
  v.level = catalog::kDefaultEventLevel;
  v.time = asking.time;
  v.Add(kEventKey, Value::String(NameText(asking.name)));
  v.Add(kRuleKey, Value::String(outputs_[giver].consumer->VerdictOrigin()));
  v.Add(kVerdictKey, Value::String(verdict));
  for (const Field& f : asking.fields) v.fields.push_back(f);
  ++sequence_;
  counters_.CountEvent(v.source, v.name);
  std::uint32_t mask = 0;
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    const Output& out = outputs_[i];
    if (i != giver && out.takes_unknown && out.sources.contains(v.source)) mask |= 1u << i;
  }
  current_mask_ = mask;
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    if ((mask >> i) & 1u) (void)outputs_[i].consumer->Consume(v);
  }
  current_mask_ = 0;
}

}  // namespace mailscope::pipeline
