#include "ingest/log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

namespace mailscope::ingest {

// A decompressor of one format, fed the reader's input block.
class LogReaderDecoder {
 public:
  virtual ~LogReaderDecoder() = default;
  // Decodes from in[*in_pos, in_len) into `out`, advancing *in_pos: the
  // bytes produced. Called with no input left, it hands out what it holds.
  virtual Result<std::size_t> Decode(const char* in, std::size_t in_len, std::size_t* in_pos,
                                     std::span<char> out) = 0;
  // Inside a gzip member or zstd frame: input that ends here is cut short.
  virtual bool mid_stream() const = 0;
  // Back to the state before any input.
  virtual void Reset() = 0;
};

namespace {

constexpr std::size_t kMinBlockBytes = 4096;
constexpr std::size_t kSkipBytes = 64 << 10;  // scratch for skipping compressed content

std::string SystemError(const std::string& name, const char* what, int err) {
  return name + ": " + what + ": " + std::strerror(err);
}

unsigned ClampUInt(std::size_t n) {
  return static_cast<unsigned>(std::min<std::size_t>(n, UINT_MAX));
}

// gzip through zlib's inflate. windowBits 15 + 32 accepts gzip and zlib
// headers; a file of several members (gzip's concatenation rule, RFC 1952
// 2.2) is read member after member, and zero bytes after a member are
// padding, as gzip(1) treats them.
class GzipDecoder final : public LogReaderDecoder {
 public:
  GzipDecoder() { init_ = inflateInit2(&zs_, 15 + 32); }
  ~GzipDecoder() override {
    if (init_ == Z_OK) inflateEnd(&zs_);
  }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  Result<std::size_t> Decode(const char* in, std::size_t in_len, std::size_t* in_pos,
                             std::span<char> out) override {
    if (init_ != Z_OK) return Internal("gzip: inflateInit2 failed");
    if (!error_.ok()) return error_;
    std::size_t produced = 0;
    for (;;) {
      if (!in_member_) {
        while (*in_pos < in_len && in[*in_pos] == 0) ++*in_pos;
        if (*in_pos == in_len) return produced;
        if (members_ > 0) inflateReset(&zs_);
        in_member_ = true;
      }
      if (produced == out.size()) return produced;
      const std::size_t in_avail = in_len - *in_pos;
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in + *in_pos));
      zs_.avail_in = ClampUInt(in_avail);
      zs_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      zs_.avail_out = ClampUInt(out.size() - produced);
      const unsigned in_before = zs_.avail_in;
      const unsigned out_before = zs_.avail_out;
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      *in_pos += in_before - zs_.avail_in;
      produced += out_before - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        ++members_;
        continue;
      }
      if (rc == Z_BUF_ERROR) return produced;  // needs input or room; no progress
      if (rc != Z_OK) {
        error_ = Rejected("corrupt_gzip", std::string("gzip: ") +
                                              (zs_.msg != nullptr ? zs_.msg : "inflate failed"));
        // What came out before the error is good: it goes first.
        if (produced > 0) return produced;
        return error_;
      }
      if (zs_.avail_in == 0 || zs_.avail_out == 0) return produced;
    }
  }
  bool mid_stream() const override { return in_member_; }
  void Reset() override {
    if (init_ == Z_OK) inflateReset(&zs_);
    in_member_ = false;
    members_ = 0;
    error_ = Status::Ok();
  }

 private:
  z_stream zs_{};
  Status error_;  // met after some output: reported by the next call
  int init_ = Z_STREAM_ERROR;
  bool in_member_ = false;
  std::uint64_t members_ = 0;
};

// zstd through ZSTD_decompressStream, which reads concatenated and
// skippable frames on its own.
class ZstdDecoder final : public LogReaderDecoder {
 public:
  ZstdDecoder() : dctx_(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(dctx_); }
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  Result<std::size_t> Decode(const char* in, std::size_t in_len, std::size_t* in_pos,
                             std::span<char> out) override {
    if (dctx_ == nullptr) return Internal("zstd: ZSTD_createDCtx failed");
    if (!error_.ok()) return error_;
    ZSTD_inBuffer ib{in, in_len, *in_pos};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    for (;;) {
      const std::size_t in_before = ib.pos;
      const std::size_t out_before = ob.pos;
      const std::size_t rc = ZSTD_decompressStream(dctx_, &ob, &ib);
      if (ZSTD_isError(rc)) {
        *in_pos = ib.pos;
        error_ = Rejected("corrupt_zstd", std::string("zstd: ") + ZSTD_getErrorName(rc));
        if (ob.pos > 0) return ob.pos;
        return error_;
      }
      if (ib.pos == in_before && ob.pos == out_before) break;
      // 0: a frame ended and everything it held is out. (Called between
      // frames with no input, it returns the next header's size: no change.)
      in_frame_ = rc != 0;
      if (ob.pos == ob.size || ib.pos == ib.size) break;
    }
    *in_pos = ib.pos;
    return ob.pos;
  }
  bool mid_stream() const override { return in_frame_; }
  void Reset() override {
    ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_only);
    in_frame_ = false;
    error_ = Status::Ok();
  }

 private:
  ZSTD_DCtx* dctx_;
  Status error_;  // met after some output: reported by the next call
  bool in_frame_ = false;
};

}  // namespace

std::string_view LogFormatName(LogFormat format) {
  switch (format) {
    case LogFormat::kAuto:
      return "auto";
    case LogFormat::kPlain:
      return "plain";
    case LogFormat::kGzip:
      return "gzip";
    case LogFormat::kZstd:
      return "zstd";
  }
  return "unknown";
}

LogFormat DetectLogFormat(std::string_view first_bytes) {
  auto starts = [&](std::string_view magic) {
    return first_bytes.substr(0, magic.size()) == magic;
  };
  if (starts("\x1f\x8b")) return LogFormat::kGzip;
  if (starts("\x28\xb5\x2f\xfd")) return LogFormat::kZstd;
  return LogFormat::kPlain;
}

LogReader::LogReader(int fd, bool owns_fd, bool seekable, std::string name, LogFormat format,
                     std::size_t block_bytes)
    : fd_(fd),
      owns_fd_(owns_fd),
      seekable_(seekable),
      name_(std::move(name)),
      format_(format),
      block_bytes_(std::max(block_bytes, kMinBlockBytes)) {
  struct stat st;
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
    input_size_ = static_cast<std::uint64_t>(st.st_size);
  }
  if (format_ == LogFormat::kGzip) decoder_ = std::make_unique<GzipDecoder>();
  if (format_ == LogFormat::kZstd) decoder_ = std::make_unique<ZstdDecoder>();
}

Result<LogReader> LogReader::Open(const std::string& path, LogFormat format,
                                  std::size_t block_bytes) {
  if (path == "-") return LogReader(STDIN_FILENO, false, false, "-", format, block_bytes);
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    std::string message = SystemError(path, "open", err);
    if (err == ENOENT || err == ENOTDIR) return NotFound(std::move(message));
    return Unavailable(std::move(message));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Unavailable(SystemError(path, "fstat", err));
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    ::close(fd);
    return Unavailable(path + ": not a regular file or pipe");
  }
  return LogReader(fd, true, S_ISREG(st.st_mode), path, format, block_bytes);
}

LogReader LogReader::OverFd(int fd, std::string name, LogFormat format, std::size_t block_bytes) {
  return LogReader(fd, false, true, std::move(name), format, block_bytes);
}

LogReader::LogReader(LogReader&& other) noexcept { *this = std::move(other); }

LogReader& LogReader::operator=(LogReader&& other) noexcept {
  if (this == &other) return *this;
  Close();
  fd_ = std::exchange(other.fd_, -1);
  owns_fd_ = std::exchange(other.owns_fd_, false);
  seekable_ = other.seekable_;
  name_ = std::move(other.name_);
  format_ = other.format_;
  block_bytes_ = other.block_bytes_;
  input_size_ = other.input_size_;
  position_ = other.position_;
  input_offset_ = other.input_offset_;
  in_ = std::move(other.in_);
  in_pos_ = std::exchange(other.in_pos_, 0);
  in_len_ = std::exchange(other.in_len_, 0);
  input_ended_ = other.input_ended_;
  failed_ = other.failed_;
  decoder_ = std::move(other.decoder_);
  return *this;
}

LogReader::~LogReader() { Close(); }

void LogReader::Close() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
  owns_fd_ = false;
}

std::uint64_t LogReader::input_position() const { return input_offset_ - (in_len_ - in_pos_); }

Result<std::size_t> LogReader::ReadInput(char* out, std::size_t size) {
  if (fd_ < 0) return FailedPrecondition(name_ + ": not open");
  for (;;) {
    const ssize_t n = seekable_ ? ::pread(fd_, out, size, static_cast<off_t>(input_offset_))
                                : ::read(fd_, out, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(SystemError(name_, "read", errno));
    }
    input_offset_ += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }
}

Status LogReader::Detect() {
  if (!in_) in_ = std::make_unique<char[]>(block_bytes_);
  while (in_len_ < 4) {
    auto n = ReadInput(in_.get() + in_len_, block_bytes_ - in_len_);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    in_len_ += *n;
  }
  format_ = DetectLogFormat(std::string_view(in_.get(), in_len_));
  if (format_ == LogFormat::kGzip) decoder_ = std::make_unique<GzipDecoder>();
  if (format_ == LogFormat::kZstd) decoder_ = std::make_unique<ZstdDecoder>();
  return Status::Ok();
}

Result<bool> LogReader::Refill() {
  if (!in_) in_ = std::make_unique<char[]>(block_bytes_);
  in_pos_ = 0;
  in_len_ = 0;
  auto n = ReadInput(in_.get(), block_bytes_);
  if (!n.ok()) return n.status();
  in_len_ = *n;
  if (*n == 0) input_ended_ = true;
  return *n > 0;
}

Result<std::size_t> LogReader::Read(std::span<char> buffer) {
  if (buffer.empty()) return std::size_t{0};
  if (format_ == LogFormat::kAuto) MS_RETURN_IF_ERROR(Detect());
  if (format_ != LogFormat::kPlain) return ReadCompressed(buffer);
  if (in_pos_ < in_len_) {
    const std::size_t n = std::min(buffer.size(), in_len_ - in_pos_);
    std::memcpy(buffer.data(), in_.get() + in_pos_, n);
    in_pos_ += n;
    position_ += n;
    return n;
  }
  auto n = ReadInput(buffer.data(), buffer.size());
  if (n.ok()) position_ += *n;
  return n;
}

Result<std::size_t> LogReader::ReadCompressed(std::span<char> buffer) {
  if (failed_) {
    return Rejected("corrupt", name_ + ": unreadable after an earlier error");
  }
  for (;;) {
    if (in_pos_ == in_len_ && !input_ended_) {
      auto more = Refill();
      if (!more.ok()) return more.status();
    }
    const std::size_t in_before = in_pos_;
    auto produced = decoder_->Decode(in_.get(), in_len_, &in_pos_, buffer);
    if (!produced.ok()) {
      failed_ = true;
      return Status(produced.status().code(), produced.status().reason().data(),
                    name_ + ": " + produced.status().message());
    }
    if (*produced > 0) {
      position_ += *produced;
      return *produced;
    }
    if (in_pos_ == in_len_ && input_ended_) {
      if (decoder_->mid_stream()) {
        failed_ = true;
        return Rejected("truncated", name_ + ": " + std::string(LogFormatName(format_)) +
                                         " data ends inside a frame");
      }
      return std::size_t{0};
    }
    if (in_pos_ == in_before && in_pos_ < in_len_) {
      failed_ = true;
      return Rejected("corrupt", name_ + ": the decoder makes no progress");
    }
  }
}

Status LogReader::Rewind() {
  if (!seekable_) return FailedPrecondition(name_ + ": cannot go back on a pipe");
  input_offset_ = 0;
  in_pos_ = 0;
  in_len_ = 0;
  input_ended_ = false;
  failed_ = false;
  position_ = 0;
  if (decoder_ != nullptr) decoder_->Reset();
  return Status::Ok();
}

Status LogReader::SeekTo(std::uint64_t offset) {
  if (format_ == LogFormat::kAuto) MS_RETURN_IF_ERROR(Detect());
  if (format_ == LogFormat::kPlain && seekable_) {
    in_pos_ = 0;
    in_len_ = 0;
    input_offset_ = offset;
    position_ = offset;
    return Status::Ok();
  }
  if (offset < position_) MS_RETURN_IF_ERROR(Rewind());
  std::unique_ptr<char[]> scratch;
  while (position_ < offset) {
    if (!scratch) scratch = std::make_unique<char[]>(kSkipBytes);
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kSkipBytes, offset - position_));
    auto n = Read(std::span<char>(scratch.get(), want));
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return Rejected("beyond_end", name_ + ": content ends at " + std::to_string(position_) +
                                        ", before offset " + std::to_string(offset));
    }
  }
  return Status::Ok();
}

}  // namespace mailscope::ingest
