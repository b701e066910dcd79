#include "ingest/dovecot_field_units.h"

#include <gtest/gtest.h>

namespace mailscope::ingest {
namespace {

TEST(DovecotFieldUnitTest, NamesWhoseUnitIsCertain) {
  EXPECT_EQ(DovecotFieldUnit("duration"), Unit::kMicroseconds);
  EXPECT_EQ(DovecotFieldUnit("running_usecs"), Unit::kMicroseconds);
  EXPECT_EQ(DovecotFieldUnit("lock_wait_usecs"), Unit::kMicroseconds);
  EXPECT_EQ(DovecotFieldUnit("user_cpu_usecs"), Unit::kMicroseconds);
  EXPECT_EQ(DovecotFieldUnit("timeout_msecs"), Unit::kMilliseconds);
  EXPECT_EQ(DovecotFieldUnit("idle_secs"), Unit::kSeconds);
  EXPECT_EQ(DovecotFieldUnit("bytes_in"), Unit::kBytes);
  EXPECT_EQ(DovecotFieldUnit("bytes_out"), Unit::kBytes);
  EXPECT_EQ(DovecotFieldUnit("net_in_bytes"), Unit::kBytes);
  EXPECT_EQ(DovecotFieldUnit("message_size"), Unit::kBytes);
  EXPECT_EQ(DovecotFieldUnit("message_vsize"), Unit::kBytes);
  EXPECT_EQ(DovecotFieldUnit("data_size"), Unit::kBytes);
  EXPECT_EQ(DovecotFieldUnit("script_size"), Unit::kBytes);
}

TEST(DovecotFieldUnitTest, EverythingElseHasNone) {
  for (const char* name : {"", "usecs", "secs", "bytes", "durations", "last_run_time", "utime",
                           "rss", "alloc_size", "message_count", "status_code", "cmd_name"}) {
    EXPECT_EQ(DovecotFieldUnit(name), Unit::kNone) << name;
  }
}

}  // namespace
}  // namespace mailscope::ingest
