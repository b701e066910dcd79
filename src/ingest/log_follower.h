// LogFollower: reads log files live, for the log sources (s/qmail through
// multilog, later Exim and Stalwart), and loses nothing across rotation and
// restarts. It is format-agnostic: it hands over chunks of complete lines
// with durable positions; decoding happens on the loop.
//
// Each match of its glob(3) patterns is one stream: a live file such as
// /var/log/qmail/smtpd/current. A stream follows its file through appends,
// rename rotation (multilog's `@<tai64n>.s`, logrotate's `x.1`, later
// compressed to `x.2.gz`), copytruncate and deletion, and on a restart
// continues from a saved LogPosition wherever that file went meanwhile.
//
// Threads (DESIGN.md, "Threading"): one reader thread of its own does all
// file work (stat, read, decompress) and meets the loop through a bounded
// queue. The loop calls TryPop() and, once done with a chunk, Release(); a
// full queue blocks the reader (backpressure), it never drops lines. Start,
// Stop, TryPop, Release, figures() and streams() are thread-safe. Owns its
// thread, the open files and the queued chunks; destruction stops.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/thread_annotations.h"

namespace mailscope::ingest {

// A file is known by its first kFingerprintBytes of content (uncompressed,
// so a rotated file compressed later is still recognised).
inline constexpr std::size_t kFingerprintBytes = 1024;

// The 64-bit FNV-1a hash of `head`. Part of the saved positions' format:
// changing it makes every saved position unrecognised.
std::uint64_t LogFingerprint(std::string_view head);

// Where a stream stands: a line start in one file. Durable across renames,
// compression and restarts.
struct LogPosition {
  std::uint64_t fingerprint = 0;      // LogFingerprint() of the file's first fingerprint_len bytes
  std::uint32_t fingerprint_len = 0;  // up to kFingerprintBytes; fewer while the file is shorter
  std::uint64_t offset = 0;           // bytes of content consumed, at a line start
  std::string path;                   // the file's name when last seen; informative
  std::uint64_t dev = 0;              // device and inode when last seen: a fast path only
  std::uint64_t ino = 0;

  // "1:<fingerprint, 16 hex>:<fingerprint_len>:<offset>:<dev>:<ino>:<path>",
  // all decimal but the fingerprint; the path is the rest of the string.
  std::string ToString() const;
  // Reads ToString()'s form. Errors: kInvalidArgument.
  static Result<LogPosition> Parse(std::string_view text);

  friend bool operator==(const LogPosition&, const LogPosition&) = default;
};

// How a rotated predecessor of a live file is named, see MatchRotatedName.
enum class RotatedKind {
  kMultilog,  // "@" + TAI64N + ".s" / ".u" beside "current"
  kNumbered,  // logrotate: "x.1", "x.2", ...
  kDated,     // logrotate's dateext: "x-20240131", ...
};
struct RotatedName {
  RotatedKind kind = RotatedKind::kNumbered;
  std::string_view label;    // kMultilog: the 24 hex; kDated: the date part (a view of the name)
  std::uint64_t number = 0;  // kNumbered: N
};

// Whether `name`, a file name in the directory of the live file named
// `live_name`, is a rotated predecessor of it. The rules:
//   multilog, s6-log: live "current"; "@" + 24 lowercase hex (the TAI64N of
//     the rotation) + ".s" (completely written) or ".u" (cut short by a
//     crash). Older sorts first by the hex label.
//   logrotate: live_name + "." + N (N decimal; larger is older), or
//     live_name + "-" + a date of digits with '-' or '_' between (dateext,
//     e.g. -20240131; older sorts first as a string, so one dateformat).
// Each may end in ".gz" or ".zst" (compressed after rotation).
std::optional<RotatedName> MatchRotatedName(std::string_view live_name, std::string_view name);

// A rotated predecessor found on disk.
struct RotatedFile {
  std::string path;
  RotatedKind kind = RotatedKind::kNumbered;
  std::string label;         // as RotatedName::label
  std::uint64_t number = 0;  // as RotatedName::number
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t mtime_ns = 0;
};

// The rotated predecessors of `live_path`, oldest first: within a naming
// kind by its rule, and kinds (a changed rotation scheme) by their newest
// mtime. Blocking (reads the directory, stats each file).
std::vector<RotatedFile> ListRotatedFiles(const std::string& live_path);

enum class StartFrom {
  kEnd,    // only lines written from now on (the partial last line, if any, included)
  kStart,  // the whole live file
};
// "end" or "start". Errors: kInvalidArgument.
Result<StartFrom> ParseStartFrom(std::string_view text);

struct LogFollowerOptions {
  std::vector<std::string> patterns;  // glob(3) patterns; each match is a stream
  // Where a stream without a saved position starts, for files present at
  // Start(). A stream that appears later is new: it is read from its start,
  // after the files rotated from it since Start() (last written since then),
  // which a writer may have produced before the stream was first seen.
  StartFrom from = StartFrom::kEnd;
  std::chrono::milliseconds poll_interval{250};
  // A live file renamed away is read on until it has been unchanged this
  // long (a writer may still append until it reopens); multilog's mark of a
  // finished file (mode 744) ends it at once.
  std::chrono::milliseconds rename_grace{5000};
  std::size_t max_line_bytes = 1 << 20;  // longer lines are cut to this, LF excluded
  std::size_t chunk_bytes = 256 << 10;   // lines per chunk, in bytes (one long line may exceed it)
  std::size_t queue_bytes = 4 << 20;     // chunks queued or held by the consumer
  std::size_t read_block_bytes = 1 << 20;
  // Reader thread, after it has pushed a chunk into an empty queue: wire it to
  // post a drain task to the loop. Must not block or call Stop(). May be empty.
  std::function<void()> on_ready;
  // Reader thread, for what deserves a log line (a lost rotation, a
  // truncation, a read error once per cause). May be empty.
  std::function<void(std::string_view)> notice;
};

// Complete lines of one file of one stream. A stream's chunks come in
// order, and one with lines begins where the stream's previous chunk ended;
// a position-only chunk (no lines) announces a jump (start, next file,
// truncation).
struct LogChunk {
  std::string stream;  // the stream: its live path, as the pattern matched it
  std::string file;    // the file the lines were read from, by its name when opened
  LogPosition begin;   // where the first line starts
  LogPosition end;     // after the last line: store this once the lines are processed
  // Whole lines, each ending in LF; a line cut for length holds its first
  // max_line_bytes; a file that ended without a final LF gets one.
  std::string lines;
  std::size_t line_count = 0;  // 0: only a new position (a stream began, moved to another file)
  std::size_t charge = 0;      // the queue bytes it holds until Release(); leave unchanged
};

// What the follower did; read from any thread.
struct LogFollowerFigures {
  std::uint64_t bytes_read = 0;      // content bytes read (uncompressed)
  std::uint64_t lines = 0;           // lines handed over
  std::uint64_t chunks = 0;          // chunks handed over, position-only ones included
  std::uint64_t rotations = 0;       // moves from a file to its successor
  std::uint64_t truncations = 0;     // files found shorter or rewritten: read again from 0
  std::uint64_t lost_rotations = 0;  // files passed over unread: gone or not openable
  std::uint64_t oversize_lines = 0;  // lines cut to max_line_bytes
  std::uint64_t read_errors = 0;     // errors, once per stream and cause
  std::uint64_t queue_waits = 0;     // times the reader waited for room (backpressure)
  std::uint64_t polls = 0;           // rounds over all streams
  std::uint64_t streams = 0;
  std::uint64_t queued_bytes = 0;  // chunks queued or not yet released
  std::string last_error;          // the latest error text, "" before any
};

// One stream as the reader last left it.
struct LogStreamStatus {
  std::string path;      // the live path
  std::string file;      // the file being read, "" before it could be opened
  LogPosition position;  // the next line to hand over
  std::string error;     // the error of the last poll, "" when it went well
};

class LogFollower {
 public:
  explicit LogFollower(LogFollowerOptions options);
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Starts the reader thread. `saved` maps live paths to the `end` of the
  // last chunk processed before the previous run stopped. Errors:
  // kInvalidArgument (no pattern, a zero bound), kFailedPrecondition (started).
  Status Start(std::map<std::string, LogPosition> saved = {});

  // Ends the reader thread promptly, also while it waits for room. Queued
  // chunks stay poppable. Idempotent.
  void Stop();

  // Takes the oldest queued chunk into `chunk` (false: none). The chunk keeps
  // its queue bytes until Release(std::move(chunk)).
  bool TryPop(LogChunk& chunk);
  // Gives back a popped chunk's bytes (and its buffer, for reuse).
  // REQUIRES: every popped chunk is released once, or the reader stalls.
  void Release(LogChunk&& chunk);

  LogFollowerFigures figures() const;
  // In the order the streams were found.
  std::vector<LogStreamStatus> streams() const;

 private:
  struct File;
  struct Stream;
  enum class Step { kRead, kAgain, kStop };

  // Reader thread. See log_follower.cc.
  void Run(std::stop_token stop);
  void Discover(bool initial);
  bool Begin(Stream& s);
  bool Poll(Stream& s);  // true: its round budget ran out with more to read
  Step CheckLiveSize(Stream& s);
  void HandleTruncation(Stream& s);
  bool CheckRenamed(Stream& s);
  bool SwitchToSuccessor(Stream& s);
  void FinishFile(Stream& s);
  void Chain(Stream& s, std::vector<std::unique_ptr<File>> files, std::unique_ptr<File> live,
             const std::string* done_head);
  void Activate(Stream& s);
  static Result<std::unique_ptr<File>> OpenFile(const std::string& path, bool live);
  Status EnsureHead(File& f);
  void GrowHead(File& f, std::uint64_t base, std::size_t n);
  std::vector<std::unique_ptr<File>> Predecessors(const Stream& s, const File& live);
  std::optional<std::size_t> Locate(std::vector<std::unique_ptr<File>>& files,
                                    const LogPosition& p);
  std::pair<std::uint64_t, bool> LastLineStart(const File& f);
  void Split(Stream& s, const char* data, std::size_t n, std::uint64_t base);
  void AppendLine(Stream& s, const char* data, std::size_t n, std::uint64_t end_offset);
  void EmitHeld(Stream& s, std::uint64_t end_offset);
  LogPosition PositionOf(const Stream& s) const;
  void StartChunk(Stream& s);
  void Flush(Stream& s);
  void PushPosition(Stream& s);
  bool Push(LogChunk&& chunk);
  void Error(Stream& s, const std::string& text);
  void Notice(const std::string& text);
  void Publish(std::size_t index);

  const LogFollowerOptions options_;
  std::map<std::string, LogPosition> saved_;  // reader thread after Start
  // Wall-clock time of Start() (ns since the epoch) less a margin for coarse
  // file timestamps: a rotated file last written since is new. Set before
  // the reader thread starts.
  std::int64_t new_since_ns_ = 0;

  std::mutex stop_mu_;  // Stop() from two threads joins once

  // The queue.
  mutable std::mutex mu_;
  std::condition_variable_any room_;  // Release() made room
  std::deque<LogChunk> queue_ MS_GUARDED_BY(mu_);
  std::vector<std::string> free_ MS_GUARDED_BY(mu_);  // released buffers for reuse
  std::size_t in_use_ MS_GUARDED_BY(mu_) = 0;         // bytes queued or not yet released
  bool started_ MS_GUARDED_BY(mu_) = false;

  // Reader thread only.
  std::vector<std::unique_ptr<Stream>> streams_;
  std::map<std::string, Stream*> by_path_;
  std::unique_ptr<char[]> block_;
  LogChunk building_;  // the chunk being filled, of the stream being read
  bool building_open_ = false;
  std::stop_token stop_;
  std::mutex sleep_mu_;
  std::condition_variable_any sleep_;  // between polls; only a stop request wakes it

  mutable std::mutex status_mu_;
  std::vector<LogStreamStatus> status_ MS_GUARDED_BY(status_mu_);
  std::string last_error_ MS_GUARDED_BY(status_mu_);

  std::atomic<std::uint64_t> bytes_read_{0}, lines_{0}, chunks_{0}, rotations_{0}, truncations_{0},
      lost_rotations_{0}, oversize_{0}, read_errors_{0}, queue_waits_{0}, polls_{0},
      stream_count_{0};

  std::jthread thread_;  // last: stopped and joined first
};

}  // namespace mailscope::ingest
