// Dovecot's wildcard match (lib/wildcard-match.c): '*' is any run of bytes,
// '?' exactly one byte, no escapes, case-sensitive.
#pragma once

#include <string_view>

namespace mailscope {

bool WildcardMatch(std::string_view data, std::string_view mask);
// The same with ASCII case folding (Dovecot's wildcard_match_icase).
bool WildcardMatchIcase(std::string_view data, std::string_view mask);

}  // namespace mailscope
