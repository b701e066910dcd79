#include "ingest/line_framer.h"

#include <algorithm>
#include <cstring>

namespace mailscope::ingest {

LineFramer::LineFramer(std::size_t max_line_bytes, std::size_t read_chunk,
                       std::size_t max_read_chunk)
    : max_line_(max_line_bytes),
      base_chunk_(read_chunk),
      max_chunk_(std::max(read_chunk, max_read_chunk)),
      chunk_(read_chunk),
      max_size_(max_line_bytes + 1 + 2 * max_chunk_),
      buf_(std::min(max_size_, kInitialChunks * read_chunk)) {}

void LineFramer::Compact() {
  if (begin_ == 0) return;
  std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

std::span<char> LineFramer::WriteSpace() {
  if (begin_ == end_ && chunk_ == base_chunk_ && buf_.size() > kShrinkChunks * base_chunk_) {
    // The long line or the burst that grew the buffer is gone: give the memory back.
    std::vector<char>(std::min(max_size_, kInitialChunks * base_chunk_)).swap(buf_);
    begin_ = end_ = 0;
  }
  if (buf_.size() - end_ < chunk_) {
    Compact();
    if (buf_.size() - end_ < chunk_) {
      // After Compact() at most max_line_ bytes are held, so growing up to
      // max_size_ always leaves room for a chunk.
      buf_.resize(std::min(max_size_, std::max(buf_.size() * 2, end_ + chunk_)));
    }
  }
  offered_ = buf_.size() - end_;
  return {buf_.data() + end_, offered_};
}

void LineFramer::Commit(std::size_t n) {
  end_ += n;
  // A read that filled the space: more is waiting, so read more at a time.
  chunk_ = n >= offered_ ? std::min(max_chunk_, 2 * chunk_) : base_chunk_;
}

}  // namespace mailscope::ingest
