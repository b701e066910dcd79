// MS_CHECK: invariants that, when broken, abort with file:line.
#pragma once

namespace mailscope::internal {
[[noreturn]] void CheckFailed(const char* expr, const char* file, int line);
}  // namespace mailscope::internal

#define MS_CHECK(cond)                                                          \
  do {                                                                          \
    if (!(cond)) ::mailscope::internal::CheckFailed(#cond, __FILE__, __LINE__); \
  } while (0)
