#include "ingest/line_framer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace mailscope::ingest {
namespace {

struct Collected {
  std::vector<std::string> lines;
  std::vector<std::size_t> overflows;
};

void Feed(LineFramer& f, std::string_view bytes, Collected& c) {
  while (!bytes.empty()) {
    auto space = f.WriteSpace();
    std::size_t n = std::min(space.size(), bytes.size());
    std::memcpy(space.data(), bytes.data(), n);
    f.Commit(n);
    bytes.remove_prefix(n);
    f.Drain([&](std::span<char> l) { c.lines.emplace_back(l.data(), l.size()); },
            [&](std::size_t dropped) { c.overflows.push_back(dropped); });
  }
}

TEST(LineFramerTest, SplitsAcrossReads) {
  LineFramer f(16, 4);
  Collected c;
  Feed(f, "ab", c);
  Feed(f, "c\nde", c);
  Feed(f, "\n\nx", c);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"abc", "de", ""}));
  EXPECT_EQ(f.pending_bytes(), 1u);
}

TEST(LineFramerTest, DropsOverlongLinesAndKeepsNeighbours) {
  LineFramer f(8, 4);
  Collected c;
  Feed(f, "good\n" + std::string(100, 'x') + "\nalso good\nok\n", c);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"good", "ok"}));
  EXPECT_EQ(c.overflows, (std::vector<std::size_t>{100, 9}));
}

TEST(LineFramerTest, ExactBoundIsAccepted) {
  LineFramer f(8, 3);
  Collected c;
  Feed(f, "12345678\n123456789\n", c);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"12345678"}));
  EXPECT_EQ(c.overflows.size(), 1u);
}

// A connection with a 1 MiB bound costs two read chunks until a long line
// comes, and gets the memory back once that line is gone.
TEST(LineFramerTest, BufferGrowsForLongLinesOnly) {
  LineFramer f(1 << 20, 4096);
  EXPECT_EQ(f.buffer_bytes(), 8192u);
  Collected c;
  for (int i = 0; i < 1000; ++i) Feed(f, "EVENT\t0\t1\t0\t1\t0\tnx\n", c);
  EXPECT_EQ(f.buffer_bytes(), 8192u);
  std::string long_line(300 * 1024, 'y');
  for (std::size_t at = 0; at < long_line.size(); at += 4096) {
    Feed(f, std::string_view(long_line).substr(at, 4096), c);
  }
  EXPECT_GE(f.buffer_bytes(), long_line.size());
  Feed(f, "\nshort\n", c);
  ASSERT_EQ(c.lines.size(), 1002u);
  EXPECT_EQ(c.lines[1000], long_line);
  EXPECT_EQ(c.lines[1001], "short");
  Feed(f, "next\n", c);  // the next read finds the buffer empty and shrinks it
  EXPECT_EQ(f.buffer_bytes(), 8192u);
  EXPECT_EQ(c.lines.back(), "next");
}

TEST(LineFramerTest, BusyStreamsReadMoreAtATimeAndGiveItBack) {
  LineFramer f(1 << 20, 4096, 64 * 1024);
  Collected c;
  const std::string line = "EVENT\t0\t1\t0\t1\t0\tnx\n";
  std::string stream;
  while (stream.size() < 1024 * 1024) stream += line;
  std::size_t reads = 0, at = 0;
  while (at < stream.size()) {  // a socket that always has more than the space
    auto space = f.WriteSpace();
    const std::size_t n = std::min(space.size(), stream.size() - at);
    std::memcpy(space.data(), stream.data() + at, n);
    f.Commit(n);
    at += n;
    ++reads;
    f.Drain([&](std::span<char> l) { c.lines.emplace_back(l.data(), l.size()); },
            [&](std::size_t dropped) { c.overflows.push_back(dropped); });
  }
  EXPECT_EQ(c.lines.size(), stream.size() / line.size());
  EXPECT_TRUE(c.overflows.empty());
  EXPECT_LT(reads, stream.size() / 16384);  // not one read per 8 KiB
  EXPECT_LE(f.buffer_bytes(), 4u * 64 * 1024);
  Feed(f, line, c);  // a short read: the chunk falls back, the empty buffer shrinks
  EXPECT_EQ(f.read_chunk(), 4096u);
  Feed(f, line, c);
  EXPECT_EQ(f.buffer_bytes(), 8192u);
  EXPECT_EQ(c.lines.back(), "EVENT\t0\t1\t0\t1\t0\tnx");
}

}  // namespace
}  // namespace mailscope::ingest
