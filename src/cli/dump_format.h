// Rendering of old-stats EXPORT rows for `mailscope dump` and `top`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailscope::cli {

// Splits a TAB-separated row and unescapes Dovecot's tab escapes.
std::vector<std::string> SplitRow(std::string_view row);

// Reads one of Dovecot's statistics timevals ("<sec>.<usec>", usec not
// zero-padded: "0.2863" is 2863 µs) as seconds.
double DovecotTimevalSeconds(std::string_view text);

// The rows (header first) as a JSON array of objects. Numbers become JSON
// numbers; user_cpu, sys_cpu and clock_time are converted to true seconds.
std::string RowsToJson(const std::vector<std::string>& rows);

}  // namespace mailscope::cli
