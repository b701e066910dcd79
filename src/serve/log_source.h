// LogSource: one [[logs]] block of the configuration. Its LogFollower reads
// the files on a thread of its own; on the loop, each stream's lines go
// through its LogLines (timestamp prefix, the format's decoder and state)
// into the dispatcher, like every other source's events.
//
// Nothing is lost or counted twice across a restart: every
// checkpoint_interval the source snapshots, per stream, the position after
// the last line it dispatched together with the state that joins the lines
// (sessions, queued messages, the syslog year), and a thread of its own
// writes the snapshot to DATA_DIR/logs/NAME.state (atomically: temporary
// file, fsync, rename) once every durable output holds the events
// dispatched before it (Dispatcher::DurableMark). A restart begins at the
// saved positions with the saved state. Each event also carries its line's
// place (Event::origin: the log and stream, and the bytes of the stream's
// lines before it), so that the records store keeps an event read again
// after a crash between two checkpoints once. Lines wait while an output
// that keeps events is backlogged (Dispatcher::Backlogged), so none is
// dropped there. With log sources the SQLite store syncs each commit
// (synchronous=FULL), so a saved position never runs ahead of the records
// after a crash of the machine either.
//
// Loop thread only, but for the checkpoint thread it owns.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/time_zone.h"
#include "ingest/log_follower.h"
#include "ingest/log_lines.h"
#include "serve/config.h"
#include "serve/source_context.h"

namespace mailscope::serve {

// What /metrics shows of one log source.
struct LogSourceFigures {
  std::string name;
  std::string format;
  ingest::LogLineFigures lines;         // summed over its streams
  ingest::LogFollowerFigures follower;  // reading
  std::uint64_t checkpoints = 0;        // snapshots written
  std::uint64_t checkpoint_errors = 0;  // snapshots that could not be written
};

class LogSource {
 public:
  LogSource(boost::asio::io_context& io, SourceContext context, LogConfig config,
            std::string state_dir);
  ~LogSource();
  LogSource(const LogSource&) = delete;
  LogSource& operator=(const LogSource&) = delete;

  // Reads the saved state (a damaged one is an error: the file is named, so
  // that it can be moved away) and starts following.
  Status Start();
  // Stops reading, dispatches what was read and hands the last snapshot to
  // the checkpoint thread. The destructor waits for that thread, which
  // writes the snapshot once the durable outputs hold what it covers (at
  // most kFinalCheckpointWait): destroy log sources before those outputs.
  void Stop();

  LogSourceFigures figures() const;
  const std::string& state_path() const { return state_path_; }

  static constexpr std::chrono::seconds kFinalCheckpointWait{30};

 private:
  struct Stream {
    std::unique_ptr<ingest::LogLines> lines;
    ingest::LogPosition position;  // after the last line dispatched
    std::uint64_t origin = 0;      // Event::origin_stream of its lines
    std::uint64_t sequence = 0;    // Event::origin_seq of its next line
  };
  struct Snapshot {
    std::string text;
    pipeline::Dispatcher::DurableMark mark;
  };

  Stream& StreamOf(const std::string& path);
  void Drain();
  void Process(const ingest::LogChunk& chunk);
  void ScheduleCheckpoint();
  std::string SnapshotText() const;
  Status LoadState(std::map<std::string, ingest::LogPosition>& positions);
  void CheckpointThread(std::stop_token stop);
  bool WriteState(const std::string& text);

  boost::asio::io_context& io_;
  SourceContext context_;
  LogConfig config_;
  std::string state_path_;
  TimeZone zone_;
  std::unique_ptr<ingest::LogFollower> follower_;
  std::map<std::string, Stream> streams_;
  boost::asio::steady_timer checkpoint_timer_;
  boost::asio::steady_timer backlog_timer_;  // Drain() again once outputs have room
  bool backlog_wait_ = false;
  bool drain_posted_ = false;  // loop thread only, but set from on_ready through post
  bool dirty_ = false;         // dispatched since the last snapshot
  bool stopped_ = false;
  Event event_;

  // The checkpoint thread and what it waits on.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Snapshot> pending_;  // at most one: see ScheduleCheckpoint()
  bool final_ = false;            // Stop(): write what is pending, then end
  std::atomic<std::uint64_t> checkpoints_{0};
  std::atomic<std::uint64_t> checkpoint_errors_{0};
  std::jthread checkpointer_;
};

}  // namespace mailscope::serve
