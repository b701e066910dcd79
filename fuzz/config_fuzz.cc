// Fuzzes the TOML configuration parser and its validation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "serve/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mailscope::serve::ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size),
                                      "fuzz.toml");
  return 0;
}
