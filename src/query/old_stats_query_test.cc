#include "query/old_stats_query.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/base64.h"
#include "ingest/dovecot_old_stats.h"

namespace mailscope::query {
namespace {

using namespace std::chrono_literals;

const std::string kZeros =
    "0.0\t0.0\t0.0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0";

std::string SessionPayload(std::int64_t user_cpu_us) {
  std::uint8_t buf[5 + 136] = {};
  std::memcpy(buf, "mail", 5);
  std::memcpy(buf + 5 + 8, &user_cpu_us, 8);
  return Base64Encode(buf, sizeof buf);
}

class OldStatsQueryTest : public ::testing::Test {
 protected:
  void Feed(std::string line) {
    Event e;
    auto r = decoder_.Decode(line, clock_.Now(), e);
    ASSERT_TRUE(r.emit) << line;
    (void)store_.Apply(e);
  }
  Result<std::string> Ask(std::string request) {
    auto req = ParseOldStatsRequest(request);
    if (!req.ok()) return req.status();
    std::string out;
    AnswerExport(store_, *req, out);
    return out;
  }
  std::string Header(stats::OldLevel level) {
    return std::string(OldStatsFixedHeader(level)) + "\t" + stats::OldStatsHeader() + "\n";
  }

  FakeClock clock_{TimePoint(std::chrono::seconds(1'795'304'655) + 123us)};
  stats::OldStatsStore store_{stats::OldStatsOptions{}, clock_};
  ingest::DovecotOldStatsDecoder decoder_;
};

TEST_F(OldStatsQueryTest, EmptyLevelsAnswerBareNewline) {
  for (const char* level : {"command", "session", "user", "domain", "ip"})
    EXPECT_EQ(*Ask(std::string("EXPORT\t") + level), "\n") << level;
  EXPECT_EQ(*Ask("EXPORT\tglobal"),
            Header(stats::OldLevel::kGlobal) + "1795304655\t0.000000\t0\t0\t0\t" + kZeros + "\n\n");
}

TEST_F(OldStatsQueryTest, RowsAreByteIdentical) {
  Feed("CONNECT\tHlsvK9Jgiu1/AAAB\tcarol@example.com\timap\t11843\tlip=127.0.0.1\trip=127.0.0.1");
  clock_.Advance(2s);
  Feed("UPDATE-SESSION\tHlsvK9Jgiu1/AAAB\t" + SessionPayload(2863));
  Feed("UPDATE-CMD\tHlsvK9Jgiu1/AAAB\t1\t\tSELECT\tIN\001tBOX\t" + SessionPayload(15));
  EXPECT_EQ(*Ask("EXPORT\tsession"),
            Header(stats::OldLevel::kSession) +
                "HlsvK9Jgiu1/"
                "AAAB\tcarol@example.com\t127.0.0.1\timap\t11843\t1\t1795304657.000123\t1\t0.2863" +
                kZeros.substr(3) + "\n\n");
  EXPECT_EQ(*Ask("EXPORT\tcommand"),
            Header(stats::OldLevel::kCommand) +
                "SELECT\tIN\001tBOX\tHlsvK9Jgiu1/AAAB\tcarol@example.com\t1795304657.000123\t0.15" +
                kZeros.substr(3) + "\n\n");
  EXPECT_EQ(*Ask("EXPORT\tdomain"),
            Header(stats::OldLevel::kDomain) +
                "example.com\t1795304655\t1795304657.000123\t1\t1\t1\t0.2863" + kZeros.substr(3) +
                "\n\n");
  EXPECT_EQ(*Ask("EXPORT\tip"), Header(stats::OldLevel::kIp) +
                                    "127.0.0.1\t1795304655\t1795304657.000123\t1\t1\t1\t0.2863" +
                                    kZeros.substr(3) + "\n\n");
}

TEST_F(OldStatsQueryTest, FiltersFollowDovecot) {
  Feed("CONNECT\ta1\talice@example.com\timap\t1\trip=10.0.0.1");
  Feed("CONNECT\tb1\tbob@example.org\timap\t2\trip=10.0.0.2");
  Feed("CONNECT\tl1\tbob@example.org\tlmtp\t3\tlip=\trip=");  // no IP, as LMTP over UNIX
  clock_.Advance(10s);
  Feed("CONNECT\tc1\tcarol@example.com\tpop3\t4\trip=2001:db8::7");
  Feed("DISCONNECT\ta1");

  auto rows = [&](const std::string& req) {
    std::string out = *Ask(req);
    if (out == "\n") return -1;  // no header at all
    return static_cast<int>(std::count(out.begin(), out.end(), '\n')) - 2;
  };
  EXPECT_EQ(rows("EXPORT\tsession"), 4);
  EXPECT_EQ(rows("EXPORT\tsession\tconnected"), 3);
  EXPECT_EQ(rows("EXPORT\tsession\tuser=bob*"), 2);
  EXPECT_EQ(rows("EXPORT\tsession\tuser=nobody*"), 0);  // header + empty line
  EXPECT_EQ(rows("EXPORT\tsession\tuser=nobody"), -1);  // exact lookup, nothing found
  EXPECT_EQ(rows("EXPORT\tsession\tuser=bob@example.org"), 2);
  EXPECT_EQ(rows("EXPORT\tsession\tip=10.0.0.0/8"), 2);  // the LMTP session is no match
  EXPECT_EQ(rows("EXPORT\tsession\tip=10.0.0.2"), 1);
  EXPECT_EQ(rows("EXPORT\tsession\tip=10.9.9.9"), -1);
  EXPECT_EQ(rows("EXPORT\tsession\tip=2001:db8::/32"), 1);
  EXPECT_EQ(rows("EXPORT\tsession\tip=0.0.0.0/0"), 4);  // /0 disables the filter
  EXPECT_EQ(rows("EXPORT\tsession\tsince=1795304660"), 1);
  EXPECT_EQ(rows("EXPORT\tsession\tsession=b1"), 1);
  EXPECT_EQ(rows("EXPORT\tsession\tconnected\tdomain=example.com"), 1);
  EXPECT_EQ(rows("EXPORT\tuser\tconnected"), 2);
  EXPECT_EQ(rows("EXPORT\tuser\tdomain=example.com"), 2);
  EXPECT_EQ(rows("EXPORT\tuser\tdomain=nomatch"), -1);
  EXPECT_EQ(rows("EXPORT\tuser\tip=10.0.0.0/8"), 2);
  EXPECT_EQ(rows("EXPORT\tdomain\tuser=ali*"), 1);
  EXPECT_EQ(rows("EXPORT\tdomain\tconnected"), 2);
  EXPECT_EQ(rows("EXPORT\tdomain\tdomain=nomatch"), -1);
  EXPECT_EQ(rows("EXPORT\tdomain\tdomain=example.*"), 2);
  EXPECT_EQ(rows("EXPORT\tip\tconnected"), 2);
  EXPECT_EQ(rows("EXPORT\tip\tuser=ali*"), 3);  // user= alone is ignored at ip level
  EXPECT_EQ(rows("EXPORT\tip\tconnected\tuser=ali*"), 0);
  EXPECT_EQ(rows("EXPORT\tglobal\tuser=nobody"), 1);  // filters ignored
  EXPECT_EQ(rows("EXPORT\tcommand\tconnected"), -1);  // no commands at all
  EXPECT_EQ(rows("EXPORT\tsession\tbogus=1"), 4);     // unknown filters ignored
}

TEST_F(OldStatsQueryTest, OrderIsNewestFirstExceptCommands) {
  Feed("CONNECT\ts1\tfirst\timap\t1");
  Feed("CONNECT\ts2\tsecond\timap\t1");
  Feed("UPDATE-CMD\ts1\t1\t\tA\t\t" + SessionPayload(1));
  Feed("UPDATE-CMD\ts2\t1\t\tB\t\t" + SessionPayload(1));
  std::string users = *Ask("EXPORT\tuser");
  EXPECT_LT(users.find("second"), users.find("first"));
  std::string cmds = *Ask("EXPORT\tcommand");
  EXPECT_LT(cmds.find("\nA\t"), cmds.find("\nB\t"));
}

TEST_F(OldStatsQueryTest, BadRequestsCloseWithoutReply) {
  struct Case {
    const char* request;
    const char* message;
  } cases[] = {
      {"EXPORT", "Missing level parameter"},
      {"EXPORT\tbogus", "Invalid level"},
      {"EXPORT\tSession", "Invalid level"},
      {"EXPORT\tsession\tip=notanip", "Invalid ip filter"},
      {"EXPORT\tsession\tip=1.2.3.4/40", "Invalid ip filter"},
      {"EXPORT\tsession\tsince=-1", "Invalid since filter"},
      {"EXPORT\tsession\tsince=", "Invalid since filter"},
      {"NOSUCHCMD", "Unknown command"},
      {"", "Empty command"},
  };
  for (const Case& c : cases) {
    auto r = Ask(c.request);
    ASSERT_FALSE(r.ok()) << c.request;
    EXPECT_EQ(r.status().message(), c.message) << c.request;
  }
  std::string line = "RESET\tignored";
  auto r = ParseOldStatsRequest(line);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, OldStatsRequest::Kind::kReset);
}

}  // namespace
}  // namespace mailscope::query
