#include "ingest/dovecot_stats_writer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/event_router.h"
#include "core/event_testing.h"
#include "filter/filter.h"
#include "ingest/dovecot_captures_testing.h"

namespace mailscope::ingest {
namespace {

using Emit = StatsWriterResult::Emit;

// Lines of the reference's worked examples and of
// tests/data/dovecot-2.3.19/stats-writer-wire.txt, all real 2.3.19.1 traffic.
constexpr std::string_view kVersion = "VERSION\tstats-client\t4\t0";
constexpr std::string_view kImapCategories[] = {
    "CATEGORY\tservice:imap",  "CATEGORY\tauth-client",      "CATEGORY\timap",
    "CATEGORY\tstorage",       "CATEGORY\tmaildir\tstorage", "CATEGORY\tfs",
    "CATEGORY\tmail-index",    "CATEGORY\tmailbox\tstorage", "CATEGORY\tmail-cache",
    "CATEGORY\tmail\tmailbox",
};
constexpr std::string_view kSessionBegin =
    "BEGIN\t9\t0\t0\t1795304655\t253300\tsmain.c\t250\tcservice:imap\tcimap\tSuser\talice@"
    "example.com\tSlocal_ip\t127.0.0.1\tIlocal_port\t14143\tSremote_ip\t127.0.0.1\tIremote_"
    "port\t58730\tSsession\t+0898NFgauV/AAAB";
constexpr std::string_view kSelectFinished =
    "EVENT\t0\t9\t0\t1795304655\t257129\tsimap-client.c\t1016\tl1795304655\t262517\tnimap_"
    "command_finished\tScmd_tag\tMJNG2\tScmd_name\tSELECT\tScmd_input_name\tSELECT\tScmd_"
    "args\tINBOX\tScmd_human_args\tINBOX\tStagged_reply_state\tOK\tStagged_reply\tOK "
    "[READ-WRITE] Select completed\tTlast_run_time\t1795304655\t257107\tIrunning_"
    "usecs\t5352\tIlock_wait_usecs\t336\tIbytes_in\t5\tIbytes_out\t311\tLreason_code\t1\timap:"
    "cmd_select\tSmailbox\tINBOX";
// The APPEND that creates a cache file: a global command event, UPDATEd.
constexpr std::string_view kAppendLines[] = {
    "BEGIN\t18\t9\t0\t1795304727\t733964\tsimap-client.c\t920\tScmd_name\tAPPEND\tLreason_"
    "code\t1\timap:cmd_append\tSmailbox\tINBOX",
    "BEGIN\t12\t9\t0\t1795304727\t733012\tsmail-storage-service.c\t1331\tSuser\terin@example."
    "com\tSsession\tuUOP9NFg7oR/AAAB",
    "BEGIN\t13\t12\t0\t1795304727\t733294\tsmail-user.c\t78\tcstorage\tSuser\terin@example.com",
    "BEGIN\t14\t13\t0\t1795304727\t733833\tsmail-storage.c\t430\tcmaildir",
    "EVENT\t18\t14\t0\t1795304727\t734628\tsmail-cache-decisions.c\t214\tl1795304727\t734889\tnm"
    "ail_cache_decision_changed\tcmailbox\tcmail-index\tcmail-cache\tSfield\tflags\tIlast_"
    "used\t1795304727\tSreason\tadd\tIuid\t0\tSold_decision\tno\tSnew_decision\ttemp\tSmailbox"
    "\tINBOX",
    "UPDATE\t18\t9\t1795304727\t733964\tsimap-client.c\t920\tScmd_name\tAPPEND\tLreason_"
    "code\t1\timap:cmd_append\tSmailbox\tINBOX",
};

// One decoder and the buffer of the line it decoded last: an EVENT's strings
// point into it, so it lives until the next line. Each line overwrites it,
// so every test that reads a parent also checks that stored events own their
// strings.
class Connection {
 public:
  explicit Connection(StatsWriterOptions options = {}) : decoder_(options) {}

  StatsWriterResult Feed(std::string_view line) {
    line_.assign(line);
    return decoder_.Decode(line_);
  }
  // Feeds the lines and expects each to be accepted.
  void FeedOk(std::initializer_list<std::string_view> lines) {
    for (std::string_view line : lines) {
      auto r = Feed(line);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString() << "\n" << line;
    }
  }
  // The handshake and every category an imap process announces.
  void Start() {
    FeedOk({kVersion});
    for (std::string_view c : kImapCategories) FeedOk({c});
  }
  const Event& event() const { return decoder_.event(); }
  DovecotStatsWriterDecoder& decoder() { return decoder_; }

 private:
  DovecotStatsWriterDecoder decoder_;
  std::string line_;
};

// A field's value, kNone when absent.
Value Get(const Event& e, std::string_view key) {
  const Field* f = e.Find(FindName(key));
  return f == nullptr ? Value() : f->value;
}

// Dovecot's lookup: the event, then its parents, then the global event and its parents.
Value Lookup(const Event& e, std::string_view key) {
  for (const Event* chain : {&e, e.global}) {
    for (const Event* p = chain; p != nullptr; p = p->parent) {
      if (Value v = Get(*p, key); v.type() != Value::Type::kNone) return v;
    }
  }
  return {};
}

std::vector<std::string_view> CategoryNames(const Event& e) {
  std::vector<std::string_view> names;
  for (NameId c : e.categories) names.push_back(NameText(c));
  return names;
}

// A line of a few recurring kinds, values drawn anew, now and then changed
// in one token: what the line shapes must answer exactly as the general path.
// A BEGIN mostly takes `fresh_id`, an id not held yet.
std::string RandomStatsWriterLine(std::mt19937& rng, std::uint64_t fresh_id) {
  auto pick = [&](std::initializer_list<const char*> xs) {
    return std::string(xs.begin()[rng() % xs.size()]);
  };
  auto number = [&]() -> std::string {
    switch (rng() % 12) {
      case 0:
        return pick({"", "-", "12x", "99999999999999999999", "-7", "007"});
      default:
        return std::to_string(rng() % 100000);
    }
  };
  auto text = [&]() -> std::string {
    switch (rng() % 10) {
      case 0:
        return "a\001tb";  // an escaped TAB
      case 1:
        return "";
      default:
        return pick({"OK", "SELECT", "INBOX", "Lists/dovecot", "alice@example.com", "x y"});
    }
  };
  const int kind = static_cast<int>(rng() % 4);
  std::vector<std::string> t;
  const std::string cmd = rng() % 8 == 0 ? pick({"BEGIN", "END", "UPDATE"}) : "EVENT";
  t.push_back(cmd);
  t.push_back(rng() % 3 == 0 ? std::to_string(1 + rng() % 6) : "0");
  t.push_back(rng() % 3 == 0 ? std::to_string(1 + rng() % 6) : "0");
  if (cmd == "BEGIN" && rng() % 4 != 0) t[1] = std::to_string(fresh_id);
  if (cmd == "END") return t[0] + "\t" + t[1];
  if (cmd != "UPDATE") t.push_back(rng() % 20 == 0 ? "7" : std::to_string(rng() % 3));
  t.push_back(rng() % 30 == 0 ? "x" : std::to_string(1795304655 + rng() % 100));
  t.push_back(std::to_string(rng() % 1000000));
  t.push_back(kind == 3 ? "smain.c" : "simap-client.c");
  t.push_back(kind == 2 ? "1017" : "1016");
  if (rng() % 4 != 0) {
    t.push_back("l1795304655");
    t.push_back(rng() % 30 == 0 ? "1000000" : std::to_string(rng() % 1000000));
  }
  t.push_back(kind == 1 ? "nmail_opened" : "nimap_command_finished");
  t.push_back(rng() % 20 == 0 ? pick({"cbogus", "cimapx", "cima"}) : "cimap");
  if (kind != 0) t.push_back("cmailbox");
  const std::vector<std::string> keys = {"Scmd_name",    "Ibytes_in", "Tlast_run_time",
                                         "Lreason_code", "Smailbox",  "Ibytes_out"};
  for (std::size_t k = 0; k < keys.size(); ++k) {
    if ((k + static_cast<std::size_t>(kind)) % 3 == 0 && kind != 0) continue;
    std::string key = keys[k];
    if (rng() % 40 == 0) key = "S" + key.substr(1);  // the same key, another type
    if (rng() % 40 == 0) key += "x";                 // a longer key
    t.push_back(key);
    switch (key[0]) {
      case 'S':
        t.push_back(text());
        break;
      case 'I':
        t.push_back(number());
        break;
      case 'T':
        t.push_back(number());
        t.push_back(rng() % 20 == 0 ? "1000000" : std::to_string(rng() % 1000000));
        break;
      case 'L': {
        const std::size_t n = rng() % 4;
        t.push_back(rng() % 25 == 0 ? "9" : std::to_string(n));
        for (std::size_t e = 0; e < n; ++e) t.push_back(text());
        break;
      }
    }
  }
  if (kind == 2) t.push_back("Scmd_name");  // a repeated key: the last value wins
  if (kind == 2) t.push_back("STATUS");
  if (rng() % 30 == 0) t.insert(t.begin() + 8 + static_cast<long>(rng() % (t.size() - 8)), "a");
  if (rng() % 30 == 0) t.pop_back();
  std::string line;
  for (std::size_t i = 0; i < t.size(); ++i) line += (i == 0 ? "" : "\t") + t[i];
  return line;
}

// Two connections fed the same lines, one with the line shapes, one with the
// general path alone (DisableFastPathsForTesting()).
struct ShapedAndGeneral {
  Connection shaped, general;
  ShapedAndGeneral() {
    general.decoder().DisableFastPathsForTesting();
    shaped.Start();
    general.Start();
  }
  StatsWriterResult last;  // the verdict on the line fed last
  // Feeds `line` to both: the same verdict, the same event emitted, the same
  // events held.
  void Feed(const std::string& line) {
    const StatsWriterResult a = last = shaped.Feed(line);
    // Read before the other decoder runs: the decoders of a thread share the
    // EVENT they emit.
    const std::string event = a.emit != Emit::kNone ? DescribeEventForTesting(shaped.event()) : "";
    const StatsWriterResult b = general.Feed(line);
    ASSERT_EQ(a.status.ToString(), b.status.ToString()) << line;
    ASSERT_EQ(a.emit, b.emit) << line;
    ASSERT_EQ(shaped.decoder().held_events(), general.decoder().held_events()) << line;
    ASSERT_EQ(shaped.decoder().live_events(), general.decoder().live_events()) << line;
    ASSERT_EQ(shaped.decoder().state_bytes(), general.decoder().state_bytes()) << line;
    if (a.emit != Emit::kNone) {
      ASSERT_EQ(event, DescribeEventForTesting(general.event())) << line;
    }
  }
};

// The line shapes against the general path alone: the same lines through
// two decoders give the same verdicts and the same events, field for field.
TEST(DovecotStatsWriterDecoderTest, LineShapesAnswerAsTheGeneralPath) {
  std::mt19937 rng(23);
  ShapedAndGeneral both;
  // Parents to point at: BEGIN 1..6 under no parent.
  for (int id = 1; id <= 6; ++id) {
    ASSERT_NO_FATAL_FAILURE(
        both.Feed("BEGIN\t" + std::to_string(id) + "\t0\t0\t1795304655\t1\tsmain.c\t250\tcimap"));
  }
  for (int round = 0; round < 30000; ++round) {
    const std::string line = RandomStatsWriterLine(rng, 100 + static_cast<std::uint64_t>(round));
    ASSERT_NO_FATAL_FAILURE(both.Feed(line));
    if (line.starts_with("END")) {  // and BEGIN it again
      const std::string id = line.substr(4);
      ASSERT_NO_FATAL_FAILURE(
          both.Feed("BEGIN\t" + id + "\t0\t0\t1795304655\t1\tsmain.c\t250\tcimap"));
    }
  }
  EXPECT_TRUE(both.shaped.decoder().CheckInvariantsForTesting());
  // Most EVENT lines took the shapes' path.
  EXPECT_GT(both.shaped.decoder().lines_by_shape(), 5000u);
  EXPECT_EQ(both.general.decoder().lines_by_shape(), 0u);
}

// A line of longer tokens or more items than a shape keeps is decoded by the
// general path every time; one within the bounds takes its shape from the
// second time on.
TEST(DovecotStatsWriterDecoderTest, LinesPastTheShapeBoundsKeepTheGeneralPath) {
  Connection c;
  c.Start();
  const std::string prefix = "EVENT\t0\t0\t0\t1795304655\t1\tsmain.c\t1\tnshape_bounds\t";
  std::string many_items = prefix;
  for (int i = 0; i < 50; ++i) many_items += "Sk" + std::to_string(i) + "\tv\t";
  many_items.pop_back();
  const std::string long_token = prefix + "S" + std::string(520, 'k') + "\tv";
  for (const std::string& line : {many_items, long_token}) {
    for (int round = 0; round < 3; ++round) {
      c.FeedOk({line});
      const std::string key = line == many_items ? "k49" : std::string(520, 'k');
      EXPECT_EQ(Get(c.event(), key).as_string(), "v");
    }
  }
  EXPECT_EQ(c.decoder().lines_by_shape(), 0u);
  const std::string within = prefix + "Sk0\tv\tIk1\t5";
  for (int round = 0; round < 3; ++round) c.FeedOk({within});
  EXPECT_EQ(c.decoder().lines_by_shape(), 2u);
  EXPECT_EQ(Get(c.event(), "k1").as_int(), 5);
}

// Kinds of lines as many as the shapes held each keep theirs: after the
// first round every line but a few is decoded by its shape. More kinds than
// that are answered alike by the general path, and no more shapes are held.
TEST(DovecotStatsWriterDecoderTest, ManyKindsOfLinesKeepTheirShapes) {
  auto line = [](int kind, int round) {
    return "EVENT\t0\t0\t0\t1795304655\t" + std::to_string(round) + "\tsimap-client.c\t" +
           std::to_string(100 + kind) + "\tnimap_command_finished\tScmd_name\tFETCH\tIbytes_in\t" +
           std::to_string(round * 7 + kind);
  };
  constexpr int kRounds = 20;
  for (const int kinds : {32, 40}) {
    SCOPED_TRACE(fmt::format("{} kinds", kinds));
    ShapedAndGeneral both;
    for (int round = 0; round < kRounds; ++round) {
      for (int kind = 0; kind < kinds; ++kind) {
        ASSERT_NO_FATAL_FAILURE(both.Feed(line(kind, round)));
        ASSERT_TRUE(both.last.status.ok()) << both.last.status.ToString();
      }
      EXPECT_LE(both.shaped.decoder().shapes_held(), 32u);
    }
    if (kinds == 32) {
      EXPECT_GE(both.shaped.decoder().lines_by_shape(), 32u * (kRounds - 1) * 9 / 10);
    }
  }
}

// Two kinds of line from one source line, with as many tokens but other
// keys (as Dovecot's mail_user_session_finished), each keep a shape.
TEST(DovecotStatsWriterDecoderTest, TwoKindsOfOneSourceLineKeepTheirShapes) {
  auto line = [](int round) {
    const std::string keys = round % 2 ? "Iutime\t5\tIstime\t" : "Irss\t5\tIvsz\t";
    return "EVENT\t0\t0\t0\t1795304655\t1\tsmail-user.c\t252\tnmail_user_session_finished\t" +
           keys + std::to_string(round);
  };
  ShapedAndGeneral both;
  for (int round = 0; round < 20; ++round) {
    ASSERT_NO_FATAL_FAILURE(both.Feed(line(round)));
    ASSERT_TRUE(both.last.status.ok()) << both.last.status.ToString();
  }
  EXPECT_EQ(both.shaped.decoder().lines_by_shape(), 18u);
  EXPECT_EQ(both.shaped.decoder().shapes_held(), 2u);
}

TEST(DovecotStatsWriterDecoderTest, HandshakeFailuresCloseTheConnection) {
  struct Case {
    std::string line;
    std::string_view reason;
  } cases[] = {
      {"", "invalid_handshake"},
      {"CATEGORY\tservice:imap", "invalid_handshake"},  // no handshake at all
      {std::string(kSessionBegin), "invalid_handshake"},
      {"VERSION\tstats-client\t4", "invalid_handshake"},
      {"VERSION\tstats-client\t4\t0\t0", "invalid_handshake"},
      {"VERSION\tstats-client\tfour\t0", "invalid_handshake"},
      {"VERSION\tstats-client\t4\t-1", "invalid_handshake"},
      {"version\tstats-client\t4\t0", "invalid_handshake"},
      {"VERSION\tstats-server\t4\t0", "wrong_service"},
      {"VERSION\tstats-reader\t4\t0", "wrong_service"},
      {"VERSION\tstats-client\t3\t0", "unsupported_version"},
      {"VERSION\tstats-client\t5\t0", "unsupported_version"},
      {std::string("\x00\xff\x01\t\x80garbage", 12), "invalid_handshake"},
  };
  for (const Case& c : cases) {
    Connection conn;
    auto r = conn.Feed(c.line);
    EXPECT_EQ(r.status.reason(), c.reason) << c.line;
    EXPECT_TRUE(r.close) << c.line;
    EXPECT_EQ(r.emit, Emit::kNone);
    EXPECT_FALSE(conn.decoder().handshake_done());
    // Nothing is decoded after that, not even a good handshake.
    auto after = conn.Feed(kVersion);
    EXPECT_EQ(after.status.reason(), "closed");
    EXPECT_TRUE(after.close);
  }
  Connection minor;  // the minor version is not checked
  EXPECT_FALSE(minor.Feed("VERSION\tstats-client\t4\t9").close);
  EXPECT_TRUE(minor.decoder().handshake_done());
}

TEST(DovecotStatsWriterDecoderTest, BeginIsStoredAndEventsFollowIt) {
  Connection c;
  c.Start();
  EXPECT_EQ(c.decoder().categories(), std::size(kImapCategories));
  auto r = c.Feed(kSessionBegin);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.emit, Emit::kBegin);
  const Event& e = c.event();
  EXPECT_EQ(e.source, Source::kDovecot);
  EXPECT_EQ(e.name, kNoName);
  EXPECT_EQ(e.level, Level::kDebug);
  EXPECT_EQ(e.time, TimePoint(std::chrono::microseconds(1'795'304'655'253'300)));
  EXPECT_EQ(e.span_id, 9u);
  EXPECT_EQ(e.parent_id, 0u);
  EXPECT_EQ(e.parent, nullptr);
  EXPECT_EQ(e.global, nullptr);
  EXPECT_EQ(e.source_file, "main.c");
  EXPECT_EQ(e.source_line, 250u);
  EXPECT_EQ(CategoryNames(e), (std::vector<std::string_view>{"service:imap", "imap"}));
  EXPECT_EQ(Get(e, "user").as_string(), "alice@example.com");
  EXPECT_EQ(Get(e, "local_port").as_int(), 14143);
  EXPECT_EQ(Get(e, "session").as_string(), "+0898NFgauV/AAAB");
  EXPECT_EQ(Get(e, "duration").as_int(), 0);  // as Dovecot stores it on BEGIN-ed events
  EXPECT_EQ(e.fields.size(), 7u);
  EXPECT_EQ(c.decoder().live_events(), 1u);
  EXPECT_TRUE(c.decoder().CheckInvariantsForTesting());

  // The EVENT follows its parent and types its fields.
  r = c.Feed(kSelectFinished);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.emit, Emit::kEvent);
  const Event& ev = c.event();
  EXPECT_EQ(NameText(ev.name), "imap_command_finished");
  EXPECT_EQ(ev.level, Level::kDebug);
  EXPECT_EQ(ev.time, TimePoint(std::chrono::microseconds(1'795'304'655'257'129)));
  EXPECT_EQ(ev.span_id, 0u);
  EXPECT_EQ(ev.parent_id, 9u);
  EXPECT_EQ(ev.source_file, "imap-client.c");
  EXPECT_EQ(ev.source_line, 1016u);
  EXPECT_EQ(Get(ev, "duration").as_int(), 262517 - 257129);
  EXPECT_EQ(Get(ev, "cmd_name").type(), Value::Type::kString);
  EXPECT_EQ(Get(ev, "cmd_name").as_string(), "SELECT");
  EXPECT_EQ(Get(ev, "tagged_reply").as_string(), "OK [READ-WRITE] Select completed");
  EXPECT_EQ(Get(ev, "last_run_time").type(), Value::Type::kTimeval);
  EXPECT_EQ(Get(ev, "last_run_time").as_timeval(), (Timeval{1795304655, 257107}));
  EXPECT_EQ(Get(ev, "running_usecs").type(), Value::Type::kInt);
  EXPECT_EQ(Get(ev, "running_usecs").as_int(), 5352);
  EXPECT_EQ(Get(ev, "reason_code").as_string(), "imap:cmd_select");
  EXPECT_EQ(Get(ev, "mailbox").as_string(), "INBOX");
  EXPECT_EQ(ev.fields.size(), 15u);
  EXPECT_EQ(ev.categories.size(), 0u);
  // Lookups continue at the BEGIN-ed session event.
  ASSERT_NE(ev.parent, nullptr);
  EXPECT_EQ(ev.parent->span_id, 9u);
  EXPECT_EQ(Get(ev, "user").type(), Value::Type::kNone);
  EXPECT_EQ(Lookup(ev, "user").as_string(), "alice@example.com");
  EXPECT_TRUE(ev.parent->categories.contains(FindName("service:imap")));

  auto end = c.Feed("END\t9");
  EXPECT_TRUE(end.status.ok());
  EXPECT_EQ(end.emit, Emit::kNone);
  EXPECT_EQ(c.decoder().live_events(), 0u);
  EXPECT_EQ(c.decoder().held_events(), 0u);
  EXPECT_EQ(c.decoder().state_bytes(), 0u);
  EXPECT_EQ(c.Feed(kSelectFinished).status.reason(), "unknown_parent_event");
}

TEST(DovecotStatsWriterDecoderTest, GlobalEventAndUpdateOfTheAppendExample) {
  Connection c;
  c.Start();
  c.FeedOk({kSessionBegin});
  for (std::size_t i = 0; i < 4; ++i) {
    auto r = c.Feed(kAppendLines[i]);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.emit, Emit::kBegin);
  }
  auto r = c.Feed(kAppendLines[4]);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.emit, Emit::kEvent);
  const Event& e = c.event();
  EXPECT_EQ(NameText(e.name), "mail_cache_decision_changed");
  EXPECT_EQ(Get(e, "duration").as_int(), 734889 - 734628);
  EXPECT_EQ(CategoryNames(e),
            (std::vector<std::string_view>{"mailbox", "storage", "mail-index", "mail-cache"}));
  ASSERT_NE(e.global, nullptr);
  EXPECT_EQ(e.global->span_id, 18u);
  EXPECT_EQ(Get(*e.global, "reason_code").as_string(), "imap:cmd_append");
  // The parent chain: 14 (maildir) -> 13 (storage, user) -> 12 (session) -> 9.
  std::vector<std::uint64_t> chain;
  for (const Event* p = e.parent; p != nullptr; p = p->parent) chain.push_back(p->span_id);
  EXPECT_EQ(chain, (std::vector<std::uint64_t>{14, 13, 12, 9}));
  EXPECT_EQ(Lookup(e, "user").as_string(), "erin@example.com");
  EXPECT_EQ(Lookup(e, "session").as_string(), "uUOP9NFg7oR/AAAB");
  EXPECT_EQ(Lookup(e, "cmd_name").as_string(), "APPEND");  // only on the global event
  EXPECT_EQ(Get(*e.parent, "duration").as_int(), 0);

  // UPDATE: not emitted; parent unchanged; a changed value replaces the old.
  auto u = c.Feed(kAppendLines[5]);
  ASSERT_TRUE(u.status.ok()) << u.status.ToString();
  EXPECT_EQ(u.emit, Emit::kNone);
  c.FeedOk(
      {"UPDATE\t18\t9\t1795304727\t733964\tsimap-client.c\t921\tcimap\tSmailbox\tArchive"
       "\tIbytes_in\t42"});
  c.FeedOk(
      {"EVENT\t0\t18\t0\t1795304727\t733965\tsimap-client.c\t1016\tl1795304727\t741863\tn"
       "imap_command_finished\tScmd_tag\tDMCC2"});
  const Event& finished = c.event();
  const Event& cmd = *finished.parent;
  EXPECT_EQ(cmd.span_id, 18u);
  EXPECT_EQ(Get(finished, "duration").as_int(), 741863 - 733965);
  EXPECT_EQ(Get(cmd, "cmd_name").as_string(), "APPEND");  // kept
  EXPECT_EQ(Get(cmd, "mailbox").as_string(), "Archive");  // overwritten
  EXPECT_EQ(Get(cmd, "bytes_in").as_int(), 42);           // added
  EXPECT_EQ(Get(cmd, "duration").as_int(), 0);            // kept from BEGIN
  EXPECT_EQ(cmd.source_line, 921u);
  EXPECT_EQ(CategoryNames(cmd), (std::vector<std::string_view>{"imap"}));  // replaced
  EXPECT_EQ(cmd.parent->span_id, 9u);
  c.FeedOk({"END\t18", "END\t14", "END\t13", "END\t12", "END\t9"});
  EXPECT_EQ(c.decoder().held_events(), 0u);
  EXPECT_EQ(c.decoder().state_bytes(), 0u);
  EXPECT_TRUE(c.decoder().CheckInvariantsForTesting());
}

TEST(DovecotStatsWriterDecoderTest, Duration) {
  struct Case {
    std::string_view times;  // created and optional l item
    std::int64_t duration;
  } cases[] = {
      {"1795305645\t856132\tl1795305647\t357999", 1'501'867},  // real, across seconds
      {"1795305645\t856132\tl1795305645\t856132", 0},
      {"1795305645\t856132", 0},                       // no last_sent
      {"1795305645\t856132\tl0\t5", 0},                // sec 0: none, as lib-event
      {"1795305645\t856132\tl1795305645\t856000", 0},  // clock stepped back
      {"0\t0\tl253402300799\t999999", 253'402'300'799'999'999},
  };
  Connection c;
  c.Start();
  for (const Case& k : cases) {
    std::string line = "EVENT\t0\t0\t0\t" + std::string(k.times) + "\tnx\tIduration\t77";
    auto r = c.Feed(line);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString() << " " << k.times;
    EXPECT_EQ(Get(c.event(), "duration").as_int(), k.duration) << k.times;
  }
  // Real lmtp traffic: a BEGIN with an `l` item.
  c.FeedOk({"CATEGORY\tservice:lmtp", "CATEGORY\tlmtp"});
  ASSERT_TRUE(c.Feed("BEGIN\t4\t0\t0\t1795305674\t754632\tslmtp-client.c\t173\tl1795305674\t755"
                     "430\tcservice:lmtp\tclmtp")
                  .status.ok());
  EXPECT_EQ(Get(c.event(), "duration").as_int(), 755430 - 754632);
  EXPECT_EQ(Get(c.event(), "duration").unit(), Unit::kMicroseconds);
}

// The duration a BEGIN or EVENT gets is set where the line has a field of
// that name and added where it has none, by the line shapes as by the
// general path: the keys' bits decide without a search of the fields.
TEST(DovecotStatsWriterDecoderTest, DurationWithAndWithoutTheLinesOwnField) {
  const std::vector<std::string> lines = {
      "EVENT\t0\t0\t0\t1795305645\t856132\tsa.c\t1\tl1795305647\t357999\tnx\tIduration\t77",
      "EVENT\t0\t0\t0\t1795305645\t856132\tsa.c\t2\tl1795305647\t357999\tnx\tIsize\t77",
      "EVENT\t0\t0\t0\t1795305645\t856132\tsa.c\t3\tnx\tIduration\t5\tIsize\t6",
      "BEGIN\t9\t0\t0\t1795305645\t856132\tsa.c\t4\tl1795305645\t856999\tIduration\t1",
      "END\t9",
      "BEGIN\t9\t0\t0\t1795305645\t856132\tsa.c\t5\tl1795305645\t856999\tIsize\t1",
      "END\t9",
  };
  ShapedAndGeneral both;
  for (int round = 0; round < 3; ++round) {
    for (const std::string& line : lines) {
      ASSERT_NO_FATAL_FAILURE(both.Feed(line));
      ASSERT_TRUE(both.last.status.ok()) << both.last.status.ToString();
      if (both.last.emit != Emit::kNone) {
        EXPECT_EQ(Get(both.shaped.event(), "duration").unit(), Unit::kMicroseconds) << line;
      }
    }
  }
  EXPECT_EQ(both.shaped.decoder().lines_by_shape(), 10u);  // the BEGINs and EVENTs after round one
  // The line's own duration gives way to the one computed, as in Dovecot.
  both.shaped.FeedOk({lines[0]});
  EXPECT_EQ(Get(both.shaped.event(), "duration").as_int(), 1'501'867);
}

TEST(DovecotStatsWriterDecoderTest, IntegersOfKnownFieldsCarryTheirUnit) {
  Connection c;
  c.Start();
  // Twice: the second line finds the names (and units) in the cache.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Feed("EVENT\t0\t0\t0\t1795305645\t856132\tnx\tIrunning_usecs\t5\t"
                       "Ibytes_out\t9\tIidle_secs\t2\tIcount\t3\tSbytes_in\t4\t"
                       "Tlock_wait_usecs\t1\t2")
                    .status.ok());
    const Event& e = c.event();
    EXPECT_EQ(Get(e, "duration").unit(), Unit::kMicroseconds);
    EXPECT_EQ(Get(e, "running_usecs").unit(), Unit::kMicroseconds);
    EXPECT_EQ(Get(e, "bytes_out").unit(), Unit::kBytes);
    EXPECT_EQ(Get(e, "idle_secs").unit(), Unit::kSeconds);
    EXPECT_EQ(Get(e, "count").unit(), Unit::kNone);
    EXPECT_EQ(Get(e, "bytes_in").unit(), Unit::kNone);         // a string
    EXPECT_EQ(Get(e, "lock_wait_usecs").unit(), Unit::kNone);  // a timeval
  }
}

TEST(DovecotStatsWriterDecoderTest, TabEscapedValuesAndLists) {
  Connection c;
  c.Start();
  c.FeedOk({kSessionBegin});
  // Real: a search string with a TAB, which the client escaped as \001t.
  std::string line =
      "EVENT\t0\t9\t0\t1795305645\t838129\tsimap-client.c\t1016\tl1795305645\t838321\tnimap_"
      "command_finished\tScmd_tag\tLBDD19\tScmd_name\tSEARCH\tScmd_input_name\tSEARCH\tScmd_"
      "args\tSUBJECT \"tab\001there\"\tScmd_human_args\tSUBJECT \"tab?here\"\tStagged_reply_"
      "state\tOK\tStagged_reply\tOK Search completed\tTlast_run_time\t1795305645\t838133\tIrunni"
      "ng_usecs\t181\tIlock_wait_usecs\t0\tIbytes_in\t20\tIbytes_out\t10\tLreason_code\t1\timap"
      ":cmd_search\tSmailbox\tINBOX";
  ASSERT_TRUE(c.Feed(line).status.ok());
  EXPECT_EQ(Get(c.event(), "cmd_args").as_string(), "SUBJECT \"tab\there\"");
  EXPECT_EQ(Get(c.event(), "cmd_human_args").as_string(), "SUBJECT \"tab?here\"");
  // Escapes in keys, names, categories and every kind of value.
  c.FeedOk({"CATEGORY\tta\001tb"});
  ASSERT_TRUE(c.Feed("EVENT\t0\t0\t0\t1\t0\tna\001nb\tcta\001tb\tSk\001te\001yx\t"
                     "v\0011\001r\0010\tLl\t2\t\001t\tz")
                  .status.ok());
  const Event& e = c.event();
  EXPECT_EQ(NameText(e.name), "a\nb");
  EXPECT_TRUE(e.categories.contains(FindName("ta\tb")));
  EXPECT_EQ(Get(e, "k\teyx").as_string(), std::string_view("v\001\r\0", 4));
  EXPECT_EQ(Get(e, "l").as_string(), "\t\tz");  // an element's TAB joins like a separator
  // Real: a list of three reasons, stored by a BEGIN.
  c.FeedOk(
      {"BEGIN\t58\t9\t0\t1795305645\t830236\tsimap-client.c\t920\tScmd_name\tFETCH\tLreason_"
       "code\t3\timap:cmd_fetch\timap:fetch_header_fields\timap:fetch_size\tSmailbox\tINBOX"});
  EXPECT_EQ(Get(c.event(), "reason_code").as_string(),
            "imap:cmd_fetch\timap:fetch_header_fields\timap:fetch_size");
  EXPECT_EQ(Get(c.event(), "mailbox").as_string(), "INBOX");
  ASSERT_TRUE(c.Feed("EVENT\t0\t0\t0\t1\t0\tLempty\t0\tSafter\tx").status.ok());
  EXPECT_EQ(Get(c.event(), "empty").as_string(), "");
  EXPECT_EQ(Get(c.event(), "after").as_string(), "x");
}

TEST(DovecotStatsWriterDecoderTest, ItemsCategoriesAndLevels) {
  Connection c;
  c.Start();
  // The last value wins and keeps the first one's place; `a` and unknown codes are skipped.
  ASSERT_TRUE(
      c.Feed("EVENT\t0\t0\t1\t1\t0\ta\tXfuture\tSk\tone\tIn\t1\tSk\ttwo\t\tIneg\t-5").status.ok());
  const Event& e = c.event();
  EXPECT_EQ(e.level, Level::kInfo);
  EXPECT_EQ(e.name, kNoName);
  ASSERT_EQ(e.fields.size(), 4u);
  EXPECT_EQ(NameText(e.fields[0].key), "k");
  EXPECT_EQ(e.fields[0].value.as_string(), "two");
  EXPECT_EQ(Get(e, "neg").as_int(), -5);
  EXPECT_EQ(NameText(e.fields[3].key), "duration");
  // Real: an unnamed, flattened root event (sent when a filter does not need names).
  ASSERT_TRUE(c.Feed("EVENT\t0\t0\t0\t1795305139\t141324\tsmail-storage-service.c\t730\tl179530"
                     "5139\t141343\tcstorage\tcimap\tcservice:imap\tSuser\terin@example.com\tSloca"
                     "l_ip\t127.0.0.1\tIlocal_port\t14143\tSremote_ip\t127.0.0.1\tIremote_port\t52"
                     "178\tSsession\tKt0UDdJg0st/AAAB")
                  .status.ok());
  EXPECT_EQ(c.event().name, kNoName);
  EXPECT_EQ(CategoryNames(c.event()),
            (std::vector<std::string_view>{"storage", "imap", "service:imap"}));
  EXPECT_EQ(Get(c.event(), "duration").as_int(), 19);
  // Each category comes with its ancestors, once.
  ASSERT_TRUE(c.Feed("EVENT\t0\t0\t0\t1\t0\tcmail\tcmaildir\tcstorage").status.ok());
  EXPECT_EQ(CategoryNames(c.event()),
            (std::vector<std::string_view>{"mail", "mailbox", "storage", "maildir"}));
  const Level levels[] = {Level::kDebug, Level::kInfo,  Level::kWarn,
                          Level::kError, Level::kFatal, Level::kPanic};
  for (int t = 0; t < 6; ++t) {
    ASSERT_TRUE(c.Feed("EVENT\t0\t0\t" + std::to_string(t) + "\t1\t0\tnx").status.ok());
    EXPECT_EQ(c.event().level, levels[t]);
  }
}

TEST(DovecotStatsWriterDecoderTest, TooManyFieldsAreDroppedButDurationStays) {
  Connection c;
  c.Start();
  std::string line = "EVENT\t0\t0\t0\t1\t0\tl2\t0";
  for (int i = 0; i < 300; ++i) line += "\tIf" + std::to_string(i) + "\t" + std::to_string(i);
  line += "\tIf3\t333";  // a kept key is still overwritten
  ASSERT_TRUE(c.Feed(line).status.ok());
  const Event& e = c.event();
  EXPECT_EQ(e.fields.size(), FieldList::kCapacity);
  EXPECT_TRUE(e.fields.truncated());
  EXPECT_EQ(Get(e, "f3").as_int(), 333);
  EXPECT_EQ(Get(e, "duration").as_int(), 1'000'000);
  EXPECT_EQ(FindName("f299"), kNoName);  // dropped keys are not interned
}

TEST(DovecotStatsWriterDecoderTest, GiantValues) {
  Connection c(StatsWriterOptions{.max_state_bytes = 256 * 1024});
  c.Start();
  const std::string big(kStatsWriterMaxLineBytes - 64, 'x');
  ASSERT_TRUE(c.Feed("EVENT\t0\t0\t0\t1\t0\tnbig\tSv\t" + big).status.ok());
  EXPECT_EQ(Get(c.event(), "v").as_string().size(), big.size());
  // Stored, it would pass the state bound.
  auto r = c.Feed("BEGIN\t1\t0\t0\t1\t0\tSv\t" + big);
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status.reason(), "state_limit");
  EXPECT_EQ(c.decoder().held_events(), 0u);
  c.FeedOk({"BEGIN\t1\t0\t0\t1\t0\tSv\tsmall"});
  r = c.Feed("UPDATE\t1\t0\t1\t0\tSv\t" + big);
  EXPECT_EQ(r.status.reason(), "state_limit");
  c.FeedOk({"EVENT\t0\t1\t0\t1\t0"});
  EXPECT_EQ(Get(*c.event().parent, "v").as_string(), "small");
  EXPECT_TRUE(c.decoder().CheckInvariantsForTesting());
}

TEST(DovecotStatsWriterDecoderTest, EventAndCategoryBounds) {
  Connection c(StatsWriterOptions{.max_events = 3, .max_categories = 11});
  c.Start();
  c.FeedOk({"CATEGORY\textra1"});
  auto cat = c.Feed("CATEGORY\textra2");
  EXPECT_EQ(cat.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(cat.status.reason(), "too_many_categories");
  EXPECT_TRUE(c.Feed("CATEGORY\textra1").status.ok());  // a repeat is not new
  c.FeedOk({"BEGIN\t1\t0\t0\t1\t0", "BEGIN\t2\t1\t0\t1\t0", "BEGIN\t3\t2\t0\t1\t0"});
  auto r = c.Feed("BEGIN\t4\t0\t0\t1\t0");
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status.reason(), "too_many_events");
  // An ENDed parent still counts while its children hold it.
  c.FeedOk({"END\t1"});
  EXPECT_EQ(c.Feed("BEGIN\t4\t0\t0\t1\t0").status.reason(), "too_many_events");
  c.FeedOk({"END\t3", "BEGIN\t4\t0\t0\t1\t0"});
  EXPECT_TRUE(c.decoder().CheckInvariantsForTesting());
}

// Names from a writer are interned within the table's budget: writers
// inventing a name per event cannot grow the name table without bound.
TEST(DovecotStatsWriterDecoderTest, NamesPastTheTableBudgetAreRefused) {
  Connection c;
  c.Start();
  InternName("imap_command_finished");
  InternName("user");
  SetNameBudget(NameCount(), kDefaultMaxNameBytes);  // full now
  const std::uint64_t refused = NamesRefused(NameInput::kStatsWriter, NameRefusal::kTableFull);
  auto cat = c.Feed("CATEGORY\tbudget-test-new-category");
  EXPECT_EQ(cat.status.reason(), "name_table_full");
  auto ev = c.Feed("EVENT\t0\t0\t0\t1\t0\tnbudget_test_new_event\tSuser\tx");
  EXPECT_EQ(ev.status.reason(), "name_table_full");
  EXPECT_EQ(ev.emit, Emit::kNone);
  // A known name with a new field key: the event stays, the field goes.
  ev = c.Feed(
      "EVENT\t0\t0\t0\t1\t0\tnimap_command_finished\t"
      "Sbudget_test_new_key\tx\tSuser\ty");
  EXPECT_TRUE(ev.status.ok()) << ev.status.ToString();
  EXPECT_EQ(ev.emit, Emit::kEvent);
  EXPECT_EQ(Get(c.event(), "user").as_string(), "y");
  EXPECT_EQ(FindName("budget_test_new_key"), kNoName);
  EXPECT_EQ(NamesRefused(NameInput::kStatsWriter, NameRefusal::kTableFull), refused + 3);
  SetNameBudget(kDefaultMaxNames, kDefaultMaxNameBytes);
  c.FeedOk({"CATEGORY\tbudget-test-new-category"});
}

// Each connection has a budget of its own: a writer that spends it gets its
// new names refused, while another writer still adds its own.
TEST(DovecotStatsWriterDecoderTest, AConnectionPastItsBudgetDoesNotStopAnother) {
  Connection first;  // interns the categories every imap process announces
  first.Start();
  StatsWriterOptions options;
  options.max_new_names = 2;
  Connection greedy(options);
  options.max_new_names = 3;
  Connection other(options);
  greedy.Start();
  other.Start();
  const std::uint64_t refused = NamesRefused(NameInput::kStatsWriter, NameRefusal::kClientBudget);
  greedy.FeedOk({"CATEGORY\tconn-budget-cat", "EVENT\t0\t0\t0\t1\t0\tnconn_budget_event0"});
  EXPECT_EQ(greedy.decoder().names().remaining(), 0u);
  auto cat = greedy.Feed("CATEGORY\tconn-budget-cat2");
  EXPECT_EQ(cat.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(cat.status.reason(), "client_name_budget");
  EXPECT_NE(cat.status.message().find("conn-budget-cat2"), std::string::npos);
  auto ev = greedy.Feed("EVENT\t0\t0\t0\t1\t0\tnconn_budget_event1");
  EXPECT_EQ(ev.status.reason(), "client_name_budget");
  EXPECT_EQ(ev.emit, Emit::kNone);
  // Known names still decode, a new key is left out.
  ev = greedy.Feed("EVENT\t0\t0\t0\t1\t0\tnconn_budget_event0\tSconn_budget_key\tx");
  EXPECT_TRUE(ev.status.ok()) << ev.status.ToString();
  EXPECT_EQ(greedy.event().fields.size(), 1u);  // duration only
  EXPECT_EQ(FindName("conn_budget_key"), kNoName);
  EXPECT_EQ(greedy.decoder().names().refused(), 3u);
  EXPECT_EQ(NamesRefused(NameInput::kStatsWriter, NameRefusal::kClientBudget), refused + 3);
  // The other writer: the greedy one's names are free, new ones its own.
  other.FeedOk({"CATEGORY\tconn-budget-cat", "CATEGORY\tconn-budget-cat2",
                "EVENT\t0\t0\t0\t1\t0\tnconn_budget_event1\tSconn_budget_key\tx"});
  EXPECT_EQ(Get(other.event(), "conn_budget_key").as_string(), "x");
  EXPECT_EQ(other.decoder().names().added(), 3u);
  EXPECT_EQ(other.decoder().names().refused(), 0u);
}

TEST(DovecotStatsWriterDecoderTest, EndedParentStaysReadableThroughItsChildren) {
  Connection c;
  c.Start();
  c.FeedOk({kSessionBegin, kAppendLines[1], "END\t9"});
  EXPECT_EQ(c.decoder().live_events(), 1u);
  EXPECT_EQ(c.decoder().held_events(), 2u);
  EXPECT_EQ(c.Feed(kSessionBegin).emit, Emit::kBegin);  // the id is free again
  c.FeedOk({"EVENT\t0\t12\t0\t1\t0\tnx"});
  ASSERT_NE(c.event().parent->parent, nullptr);
  EXPECT_EQ(Get(*c.event().parent->parent, "user").as_string(), "alice@example.com");
  EXPECT_EQ(c.Feed("UPDATE\t12\t0\t1\t0").status.reason(), "parent_changed");
  c.FeedOk({"END\t12"});
  EXPECT_EQ(c.decoder().held_events(), 1u);  // the new 9
  c.FeedOk({"END\t9"});
  EXPECT_EQ(c.decoder().held_events(), 0u);
  EXPECT_EQ(c.decoder().state_bytes(), 0u);
  EXPECT_TRUE(c.decoder().CheckInvariantsForTesting());
}

TEST(DovecotStatsWriterDecoderTest, MalformedLinesAreRejectedAndChangeNothing) {
  std::string truncated(kSelectFinished.substr(0, kSelectFinished.find("MJNG2") - 1));
  struct Case {
    std::string line;
    std::string_view reason;
  } cases[] = {
      {"", "empty_line"},
      {"BOGUS\t1", "unknown_command"},
      {"event\t0\t9\t0\t1\t0", "unknown_command"},
      {std::string(kVersion), "unknown_command"},
      {std::string("\x00\xff\x01\x02garbage\t\x80", 13), "unknown_command"},
      {"BEGIN\t10\t0", "too_few_fields"},
      {"BEGIN\tx\t0\t0\t1\t0", "invalid_id"},
      {"BEGIN\t0\t0\t0\t1\t0", "invalid_id"},
      {"BEGIN\t18446744073709551616\t0\t0\t1\t0", "invalid_id"},
      {"BEGIN\t10\t-1\t0\t1\t0", "invalid_id"},
      {"BEGIN\t+10\t0\t0\t1\t0", "invalid_id"},
      {"BEGIN\t10\t0\t6\t1\t0", "invalid_log_type"},
      {"BEGIN\t9\t0\t0\t1\t0", "duplicate_event_id"},
      {"BEGIN\t10\t77\t0\t1\t0", "unknown_parent_event"},
      {"BEGIN\t10\t0\t0", "invalid_timestamp"},
      {"BEGIN\t10\t0\t0\t1795304655", "invalid_timestamp"},
      {"BEGIN\t10\t0\t0\t1795304655\t1000000", "invalid_timestamp"},
      {"BEGIN\t10\t0\t0\tabc\t0", "invalid_timestamp"},
      {"BEGIN\t10\t0\t0\t-1\t0", "invalid_timestamp"},
      {"BEGIN\t10\t0\t0\t99999999999999999999\t0", "invalid_timestamp"},
      {"BEGIN\t10\t0\t0\t1\t0\tcnosuch", "unregistered_category"},
      {"EVENT\t0\t9", "too_few_fields"},
      {"EVENT\tx\t9\t0\t1\t0", "invalid_id"},
      {"EVENT\t0\t9x\t0\t1\t0", "invalid_id"},
      {"EVENT\t0\t9\tx\t1\t0", "invalid_log_type"},
      {"EVENT\t5\t9\t0\t1\t0", "unknown_global_event"},
      {"EVENT\t0\t5\t0\t1\t0", "unknown_parent_event"},
      {"EVENT\t0\t9\t0\t1795304655\t257129\tsimap-client.c", "invalid_source_line"},
      {"EVENT\t0\t9\t0\t1\t0\tsmain.c\tx", "invalid_source_line"},
      {"EVENT\t0\t9\t0\t1\t0\tsmain.c\t4294967296", "invalid_source_line"},
      {"EVENT\t0\t9\t0\t1\t0\tl5", "invalid_timestamp"},
      {"EVENT\t0\t9\t0\t1\t0\tl5\t-1", "invalid_timestamp"},
      {"EVENT\t0\t9\t0\t1\t0\tcnosuch", "unregistered_category"},
      {"EVENT\t0\t9\t0\t1\t0\tc", "unregistered_category"},
      {truncated, "missing_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tS\tvalue", "missing_field_name"},
      {"EVENT\t0\t9\t0\t1\t0\tIn\t12x", "invalid_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tIn\t", "invalid_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tIn\t9223372036854775808", "invalid_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tTt\t1", "invalid_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tTt\t1\t1000000", "invalid_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tTt\t1e3\t0", "invalid_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tLl", "missing_field_value"},
      {"EVENT\t0\t9\t0\t1\t0\tLl\tx", "invalid_list_count"},
      {"EVENT\t0\t9\t0\t1\t0\tLl\t3\ta\tb", "list_too_few_values"},
      {"EVENT\t0\t9\t0\t1\t0\tLl\t4294967295\ta", "list_too_few_values"},
      {"EVENT\t0\t9\t0\t1\t0\tLl\t4294967296", "invalid_list_count"},
      {"UPDATE\t9", "too_few_fields"},
      {"UPDATE\tx\t0\t1\t0", "invalid_id"},
      {"UPDATE\t5\t0\t1\t0", "unknown_event_id"},
      {"UPDATE\t9\tx\t1\t0", "invalid_id"},
      {"UPDATE\t9\t3\t1\t0", "parent_changed"},
      {"UPDATE\t9\t0\t1\t0\tSuser\tmallory\tcnosuch", "unregistered_category"},
      {"UPDATE\t9\t0\t1\t0\tSuser", "missing_field_value"},
      {"END", "too_few_fields"},
      {"END\tx", "invalid_id"},
      {"END\t5", "unknown_event_id"},
      {"CATEGORY", "missing_category_name"},
      {"CATEGORY\t", "missing_category_name"},
      {"CATEGORY\tx\tnosuch", "unknown_parent_category"},
      {"CATEGORY\tx\t", "unknown_parent_category"},
      {"CATEGORY\tmaildir\tmailbox", "category_parent_changed"},
      {"CATEGORY\tstorage\tmail", "category_parent_changed"},
      {"CATEGORY\tmail", "category_parent_changed"},
  };
  Connection c;
  c.Start();
  c.FeedOk({kSessionBegin});
  const std::size_t bytes = c.decoder().state_bytes();
  for (const Case& k : cases) {
    auto r = c.Feed(k.line);
    EXPECT_FALSE(r.status.ok()) << k.line;
    EXPECT_EQ(r.status.reason(), k.reason) << k.line;
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << k.line;
    EXPECT_FALSE(r.status.message().empty());
    EXPECT_EQ(r.emit, Emit::kNone) << k.line;
    EXPECT_FALSE(r.close) << k.line;
    // The state is as before: one session event, the same categories and bytes.
    EXPECT_TRUE(c.decoder().CheckInvariantsForTesting()) << k.line;
    EXPECT_EQ(c.decoder().live_events(), 1u) << k.line;
    EXPECT_EQ(c.decoder().categories(), std::size(kImapCategories)) << k.line;
    EXPECT_EQ(c.decoder().state_bytes(), bytes) << k.line;
    auto good = c.Feed(kSelectFinished);
    ASSERT_TRUE(good.status.ok()) << k.line;
    EXPECT_EQ(Lookup(c.event(), "user").as_string(), "alice@example.com") << k.line;
    EXPECT_EQ(CategoryNames(*c.event().parent),
              (std::vector<std::string_view>{"service:imap", "imap"}))
        << k.line;
  }
}

TEST(DovecotStatsWriterDecoderTest, CloseOnErrorGivesDovecotParity) {
  Connection c(StatsWriterOptions{.close_on_error = true});
  c.Start();
  c.FeedOk({kSessionBegin});
  auto r = c.Feed("END\t5");
  EXPECT_EQ(r.status.reason(), "unknown_event_id");
  EXPECT_TRUE(r.close);
  EXPECT_EQ(c.Feed(kSelectFinished).status.reason(), "closed");
}

// --- The whole capture, connection by connection ---------------------------

// What each connection sent, in order.
std::map<int, std::string> ClientStreams() {
  std::map<int, std::string> streams;
  for (const CapturedChunk& c : ReadStatsWriterChunksForTesting()) {
    EXPECT_EQ(c.bytes.size(), c.declared_length) << "#" << c.connection;
    streams[c.connection] += c.bytes;
  }
  return streams;
}

TEST(DovecotStatsWriterDecoderTest, EveryLineOfTheRealCaptureDecodes) {
  const auto streams = ClientStreams();
  ASSERT_EQ(streams.size(), 88u);
  std::size_t begins = 0, events = 0, lines = 0;
  for (const auto& [conn, stream] : streams) {
    DovecotStatsWriterDecoder decoder;
    std::istringstream in(stream);
    for (std::string line; std::getline(in, line);) {
      ++lines;
      auto r = decoder.Decode(line);
      ASSERT_TRUE(r.status.ok()) << "#" << conn << " " << r.status.ToString() << "\n" << line;
      ASSERT_FALSE(r.close);
      if (r.emit == Emit::kBegin) ++begins;
      if (r.emit == Emit::kEvent) {
        ++events;
        EXPECT_NE(decoder.event().name, kNoName);  // the capture's filter needs names
        const Field* d = decoder.event().Find(FindName("duration"));
        ASSERT_NE(d, nullptr);
        EXPECT_GE(d->value.as_int(), 0);
      }
    }
    EXPECT_TRUE(decoder.CheckInvariantsForTesting()) << "#" << conn;
  }
  EXPECT_EQ(lines, 641u);
  EXPECT_EQ(begins, 74u);
  EXPECT_EQ(events, 190u);
}

// Real 2.3.19 logins, routed through the compiled-in catalog: a success
// carries success=yes, a failure no success field at all.
TEST(DovecotStatsWriterDecoderTest, RealLoginsGetKindAndOutcome) {
  auto control = catalog::EventControl::Build(catalog::Catalog::Get(), {});
  ASSERT_TRUE(control.ok());
  catalog::EventRouter router(catalog::Catalog::Get(), std::move(*control));
  auto failed = filter::Parse("kind=auth AND outcome=failure", filter::Dialect::kMailscope);
  auto from = filter::Parse("source=dovecot AND remote_ip=127.0.0.1 AND protocol=imap",
                            filter::Dialect::kMailscope);
  ASSERT_TRUE(failed.ok() && from.ok());
  const NameId auth = InternName("auth_request_finished");
  int successes = 0, failures = 0;
  for (const auto& [conn, stream] : ClientStreams()) {
    DovecotStatsWriterDecoder decoder;
    std::istringstream in(stream);
    for (std::string line; std::getline(in, line);) {
      if (decoder.Decode(line).emit != Emit::kEvent || decoder.event().name != auth) continue;
      Event e = decoder.event();
      e.source = Source::kDovecot;
      e.taxonomy = router.Route(e).taxonomy;
      EXPECT_EQ(NameText(e.taxonomy.kind), "auth");
      const bool success = Lookup(e, "success").type() == Value::Type::kString &&
                           Lookup(e, "success").as_string() == "yes";
      EXPECT_EQ(NameText(e.taxonomy.outcome), success ? "success" : "failure");
      EXPECT_EQ(failed->Matches(e), !success);
      // `protocol` is the `service` field.
      const Value service = Lookup(e, "service"), ip = Lookup(e, "remote_ip");
      ASSERT_EQ(service.type(), Value::Type::kString);
      EXPECT_EQ(from->Matches(e), service.as_string() == "imap" &&
                                      ip.type() == Value::Type::kString &&
                                      ip.as_string() == "127.0.0.1");
      ++(success ? successes : failures);
    }
  }
  EXPECT_GT(successes, 0);
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace mailscope::ingest
