// The limits of a LineServer's clients and its figures: plain values shared
// by the listeners (net/listeners.h), the configuration and /metrics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace mailscope::net {

// Bounds on what the clients of one LineServer can make it hold or wait
// for; docs/configuration.md ([listeners.NAME]) has the daemon's values.
struct LineServerLimits {
  // Open connections. One more is accepted and closed at once, and counted.
  std::size_t client_limit = 1000;
  // Bytes of incomplete lines all connections hold together. A connection
  // whose line grows past it is closed.
  std::size_t buffer_limit = 32u << 20;
  // Bytes of replies a connection may have waiting for the peer to read them;
  // past it, its further requests are not read until the peer catches up.
  std::size_t output_limit = 1u << 20;
  // From a line's first byte to its LF; a connection over it is closed.
  // 0: no limit.
  std::chrono::milliseconds line_timeout{30000};
  // A write that moves no byte for this long closes the connection.
  // 0: no limit.
  std::chrono::milliseconds write_timeout{30000};
};

// What a LineServer has done about its clients.
struct LineServerFigures {
  std::size_t connections = 0;        // open now
  std::uint64_t handler_faults = 0;   // lines whose handler threw (see LineConnection)
  std::uint64_t accept_failures = 0;  // accepts that failed (EMFILE, ...), each then a pause
  std::uint64_t refused = 0;          // connections over client_limit
  std::uint64_t closed_line_too_long = 0;
  std::uint64_t closed_line_timeout = 0;
  std::uint64_t closed_write_timeout = 0;
  std::uint64_t closed_buffer_limit = 0;
  std::uint64_t closed_tls_handshake = 0;  // TLS listeners: handshakes failed or not finished
  std::size_t held_input_bytes = 0;        // of incomplete lines, now
  std::size_t queued_output_bytes = 0;     // not yet taken by the peers, now
};

}  // namespace mailscope::net
