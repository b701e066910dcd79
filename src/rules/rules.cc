#include "rules/rules.h"

#include <algorithm>
#include <map>

namespace mailscope::rules {

Result<Rule> MakeRule(const RuleSettings& settings) {
  if (settings.name.empty()) return InvalidArgument("a rule needs a name");
  if (settings.when.empty()) return InvalidArgument("a rule needs `when`, a filter");
  if (settings.verdict.empty()) {
    return InvalidArgument("a rule needs a verdict: an empty one is what no rule gives");
  }
  if (settings.verdict.size() > kMaxVerdictBytes) {
    return InvalidArgument("verdict of " + std::to_string(settings.verdict.size()) +
                           " bytes; at most " + std::to_string(kMaxVerdictBytes));
  }
  for (char c : settings.verdict) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\t') || b == 0x7f) {
      return InvalidArgument("the verdict holds a control character; it must be one line");
    }
  }
  auto when = filter::Parse(settings.when, filter::Dialect::kMailscope);
  if (!when.ok()) return InvalidArgument("when: " + when.status().message());
  return Rule{settings.name, std::move(*when), settings.verdict};
}

RulesOutput::RulesOutput(const catalog::Catalog& catalog) {
  for (const catalog::EventInfo& e : catalog.events()) {
    if (!e.Attribute("result").empty()) takes_verdict_.push_back(InternName(e.name));
  }
  std::sort(takes_verdict_.begin(), takes_verdict_.end());
}

void RulesOutput::SetRules(std::vector<Rule> rules) {
  std::map<std::string, std::uint64_t, std::less<>> kept;
  for (std::size_t i = 0; i < rules_.size(); ++i) kept[rules_[i].name] = verdicts_[i];
  verdicts_.assign(rules.size(), 0);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (auto it = kept.find(rules[i].name); it != kept.end()) verdicts_[i] = it->second;
  }
  rules_ = std::move(rules);
  origin_ = {};
}

std::string_view RulesOutput::Consume(const Event& event) {
  if (rules_.empty() ||
      !std::binary_search(takes_verdict_.begin(), takes_verdict_.end(), event.name)) {
    return {};
  }
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!rules_[i].when.Matches(event)) continue;
    ++verdicts_[i];
    origin_ = rules_[i].name;
    return rules_[i].verdict;
  }
  return {};
}

}  // namespace mailscope::rules
