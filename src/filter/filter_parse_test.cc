// Grammar and lexer of the event filter language. Expected exports and
// accept/reject decisions were checked against Dovecot 2.3.19.1's own
// event_filter_parse() and event_filter_export() (libdovecot).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "filter/filter.h"

namespace mailscope::filter {
namespace {

// The export of a parsed filter, or "ERROR: <message>".
std::string Reexport(std::string_view text, Dialect dialect = Dialect::kDovecot) {
  auto f = Parse(text, dialect);
  if (!f.ok()) return "ERROR: " + f.status().message();
  return f->ExportDovecot();
}

struct Case {
  std::string_view text;
  std::string_view want;  // the export, or "ERROR: ..." (a prefix is enough)
};

void ExpectCases(const std::vector<Case>& cases, Dialect dialect = Dialect::kDovecot) {
  for (const Case& c : cases) {
    const std::string got = Reexport(c.text, dialect);
    if (c.want.starts_with("ERROR: "))
      EXPECT_TRUE(got.starts_with(c.want)) << "filter: " << c.text << "\n got: " << got;
    else
      EXPECT_EQ(got, c.want) << "filter: " << c.text;
  }
}

TEST(FilterParseTest, GrammarAsDovecot) {
  ExpectCases({
      {"event=imap_command_finished", R"((event="imap_command_finished"))"},
      {"a=1 AND b=2 AND c=3", R"(((("a"="1" AND "b"="2") AND "c"="3")))"},
      {"a=1 AND (b=2 OR c=3)", R"((("a"="1" AND ("b"="2" OR "c"="3"))))"},
      {"a=1 OR (b=2 OR c=3)", R"((("a"="1" OR ("b"="2" OR "c"="3"))))"},
      {"(a=1 OR b=2) AND (c=3 OR d=4)", R"(((("a"="1" OR "b"="2") AND ("c"="3" OR "d"="4"))))"},
      {"a=1 AND NOT (b=2 OR c=3) OR d=4",
       R"(((("a"="1" AND (NOT ("b"="2" OR "c"="3"))) OR "d"="4")))"},
      {"(((a=1)))", R"(("a"="1"))"},
      {"NOT (a=1 OR b=2)", R"(((NOT ("a"="1" OR "b"="2"))))"},
      {"\"event\"=x", R"((event="x"))"},  // a quoted key is still a key
      {"EVENT=x", R"(("EVENT"="x"))"},    // keys are case-sensitive
      {"category=storage", R"((category="storage"))"},
      {"category=error", "(category=error)"},
      {"\"category\"=\"warning\"", "(category=warning)"},
      {"category=ERROR", R"((category="ERROR"))"},
      {"source_location=imap-client.c:1016", R"((source_location="imap-client.c:1016"))"},
      {"source_location=x.c:0", R"((source_location="x.c"))"},
      {"source_location=x.c:", R"((source_location="x.c:"))"},
      {"source_location=a:b", R"((source_location="a:b"))"},
      {"source_location=x.c:99999999999999999999999",
       R"((source_location="x.c:99999999999999999999999"))"},
      {"event=*", R"((event="*"))"},
      {"a>-5", R"(("a">"-5"))"},
      {"a<5", R"(("a"<"5"))"},
      {"a<=5", R"(("a"<="5"))"},
      {"a=x?y*", R"(("a"="x?y*"))"},
      {"...=.", R"(("..."="."))"},
      {"a\t=\r\n1", R"(("a"="1"))"},
      {"\"\"=x", R"((""="x"))"},
      {"ANDROID=notx", R"(("ANDROID"="notx"))"},  // keywords are whole words
      {"cmd_name=select OR ( cmd_name = \"list\" )",
       R"((("cmd_name"="select" OR "cmd_name"="list")))"},
  });
}

TEST(FilterParseTest, AndOrHaveOnePrecedenceLeftToRight) {
  EXPECT_EQ(Reexport("a=1 OR b=2 AND c=3"), Reexport("(a=1 OR b=2) AND c=3"));
  EXPECT_EQ(Reexport("a=1 OR b=2 AND c=3"), R"(((("a"="1" OR "b"="2") AND "c"="3")))");
  EXPECT_EQ(Reexport("a=1 AND b=2 OR c=3"), R"(((("a"="1" AND "b"="2") OR "c"="3")))");
  EXPECT_NE(Reexport("a=1 OR b=2 AND c=3"), Reexport("a=1 OR (b=2 AND c=3)"));
}

TEST(FilterParseTest, NotBindsTighterThanAndOr) {
  ExpectCases({
      {"NOT a=1 AND b=2", R"((((NOT "a"="1") AND "b"="2")))"},
      {"NOT a=1 OR NOT b=2", R"((((NOT "a"="1") OR (NOT "b"="2"))))"},
      {"NOT NOT NOT a=1 AND b=2", R"((((NOT (NOT (NOT "a"="1"))) AND "b"="2")))"},
  });
}

TEST(FilterParseTest, KeywordsInAnyCase) {
  const std::string want = R"((((NOT "a"="1") AND ("b"="2" OR "c"="3"))))";
  for (std::string_view text :
       {"NOT a=1 AND (b=2 OR c=3)", "not a=1 and (b=2 or c=3)", "nOt a=1 AnD (b=2 oR c=3)"})
    EXPECT_EQ(Reexport(text), want) << text;
}

TEST(FilterParseTest, KeywordsAsValuesBecomeLowerCase) {
  ExpectCases({
      {"a=AND", R"(("a"="and"))"},
      {"a=or", R"(("a"="or"))"},
      {"a=Not", R"(("a"="not"))"},
      {"a=\"AND\"", R"(("a"="AND"))"},
      {"and=1", "ERROR: event filter: syntax error at 1, unexpected 'and'"},  // never keys
  });
}

TEST(FilterParseTest, QuotedStringEscapes) {
  ExpectCases({
      // \\ and \" are decoded; export escapes " \ and ' again.
      {R"("x"="y\\\"'z")", R"(("x"="y\\\"\'z"))"},
      {R"(a="\\")", R"(("a"="\\"))"},
      // A backslash before any other byte stays, with that byte.
      {R"(a="a\bc")", R"(("a"="a\\bc"))"},
      {R"(a="it\'s")", R"(("a"="it\\\'s"))"},
      // ...except before a newline, where 2.3.19's lexer loses it.
      {"a=\"x\\\ny\"", "(\"a\"=\"x\ny\")"},
      {"a=\"tab\there\"", "(\"a\"=\"tab\there\")"},
      {"\"cmd name\"=\"LIST \\\"x\\\"\"", R"(("cmd name"="LIST \"x\""))"},
      {"a=\"\xc3\xa9\"", "(\"a\"=\"\xc3\xa9\")"},
      {"a=\"\"", R"(("a"=""))"},
      {"a=\"x\"AND b=2", R"((("a"="x" AND "b"="2")))"},  // strings end tokens
  });
}

TEST(FilterParseTest, BareWordCharset) {
  ExpectCases({
      {"user=foo@bar", "ERROR: event filter: syntax error at 9, unexpected character '@'"},
      {"user=\"foo@bar\"", R"(("user"="foo@bar"))"},
      {"a=x/y", "ERROR: event filter: syntax error at 4, unexpected character '/'"},
      {"a!=1", "ERROR: event filter: syntax error at 2, unexpected character '!'"},
      {"a=\xc3\xa9", "ERROR: event filter: syntax error at 3, unexpected character '\\xc3'"},
      {"a=1 \f OR b=2", "ERROR: event filter: syntax error at 5, unexpected character '\\x0c'"},
      {"source_location=x.c:+5", "ERROR: event filter: syntax error at 21"},
      {"a=1AND b=2", "ERROR: event filter: syntax error at 8, unexpected 'b'"},
  });
}

TEST(FilterParseTest, ComparisonMayBeTwoTokens) {
  ExpectCases({
      {"a>=1", R"(("a">="1"))"},
      {"a> =1", R"(("a">="1"))"},
      {"a < = 1", R"(("a"<="1"))"},
      {"a = > 1", "ERROR: event filter: syntax error at 5, unexpected '>', expecting a value"},
      {"a==1", "ERROR: event filter: syntax error at 3, unexpected '='"},
      {"a<>1", "ERROR: event filter: syntax error at 3, unexpected '>'"},
      {"a>>1", "ERROR: event filter: syntax error at 3, unexpected '>'"},
  });
}

TEST(FilterParseTest, EmptyFilter) {
  for (std::string_view text : {"", " ", " \t\r\n "}) {
    auto f = Parse(text, Dialect::kDovecot);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_TRUE(f->empty());
    EXPECT_EQ(f->query_count(), 0u);
    EXPECT_EQ(f->ExportDovecot(), "");
  }
  EXPECT_FALSE(Parse("a=1", Dialect::kDovecot)->empty());
  EXPECT_TRUE(Filter().empty());
}

TEST(FilterParseTest, MalformedFiltersNamePositionAndFound) {
  ExpectCases({
      {"a=", "ERROR: event filter: syntax error at 3, unexpected end of filter, expecting a value"},
      {"=a", "ERROR: event filter: syntax error at 1, unexpected '=', expecting a key, NOT or '('"},
      {"a", "ERROR: event filter: syntax error at 2, unexpected end of filter, expecting '='"},
      {"a OR b=1", "ERROR: event filter: syntax error at 3, unexpected 'OR', expecting '='"},
      {"a=1)",
       "ERROR: event filter: syntax error at 4, unexpected ')', expecting AND, OR or end of "
       "filter"},
      {"()", "ERROR: event filter: syntax error at 2, unexpected ')', expecting a key"},
      {"(a=1",
       "ERROR: event filter: syntax error at 5, unexpected end of filter, expecting AND, OR or "
       "')'"},
      {"(a=1 b=2)",
       "ERROR: event filter: syntax error at 6, unexpected 'b', expecting AND, OR or ')'"},
      {"NOT", "ERROR: event filter: syntax error at 4, unexpected end of filter, expecting a key"},
      {"a=1 NOT b=2", "ERROR: event filter: syntax error at 5, unexpected 'NOT'"},
      {"a=1\tOR", "ERROR: event filter: syntax error at 7, unexpected end of filter"},
      {"OR a=1", "ERROR: event filter: syntax error at 1, unexpected 'OR'"},
      {"a=1 (b=2)", "ERROR: event filter: syntax error at 5, unexpected '('"},
      {"a=x\"y\"", "ERROR: event filter: syntax error at 4, unexpected \"y\""},
      {"a=1 AND b=2 AND (c=3 OR d=4))", "ERROR: event filter: syntax error at 29, unexpected ')'"},
  });
}

TEST(FilterParseTest, OnlyFieldsSupportInequality) {
  ExpectCases({
      {"event>x",
       "ERROR: event filter: Only fields support inequality comparisons, found 'event' at 1"},
      {"a=1 AND category<=error",
       "ERROR: event filter: Only fields support inequality comparisons, found 'category' at 9"},
      {"source_location>=x.c", "ERROR: event filter: Only fields support inequality"},
      {"\"event\"<x", "ERROR: event filter: Only fields support inequality"},
      {"Event>x", R"(("Event">"x"))"},
  });
}

TEST(FilterParseTest, UnterminatedStringIsDroppedLikeDovecotInItsDialectOnly) {
  // 2.3.19 silently ends the input at an unterminated string.
  ExpectCases({
      {"a=1 \"junk", R"(("a"="1"))"},
      {"\"", ""},
      {"a=\"open", "ERROR: event filter: syntax error at 8, unexpected end of filter"},
  });
  ExpectCases({{"a=1 \"junk",
                "ERROR: event filter: syntax error at 10, unexpected end of filter in the string "
                "opened at 5"}},
              Dialect::kMailscope);
}

TEST(FilterParseTest, NulBytesAreRejected) {
  using namespace std::string_view_literals;
  ExpectCases({
      {"a=1\0"sv, "ERROR: event filter: syntax error at 4, unexpected character '\\x00'"},
      {"a=\"x\0y\""sv, "ERROR: event filter: syntax error at 5, unexpected character '\\x00'"},
  });
}

TEST(FilterParseTest, NestingIsBounded) {
  std::string nots;
  for (int i = 0; i < kMaxDepth - 1; ++i) nots += "NOT ";
  EXPECT_TRUE(Parse(nots + "a=1", Dialect::kDovecot).ok());
  EXPECT_EQ(Reexport("NOT " + nots + "a=1"),
            "ERROR: event filter: nesting deeper than 256 levels at 1021");

  // Chains of one operator and redundant parentheses add no depth.
  std::string chain = "a=0", parens = "a=1";
  for (int i = 1; i < 5000; ++i) chain += " OR a=" + std::to_string(i);
  for (int i = 0; i < 5000; ++i) parens = "(" + parens + ")";
  EXPECT_TRUE(Parse(chain, Dialect::kDovecot).ok());
  EXPECT_TRUE(Parse(parens, Dialect::kDovecot).ok());
  // The export of a long chain nests its parentheses and parses again.
  auto long_chain = Parse(chain, Dialect::kDovecot);
  EXPECT_TRUE(Parse(long_chain->ExportDovecot(), Dialect::kDovecot).ok());

  std::string alternating = "a=0";
  for (int i = 1; i < 300; ++i) alternating += (i % 2 ? " AND a=" : " OR a=") + std::to_string(i);
  EXPECT_TRUE(Reexport(alternating).starts_with("ERROR: event filter: nesting deeper than 256"));
}

TEST(FilterParseTest, UnitsInMailscopeDialect) {
  ExpectCases(
      {
          {"duration>10ms", R"(("duration">"10000"))"},
          {"duration>=1.5s", R"(("duration">="1500000"))"},
          {"duration<2min", R"(("duration"<"120000000"))"},
          {"duration<1h", R"(("duration"<"3600000000"))"},
          {"duration<1d", R"(("duration"<"86400000000"))"},
          {"duration=250us", R"(("duration"="250"))"},
          {"duration>-1ms", R"(("duration">"-1000"))"},
          {"size>=1M", R"(("size">="1048576"))"},
          {"size>=1MB", R"(("size">="1048576"))"},
          {"size<10k", R"(("size"<"10240"))"},
          {"size<10kB", R"(("size"<"10240"))"},
          {"size<10K", R"(("size"<"10240"))"},
          {"size<10KB", R"(("size"<"10240"))"},
          {"size<1.5k", R"(("size"<"1536"))"},
          {"size<2G", R"(("size"<"2147483648"))"},
          {"size<2GB", R"(("size"<"2147483648"))"},
          {"size<8191G", R"(("size"<"8795019280384"))"},
          // Not a number with a unit: unchanged.
          {"a=10", R"(("a"="10"))"},
          {"a=1.5", R"(("a"="1.5"))"},
          {"a=10m", R"(("a"="10m"))"},
          {"a=10mb", R"(("a"="10mb"))"},
          {"a=1.ms", R"(("a"="1.ms"))"},
          {"a=ms", R"(("a"="ms"))"},
          {"a=10ms*", R"(("a"="10ms*"))"},
          // Quoted values, and keys other than fields, stay literal.
          {"a=\"10ms\"", R"(("a"="10ms"))"},
          {"event=10ms", R"((event="10ms"))"},
          {"category=1k", R"((category="1k"))"},
          {"source_location=1s", R"((source_location="1s"))"},
      },
      Dialect::kMailscope);
}

TEST(FilterParseTest, UnitsAreTextInDovecotDialect) {
  ExpectCases({
      {"duration>10ms", R"(("duration">"10ms"))"},
      {"size>=1M", R"(("size">="1M"))"},
  });
}

TEST(FilterParseTest, InvalidUnitValues) {
  ExpectCases(
      {
          {"duration>0.5us",
           "ERROR: event filter: invalid value at 10, '0.5us' is not a whole number of "
           "microseconds"},
          {"size>0.1k",
           "ERROR: event filter: invalid value at 6, '0.1k' is not a whole number of bytes"},
          {"a>1.1234567s", "ERROR: event filter: invalid value at 3, '1.1234567s' has more than 6"},
          {"a>9999999999999999999d",
           "ERROR: event filter: invalid value at 3, '9999999999999999999d' is too large"},
          {"a>200000000d", "ERROR: event filter: invalid value at 3, '200000000d' is too large"},
          {"a>9000000000G", "ERROR: event filter: invalid value at 3, '9000000000G' is too large"},
      },
      Dialect::kMailscope);
}

// A client's filter: its new names count against the client's budget and
// are added all or none; trusted text (Parse) is not budgeted.
TEST(FilterParseTest, ClientFiltersKeepTheClientsNameBudget) {
  NameBudget client(NameInput::kTail, 2);
  InternName("parse_budget_known");
  auto f = ParseClientFilter("event=parse_budget_ev AND parse_budget_known=1 AND category=c_pb",
                             Dialect::kMailscope, client);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(client.added(), 2u);
  Event e;
  e.name = FindName("parse_budget_ev");
  e.categories.push_back(FindName("c_pb"));
  e.Add(FindName("parse_budget_known"), Value::Int(1));
  EXPECT_NE(e.name, kNoName);
  EXPECT_TRUE(f->Matches(e));

  // Past the budget: refused, with the first name past it, and none added.
  NameBudget other(NameInput::kTail, 2);
  auto over = ParseClientFilter(
      "parse_budget_a=1 OR parse_budget_ev=2 OR (parse_budget_b=1 AND "
      "event=parse_budget_c)",
      Dialect::kMailscope, other);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(over.status().message(),
            "event filter: no room for its 3 new names (names new to mailscope per client: at "
            "most 2, 2 left); the first past the room: 'parse_budget_c' at 70");
  EXPECT_EQ(FindName("parse_budget_a"), kNoName);
  EXPECT_EQ(FindName("parse_budget_b"), kNoName);
  EXPECT_EQ(other.added(), 0u);
  EXPECT_EQ(other.refused(), 3u);
  // The same names within the budget, and a filter that does not parse adds none.
  EXPECT_TRUE(
      ParseClientFilter("parse_budget_a=1 OR parse_budget_b=2", Dialect::kMailscope, other).ok());
  EXPECT_FALSE(ParseClientFilter("parse_budget_d=1 OR (", Dialect::kMailscope, other).ok());
  EXPECT_EQ(FindName("parse_budget_d"), kNoName);
  // Trusted text is not budgeted.
  EXPECT_TRUE(
      Parse("parse_budget_d=1 OR parse_budget_e=1 OR parse_budget_f=1", Dialect::kDovecot).ok());
  EXPECT_NE(FindName("parse_budget_f"), kNoName);
}

TEST(FilterParseTest, ClientFiltersHaveALengthLimit) {
  NameBudget client(NameInput::kTail, 10);
  std::string text = "a=\"" + std::string(kMaxClientFilterBytes - 4, 'x') + "\"";
  ASSERT_EQ(text.size(), kMaxClientFilterBytes);
  EXPECT_TRUE(ParseClientFilter(text, Dialect::kMailscope, client).ok());
  text += " OR b=\"\"";
  auto f = ParseClientFilter(text, Dialect::kMailscope, client);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(f.status().message(),
            "event filter: 4104 bytes long, more than the 4096 a filter from a client may have");
}

}  // namespace
}  // namespace mailscope::filter
