// The transports of Dovecot's event exporters (reference
// dovecot-protocols.md §3.9): where an event, once rendered by
// exporter::EventFormatter, goes. One transport per event_exporter { }; the
// daemon's export sink formats each event and calls Send(). Dovecot 2.3.19
// has drop, log and http-post; file and unix are Dovecot 2.4's.
//
//   drop       discards the payload (counted as sent).
//   log        an info line in mailscope's log with the payload, as Dovecot's
//              "stats: Info: <payload>" (the 1000-byte cut is the format's).
//              A writer thread logs it, so a stalled stderr never stalls the
//              loop.
//   file       appends payload + LF to a file opened O_APPEND|O_CREAT, mode
//              0600; Reopen() reopens it (log rotation). A writer thread does
//              the I/O, so a slow disk never stalls the loop; when the file
//              is a FIFO whose reader is slow, it waits for the reader.
//   unix       payload + LF to a UNIX stream socket. Connects on the first
//              Send(), within transport_timeout; after a failure or a
//              disconnect it waits (backoff doubling from reconnect_min to
//              reconnect_max) and reconnects on the next Send() after that.
//   http-post  one POST per event to the URL, HTTP/1.1 with keep-alive over
//              one connection, Content-Type from the format; each request
//              (connect, send, response) must finish within
//              transport_timeout. A 2xx answer is success; any other answer,
//              a timeout or a connection error is a failure, logged at most
//              once per second with the count of those held back. A request
//              that fails on a reused connection before any answer is retried
//              once on a new one (the server may have closed an idle
//              connection). http:// only: ParseExporterSettings rejects https.
//
// Every transport holds a bounded queue (EventTransportOptions); what does not
// fit is dropped and counted. The file and log transports share theirs with
// their writer thread (QueuedWriter). Counters, for /metrics:
//   sent     payloads delivered: written, or answered 2xx
//   dropped  payloads not taken: queue full, peer unreachable (unix: while
//            disconnected or waiting to reconnect), still queued at Close()
//            (unix, http-post) or when the writer was aborted (file, log)
//   failed   payloads taken but lost: write error, HTTP error, timeout
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "export/exporter_settings.h"
#include "net/transport_counters.h"

namespace mailscope::net {

class QueuedWriter;

struct EventTransportOptions {
  // Payloads waiting to be written or posted; past either bound, Send() drops.
  std::size_t max_queue_events = 10'000;
  std::size_t max_queue_bytes = 16 * 1024 * 1024;
  // unix: the wait before reconnecting, doubled after each failure.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{30'000};
  // http-post: a longer response body is a failure (the connection is closed).
  std::size_t max_response_bytes = 64 * 1024;
};

// Loop thread only, except counters(), queued() and name(), which any thread
// may call. Owns its queue, its file descriptor or socket, and (file, log) its
// writer thread. A file or log transport may be destroyed on any thread once
// closed: a TransportReaper does so off the loop.
class EventTransport {
 public:
  virtual ~EventTransport() = default;

  // Hands one rendered event over; the bytes are copied. Never blocks.
  virtual void Send(std::string_view payload) = 0;
  // Log rotation: the file transport reopens its path; the others do nothing.
  virtual void Reopen() {}
  // Stops taking payloads: later Send() calls are dropped. Returns at once.
  // file and log: the writer thread goes on writing what is queued, then
  // ends (see writer()). The network transports drop what is queued.
  // Idempotent.
  virtual void Close() = 0;
  // The writer thread of the file and log transports, for whoever waits for
  // it to end (TransportReaper); null for the others. Destroying a transport
  // whose writer has not ended drops what it still holds.
  virtual QueuedWriter* writer() { return nullptr; }

  virtual TransportCounters counters() const = 0;
  // Payloads accepted and not yet written, posted or failed.
  virtual std::size_t queued() const = 0;
  const std::string& name() const { return name_; }
  exporter::ExporterTransport kind() const { return kind_; }

 protected:
  EventTransport(std::string name, exporter::ExporterTransport kind)
      : name_(std::move(name)), kind_(kind) {}

 private:
  std::string name_;
  exporter::ExporterTransport kind_;
};

// The transport of a validated exporter. The io_context is the loop's; it must
// outlive the transport. Nothing is opened or connected before the first Send().
std::unique_ptr<EventTransport> MakeEventTransport(boost::asio::io_context& io,
                                                   const exporter::ExporterSettings& settings,
                                                   const EventTransportOptions& options = {});

}  // namespace mailscope::net
