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

// For names that come from outside (decoders): like InternName while the
// table is within its budget, else the id of an already interned name or
// kNoName for a new one. Names are never freed, so input that makes up names
// (a writer sending a new field key per event) must not grow the table
// without bound. Thread-safe.
NameId TryInternName(std::string_view name);

// The budget TryInternName keeps: at most `max_names` names holding at most
// `max_bytes` bytes of text in all. Defaults: 1,000,000 names, 64 MiB.
// InternName (catalog, configuration) is not limited. Thread-safe.
void SetNameBudget(std::uint32_t max_names, std::size_t max_bytes);

// Names TryInternName refused since the start. Thread-safe.
std::uint64_t NamesRefused();

// Returns the id of `name` if it was interned, else kNoName. Thread-safe.
NameId FindName(std::string_view name);

// Returns the text of an interned id; the view stays valid forever.
// REQUIRES: id was returned by InternName. Thread-safe.
std::string_view NameText(NameId id);

// Number of ids handed out so far, including kNoName. Thread-safe.
std::uint32_t NameCount();

}  // namespace mailscope
