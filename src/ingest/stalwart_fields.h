// How Stalwart's events become mailscope Events, the same for every way
// Stalwart ships them (reference stalwart-telemetry.md §1): the webhook's
// JSON (stalwart_webhook.h) and the text log (stalwart_log.h) decode to the
// same event for the same emission.
//
//   name     the event type in its v0.16 spelling: a v0.12-v0.15 name
//            (queue.queue-message, auth.missing-totp, ...) is mapped through
//            the catalog's aliases, so both eras count as one series. Types
//            the catalog does not know keep their own name (budgeted).
//   time     createdAt / the line's timestamp: whole seconds, UTC.
//   span_id  the spanId key, which is not a field. 0 when absent (the text
//            log never prints it).
//   fields   the event's keys, camelCase as Stalwart names them; a repeated
//            key keeps its first occurrence. Values:
//              integer        kUint (kInt when negative); `elapsed` tagged
//                             Unit::kMilliseconds, `size` Unit::kBytes
//              float          kDouble
//              bool           kBool
//              string, IP     kString (a text log's quoted string unescaped)
//              timestamp      kTimeval {seconds, 0} for the keys typed
//                             timestamp (IsStalwartTimestampKey): the JSON's
//                             RFC 3339 string, the log's unquoted one
//              bytes          kString holding the base64 text (the log's
//                             `base64:` prefix removed)
//              array          kString, the elements' texts joined by TAB
//                             (as mailscope keeps Dovecot's string lists);
//                             [] is the empty string
//              nested event   (causedBy, reason, ... holding an event) the
//                             key gets the nested event's type (v0.16
//                             spelling) as a string, and each key of the
//                             nested event becomes a field named
//                             `<key>.<nested key>`, recursively, at most
//                             kStalwartMaxNesting levels deep
//              null / (null)  no field
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/event.h"
#include "core/hash.h"
#include "core/names.h"

namespace mailscope::ingest {

// Nested events (an error caused by an error ...) deeper than this are an
// error of the whole event: Stalwart nests a cause or two.
inline constexpr int kStalwartMaxNesting = 8;

// The unit Stalwart gives a number key in: milliseconds for `elapsed`, bytes
// for `size`, none for the rest.
Unit StalwartKeyUnit(std::string_view key);
// Whether the key holds a timestamp (expires, nextDsn, nextRetry, due,
// validFrom, validTo): an RFC 3339 string in the webhook, unquoted in the log.
bool IsStalwartTimestampKey(std::string_view key);
// Reads `YYYY-MM-DDTHH:MM:SSZ` (Stalwart's only form: UTC, whole seconds,
// literal Z) into seconds since the epoch; false for anything else.
bool ParseStalwartTimestamp(std::string_view text, std::int64_t& seconds);

// The type of a nested event (a value, not an event name): its v0.16
// spelling when the catalog knows it, else as written. Never interned, so
// types made up in values spend no names.
std::string_view StalwartTypeSpelling(std::string_view type);

// The names one Stalwart decoder interns: event types (mapped to their v0.16
// spelling), keys and nested keys, each looked up once and then cached.
// Names new to mailscope's table are charged to the budget; past it the
// lookups return kNoName. Thread-compatible: one per decoder.
class StalwartNames {
 public:
  explicit StalwartNames(NameBudget budget) : budget_(budget) {}

  // The event name for a type as sent; kNoName past the budget.
  NameId EventName(std::string_view type);
  // The field name of a key, or of `<parent>.<key>` when parent is not
  // kNoName (the key of a nested event); kNoName past the budget.
  NameId Key(NameId parent, std::string_view key);

  const NameBudget& budget() const { return budget_; }

 private:
  struct PairHash {
    std::size_t operator()(const std::pair<NameId, std::string>& p) const noexcept {
      return static_cast<std::size_t>(HashBytes(p.second, p.first));
    }
  };
  NameBudget budget_;
  std::unordered_map<std::string, NameId, SeededStringHash, std::equal_to<>> events_;
  std::unordered_map<std::pair<NameId, std::string>, NameId, PairHash> keys_;
  std::pair<NameId, std::string> probe_;  // reused lookup key: no allocation once seen
};

}  // namespace mailscope::ingest
