#include "export/carbon.h"

#include <gtest/gtest.h>

namespace mailscope::exporter {
namespace {

TEST(CarbonTest, RendersDovecotLayout) {
  stats::OldGlobal g;
  g.num_logins = 3;
  g.num_cmds = 43;
  g.num_connected_sessions = 1;
  g.reset_timestamp = 1795305643;
  g.stats.tv[0] = {0, 29409};
  g.stats.n[0] = 786;
  std::string out = RenderCarbon(g, "dccapture", 1795305648);
  EXPECT_TRUE(
      out.starts_with("dovecot.dccapture.global.logins 3 1795305648\r\n"
                      "dovecot.dccapture.global.cmds 43 1795305648\r\n"
                      "dovecot.dccapture.global.connected_sessions 1 1795305648\r\n"
                      "dovecot.dccapture.global.last_reset 1795305643 1795305648\r\n"
                      "dovecot.dccapture.global.user_cpu 0.29409 1795305648\r\n"))
      << out;
  EXPECT_NE(out.find("dovecot.dccapture.global.min_faults 786 1795305648\r\n"), std::string::npos);
  EXPECT_NE(out.find("dovecot.dccapture.global.auth_cache_misses 0 1795305648\r\n"),
            std::string::npos);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4 + 24);
}

}  // namespace
}  // namespace mailscope::exporter
