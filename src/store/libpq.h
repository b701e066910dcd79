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
// its "PQ".
struct LibPq {
  decltype(&::PQconninfoParse) conninfoParse;
  decltype(&::PQconninfoFree) conninfoFree;
  decltype(&::PQfreemem) freemem;
  decltype(&::PQconnectdbParams) connectdbParams;
  decltype(&::PQstatus) status;
  decltype(&::PQerrorMessage) errorMessage;
  decltype(&::PQsetNoticeProcessor) setNoticeProcessor;
  decltype(&::PQfinish) finish;
  decltype(&::PQexec) exec;
  decltype(&::PQexecParams) execParams;
  decltype(&::PQsendQueryParams) sendQueryParams;
  decltype(&::PQsetSingleRowMode) setSingleRowMode;
  decltype(&::PQgetResult) getResult;
  decltype(&::PQresultStatus) resultStatus;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQgetvalue) getvalue;
  decltype(&::PQgetlength) getlength;
  decltype(&::PQgetisnull) getisnull;
  decltype(&::PQcmdTuples) cmdTuples;
  decltype(&::PQclear) clear;
  decltype(&::PQgetCancel) getCancel;
  decltype(&::PQcancel) cancel;
  decltype(&::PQfreeCancel) freeCancel;
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
