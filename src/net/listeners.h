// Asio glue for the daemon's inputs and outputs: FIFO readers, line-protocol
// servers on UNIX and TCP sockets, and a one-shot TCP sender. Everything here
// runs on the one loop thread that owns the io_context.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/status.h"
#include "net/line_limits.h"

namespace mailscope::net {

// Owner, group and mode applied to a FIFO or socket path after creation.
struct PathPerms {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  mode_t mode = 0600;
};

// Resolves user/group names. An empty user leaves the owner as created (the
// effective uid); an empty group means the effective gid, set explicitly so
// that a setgid directory does not hand its group to the path. Errors name
// the missing one.
Result<PathPerms> ResolvePerms(const std::string& user, const std::string& group, mode_t mode);

// Called with each complete line (writable, valid during the call).
using LineHandler = std::function<void(std::span<char> line)>;
// Called with the size of each line dropped for exceeding the bound.
using OverflowHandler = std::function<void(std::size_t bytes)>;
// Called once per read, before its lines: like Dovecot's ioloop time, one
// timestamp serves every line of a read.
using ReadHandler = std::function<void()>;

// Reads a FIFO forever. The FIFO is created (or reused) at `path` and held
// open read-write, so there is always a writer and the reader never sees EOF:
// Dovecot's writers open it once and never retry, so it must never vanish
// while mailscope runs. A handler that throws loses only its own line; a
// read loop that ends on an error or a fault is restarted, after a back-off,
// on the FIFO reopened.
class FifoReader {
 public:
  static Result<std::unique_ptr<FifoReader>> Open(boost::asio::io_context& io,
                                                  const std::string& path, const PathPerms& perms,
                                                  std::size_t max_line, ReadHandler on_read,
                                                  LineHandler on_line, OverflowHandler on_overflow);
  ~FifoReader();
  // Stops reading and handles what is already buffered in the pipe. The FIFO
  // itself is left in place for the next start.
  void Close();
  const std::string& path() const { return path_; }
  // Lines (and reads) whose handler threw: each was dropped, logged
  // rate-limited, and reading went on.
  std::uint64_t handler_faults() const;

  struct State;  // shared with the coroutines serving it

 private:
  FifoReader() = default;
  std::shared_ptr<State> state_;
  std::string path_;
};

// Request/response over lines: each request line gets the bytes the handler
// appends to `reply`; returning false closes the connection after the reply
// is written. Lines longer than max_line close the connection.
using RequestHandler = std::function<bool(std::span<char> line, std::string& reply)>;

class LineServer;

// A handle for writing to one connection of a LineServer outside the
// request/reply rhythm (streams such as `mailscope tail`). Cheap to copy;
// once the connection is gone, alive() is false and Send does nothing.
class Pusher {
 public:
  struct Impl;  // the connection's side; internal to LineServer
  Pusher() = default;
  explicit Pusher(std::weak_ptr<Impl> impl) : impl_(std::move(impl)) {}
  bool alive() const;
  // Bytes queued and not yet handed to the socket: how far the peer is behind.
  std::size_t pending_bytes() const;
  void Send(std::string_view text);

 private:
  std::weak_ptr<Impl> impl_;
};

// What a server does with one connection: a greeting sent at once on accept
// (empty: none) and the handler of its lines, which may keep per-connection
// state in its captures. on_open, when set, gets the connection's Pusher
// right after the greeting is queued; on_close is called exactly once when
// it ends, also when a handler threw.
//
// A line whose handler throws is dropped with whatever it appended to the
// reply, logged rate-limited and counted in LineServerFigures::handler_faults.
// Then the connection is closed, unless keep_reading_after_fault: set it for
// streams whose lines stand alone (Dovecot's stats-writer); leave it off for
// request/response peers, which would otherwise wait for a reply that never
// comes.
struct LineConnection {
  std::string greeting;
  RequestHandler on_line;
  std::function<void(Pusher)> on_open;
  std::function<void()> on_close;
  bool keep_reading_after_fault = false;
  // The peer may end its last line by closing its side instead of with an
  // LF (Exim's readsocket sends no final newline unless told to): at EOF an
  // unfinished line is handled as a line, and its reply written, before the
  // connection closes.
  bool line_at_eof = false;
};
using ConnectionFactory = std::function<LineConnection()>;

// Serves line-oriented clients on a listening socket. Idle connections cost
// no read buffer: every connection reads into the listener's one buffer when
// its socket is readable, and keeps only the incomplete end of a line.
class LineServer {
 public:
  // Listens on a UNIX stream socket (replacing a stale one) with `perms`.
  static Result<std::unique_ptr<LineServer>> ListenUnix(
      boost::asio::io_context& io, const std::string& path, const PathPerms& perms,
      std::size_t max_line, RequestHandler handler, const LineServerLimits& limits = {});
  // The same, with a greeting and state per connection.
  static Result<std::unique_ptr<LineServer>> ListenUnix(
      boost::asio::io_context& io, const std::string& path, const PathPerms& perms,
      std::size_t max_line, ConnectionFactory factory, const LineServerLimits& limits = {});
  // Listens on TCP "ADDR:PORT".
  static Result<std::unique_ptr<LineServer>> ListenTcp(boost::asio::io_context& io,
                                                       const std::string& address,
                                                       std::size_t max_line, RequestHandler handler,
                                                       const LineServerLimits& limits = {});
  ~LineServer();
  void Close();  // stops accepting, closes connections, unlinks a UNIX path
  // Queues `text` to every open connection, after what each already has queued.
  void Broadcast(std::string_view text);
  std::size_t connection_count() const;
  LineServerFigures figures() const;
  std::string local_address() const;

  struct State;  // shared with the coroutines serving it
  struct Conn;

 private:
  LineServer() = default;
  std::shared_ptr<State> state_;
};

// Connects to "IP:PORT", writes `payload`, closes; gives up after `timeout`.
// `done` gets the outcome. Never blocks the loop.
void SendOnce(boost::asio::io_context& io, const std::string& address, std::string payload,
              std::chrono::milliseconds timeout, std::function<void(Status)> done);

// Splits "ADDR:PORT" / "[v6]:PORT".
Result<std::pair<std::string, unsigned short>> SplitHostPort(std::string_view address);

}  // namespace mailscope::net
