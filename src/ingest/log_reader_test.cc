#include "ingest/log_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/temp_dir_testing.h"
#include "ingest/compress_testing.h"

namespace mailscope::ingest {
namespace {

using mailscope::testing::Gzip;
using mailscope::testing::Zstd;

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Lines that do not compress to nothing, so that compressed input spans
// several input blocks.
std::string Lines(int n, int seed = 0) {
  std::string out;
  std::uint64_t x = 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(seed);
  for (int i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out += "@40000000" + std::to_string(x) + " qmail-smtpd: pid " + std::to_string(i) +
           " Accept::RCPT::Rcpthosts_Rcptto\n";
  }
  return out;
}

std::string ReadAll(LogReader& r, std::size_t buffer_bytes = 4096) {
  std::string out;
  std::vector<char> buf(buffer_bytes);
  for (;;) {
    auto n = r.Read(buf);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) break;
    out.append(buf.data(), *n);
  }
  return out;
}

TEST(LogReaderTest, DetectsFormatFromFirstBytes) {
  EXPECT_EQ(DetectLogFormat("\x1f\x8b\x08\x00"), LogFormat::kGzip);
  EXPECT_EQ(DetectLogFormat(std::string_view("\x28\xb5\x2f\xfd", 4)), LogFormat::kZstd);
  EXPECT_EQ(DetectLogFormat("@4000000065a3f1c2"), LogFormat::kPlain);
  EXPECT_EQ(DetectLogFormat(""), LogFormat::kPlain);
  EXPECT_EQ(DetectLogFormat("\x1f"), LogFormat::kPlain);
  EXPECT_EQ(DetectLogFormat(std::string_view("\x28\xb5\x2f", 3)), LogFormat::kPlain);
}

TEST(LogReaderTest, ReadsPlainFile) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(500);
  WriteFile(dir.File("current"), content);
  auto r = LogReader::Open(dir.File("current"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(*r, 1000), content);
  EXPECT_EQ(r->format(), LogFormat::kPlain);
  EXPECT_EQ(r->position(), content.size());
  EXPECT_EQ(r->input_position(), content.size());
  EXPECT_EQ(r->input_size(), content.size());
}

TEST(LogReaderTest, ReadsGzipAcrossInputBlocks) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(40000);
  const std::string packed = Gzip(content);
  ASSERT_GT(packed.size(), 3 * 4096u);
  WriteFile(dir.File("x.2.gz"), packed);
  auto r = LogReader::Open(dir.File("x.2.gz"), LogFormat::kAuto, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(*r, 65536), content);
  EXPECT_EQ(r->format(), LogFormat::kGzip);
  EXPECT_EQ(r->position(), content.size());
  EXPECT_EQ(r->input_position(), packed.size());
  EXPECT_EQ(r->input_size(), packed.size());
}

TEST(LogReaderTest, ReadsEveryGzipMemberAndIgnoresZeroPadding) {
  testing::TempDir dir("ms-reader");
  const std::string a = Lines(100, 1), b = Lines(100, 2);
  WriteFile(dir.File("x.gz"), Gzip(a) + Gzip(b) + std::string(16, '\0'));
  auto r = LogReader::Open(dir.File("x.gz"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(*r, 777), a + b);
}

TEST(LogReaderTest, ReadsEveryZstdFrame) {
  testing::TempDir dir("ms-reader");
  const std::string a = Lines(30000, 1), b = Lines(10, 2);
  WriteFile(dir.File("x-20240101.zst"), Zstd(a) + Zstd(b));
  auto r = LogReader::Open(dir.File("x-20240101.zst"), LogFormat::kAuto, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(*r, 3000), a + b);
  EXPECT_EQ(r->format(), LogFormat::kZstd);
}

TEST(LogReaderTest, FormatComesFromContentNotName) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(50);
  WriteFile(dir.File("named.log"), Gzip(content));
  WriteFile(dir.File("named.gz"), content);
  auto gz = LogReader::Open(dir.File("named.log"));
  auto plain = LogReader::Open(dir.File("named.gz"));
  ASSERT_TRUE(gz.ok() && plain.ok());
  EXPECT_EQ(ReadAll(*gz), content);
  EXPECT_EQ(ReadAll(*plain), content);
  // A format asked for is used as it is.
  auto forced = LogReader::Open(dir.File("named.log"), LogFormat::kPlain);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(ReadAll(*forced), Gzip(content));
}

TEST(LogReaderTest, CutShortCompressedDataIsAnError) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(2000);
  const std::string gz = Gzip(content), zst = Zstd(content);
  WriteFile(dir.File("a.gz"), gz.substr(0, gz.size() / 2));
  WriteFile(dir.File("a.zst"), zst.substr(0, zst.size() / 2));
  for (const char* name : {"a.gz", "a.zst"}) {
    auto r = LogReader::Open(dir.File(name));
    ASSERT_TRUE(r.ok());
    std::string got;
    std::vector<char> buf(4096);
    Status error;
    for (;;) {
      auto n = r->Read(buf);
      if (!n.ok()) {
        error = n.status();
        break;
      }
      ASSERT_GT(*n, 0u) << name << ": ended without an error";
      got.append(buf.data(), *n);
    }
    EXPECT_EQ(error.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(error.reason(), "truncated") << name;
    EXPECT_EQ(got, content.substr(0, got.size())) << name;
    // It stays failed.
    EXPECT_FALSE(r->Read(buf).ok());
  }
}

TEST(LogReaderTest, CorruptCompressedDataIsAnError) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(2000);
  std::string gz = Gzip(content), zst = Zstd(content);
  for (std::size_t i = gz.size() / 3; i < gz.size() / 3 + 64; ++i)
    gz[i] = static_cast<char>(~gz[i]);
  for (std::size_t i = zst.size() / 3; i < zst.size() / 3 + 64; ++i) {
    zst[i] = static_cast<char>(~zst[i]);
  }
  WriteFile(dir.File("b.gz"), gz);
  WriteFile(dir.File("b.zst"), zst);
  const std::pair<const char*, const char*> cases[] = {{"b.gz", "corrupt_gzip"},
                                                       {"b.zst", "corrupt_zstd"}};
  for (auto [name, reason] : cases) {
    auto r = LogReader::Open(dir.File(name));
    ASSERT_TRUE(r.ok());
    std::vector<char> buf(4096);
    Status error;
    for (int i = 0; i < 10000 && error.ok(); ++i) {
      auto n = r->Read(buf);
      if (!n.ok()) error = n.status();
    }
    EXPECT_EQ(error.reason(), reason) << name << ": " << error.ToString();
    EXPECT_NE(error.message().find(name), std::string::npos) << error.message();
  }
}

TEST(LogReaderTest, SeekToGoesBothWaysInCompressedContent) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(5000);
  WriteFile(dir.File("c.zst"), Zstd(content));
  WriteFile(dir.File("c.gz"), Gzip(content));
  for (const char* name : {"c.zst", "c.gz"}) {
    auto r = LogReader::Open(dir.File(name));
    ASSERT_TRUE(r.ok());
    const std::uint64_t far = content.size() - 1000;
    ASSERT_TRUE(r->SeekTo(far).ok());
    EXPECT_EQ(r->position(), far);
    EXPECT_EQ(ReadAll(*r), content.substr(far));
    ASSERT_TRUE(r->SeekTo(10).ok());
    EXPECT_EQ(ReadAll(*r), content.substr(10));
    Status beyond = r->SeekTo(content.size() + 5);
    EXPECT_EQ(beyond.reason(), "beyond_end") << name;
    EXPECT_EQ(r->position(), content.size());
  }
}

TEST(LogReaderTest, PlainFileReadsWhatIsAppendedAfterItsEnd) {
  testing::TempDir dir("ms-reader");
  WriteFile(dir.File("current"), "one\n");
  auto r = LogReader::Open(dir.File("current"), LogFormat::kPlain);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(*r), "one\n");
  {
    std::ofstream out(dir.File("current"), std::ios::app);
    out << "two\n";
  }
  EXPECT_EQ(ReadAll(*r), "two\n");
  ASSERT_TRUE(r->SeekTo(0).ok());
  EXPECT_EQ(ReadAll(*r), "one\ntwo\n");
}

TEST(LogReaderTest, OverFdLeavesTheDescriptorAlone) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(20);
  WriteFile(dir.File("x.gz"), Gzip(content));
  const int fd = ::open(dir.File("x.gz").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    LogReader r = LogReader::OverFd(fd, "x.gz", LogFormat::kGzip);
    EXPECT_EQ(ReadAll(r), content);
    EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 0);
  }
  // Still open: the reader did not close it.
  char c;
  EXPECT_EQ(::pread(fd, &c, 1, 0), 1);
  ::close(fd);
}

TEST(LogReaderTest, ReadsStandardInputAsAPipe) {
  const std::string content = Lines(3000);
  const std::string packed = Gzip(content);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const int saved_stdin = ::dup(STDIN_FILENO);
  ASSERT_EQ(::dup2(pipe_fds[0], STDIN_FILENO), STDIN_FILENO);
  ::close(pipe_fds[0]);
  std::thread writer([&] {
    std::size_t done = 0;
    while (done < packed.size()) {
      const ssize_t n = ::write(pipe_fds[1], packed.data() + done, packed.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(pipe_fds[1]);
  });
  std::string got;
  {
    auto r = LogReader::Open("-");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->input_size().has_value());
    got = ReadAll(*r);
    EXPECT_EQ(r->format(), LogFormat::kGzip);
    EXPECT_EQ(r->input_position(), packed.size());
    EXPECT_EQ(r->SeekTo(0).code(), StatusCode::kFailedPrecondition);
  }
  writer.join();
  ::dup2(saved_stdin, STDIN_FILENO);
  ::close(saved_stdin);
  EXPECT_EQ(got, content);
}

TEST(LogReaderTest, OpenErrorsNameTheFile) {
  testing::TempDir dir("ms-reader");
  auto missing = LogReader::Open(dir.File("nope"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  auto directory = LogReader::Open(dir.path());
  EXPECT_EQ(directory.status().code(), StatusCode::kUnavailable);
}

TEST(LogReaderTest, MovedReaderKeepsReading) {
  testing::TempDir dir("ms-reader");
  const std::string content = Lines(3000);
  WriteFile(dir.File("m.zst"), Zstd(content));
  auto r = LogReader::Open(dir.File("m.zst"));
  ASSERT_TRUE(r.ok());
  std::vector<char> buf(1000);
  ASSERT_TRUE(r->Read(buf).ok());
  LogReader moved = std::move(*r);
  std::string rest = ReadAll(moved);
  EXPECT_EQ(std::string(buf.data(), 1000) + rest, content);
}

}  // namespace
}  // namespace mailscope::ingest
