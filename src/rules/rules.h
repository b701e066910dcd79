// Rules: event actions that answer the sources asking for a verdict (DESIGN.md,
// "Dispatch"). A rule is a filter in mailscope's language and the text to give
// back when an event matches it:
//
//   [[rules]]
//   name = "no-mail-to-192.0.2.1"
//   when = 'event="tcp:connect" AND host_address=192.0.2.1'
//   verdict = "refused by mailscope"
//
// RulesOutput is the pipeline's output "rules". It answers only the events
// whose result their source uses, those the catalog gives a `result`
// attribute (Exim's tcp:connect, smtp:connect, tls:cert and auth:fail): the
// first rule, in the order of the configuration, that matches. Every other
// event, and an event no rule matches, gets an empty verdict. Loop thread
// only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/event.h"
#include "core/status.h"
#include "filter/filter.h"
#include "pipeline/dispatcher.h"

namespace mailscope::rules {

// A [[rules]] entry as the configuration gives it.
struct RuleSettings {
  std::string name;
  std::string when;     // filter, mailscope's dialect
  std::string verdict;  // the text the source gets back
};

struct Rule {
  std::string name;
  filter::Filter when;
  std::string verdict;
};

// Checks and parses one rule: a name, a filter that parses, and a verdict of
// printable text (tabs allowed) of at most kMaxVerdictBytes; an Exim result
// is one line.
inline constexpr std::size_t kMaxVerdictBytes = 1024;
Result<Rule> MakeRule(const RuleSettings& settings);

class RulesOutput : public pipeline::Consumer {
 public:
  explicit RulesOutput(const catalog::Catalog& catalog);

  // Replaces the rules (configuration load and reload); matches so far are
  // kept for rules whose name stays.
  void SetRules(std::vector<Rule> rules);
  const std::vector<Rule>& rules() const { return rules_; }

  std::string_view Consume(const Event& event) override;
  // The name of the rule whose verdict Consume() returned last.
  std::string_view VerdictOrigin() const override { return origin_; }

  // Verdicts given per rule, in the order of rules().
  const std::vector<std::uint64_t>& verdicts() const { return verdicts_; }

 private:
  std::vector<NameId> takes_verdict_;  // sorted ids of catalog events with a `result`
  std::vector<Rule> rules_;
  std::vector<std::uint64_t> verdicts_;
  std::string_view origin_;
};

}  // namespace mailscope::rules
