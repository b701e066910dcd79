#include "ingest/line_assembler.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ingest/line_framer.h"

namespace mailscope::ingest {
namespace {

struct Collected {
  std::vector<std::string> lines;
  std::vector<std::size_t> overflows;
  bool operator==(const Collected&) const = default;
};

void Feed(LineAssembler& a, std::string bytes, Collected& c) {
  a.Feed(
      std::span<char>(bytes.data(), bytes.size()),
      [&](std::span<char> l) { c.lines.emplace_back(l.data(), l.size()); },
      [&](std::size_t dropped) { c.overflows.push_back(dropped); });
}

TEST(LineAssemblerTest, JoinsLinesAcrossReads) {
  LineAssembler a(16);
  Collected c;
  Feed(a, "ab", c);
  EXPECT_EQ(a.held_bytes(), 2u);
  EXPECT_TRUE(a.mid_line());
  Feed(a, "c\nde", c);
  Feed(a, "\n\nx", c);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"abc", "de", ""}));
  EXPECT_EQ(a.held_bytes(), 1u);
  Feed(a, "\n", c);
  EXPECT_EQ(c.lines.back(), "x");
  EXPECT_FALSE(a.mid_line());
}

TEST(LineAssemblerTest, FinishAtEndHandsOverTheUnfinishedLine) {
  LineAssembler a(8);
  Collected c;
  Feed(a, "one\ntw", c);
  Feed(a, "o", c);
  auto collect = [&](std::span<char> l) { c.lines.emplace_back(l.data(), l.size()); };
  EXPECT_TRUE(a.FinishAtEnd(collect));
  EXPECT_EQ(c.lines, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(a.held_bytes(), 0u);
  EXPECT_FALSE(a.mid_line());
  // Nothing held, or an overlong line being skipped: nothing to hand over.
  EXPECT_FALSE(a.FinishAtEnd(collect));
  Feed(a, "123456789", c);
  EXPECT_FALSE(a.FinishAtEnd(collect));
  EXPECT_EQ(c.lines.size(), 2u);
}

TEST(LineAssemblerTest, BoundIsExactAndOverlongLinesAreSkippedWhole) {
  LineAssembler a(8);
  Collected c;
  Feed(a, "12345678\n123456789\nok\n", c);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"12345678", "ok"}));
  EXPECT_EQ(c.overflows, (std::vector<std::size_t>{9}));
  // Over the bound only once joined, then over it within one read.
  Feed(a, "12345", c);
  Feed(a, "6789", c);
  EXPECT_EQ(a.held_bytes(), 0u);
  EXPECT_TRUE(a.mid_line());
  Feed(a, "abc\nnext\n" + std::string(20, 'y'), c);
  Feed(a, "zz\nlast\n", c);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"12345678", "ok", "next", "last"}));
  EXPECT_EQ(c.overflows, (std::vector<std::size_t>{9, 12, 22}));
}

// Between lines a connection holds no memory beyond a small string; a long
// line's memory goes back once it is complete.
TEST(LineAssemblerTest, HoldsOnlyTheIncompleteLine) {
  LineAssembler a(1 << 20);
  Collected c;
  Feed(a, std::string(100, 'a'), c);
  EXPECT_EQ(a.held_bytes(), 100u);
  EXPECT_LT(a.capacity_bytes(), 256u);
  Feed(a, std::string(200'000, 'b'), c);
  EXPECT_GE(a.capacity_bytes(), 200'100u);
  Feed(a, "\n", c);
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0].size(), 200'100u);
  EXPECT_EQ(a.held_bytes(), 0u);
  EXPECT_LE(a.capacity_bytes(), 256u);
}

// A reader that stops after each line gets every line once, in order, by
// resuming until the backlog is gone.
TEST(LineAssemblerTest, StoppedReaderResumesWithTheRestOfTheRead) {
  LineAssembler a(16);
  std::vector<std::string> lines;
  auto one = [&](std::span<char> l) {
    lines.emplace_back(l.data(), l.size());
    return false;
  };
  auto overflow = [](std::size_t) { FAIL(); };
  std::string first = "ab";
  a.Feed(std::span<char>(first.data(), first.size()), one, overflow);
  std::string second = "c\nd\ne\nhalf";
  a.Feed(std::span<char>(second.data(), second.size()), one, overflow);
  EXPECT_EQ(lines, (std::vector<std::string>{"abc"}));
  EXPECT_TRUE(a.backlog());
  EXPECT_FALSE(a.mid_line());  // a backlog is no stalled line
  EXPECT_EQ(a.held_bytes(), 8u);
  while (a.backlog()) a.Resume(one, overflow);
  EXPECT_EQ(lines, (std::vector<std::string>{"abc", "d", "e"}));
  EXPECT_TRUE(a.mid_line());
  EXPECT_EQ(a.held_bytes(), 4u);
  std::string third = "\n";
  a.Feed(std::span<char>(third.data(), third.size()), one, overflow);
  EXPECT_EQ(lines.back(), "half");
  EXPECT_FALSE(a.backlog());
  EXPECT_EQ(a.held_bytes(), 0u);
}

// Any split of any input gives what LineFramer gives for the whole.
TEST(LineAssemblerTest, AgreesWithLineFramerOnRandomSplits) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string input;
    const int n = static_cast<int>(rng() % 400);
    for (int i = 0; i < n; ++i)
      input += (rng() % 9 == 0) ? '\n' : static_cast<char>('a' + rng() % 3);
    const std::size_t bound = 1 + rng() % 40;
    Collected want;
    LineFramer framer(bound, 8);
    std::string_view rest = input;
    while (!rest.empty()) {
      auto space = framer.WriteSpace();
      const std::size_t k = std::min(space.size(), rest.size());
      std::copy_n(rest.data(), k, space.data());
      framer.Commit(k);
      rest.remove_prefix(k);
      framer.Drain([&](std::span<char> l) { want.lines.emplace_back(l.data(), l.size()); },
                   [&](std::size_t d) { want.overflows.push_back(d); });
    }
    Collected got;
    LineAssembler a(bound);
    for (std::size_t at = 0; at < input.size();) {
      const std::size_t k = std::min<std::size_t>(1 + rng() % 50, input.size() - at);
      Feed(a, input.substr(at, k), got);
      at += k;
    }
    ASSERT_EQ(got, want) << "round " << round << " bound " << bound;
  }
}

}  // namespace
}  // namespace mailscope::ingest
