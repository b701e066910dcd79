#include "ingest/log_follower.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/temp_dir_testing.h"
#include "ingest/compress_testing.h"

namespace mailscope::ingest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kTimeout = 10s;

using mailscope::testing::Gzip;
using mailscope::testing::Zstd;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void Append(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Replaces `path` by its compressed copy at `to`, as logrotate's compress does.
void Compress(const std::string& path, const std::string& to, bool zstd = false) {
  const std::string content = ReadFile(path);
  WriteFile(to, zstd ? Zstd(content) : Gzip(content));
  fs::remove(path);
}

// "<prefix> <i>" for i in [from, to], one per line, padded so that files
// are longer than a fingerprint.
std::string Text(std::string_view prefix, int from, int to) {
  std::string out;
  for (int i = from; i <= to; ++i) {
    out += std::string(prefix) + " " + std::to_string(i) + " " + std::string(60, 'x') + "\n";
  }
  return out;
}
std::vector<std::string> Expected(std::string_view prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) {
    out.push_back(std::string(prefix) + " " + std::to_string(i) + " " + std::string(60, 'x'));
  }
  return out;
}
std::vector<std::string> Join(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A multilog name for the rotated file `i`: later ones sort after.
std::string MultilogName(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "@4000000065a3f1c2%08x.s", static_cast<unsigned>(i));
  return name;
}

// multilog's rotation of a full `current` in `dir`, in its order:
// RenameToPrevious, the next `current` created, then FinishPrevious marks
// the old file finished (mode 744), links it to its rotated name and removes
// `previous`. MultilogRotate does all three, `next` being the new content.
void RenameToPrevious(const std::string& dir) { fs::rename(dir + "/current", dir + "/previous"); }
void FinishPrevious(const std::string& dir, int i) {
  ::chmod((dir + "/previous").c_str(), 0744);
  fs::create_hard_link(dir + "/previous", dir + "/" + MultilogName(i));
  fs::remove(dir + "/previous");
}
void MultilogRotate(const std::string& dir, int i, std::string_view next) {
  RenameToPrevious(dir);
  WriteFile(dir + "/current", next);
  FinishPrevious(dir, i);
}

// Waits, without taking anything from the queue, until the reader is
// blocked for want of room: in the middle of a file, if it is long enough.
bool WaitForBackpressure(const LogFollower& follower) {
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (follower.figures().queue_waits == 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The loop's side: pops chunks, checks that positions are contiguous, and
// keeps every line and each stream's last position.
class Consumer {
 public:
  explicit Consumer(LogFollower& follower) : follower_(follower) {}

  void Drain() {
    LogChunk c;
    while (follower_.TryPop(c)) {
      Take(c);
      follower_.Release(std::move(c));
    }
  }
  void Take(const LogChunk& c) {
    auto it = ends_.find(c.stream);
    if (c.line_count > 0) {
      // Lines follow on from where the stream stood.
      EXPECT_NE(it, ends_.end()) << "lines before any position";
      if (it != ends_.end()) {
        EXPECT_EQ(c.begin.offset, it->second.offset) << c.stream;
        EXPECT_EQ(c.begin.ino, it->second.ino) << c.stream;
      }
      EXPECT_GT(c.end.offset, c.begin.offset);
    }
    EXPECT_EQ(c.begin.ino, c.end.ino);
    std::size_t count = 0, at = 0;
    while (at < c.lines.size()) {
      const std::size_t lf = c.lines.find('\n', at);
      EXPECT_NE(lf, std::string::npos) << "a line without LF";
      if (lf == std::string::npos) break;
      lines_[c.stream].push_back(c.lines.substr(at, lf - at));
      all_.push_back(c.lines.substr(at, lf - at));
      at = lf + 1;
      ++count;
    }
    EXPECT_EQ(count, c.line_count);
    ends_[c.stream] = c.end;
    ++chunks_;
  }

  // Drains until `pred` holds; false after kTimeout.
  template <typename Pred>
  bool WaitUntil(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    for (;;) {
      Drain();
      if (pred()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
  }
  bool WaitForLines(std::size_t n) {
    return WaitUntil([&] { return all_.size() >= n; });
  }
  // Until the last line handed over ends with `tail`.
  bool WaitForLast(std::string_view tail) {
    return WaitUntil([&] { return !all_.empty() && all_.back().ends_with(tail); });
  }
  // Lets the reader go over every stream `rounds` more times.
  void WaitPolls(int rounds = 5) {
    const std::uint64_t target = follower_.figures().polls + static_cast<std::uint64_t>(rounds);
    EXPECT_TRUE(WaitUntil([&] { return follower_.figures().polls >= target; }));
  }

  const std::vector<std::string>& all() const { return all_; }
  std::vector<std::string> lines(const std::string& stream) const {
    auto it = lines_.find(stream);
    return it == lines_.end() ? std::vector<std::string>{} : it->second;
  }
  // What to give the next run's Start().
  std::map<std::string, LogPosition> saved() const { return ends_; }
  std::size_t chunks() const { return chunks_; }

 private:
  LogFollower& follower_;
  std::vector<std::string> all_;
  std::map<std::string, std::vector<std::string>> lines_;
  std::map<std::string, LogPosition> ends_;
  std::size_t chunks_ = 0;
};

class LogFollowerTest : public ::testing::Test {
 protected:
  LogFollowerOptions Options(std::string pattern) {
    LogFollowerOptions o;
    o.patterns = {std::move(pattern)};
    o.from = StartFrom::kStart;
    o.poll_interval = 2ms;
    o.rename_grace = 30ms;
    o.notice = [this](std::string_view text) {
      std::lock_guard lock(mu_);
      notices_.emplace_back(text);
    };
    return o;
  }
  bool Noticed(std::string_view part) {
    std::lock_guard lock(mu_);
    for (const std::string& n : notices_) {
      if (n.find(part) != std::string::npos) return true;
    }
    return false;
  }
  // Runs a follower over `pattern` until it has handed over `lines`
  // lines, then stops it: the positions a consumer would have stored.
  std::map<std::string, LogPosition> RunUntil(const std::string& pattern, std::size_t lines,
                                              std::map<std::string, LogPosition> saved = {}) {
    LogFollower follower(Options(pattern));
    Consumer consumer(follower);
    EXPECT_TRUE(follower.Start(std::move(saved)).ok());
    EXPECT_TRUE(consumer.WaitForLines(lines));
    consumer.WaitPolls(2);
    follower.Stop();
    consumer.Drain();
    EXPECT_EQ(consumer.all().size(), lines);
    return consumer.saved();
  }

  testing::TempDir dir_{"ms-follow"};
  std::mutex mu_;
  std::vector<std::string> notices_;
};

// ---------------------------------------------------------------------------
// Names and positions.

TEST(LogPositionTest, RoundTripsThroughItsText) {
  LogPosition p;
  p.fingerprint = 0x00c0ffee12345678ull;
  p.fingerprint_len = 1024;
  p.offset = 123456789012ull;
  p.dev = 2049;
  p.ino = 1311;
  p.path = "/var/log/qmail/smtpd/@4000000065a3f1c22f0b6a1c.s:with:colons";
  const std::string text = p.ToString();
  EXPECT_EQ(text,
            "1:00c0ffee12345678:1024:123456789012:2049:1311:"
            "/var/log/qmail/smtpd/@4000000065a3f1c22f0b6a1c.s:with:colons");
  auto back = LogPosition::Parse(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(LogPosition::Parse(LogPosition().ToString()).value(), LogPosition());
}

TEST(LogPositionTest, RejectsMalformedText) {
  for (const char* bad :
       {"", "2:0:0:0:0:0:x", "1:zz:0:0:0:0:x", "1:0:0:0:0:x", "1:0:1025:0:0:0:x", "1:0:-1:0:0:0:x",
        "1:0::0:0:0:x", "1:11112222333344445:0:0:0:0:x", "1:0:0:18446744073709551616:0:0:x"}) {
    auto p = LogPosition::Parse(bad);
    EXPECT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().reason(), "bad_position") << bad;
  }
}

TEST(LogFingerprintTest, IsFnv1a64) {
  EXPECT_EQ(LogFingerprint(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(LogFingerprint("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(LogFingerprint("foobar"), 0x85944171f73967e8ull);
}

TEST(MatchRotatedNameTest, KnowsMultilogAndLogrotateNames) {
  struct Case {
    std::string_view live, name;
    std::optional<RotatedKind> kind;
    std::string_view label = "";
    std::uint64_t number = 0;
  };
  const Case cases[] = {
      {"current", "@4000000065a3f1c22f0b6a1c.s", RotatedKind::kMultilog,
       "4000000065a3f1c22f0b6a1c"},
      {"current", "@4000000065a3f1c22f0b6a1c.u", RotatedKind::kMultilog,
       "4000000065a3f1c22f0b6a1c"},
      {"current", "@4000000065a3f1c22f0b6a1c.s.gz", RotatedKind::kMultilog,
       "4000000065a3f1c22f0b6a1c"},
      {"current", "@4000000065A3F1C22F0B6A1C.s", std::nullopt},  // multilog writes lower case
      {"current", "@4000000065a3f1c22f0b6a1.s", std::nullopt},   // 23 hex
      {"current", "@4000000065a3f1c22f0b6a1c.x", std::nullopt},
      {"current", "lock", std::nullopt},
      {"current", "state", std::nullopt},
      {"current", "current", std::nullopt},
      {"smtpd.log", "@4000000065a3f1c22f0b6a1c.s", std::nullopt},  // only beside "current"
      {"smtpd.log", "smtpd.log.1", RotatedKind::kNumbered, "", 1},
      {"smtpd.log", "smtpd.log.0", RotatedKind::kNumbered, "", 0},
      {"smtpd.log", "smtpd.log.12.gz", RotatedKind::kNumbered, "", 12},
      {"smtpd.log", "smtpd.log.3.zst", RotatedKind::kNumbered, "", 3},
      {"smtpd.log", "smtpd.log.1.bz2", std::nullopt},
      {"smtpd.log", "smtpd.log.", std::nullopt},
      {"smtpd.log", "smtpd.log.1a", std::nullopt},
      {"smtpd.log", "smtpd.log.old", std::nullopt},
      {"smtpd.log", "smtpd.log", std::nullopt},
      {"smtpd.log", "smtpd.log.gz", std::nullopt},
      {"smtpd.log", "other.log.1", std::nullopt},
      {"smtpd.log", "smtpd.log-20240131", RotatedKind::kDated, "20240131"},
      {"smtpd.log", "smtpd.log-20240131.gz", RotatedKind::kDated, "20240131"},
      {"smtpd.log", "smtpd.log-2024-01-31_13", RotatedKind::kDated, "2024-01-31_13"},
      {"smtpd.log", "smtpd.log-1706659200.zst", RotatedKind::kDated, "1706659200"},
      {"smtpd.log", "smtpd.log-old", std::nullopt},
      {"smtpd.log", "smtpd.log-", std::nullopt},
      {"current", "current.1", RotatedKind::kNumbered, "", 1},
  };
  for (const Case& c : cases) {
    auto got = MatchRotatedName(c.live, c.name);
    ASSERT_EQ(got.has_value(), c.kind.has_value()) << c.live << " / " << c.name;
    if (!got) continue;
    EXPECT_EQ(got->kind, *c.kind) << c.name;
    EXPECT_EQ(got->label, c.label) << c.name;
    EXPECT_EQ(got->number, c.number) << c.name;
  }
}

TEST(ListRotatedFilesTest, OrdersOldestFirst) {
  testing::TempDir dir("ms-follow");
  for (const char* name : {"current", "@400000006500000a00000000.s", "@4000000065000001000000ff.u",
                           "@4000000065000005000000ff.s", "lock", "state"}) {
    WriteFile(dir.File(name), "x\n");
  }
  std::vector<std::string> got;
  for (const RotatedFile& f : ListRotatedFiles(dir.File("current"))) {
    got.push_back(std::string(fs::path(f.path).filename()));
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"@4000000065000001000000ff.u", "@4000000065000005000000ff.s",
                                      "@400000006500000a00000000.s"}));

  for (const char* name : {"app.log", "app.log.1", "app.log.2.gz", "app.log.10.gz", "other.1"}) {
    WriteFile(dir.File(name), "x\n");
  }
  got.clear();
  for (const RotatedFile& f : ListRotatedFiles(dir.File("app.log"))) {
    got.push_back(std::string(fs::path(f.path).filename()));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"app.log.10.gz", "app.log.2.gz", "app.log.1"}));

  for (const char* name :
       {"mail.log", "mail.log-20240102.zst", "mail.log-20240101.gz", "mail.log-20240103"}) {
    WriteFile(dir.File(name), "x\n");
  }
  got.clear();
  for (const RotatedFile& f : ListRotatedFiles(dir.File("mail.log"))) {
    got.push_back(std::string(fs::path(f.path).filename()));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"mail.log-20240101.gz", "mail.log-20240102.zst",
                                           "mail.log-20240103"}));
}

TEST(StartFromTest, Parses) {
  EXPECT_EQ(ParseStartFrom("end").value(), StartFrom::kEnd);
  EXPECT_EQ(ParseStartFrom("start").value(), StartFrom::kStart);
  EXPECT_FALSE(ParseStartFrom("beginning").ok());
}

// ---------------------------------------------------------------------------
// Following.

TEST_F(LogFollowerTest, HandsOverAppendedLines) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 2));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(2));
  Append(path, Text("a", 3, 4));
  ASSERT_TRUE(consumer.WaitForLines(4));
  EXPECT_EQ(consumer.all(), Expected("a", 1, 4));
  const LogPosition end = consumer.saved().at(path);
  EXPECT_EQ(end.offset, fs::file_size(path));
  // 260 bytes: the fingerprint grew with the file.
  EXPECT_EQ(end.fingerprint_len, 260u);
  EXPECT_EQ(end.fingerprint, LogFingerprint(ReadFile(path)));
  Append(path, Text("a", 5, 20));
  ASSERT_TRUE(consumer.WaitForLines(20));
  EXPECT_EQ(consumer.saved().at(path).fingerprint_len, kFingerprintBytes);
  EXPECT_EQ(consumer.saved().at(path).fingerprint,
            LogFingerprint(ReadFile(path).substr(0, kFingerprintBytes)));
  EXPECT_EQ(end.path, path);
  const LogFollowerFigures f = follower.figures();
  EXPECT_EQ(f.lines, 20u);
  EXPECT_EQ(f.bytes_read, fs::file_size(path));
  EXPECT_EQ(f.streams, 1u);
  EXPECT_EQ(f.read_errors, 0u);
  const auto streams = follower.streams();
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].path, path);
  EXPECT_EQ(streams[0].file, path);
  EXPECT_EQ(streams[0].error, "");
}

TEST_F(LogFollowerTest, WakesTheConsumerWhenTheQueueWasEmpty) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 3));
  LogFollowerOptions o = Options(path);
  std::atomic<int> wakeups{0};
  o.on_ready = [&] { wakeups.fetch_add(1); };
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  EXPECT_GE(wakeups.load(), 1);
  const int before = wakeups.load();
  Append(path, Text("a", 4, 4));
  ASSERT_TRUE(consumer.WaitForLines(4));
  EXPECT_GT(wakeups.load(), before);
}

TEST_F(LogFollowerTest, StartsAtTheEndByDefaultWithThePartialLine) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("old", 1, 30) + "par");
  LogFollowerOptions o = Options(path);
  o.from = StartFrom::kEnd;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  consumer.WaitPolls();
  EXPECT_TRUE(consumer.all().empty());
  Append(path, "tial\nnew\n");
  ASSERT_TRUE(consumer.WaitForLines(2));
  EXPECT_EQ(consumer.all(), (std::vector<std::string>{"partial", "new"}));
}

TEST_F(LogFollowerTest, HoldsAPartialLineUntilItsLineFeed) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, "");
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  consumer.WaitPolls();
  Append(path, "abc");
  ASSERT_TRUE(consumer.WaitUntil([&] { return follower.figures().bytes_read == 3; }));
  consumer.WaitPolls();
  EXPECT_TRUE(consumer.all().empty());
  EXPECT_EQ(follower.streams()[0].position.offset, 0u);
  Append(path, "def\nghi");
  ASSERT_TRUE(consumer.WaitForLines(1));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), (std::vector<std::string>{"abcdef"}));
  EXPECT_EQ(consumer.saved().at(path).offset, 7u);
  // A young file's fingerprint covers what has been read of it.
  EXPECT_EQ(consumer.saved().at(path).fingerprint_len, 10u);
}

TEST_F(LogFollowerTest, FollowsMultilogRenameRotation) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 3));
  LogFollower follower(Options(current));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  {
    // The writer still holds the old file: lines it writes after the
    // rename belong before the new file's.
    std::ofstream writer(current, std::ios::app);
    const std::string rotated = dir_.File("@4000000065a3f1c22f0b6a1c.s");
    fs::rename(current, rotated);
    writer << Text("a", 4, 5);
  }
  WriteFile(current, Text("b", 1, 2));
  ASSERT_TRUE(consumer.WaitForLines(7));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 5), Expected("b", 1, 2)));
  EXPECT_EQ(follower.figures().rotations, 1u);
  // The position is in the new file now.
  const LogPosition end = consumer.saved().at(current);
  struct stat st;
  ASSERT_EQ(::stat(current.c_str(), &st), 0);
  EXPECT_EQ(end.ino, static_cast<std::uint64_t>(st.st_ino));
  EXPECT_EQ(end.offset, fs::file_size(current));
}

TEST_F(LogFollowerTest, MultilogFinishedMarkEndsTheOldFileAtOnce) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 3));
  LogFollowerOptions o = Options(current);
  o.rename_grace = std::chrono::hours(1);
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  // What multilog does: the last lines, mode 744, rename, a new current.
  Append(current, Text("a", 4, 4));
  ::chmod(current.c_str(), 0744);
  fs::rename(current, dir_.File("@4000000065a3f1c22f0b6a1c.s"));
  WriteFile(current, Text("b", 1, 1));
  ASSERT_TRUE(consumer.WaitForLines(5));
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 4), Expected("b", 1, 1)));
}

TEST_F(LogFollowerTest, FileRenamedAwayAndBackIsNotReadTwice) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 3));
  LogFollowerOptions o = Options(path);
  o.rename_grace = std::chrono::hours(1);
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  fs::rename(path, path + ".tmp");
  WriteFile(path, "");
  consumer.WaitPolls();
  fs::remove(path);
  fs::rename(path + ".tmp", path);
  consumer.WaitPolls();
  // Live again: a file that takes its place later is a rotation as usual.
  fs::rename(path, path + ".1");
  WriteFile(path, Text("b", 1, 1));
  ::chmod((path + ".1").c_str(), 0744);
  ASSERT_TRUE(consumer.WaitForLines(4));
  consumer.WaitPolls(20);
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 3), Expected("b", 1, 1)));
  EXPECT_EQ(follower.figures().rotations, 1u);
}

TEST_F(LogFollowerTest, ReadsEveryFileOfSeveralQuickRotations) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 2));
  LogFollowerOptions o = Options(current);
  o.poll_interval = 100ms;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(2));
  // Three rotations, likely between two polls; each finished file marked.
  const char* labels[] = {"@4000000065a3f1c200000001.s", "@4000000065a3f1c200000002.s",
                          "@4000000065a3f1c200000003.s"};
  for (int i = 0; i < 3; ++i) {
    Append(current, Text(std::string(1, static_cast<char>('a' + i)), 3, 4));
    ::chmod(current.c_str(), 0744);
    fs::rename(current, dir_.File(labels[i]));
    WriteFile(current, Text(std::string(1, static_cast<char>('b' + i)), 1, 2));
  }
  ASSERT_TRUE(consumer.WaitForLines(2 + 3 * 4));
  consumer.WaitPolls(2);
  std::vector<std::string> want = Expected("a", 1, 4);
  want = Join(want, Join(Expected("b", 1, 4), Join(Expected("c", 1, 4), Expected("d", 1, 2))));
  EXPECT_EQ(consumer.all(), want);
}

// A stream found after the start whose writer rotated it, several times,
// before the first poll that saw it: the rotated files come first, the one
// still under multilog's `previous` too; those last written before the
// start are left alone.
TEST_F(LogFollowerTest, StreamFoundAfterItsFirstRotationsReadsThemFirst) {
  const std::string log_dir = dir_.File("log");
  const std::string current = log_dir + "/current";
  LogFollower follower(Options(current));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  consumer.WaitPolls(2);
  // Everything is made elsewhere and appears at once, as between two polls.
  const std::string staging = dir_.File("staging");
  fs::create_directories(staging);
  WriteFile(staging + "/" + MultilogName(0), Text("old", 1, 2));
  fs::last_write_time(staging + "/" + MultilogName(0),
                      fs::file_time_type::clock::now() - std::chrono::hours(1));
  WriteFile(staging + "/current", Text("a", 1, 3));
  MultilogRotate(staging, 1, Text("b", 1, 3));
  MultilogRotate(staging, 2, Text("c", 1, 3));
  RenameToPrevious(staging);
  WriteFile(staging + "/current", Text("d", 1, 2));
  fs::rename(staging, log_dir);
  ASSERT_TRUE(consumer.WaitForLast(Expected("d", 2, 2).front()));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Join(Expected("a", 1, 3), Expected("b", 1, 3)),
                                 Join(Expected("c", 1, 3), Expected("d", 1, 2))));
  EXPECT_EQ(follower.figures().rotations, 3u);
  EXPECT_EQ(follower.figures().lost_rotations, 0u);
  // Going on from there as usual.
  FinishPrevious(log_dir, 3);
  Append(current, Text("d", 3, 3));
  MultilogRotate(log_dir, 4, Text("e", 1, 1));
  ASSERT_TRUE(consumer.WaitForLast(Expected("e", 1, 1).front()));
  consumer.WaitPolls();
  ASSERT_EQ(consumer.all().size(), 13u);
  EXPECT_EQ(consumer.all()[11], Expected("d", 3, 3).front());
  EXPECT_EQ(follower.figures().rotations, 4u);
}

// multilog creates the next `current` before the old file gets its rotated
// name. The reader, blocked in the middle of a file meanwhile, moves on
// from it while the file after it is still `previous`: that one is read.
TEST_F(LogFollowerTest, ReadsTheFileThatMultilogStillHoldsAsPrevious) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 300));
  LogFollowerOptions o = Options(current);
  o.rename_grace = std::chrono::hours(1);  // only the finished mark ends a file
  o.read_block_bytes = 256;
  o.chunk_bytes = 512;
  o.queue_bytes = 2048;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(WaitForBackpressure(follower));
  MultilogRotate(dir_.path(), 1, Text("b", 1, 20));
  RenameToPrevious(dir_.path());
  WriteFile(current, Text("c", 1, 20));
  ASSERT_TRUE(consumer.WaitForLast(Expected("c", 20, 20).front()));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(),
            Join(Join(Expected("a", 1, 300), Expected("b", 1, 20)), Expected("c", 1, 20)));
  EXPECT_EQ(follower.figures().rotations, 2u);
  // Its rotated name changes nothing; nor does the next rotation seen
  // while the old file is `previous` and not yet marked.
  FinishPrevious(dir_.path(), 2);
  RenameToPrevious(dir_.path());
  WriteFile(current, Text("d", 1, 5));
  consumer.WaitPolls();
  FinishPrevious(dir_.path(), 3);
  ASSERT_TRUE(consumer.WaitForLast(Expected("d", 5, 5).front()));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all().size(), 345u);
  EXPECT_EQ(follower.figures().rotations, 3u);
  EXPECT_EQ(follower.figures().lost_rotations, 0u);
}

// Rotations while the reader is blocked in the middle of a file, several
// of them before it reads on; then `current` missing (between multilog's
// rename and its new file) long enough for the reader to see it.
TEST_F(LogFollowerTest, RotationsWhileTheReaderIsMidFileLoseNothing) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 300));
  LogFollowerOptions o = Options(current);
  o.rename_grace = std::chrono::hours(1);
  o.read_block_bytes = 256;
  o.chunk_bytes = 512;
  o.queue_bytes = 2048;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(WaitForBackpressure(follower));
  Append(current, Text("a", 301, 310));
  MultilogRotate(dir_.path(), 1, Text("b", 1, 40));
  MultilogRotate(dir_.path(), 2, Text("c", 1, 40));
  ASSERT_TRUE(consumer.WaitForLines(390));
  Append(current, Text("c", 41, 41));
  RenameToPrevious(dir_.path());
  consumer.WaitPolls();  // `current` is missing meanwhile
  WriteFile(current, Text("d", 1, 30));
  FinishPrevious(dir_.path(), 3);
  MultilogRotate(dir_.path(), 4, Text("e", 1, 5));
  ASSERT_TRUE(consumer.WaitForLast(Expected("e", 5, 5).front()));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(),
            Join(Join(Expected("a", 1, 310), Expected("b", 1, 40)),
                 Join(Join(Expected("c", 1, 41), Expected("d", 1, 30)), Expected("e", 1, 5))));
  EXPECT_EQ(follower.figures().rotations, 4u);
  EXPECT_EQ(follower.figures().lost_rotations, 0u);
  EXPECT_EQ(follower.figures().read_errors, 0u);
}

// The file being read is removed (multilog's n: the oldest goes) before the
// reader gets to its successor, which is no newer by mtime than it (file
// timestamps are coarse): the successor is still read.
TEST_F(LogFollowerTest, SuccessorOfARemovedFileWithTheSameMtimeIsRead) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 200));
  LogFollowerOptions o = Options(current);
  o.rename_grace = std::chrono::hours(1);
  o.read_block_bytes = 256;
  o.chunk_bytes = 512;
  o.queue_bytes = 2048;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(WaitForBackpressure(follower));
  MultilogRotate(dir_.path(), 1, Text("b", 1, 3));
  MultilogRotate(dir_.path(), 2, Text("c", 1, 2));
  const std::string first = dir_.File(MultilogName(1)), second = dir_.File(MultilogName(2));
  fs::last_write_time(second, fs::last_write_time(first));
  fs::remove(first);
  ASSERT_TRUE(consumer.WaitForLast(Expected("c", 2, 2).front()));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(),
            Join(Join(Expected("a", 1, 200), Expected("b", 1, 3)), Expected("c", 1, 2)));
  EXPECT_EQ(follower.figures().rotations, 2u);
  EXPECT_EQ(follower.figures().lost_rotations, 0u);
}

// Past the newest 256 rotated files the follower keeps open, the older
// ones due to be read are passed over: counted and told, not silent.
TEST_F(LogFollowerTest, RotatedFilesPastTheOpenLimitAreCountedLost) {
  const std::string log_dir = dir_.File("log");
  LogFollower follower(Options(log_dir + "/current"));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  consumer.WaitPolls(2);
  const std::string staging = dir_.File("staging");
  fs::create_directories(staging);
  for (int i = 1; i <= 258; ++i) WriteFile(staging + "/" + MultilogName(i), Text("r", i, i));
  WriteFile(staging + "/current", Text("c", 1, 1));
  fs::rename(staging, log_dir);
  ASSERT_TRUE(consumer.WaitForLast(Expected("c", 1, 1).front()));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("r", 3, 258), Expected("c", 1, 1)));
  EXPECT_EQ(follower.figures().lost_rotations, 2u);
  EXPECT_TRUE(Noticed(MultilogName(1) + " is passed over unread"));
  EXPECT_TRUE(Noticed(MultilogName(2) + " is passed over unread"));
}

TEST_F(LogFollowerTest, RestartsInsideARotatedFileCompressedWithGzip) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 20));
  std::map<std::string, LogPosition> saved = RunUntil(path, 20);
  // While stopped: more lines, then two logrotate runs with compress.
  Append(path, Text("a", 21, 30));
  fs::rename(path, path + ".1");
  WriteFile(path, Text("b", 1, 5));
  fs::rename(path + ".1", path + ".2");
  Compress(path + ".2", path + ".2.gz");
  fs::rename(path, path + ".1");
  WriteFile(path, Text("c", 1, 5));

  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start(saved).ok());
  ASSERT_TRUE(consumer.WaitForLines(20));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(),
            Join(Expected("a", 21, 30), Join(Expected("b", 1, 5), Expected("c", 1, 5))));
  const LogFollowerFigures f = follower.figures();
  EXPECT_EQ(f.lost_rotations, 0u);
  EXPECT_EQ(f.rotations, 2u);
  EXPECT_EQ(f.read_errors, 0u);
}

TEST_F(LogFollowerTest, RestartsInsideARotatedFileCompressedWithZstd) {
  const std::string path = dir_.File("mail.log");
  WriteFile(path, Text("a", 1, 40));
  std::map<std::string, LogPosition> saved = RunUntil(path, 40);
  // dateext: mail.log-20240101.zst (older), mail.log-20240102 (newer).
  Append(path, Text("a", 41, 45));
  fs::rename(path, path + "-20240101");
  Compress(path + "-20240101", path + "-20240101.zst", /*zstd=*/true);
  WriteFile(path, Text("b", 1, 3));
  fs::rename(path, path + "-20240102");
  WriteFile(path, Text("c", 1, 3));

  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start(saved).ok());
  ASSERT_TRUE(consumer.WaitForLines(11));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(),
            Join(Expected("a", 41, 45), Join(Expected("b", 1, 3), Expected("c", 1, 3))));
  EXPECT_EQ(follower.figures().lost_rotations, 0u);

  // And the position handed over last continues exactly where it left.
  follower.Stop();
  consumer.Drain();
  std::map<std::string, LogPosition> again = consumer.saved();
  Append(path, Text("c", 4, 4));
  LogFollower next(Options(path));
  Consumer next_consumer(next);
  ASSERT_TRUE(next.Start(again).ok());
  ASSERT_TRUE(next_consumer.WaitForLines(1));
  next_consumer.WaitPolls();
  EXPECT_EQ(next_consumer.all(), Expected("c", 4, 4));
}

TEST_F(LogFollowerTest, RestartsWithNothingChanged) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 3));
  std::map<std::string, LogPosition> saved = RunUntil(path, 3);
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start(saved).ok());
  consumer.WaitPolls();
  EXPECT_TRUE(consumer.all().empty());
  Append(path, Text("a", 4, 4));
  ASSERT_TRUE(consumer.WaitForLines(1));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Expected("a", 4, 4));
  const LogFollowerFigures f = follower.figures();
  EXPECT_EQ(f.lost_rotations + f.truncations + f.rotations, 0u);
}

TEST_F(LogFollowerTest, RestartsAfterCopytruncateFromTheCopy) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 20));
  std::map<std::string, LogPosition> saved = RunUntil(path, 20);
  Append(path, Text("a", 21, 25));
  fs::copy_file(path, path + ".1");
  fs::resize_file(path, 0);
  Append(path, Text("b", 1, 2));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start(saved).ok());
  ASSERT_TRUE(consumer.WaitForLines(7));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("a", 21, 25), Expected("b", 1, 2)));
  EXPECT_EQ(follower.figures().lost_rotations, 0u);
}

TEST_F(LogFollowerTest, FollowsCopytruncate) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 20));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(20));
  // Lines the follower may or may not have read before the copy: either
  // way each arrives once, from the file or from its copy.
  Append(path, Text("a", 21, 23));
  fs::copy_file(path, path + ".1");
  fs::resize_file(path, 0);
  Append(path, Text("b", 1, 1));
  ASSERT_TRUE(consumer.WaitForLines(24));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 23), Expected("b", 1, 1)));
  EXPECT_EQ(follower.figures().truncations, 1u);
  EXPECT_TRUE(Noticed("truncated"));
}

TEST_F(LogFollowerTest, TruncatedAndRewrittenFileIsReadFromItsStart) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 20));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(20));
  // Truncated in place, then more written than had been read: only the
  // content at the start tells.
  {
    std::ofstream out(path, std::ios::trunc);
    out << Text("b", 1, 25);
  }
  ASSERT_TRUE(consumer.WaitForLines(45));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 20), Expected("b", 1, 25)));
  EXPECT_EQ(follower.figures().truncations, 1u);
  // The position names the new content (a head of the same length as the
  // old one's).
  const LogPosition end = consumer.saved().at(path);
  EXPECT_EQ(end.fingerprint_len, kFingerprintBytes);
  EXPECT_EQ(end.offset, fs::file_size(path));
  EXPECT_EQ(end.fingerprint, LogFingerprint(ReadFile(path).substr(0, end.fingerprint_len)));
}

TEST_F(LogFollowerTest, SavedFileDeletedStartsTheLiveFileFromItsStart) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 20));
  std::map<std::string, LogPosition> saved = RunUntil(path, 20);
  fs::remove(path);
  WriteFile(path, Text("b", 1, 3));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start(saved).ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Expected("b", 1, 3));
  EXPECT_EQ(follower.figures().lost_rotations, 1u);
  EXPECT_TRUE(Noticed("is gone"));
}

TEST_F(LogFollowerTest, GlobMatchesSeveralStreamsAndLaterOnes) {
  fs::create_directories(dir_.File("a"));
  fs::create_directories(dir_.File("b"));
  WriteFile(dir_.File("a/current"), Text("a-old", 1, 2));
  WriteFile(dir_.File("b/current"), Text("b-old", 1, 2));
  LogFollowerOptions o = Options(dir_.File("*/current"));
  o.from = StartFrom::kEnd;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitUntil([&] { return follower.figures().streams == 2; }));
  consumer.WaitPolls();
  Append(dir_.File("a/current"), Text("a", 1, 2));
  Append(dir_.File("b/current"), Text("b", 1, 1));
  // A stream that appears after the start is new: read from its start.
  fs::create_directories(dir_.File("c"));
  WriteFile(dir_.File("c/current"), Text("c", 1, 2));
  ASSERT_TRUE(consumer.WaitForLines(5));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.lines(dir_.File("a/current")), Expected("a", 1, 2));
  EXPECT_EQ(consumer.lines(dir_.File("b/current")), Expected("b", 1, 1));
  EXPECT_EQ(consumer.lines(dir_.File("c/current")), Expected("c", 1, 2));
  EXPECT_EQ(consumer.all().size(), 5u);
  EXPECT_EQ(follower.streams().size(), 3u);
}

TEST_F(LogFollowerTest, GlobLeavesRotatedFilesToTheirStream) {
  for (const char* name : {"app.log", "app.log.1", "app.log.2.gz", "current", "previous",
                           "@4000000065a3f1c22f0b6a1c.s", "notes.zst"}) {
    WriteFile(dir_.File(name), "x\n");
  }
  fs::create_directories(dir_.File("subdir"));
  LogFollower follower(Options(dir_.File("*")));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  consumer.WaitPolls();
  std::vector<std::string> paths;
  for (const LogStreamStatus& s : follower.streams()) paths.push_back(s.path);
  EXPECT_EQ(paths, (std::vector<std::string>{dir_.File("app.log"), dir_.File("current")}));
}

TEST_F(LogFollowerTest, CutsLinesOverTheLimit) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, "short\n" + std::string(250, 'x') + "\nafter\n" + std::string(60, 'y'));
  LogFollowerOptions o = Options(path);
  o.max_line_bytes = 100;
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  // The held part of a line grows past the limit across reads.
  Append(path, std::string(100, 'y'));
  ASSERT_TRUE(consumer.WaitUntil([&] { return follower.figures().oversize_lines == 2; }));
  Append(path, "yyy\nlast\n");
  ASSERT_TRUE(consumer.WaitForLines(5));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), (std::vector<std::string>{"short", std::string(100, 'x'), "after",
                                                      std::string(100, 'y'), "last"}));
  EXPECT_EQ(follower.figures().oversize_lines, 2u);
  EXPECT_EQ(consumer.saved().at(path).offset, fs::file_size(path));
}

TEST_F(LogFollowerTest, FinishedFileHandsOverItsUnterminatedLastLine) {
  const std::string current = dir_.File("current");
  WriteFile(current, Text("a", 1, 2) + "no lf");
  LogFollower follower(Options(current));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(2));
  fs::rename(current, dir_.File("@4000000065a3f1c22f0b6a1c.s"));
  WriteFile(current, Text("b", 1, 1));
  ASSERT_TRUE(consumer.WaitForLines(4));
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 2), Join({"no lf"}, Expected("b", 1, 1))));
}

TEST_F(LogFollowerTest, BackpressureSlowsTheReaderAndLosesNothing) {
  const std::string path = dir_.File("app.log");
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "line " + std::to_string(i) + "\n";
  WriteFile(path, text);
  LogFollowerOptions o = Options(path);
  o.queue_bytes = 2048;
  o.chunk_bytes = 512;
  LogFollower follower(std::move(o));
  ASSERT_TRUE(follower.Start().ok());
  std::vector<std::string> got;
  std::size_t max_queued = 0;
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  LogChunk c;
  while (got.size() < 5000 && std::chrono::steady_clock::now() < deadline) {
    max_queued = std::max<std::size_t>(max_queued, follower.figures().queued_bytes);
    if (!follower.TryPop(c)) {
      std::this_thread::sleep_for(100us);
      continue;
    }
    std::this_thread::sleep_for(200us);  // a slow consumer
    std::size_t at = 0;
    while (at < c.lines.size()) {
      const std::size_t lf = c.lines.find('\n', at);
      got.push_back(c.lines.substr(at, lf - at));
      at = lf + 1;
    }
    follower.Release(std::move(c));
  }
  ASSERT_EQ(got.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(got[i], "line " + std::to_string(i));
  EXPECT_GT(follower.figures().queue_waits, 0u);
  EXPECT_LE(max_queued, 2048u);
}

TEST_F(LogFollowerTest, StopIsPromptWhileWaitingForRoomOrBetweenPolls) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 2000));
  LogFollowerOptions o = Options(path);
  o.queue_bytes = 1024;
  o.chunk_bytes = 512;
  o.poll_interval = std::chrono::hours(1);
  LogFollower follower(std::move(o));
  ASSERT_TRUE(follower.Start().ok());
  Consumer consumer(follower);
  ASSERT_TRUE(consumer.WaitUntil([&] { return follower.figures().queue_waits > 0; }));
  auto t0 = std::chrono::steady_clock::now();
  follower.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);

  LogFollowerOptions slow = Options(path);
  slow.poll_interval = std::chrono::hours(1);
  LogFollower sleeper(std::move(slow));
  ASSERT_TRUE(sleeper.Start().ok());
  ASSERT_TRUE(consumer.WaitUntil([&] { return sleeper.figures().polls >= 1; }));
  t0 = std::chrono::steady_clock::now();
  sleeper.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  sleeper.Stop();  // idempotent
}

TEST_F(LogFollowerTest, StartRejectsBadOptionsAndASecondStart) {
  LogFollower none(LogFollowerOptions{});
  EXPECT_EQ(none.Start().code(), StatusCode::kInvalidArgument);
  LogFollowerOptions o = Options(dir_.File("x"));
  o.queue_bytes = 0;
  LogFollower zero(std::move(o));
  EXPECT_EQ(zero.Start().code(), StatusCode::kInvalidArgument);
  LogFollower twice(Options(dir_.File("x")));
  ASSERT_TRUE(twice.Start().ok());
  EXPECT_EQ(twice.Start().code(), StatusCode::kFailedPrecondition);
}

TEST_F(LogFollowerTest, ReadErrorIsCountedOncePerCauseAndRetried) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 2));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(consumer.WaitForLines(2));
  // The path now names something that cannot be read as a log.
  fs::rename(path, path + ".1");
  fs::create_directory(path);
  ASSERT_TRUE(consumer.WaitUntil([&] { return follower.figures().read_errors == 1; }));
  consumer.WaitPolls(20);
  EXPECT_EQ(follower.figures().read_errors, 1u);
  EXPECT_NE(follower.figures().last_error.find("not a regular file"), std::string::npos);
  EXPECT_NE(follower.streams()[0].error, "");
  fs::remove(path);
  WriteFile(path, Text("b", 1, 1));
  ASSERT_TRUE(consumer.WaitForLines(3));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("a", 1, 2), Expected("b", 1, 1)));
  EXPECT_EQ(follower.streams()[0].error, "");
}

TEST_F(LogFollowerTest, CorruptCompressedPredecessorIsCountedAndPassed) {
  const std::string path = dir_.File("app.log");
  WriteFile(path, Text("a", 1, 20));
  std::map<std::string, LogPosition> saved = RunUntil(path, 20);
  Append(path, Text("a", 21, 22));
  fs::rename(path, path + ".1");
  Compress(path + ".1", path + ".1.gz");
  // A broken gzip trailer (CRC): the content reads, then the check fails.
  std::string gz = ReadFile(path + ".1.gz");
  gz[gz.size() - 8] = static_cast<char>(~gz[gz.size() - 8]);
  WriteFile(path + ".1.gz", gz);
  WriteFile(path, Text("b", 1, 1));
  LogFollower follower(Options(path));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start(saved).ok());
  ASSERT_TRUE(consumer.WaitForLines(3));
  consumer.WaitPolls();
  EXPECT_EQ(consumer.all(), Join(Expected("a", 21, 22), Expected("b", 1, 1)));
  EXPECT_EQ(follower.figures().read_errors, 1u);
  EXPECT_NE(follower.figures().last_error.find("gzip"), std::string::npos);
}

// The real multilog (daemontools) rotating small files while the follower
// follows `current`: every line arrives once, in order.
TEST_F(LogFollowerTest, FollowsRealMultilog) {
  if (std::system("command -v multilog >/dev/null 2>&1") != 0) {
    FAIL() << "multilog is not installed (daemontools; scripts/install-deps.sh --test)";
  }
  const std::string log_dir = dir_.File("log");
  fs::create_directories(log_dir);
  LogFollowerOptions o = Options(log_dir + "/current");
  o.rename_grace = std::chrono::hours(1);  // only multilog's finished mark ends a file
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  FILE* pipe = ::popen(("exec multilog t s4096 n3 " + log_dir).c_str(), "w");
  ASSERT_NE(pipe, nullptr);
  std::vector<std::string> sent;
  int n = 0;
  for (int batch = 0; batch < 40; ++batch) {
    // Mostly small batches; every fourth spans one or two rotations.
    const int lines = batch % 4 == 3 ? 90 : 12;
    for (int i = 0; i < lines; ++i, ++n) {
      std::string line = "qmail-smtpd: pid " + std::to_string(n) + " Accept::RCPT::Rcpthosts";
      std::fprintf(pipe, "%s\n", line.c_str());
      sent.push_back(std::move(line));
    }
    std::fflush(pipe);
    ASSERT_TRUE(consumer.WaitForLines(sent.size())) << "batch " << batch;
  }
  EXPECT_EQ(::pclose(pipe), 0);
  consumer.WaitPolls();
  ASSERT_EQ(consumer.all().size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const std::string& got = consumer.all()[i];
    // multilog t: "@" + 24 hex + " " before the line.
    ASSERT_GT(got.size(), 26u);
    EXPECT_EQ(got[0], '@');
    EXPECT_EQ(got.substr(26), sent[i]) << "line " << i;
  }
  EXPECT_GE(follower.figures().rotations, 4u);
  EXPECT_EQ(follower.figures().read_errors, 0u);
}

// The real multilog rotating a small `current` in bursts, several times
// between two polls, in a directory that the follower first sees after
// multilog has rotated in it a few times: every line arrives once, in
// order, those of the first files included.
TEST_F(LogFollowerTest, FollowsRealMultilogThroughQuickRotationsFromItsFirstFile) {
  if (std::system("command -v multilog >/dev/null 2>&1") != 0) {
    FAIL() << "multilog is not installed (daemontools; scripts/install-deps.sh --test)";
  }
  const std::string staging = dir_.File("staging");
  const std::string log_dir = dir_.File("log");
  LogFollowerOptions o = Options(log_dir + "/current");
  o.poll_interval = 20ms;
  o.rename_grace = std::chrono::hours(1);  // only multilog's finished mark ends a file
  LogFollower follower(std::move(o));
  Consumer consumer(follower);
  ASSERT_TRUE(follower.Start().ok());
  consumer.WaitPolls(2);
  fs::create_directories(staging);
  FILE* pipe = ::popen(("exec multilog t s4096 n200 " + staging).c_str(), "w");
  ASSERT_NE(pipe, nullptr);
  // On an early return too, multilog gets its end of input and finishes
  // before the directory is removed.
  struct Closer {
    FILE*& pipe;
    ~Closer() {
      if (pipe != nullptr) ::pclose(pipe);
    }
  } closer{pipe};
  std::vector<std::string> sent;
  std::uintmax_t written = 0;  // by multilog: "@" + 24 hex + " " before each line
  auto send = [&](int lines) {
    for (int i = 0; i < lines; ++i) {
      std::string line = "qmail-smtpd: pid " + std::to_string(sent.size()) +
                         " Accept::RCPT::Rcpthosts_" + std::string(sent.size() % 37, 'x');
      std::fprintf(pipe, "%s\n", line.c_str());
      written += 26 + line.size() + 1;
      sent.push_back(std::move(line));
    }
    std::fflush(pipe);
  };
  // A first burst of several files, all written before the directory
  // appears where the follower looks (multilog holds it open).
  send(300);
  auto multilog_bytes = [&] {
    std::uintmax_t total = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(staging, ec)) {
      const std::string name = e.path().filename().string();
      const std::uintmax_t size = fs::file_size(e.path(), ec);
      if ((name == "current" || name[0] == '@') && !ec) total += size;
    }
    return total;
  };
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (multilog_bytes() != written && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(multilog_bytes(), written);
  fs::rename(staging, log_dir);
  for (int burst = 0; burst < 40; ++burst) {
    send(burst % 5 == 4 ? 250 : 10 + 7 * (burst % 5));  // every fifth: several rotations
    std::this_thread::sleep_for(std::chrono::milliseconds(burst % 3 * 4));
  }
  EXPECT_EQ(::pclose(std::exchange(pipe, nullptr)), 0);
  ASSERT_TRUE(consumer.WaitForLast(sent.back()));
  consumer.WaitPolls();
  ASSERT_EQ(consumer.all().size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const std::string& got = consumer.all()[i];
    ASSERT_GT(got.size(), 26u);
    ASSERT_EQ(got.substr(26), sent[i]) << "line " << i;
  }
  std::uint64_t rotated = 0;
  for (const auto& e : fs::directory_iterator(log_dir)) {
    rotated += e.path().filename().string()[0] == '@';
  }
  EXPECT_GE(rotated, 20u);
  EXPECT_EQ(follower.figures().rotations, rotated);
  EXPECT_EQ(follower.figures().lost_rotations, 0u);
  EXPECT_EQ(follower.figures().read_errors, 0u);
}

}  // namespace
}  // namespace mailscope::ingest
