#include "serve/log_source.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "catalog/event_router.h"
#include "core/temp_dir_testing.h"

namespace mailscope::serve {
namespace {

using namespace std::chrono_literals;

// Keeps what it sees: (origin stream, origin seq, name), and can pretend to
// be an output that keeps events and is backlogged.
class Recorder final : public pipeline::Consumer {
 public:
  std::string_view Consume(const Event& e) override {
    seen.push_back({e.origin_stream, e.origin_seq});
    names.push_back(std::string(NameText(e.name)));
    return {};
  }
  bool Backlogged() const override { return backlogged; }

  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
  std::vector<std::string> names;
  bool backlogged = false;
};

struct Fixture {
  Fixture() {
    auto router = catalog::MakeCatalogRouter();
    EXPECT_TRUE(router.ok());
    dispatcher = std::make_unique<pipeline::Dispatcher>(counters, std::move(*router));
    dispatcher->Register("records", recorder);
  }
  SourceContext Context() { return SourceContext{*dispatcher, counters, log, clock, nullptr}; }
  LogConfig Config(const std::string& file) const {
    LogConfig c;
    c.name = "test";
    c.format = "qmail";
    c.files = {file};
    c.start = "start";
    c.time_zone = "UTC";
    c.poll_interval = 10ms;
    c.checkpoint_interval = 20ms;
    return c;
  }
  // Runs the loop until `done` or a generous timeout.
  template <typename Done>
  bool RunUntil(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io.restart();
      io.run_for(10ms);
    }
    return true;
  }

  boost::asio::io_context io;
  stats::IngestCounters counters;
  std::unique_ptr<pipeline::Dispatcher> dispatcher;
  Recorder recorder;
  RateLimitedLog log{10, 10s};
  SystemClock clock;
  testing::TempDir dir{"ms-logsource"};
};

void Append(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << text;
}

std::string Lines(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s += "new msg " + std::to_string(i) + "\n";
  return s;
}

// A restart goes on where the saved position is, and the lines read again
// after it get the places they had: (stream, bytes before the line).
TEST(LogSourceTest, RestartsAtTheSavedPositionWithTheSamePlaces) {
  Fixture f;
  const std::string log = f.dir.File("current");
  Append(log, Lines(0, 50));
  {
    LogSource source(f.io, f.Context(), f.Config(log), f.dir.path());
    ASSERT_TRUE(source.Start().ok());
    ASSERT_TRUE(f.RunUntil([&] { return f.recorder.seen.size() == 50; }));
    ASSERT_TRUE(f.RunUntil([&] { return source.figures().checkpoints > 0; }));
    source.Stop();
  }
  ASSERT_EQ(f.recorder.seen.size(), 50u);
  const std::uint64_t stream = f.recorder.seen[0].first;
  EXPECT_NE(stream, 0u);
  std::uint64_t place = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(f.recorder.seen[i], std::make_pair(stream, place)) << i;
    place += ("new msg " + std::to_string(i) + "\n").size();
  }
  Append(log, Lines(50, 60));
  LogSource again(f.io, f.Context(), f.Config(log), f.dir.path());
  ASSERT_TRUE(again.Start().ok());
  ASSERT_TRUE(f.RunUntil([&] { return f.recorder.seen.size() == 60; }));
  EXPECT_EQ(f.recorder.seen[50], std::make_pair(stream, place));
  EXPECT_EQ(f.recorder.names[50], "qmail-send::new_msg");
  again.Stop();
}

// While an output that keeps events is backlogged, no line is taken; the
// reader waits, and every line comes once the output has room.
TEST(LogSourceTest, WaitsWhileAnOutputIsBacklogged) {
  Fixture f;
  const std::string log = f.dir.File("current");
  Append(log, Lines(0, 20));
  f.recorder.backlogged = true;
  LogSource source(f.io, f.Context(), f.Config(log), f.dir.path());
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(f.RunUntil([&] { return source.figures().follower.lines == 20; }));
  f.io.restart();
  f.io.run_for(200ms);  // the loop turns; the lines wait
  EXPECT_TRUE(f.recorder.seen.empty());
  f.recorder.backlogged = false;
  ASSERT_TRUE(f.RunUntil([&] { return f.recorder.seen.size() == 20; }));
  source.Stop();
}

// A state file that is not one, or is cut, is an error naming it; one whose
// stream path holds a newline is read back.
TEST(LogSourceTest, StateFilesAreCheckedAndPathsEscaped) {
  Fixture f;
  const std::string odd_dir = f.dir.File("a\nb");
  std::filesystem::create_directory(odd_dir);
  const std::string log = odd_dir + "/current";
  Append(log, Lines(0, 5));
  {
    LogSource source(f.io, f.Context(), f.Config(log), f.dir.path());
    ASSERT_TRUE(source.Start().ok());
    ASSERT_TRUE(f.RunUntil([&] { return source.figures().checkpoints > 0; }));
    source.Stop();
  }
  {
    LogSource source(f.io, f.Context(), f.Config(log), f.dir.path());
    ASSERT_TRUE(source.Start().ok()) << "a path with a newline reads back";
    source.Stop();
  }
  const std::string state = f.dir.File("test.state");
  for (const std::string& bad :
       {std::string("garbage"), std::string("mailscope-log-state 1\nstream x\n"),
        std::string("mailscope-log-state 1\nstream x\nposition 1:0:0:0:0:0:x\nsequence 0\n"
                    "state 18446744073709551615\n")}) {
    std::ofstream(state, std::ios::trunc | std::ios::binary) << bad;
    LogSource source(f.io, f.Context(), f.Config(log), f.dir.path());
    const Status st = source.Start();
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("test.state"), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace mailscope::serve
