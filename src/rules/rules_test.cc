#include "rules/rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailscope::rules {
namespace {

Rule Make(std::string name, std::string when, std::string verdict) {
  auto rule = MakeRule({std::move(name), std::move(when), std::move(verdict)});
  EXPECT_TRUE(rule.ok()) << rule.status().message();
  return rule.ok() ? std::move(*rule) : Rule{};
}

Event Exim(std::string_view name, std::string_view host) {
  Event e;
  e.source = Source::kExim;
  e.name = InternName(name);
  e.Add(InternName("host_address"), Value::String(host));
  return e;
}

TEST(RulesTest, FirstMatchingRuleAnswersEventsThatTakeAVerdict) {
  RulesOutput out(catalog::Catalog::Get());
  std::vector<Rule> rules;
  rules.push_back(Make("block-doc", "event=\"tcp:connect\" AND host_address=192.0.2.*", "no"));
  rules.push_back(Make("close-all", "event=\"smtp:connect\" OR event=\"tcp:connect\"", "bye"));
  out.SetRules(std::move(rules));
  EXPECT_EQ(out.Consume(Exim("tcp:connect", "192.0.2.7")), "no");
  EXPECT_EQ(out.VerdictOrigin(), "block-doc");
  EXPECT_EQ(out.Consume(Exim("tcp:connect", "198.51.100.1")), "bye");
  EXPECT_EQ(out.VerdictOrigin(), "close-all");
  EXPECT_EQ(out.Consume(Exim("smtp:connect", "192.0.2.7")), "bye");
  EXPECT_EQ(out.verdicts(), (std::vector<std::uint64_t>{1, 2}));
}

TEST(RulesTest, EventsWhoseResultIsNotUsedGetNoVerdict) {
  RulesOutput out(catalog::Catalog::Get());
  std::vector<Rule> rules;
  rules.push_back(Make("everything", "source=exim OR source=dovecot", "x"));
  out.SetRules(std::move(rules));
  // Exim uses the result of these only (catalog attribute `result`), and of
  // mailscope's ACL steps.
  for (const char* name : {"tcp:connect", "smtp:connect", "tls:cert", "auth:fail", "acl:rcpt"})
    EXPECT_EQ(out.Consume(Exim(name, "")), "x") << name;
  for (const char* name : {"msg:delivery", "smtp:ehlo", "tcp:close", "msg:complete"})
    EXPECT_EQ(out.Consume(Exim(name, "")), "") << name;
  Event dovecot;
  dovecot.source = Source::kDovecot;
  dovecot.name = InternName("auth_request_finished");
  EXPECT_EQ(out.Consume(dovecot), "");
  EXPECT_EQ(out.verdicts(), std::vector<std::uint64_t>{5});
}

TEST(RulesTest, ReloadKeepsTheCountsOfRulesThatStay) {
  RulesOutput out(catalog::Catalog::Get());
  std::vector<Rule> first;
  first.push_back(Make("a", "event=\"tcp:connect\"", "x"));
  first.push_back(Make("b", "event=\"smtp:connect\"", "y"));
  out.SetRules(std::move(first));
  out.Consume(Exim("tcp:connect", ""));
  out.Consume(Exim("smtp:connect", ""));
  std::vector<Rule> second;
  second.push_back(Make("c", "event=\"tcp:connect\"", "z"));
  second.push_back(Make("b", "event=\"smtp:connect\"", "y"));
  out.SetRules(std::move(second));
  EXPECT_EQ(out.verdicts(), (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(out.Consume(Exim("tcp:connect", "")), "z");
}

TEST(RulesTest, BadRulesAreRefusedWithAReason) {
  struct Case {
    RuleSettings settings;
    std::string error;
  } cases[] = {
      {{"", "event=x", "v"}, "a rule needs a name"},
      {{"r", "", "v"}, "a rule needs `when`, a filter"},
      {{"r", "event=x", ""}, "a rule needs a verdict: an empty one is what no rule gives"},
      {{"r", "event=x", "two\nlines"},
       "the verdict holds a control character; it must be one line"},
      {{"r", "event=x", std::string(1025, 'v')}, "verdict of 1025 bytes; at most 1024"},
      {{"r", "event=(", "v"}, "when: "},
  };
  for (const Case& c : cases) {
    auto rule = MakeRule(c.settings);
    ASSERT_FALSE(rule.ok()) << c.error;
    EXPECT_EQ(rule.status().message().substr(0, c.error.size()), c.error);
  }
}

}  // namespace
}  // namespace mailscope::rules
