#include "serve/run_dir.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace mailscope::serve {

Status MakeRunDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path path(dir);
  if (path.has_parent_path() && path.parent_path() != path) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return Unavailable(fmt::format("cannot create {}: {}", dir, ec.message()));
  }
  if (::mkdir(dir.c_str(), 0755) == 0) {
    // mkdir's mode passes through the umask; the directory is ours, so say
    // exactly what it is.
    if (::chmod(dir.c_str(), 0755) != 0)
      return Unavailable(fmt::format("chmod {}: {}", dir, std::strerror(errno)));
    return Status::Ok();
  }
  if (errno != EEXIST)
    return Unavailable(fmt::format("cannot create {}: {}", dir, std::strerror(errno)));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return Unavailable(fmt::format("{}: {}", dir, std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    return Unavailable(fmt::format("{} exists and is not a directory", dir));
  return Status::Ok();
}

Status MakePrivateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Unavailable(fmt::format("cannot create {}: {}", dir, std::strerror(errno)));
  // Checked whether just made or found: the checks are what make it safe.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0)
    return Unavailable(fmt::format("{}: {}", dir, std::strerror(errno)));
  auto refuse = [&dir](std::string_view problem) {
    return Unavailable(
        fmt::format("refusing to use {}: {} (another local user may have made it); remove it or "
                    "configure another directory",
                    dir, problem));
  };
  if (S_ISLNK(st.st_mode)) return refuse("it is a symlink");
  if (!S_ISDIR(st.st_mode)) return refuse("it is not a directory");
  if (st.st_uid != ::geteuid())
    return refuse(fmt::format("it is owned by uid {}, not by uid {}", st.st_uid, ::geteuid()));
  if ((st.st_mode & 077) != 0)
    return refuse(fmt::format("its mode {:04o} lets its group or others in; it must be 0700",
                              st.st_mode & 07777));
  return Status::Ok();
}

}  // namespace mailscope::serve
