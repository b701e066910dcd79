#include "query/tail.h"

#include <gtest/gtest.h>

namespace mailscope::query {
namespace {

Result<TailRequest> Parse(std::string line, std::uint32_t max_new_names = 100) {
  NameBudget names(NameInput::kTail, max_new_names);
  return ParseTailRequest(std::span<char>(line.data(), line.size()), names);
}

TEST(TailTest, RequestRoundTrip) {
  std::string line =
      TailRequestLine(TailFormat::kJson, filter::Dialect::kMailscope,
                      "event=imap_command_finished AND duration > 1ms AND x=\"a\tb\"");
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  auto req = Parse(line);
  ASSERT_TRUE(req.ok()) << req.status().message();
  EXPECT_EQ(req->format, TailFormat::kJson);
  EXPECT_EQ(req->filter_text, "event=imap_command_finished AND duration > 1ms AND x=\"a\tb\"");
  EXPECT_NE(req->filter.ExportDovecot().find("\"1000\""), std::string::npos);
}

TEST(TailTest, EmptyFilterMatchesAll) {
  auto req = Parse("TAIL\t1\ttext\tdovecot\t");
  ASSERT_TRUE(req.ok());
  Event e;
  e.name = InternName("any_event_at_all");
  EXPECT_TRUE(req->filter.Matches(e));
  EXPECT_EQ(req->filter.ExportDovecot(), "(event=\"*\")");
  EXPECT_EQ(req->dialect, filter::Dialect::kDovecot);
}

TEST(TailTest, BadRequests) {
  struct Case {
    const char* line;
    const char* error;
  } cases[] = {
      {"", "expected a TAIL request"},
      {"EXPORT\tglobal", "expected a TAIL request"},
      {"TAIL\t1\ttext", "TAIL takes 4 arguments, got 2"},
      {"TAIL\t2\ttext\tmailscope\t", "unsupported tail protocol version '2'"},
      {"TAIL\t1\txml\tmailscope\t", "unknown format 'xml'"},
      {"TAIL\t1\ttext\tsieve\t", "unknown filter dialect 'sieve'"},
      {"TAIL\t1\ttext\tmailscope\tevent=(", "event filter: syntax error at"},
      // Units belong to mailscope's dialect only.
      {"TAIL\t1\ttext\tdovecot\tsize > 1k AND", "event filter: syntax error"},
      // A client's filter: new names within its budget, and not too long.
      {"TAIL\t1\ttext\tmailscope\ttail_test_new1=1 OR tail_test_new2=2",
       "event filter: no room for its 2 new names (names new to mailscope per client: at most 1, "
       "1 left); the first past the room: 'tail_test_new2' at 21"},
      {"TAIL\t1\ttext\tmailscope\tx=\"", "more than the 4096 a filter from a client may have"},
  };
  for (const Case& c : cases) {
    std::string line = c.line;
    if (line.ends_with("x=\"")) line += std::string(filter::kMaxClientFilterBytes, 'x') + "\"";
    auto req = Parse(line, 1);
    ASSERT_FALSE(req.ok()) << c.line;
    EXPECT_EQ(FindName("tail_test_new1"), kNoName);
    EXPECT_NE(req.status().message().find(c.error), std::string::npos)
        << c.line << " -> " << req.status().message();
  }
}

}  // namespace
}  // namespace mailscope::query
