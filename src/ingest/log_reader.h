// LogReader: one log file as a stream of bytes, whether it is plain, gzip or
// zstd, read in large blocks. It is the reading half of the log sources: the
// live follower (log_follower.h) reads rotated predecessors through it, and a
// batch `replay` reads FILE or `-` (standard input) with it from start to end.
// Compressed input is positioned by the bytes of uncompressed content, so an
// offset means the same before and after a file was compressed. Blocking
// I/O: use it on a thread of its own, never on the loop. Thread-compatible;
// owns its file descriptor (unless made with OverFd) and its buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mailscope::ingest {

class LogReaderDecoder;  // log_reader.cc

enum class LogFormat {
  kAuto,  // told from the first bytes of content
  kPlain,
  kGzip,  // one or more gzip members (RFC 1952), as gzip and logrotate write them
  kZstd,  // one or more zstd frames
};

// "auto", "plain", "gzip", "zstd".
std::string_view LogFormatName(LogFormat format);

// The format of content that begins with `first_bytes` (pass at least 4
// bytes when there are that many): gzip's magic 1f 8b, zstd's 28 b5 2f fd,
// anything else is plain.
LogFormat DetectLogFormat(std::string_view first_bytes);

class LogReader {
 public:
  // Bytes of input read at once: large, since compressed logs are read end
  // to end and each read is a system call.
  static constexpr std::size_t kBlockBytes = 1 << 20;

  // Opens `path`; "-" is standard input (read as a pipe, never closed).
  // Errors: kNotFound, kUnavailable (permission, I/O, not a regular file
  // or pipe), each with the system's text.
  static Result<LogReader> Open(const std::string& path, LogFormat format = LogFormat::kAuto,
                                std::size_t block_bytes = kBlockBytes);
  // Reads the regular file open at `fd`, which the caller keeps open for the
  // reader's life (it is not closed here). Reads are positioned (pread), so
  // they neither use nor move the descriptor's offset.
  static LogReader OverFd(int fd, std::string name, LogFormat format,
                          std::size_t block_bytes = kBlockBytes);

  LogReader(LogReader&& other) noexcept;
  LogReader& operator=(LogReader&& other) noexcept;
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;
  ~LogReader();

  // Reads up to buffer.size() bytes of content: the count, 0 at the end of
  // the input. A plain file may grow, and a later Read returns what was
  // appended. Output decoded before an error comes first; the error follows
  // at the next call. Errors: kInvalidArgument for corrupt or cut-short
  // compressed data (reason "corrupt_gzip", "corrupt_zstd", "truncated", or
  // "corrupt" when read again; the rest of that input is unreadable),
  // kUnavailable for I/O errors (may be retried).
  Result<std::size_t> Read(std::span<char> buffer);

  // Goes to content offset `offset`: plain files by seeking; compressed ones
  // by reading (from the start when going back). Errors: as Read;
  // kInvalidArgument (reason "beyond_end") when compressed content ends
  // before `offset` (then at the end); kFailedPrecondition to go back on a pipe.
  Status SeekTo(std::uint64_t offset);

  // Bytes of content read or skipped: the offset of the next Read.
  std::uint64_t position() const { return position_; }
  // Bytes of the file itself consumed (compressed bytes for compressed
  // input): with input_size(), a progress figure.
  std::uint64_t input_position() const;
  // The file's size when opened; none for a pipe.
  std::optional<std::uint64_t> input_size() const { return input_size_; }
  // The format; kAuto until the first Read or SeekTo has told it.
  LogFormat format() const { return format_; }
  const std::string& name() const { return name_; }

 private:
  LogReader(int fd, bool owns_fd, bool seekable, std::string name, LogFormat format,
            std::size_t block_bytes);
  void Close();
  // Reads the input at input_offset_ (positioned when seekable).
  Result<std::size_t> ReadInput(char* out, std::size_t size);
  // Fills the input buffer with at least 4 bytes (or to the end), then
  // decides the format.
  Status Detect();
  // Refills the (empty) input buffer; false at the end of the input.
  Result<bool> Refill();
  Result<std::size_t> ReadCompressed(std::span<char> buffer);
  Status Rewind();

  int fd_ = -1;
  bool owns_fd_ = false;
  bool seekable_ = true;
  std::string name_;
  LogFormat format_ = LogFormat::kAuto;
  std::size_t block_bytes_ = kBlockBytes;
  std::optional<std::uint64_t> input_size_;
  std::uint64_t position_ = 0;      // content bytes read or skipped
  std::uint64_t input_offset_ = 0;  // file bytes read into in_ or handed out
  std::unique_ptr<char[]> in_;      // input block, allocated at the first need
  std::size_t in_pos_ = 0;
  std::size_t in_len_ = 0;
  bool input_ended_ = false;  // compressed input: the file's end was read
  bool failed_ = false;       // corrupt compressed data met: nothing more is read
  std::unique_ptr<LogReaderDecoder> decoder_;
};

}  // namespace mailscope::ingest
