#include "ingest/event_dedup.h"

#include <gtest/gtest.h>

#include <bit>
#include <deque>
#include <random>
#include <unordered_set>

namespace mailscope::ingest {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const TimePoint kStart = TimePoint{} + seconds(1'800'000'000);

TEST(EventDedupTest, AKeyIsSeenWithinItsWindowOnly) {
  EventDedup dedup(minutes(5), 100);
  EXPECT_FALSE(dedup.Seen(42, kStart));
  EXPECT_TRUE(dedup.Seen(42, kStart + minutes(4)));
  // Seeing it again does not renew it: the window runs from the first sight.
  EXPECT_FALSE(dedup.Seen(42, kStart + minutes(5)));
  EXPECT_TRUE(dedup.Seen(42, kStart + minutes(6)));
  EXPECT_EQ(dedup.duplicates(), 2u);
  EXPECT_EQ(dedup.evicted(), 0u);
}

TEST(EventDedupTest, ZeroIsAKeyLikeAnother) {
  EventDedup dedup(minutes(5), 10);
  EXPECT_FALSE(dedup.Seen(0, kStart));
  EXPECT_TRUE(dedup.Seen(0, kStart));
}

TEST(EventDedupTest, PastTheBoundTheOldestIsForgottenAndCounted) {
  EventDedup dedup(minutes(5), 3);
  for (std::uint64_t k = 1; k <= 4; ++k) EXPECT_FALSE(dedup.Seen(k, kStart));
  EXPECT_EQ(dedup.evicted(), 1u);
  EXPECT_EQ(dedup.size(), 3u);
  EXPECT_FALSE(dedup.Seen(1, kStart)) << "evicted before its window ended";
  EXPECT_TRUE(dedup.Seen(4, kStart));
}

TEST(EventDedupTest, HoldsItsBound) {
  EventDedup dedup(minutes(5), 10000);
  for (std::uint64_t k = 1; k <= 10000; ++k) ASSERT_FALSE(dedup.Seen(k * 0x10001, kStart));
  EXPECT_EQ(dedup.size(), 10000u);
  EXPECT_EQ(dedup.evicted(), 0u);
  for (std::uint64_t k = 1; k <= 10000; ++k) ASSERT_TRUE(dedup.Seen(k * 0x10001, kStart));
  EXPECT_FALSE(dedup.Seen(1, kStart));
  EXPECT_EQ(dedup.evicted(), 1u);
  EXPECT_EQ(dedup.max_keys(), 10000u);
}

TEST(EventDedupTest, AZeroWindowRemembersNothing) {
  EventDedup dedup(seconds(0), 100);
  EXPECT_FALSE(dedup.Seen(7, kStart));
  EXPECT_FALSE(dedup.Seen(7, kStart));
  EXPECT_EQ(dedup.size(), 0u);
}

TEST(EventDedupTest, MemoryBoundGivesKeys) {
  EXPECT_EQ(EventDedup::MaxKeysFor(64u << 20), (64u << 20) / 32);
  EXPECT_EQ(EventDedup::MaxKeysFor(0), 1u);
  // Never more than the bytes given, table rounded to a power of two included.
  for (std::uint64_t bytes : {std::uint64_t{65} << 20, std::uint64_t{100} << 20,
                              std::uint64_t{1000}, std::uint64_t{12345}}) {
    const std::size_t keys = EventDedup::MaxKeysFor(bytes);
    const std::uint64_t used = std::bit_ceil(std::uint64_t{keys} * 2) * 8 + keys * 16;
    EXPECT_LE(used, bytes) << bytes;
    EXPECT_GE(used * 2, bytes) << bytes;  // and not far below them
  }
}

// Keys colliding in the table's low bits, inserted, expired and evicted in
// random order, against a plain set as the model: deletion and growth must
// keep every remaining key reachable.
TEST(EventDedupTest, AgreesWithAModelUnderChurn) {
  constexpr std::size_t kMax = 5000;
  const auto window = seconds(10);
  EventDedup dedup(window, kMax);
  std::mt19937_64 rng(7);
  std::deque<std::pair<std::uint64_t, TimePoint>> order;  // first sights, oldest first
  std::unordered_set<std::uint64_t> held;
  TimePoint now = kStart;
  for (int step = 0; step < 60000; ++step) {
    now += std::chrono::microseconds(rng() % 400);
    // Few distinct low bits, so probe runs form and wrap around.
    const std::uint64_t key = ((rng() % 9000) << 8) | (rng() % 4);
    auto forget_front = [&] {
      held.erase(order.front().first);
      order.pop_front();
    };
    while (!order.empty() && order.front().second + window <= now) forget_front();
    const bool expected = held.count(key) > 0;
    ASSERT_EQ(dedup.Seen(key, now), expected) << "step " << step;
    if (!expected) {
      if (order.size() == kMax) forget_front();
      order.emplace_back(key, now);
      held.insert(key);
    }
    ASSERT_EQ(dedup.size(), order.size());
  }
  EXPECT_GT(dedup.evicted(), 0u);
}

}  // namespace
}  // namespace mailscope::ingest
