// Golden replay of real Dovecot 2.3.19.1 old-stats traffic (tests/data/dovecot-2.3.19).
// Every line the mail processes and auth wrote to the two FIFOs is decoded and applied
// at the time the capture tap read it; every request a client sent to Dovecot's
// old-stats socket is answered by mailscope at the time the socket proxy saw it, and
// the answer is compared, row by row and column by column, with Dovecot's own reply.
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "ingest/dovecot_old_stats.h"
#include "query/old_stats_query.h"
#include "stats/old_stats_store.h"

namespace mailscope::query {
namespace {

using namespace std::chrono_literals;

constexpr char kDataDir[] = MAILSCOPE_SOURCE_DIR "/tests/data/dovecot-2.3.19/";

// The old-stats process of the capture started in this second: it is the
// reset_timestamp of the global row in every reply before the first RESET. The
// capture does not hold the exact microsecond, and nothing depends on it.
constexpr TimePoint kDovecotStart{std::chrono::seconds(1'795'305'643)};

// The tap's stamp and Dovecot's last_update come from the same clock but are taken at
// different moments: the tap stamps each line it reads, Dovecot uses its ioloop time,
// taken once per wake-up. When old-stats lags behind the tap it reads several lines in
// one go and gives them all the same, later time. In this capture Dovecot's value is
// between 0.47 ms before and 4.04 ms after the tap's stamp, so last_update is compared
// within this bound and every other column exactly; a value taken from the wrong event
// or rounded to seconds lands far outside it. reset_timestamp, the creation second of a
// user, domain or IP, matches exactly: no creation here falls near a second boundary.
constexpr std::chrono::microseconds kLastUpdateTolerance = 10ms;

std::string ReadDataFile(const std::string& name) {
  const std::string path = kDataDir + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Splits at LF; a final LF does not start another piece.
std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    std::size_t lf = text.find('\n');
    if (lf == std::string_view::npos) {
      lines.push_back(text);
      break;
    }
    lines.push_back(text.substr(0, lf));
    text.remove_prefix(lf + 1);
  }
  return lines;
}

std::vector<std::string_view> SplitTabs(std::string_view row) {
  std::vector<std::string_view> fields;
  for (;;) {
    std::size_t tab = row.find('\t');
    fields.push_back(row.substr(0, tab));
    if (tab == std::string_view::npos) return fields;
    row.remove_prefix(tab + 1);
  }
}

// Undoes the escaping of the capture tools: \t \n \r \\ and \xNN.
std::optional<std::string> Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return std::nullopt;
    switch (s[i]) {
      case 't':
        out += '\t';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
        out += '\\';
        break;
      case 'x': {
        unsigned byte = 0;
        if (i + 2 >= s.size()) return std::nullopt;
        auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, byte, 16);
        if (r.ec != std::errc() || r.ptr != s.data() + i + 3) return std::nullopt;
        out += static_cast<char>(byte);
        i += 2;
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "<sec>.<usec, six digits>", the form of the capture stamps and of last_update.
std::optional<TimePoint> ParseTime(std::string_view s) {
  std::size_t dot = s.find('.');
  std::int64_t sec = 0, usec = 0;
  if (dot == std::string_view::npos || s.size() - dot - 1 != 6 ||
      !ParseNumber(s.substr(0, dot), sec) || !ParseNumber(s.substr(dot + 1), usec)) {
    return std::nullopt;
  }
  return TimePoint(std::chrono::seconds(sec) + std::chrono::microseconds(usec));
}

// One line a Dovecot process wrote to an old-stats FIFO.
struct FifoRecord {
  TimePoint time;
  int stream = 0;    // which FIFO: one decoder each
  std::string line;  // without its LF
};

// Reads "<read time> len=<bytes incl. LF> <escaped line>" records; '#' lines are comments.
std::vector<FifoRecord> LoadFifo(const std::string& name, int stream) {
  std::vector<FifoRecord> records;
  const std::string text = ReadDataFile(name);
  for (std::string_view line : SplitLines(text)) {
    if (line.empty() || line[0] == '#') continue;
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = line.find(' ', sp1 + 1);
    auto time = ParseTime(line.substr(0, sp1));
    std::size_t len = 0;
    std::optional<std::string> bytes;
    if (sp2 != std::string_view::npos && line.substr(sp1 + 1, 4) == "len=" &&
        ParseNumber(line.substr(sp1 + 5, sp2 - sp1 - 5), len)) {
      bytes = Unescape(line.substr(sp2 + 1));
    }
    if (!time || !bytes || bytes->size() != len || bytes->back() != '\n') {
      ADD_FAILURE() << name << ": malformed record: " << line;
      continue;
    }
    bytes->pop_back();
    records.push_back({*time, stream, std::move(*bytes)});
  }
  return records;
}

// One request chunk a client sent on the old-stats socket, with everything the
// server sent back before the client's next chunk, and whether it then hung up.
struct Turn {
  int conn = 0;
  TimePoint time;
  std::string request;
  std::string reply;
  bool server_closed = false;
};

// Reads "#<conn> <time> <C>S|S>C len=<n> <escaped>|OPEN ...|EOF-from-...|CLOSED" records.
std::vector<Turn> LoadSocketExchange(const std::string& name) {
  std::vector<Turn> turns;
  const std::string text = ReadDataFile(name);
  for (std::string_view line : SplitLines(text)) {
    if (line.size() < 2 || line[0] != '#' || line[1] < '0' || line[1] > '9') continue;
    std::vector<std::string_view> words;
    std::string_view rest = line.substr(1);
    for (int i = 0; i < 4 && !rest.empty(); ++i) {
      std::size_t sp = rest.find(' ');
      words.push_back(rest.substr(0, sp));
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    int conn = 0;
    auto time = words.size() >= 3 ? ParseTime(words[1]) : std::nullopt;
    if (!time || !ParseNumber(words[0], conn)) {
      ADD_FAILURE() << name << ": malformed record: " << line;
      continue;
    }
    auto last_turn = [&]() -> Turn* {
      for (auto it = turns.rbegin(); it != turns.rend(); ++it)
        if (it->conn == conn) return &*it;
      return nullptr;
    };
    const std::string_view what = words[2];
    if (what == "C>S" || what == "S>C") {
      std::size_t len = 0;
      std::optional<std::string> bytes;
      if (words.size() == 4 && words[3].starts_with("len=") &&
          ParseNumber(words[3].substr(4), len)) {
        bytes = Unescape(rest);
      }
      if (!bytes || bytes->size() != len) {
        ADD_FAILURE() << name << ": malformed chunk: " << line;
        continue;
      }
      if (what == "C>S") {
        turns.push_back({conn, *time, std::move(*bytes), {}, false});
      } else if (Turn* t = last_turn()) {
        t->reply += *bytes;
      } else {
        ADD_FAILURE() << name << ": reply before any request: " << line;
      }
    } else if (what == "EOF-from-server") {
      if (Turn* t = last_turn()) t->server_closed = true;
    }
  }
  std::stable_sort(turns.begin(), turns.end(),
                   [](const Turn& a, const Turn& b) { return a.time < b.time; });
  return turns;
}

// Takes the reply to one request off the front of a connection's reply bytes:
// "OK\n" for RESET; for EXPORT a bare "\n", or a header and rows up to the empty line.
std::string_view TakeReply(std::string_view& replies, OldStatsRequest::Kind kind) {
  std::size_t end = replies.size();
  if (kind == OldStatsRequest::Kind::kReset) {
    end = std::min(replies.size(), replies.find('\n') + 1);
  } else if (replies.starts_with("\n")) {
    end = 1;
  } else if (std::size_t blank = replies.find("\n\n"); blank != std::string_view::npos) {
    end = blank + 2;
  }
  std::string_view reply = replies.substr(0, end);
  replies.remove_prefix(end);
  return reply;
}

class OldStatsGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fifo_ = LoadFifo("old-stats-mail-fifo.txt", 0);
    std::vector<FifoRecord> user = LoadFifo("old-stats-user-fifo.txt", 1);
    fifo_.insert(fifo_.end(), user.begin(), user.end());
    std::stable_sort(fifo_.begin(), fifo_.end(),
                     [](const FifoRecord& a, const FifoRecord& b) { return a.time < b.time; });
    turns_ = LoadSocketExchange("old-stats-socket-exchange.txt");
    clock_.Set(kDovecotStart);
    store_.emplace(stats::OldStatsOptions{}, clock_);
  }

  // Applies, in read order, every FIFO line the tap read up to `t`.
  void ReplayUntil(TimePoint t) {
    for (; next_fifo_ < fifo_.size() && fifo_[next_fifo_].time <= t; ++next_fifo_) {
      const FifoRecord& rec = fifo_[next_fifo_];
      std::string line = rec.line;
      Event event;
      clock_.Set(rec.time);
      ingest::DecodeResult r = decoders_[rec.stream].Decode(line, rec.time, event);
      ASSERT_TRUE(r.emit) << rec.line;
      Status applied = store_->Apply(event);
      if (r.status.ok() && applied.ok()) continue;
      // bob's SEARCH with a TAB inside a quoted string: imap_old_stats writes the
      // arguments unescaped, so the TAB splits them and the payload field holds the
      // rest of the arguments. Dovecot logs "Invalid base64 input" but keeps the
      // command (counted, with zero statistics); so must the decoder and the store.
      const bool tab_in_args =
          rec.line.find("\tSEARCH\tSUBJECT \"tab\there\"\t") != std::string::npos;
      EXPECT_TRUE(tab_in_args) << "unexpected error on a captured line: " << rec.line << "\n"
                               << r.status.ToString() << " / " << applied.ToString();
      if (tab_in_args) ++payload_errors_;
    }
  }

  // Answers an accepted request as the daemon does.
  std::string Answer(const OldStatsRequest& request) {
    std::string out;
    if (request.kind == OldStatsRequest::Kind::kReset) {
      store_->Reset();
      out = "OK\n";
    } else {
      AnswerExport(*store_, request, out);
    }
    return out;
  }

  // The request that crashes Dovecot 2.3.19 (see CheckCrash) in the current state.
  bool IsDovecotCrash(const OldStatsRequest& request) const {
    if (request.kind != OldStatsRequest::Kind::kExport || request.filter.ip.bits == 0 ||
        (request.level != stats::OldLevel::kSession && request.level != stats::OldLevel::kUser &&
         request.level != stats::OldLevel::kDomain)) {
      return false;
    }
    for (const stats::OldSession* s = store_->sessions_newest(); s != nullptr; s = s->stable.next)
      if (s->ip == nullptr) return true;
    return false;
  }

  void CheckTurn(const Turn& turn);
  void CheckCrash(const Turn& turn, const OldStatsRequest& request);
  void CompareReply(std::string_view request, std::string_view expected, std::string_view actual);
  void CompareRow(std::string_view request, const std::vector<std::string_view>& header,
                  std::string_view expected, std::string_view actual);

  std::vector<FifoRecord> fifo_;
  std::vector<Turn> turns_;
  std::size_t next_fifo_ = 0;
  FakeClock clock_;
  std::optional<stats::OldStatsStore> store_;
  ingest::DovecotOldStatsDecoder decoders_[2];

  int payload_errors_ = 0;
  int requests_compared_ = 0;
  int rejected_compared_ = 0;
  int rows_compared_ = 0;
  int crashes_ = 0;
  std::string compared_rows_;  // every Dovecot row compared, one per line
};

void OldStatsGoldenTest::CheckTurn(const Turn& turn) {
  ReplayUntil(turn.time);
  clock_.Set(turn.time);
  store_->Tick();
  std::string_view replies = turn.reply;
  for (std::string_view line : SplitLines(turn.request)) {
    SCOPED_TRACE(testing::Message() << "connection #" << turn.conn << " request " << line);
    std::string buffer(line);
    Result<OldStatsRequest> request = ParseOldStatsRequest(buffer);
    if (!request.ok()) {
      // Dovecot logs the error and closes the connection without a reply; later
      // pipelined lines are never read.
      EXPECT_TRUE(replies.empty()) << "Dovecot answered a request mailscope rejects";
      EXPECT_TRUE(turn.server_closed) << "Dovecot kept the connection open";
      ++rejected_compared_;
      return;
    }
    if (replies.empty() && turn.server_closed) {
      if (IsDovecotCrash(*request))
        CheckCrash(turn, *request);
      else
        ADD_FAILURE() << "Dovecot closed the connection without a reply; mailscope accepts it";
      return;
    }
    ++requests_compared_;
    const std::string actual = Answer(*request);
    CompareReply(line, TakeReply(replies, request->kind), actual);
  }
  EXPECT_TRUE(replies.empty()) << "reply bytes left over: " << replies;
}

// Dovecot 2.3.19 answered a valid request by dying: an ip= filter at session, user
// or domain level while a session without IP (an LMTP delivery) exists dereferences
// the missing IP. mailscope treats such a session as no match. There is no Dovecot
// reply to compare with; the master restarted old-stats with nothing in it, so the
// replay goes on with an empty store created at that moment.
void OldStatsGoldenTest::CheckCrash(const Turn& turn, const OldStatsRequest& request) {
  ++crashes_;
  EXPECT_EQ(crashes_, 1) << "the capture holds one crash";
  ASSERT_EQ(request.level, stats::OldLevel::kSession) << "the captured crash is at session level";
  std::size_t with_ip = 0;
  for (const stats::OldSession* s = store_->sessions_newest(); s != nullptr; s = s->stable.next)
    if (s->ip != nullptr) ++with_ip;

  // Every session with an IP is in 127.0.0.0/8 here; those without are left out.
  const std::string out = Answer(request);
  std::vector<std::string_view> lines = SplitLines(out);
  ASSERT_GE(lines.size(), 2u) << out;
  EXPECT_EQ(lines.size() - 2, with_ip) << out;
  for (std::size_t i = 1; i + 1 < lines.size(); ++i)
    EXPECT_TRUE(SplitTabs(lines[i])[2].starts_with("127.")) << lines[i];

  clock_.Set(turn.time);
  store_.emplace(stats::OldStatsOptions{}, clock_);
}

void OldStatsGoldenTest::CompareReply(std::string_view request, std::string_view expected,
                                      std::string_view actual) {
  std::vector<std::string_view> want = SplitLines(expected);
  std::vector<std::string_view> got = SplitLines(actual);
  EXPECT_EQ(got.size(), want.size()) << "line count differs\n--- Dovecot:\n"
                                     << expected << "--- mailscope:\n"
                                     << actual;
  if (want.empty() || got.empty()) return;
  // The header (or "OK", or the bare empty line) is exact.
  EXPECT_EQ(got[0], want[0]);
  const std::vector<std::string_view> header = SplitTabs(want[0]);
  const std::size_t n = std::min(got.size(), want.size());
  for (std::size_t i = 1; i < n; ++i) {
    if (want[i].empty() || got[i].empty()) {
      EXPECT_EQ(got[i], want[i]) << "line " << i;
      continue;
    }
    CompareRow(request, header, want[i], got[i]);
    ++rows_compared_;
    compared_rows_ += want[i];
    compared_rows_ += '\n';
  }
}

void OldStatsGoldenTest::CompareRow(std::string_view request,
                                    const std::vector<std::string_view>& header,
                                    std::string_view expected, std::string_view actual) {
  std::vector<std::string_view> want = SplitTabs(expected);
  std::vector<std::string_view> got = SplitTabs(actual);
  std::string diffs;
  if (want.size() != got.size() || want.size() != header.size()) {
    diffs = "column count differs";
  } else {
    for (std::size_t c = 0; c < want.size(); ++c) {
      if (want[c] == got[c]) continue;
      if (header[c] == "last_update") {
        auto w = ParseTime(want[c]), g = ParseTime(got[c]);
        if (w && g && std::chrono::abs(*w - *g) <= kLastUpdateTolerance) continue;
      }
      diffs += std::string(header[c]) + " (Dovecot " + std::string(want[c]) + ", mailscope " +
               std::string(got[c]) + ") ";
    }
  }
  EXPECT_TRUE(diffs.empty()) << "request: " << request << "\nmismatch: " << diffs
                             << "\nexpected row: " << expected << "\nactual row:   " << actual;
}

TEST_F(OldStatsGoldenTest, CaptureFilesParse) {
  // 205 mail-process lines before the perf burst, 10 from auth; 61 client
  // connections carrying 65 request chunks (two of them pipeline two requests).
  std::size_t mail =
      std::count_if(fifo_.begin(), fifo_.end(), [](const FifoRecord& r) { return r.stream == 0; });
  EXPECT_EQ(mail, 205u);
  EXPECT_EQ(fifo_.size() - mail, 10u);
  EXPECT_EQ(turns_.size(), 65u);
  EXPECT_EQ(turns_.back().conn, 61);
}

TEST_F(OldStatsGoldenTest, EveryReplyMatchesDovecot) {
  for (const Turn& turn : turns_) {
    CheckTurn(turn);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(payload_errors_, 1);  // the SEARCH with a TAB
  EXPECT_EQ(crashes_, 1);
  EXPECT_EQ(rejected_compared_, 4);  // nosuchlevel, bogus, ip=notanip, NOSUCHCMD
  EXPECT_EQ(requests_compared_, 62);
  EXPECT_EQ(rows_compared_, 425);
  // The quirks of the capture are among the rows compared: the arguments cut at the
  // unescaped TAB, a literal shown by its size, the LMTP sessions without IP (and the
  // second recipient's ":R2" session), and dave's empty domain.
  for (std::string_view row :
       {"SEARCH\tSUBJECT \"tab\tFBBIK9Jgmu1/AAAB\tbob@example.org\t", " <182 byte literal>\t",
        "\tbob@example.org\t\tlmtp\t", "yD7kLcowAmupMgAAg+zDdQ:R2\t", "\n\t1795305661\t"}) {
    EXPECT_NE(compared_rows_.find(row), std::string::npos) << row;
  }
  RecordProperty("replies_compared", requests_compared_);
  RecordProperty("rows_compared", rows_compared_);
}

}  // namespace
}  // namespace mailscope::query
