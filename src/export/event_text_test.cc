#include "export/event_text.h"

#include <gtest/gtest.h>

#include "catalog/dovecot_old_stats.h"

namespace mailscope::exporter {
namespace {

TEST(EventTextTest, FieldsOfTheChainOnceNearestFirst) {
  Event global;
  global.Add(InternName("hostname"), Value::String("vm"));
  global.categories.push_back(InternName("service:imap"));
  Event parent;
  parent.Add(InternName("user"), Value::String("carol@example.com"));
  parent.Add(InternName("cmd_name"), Value::String("parent-value"));
  parent.categories.push_back(InternName("imap"));
  parent.categories.push_back(InternName("service:imap"));
  Event e;
  e.source = Source::kDovecot;
  e.name = InternName("imap_command_finished");
  e.time = TimePoint(std::chrono::microseconds(1795305644195092));
  e.parent = &parent;
  e.global = &global;
  e.Add(InternName("cmd_name"), Value::String("SELECT"));
  e.Add(InternName("tagged_reply"), Value::String("OK [READ-WRITE] Select \"done\""));
  e.Add(InternName("duration"), Value::Int(3350));
  e.Add(InternName("bytes_out"), Value::Uint(311));
  e.Add(InternName("last_run_time"), Value::Tv({1795305644, 195081}));
  e.Add(InternName("ok"), Value::Bool(true));
  e.Add(InternName("empty"), Value::String(""));
  e.Add(InternName("ctl"), Value::String("a\tb\x01"));
  std::string out;
  AppendEventText(e, out);
  EXPECT_EQ(out,
            "2026-11-22T00:00:44.195092Z dovecot imap_command_finished "
            "categories=imap,service:imap cmd_name=SELECT "
            "tagged_reply=\"OK [READ-WRITE] Select \\\"done\\\"\" duration=3350 bytes_out=311 "
            "last_run_time=1795305644.195081 ok=true empty=\"\" ctl=\"a\\tb\\x01\" "
            "user=carol@example.com hostname=vm");
}

TEST(EventTextTest, UnnamedEventAndRecordColumns) {
  const RecordSchema* schema = &catalog::kOldStatsAuthRecord;
  std::vector<unsigned char> data(schema->size, 0);
  data[0] = 3;  // auth_successes (u32, little endian)
  Event e;
  e.source = Source::kDovecotOldStats;
  e.Add(InternName("auth"), Value::Record(schema, data.data()));
  std::string out;
  AppendEventText(e, out);
  EXPECT_EQ(out.substr(0, 46), "1970-01-01T00:00:00.000000Z dovecot_old_stats ");
  EXPECT_NE(out.find(" - auth_successes=3 auth_master_successes=0"), std::string::npos) << out;
}

}  // namespace
}  // namespace mailscope::exporter
