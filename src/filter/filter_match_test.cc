// Leaf semantics of Filter::Matches() on constructed events. The Dovecot
// cases agree with 2.3.19.1's event_filter_match() on the same events.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/allocation_counter_testing.h"
#include "filter/filter.h"

namespace mailscope::filter {
namespace {

Filter MustParse(std::string_view text, Dialect dialect = Dialect::kDovecot) {
  auto f = Parse(text, dialect);
  EXPECT_TRUE(f.ok()) << text << ": " << f.status().message();
  return f.ok() ? *f : Filter();
}

bool Matches(std::string_view text, const Event& e, Dialect dialect = Dialect::kDovecot) {
  return MustParse(text, dialect).Matches(e);
}

struct Expect {
  std::string_view filter;
  bool match;
};

void ExpectAll(const Event& e, const std::vector<Expect>& cases,
               Dialect dialect = Dialect::kDovecot) {
  for (const Expect& c : cases) EXPECT_EQ(Matches(c.filter, e, dialect), c.match) << c.filter;
}

Event Named(std::string_view name) {
  Event e;
  e.name = InternName(name);
  return e;
}

TEST(FilterMatchTest, EventNameIsACaseSensitiveWildcard) {
  const Event e = Named("imap_command_finished");
  ExpectAll(e, {
                   {"event=imap_command_finished", true},
                   {"event=\"imap_command_finished\"", true},
                   {"event=IMAP_command_finished", false},
                   {"event=imap_*", true},
                   {"event=*_finished", true},
                   {"event=imap_command_finishe?", true},
                   {"event=IMAP_*", false},
                   {"event=*", true},
                   {"event=imap", false},
                   {"event=\"\"", false},
               });
}

TEST(FilterMatchTest, UnnamedEventsNeverMatchNameTests) {
  Event e;
  e.Add(InternName("user"), Value::String("bob"));
  ExpectAll(e, {
                   {"event=*", false},
                   {"event=\"\"", false},
                   {"user=bob", true},
                   {"event=* OR user=bob", true},
               });
}

TEST(FilterMatchTest, FiltersThatRequireANameSkipUnnamedEventsEvenThroughNot) {
  Event unnamed;
  unnamed.categories.push_back(InternName("storage"));
  ExpectAll(unnamed, {
                         {"NOT event=foo", false},  // Dovecot's fast path decides
                         {"NOT event=foo AND category=storage", false},
                         {"NOT category=x", true},
                         {"NOT event=foo OR a=\"\"", true},
                     });
  // A merged filter skips them only when every query requires a name.
  const Filter named = MustParse("NOT event=foo"), unnamed_ok = MustParse("NOT category=x");
  EXPECT_FALSE(Filter::Merge({&named}).Matches(unnamed));
  EXPECT_TRUE(Filter::Merge({&named, &unnamed_ok}).Matches(unnamed));
}

TEST(FilterMatchTest, CategoriesOfTheEventParentsAndGlobalChain) {
  Event global_parent, global, parent, e = Named("mail_expunged");
  global_parent.categories.push_back(InternName("gparent"));
  global.categories.push_back(InternName("service:imap"));
  global.parent = &global_parent;
  // A decoder adds each category with its ancestors: maildir under storage.
  parent.categories.push_back(InternName("maildir"));
  parent.categories.push_back(InternName("storage"));
  e.categories.push_back(InternName("mailbox"));
  e.parent = &parent;
  e.global = &global;
  ExpectAll(e, {
                   {"category=mailbox", true},
                   {"category=maildir", true},
                   {"category=storage", true},
                   {"category=service:imap", true},
                   {"category=gparent", true},
                   {"category=Storage", false},
                   {"category=never_registered_category", false},
                   {"category=\"\"", false},
               });
  EXPECT_FALSE(Matches("category=mailbox", parent));  // not inherited downwards
}

TEST(FilterMatchTest, LogTypeNamesTestTheLevel) {
  Event e = Named("x");
  e.categories.push_back(InternName("Error"));
  struct {
    Level level;
    std::string_view name;
  } levels[] = {{Level::kDebug, "debug"}, {Level::kInfo, "info"},   {Level::kWarn, "warning"},
                {Level::kError, "error"}, {Level::kFatal, "fatal"}, {Level::kPanic, "panic"}};
  for (const auto& l : levels) {
    e.level = l.level;
    for (const auto& other : levels)
      EXPECT_EQ(Matches("category=" + std::string(other.name), e), other.level == l.level)
          << "level " << l.name << " filter " << other.name;
  }
  e.level = Level::kTrace;  // no Dovecot log type
  for (const auto& other : levels)
    EXPECT_FALSE(Matches("category=" + std::string(other.name), e)) << other.name;
  EXPECT_TRUE(Matches("category=Error", e));  // only the lower-case names are log types
  EXPECT_FALSE(Matches("category=warn", e));
}

TEST(FilterMatchTest, SourceLocation) {
  Event parent, e = Named("imap_command_finished");
  e.source_file = "imap-client.c";
  e.source_line = 1016;
  parent.source_file = "main.c";
  parent.source_line = 250;
  e.parent = &parent;
  ExpectAll(e, {
                   {"source_location=imap-client.c", true},
                   {"source_location=imap-client.c:1016", true},
                   {"source_location=imap-client.c:0", true},
                   {"source_location=imap-client.c:1017", false},
                   {"source_location=IMAP-client.c", false},
                   {"source_location=imap-*.c", false},  // exact, no wildcards
                   {"source_location=main.c", false},    // the event's own location only
               });
  EXPECT_FALSE(Matches("source_location=\"\"", Named("x")));  // no location
}

TEST(FilterMatchTest, FieldsAreLookedUpThroughParentsThenTheGlobalChain) {
  Event global_parent, global, grandparent, parent, e = Named("x");
  global_parent.Add(InternName("only_global_parent"), Value::String("gp"));
  global.Add(InternName("user"), Value::String("global-user"));
  global.Add(InternName("only_global"), Value::String("g"));
  global.parent = &global_parent;
  grandparent.Add(InternName("user"), Value::String("grandparent-user"));
  grandparent.Add(InternName("session"), Value::String("abc"));
  parent.Add(InternName("user"), Value::String("parent-user"));
  e.parent = &parent;
  parent.parent = &grandparent;
  e.global = &global;
  ExpectAll(e, {
                   {"user=parent-user", true},  // the nearest one wins
                   {"user=grandparent-user", false},
                   {"user=global-user", false},
                   {"session=abc", true},
                   {"only_global=g", true},
                   {"only_global_parent=gp", true},
               });
  // The global event of the matched event is searched, not the parents' ones.
  EXPECT_FALSE(Matches("only_global=g", parent));
}

struct Counters {
  std::uint32_t read_count;
  std::uint64_t read_bytes;
  std::int64_t tv_sec, tv_usec;
};
constexpr RecordColumn kColumns[] = {
    {"read_count", RecordColumn::Type::kU32, offsetof(Counters, read_count)},
    {"read_bytes", RecordColumn::Type::kU64, offsetof(Counters, read_bytes)},
    {"user_cpu", RecordColumn::Type::kTimeval, offsetof(Counters, tv_sec)},
};
constexpr RecordSchema kSchema = {"counters", sizeof(Counters), kColumns, 3};

TEST(FilterMatchTest, FieldsIncludeRecordColumns) {
  const Counters c{12, 4096, 1, 5};
  Event parent, e = Named("x");
  parent.Add(InternName("stats"), Value::Record(&kSchema, &c));
  e.Add(InternName("read_count"), Value::Int(99));  // a plain field comes first
  e.parent = &parent;
  ExpectAll(e, {
                   {"read_count=99", true},
                   {"read_bytes>=4k", false},
                   {"read_bytes=4096", true},
                   {"read_bytes>4095 AND read_bytes<4097", true},
                   {"user_cpu=*", false},  // timevals never match
                   {"stats=*", false},     // nor does the record itself
               });
  EXPECT_TRUE(Matches("read_bytes>=4k", e, Dialect::kMailscope));
  EXPECT_TRUE(Matches("read_count=12", parent));
}

TEST(FilterMatchTest, MissingFieldMatchesOnlyTheEmptyValue) {
  const Event e = Named("x");
  ExpectAll(e, {
                   {"missing=\"\"", true},
                   {"missing<\"\"", true},  // with any operator, as in 2.3.19
                   {"missing=*", false},
                   {"missing=0", false},
                   {"NOT missing=x", true},
                   {"\"\"=\"\"", true},  // no field has an empty key
               });
}

TEST(FilterMatchTest, StringFields) {
  Event e = Named("x");
  e.Add(InternName("user"), Value::String("Alice@Example.com"));
  e.Add(InternName("cmd_name"), Value::String("SELECT"));
  e.Add(InternName("removed"), Value::String(""));
  e.Add(InternName("size"), Value::String("1500"));
  ExpectAll(e, {
                   {"user=\"alice@example.com\"", true},  // case-insensitive
                   {"user=ALICE*", true},
                   {"user=\"*@example.COM\"", true},
                   {"user=\"?lice@*\"", true},
                   {"user=alice", false},
                   {"user=*", true},
                   {"user>a", false},  // only '=' on strings
                   {"user>=\"Alice@Example.com\"", false},
                   {"cmd_name=select", true},
                   {"cmd_name=sel?ct", true},
                   {"removed=\"\"", true},  // an empty string is a removed field
                   {"removed=*", false},
                   {"size=1500", true},
                   {"size>1000", false},
               });
}

TEST(FilterMatchTest, IntegerFields) {
  Event e = Named("x");
  e.Add(InternName("size"), Value::Int(1500));
  e.Add(InternName("neg"), Value::Int(-5));
  e.Add(InternName("min"), Value::Int(std::numeric_limits<std::int32_t>::min()));
  ExpectAll(e, {
                   {"size=1500", true},
                   {"size=01500", true},
                   {"size>1000", true},
                   {"size<1000", false},
                   {"size>=1500", true},
                   {"size<=1500", true},
                   {"size<=1499", false},
                   {"size>-1", true},
                   {"neg<-4", true},
                   {"neg>-6 AND neg<-4", true},
                   // Not a number: '=' against a wildcard on the decimal text.
                   {"size=15*", true},
                   {"size=1?00", true},
                   {"size=2*", false},
                   {"size>15*", false},
                   {"neg=-*", true},
                   // A literal that is not a number never matches (2.3.19 crashes).
                   {"size=\"\"", false},
                   {"size=1500x", false},
                   {"size=0x5dc", false},
                   {"size=99999999999999999999", false},
                   // INT_MIN and below are "not a number" in 2.3.19.
                   {"min=-2147483648", false},
                   {"min>-2147483648", false},
                   {"min>-3000000000", false},
                   {"min>-2147483649", false},
                   {"size>-2147483647", true},
                   {"min=-2147483648*", true},
               });
}

TEST(FilterMatchTest, UnsignedAndBoolFieldsAreIntegers) {
  Event e = Named("x");
  e.Add(InternName("big"), Value::Uint(std::numeric_limits<std::uint64_t>::max()));
  e.Add(InternName("count"), Value::Uint(7));
  e.Add(InternName("ok"), Value::Bool(true));
  ExpectAll(e, {
                   {"big>9223372036854775807", true},
                   {"big>-5", true},
                   {"big=18446744073709551615", false},  // beyond intmax: not a number
                   {"big=1844674407370955161?", true},
                   {"count=7", true},
                   {"count<8", true},
                   {"count>-1", true},
                   {"count<-1", false},
                   {"ok=1", true},
                   {"ok=0", false},
                   {"ok>0", true},
                   {"ok=yes", false},
               });
}

TEST(FilterMatchTest, DoubleFieldsCompareAsNumbers) {
  Event e = Named("x");
  e.Add(InternName("load"), Value::Double(0.75));
  e.Add(InternName("nan"), Value::Double(std::numeric_limits<double>::quiet_NaN()));
  ExpectAll(e, {
                   {"load>0.5", true},
                   {"load<1", true},
                   {"load=0.75", true},
                   {"load>=1", false},
                   {"load=0.7*", true},
                   {"load=abc", false},
                   {"nan=0", false},
                   {"nan>0", false},
                   {"nan<0", false},
               });
}

TEST(FilterMatchTest, TimevalsNeverMatch) {
  Event e = Named("x");
  e.Add(InternName("last_run_time"), Value::Tv({1795304655, 257107}));
  ExpectAll(e, {
                   {"last_run_time=*", false},
                   {"last_run_time>0", false},
                   {"last_run_time=\"\"", false},
                   {"NOT last_run_time=*", true},
               });
}

TEST(FilterMatchTest, UnitsCompareInMicrosecondsAndBytes) {
  Event e = Named("imap_command_finished");
  e.Add(InternName("duration"), Value::Int(15000));  // µs, as Dovecot's field
  e.Add(InternName("bytes_out"), Value::Uint(3 * 1024 * 1024));
  e.Add(InternName("label"), Value::String("10ms"));
  ExpectAll(e,
            {
                {"duration>10ms", true},
                {"duration>15ms", false},
                {"duration>=0.015s", true},
                {"bytes_out>=3M AND bytes_out<3.5MB", true},
                {"label=10ms", false},  // the unit made it 10000
                {"label=\"10ms\"", true},
            },
            Dialect::kMailscope);
  // In Dovecot's dialect 10ms is text: never equal to an integer field.
  ExpectAll(e, {{"duration>10ms", false}, {"label=10ms", true}});
}

TEST(FilterMatchTest, TaggedValuesCompareInTheirBaseUnit) {
  Event e = Named("smtp_delivery");
  e.Add(InternName("elapsed"), Value::Int(15).WithUnit(Unit::kMilliseconds));
  e.Add(InternName("wait"), Value::Uint(2).WithUnit(Unit::kSeconds));
  e.Add(InternName("ratio"), Value::Double(1.5).WithUnit(Unit::kMilliseconds));
  e.Add(InternName("duration"), Value::Int(15000).WithUnit(Unit::kMicroseconds));
  e.Add(InternName("size"), Value::Uint(2048).WithUnit(Unit::kBytes));
  e.Add(InternName("huge"), Value::Int(INT64_MAX / 10).WithUnit(Unit::kSeconds));
  e.Add(InternName("plain"), Value::Int(15));
  ExpectAll(e,
            {
                {"elapsed>10ms", true},
                {"elapsed>15ms", false},
                {"elapsed=15ms", true},
                {"elapsed=15000", true},  // a plain number counts microseconds
                {"elapsed>10", true},
                {"elapsed=15", false},
                {"elapsed=15*", true},  // the text of 15000
                {"elapsed<0.016s", true},
                {"wait=2s", true},
                {"wait>1999ms", true},
                {"wait>=2001ms", false},
                {"ratio=1500", true},
                {"ratio>1ms AND ratio<2ms", true},
                {"duration>10ms", true},
                {"duration=15ms", true},
                {"size>=2k", true},
                {"size=2048", true},
                {"huge>1000000d", true},  // saturated, not wrapped
                // A unit of the other kind never matches a tagged value.
                {"elapsed>1k", false},
                {"NOT elapsed>1k", true},
                {"size>1us", false},
                // Untagged values compare as they are.
                {"plain>10ms", false},
                {"plain=15", true},
            },
            Dialect::kMailscope);
  // Dovecot's dialect knows no units: values compare as sent.
  ExpectAll(e, {
                   {"elapsed=15", true},
                   {"elapsed>10", true},
                   {"elapsed=15000", false},
                   {"wait=2", true},
                   {"duration=15000", true},
               });
}

TEST(FilterMatchTest, EmptyFilterMatchesNothing) {
  EXPECT_FALSE(Filter().Matches(Named("x")));
  EXPECT_FALSE(MustParse("").Matches(Named("x")));
  EXPECT_TRUE(Filter().RequiresEventName());
}

TEST(FilterMatchTest, AnyQueryOfAMergedFilter) {
  const Filter a = MustParse("event=a"), b = MustParse("event=b AND n>1");
  const Filter merged = Filter::Merge({&a, &b});
  Event e = Named("b");
  e.Add(InternName("n"), Value::Int(2));
  EXPECT_TRUE(merged.Matches(Named("a")));
  EXPECT_TRUE(merged.Matches(e));
  EXPECT_FALSE(merged.Matches(Named("b")));
  EXPECT_FALSE(merged.Matches(Named("c")));
}

// The names RequiredEventNames() gives, "*" for nullopt, and "=" when exact.
std::string NamesOf(const Filter& f) {
  const auto names = f.RequiredEventNames();
  if (!names) return "*";
  std::vector<std::string_view> texts;
  for (NameId id : names->names) texts.push_back(NameText(id));
  std::sort(texts.begin(), texts.end());
  std::string out = names->exact ? "=" : "";
  for (std::string_view t : texts) out += std::string(t) + ",";
  return out;
}

TEST(FilterMatchTest, RequiredEventNames) {
  const struct {
    std::string_view filter;
    std::string_view names;
  } cases[] = {
      {"event=a", "=a,"},
      {"event=a AND x=1", "a,"},
      {"x=1 AND event=a", "a,"},
      {"event=a OR event=b", "=a,b,"},
      {"event=a OR x=1", "*"},
      {"(event=a OR event=b) AND event=b", "=b,"},
      {"event=a AND event=b", "="},
      {"event=a AND (event=b OR x=1)", "a,"},
      {"event=a*", "*"},
      {"event=a AND event=a*", "a,"},
      {"NOT event=a", "*"},
      {"event=a AND NOT event=b", "a,"},
      {"category=storage AND event=mail_opened", "mail_opened,"},
      {"event=a AND (cmd_name=SEARCH OR tagged_reply_state=BAD)", "a,"},
      {"x=1", "*"},
      {"event=\"\"", "="},
  };
  for (const auto& c : cases) EXPECT_EQ(NamesOf(MustParse(c.filter)), c.names) << c.filter;
  EXPECT_EQ(NamesOf(Filter()), "=");
  const Filter a = MustParse("event=a"), b = MustParse("event=b AND x=1"), c = MustParse("x=1");
  EXPECT_EQ(NamesOf(Filter::Merge({&a, &b})), "a,b,");
  EXPECT_EQ(NamesOf(Filter::Merge({&a, &c})), "*");
}

// Whatever RequiredEventNames() says, Matches() agrees on named events.
TEST(FilterMatchTest, RequiredEventNamesAgreeWithMatches) {
  const std::string_view filters[] = {
      "event=a",
      "event=a AND x=1",
      "event=a OR event=b",
      "(event=a OR event=b) AND x=1",
      "event=a AND NOT x=1",
      "event=b OR (event=a AND x=2)",
      "event=a AND event=b",
  };
  for (std::string_view text : filters) {
    const Filter f = MustParse(text);
    const auto names = f.RequiredEventNames();
    ASSERT_TRUE(names.has_value()) << text;
    for (std::string_view name : {"a", "b", "c"}) {
      for (int x : {0, 1, 2}) {
        Event e = Named(name);
        if (x != 0) e.Add(InternName("x"), Value::Int(x));
        const bool in = std::binary_search(names->names.begin(), names->names.end(), e.name);
        if (!in) {
          EXPECT_FALSE(f.Matches(e)) << text << " " << name << " " << x;
        }
        if (names->exact) {
          EXPECT_EQ(f.Matches(e), in) << text << " " << name << " " << x;
        }
      }
    }
  }
}

// RequiredFieldValues() as "key:value,value", "-" for nullopt.
std::string RequiredFieldOf(const Filter& f) {
  const auto field = f.RequiredFieldValues();
  if (!field) return "-";
  std::string out = std::string(NameText(field->key())) + ":";
  for (const std::string& v : field->values()) out += v + ",";
  return out;
}

TEST(FilterMatchTest, RequiredFieldValues) {
  const struct {
    std::string_view filter;
    std::string_view field;
  } cases[] = {
      {"program=qmail-smtpd", "program:qmail-smtpd,"},
      {"program=\"Qmail-SMTPD\" AND source=qmail_log", "program:qmail-smtpd,"},
      {"source=qmail_log AND program=qmail-smtpd", "source:qmail_log,"},
      {"event=a AND program=x", "program:x,"},
      {"program=b OR program=a OR program=B", "program:a,b,"},
      {"(program=b OR program=a) AND x=y", "program:a,b,"},
      {"(program=b OR other=a) AND x=y", "x:y,"},
      {"program=a OR x=y", "-"},
      {"NOT program=a", "-"},
      {"program=a*", "-"},
      {"program=\"\"", "-"},
      {"program=5", "-"},
      {"program=1.5", "-"},
      {"program>a", "-"},
      {"event=a", "-"},
      {"event=a OR program=x", "-"},
      {"x=1 AND program=a", "program:a,"},
  };
  for (const auto& c : cases) EXPECT_EQ(RequiredFieldOf(MustParse(c.filter)), c.field) << c.filter;
  EXPECT_EQ(RequiredFieldOf(Filter()), "-");
  EXPECT_EQ(RequiredFieldOf(MustParse("size=10ms", Dialect::kMailscope)), "-");
  const Filter a = MustParse("program=a AND x=1"), b = MustParse("x=2 AND program=b"),
               c = MustParse("x=3");
  EXPECT_EQ(RequiredFieldOf(Filter::Merge({&a, &b})), "program:a,b,");
  EXPECT_EQ(RequiredFieldOf(Filter::Merge({&a, &c})), "-");
}

// Whenever Matches() says yes, the field RequiredFieldValues() names holds
// one of its values: wherever the field is, whatever its type and case.
TEST(FilterMatchTest, RequiredFieldValuesHoldWheneverMatchesDoes) {
  const FieldAlias aliases[] = {{InternName("prog"), InternName("program")}};
  const std::string_view filters[] = {
      "program=qmail-smtpd",
      "program=QMAIL-smtpd AND x=1",
      "(program=a OR program=b) AND NOT x=1",
      "prog=a",
      "source=dovecot AND event=e",
      "kind=auth",
      "program=a AND (event=e OR x=2)",
  };
  const Value values[] = {Value::String("qmail-smtpd"),
                          Value::String("QMAIL-SMTPD"),
                          Value::String("qmail-smtpdx"),
                          Value::String("a"),
                          Value::String("B"),
                          Value::String(""),
                          Value::Int(5),
                          Value{}};
  int matched = 0;
  for (std::string_view text : filters) {
    const Filter f = MustParse(text);
    const auto field = f.RequiredFieldValues();
    ASSERT_TRUE(field.has_value()) << text;
    for (const Value& v : values) {
      for (int variant = 0; variant < 16; ++variant) {
        Event parent = Named("p");
        Event e = Named(variant & 1 ? "e" : "f");
        if (variant & 2) e.Add(InternName("x"), Value::Int(variant & 4 ? 1 : 2));
        if (variant & 8) {
          parent.Add(InternName("program"), v);  // found through the chain
          e.parent = &parent;
        } else {
          e.Add(InternName("program"), v);
        }
        e.source = variant & 4 ? Source::kDovecot : Source::kExim;
        e.taxonomy = {InternName(variant & 2 ? "auth" : "delivery"), kNoName, aliases, 1};
        if (!f.Matches(e)) continue;
        ++matched;
        Value got;
        ASSERT_TRUE(field->Lookup(e, got)) << text << " variant " << variant;
        ASSERT_EQ(got.type(), Value::Type::kString) << text;
        std::string lower(got.as_string());
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        EXPECT_TRUE(std::binary_search(field->values().begin(), field->values().end(), lower))
            << text << " " << lower;
      }
    }
  }
  EXPECT_GT(matched, 50);
}

// An Exim auth:fail as the router leaves it: its taxonomy points at
// `aliases`, which must outlive it.
Event EximAuthFailure(const FieldAlias (&aliases)[3]) {
  Event e = Named("auth:fail");
  e.source = Source::kExim;
  e.taxonomy = {InternName("auth"), InternName("failure"), aliases, 3};
  e.Add(InternName("sender_host_address"), Value::String("192.0.2.7"));
  e.Add(InternName("authenticated_fail_id"), Value::String("Mallory@example.com"));
  e.Add(InternName("event_data"), Value::String("535 Incorrect authentication data"));
  e.Add(InternName("port"), Value::Int(587));
  return e;
}

const FieldAlias kEximAuthAliases[3] = {
    {InternName("remote_ip"), InternName("sender_host_address")},
    {InternName("user"), InternName("authenticated_fail_id")},
    {InternName("smtp_port"), InternName("port")},
};

TEST(FilterMatchTest, SourceKindAndOutcomeAreStrings) {
  const Event e = EximAuthFailure(kEximAuthAliases);
  ExpectAll(e, {
                   {"source=exim", true},
                   {"source=EXIM", true},
                   {"source=ex*", true},
                   {"source=dovecot", false},
                   {"source=\"\"", false},
                   {"kind=auth", true},
                   {"kind=auth AND outcome=failure", true},
                   {"kind=auth AND outcome=success", false},
                   {"kind=a*", true},
                   {"outcome=\"\"", false},
                   {"NOT kind=delivery", true},
                   {"kind>a", false},  // strings compare with '=' only
                   {"event=auth:fail AND kind=auth", true},
               });
  // No taxonomy: no kind or outcome (they match only ""), but a source.
  Event plain = Named("imap_command_finished");
  plain.source = Source::kDovecot;
  ExpectAll(plain, {
                       {"kind=auth", false},
                       {"kind=\"\"", true},
                       {"outcome=*", false},
                       {"source=dovecot", true},
                   });
  Event old_stats;
  ExpectAll(old_stats, {{"source=dovecot_old_stats", true}});
}

TEST(FilterMatchTest, NormalizedNamesResolveThroughTheAliases) {
  const Event e = EximAuthFailure(kEximAuthAliases);
  ExpectAll(e, {
                   {"remote_ip=192.0.2.7", true},
                   {"remote_ip=192.0.2.*", true},
                   {"remote_ip=10.*", false},
                   {"user=\"mallory@example.com\"", true},  // as strings: case-insensitive
                   {"smtp_port=587", true},                 // the aliased field's own type
                   {"smtp_port>500", true},
                   {"smtp_port<500", false},
                   {"recipient=*", false},  // not mapped for this event: missing
                   {"recipient=\"\"", true},
                   {"sender_host_address=192.0.2.7", true},
               });
  // The event's own field of that name wins over the alias, also on a parent.
  Event own = EximAuthFailure(kEximAuthAliases);
  own.Add(InternName("user"), Value::String("alice"));
  ExpectAll(own, {{"user=alice", true}, {"user=\"mallory@example.com\"", false}});
  Event child = Named("child");
  child.taxonomy = own.taxonomy;
  Event parent;
  parent.Add(InternName("remote_ip"), Value::String("198.51.100.1"));
  parent.Add(InternName("sender_host_address"), Value::String("192.0.2.7"));
  child.parent = &parent;
  ExpectAll(child, {{"remote_ip=198.51.100.1", true}, {"remote_ip=192.0.2.7", false}});
  // The aliased field is looked up through the chain as well.
  Event via_parent = Named("child");
  via_parent.taxonomy = own.taxonomy;
  Event p2;
  p2.Add(InternName("sender_host_address"), Value::String("192.0.2.7"));
  via_parent.parent = &p2;
  ExpectAll(via_parent, {{"remote_ip=192.0.2.7", true}});
  // An event's own `kind` or `source` field wins too.
  Event shadow = EximAuthFailure(kEximAuthAliases);
  shadow.Add(InternName("kind"), Value::String("other"));
  shadow.Add(InternName("source"), Value::String("elsewhere"));
  ExpectAll(shadow, {{"kind=auth", false}, {"kind=other", true}, {"source=elsewhere", true}});
}

TEST(FilterMatchTest, MatchingDoesNotAllocate) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  Event global, parent, e = Named("imap_command_finished");
  global.categories.push_back(InternName("service:imap"));
  parent.Add(InternName("user"), Value::String("alice@example.com"));
  e.Add(InternName("cmd_name"), Value::String("SELECT"));
  e.Add(InternName("duration"), Value::Int(5000));
  e.Add(InternName("load"), Value::Double(0.5));
  e.Add(InternName("elapsed"), Value::Int(15).WithUnit(Unit::kMilliseconds));
  e.parent = &parent;
  e.global = &global;
  const Filter f = MustParse(
      "(event=imap_* AND cmd_name=sel* AND duration>1ms AND duration=5* AND load=0.* AND "
      "elapsed>10ms AND user=\"*@example.com\" AND category=service:imap AND NOT missing=x AND "
      "category=debug) OR "
      "source_location=x.c OR (kind=auth AND outcome=failure AND remote_ip=192.* AND "
      "source=exim)",
      Dialect::kMailscope);
  e.level = Level::kDebug;
  const Event exim = EximAuthFailure(kEximAuthAliases);
  const long before = HeapAllocationsForTesting();
  bool all = true;
  for (int i = 0; i < 100; ++i) all = all && f.Matches(e) && f.Matches(exim);
  EXPECT_EQ(HeapAllocationsForTesting() - before, 0);
  EXPECT_TRUE(all);
}

}  // namespace
}  // namespace mailscope::filter
