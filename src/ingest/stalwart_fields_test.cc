#include "ingest/stalwart_fields.h"

#include <gtest/gtest.h>

namespace mailscope::ingest {
namespace {

TEST(StalwartFieldsTest, TimestampsOfStalwartsOneForm) {
  std::int64_t s = 0;
  ASSERT_TRUE(ParseStalwartTimestamp("2025-06-15T10:20:53Z", s));
  EXPECT_EQ(s, 1749982853);
  ASSERT_TRUE(ParseStalwartTimestamp("1970-01-01T00:00:00Z", s));
  EXPECT_EQ(s, 0);
  ASSERT_TRUE(ParseStalwartTimestamp("2024-02-29T23:59:59Z", s));
  EXPECT_EQ(s, 1709251199);
  for (std::string_view bad :
       {"", "2025-06-15T10:20:53", "2025-06-15T10:20:53+00:00", "2025-06-15 10:20:53Z",
        "2025-02-30T10:20:53Z", "2025-06-15T24:00:00Z", "2025-06-15T10:60:00Z",
        "2025-06-15T10:20:5xZ", "2025-06-15T10:20:53.5Z"}) {
    EXPECT_FALSE(ParseStalwartTimestamp(bad, s)) << bad;
  }
}

TEST(StalwartFieldsTest, UnitsAndTimestampKeys) {
  EXPECT_EQ(StalwartKeyUnit("elapsed"), Unit::kMilliseconds);
  EXPECT_EQ(StalwartKeyUnit("size"), Unit::kBytes);
  EXPECT_EQ(StalwartKeyUnit("total"), Unit::kNone);
  EXPECT_TRUE(IsStalwartTimestampKey("nextRetry"));
  EXPECT_TRUE(IsStalwartTimestampKey("expires"));
  EXPECT_FALSE(IsStalwartTimestampKey("elapsed"));
}

TEST(StalwartFieldsTest, NamesMapAliasesAndNestKeys) {
  StalwartNames names(NameBudget(NameInput::kStalwartPost, 100));
  EXPECT_EQ(NameText(names.EventName("queue.queue-dsn")), "queue.dsn-queued");
  EXPECT_EQ(names.EventName("queue.dsn-queued"), names.EventName("queue.queue-dsn"));
  const NameId caused = names.Key(kNoName, "causedBy");
  EXPECT_EQ(NameText(caused), "causedBy");
  EXPECT_EQ(NameText(names.Key(caused, "reason")), "causedBy.reason");
  EXPECT_EQ(names.Key(caused, "reason"), names.Key(caused, "reason"));
}

}  // namespace
}  // namespace mailscope::ingest
