// The directories serve keeps its sockets, FIFOs and data in, made safe
// before anything is created inside them. Plain functions on paths; called
// once at start.
#pragma once

#include <string>

#include "core/status.h"

namespace mailscope::serve {

// Makes `dir` (and missing parents) for an administrator's directory such as
// /run/mailscope. A directory it creates gets mode 0755, so that writers of
// other users (Dovecot's mail processes) reach the sockets inside; the mode of
// an existing one is left as its administrator set it. Returns kUnavailable
// naming the path when it cannot be made or is not a directory.
Status MakeRunDir(const std::string& dir);

// Makes `dir` (its parent must exist) for a directory in a place every user
// can write, such as /tmp/mailscope-<uid>, with mode 0700. An existing `dir`
// is used only when it is a directory, not a symlink, owned by our effective
// uid, with no group or other permissions: otherwise another local user may
// have made it first and could replace what we create in it. Returns
// kUnavailable naming the path and the problem.
Status MakePrivateDir(const std::string& dir);

}  // namespace mailscope::serve
