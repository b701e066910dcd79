// LineAssembler: turns the reads of one connection into LF-terminated lines
// when the reads land in a buffer the connection does not own (one scratch
// buffer serves every connection of a listener). Complete lines are handed
// over where they lie in the read; only the incomplete end of a read is
// copied and kept, so a connection between lines holds nothing, and one in
// the middle of a line holds that line's bytes so far and no more. Lines
// longer than the bound are skipped up to their LF and reported once each,
// as LineFramer does. A reader that must stop between two lines (its
// replies are not being read) makes on_line return false: the rest of the
// read is kept as a backlog, and Resume() goes on with it before the next
// read. Thread-compatible; owned by one connection.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace mailscope::ingest {

class LineAssembler {
 public:
  // `max_line_bytes` excludes the LF.
  explicit LineAssembler(std::size_t max_line_bytes) : max_line_(max_line_bytes) {}

  // Calls on_line(std::span<char>) for each line that `data` completes
  // (without LF; writable, valid during the call; inside `data` unless the
  // line began in an earlier read) and on_overflow(std::size_t bytes) for
  // each line over the bound. Keeps the incomplete end. When on_line
  // returns bool, false stops after that line and keeps the rest as the
  // backlog.
  template <typename OnLine, typename OnOverflow>
  void Feed(std::span<char> data, OnLine&& on_line, OnOverflow&& on_overflow);
  // Goes on with the backlog as Feed would. REQUIRES: backlog().
  template <typename OnLine, typename OnOverflow>
  void Resume(OnLine&& on_line, OnOverflow&& on_overflow);
  // The input has ended: hands an incomplete line held to on_line as if its
  // LF had come, for peers that end their last line by closing (Exim's
  // readsocket). Returns whether there was one. REQUIRES: !backlog().
  template <typename OnLine>
  bool FinishAtEnd(OnLine&& on_line);

  // Bytes held: of an incomplete line (0 while skipping an overlong one),
  // or the backlog.
  std::size_t held_bytes() const { return held_.size(); }
  // Bytes of memory held for them.
  std::size_t capacity_bytes() const { return held_.capacity(); }
  // Inside a line: bytes held, or an overlong line being skipped.
  bool mid_line() const { return (!held_.empty() && !backlog_) || skipping_; }
  // Skipping a line over the bound, its LF not seen yet.
  bool skipping() const { return skipping_; }
  // Stopped by on_line with bytes of the read left to go through.
  bool backlog() const { return backlog_; }

 private:
  // Empties the held line; its memory goes back unless it is small.
  void Clear();

  static constexpr std::size_t kKeepCapacity = 256;

  std::size_t max_line_;
  std::string held_;
  bool skipping_ = false;  // inside an overlong line, dropping until LF
  std::size_t skipped_ = 0;
  bool backlog_ = false;  // held_ is the unread rest of a read, not one line
};

namespace line_assembler_internal {

// Calls on_line; true unless it returns bool and that is false.
template <typename OnLine>
bool Continue(OnLine& on_line, std::span<char> line) {
  if constexpr (std::is_same_v<std::invoke_result_t<OnLine&, std::span<char>>, bool>) {
    return on_line(line);
  } else {
    on_line(line);
    return true;
  }
}

}  // namespace line_assembler_internal

template <typename OnLine, typename OnOverflow>
void LineAssembler::Feed(std::span<char> data, OnLine&& on_line, OnOverflow&& on_overflow) {
  char* const begin = data.data();
  char* const end = begin + data.size();
  char* p = begin;
  auto next_lf = [&](char* from) {
    return from < end ? static_cast<char*>(__builtin_memchr(from, '\n', end - from)) : nullptr;
  };
  if (skipping_ || !held_.empty()) {
    char* lf = next_lf(p);
    const std::size_t len = static_cast<std::size_t>((lf ? lf : end) - p);
    if (skipping_) {
      skipped_ += len;
    } else if (held_.size() + len > max_line_) {
      skipping_ = true;
      skipped_ = held_.size() + len;
      Clear();
    } else {
      held_.append(p, len);
    }
    if (lf == nullptr) return;
    p = lf + 1;
    bool go_on = true;
    if (skipping_) {
      skipping_ = false;
      on_overflow(std::exchange(skipped_, 0));
    } else {
      go_on =
          line_assembler_internal::Continue(on_line, std::span<char>(held_.data(), held_.size()));
      Clear();
    }
    if (!go_on) {
      if (p < end) {
        held_.assign(p, static_cast<std::size_t>(end - p));
        backlog_ = true;
      }
      return;
    }
  }
  for (char* lf = next_lf(p); lf != nullptr; lf = next_lf(p)) {
    const auto len = static_cast<std::size_t>(lf - p);
    char* const line = p;
    p = lf + 1;
    if (len > max_line_) {
      on_overflow(len);
    } else if (!line_assembler_internal::Continue(on_line, std::span<char>(line, len))) {
      if (p < end) {
        held_.assign(p, static_cast<std::size_t>(end - p));
        backlog_ = true;
      }
      return;
    }
  }
  const auto rest = static_cast<std::size_t>(end - p);
  if (rest > max_line_) {
    skipping_ = true;
    skipped_ = rest;
  } else if (rest > 0) {
    held_.assign(p, rest);
  }
}

template <typename OnLine, typename OnOverflow>
void LineAssembler::Resume(OnLine&& on_line, OnOverflow&& on_overflow) {
  std::string rest;
  rest.swap(held_);
  backlog_ = false;
  Feed(std::span<char>(rest.data(), rest.size()), on_line, on_overflow);
}

template <typename OnLine>
bool LineAssembler::FinishAtEnd(OnLine&& on_line) {
  if (held_.empty() || skipping_) return false;
  std::string line;
  line.swap(held_);
  line_assembler_internal::Continue(on_line, std::span<char>(line.data(), line.size()));
  return true;
}

}  // namespace mailscope::ingest
