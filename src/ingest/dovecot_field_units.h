// The units of Dovecot 2.3's event fields, by field name, for the decoders
// of Dovecot's event formats (stats-writer, event exporter bodies) to tag
// integer values with. Pure.
#pragma once

#include <string_view>

#include "core/event.h"

namespace mailscope::ingest {

// The unit Dovecot 2.3.19 (and Pigeonhole 0.5.19) gives an integer field of
// this name, or kNone when its naming does not say. Only names whose unit
// is certain from Dovecot's sources and conventions are listed:
//   microseconds  duration (added by the stats process), *_usecs
//                 (running_usecs, lock_wait_usecs, user_cpu_usecs, ...)
//   milliseconds  *_msecs
//   seconds       *_secs (idle_secs)
//   bytes         *_bytes, bytes_in, bytes_out, message_size, message_vsize,
//                 data_size, mail_param_size, file_size, prev_file_size,
//                 script_size
// Left out on purpose: utime/stime and rss/vsz (their units vary between
// versions), the data stack's *_size fields (internal), counts of anything.
Unit DovecotFieldUnit(std::string_view name);

}  // namespace mailscope::ingest
