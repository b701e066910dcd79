// Blocking client connections for the subcommands that talk to `serve`.
#pragma once

#include <string>

#include "core/status.h"

namespace mailscope::cli {

// Connects to a UNIX socket path, or to "tcp:ADDR:PORT". Returns the file
// descriptor; the error says what failed and, for a missing socket, that
// serve may not be running with that run directory.
Result<int> ConnectTo(const std::string& target);

}  // namespace mailscope::cli
