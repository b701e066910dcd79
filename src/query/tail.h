// The `tail` socket: `mailscope tail` asks `serve` for the live events that
// match a filter. One request line, then the server streams.
//
//   client: TAIL <TAB> 1 <TAB> <format> <TAB> <dialect> <TAB> <filter>   (LF)
//   server: OK                                    the stream starts
//           ERROR <TAB> <message>                 and the server closes
//   then:   E <TAB> <event in the format>         one matching event
//           D <TAB> <count>                       events dropped for this client
//
// <format> is text (docs/cli.md), json or tab-text (Dovecot's event exporter
// formats, with every include); <dialect> is mailscope or dovecot; the
// filter is tab-escaped (reference §1.2) and may be empty, which matches
// every named event. Event payloads never contain LF. A client that does
// not read falls behind; past a bound the server drops its events and tells
// it how many with a D line once it catches up.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/names.h"
#include "core/status.h"
#include "filter/filter.h"

namespace mailscope::query {

enum class TailFormat { kText, kJson, kTabText };

std::string_view TailFormatName(TailFormat format);
// "text", "json", "tab-text".
Result<TailFormat> ParseTailFormat(std::string_view name);

struct TailRequest {
  TailFormat format = TailFormat::kText;
  filter::Dialect dialect = filter::Dialect::kMailscope;
  std::string filter_text;
  // Parsed. No filter text asks for every named event: `event=*`.
  filter::Filter filter;
};

inline constexpr std::size_t kTailMaxRequestBytes = 64 * 1024;

// The request line without its LF. Errors are the message an ERROR line
// carries. The filter is a client's (filter::ParseClientFilter): at most
// filter::kMaxClientFilterBytes, its new names charged to `names`.
Result<TailRequest> ParseTailRequest(std::span<char> line, NameBudget& names);
// The request line, LF included, for the client.
std::string TailRequestLine(TailFormat format, filter::Dialect dialect,
                            std::string_view filter_text);

}  // namespace mailscope::query
