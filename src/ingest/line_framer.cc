#include "ingest/line_framer.h"

#include <cstring>

namespace mailscope::ingest {

LineFramer::LineFramer(std::size_t max_line_bytes, std::size_t read_chunk)
    : max_line_(max_line_bytes), chunk_(read_chunk), buf_(max_line_bytes + 1 + 2 * read_chunk) {}

void LineFramer::Compact() {
  if (begin_ == 0) return;
  std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

std::span<char> LineFramer::WriteSpace() {
  if (buf_.size() - end_ < chunk_) Compact();
  // After Compact() at most max_line_ bytes are held, so a chunk always fits.
  return {buf_.data() + end_, buf_.size() - end_};
}

void LineFramer::Commit(std::size_t n) { end_ += n; }

}  // namespace mailscope::ingest
