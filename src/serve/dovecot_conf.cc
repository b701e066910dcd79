#include "serve/dovecot_conf.h"

#include <dirent.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mailscope::serve {
namespace {

constexpr int kMaxIncludeDepth = 16;
constexpr std::size_t kMaxFileBytes = 16u << 20;
// A pattern such as /*/*/*/* walks the whole file system, and a file that
// includes `*` beside itself multiplies at each level: both are bounded.
constexpr std::size_t kMaxGlobEntries = 65536;   // directory entries, per parse
constexpr std::size_t kMaxIncludedFiles = 1024;  // files read by !include, per parse
// Patterns longer than a path can be, or with wildcards in more levels than
// any include needs, are refused before any directory is read.
constexpr std::size_t kMaxPatternBytes = 4096;  // PATH_MAX
constexpr int kMaxWildcardLevels = 8;

// Whether a '/'-separated part of a pattern is matched against directory
// entries rather than taken as it is: it has a wildcard or an escape.
bool IsPatternPart(std::string_view part) {
  return part.find_first_of("*?[\\") != std::string_view::npos;
}

// How many '/'-separated parts of `pattern` have a wildcard.
int WildcardLevels(std::string_view pattern) {
  int levels = 0;
  for (std::size_t start = 0; start <= pattern.size();) {
    std::size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    if (pattern.substr(start, end - start).find_first_of("*?[") != std::string_view::npos) {
      ++levels;
    }
    start = end + 1;
  }
  return levels;
}

// The paths that `pattern` names, as glob(3) without flags finds them (a
// wildcard matches no leading dot; only existing paths; sorted), found level
// by level without recursion: glibc's glob() recurses per level and copies
// the pattern on its stack, and the config fuzzer overflowed it twice. Reads
// at most `entries_left` directory entries, counting them down; `cut` is set
// when it ran out.
std::vector<std::string> ExpandPattern(const std::string& pattern, std::size_t& entries_left,
                                       bool& cut) {
  std::vector<std::string> found = {pattern.starts_with('/') ? "/" : ""};
  auto join = [](const std::string& dir, std::string_view name) {
    if (dir.empty()) return std::string(name);
    return dir.back() == '/' ? dir + std::string(name) : dir + "/" + std::string(name);
  };
  for (std::size_t start = 0; start <= pattern.size() && !found.empty();) {
    std::size_t end = pattern.find('/', start);
    if (end == std::string::npos) end = pattern.size();
    const std::string part = pattern.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;  // "//" or a trailing '/'
    std::vector<std::string> next;
    for (const std::string& dir : found) {
      if (!IsPatternPart(part)) {
        next.push_back(join(dir, part));
        continue;
      }
      DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
      if (d == nullptr) continue;
      while (const dirent* e = ::readdir(d)) {
        if (entries_left == 0) {
          cut = true;
          break;
        }
        --entries_left;
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        if (::fnmatch(part.c_str(), e->d_name, FNM_PERIOD) == 0) next.push_back(join(dir, name));
      }
      ::closedir(d);
      if (cut) return {};
    }
    found = std::move(next);
  }
  std::vector<std::string> out;
  struct stat st {};
  for (std::string& path : found) {
    if (::lstat(path.c_str(), &st) == 0) out.push_back(std::move(path));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsWhite(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsWhite(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (IsWhite(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Cuts a comment that starts outside quotes.
std::string_view StripComment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"' || c == '\'') {
      for (++i; i < line.size() && line[i] != c; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
      }
      if (i >= line.size()) break;
    } else if (c == '#') {
      return line.substr(0, i);
    }
  }
  return line;
}

// A value wholly enclosed in matching quotes loses them, and each backslash
// keeps only the character after it, as Dovecot's str_unescape().
std::string Unquote(std::string_view v) {
  if (v.size() < 2 || (v.front() != '"' && v.front() != '\'') || v.back() != v.front()) {
    return std::string(v);
  }
  std::string out;
  v = v.substr(1, v.size() - 2);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

// Regular files only (a FIFO or /dev/zero would block or never end), and
// at most kMaxFileBytes of them.
Result<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec) return NotFound(fmt::format("{}: cannot open: {}", path, ec.message()));
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgument(fmt::format("{}: not a regular file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::string text;
  char chunk[65536];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return InvalidArgument(fmt::format("{}: larger than {} bytes", path, kMaxFileBytes));
    }
  }
  return text;
}

class Parser {
 public:
  Status Parse(std::string_view text, const std::string& file, int depth);
  // Every section must be closed at the end of the top-level file.
  Status Finish() const {
    if (open_.empty()) return Status::Ok();
    return InvalidArgument(fmt::format("{}: section '{}' is not closed with '}}'",
                                       open_.back().where, open_.back().type));
  }

  DovecotConf conf;

 private:
  Status Line(std::string_view line, const std::string& file, int line_no, int depth);
  Status Include(std::string_view pattern, bool must_exist, const std::string& file,
                 const std::string& where, int depth);

  // Open sections, outermost first; only a top-level metric or
  // event_exporter section collects settings.
  struct Open {
    std::string type;
    std::string where;
    bool collect;
  };
  std::vector<Open> open_;
  std::size_t glob_entries_left_ = kMaxGlobEntries;
  std::size_t included_files_ = 0;
};

Status Parser::Parse(std::string_view text, const std::string& file, int depth) {
  std::string joined;  // a line continued with a trailing backslash
  int line_no = 0, joined_start = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view raw = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') {
      if (joined.empty()) continue;
      line = {};
    }
    line = Trim(StripComment(line));
    if (!line.empty() && line.back() == '\\') {
      if (joined.empty()) joined_start = line_no;
      joined += Trim(line.substr(0, line.size() - 1));
      joined += ' ';
      continue;
    }
    int at = line_no;
    if (!joined.empty()) {
      joined += line;
      at = joined_start;
      MS_RETURN_IF_ERROR(Line(Trim(joined), file, at, depth));
      joined.clear();
      continue;
    }
    MS_RETURN_IF_ERROR(Line(line, file, at, depth));
  }
  if (!joined.empty()) MS_RETURN_IF_ERROR(Line(Trim(joined), file, joined_start, depth));
  return Status::Ok();
}

Status Parser::Line(std::string_view line, const std::string& file, int line_no, int depth) {
  if (line.empty()) return Status::Ok();
  const std::string where = fmt::format("{}:{}", file, line_no);
  auto error = [&](std::string_view msg) {
    return InvalidArgument(fmt::format("{}: {}", where, msg));
  };
  if (line == "}") {
    if (open_.empty()) return error("Unexpected '}'");
    open_.pop_back();
    return Status::Ok();
  }
  std::size_t key_end = 0;
  while (key_end < line.size() && !IsWhite(line[key_end]) && line[key_end] != '=' &&
         line[key_end] != '{') {
    ++key_end;
  }
  std::string_view key = line.substr(0, key_end);
  std::string_view rest = Trim(line.substr(key_end));
  if (key == "!include" || key == "!include_try") {
    return Include(Unquote(rest), key == "!include", file, where, depth);
  }
  if (!rest.empty() && rest.front() == '=') {
    if (key.empty()) return error("Missing setting name before '='");
    std::string_view raw = Trim(rest.substr(1));
    const bool collect = !open_.empty() && open_.back().collect && open_.size() == 1;
    std::string value;
    // Settings outside the stats blocks are skipped unread: `ssl_key = </path`
    // names files mailscope has no business opening.
    if (collect && !raw.empty() && raw.front() == '<') {
      if (raw.find('\0') != std::string_view::npos) return error("file path contains a NUL byte");
      std::filesystem::path p(std::string(Trim(raw.substr(1))));
      if (p.is_relative()) p = std::filesystem::path(file).parent_path() / p;
      auto content = ReadFile(p.string());
      if (!content.ok()) return error(content.status().message());
      value = std::string(Trim(*content));
      while (!value.empty() && value.back() == '\n') value.pop_back();
    } else {
      value = Unquote(raw);
    }
    if (collect) {
      conf.sections.back().settings.push_back({std::string(key), std::move(value), where});
    } else if (open_.size() == 1 && !open_.back().collect) {
      ++conf.skipped_settings;
    } else if (!open_.empty() && open_.front().collect) {
      return error(
          fmt::format("Unexpected setting inside a nested section of {}", open_.front().type));
    } else {
      ++conf.skipped_settings;
    }
    return Status::Ok();
  }
  // A section: type [name] {
  if (line.back() != '{') {
    return error(fmt::format("Expecting '=' after '{}'", key));
  }
  std::string_view name = Trim(rest.substr(0, rest.size() - 1));
  if (key.empty()) return error("Missing section type before '{'");
  std::string section_name = Unquote(name);
  const bool stats_block = open_.empty() && (key == "metric" || key == "event_exporter");
  if (!open_.empty() && open_.front().collect) {
    return error(fmt::format("Unexpected section '{}' inside {}", key, open_.front().type));
  }
  if (stats_block) {
    if (section_name.empty()) return error(fmt::format("{} {{ }} needs a name", key));
    conf.sections.push_back({std::string(key), section_name, where, {}});
  }
  open_.push_back({std::string(key), where, stats_block});
  return Status::Ok();
}

Status Parser::Include(std::string_view pattern, bool must_exist, const std::string& file,
                       const std::string& where, int depth) {
  if (depth >= kMaxIncludeDepth) {
    return InvalidArgument(fmt::format("{}: !include nested more than {} deep", where, depth));
  }
  if (pattern.empty()) return InvalidArgument(fmt::format("{}: !include needs a path", where));
  if (pattern.find('\0') != std::string_view::npos) {
    return InvalidArgument(fmt::format("{}: !include path contains a NUL byte", where));
  }
  std::filesystem::path p{std::string(pattern)};
  if (p.is_relative()) p = std::filesystem::path(file).parent_path() / p;
  if (p.native().size() > kMaxPatternBytes) {
    return InvalidArgument(
        fmt::format("{}: !include path longer than {} bytes", where, kMaxPatternBytes));
  }
  if (WildcardLevels(p.native()) > kMaxWildcardLevels) {
    return InvalidArgument(fmt::format("{}: !include path has wildcards in more than {} levels",
                                       where, kMaxWildcardLevels));
  }
  bool exhausted = false;
  std::vector<std::string> paths = ExpandPattern(p.native(), glob_entries_left_, exhausted);
  if (exhausted) {
    return InvalidArgument(
        fmt::format("{}: !include {}: the includes list more than {} directory entries", where,
                    p.string(), kMaxGlobEntries));
  }
  if (paths.size() > kMaxIncludedFiles - included_files_) {
    return InvalidArgument(fmt::format("{}: !include {}: more than {} included files", where,
                                       p.string(), kMaxIncludedFiles));
  }
  included_files_ += paths.size();
  if (paths.empty()) {
    if (!must_exist) return Status::Ok();
    // A pattern without wildcards names one file: say why it cannot be read.
    if (pattern.find_first_of("*?[") == std::string_view::npos) {
      auto missing = ReadFile(p.string());
      if (!missing.ok())
        return InvalidArgument(fmt::format("{}: {}", where, missing.status().message()));
    }
    return InvalidArgument(fmt::format("{}: !include {}: no such file", where, p.string()));
  }
  for (const std::string& path : paths) {
    auto text = ReadFile(path);
    if (!text.ok()) {
      if (!must_exist) continue;
      return InvalidArgument(fmt::format("{}: {}", where, text.status().message()));
    }
    MS_RETURN_IF_ERROR(Parse(*text, path, depth + 1));
  }
  return Status::Ok();
}

}  // namespace

Result<DovecotConf> ParseDovecotConf(std::string_view text, std::string_view file_name) {
  Parser parser;
  std::string file(file_name);
  MS_RETURN_IF_ERROR(parser.Parse(text, file, 0));
  MS_RETURN_IF_ERROR(parser.Finish());
  return std::move(parser.conf);
}

Result<DovecotConf> LoadDovecotConf(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return InvalidArgument(text.status().message());
  return ParseDovecotConf(*text, path);
}

}  // namespace mailscope::serve
