#include "ingest/dovecot_field_units.h"

#include <array>

namespace mailscope::ingest {

Unit DovecotFieldUnit(std::string_view name) {
  if (name == "duration" || name.ends_with("_usecs")) return Unit::kMicroseconds;
  if (name.ends_with("_msecs")) return Unit::kMilliseconds;
  if (name.ends_with("_secs")) return Unit::kSeconds;
  if (name.ends_with("_bytes")) return Unit::kBytes;
  static constexpr std::array<std::string_view, 9> kByteFields = {
      "bytes_in",  "bytes_out",      "message_size", "message_vsize",   "data_size",
      "file_size", "prev_file_size", "script_size",  "mail_param_size",
  };
  for (std::string_view f : kByteFields)
    if (name == f) return Unit::kBytes;
  return Unit::kNone;
}

}  // namespace mailscope::ingest
