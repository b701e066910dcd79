// Interned names: event names and field keys become small integers so that
// consumers compare and index them without hashing strings per event.
#pragma once

#include <cstdint>
#include <string_view>

namespace mailscope {

using NameId = std::uint32_t;
inline constexpr NameId kNoName = 0;  // the empty name

// Returns the id of `name`, adding it on first use. Ids are dense, start at 1
// for the first non-empty name and stay valid for the life of the process.
// Thread-safe.
NameId InternName(std::string_view name);

// Returns the id of `name` if it was interned, else kNoName. Thread-safe.
NameId FindName(std::string_view name);

// Returns the text of an interned id; the view stays valid forever.
// REQUIRES: id was returned by InternName. Thread-safe.
std::string_view NameText(NameId id);

// Number of ids handed out so far, including kNoName. Thread-safe.
std::uint32_t NameCount();

}  // namespace mailscope
