#include "core/allocation_counter_testing.h"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
// Per thread: no locked instruction on every allocation (a benchmark linking
// this measures the code, not the counter), and a test counts only its own.
thread_local long t_allocations = 0;
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define MAILSCOPE_REPLACE_NEW 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAILSCOPE_REPLACE_NEW 0
#endif
#endif
#ifndef MAILSCOPE_REPLACE_NEW
#define MAILSCOPE_REPLACE_NEW 1
#endif

#if MAILSCOPE_REPLACE_NEW
// The replacements: malloc/free under new/delete, so they match each other.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#endif

namespace mailscope {

long HeapAllocationsForTesting() { return t_allocations; }

}  // namespace mailscope
