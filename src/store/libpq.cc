#include "store/libpq.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <string>
#include <type_traits>

namespace mailscope::store {

Result<LibPq> LoadLibPqFrom(const char* file) {
  void* lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    return FailedPrecondition(
        fmt::format("cannot load {} (PostgreSQL's client library, Debian package libpq5): {}", file,
                    why != nullptr ? why : "unknown error"));
  }
  LibPq pq{};
  Status missing = Status::Ok();
  auto bind = [&](auto& function, const char* name) {
    void* symbol = dlsym(lib, name);
    if (symbol == nullptr && missing.ok()) {
      missing = FailedPrecondition(fmt::format("{} has no function {}", file, name));
    }
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(symbol);
  };
  bind(pq.conninfoParse, "PQconninfoParse");
  bind(pq.conninfoFree, "PQconninfoFree");
  bind(pq.freemem, "PQfreemem");
  bind(pq.connectdbParams, "PQconnectdbParams");
  bind(pq.status, "PQstatus");
  bind(pq.errorMessage, "PQerrorMessage");
  bind(pq.setNoticeProcessor, "PQsetNoticeProcessor");
  bind(pq.finish, "PQfinish");
  bind(pq.exec, "PQexec");
  bind(pq.execParams, "PQexecParams");
  bind(pq.sendQueryParams, "PQsendQueryParams");
  bind(pq.setSingleRowMode, "PQsetSingleRowMode");
  bind(pq.getResult, "PQgetResult");
  bind(pq.resultStatus, "PQresultStatus");
  bind(pq.ntuples, "PQntuples");
  bind(pq.getvalue, "PQgetvalue");
  bind(pq.getlength, "PQgetlength");
  bind(pq.getisnull, "PQgetisnull");
  bind(pq.cmdTuples, "PQcmdTuples");
  bind(pq.clear, "PQclear");
  bind(pq.getCancel, "PQgetCancel");
  bind(pq.cancel, "PQcancel");
  bind(pq.freeCancel, "PQfreeCancel");
  if (!missing.ok()) {
    dlclose(lib);
    return missing;
  }
  return pq;
}

Result<const LibPq*> LoadLibPq() {
  static const Result<LibPq> loaded = LoadLibPqFrom(kLibPqFile);
  if (!loaded.ok()) return loaded.status();
  return &*loaded;
}

}  // namespace mailscope::store
