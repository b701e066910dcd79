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
#define MAILSCOPE_LIBPQ_BIND(name) bind(pq.name, "PQ" #name);
  MAILSCOPE_LIBPQ_FUNCTIONS(MAILSCOPE_LIBPQ_BIND)
#undef MAILSCOPE_LIBPQ_BIND
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
