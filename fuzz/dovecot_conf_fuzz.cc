// Fuzzes the dovecot.conf reader (metric and event_exporter blocks). The file
// name points into a directory that does not exist, so relative includes and
// `<file` values resolve to nothing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "serve/dovecot_conf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mailscope::serve::ParseDovecotConf(
      std::string_view(reinterpret_cast<const char*>(data), size), "/nonexistent/dovecot.conf");
  return 0;
}
