#include "cli/log_report.h"

#include <gtest/gtest.h>

#include <string>

#include "ingest/qmail_log.h"

namespace mailscope::cli {
namespace {

// Rows past the bound share one "(other)" row: a log with more distinct
// addresses than that does not grow the report without end.
TEST(LogReportTest, TopTablesAreBounded) {
  ingest::QmailLineDecoder decoder;
  LogReport report;
  Event e;
  const int kDistinct = 100'000 + 5;
  for (int i = 0; i < kDistinct; ++i) {
    const std::string line = "tcpserver: pid 1 from 10." + std::to_string(i >> 16) + "." +
                             std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
    ASSERT_TRUE(decoder.Decode(line, e).ok()) << line;
    report.Consume(e);
  }
  const std::string json = report.Json(LogReport::Input{}, 200'000);
  EXPECT_NE(json.find("{\"key\":\"(other)\",\"connections\":5,"), std::string::npos);
  EXPECT_NE(json.find("\"connections\":100005"), std::string::npos);
  const std::size_t begin = json.find("\"ips\":["), end = json.find("\"helos\":");
  std::size_t rows = 0;
  for (std::size_t at = json.find("{\"key\":", begin); at < end;
       at = json.find("{\"key\":", at + 1)) {
    ++rows;
  }
  EXPECT_EQ(rows, 100'001u);  // the bound, and "(other)"
}

}  // namespace
}  // namespace mailscope::cli
