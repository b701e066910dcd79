#include "store/spool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/temp_dir_testing.h"
#include "store/record.h"

namespace mailscope::store {
namespace {

std::string Records(std::uint64_t first, std::uint64_t n, std::size_t pad = 0) {
  std::string out;
  const std::string fields = "{\"pad\":\"" + std::string(pad, 'p') + "\"}";
  for (std::uint64_t i = first; i < first + n; ++i) {
    RecordView r;
    r.source = Source::kExim;
    r.event = "msg:delivery";
    r.seq = i;
    r.fields = fields;
    AppendRecord(r, out);
  }
  return out;
}

std::vector<std::uint64_t> Seqs(std::string_view data) {
  std::vector<std::uint64_t> out;
  RecordView r;
  std::size_t size = 0;
  while (!data.empty() && DecodeRecord(data, r, &size).ok()) {
    out.push_back(r.seq);
    data.remove_prefix(size);
  }
  return out;
}

TEST(SpoolTest, KeepsRecordsInOrderAcrossReopening) {
  testing::TempDir dir("ms-spool");
  const std::string path = dir.File("spool");
  {
    auto spool = Spool::Open(path, 1 << 30);
    ASSERT_TRUE(spool.ok()) << spool.status().message();
    EXPECT_TRUE((*spool)->empty());
    ASSERT_TRUE((*spool)->Append(Records(0, 10), 10).ok());
    ASSERT_TRUE((*spool)->Append(Records(10, 5), 5).ok());
    EXPECT_EQ((*spool)->records(), 15u);
  }
  auto spool = Spool::Open(path, 1 << 30);
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ((*spool)->records(), 15u);
  ASSERT_TRUE((*spool)->Append(Records(15, 1), 1).ok());  // a new segment after reopening
  std::vector<std::uint64_t> seen;
  std::string data;
  while (!(*spool)->empty()) {
    ASSERT_TRUE((*spool)->ReadOldest(data).ok());
    for (std::uint64_t s : Seqs(data)) seen.push_back(s);
    ASSERT_TRUE((*spool)->PopOldest().ok());
  }
  std::vector<std::uint64_t> want(16);
  for (std::uint64_t i = 0; i < 16; ++i) want[i] = i;
  EXPECT_EQ(seen, want);
  EXPECT_EQ((*spool)->bytes(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(path));
}

TEST(SpoolTest, SegmentsRollOverAndTheBoundRefusesWholeChunks) {
  testing::TempDir dir("ms-spool");
  const std::string chunk = Records(0, 100, 1000);  // about 100 KiB
  auto spool = Spool::Open(dir.File("s"), 30 * chunk.size() + 10);
  ASSERT_TRUE(spool.ok());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE((*spool)->Append(chunk, 100).ok()) << i;
  const Status full = (*spool)->Append(chunk, 100);
  EXPECT_EQ(full.reason(), "spool_full");
  EXPECT_EQ((*spool)->records(), 3000u);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.File("s")))
    files += e.is_regular_file();
  EXPECT_EQ(files, 1u + (30 * chunk.size()) / Spool::kSegmentBytes);
}

TEST(SpoolTest, ASegmentCutShortKeepsItsWholeRecords) {
  testing::TempDir dir("ms-spool");
  const std::string path = dir.File("s");
  {
    auto spool = Spool::Open(path, 1 << 30);
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE((*spool)->Append(Records(0, 3), 3).ok());
  }
  // A crash in the middle of a write leaves part of a record.
  const std::string segment = path + "/00000000000000000001.spool";
  const std::string partial = Records(3, 1).substr(0, 20);
  const int fd = ::open(segment.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  ::close(fd);
  auto spool = Spool::Open(path, 1 << 30);
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ((*spool)->records(), 3u);
  std::string data;
  ASSERT_TRUE((*spool)->ReadOldest(data).ok());
  EXPECT_EQ(Seqs(data), (std::vector<std::uint64_t>{0, 1, 2}));
}

}  // namespace
}  // namespace mailscope::store
