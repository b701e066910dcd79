// Renders the old-stats global figures in Graphite's plaintext protocol, as
// Dovecot's old_stats_carbon_* export sends them (lines end in CRLF).
#pragma once

#include <string>
#include <string_view>

#include "stats/old_stats_store.h"

namespace mailscope::exporter {

// dovecot.<name>.global.logins|cmds|connected_sessions|last_reset, then one
// line per statistics column, each "<path> <value> <unix_ts>\r\n".
std::string RenderCarbon(const stats::OldGlobal& global, std::string_view name,
                         std::int64_t unix_ts);

}  // namespace mailscope::exporter
