// Fuzzes Base64Decode against the plain reference decoder: for any input both
// accept or both reject, and accepted input decodes to the same bytes. Inputs
// past 24 characters run the SSSE3 path where the CPU has it.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/base64.h"
#include "core/base64_reference_testing.h"
#include "core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mailscope;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::uint8_t> got;
  const bool ok = Base64Decode(in, got);
  const auto want = Base64DecodeReferenceForTesting(in);
  MS_CHECK(ok == want.has_value());
  if (ok) MS_CHECK(got == *want);
  return 0;
}
