// Spool: the records a remote store (PostgreSQL) could not take yet, on
// disk under the data directory, oldest first, until it can.
//
// The spool is a directory of segment files, NNNNNNNNNNNNNNNNNNNN.spool
// (numbered in order), each a run of encoded records (record.h) back to
// back. Append() adds to the newest segment and syncs it to disk before it
// returns, so a spooled record survives mailscope and the machine stopping;
// a segment is closed at kSegmentBytes and a new one begun. The writer
// drains the oldest segment whole and Pop()s it once the store has
// committed every record in it; a crash between the commit and the Pop()
// writes the segment again, which the records' keys make harmless.
//
// Bounded: a chunk that would take the spool past `max_bytes` is refused
// whole and its records counted as dropped by the caller. A segment cut
// short by a crash while it was written is read up to its last whole
// record; the rest was never acknowledged. Writer thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mailscope::store {

class Spool {
 public:
  static constexpr std::uint64_t kSegmentBytes = 8u << 20;

  // Opens (and makes, 0700) `dir` and takes in the segments already there.
  static Result<std::unique_ptr<Spool>> Open(const std::string& dir, std::uint64_t max_bytes);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends whole encoded records holding `records` records; on success they
  // are on disk. ResourceExhausted ("spool_full") when they do not fit.
  Status Append(std::string_view data, std::uint64_t records);

  bool empty() const { return segments_.empty(); }
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t records() const { return records_; }

  // Reads the oldest segment into `out` (its whole records only) and closes
  // it for appending. REQUIRES: !empty().
  Status ReadOldest(std::string& out);
  // Removes the oldest segment, after its records were committed.
  Status PopOldest();

 private:
  struct Segment {
    std::uint64_t number;
    std::uint64_t bytes;  // whole records
    std::uint64_t records;
  };
  explicit Spool(std::string dir, std::uint64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string PathOf(std::uint64_t number) const;
  Status StartSegment();
  void CloseCurrent();

  std::string dir_;
  std::uint64_t max_bytes_;
  std::deque<Segment> segments_;
  int fd_ = -1;  // the newest segment, open for appending; -1 when closed
  std::uint64_t next_number_ = 1;
  std::uint64_t bytes_ = 0;
  std::uint64_t records_ = 0;
};

// The number of whole records at the start of `data` and their bytes.
struct RecordCount {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
};
RecordCount CountRecords(std::string_view data);

}  // namespace mailscope::store
