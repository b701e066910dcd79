#include "ingest/qmail_tracker.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "ingest/log_lines.h"

namespace mailscope::ingest {
namespace {

// (seconds after the start, line) of one log.
struct Line {
  int ms;
  std::string_view text;
};

// One SMTP session that is accepted, one refused by rblsmtpd, a message with
// a local success, a deferral and a later success and failure.
const Line kLog[] = {
    {0, "tcpserver: status: 1/100"},
    {0, "tcpserver: pid 28113 from 198.51.100.23"},
    {1, "tcpserver: ok 28113 mx.example.org:192.0.2.25:25 mail.example.net:198.51.100.23::52144"},
    {5, "tcpserver: pid 28114 from 203.0.113.200"},
    {6, "rblsmtpd: 203.0.113.200 pid 28114: 451 Blocked"},
    {100,
     "qmail-smtpd: pid 28113 Reject::RCPT::Failed_Rcptto P:ESMTP S:198.51.100.23:mail.example.net "
     "H:helo.example.net F:news@example.net T:nosuchuser@example.org"},
    {200,
     "qmail-smtpd: pid 28113 Accept::RCPT::Recipients_Cdb P:ESMTP S:198.51.100.23:mail.example.net "
     "H:helo.example.net F:news@example.net T:bob@example.org"},
    {300, "new msg 77"},
    {301, "info msg 77: bytes 953 from <news@example.net> qp 617 uid 89"},
    {302, "starting delivery 1: msg 77 to local bob@example.org"},
    {303, "starting delivery 2: msg 77 to remote carol@remote.example"},
    {400, "delivery 1: success: did_1+0+0/"},
    {500, "tcpserver: end 28113 status 0"},
    {900, "delivery 2: deferral: Connected_to_192.0.2.62_but_connection_died._(#4.4.2)/"},
    {60500, "tcpserver: end 28114 status 0"},
    {61000, "starting delivery 3: msg 77 to remote carol@remote.example"},
    {61200, "delivery 3: success: 192.0.2.60_accepted_message./"},
    {61300, "end msg 77"},
    {61400, "delivery 9: failure: no_start_seen/"},
};

const TimePoint kStart = TimePoint{} + std::chrono::seconds(1'700'000'000);

struct Run {
  std::vector<std::string> dumps;  // one per line: name and fields
};

std::string Dump(const Event& e) {
  std::string s(NameText(e.name));
  for (const Field& f : e.fields) {
    s += ' ';
    s += NameText(f.key);
    s += '=';
    switch (f.value.type()) {
      case Value::Type::kInt:
        s += std::to_string(f.value.as_int());
        break;
      case Value::Type::kString:
        s += f.value.as_string();
        break;
      case Value::Type::kBool:
        s += f.value.as_bool() ? "true" : "false";
        break;
      default:
        s += '?';
    }
  }
  return s;
}

// Runs the log through a decoder and tracker; saves and loads the tracker's
// state before line `split` (none when split < 0).
std::vector<std::string> RunLog(int split) {
  QmailLineDecoder decoder;
  auto tracker = std::make_unique<QmailTracker>();
  std::vector<std::string> out;
  int i = 0;
  for (const Line& l : kLog) {
    if (i++ == split) {
      const std::string saved = tracker->Save();
      tracker = std::make_unique<QmailTracker>();
      EXPECT_TRUE(tracker->Load(saved).ok());
    }
    Event e;
    e.source = Source::kQmailLog;
    e.time = kStart + std::chrono::milliseconds(l.ms);
    EXPECT_TRUE(decoder.Decode(l.text, e).ok()) << l.text;
    tracker->Apply(e);
    out.push_back(Dump(e));
  }
  return out;
}

std::string Find(const std::vector<std::string>& dumps, std::string_view prefix) {
  for (const std::string& d : dumps)
    if (d.starts_with(prefix)) return d;
  return {};
}

TEST(QmailTrackerTest, StitchesSessionsByPid) {
  const auto dumps = RunLog(-1);
  const std::string end = Find(dumps, "tcpserver::end program=tcpserver pid=28113");
  EXPECT_NE(end.find("remote_ip=198.51.100.23"), std::string::npos) << end;
  EXPECT_NE(end.find("remote_host=mail.example.net"), std::string::npos) << end;
  EXPECT_NE(end.find("local_port=25"), std::string::npos) << end;
  EXPECT_NE(end.find("helo=helo.example.net"), std::string::npos) << end;
  EXPECT_NE(end.find("mail_from_domain=example.net"), std::string::npos) << end;
  EXPECT_NE(end.find("accepted=1 rejected=1"), std::string::npos) << end;
  EXPECT_NE(end.find("duration=500000"), std::string::npos) << end;
  const std::string rbl = Find(dumps, "tcpserver::end program=tcpserver pid=28114");
  EXPECT_NE(rbl.find("rbl=451"), std::string::npos) << rbl;
  EXPECT_NE(rbl.find("duration=60495000"), std::string::npos) << rbl;
}

TEST(QmailTrackerTest, JoinsDeliveriesToMessagesAsMatchup) {
  const auto dumps = RunLog(-1);
  const std::string first =
      Find(dumps, "qmail-send::delivery::success program=qmail-send delivery=1");
  EXPECT_NE(first.find("msg=77 channel=local recipient=bob@example.org"), std::string::npos)
      << first;
  EXPECT_NE(first.find("xdelay=98000"), std::string::npos) << first;
  EXPECT_NE(first.find("bytes=953 sender=news@example.net sender_domain=example.net"),
            std::string::npos)
      << first;
  EXPECT_NE(first.find("ddelay=100000"), std::string::npos) << first;
  const std::string deferral = Find(dumps, "qmail-send::delivery::deferral");
  EXPECT_NE(deferral.find("recipient_domain=remote.example"), std::string::npos) << deferral;
  EXPECT_EQ(deferral.find("ddelay"), std::string::npos) << deferral;
  const std::string end = Find(dumps, "qmail-send::end_msg");
  EXPECT_NE(end.find("qtime=61000000"), std::string::npos) << end;
  EXPECT_NE(end.find("delivered=2 deferred=1 failed=0 complete=true"), std::string::npos) << end;
  // A result without its start is left as it is.
  EXPECT_EQ(dumps.back(),
            "qmail-send::delivery::failure program=qmail-send delivery=9 "
            "result=failure report=no_start_seen/");
}

TEST(QmailTrackerTest, SavedStateJoinsAcrossEverySplit) {
  const auto whole = RunLog(-1);
  for (int split = 0; split <= static_cast<int>(std::size(kLog)); ++split) {
    EXPECT_EQ(RunLog(split), whole) << "split before line " << split;
  }
}

TEST(QmailTrackerTest, ExitingForgetsDeliveriesAndReusedPidsAreCounted) {
  QmailLineDecoder decoder;
  QmailTracker tracker;
  Event e;
  for (std::string_view line :
       {"starting delivery 1: msg 5 to local a@b", "status: exiting", "delivery 1: success: x/",
        "tcpserver: pid 4 from 192.0.2.1", "tcpserver: pid 4 from 192.0.2.2"}) {
    ASSERT_TRUE(decoder.Decode(line, e).ok());
    tracker.Apply(e);
  }
  EXPECT_EQ(tracker.figures().results_unmatched, 1u);
  EXPECT_EQ(tracker.figures().sessions_replaced, 1u);
  EXPECT_EQ(tracker.figures().sessions_open, 1u);
}

TEST(QmailTrackerTest, TablesAreBounded) {
  QmailLineDecoder decoder;
  QmailTracker tracker(
      QmailTrackerLimits{.max_sessions = 10, .max_messages = 10, .max_deliveries = 10});
  Event e;
  for (int i = 0; i < 100; ++i) {
    for (const std::string& line :
         {"tcpserver: pid " + std::to_string(i) + " from 192.0.2.1", "new msg " + std::to_string(i),
          "starting delivery " + std::to_string(i) + ": msg 1 to local a@b"}) {
      ASSERT_TRUE(decoder.Decode(line, e).ok());
      tracker.Apply(e);
    }
  }
  const QmailTrackerFigures f = tracker.figures();
  EXPECT_EQ(f.sessions_open, 10u);
  EXPECT_EQ(f.messages_queued, 10u);
  EXPECT_EQ(f.deliveries_open, 10u);
  EXPECT_EQ(f.evicted, 270u);
}

// A state is saved as one text whatever order its tables hold the entries
// in: a table that grew and then emptied iterates differently from one just
// loaded with the same entries.
TEST(QmailTrackerTest, SavedTextDoesNotDependOnTableHistory) {
  QmailLineDecoder decoder;
  QmailTracker tracker;
  Event e;
  auto apply = [&](const std::string& line) {
    ASSERT_TRUE(decoder.Decode(line, e).ok()) << line;
    tracker.Apply(e);
  };
  for (int i = 1; i <= 300; ++i) {
    const std::string n = std::to_string(i);
    apply("tcpserver: pid " + n + " from 192.0.2." + std::to_string(i % 250 + 1));
    apply("new msg " + n);
    apply("starting delivery " + n + ": msg " + n + " to local u" + n + "@example.org");
  }
  for (int i = 1; i <= 300; ++i) {
    if (i % 2 == 0) continue;
    const std::string n = std::to_string(i);
    apply("tcpserver: end " + n + " status 0");
    apply("delivery " + n + ": success: did_1+0+0/");
    apply("end msg " + n);
  }
  const std::string saved = tracker.Save();
  QmailTracker loaded;
  ASSERT_TRUE(loaded.Load(saved).ok());
  EXPECT_EQ(loaded.Save(), saved);
}

TEST(QmailTrackerTest, LoadRejectsGarbage) {
  QmailTracker tracker;
  EXPECT_FALSE(tracker.Load("").ok());
  EXPECT_FALSE(tracker.Load("other 1\n").ok());
  EXPECT_FALSE(tracker.Load("qmail-tracker 1\ns\t1\n").ok());
  EXPECT_FALSE(tracker.Load("qmail-tracker 1\nm\tx\t1\t1\t1\t1\t1\t1\t1\ta\n").ok());
  EXPECT_FALSE(tracker.Load("qmail-tracker 1\nz\n").ok());
  EXPECT_TRUE(tracker.Load("qmail-tracker 1\n").ok());
}

}  // namespace
}  // namespace mailscope::ingest
