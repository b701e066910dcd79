// ExportDovecot(), Merge() and RequiresEventName(): what the stats server
// sends its clients in FILTER (reference §3.2, §3.3, §3.4).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "filter/filter.h"

namespace mailscope::filter {
namespace {

Filter MustParse(std::string_view text, Dialect dialect = Dialect::kDovecot) {
  auto f = Parse(text, dialect);
  EXPECT_TRUE(f.ok()) << text << ": " << f.status().message();
  return f.ok() ? *f : Filter();
}

// Events that tell filters apart: names, levels, categories, the kinds of
// fields, parents and a global event.
class Events {
 public:
  Events() {
    global_.categories.push_back(InternName("service:imap"));
    global_.Add(InternName("user"), Value::String("global@example.com"));
    session_.categories.push_back(InternName("imap"));
    session_.Add(InternName("user"), Value::String("alice@example.com"));
    session_.Add(InternName("remote_port"), Value::Int(58730));
    for (const char* cmd : {"SELECT", "LIST", "FETCH"}) {
      for (std::int64_t duration : {0, 999, 10000, 250000}) {
        Event& e = Add("imap_command_finished", Level::kDebug);
        e.Add(InternName("cmd_name"), Value::String(cmd));
        e.Add(InternName("duration"), Value::Int(duration));
        e.Add(InternName("bytes_out"), Value::Uint(static_cast<std::uint64_t>(duration) * 3));
        e.source_file = "imap-client.c";
        e.source_line = 1016;
      }
    }
    for (const char* success : {"yes", "no"}) {
      Event& e = Add("auth_request_finished", Level::kInfo);
      e.Add(InternName("success"), Value::String(success));
      e.Add(InternName("mechanism"), Value::String("PLAIN"));
      e.categories.push_back(InternName("auth"));
      e.source_file = "auth-request.c";
      e.source_line = 245;
    }
    Event& quoted = Add("mail_delivery_finished", Level::kError);
    quoted.Add(InternName("subject"), Value::String("it's \"quoted\" \\ here"));
    quoted.categories.push_back(InternName("lmtp"));
    Event& unnamed = Add("", Level::kWarn);
    unnamed.categories.push_back(InternName("storage"));
    unnamed.categories.push_back(InternName("maildir"));
    unnamed.source_file = "a.c";
    unnamed.source_line = 5;
  }

  // Which events `f` matches, as a string of 0/1.
  std::string Profile(const Filter& f) const {
    std::string out;
    for (const auto& e : events_) out += f.Matches(*e) ? '1' : '0';
    return out;
  }

 private:
  Event& Add(std::string_view name, Level level) {
    auto e = std::make_unique<Event>();
    e->name = InternName(name);
    e->level = level;
    e->parent = &session_;
    e->global = &global_;
    events_.push_back(std::move(e));
    return *events_.back();
  }

  Event global_, session_;
  std::vector<std::unique_ptr<Event>> events_;
};

TEST(FilterExportTest, FormatAsDovecot) {
  struct {
    std::string_view text, want;
  } cases[] = {
      {"event=imap_command_finished", R"((event="imap_command_finished"))"},
      {"event=imap_command_finished AND cmd_name=SELECT",
       R"(((event="imap_command_finished" AND "cmd_name"="SELECT")))"},
      {"NOT category=error", "((NOT category=error))"},
      {"category=\"auth\" OR source_location=\"auth-request.c:245\"",
       R"(((category="auth" OR source_location="auth-request.c:245")))"},
      {"subject=\"it's \\\"quoted\\\" \\\\ here\"", R"(("subject"="it\'s \"quoted\" \\ here"))"},
      {"\"odd\\\"key\"=1", R"(("odd\"key"="1"))"},
      {"a<=-5", R"(("a"<="-5"))"},
  };
  for (const auto& c : cases) EXPECT_EQ(MustParse(c.text).ExportDovecot(), c.want) << c.text;
}

// The FILTER line a real 2.3.19 stats server sent for six metrics.
constexpr std::string_view kLiveFilter =
    R"((event="imap_command_finished") OR ((event="auth_request_finished" AND "success"="yes")) OR )"
    R"((event="imap_command_finished") OR (event="mail_delivery_finished") OR )"
    R"((event="auth_request_finished") OR ((event="imap_command_finished" AND "cmd_name"="SELECT")))";

TEST(FilterExportTest, MergedMetricFiltersGiveTheLiveFilterLine) {
  std::vector<Filter> metrics;
  for (std::string_view text :
       {"event=imap_command_finished", "event=auth_request_finished AND success=yes",
        "event=imap_command_finished", "event=mail_delivery_finished",
        "event=auth_request_finished", "event=imap_command_finished AND cmd_name=SELECT"})
    metrics.push_back(MustParse(text));
  std::vector<const Filter*> ptrs;
  for (const Filter& f : metrics) ptrs.push_back(&f);
  const Filter merged = Filter::Merge(ptrs);
  EXPECT_EQ(merged.query_count(), 6u);  // identical filters are not merged
  EXPECT_EQ(merged.ExportDovecot(), kLiveFilter);

  // A client parses the line as one query that means the same.
  const Filter client = MustParse(kLiveFilter);
  EXPECT_EQ(client.query_count(), 1u);
  Events events;
  EXPECT_EQ(events.Profile(client), events.Profile(merged));
  EXPECT_TRUE(client.RequiresEventName());
  // Dovecot 2.3.19 exports the parsed line as this (its parser drops the
  // parentheses), and so does the round trip here.
  EXPECT_EQ(client.ExportDovecot(),
            R"(((((((event="imap_command_finished" OR (event="auth_request_finished" AND )"
            R"("success"="yes")) OR event="imap_command_finished") OR )"
            R"(event="mail_delivery_finished") OR event="auth_request_finished") OR )"
            R"((event="imap_command_finished" AND "cmd_name"="SELECT"))))");
  EXPECT_EQ(MustParse(client.ExportDovecot()).ExportDovecot(), client.ExportDovecot());
}

TEST(FilterExportTest, RoundTripKeepsTheMeaning) {
  const Events events;
  for (std::string_view text : {
           "event=imap_command_finished",
           "event=imap_* AND NOT cmd_name=select",
           "event=\"auth_request_finished\" AND success=yes OR category=lmtp",
           "cmd_name=SELECT OR cmd_name=LIST AND duration>=999",
           "NOT NOT (duration<10000 OR bytes_out>30000)",
           "duration=1* OR duration=\"\"",
           "category=imap AND category=service:imap AND NOT category=auth",
           "category=debug OR category=warning OR category=error",
           "source_location=imap-client.c:1016 OR source_location=a.c",
           "user=alice* AND remote_port>58000",
           "user=\"global@example.com\"",
           "subject=\"*\\\"quoted\\\" \\\\*\"",
           "missing=\"\" AND NOT missing=x",
           "NOT event=x",
           "category=storage OR (event=mail_* AND (NOT category=lmtp))",
           "a=and OR b=or OR c=not",
       }) {
    const Filter f = MustParse(text);
    const Filter again = MustParse(f.ExportDovecot());
    EXPECT_EQ(events.Profile(again), events.Profile(f)) << text;
    EXPECT_EQ(again.ExportDovecot(), f.ExportDovecot()) << text;
    EXPECT_EQ(again.RequiresEventName(), f.RequiresEventName()) << text;
  }
}

TEST(FilterExportTest, RoundTripQuirksOfDovecot) {
  // The lexer does not decode \' that the export writes.
  const Filter apostrophe = MustParse("a=\"it's\"");
  EXPECT_EQ(apostrophe.ExportDovecot(), R"(("a"="it\'s"))");
  EXPECT_EQ(MustParse(apostrophe.ExportDovecot()).ExportDovecot(), R"(("a"="it\\\'s"))");
  // A file name ending in :<digits> with no line comes back as a line.
  const Filter location = MustParse("source_location=a.c:5:0");
  EXPECT_EQ(location.ExportDovecot(), R"((source_location="a.c:5"))");
  Event e;
  e.source_file = "a.c:5";
  e.source_line = 9;
  EXPECT_TRUE(location.Matches(e));
  EXPECT_FALSE(MustParse(location.ExportDovecot()).Matches(e));
}

TEST(FilterExportTest, MailscopeUnitsExportAsPlainIntegers) {
  const Events events;
  struct {
    std::string_view text, want;
  } cases[] = {
      {"duration>10ms", R"(("duration">"10000"))"},
      {"duration<=0.25s AND bytes_out>=1k", R"((("duration"<="250000" AND "bytes_out">="1024")))"},
      {"duration>1min OR duration<1us", R"((("duration">"60000000" OR "duration"<"1")))"},
      {"bytes_out<1MB", R"(("bytes_out"<"1048576"))"},
  };
  for (const auto& c : cases) {
    const Filter ours = MustParse(c.text, Dialect::kMailscope);
    EXPECT_EQ(ours.ExportDovecot(), c.want);
    const Filter dovecot = MustParse(ours.ExportDovecot(), Dialect::kDovecot);
    EXPECT_EQ(events.Profile(dovecot), events.Profile(ours)) << c.text;
  }
}

TEST(FilterExportTest, MergeIsTheUnionOfQueriesInOrder) {
  const Filter a = MustParse("event=a"), b = MustParse("x=1 OR y=2"), empty;
  const Filter ab = Filter::Merge({&a, &empty, &b});
  EXPECT_EQ(ab.query_count(), 2u);
  EXPECT_EQ(ab.ExportDovecot(), R"((event="a") OR (("x"="1" OR "y"="2")))");
  const Filter nested = Filter::Merge({&b, &ab, &a});
  EXPECT_EQ(nested.query_count(), 4u);
  EXPECT_EQ(nested.ExportDovecot(),
            R"((("x"="1" OR "y"="2")) OR (event="a") OR (("x"="1" OR "y"="2")) OR (event="a"))");
  EXPECT_TRUE(Filter::Merge({}).empty());
  EXPECT_TRUE(Filter::Merge({&empty, &empty}).empty());
  EXPECT_EQ(Filter::Merge({&a}).ExportDovecot(), a.ExportDovecot());
}

TEST(FilterExportTest, RequiresEventNameTruthTable) {
  struct {
    std::string_view text;
    bool requires_name;
  } cases[] = {
      {"event=x", true},
      {"event=x*", true},
      {"category=storage", false},
      {"category=error", false},
      {"source_location=a.c", false},
      {"user=bob", false},
      {"NOT event=x", true},  // NOT keeps the requirement (2.3.19)
      {"NOT user=bob", false},
      {"event=x AND user=bob", true},
      {"user=bob AND event=x", true},
      {"user=bob AND category=x", false},
      {"event=x OR event=y", true},
      {"event=x OR user=bob", false},
      {"user=bob OR event=x", false},
      {"(event=x OR user=bob) AND event=y", true},
      {"(event=x AND user=bob) OR (event=y AND NOT category=z)", true},
      {"NOT (event=x OR category=y)", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(MustParse(c.text).RequiresEventName(), c.requires_name) << c.text;

  const Filter named = MustParse("event=x"), unnamed = MustParse("user=bob");
  EXPECT_TRUE(Filter::Merge({&named, &named}).RequiresEventName());
  EXPECT_FALSE(Filter::Merge({&named, &unnamed}).RequiresEventName());
  EXPECT_TRUE(Filter().RequiresEventName());
}

TEST(FilterExportTest, ToStringForDiagnostics) {
  EXPECT_EQ(Filter().ToString(), "(empty filter)");
  EXPECT_EQ(MustParse("event=x").ToString(), R"((event="x"))");
}

}  // namespace
}  // namespace mailscope::filter
