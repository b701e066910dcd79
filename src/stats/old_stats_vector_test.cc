#include "stats/old_stats_vector.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

namespace mailscope::stats {
namespace {

TEST(OldStatsVectorTest, TimevalTextIsUnpadded) {
  OldStatsVector v;
  v.tv[0] = {0, 8356};
  v.tv[1] = {0, 5};
  v.tv[2] = {12, 0};
  std::string out;
  v.AppendColumn(out, 0);
  out += ' ';
  v.AppendColumn(out, 1);
  out += ' ';
  v.AppendColumn(out, 2);
  EXPECT_EQ(out, "0.8356 0.5 12.0");
}

TEST(OldStatsVectorTest, AddCarriesOnlyAboveOneMillion) {
  OldStatsVector a, b;
  a.tv[0] = {0, 8356};
  b.tv[0] = {0, 2199};
  a.Add(b);
  std::string out;
  a.AppendColumn(out, 0);
  EXPECT_EQ(out, "0.10555");  // 8356+2199 µs, as Dovecot prints the global sum
  OldStatsVector c, d;
  c.tv[0] = {0, 600000};
  d.tv[0] = {0, 400000};
  c.Add(d);
  EXPECT_EQ(c.tv[0], (Timeval{0, 1000000}));  // exactly 1000000 stays unnormalized
  c.Add(d);
  EXPECT_EQ(c.tv[0], (Timeval{1, 400000}));
}

TEST(OldStatsVectorTest, DiffNormalizesAndRejectsShrinking) {
  OldStatsVector old, now, diff;
  old.tv[0] = {1, 999999};
  now.tv[0] = {2, 1};
  now.n[0] = 5;
  ASSERT_TRUE(OldStatsVector::Diff(old, now, diff).ok());
  EXPECT_EQ(diff.tv[0], (Timeval{0, 2}));
  EXPECT_EQ(diff.n[0], 5u);
  old.n[4] = 10;  // disk_input
  Status st = OldStatsVector::Diff(old, now, diff);
  EXPECT_EQ(st.reason(), "stats_shrank");
  EXPECT_NE(st.message().find("disk_input"), std::string::npos) << st.message();
}

// A payload is any bytes: timevals near the ends of int64 wrap as the
// machine's two's complement does, defined (the ASan+UBSan build checks).
TEST(OldStatsVectorTest, GarbageTimevalsWrap) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  OldStatsVector a, b;
  a.tv[0] = {kMax, 999999};
  b.tv[0] = {1, 2};
  a.Add(b);
  EXPECT_EQ(a.tv[0], (Timeval{kMin + 1, 1}));  // usec 1000001 carried
  OldStatsVector old, now, diff;
  old.tv[0] = {kMin, 0};
  now.tv[0] = {kMax, 0};  // now - old wraps to -1 second: shrank
  Status st = OldStatsVector::Diff(old, now, diff);
  EXPECT_EQ(st.reason(), "stats_shrank");
  old.tv[0] = {0, 0};
  now.tv[0] = {kMax / 1000, 5};  // the µs product wraps to -807,995
  EXPECT_FALSE(OldStatsVector::Diff(old, now, diff).ok());
}

TEST(OldStatsVectorTest, U32ColumnsWrap) {
  OldStatsVector a, b;
  a.n[0] = 0xffffffffu;  // min_faults is a u32
  b.n[0] = 2;
  a.Add(b);
  EXPECT_EQ(a.n[0], 1u);
  a.n[4] = 0xffffffffu;  // disk_input is a u64
  b.n[4] = 2;
  a.Add(b);
  EXPECT_EQ(a.n[4], 0x100000001u);
}

// Diff() per column, as stats_import() then stats_diff() define it: an absent
// column keeps the stored value, so it differs by nothing.
bool ReferenceDiff(const OldStatsVector& old, const OldStatsVector& now, OldStatsVector& diff,
                   std::uint32_t present) {
  bool shrank = false;
  diff = {};
  for (std::size_t i = 0; i < OldStatsVector::kColumns; ++i) {
    if (((present >> i) & 1u) == 0) continue;
    if (i < OldStatsVector::kTimevals) {
      const std::int64_t us =
          (now.tv[i].sec - old.tv[i].sec) * 1'000'000 + (now.tv[i].usec - old.tv[i].usec);
      shrank |= us < 0;
      diff.tv[i] = {us / 1'000'000, us % 1'000'000};
    } else {
      const std::size_t j = i - OldStatsVector::kTimevals;
      shrank |= now.n[j] < old.n[j];
      diff.n[j] = now.n[j] - old.n[j];
    }
  }
  return shrank;
}

// The straight-line cases (whole items) and the column-by-column one agree
// with the reference, shrinking columns included.
TEST(OldStatsVectorTest, DiffOfPresentColumnsMatchesReference) {
  std::mt19937_64 rng(5);
  const std::uint32_t masks[] = {OldStatsVector::kAllColumns,
                                 OldStatsVector::kMailColumns,
                                 OldStatsVector::kAuthColumns,
                                 0,
                                 0x5,
                                 OldStatsVector::kMailColumns | (1u << 20)};
  for (int round = 0; round < 3000; ++round) {
    OldStatsVector old, now;
    for (std::size_t i = 0; i < OldStatsVector::kTimevals; ++i) {
      old.tv[i] = {static_cast<std::int64_t>(rng() % 4),
                   static_cast<std::int64_t>(rng() % 1'000'000)};
      now.tv[i] = {old.tv[i].sec + static_cast<std::int64_t>(rng() % 3) - (round % 7 == 0),
                   static_cast<std::int64_t>(rng() % 1'000'000)};
    }
    for (std::size_t j = 0; j < old.n.size(); ++j) {
      old.n[j] = rng() % 1000;
      now.n[j] = old.n[j] + rng() % 1000 -
                 (round % 5 == 0 && j == static_cast<std::size_t>(round % 21) ? 1000 : 0);
    }
    for (std::uint32_t present : masks) {
      OldStatsVector diff, expected;
      const bool shrank = ReferenceDiff(old, now, expected, present);
      const Status st = OldStatsVector::Diff(old, now, diff, present);
      ASSERT_EQ(!st.ok(), shrank) << "round " << round << " columns " << present;
      if (!shrank) {
        ASSERT_EQ(diff, expected) << "round " << round << " columns " << present;
      }
    }
  }
}

TEST(OldStatsVectorTest, HeaderHasMailThenAuthColumns) {
  EXPECT_EQ(OldStatsHeader(),
            "user_cpu\tsys_cpu\tclock_time\tmin_faults\tmaj_faults\tvol_cs\tinvol_cs\tdisk_input\t"
            "disk_output\tread_count\tread_bytes\twrite_count\twrite_bytes\tmail_lookup_path\t"
            "mail_lookup_attr\tmail_read_count\tmail_read_bytes\tmail_cache_hits\tauth_successes\t"
            "auth_master_successes\tauth_failures\tauth_db_tempfails\tauth_cache_hits\t"
            "auth_cache_misses");
}

}  // namespace
}  // namespace mailscope::stats
