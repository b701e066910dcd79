// Standard base64 (RFC 4648 alphabet), as Dovecot's old-stats payloads use it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailscope {

// Decodes `in` into `out` (replacing its contents). Accepts input with or
// without '=' padding. Returns false on a byte outside the alphabet, padding
// in the middle, or a dangling single sextet; `out` is unspecified then.
bool Base64Decode(std::string_view in, std::vector<std::uint8_t>& out);

// Decodes into `out`, which must hold Base64DecodedSize(in.size()) bytes.
// Returns the number of bytes written, or -1 on invalid input (as above).
std::ptrdiff_t Base64DecodeTo(std::string_view in, std::uint8_t* out);
inline std::size_t Base64DecodedSize(std::size_t encoded) { return (encoded + 3) / 4 * 3; }

// Encodes with '=' padding.
std::string Base64Encode(const void* data, std::size_t size);

}  // namespace mailscope
