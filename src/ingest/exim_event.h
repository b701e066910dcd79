// Decoder for the requests Exim's event_action sends to mailscope with
// ${readsocket{...}} (docs/integrations/exim.md, the fragment
// docs/integrations/exim-event-action.conf). One request is one line:
//
//   event KEY=VALUE KEY=VALUE ...
//
// KEY is an Exim variable name without `$` ([a-z0-9_]+). VALUE is what
// Exim's ${quote:...} makes of the variable: the text as it is when it
// consists of letters, digits, `_`, `.` and `-` only, else the text in double
// quotes with `\` and `"` escaped by a backslash and newline and carriage
// return written \n and \r; every other byte (TAB, 8-bit, control) comes as
// it is. Exim strings hold no NUL, so a NUL anywhere is an error. Tokens are
// separated by spaces; the line ends at LF or where the request ends.
//
// The event is named by event_name; every other key becomes a field of that
// name, numbers (ports, sizes, errno) as integers, empty values left out.
// $event_defer_errno is decoded as Exim documents it (see DecodeDeferErrno)
// into fields of mailscope's (smtp_code, defer_lookup, defer_errno_name), and
// the msg:* events of a message with a $received_time get queue_time, the
// seconds since Exim received it (its log's QT=); a request may not send
// these itself. Source exim.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/clock.h"
#include "core/event.h"
#include "core/names.h"
#include "core/status.h"

namespace mailscope::ingest {

// Longest request taken, without its LF. Exim's variables in an event are
// short; the longest, $event_data, holds an SMTP reply (a multi-line EHLO
// response, a banner) or an error text.
inline constexpr std::size_t kEximRequestMaxBytes = 64 * 1024;
// Fields taken from one request; more are an error.
inline constexpr std::size_t kEximRequestMaxFields = 64;

struct EximDecoderOptions {
  // Names (event names the catalog does not know, field keys) the decoder
  // may add to mailscope's name table over its life. Exim connects once per
  // event, so the budget belongs to the endpoint, not to a connection.
  std::uint32_t max_new_names = kDefaultMaxNewNamesPerClient;
};

// What $event_defer_errno says. Exim fills it for the :defer events only and
// leaves it stale in later events of the same process, so it is decoded only
// for events whose name ends in ":defer".
struct DeferErrno {
  // msg:rcpt:defer and msg:rcpt:host:defer: Exim's more_errno for a 4xx
  // reply to RCPT. The low byte says how the host was found ("A": an address
  // record, "MX": an MX record), the bits above it the last two digits of the
  // reply code, so 13121 = (51 << 8) | 'A' is a 451 from a host found by A.
  std::string_view lookup;  // "A", "MX", or empty
  int smtp_code = 0;        // 400..499, or 0
  // msg:host:defer and msg:defer: a positive value is the system errno
  // ("ECONNREFUSED"), a negative one Exim's own code ("ERRNO_EVENT" for -58
  // in 4.96: the event_action asked for another result). Empty when unknown:
  // codes below -50 were renumbered after 4.96 and are named for 4.96 only.
  std::string_view name;
};
DeferErrno DecodeDeferErrno(std::string_view event_name, std::int64_t value,
                            std::string_view exim_version);

// Thread-compatible: one decoder per endpoint.
class EximEventDecoder {
 public:
  explicit EximEventDecoder(EximDecoderOptions options = {});

  // Decodes one request without its LF. Quoted values are unescaped in place;
  // string fields of `out` point into `request`. `now` becomes the event time.
  // On error `out` is not to be dispatched; the status names what is wrong
  // and where (byte offset), with a reason for mailscope_ingest_rejected_total.
  Status Decode(std::span<char> request, TimePoint now, Event& out);

  const NameBudget& name_budget() const { return budget_; }

 private:
  // The id of a key or event name: known, or new within the budget.
  std::optional<NameId> Name(std::string_view text);

  NameBudget budget_;
};

}  // namespace mailscope::ingest
