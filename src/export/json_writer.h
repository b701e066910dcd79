// Minimal JSON output helpers (the writer side; input parsing uses simdjson).
#pragma once

#include <string>
#include <string_view>

namespace mailscope::exporter {

// Appends `s` escaped for the inside of a JSON string, as Dovecot's
// json_append_escaped() writes it: \" \\ \b \f \n \r \t, other control
// characters as \u00XX, U+2028 and U+2029 as \u2028 \u2029, valid UTF-8 as
// is, and U+FFFD for each byte that does not start a valid UTF-8 sequence,
// so the result is always valid JSON. Never allocates beyond `out`'s growth.
void AppendJsonEscaped(std::string& out, std::string_view s);

// Whether `s` is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF): what AppendJsonEscaped() keeps as it is.
bool IsValidUtf8(std::string_view s);

// Appends `s` as a JSON string literal, quotes included.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace mailscope::exporter
