// Test-only: counts heap allocations, so a test can show that a steady state
// allocates nothing. Linking mailscope_testing replaces the global operator
// new of the test binary; sanitizer builds keep their own allocator, and
// there kCountsAllocations is false and the count stays 0.
#pragma once

namespace mailscope {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kCountsAllocations = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kCountsAllocations = false;
#else
inline constexpr bool kCountsAllocations = true;
#endif
#else
inline constexpr bool kCountsAllocations = true;
#endif

// Calls of operator new so far by the calling thread.
long HeapAllocationsForTesting();

}  // namespace mailscope
