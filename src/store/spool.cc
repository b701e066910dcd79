#include "store/spool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "store/record.h"

namespace mailscope::store {
namespace {

Status Errno(std::string_view what, const std::string& path) {
  return Unavailable(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

// "00000000000000000042.spool" -> 42; 0 when the name is not a segment's.
std::uint64_t SegmentNumber(std::string_view name) {
  constexpr std::string_view kSuffix = ".spool";
  if (name.size() != 20 + kSuffix.size() || !name.ends_with(kSuffix)) return 0;
  std::uint64_t n = 0;
  for (char c : name.substr(0, 20)) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

Status ReadFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errno("cannot read", path);
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return Status::Ok();
}

}  // namespace

RecordCount CountRecords(std::string_view data) {
  RecordCount count;
  RecordView r;
  std::size_t size = 0;
  while (count.bytes < data.size() && DecodeRecord(data.substr(count.bytes), r, &size).ok()) {
    count.bytes += size;
    ++count.records;
  }
  return count;
}

Result<std::unique_ptr<Spool>> Spool::Open(const std::string& dir, std::uint64_t max_bytes) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot make", dir);
  std::unique_ptr<Spool> spool(new Spool(dir, max_bytes));
  std::vector<std::uint64_t> numbers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::uint64_t n = SegmentNumber(entry.path().filename().string());
    if (n > 0) numbers.push_back(n);
  }
  if (ec) return Unavailable(fmt::format("cannot list {}: {}", dir, ec.message()));
  std::sort(numbers.begin(), numbers.end());
  std::string data;
  for (std::uint64_t n : numbers) {
    MS_RETURN_IF_ERROR(ReadFile(spool->PathOf(n), data));
    const RecordCount count = CountRecords(data);
    if (count.bytes < data.size()) {
      spdlog::warn(
          "records spool: {} ends in {} bytes that are not a whole record (cut short "
          "while it was written); they are left out",
          spool->PathOf(n), data.size() - count.bytes);
    }
    spool->segments_.push_back({n, count.bytes, count.records});
    spool->bytes_ += count.bytes;
    spool->records_ += count.records;
    spool->next_number_ = n + 1;
  }
  if (!spool->segments_.empty()) {
    spdlog::info("records spool: {} records ({} bytes) from before are waiting in {}",
                 spool->records_, spool->bytes_, dir);
  }
  return spool;
}

Spool::~Spool() { CloseCurrent(); }

std::string Spool::PathOf(std::uint64_t number) const {
  return fmt::format("{}/{:020}.spool", dir_, number);
}

void Spool::CloseCurrent() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status Spool::StartSegment() {
  CloseCurrent();
  const std::uint64_t n = next_number_++;
  const std::string path = PathOf(n);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return Errno("cannot make", path);
  segments_.push_back({n, 0, 0});
  // The new name must survive a crash too.
  const int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

Status Spool::Append(std::string_view data, std::uint64_t records) {
  if (data.empty()) return Status::Ok();
  if (bytes_ + data.size() > max_bytes_) {
    return ResourceExhausted("spool_full",
                             fmt::format("the records spool holds {} bytes; {} more would pass "
                                         "its limit of {}",
                                         bytes_, data.size(), max_bytes_));
  }
  if (fd_ < 0 || segments_.empty() || segments_.back().bytes >= kSegmentBytes)
    MS_RETURN_IF_ERROR(StartSegment());
  Segment& seg = segments_.back();
  const std::string path = PathOf(seg.number);
  std::string_view left = data;
  while (!left.empty()) {
    const ssize_t n = ::write(fd_, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Errno("cannot write", path);
      // What went in of this chunk is not a whole run of records: cut it off.
      if (::ftruncate(fd_, static_cast<off_t>(seg.bytes)) != 0) CloseCurrent();
      return s;
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fdatasync(fd_) != 0) return Errno("cannot sync", path);
  seg.bytes += data.size();
  seg.records += records;
  bytes_ += data.size();
  records_ += records;
  return Status::Ok();
}

Status Spool::ReadOldest(std::string& out) {
  const Segment& seg = segments_.front();
  if (segments_.size() == 1) CloseCurrent();  // the next Append() starts a new one
  MS_RETURN_IF_ERROR(ReadFile(PathOf(seg.number), out));
  out.resize(std::min<std::size_t>(out.size(), seg.bytes));
  return Status::Ok();
}

Status Spool::PopOldest() {
  const Segment seg = segments_.front();
  if (segments_.size() == 1) CloseCurrent();
  const std::string path = PathOf(seg.number);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", path);
  segments_.pop_front();
  bytes_ -= seg.bytes;
  records_ -= seg.records;
  return Status::Ok();
}

}  // namespace mailscope::store
