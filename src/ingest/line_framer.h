// LineFramer: turns a byte stream (FIFO, socket) into LF-terminated lines
// with a bound on line length. Lines longer than the bound are skipped up to
// their LF and reported once each, so a giant line never costs its
// neighbours. The buffer starts at two read chunks and grows only while a
// long line is being read (to at most the bound plus two chunks), so an
// idle connection costs a few KiB whatever its bound. A busy stream gets
// larger reads: while reads fill all the space offered, the read chunk
// doubles up to a maximum, and it falls back after the first read that does
// not (then an empty, grown buffer is given back as after a long line).
// Thread-compatible; owned by one reader.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace mailscope::ingest {

class LineFramer {
 public:
  // `max_line_bytes` excludes the LF. `max_read_chunk` (at least
  // `read_chunk`; 0 means `read_chunk`) bounds the read chunk of a busy stream.
  explicit LineFramer(std::size_t max_line_bytes, std::size_t read_chunk = 64 * 1024,
                      std::size_t max_read_chunk = 0);

  // Space to read into; always at least the current read chunk. May move the
  // held bytes (spans from earlier Drain calls are invalid afterwards).
  std::span<char> WriteSpace();
  // Marks `n` bytes of WriteSpace() as filled.
  void Commit(std::size_t n);

  // Calls on_line(std::span<char>) for each complete line (without LF; the
  // span is writable and valid during the call) and on_overflow(std::size_t
  // dropped_bytes) for each line that exceeded the bound.
  template <typename OnLine, typename OnOverflow>
  void Drain(OnLine&& on_line, OnOverflow&& on_overflow);

  // Bytes held of an incomplete last line.
  std::size_t pending_bytes() const { return end_ - begin_; }
  // Bytes of buffer allocated.
  std::size_t buffer_bytes() const { return buf_.size(); }
  // The space WriteSpace() guarantees now.
  std::size_t read_chunk() const { return chunk_; }

 private:
  void Compact();

  static constexpr std::size_t kInitialChunks = 2;
  static constexpr std::size_t kShrinkChunks = 16;  // shrink back when empty past this

  std::size_t max_line_;
  std::size_t base_chunk_;
  std::size_t max_chunk_;
  std::size_t chunk_;        // base_chunk_ .. max_chunk_
  std::size_t offered_ = 0;  // bytes the last WriteSpace() returned
  std::size_t max_size_;
  std::vector<char> buf_;
  std::size_t begin_ = 0;    // first unconsumed byte
  std::size_t end_ = 0;      // one past the last filled byte
  std::size_t scanned_ = 0;  // bytes after begin_ already known to hold no LF
  bool discarding_ = false;  // inside an overlong line, dropping until LF
  std::size_t discarded_ = 0;
};

template <typename OnLine, typename OnOverflow>
void LineFramer::Drain(OnLine&& on_line, OnOverflow&& on_overflow) {
  char* base = buf_.data();
  for (;;) {
    std::size_t from = begin_ + scanned_;
    char* lf = from < end_ ? static_cast<char*>(__builtin_memchr(base + from, '\n', end_ - from))
                           : nullptr;
    if (lf == nullptr) {
      std::size_t held = end_ - begin_;
      if (discarding_) {
        discarded_ += held;
        begin_ = end_;
        scanned_ = 0;
      } else if (held > max_line_) {
        discarding_ = true;
        discarded_ = held;
        begin_ = end_;
        scanned_ = 0;
      } else {
        scanned_ = held;
      }
      break;
    }
    auto pos = static_cast<std::size_t>(lf - base);
    std::size_t len = pos - begin_;
    if (discarding_) {
      discarding_ = false;
      on_overflow(discarded_ + len);
      discarded_ = 0;
    } else if (len > max_line_) {
      on_overflow(len);
    } else {
      on_line(std::span<char>(base + begin_, len));
    }
    begin_ = pos + 1;
    scanned_ = 0;
  }
  if (begin_ == end_) begin_ = end_ = 0;
}

}  // namespace mailscope::ingest
