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

}  // namespace
}  // namespace mailscope::ingest
