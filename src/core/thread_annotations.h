// Clang's thread-safety annotations (-Wthread-safety), empty elsewhere: what
// a mutex guards is written next to the field.
#pragma once

#if defined(__clang__)
#define MS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MS_THREAD_ANNOTATION(x)
#endif

#define MS_GUARDED_BY(x) MS_THREAD_ANNOTATION(guarded_by(x))
#define MS_PT_GUARDED_BY(x) MS_THREAD_ANNOTATION(pt_guarded_by(x))
#define MS_REQUIRES(...) MS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define MS_EXCLUDES(...) MS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
