// Records: events as the records sink keeps them (issue "Event records").
//
// A record is one event made durable: the normalized columns every source
// shares and the event's own fields as a JSON object. Between the loop
// thread and the writer thread, and in files, records travel in one flat
// binary form, appended back to back to a byte buffer:
//
//   u32 size      bytes of the whole record, this field included
//   u8  version   kRecordVersion
//   u8  source    mailscope::Source
//   u8  level     mailscope::Level
//   u8  reserved  0
//   i64 time      microseconds since 1970-01-01 UTC
//   u64 stream    with seq, the record's key: the same record written twice
//   u64 seq       (a batch retried after a lost reply) is kept once
//   then kRecordStrings strings, each a u32 length and its bytes, in the
//   order of RecordView's string members.
//
// Integers are little-endian. Encoding an event allocates nothing once the
// buffer and the encoder's scratch have grown to the event's size, so the
// loop thread pays no allocation per event in the steady state.
//
// The `fields` JSON holds every field of the event and of its parents and
// global event (the nearest value of a key wins, as Dovecot's lookup finds
// it; record values give one key per column):
//   - integers as JSON numbers, doubles as numbers (null when not finite),
//     booleans as true/false, timevals as "<sec>.<usec:06>";
//   - strings of valid UTF-8 as JSON strings (control characters as
//     \u00XX, and U+2028 and U+2029 escaped, which some readers of JSON
//     lines take for line ends), so the database's JSON functions read them;
//   - strings that are not valid UTF-8, or hold a NUL, as {"base64":"..."}:
//     the bytes come back exactly, and the column stays JSON that every
//     database's functions take (PostgreSQL's text refuses NUL).
//   - names (keys, categories) are text: a NUL or a byte that is not UTF-8
//     in one becomes U+FFFD.
// `units` is a JSON object of the fields whose number has a unit
// ({"duration":"us"}), or empty. `categories` is a JSON array, or empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/status.h"

namespace mailscope::store {

inline constexpr std::uint8_t kRecordVersion = 1;
// The version byte of a capture (RecordEncoder::Capture), never written to a
// file: what the loop thread hands the writer thread.
inline constexpr std::uint8_t kCaptureVersion = 0xC1;
inline constexpr std::size_t kRecordHeaderBytes = 4 + 4 + 8 + 8 + 8;
inline constexpr int kRecordStrings = 12;

// A record's stream with this bit set names where its event was read (a log
// line: Event::origin_stream, and seq its offset): the same place read again
// after a crash is the same record. Every store keeps such a key once;
// PostgreSQL keeps every key once.
inline constexpr std::uint64_t kOriginStreamBit = std::uint64_t{1} << 63;

// One decoded record: views into the buffer it was decoded from.
struct RecordView {
  std::int64_t time_us = 0;
  std::uint64_t stream = 0;  // a random number per run, or an origin (kOriginStreamBit)
  std::uint64_t seq = 0;     // the record's number in its stream
  Source source = Source::kDovecot;
  Level level = Level::kInfo;
  std::string_view event;
  std::string_view kind;     // the taxonomy's kind, empty when none
  std::string_view outcome;  // the taxonomy's outcome, empty when none
  std::string_view remote_ip;
  std::string_view user;
  std::string_view sender;
  std::string_view recipient;
  std::string_view domain;
  std::string_view message_id;
  std::string_view categories;  // JSON array, or empty
  std::string_view fields;      // JSON object
  std::string_view units;       // JSON object, or empty
};

// The source fields that give `message_id` when the taxonomy maps none, in
// order: Dovecot's message_id, Exim's message_exim_id, queue_id.
inline constexpr std::string_view kMessageIdFields[] = {"message_id", "message_exim_id",
                                                        "queue_id"};

// Thread-compatible: one per thread that encodes.
class RecordEncoder {
 public:
  RecordEncoder();

  // Appends a capture of `event` keyed (stream, seq) to `out` and returns
  // its size: the header of a record with version kCaptureVersion, its
  // normalized columns, then the categories and the flattened fields as they
  // are (key text, type, unit, value), no JSON yet. This is the loop
  // thread's part, a copy: Finish() on the writer thread does the rest. The
  // taxonomy must be set (the dispatcher routes before any output).
  std::size_t Capture(const Event& event, std::uint64_t stream, std::uint64_t seq,
                      std::string& out);
  // Turns the capture at the start of `in` into a record appended to `out`;
  // `*used` is the capture's size. A capture this process did not make
  // whole is an error (reason "record_corrupt").
  Status Finish(std::string_view in, std::string& out, std::size_t* used);

  // Capture() and Finish() at once: `event` as a record.
  std::size_t Append(const Event& event, std::uint64_t stream, std::uint64_t seq, std::string& out);

 private:
  struct Entry {
    NameId id;  // kNoName for a record value's column
    std::string_view key;
    Value value;
  };
  void Flatten(const Event& event);
  std::string_view Normalized(const Event& event, NameId normalized, std::string& scratch);
  // The flattened field of that name, or nullptr.
  const Entry* FindFlat(NameId id) const;

  NameId remote_ip_, user_, sender_, recipient_, domain_, message_id_;
  std::vector<NameId> message_id_fields_;
  std::vector<Entry> flat_;
  bool has_records_ = false;         // the event's chain holds record values
  std::vector<std::uint32_t> seen_;  // by name id: stamp_ when seen in this event
  std::vector<std::uint32_t> slot_;  // by name id: its index in flat_ when seen
  std::uint32_t stamp_ = 0;
  std::vector<NameId> categories_;
  std::string json_, units_, cats_, capture_;
  std::string normalized_[6];
};

// Decodes the record at the start of `in`. On success, `*size` is its size
// and `out` views into `in`. A record that is cut short, has an unknown
// version or source or level, or whose strings do not add up to its size is
// an error (reason "record_corrupt"); nothing is read past `in`.
Status DecodeRecord(std::string_view in, RecordView& out, std::size_t* size);

// Writes a record from its parts (tests, and re-encoding a decoded record).
void AppendRecord(const RecordView& record, std::string& out);

// Appends a time in microseconds since the epoch as RFC 3339 in UTC with
// microseconds: "2026-12-06T23:13:37.622772Z".
void AppendRfc3339(std::string& out, std::int64_t time_us);

// Appends `s` as the records write a string value: a JSON string when it is
// valid UTF-8 without a NUL, else {"base64":"..."} (see above).
void AppendJsonBytes(std::string& out, std::string_view s);

}  // namespace mailscope::store
