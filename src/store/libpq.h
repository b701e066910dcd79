// libpq, loaded when the PostgreSQL store first needs it rather than linked
// into mailscope: libpq brings 19 libraries with it (Kerberos, LDAP, SASL,
// GnuTLS and theirs), and mapping and relocating them took every mailscope
// command about 10 ms at start, whether it used PostgreSQL or not (a program
// that links libpq and returns at once: 11.3 ms of CPU and 440 page faults,
// against 1.8 ms and 48 without it).
#pragma once

#include <libpq-fe.h>

#include "core/status.h"

namespace mailscope::store {

// The libpq functions PostgresStore calls, each named as in libpq without
// its "PQ": X(name) for each, so that the table and its loading (libpq.cc)
// list them once.
// clang-format off
#define MAILSCOPE_LIBPQ_FUNCTIONS(X)                                                   \
  X(conninfoParse) X(conninfoFree) X(freemem) X(connectdbParams) X(status)             \
  X(errorMessage) X(setNoticeProcessor) X(finish) X(exec) X(execParams)                \
  X(sendQueryParams) X(setSingleRowMode) X(getResult) X(resultStatus) X(ntuples)       \
  X(getvalue) X(getlength) X(getisnull) X(cmdTuples) X(clear) X(getCancel) X(cancel)   \
  X(freeCancel)
// clang-format on

struct LibPq {
#define MAILSCOPE_LIBPQ_MEMBER(name) decltype(&::PQ##name) name;
  MAILSCOPE_LIBPQ_FUNCTIONS(MAILSCOPE_LIBPQ_MEMBER)
#undef MAILSCOPE_LIBPQ_MEMBER
};

// libpq's file name, as Debian's libpq5 installs it.
inline constexpr const char* kLibPqFile = "libpq.so.5";

// libpq's functions from kLibPqFile, loaded on the first call and kept for
// the life of the process; later calls give the first one's answer.
// Thread-safe.
Result<const LibPq*> LoadLibPq();

// The functions of `file`, loaded now (the library stays loaded). The error
// names the file and what the loader said, e.g. "cannot load libpq.so.5
// (PostgreSQL's client library, Debian package libpq5): libpq.so.5: cannot
// open shared object file: No such file or directory", or the function it
// lacks.
Result<LibPq> LoadLibPqFrom(const char* file);

}  // namespace mailscope::store
