// Minimal JSON output helpers (the writer side; input parsing uses simdjson).
#pragma once

#include <string>
#include <string_view>

namespace mailscope::exporter {

// Appends s as a JSON string literal, quotes included. Control characters
// become \n, \t... or \u00XX; bytes >= 0x80 pass through unchanged.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace mailscope::exporter
