// Dovecot's tab-escaping (lib/strescape.c): the framing of every line
// protocol Dovecot speaks. \001 -> \0011, TAB -> \001t, CR -> \001r,
// LF -> \001n, NUL -> \0010.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailscope {

// Splits `line` (without its LF) on raw TABs and unescapes each field in
// place; the views in `out` point into `line`. An empty line gives zero
// fields; "a\t" gives {"a", ""}. \001 followed by an unknown byte X yields X;
// a trailing lone \001 is dropped, as Dovecot does. Never fails.
void SplitTabEscaped(std::span<char> line, std::vector<std::string_view>& out);

// Unescapes one field in place and returns the shortened view.
std::string_view UnescapeTabInPlace(std::span<char> field);

// Appends `s` tab-escaped to `out`.
void AppendTabEscaped(std::string& out, std::string_view s);

}  // namespace mailscope
