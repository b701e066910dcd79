// Decoder for the lines Dovecot 2.3 mail processes (old_stats and
// imap_old_stats plugins) and auth (auth_stats = yes) write to the
// old-stats FIFOs: CONNECT, DISCONNECT, UPDATE-SESSION, UPDATE-CMD, ADD-USER.
// Produces one Event per line (source dovecot_old_stats, name = the command).
// Each item of a statistics payload becomes one field, "mail" or "auth",
// whose record value names and types the columns (user_cpu ...
// auth_cache_misses; catalog/dovecot_old_stats.h) without copying them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/status.h"
#include "core/tab_escape.h"

namespace mailscope::ingest {

// Longest accepted line: Dovecot's own reader holds PIPE_BUF*2 bytes.
inline constexpr std::size_t kOldStatsMaxLineBytes = 8192;

struct DecodeResult {
  // True if `out` holds an event to dispatch. It may be true together with a
  // non-OK status: Dovecot still creates the session/command/user named by a
  // line whose statistics payload is bad, so the event is dispatched without
  // statistics fields (and with field payload_error) and the error counted.
  bool emit = false;
  Status status;
};

// Thread-compatible: one decoder per input stream.
class DovecotOldStatsDecoder {
 public:
  DovecotOldStatsDecoder();

  // Decodes one line without its LF. The line is unescaped in place; string
  // fields of `out` point into it. `now` becomes the event time.
  DecodeResult Decode(std::span<char> line, TimePoint now, Event& out);

 private:
  // Appends the statistics fields of the base64 payload, the next of
  // `fields`, to `out`.
  Status DecodePayload(TabFields& fields, Event& out);

  std::vector<std::uint8_t> payload_;
};

}  // namespace mailscope::ingest
