#include "stats/old_stats_store.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstring>

#include "core/base64.h"
#include "ingest/dovecot_old_stats.h"

namespace mailscope::stats {
namespace {

using namespace std::chrono_literals;

// Builds "mail\0" + struct mail_stats payloads as the plugin does.
std::string MailPayload(std::int64_t user_cpu_us, std::uint32_t min_faults,
                        std::uint64_t read_bytes) {
  std::uint8_t buf[5 + 136] = {};
  std::memcpy(buf, "mail", 5);
  std::uint8_t* s = buf + 5;
  std::int64_t sec = user_cpu_us / 1'000'000, usec = user_cpu_us % 1'000'000;
  std::memcpy(s + 0, &sec, 8);
  std::memcpy(s + 8, &usec, 8);
  std::memcpy(s + 48, &min_faults, 4);
  std::memcpy(s + 88, &read_bytes, 8);
  return Base64Encode(buf, sizeof buf);
}

std::string AuthPayload(std::uint32_t successes, std::uint32_t failures) {
  std::uint8_t buf[5 + 24] = {};
  std::memcpy(buf, "auth", 5);
  std::memcpy(buf + 5, &successes, 4);
  std::memcpy(buf + 5 + 8, &failures, 4);
  return Base64Encode(buf, sizeof buf);
}

class OldStatsStoreTest : public ::testing::Test {
 protected:
  Status Feed(std::string line) {
    Event e;
    auto r = decoder_.Decode(line, clock_.Now(), e);
    if (!r.emit) return r.status;
    Status st = store_.Apply(e);
    return r.status.ok() ? st : r.status;
  }

  FakeClock clock_{TimePoint(std::chrono::seconds(1'795'304'655))};
  OldStatsOptions options_;
  OldStatsStore store_{options_, clock_};
  ingest::DovecotOldStatsDecoder decoder_;
};

TEST_F(OldStatsStoreTest, SessionUpdatesRollUpToEveryLevel) {
  ASSERT_TRUE(Feed("CONNECT\ts1\talice@example.com\timap\t100\tlip=127.0.0.1\trip=10.0.0.1").ok());
  ASSERT_TRUE(Feed("CONNECT\ts2\tbob@example.com\tpop3\t101\trip=10.0.0.1").ok());
  ASSERT_TRUE(Feed("UPDATE-SESSION\ts1\t" + MailPayload(1500, 10, 100)).ok());
  ASSERT_TRUE(Feed("UPDATE-SESSION\ts1\t" + MailPayload(2500, 15, 300)).ok());  // cumulative
  ASSERT_TRUE(Feed("UPDATE-SESSION\ts2\t" + MailPayload(500, 1, 7)).ok());

  const OldUser* alice = store_.FindUser("alice@example.com");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->num_logins, 1u);
  EXPECT_EQ(alice->stats.tv[0], (Timeval{0, 2500}));
  EXPECT_EQ(alice->stats.n[0], 15u);
  const OldDomain* dom = store_.FindDomain("example.com");
  ASSERT_NE(dom, nullptr);
  EXPECT_EQ(dom->num_logins, 2u);
  EXPECT_EQ(dom->num_connected_sessions, 2u);
  EXPECT_EQ(dom->stats.tv[0], (Timeval{0, 3000}));
  const OldIp* ip = store_.FindIp(*IpAddress::Parse("10.0.0.1"));
  ASSERT_NE(ip, nullptr);
  EXPECT_EQ(ip->num_logins, 2u);
  EXPECT_EQ(ip->stats.n[0], 16u);
  EXPECT_EQ(store_.global().num_logins, 2u);
  EXPECT_EQ(store_.global().num_connected_sessions, 2u);
  EXPECT_EQ(store_.global().stats.n[7], 307u);  // read_bytes column

  ASSERT_TRUE(Feed("DISCONNECT\ts1").ok());
  EXPECT_EQ(dom->num_connected_sessions, 1u);
  EXPECT_EQ(ip->num_connected_sessions, 1u);
  EXPECT_EQ(store_.global().num_connected_sessions, 1u);
  EXPECT_TRUE(store_.sessions_newest()->stable.next->disconnected);  // s1, older
  EXPECT_EQ(Feed("DISCONNECT\ts1").reason(), "unknown_session");
}

TEST_F(OldStatsStoreTest, ShrinkingStatisticsAreRejectedAndChangeNothing) {
  ASSERT_TRUE(Feed("CONNECT\ts1\tu\timap\t1").ok());
  ASSERT_TRUE(Feed("UPDATE-SESSION\ts1\t" + MailPayload(2000, 5, 5)).ok());
  EXPECT_EQ(Feed("UPDATE-SESSION\ts1\t" + MailPayload(1000, 5, 5)).reason(), "stats_shrank");
  EXPECT_EQ(store_.FindUser("u")->stats.tv[0], (Timeval{0, 2000}));
}

TEST_F(OldStatsStoreTest, CommandsCountButKeepTheirOwnStatistics) {
  ASSERT_TRUE(Feed("CONNECT\ts1\talice@example.com\timap\t1\trip=::1").ok());
  ASSERT_TRUE(Feed("UPDATE-CMD\ts1\t1\t\tSELECT\tINBOX\t" + MailPayload(100, 1, 1)).ok());
  ASSERT_TRUE(Feed("UPDATE-CMD\ts1\t1\tc\t" + MailPayload(300, 2, 2)).ok());
  ASSERT_TRUE(Feed("UPDATE-CMD\ts1\t2\t\tNOOP\t\t" + MailPayload(10, 0, 0)).ok());
  EXPECT_EQ(Feed("UPDATE-CMD\ts1\t2\t\tNOOP\t\t" + MailPayload(10, 0, 0)).reason(),
            "duplicate_command");
  EXPECT_EQ(Feed("UPDATE-CMD\ts1\t9\tc\t" + MailPayload(10, 0, 0)).reason(), "expired_command");
  const OldCommand* first = store_.commands_oldest();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->name(), "SELECT");
  EXPECT_EQ(first->stats.tv[0], (Timeval{0, 300}));
  EXPECT_EQ(store_.FindUser("alice@example.com")->num_cmds, 2u);
  EXPECT_EQ(store_.FindUser("alice@example.com")->stats.tv[0], (Timeval{0, 0}));
  EXPECT_EQ(store_.global().num_cmds, 2u);
  EXPECT_EQ(store_.FindIp(*IpAddress::Parse("::1"))->num_cmds, 2u);
}

TEST_F(OldStatsStoreTest, BadPayloadStillCreatesTheCommand) {
  ASSERT_TRUE(Feed("CONNECT\ts1\tbob@example.org\timap\t1").ok());
  EXPECT_EQ(
      Feed("UPDATE-CMD\ts1\t3\t\tSEARCH\tSUBJECT \"tab\there\"\t" + MailPayload(5, 5, 5)).reason(),
      "invalid_base64");
  ASSERT_NE(store_.commands_oldest(), nullptr);
  EXPECT_EQ(store_.commands_oldest()->args(), "SUBJECT \"tab");
  EXPECT_EQ(store_.commands_oldest()->stats, OldStatsVector{});
  EXPECT_EQ(store_.global().num_cmds, 1u);
}

TEST_F(OldStatsStoreTest, UnknownSessionGetsPlaceholder) {
  ASSERT_TRUE(Feed("UPDATE-SESSION\tghost\t" + MailPayload(700, 1, 1)).ok());
  const OldUser* empty = store_.FindUser("");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->num_logins, 1u);
  EXPECT_EQ(empty->stats.tv[0], (Timeval{0, 700}));
  EXPECT_EQ(store_.sessions_newest()->pid, 0);
  EXPECT_EQ(store_.sessions_newest()->service(), "");
}

TEST_F(OldStatsStoreTest, AddUserCountsAuthOnUserDomainGlobalOnly) {
  ASSERT_TRUE(Feed("CONNECT\ts1\tcarol@example.net\timap\t1\trip=127.0.0.1").ok());
  ASSERT_TRUE(Feed("ADD-USER\tcarol@example.net\timap\t" + AuthPayload(1, 0)).ok());
  ASSERT_TRUE(Feed("ADD-USER\tdave@example.net\timap\t" + AuthPayload(0, 1)).ok());
  EXPECT_EQ(store_.FindUser("carol@example.net")->stats.n[15], 1u);  // auth_successes
  EXPECT_EQ(store_.FindUser("dave@example.net")->stats.n[17], 1u);   // auth_failures
  EXPECT_EQ(store_.FindUser("dave@example.net")->num_logins, 0u);
  EXPECT_EQ(store_.FindDomain("example.net")->stats.n[15], 1u);
  EXPECT_EQ(store_.FindDomain("example.net")->stats.n[17], 1u);
  EXPECT_EQ(store_.global().stats.n[15], 1u);
  EXPECT_EQ(store_.sessions_newest()->stats.n[15], 0u);
  EXPECT_EQ(store_.FindIp(*IpAddress::Parse("127.0.0.1"))->stats.n[15], 0u);
}

TEST_F(OldStatsStoreTest, DomainIsTextAfterFirstAt) {
  ASSERT_TRUE(Feed("CONNECT\ts1\ta@b@c\timap\t1").ok());
  ASSERT_TRUE(Feed("CONNECT\ts2\tdave\timap\t1").ok());
  EXPECT_NE(store_.FindDomain("b@c"), nullptr);
  EXPECT_NE(store_.FindDomain(""), nullptr);
}

TEST_F(OldStatsStoreTest, DuplicateConnectIsRejected) {
  ASSERT_TRUE(Feed("CONNECT\ts1\tu\timap\t1").ok());
  EXPECT_EQ(Feed("CONNECT\ts1\tu\timap\t2").reason(), "duplicate_session");
  EXPECT_EQ(store_.global().num_logins, 1u);
}

TEST_F(OldStatsStoreTest, IdleSessionsAreDisconnectedAfterFifteenMinutes) {
  ASSERT_TRUE(Feed("CONNECT\ts1\tu\timap\t1").ok());
  ASSERT_TRUE(Feed("CONNECT\ts2\tv\timap\t2").ok());
  clock_.Advance(10min);
  ASSERT_TRUE(Feed("UPDATE-SESSION\ts2\t" + MailPayload(1, 1, 1)).ok());
  clock_.Advance(5min);
  store_.Tick();
  EXPECT_EQ(store_.global().num_connected_sessions, 1u);
  EXPECT_EQ(store_.FindUser("v")->sessions->disconnected, false);
  clock_.Advance(10min);
  store_.Tick();
  EXPECT_EQ(store_.global().num_connected_sessions, 0u);
}

TEST_F(OldStatsStoreTest, ResetKeepsConnectedAndObjects) {
  ASSERT_TRUE(Feed("CONNECT\ts1\tu\timap\t1").ok());
  ASSERT_TRUE(Feed("UPDATE-SESSION\ts1\t" + MailPayload(9, 9, 9)).ok());
  clock_.Advance(3s);
  store_.Reset();
  EXPECT_EQ(store_.global().num_logins, 0u);
  EXPECT_EQ(store_.global().num_connected_sessions, 1u);
  EXPECT_EQ(store_.global().stats, OldStatsVector{});
  EXPECT_EQ(store_.global().last_update, TimePoint{});
  EXPECT_EQ(store_.global().reset_timestamp, 1'795'304'658);
  EXPECT_EQ(store_.FindUser("u")->num_logins, 1u);
}

TEST_F(OldStatsStoreTest, EvictsOldestFinishedEntriesFirst) {
  OldStatsOptions small;
  small.memory_limit_bytes = 64 * 1024;
  store_.SetOptions(small);
  for (int i = 0; i < 2000; ++i) {
    std::string id = "s" + std::to_string(i);
    ASSERT_TRUE(Feed("CONNECT\t" + id + "\tuser" + std::to_string(i) + "@d" +
                     std::to_string(i % 7) + "\timap\t1\trip=10.0.0." + std::to_string(i % 200))
                    .ok());
    ASSERT_TRUE(Feed("UPDATE-CMD\t" + id + "\t1\t\tNOOP\t\t" + MailPayload(1, 1, 1)).ok());
    ASSERT_TRUE(Feed("DISCONNECT\t" + id).ok());
    clock_.Advance(1s);
    ASSERT_LE(store_.memory_used_bytes(), small.memory_limit_bytes);
  }
  EXPECT_GT(store_.evicted(OldLevel::kCommand), 0u);
  EXPECT_GT(store_.evicted(OldLevel::kSession), 0u);
  EXPECT_GT(store_.evicted(OldLevel::kUser), 0u);
  // The newest user survives; the oldest went first.
  EXPECT_NE(store_.FindUser("user1999@d4"), nullptr);
  EXPECT_EQ(store_.FindUser("user0@d0"), nullptr);
  EXPECT_EQ(store_.global().num_logins, 2000u);  // global is never evicted
}

// Commands of connected sessions are never eligible in Dovecot's rounds (the
// "d" flag practically never arrives), so 2.3.19 grows past its limit with
// long sessions. Here the oldest commands go anyway and the limit holds.
TEST_F(OldStatsStoreTest, LimitHoldsWhileLongSessionsRunCommands) {
  OldStatsOptions small;
  small.memory_limit_bytes = 48 * 1024;
  store_.SetOptions(small);
  for (int s = 0; s < 4; ++s)
    ASSERT_TRUE(
        Feed("CONNECT\tlong" + std::to_string(s) + "\tu" + std::to_string(s) + "\timap\t1").ok());
  for (int i = 1; i <= 5000; ++i) {
    std::string id = "long" + std::to_string(i % 4);
    ASSERT_TRUE(
        Feed("UPDATE-CMD\t" + id + "\t" + std::to_string(i) + "\t\tNOOP\t\t" + MailPayload(1, 1, 1))
            .ok());
    ASSERT_LE(store_.memory_used_bytes(), small.memory_limit_bytes);
  }
  EXPECT_EQ(store_.global().num_cmds, 5000u);
  EXPECT_EQ(store_.global().num_connected_sessions, 4u);
  EXPECT_GT(store_.evicted(OldLevel::kCommand), 4000u);
  // The newest command is still there; a continuation of an evicted one is ignored.
  EXPECT_TRUE(Feed("UPDATE-CMD\tlong1\t4997\tc\t" + MailPayload(2, 2, 2)).ok());
  EXPECT_EQ(Feed("UPDATE-CMD\tlong1\t1\tc\t" + MailPayload(2, 2, 2)).reason(), "expired_command");
}

// Commands leave oldest first, so a session's list loses its oldest ones
// only; once all are gone, new ones start it afresh.
TEST_F(OldStatsStoreTest, SessionCommandsSurviveEvictionOfTheirOlderOnes) {
  OldStatsOptions small;
  small.memory_limit_bytes = 48 * 1024;
  store_.SetOptions(small);
  ASSERT_TRUE(Feed("CONNECT\tquiet\tq\timap\t1").ok());
  ASSERT_TRUE(Feed("CONNECT\tbusy\tb\timap\t2").ok());
  ASSERT_TRUE(Feed("UPDATE-CMD\tquiet\t1\t\tNOOP\t\t" + MailPayload(1, 1, 1)).ok());
  for (int i = 1; i <= 2000; ++i) {
    ASSERT_TRUE(
        Feed("UPDATE-CMD\tbusy\t" + std::to_string(i) + "\t\tNOOP\t\t" + MailPayload(1, 1, 1))
            .ok());
  }
  EXPECT_EQ(Feed("UPDATE-CMD\tquiet\t1\tc\t" + MailPayload(2, 2, 2)).reason(), "expired_command");
  ASSERT_TRUE(Feed("UPDATE-CMD\tquiet\t2\t\tSELECT\tINBOX\t" + MailPayload(1, 1, 1)).ok());
  ASSERT_TRUE(Feed("UPDATE-CMD\tquiet\t3\t\tFETCH\t1:*\t" + MailPayload(1, 1, 1)).ok());
  EXPECT_TRUE(Feed("UPDATE-CMD\tquiet\t2\tc\t" + MailPayload(3, 3, 3)).ok());
  EXPECT_TRUE(Feed("UPDATE-CMD\tquiet\t3\tcd\t" + MailPayload(4, 4, 4)).ok());
  // 3 is done (its id cleared, as in Dovecot); 2 is still running.
  EXPECT_EQ(Feed("UPDATE-CMD\tquiet\t2\t\tSELECT\tINBOX\t" + MailPayload(1, 1, 1)).reason(),
            "duplicate_command");
  EXPECT_TRUE(Feed("UPDATE-CMD\tbusy\t2000\tc\t" + MailPayload(5, 5, 5)).ok());
}

TEST_F(OldStatsStoreTest, ConnectedSessionsAreNeverEvicted) {
  OldStatsOptions tiny;
  tiny.memory_limit_bytes = 1024;
  store_.SetOptions(tiny);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(
        Feed("CONNECT\ts" + std::to_string(i) + "\tu" + std::to_string(i) + "\timap\t1").ok());
  EXPECT_EQ(store_.count(OldLevel::kSession), 50u);
  EXPECT_EQ(store_.global().num_connected_sessions, 50u);
}

// A million distinct users (as auth reports them) under Dovecot's default
// 16 MB limit: the accounted memory never exceeds the limit, and neither
// does what malloc really holds for the store.
TEST_F(OldStatsStoreTest, MillionUsersStayWithinSixteenMegabytes) {
  OldStatsOptions opts;  // memory_limit 16M, user_min_time 1h
  FakeClock clock(TimePoint(std::chrono::seconds(1'795'304'655)));
  const std::size_t heap_before = mallinfo2().uordblks;
  {
    OldStatsStore store(opts, clock);
    ingest::DovecotOldStatsDecoder decoder;
    const std::string payload = AuthPayload(1, 0);
    Event e;
    std::string line;
    std::size_t peak = 0, peak_heap = 0;
    for (int i = 0; i < 1'000'000; ++i) {
      line = "ADD-USER\tuser" + std::to_string(i) + "@domain" + std::to_string(i % 5000) +
             ".example\timap\t" + payload;
      auto r = decoder.Decode(line, clock.Now(), e);
      ASSERT_TRUE(r.status.ok());
      ASSERT_TRUE(store.Apply(e).ok());
      peak = std::max(peak, store.memory_used_bytes());
      if (i % 4096 == 0) peak_heap = std::max(peak_heap, mallinfo2().uordblks - heap_before);
      if (i % 1000 == 0) clock.Advance(1s);
    }
    EXPECT_LE(peak, opts.memory_limit_bytes);
    EXPECT_GT(peak, opts.memory_limit_bytes * 9 / 10);  // the budget is really used
    // Real heap growth includes the decoder's and the line's buffers (a few
    // KiB). Sanitizer allocators do not report through mallinfo2().
#if !defined(__SANITIZE_ADDRESS__)
    EXPECT_LE(peak_heap, opts.memory_limit_bytes + 64 * 1024);
    EXPECT_GT(peak_heap, opts.memory_limit_bytes / 2);
#endif
    EXPECT_GT(store.evicted(OldLevel::kUser), 900'000u);
    EXPECT_EQ(store.global().stats.n[15], 1'000'000u);  // auth_successes: nothing lost
  }
}

}  // namespace
}  // namespace mailscope::stats
