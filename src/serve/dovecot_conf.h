// Reads the statistics part of a dovecot.conf: the `metric NAME { }` and
// `event_exporter NAME { }` blocks, so a setup that defines metrics for
// Dovecot 2.3's stats service can point mailscope at the same file (or a
// snippet pasted from it) and get the same metrics.
//
// The syntax is Dovecot's config syntax, as far as these blocks need it:
//   key = value            the value is the rest of the line, trimmed; a value
//                          wholly in "..." or '...' is unquoted (\" \\ \n \t)
//   key = <path            the value is the content of that file, trimmed
//   type [name] {  ...  }  a section; nesting is allowed
//   # comment              outside quotes, '#' starts a comment
//   line \                 a trailing backslash joins the next line
//   !include PATH          PATH (glob, relative to the including file) is read
//   !include_try PATH      the same, silently skipping what does not exist
// Everything outside metric and event_exporter blocks (protocols, services,
// passdbs, ...) is read for syntax and otherwise skipped, so a whole
// dovecot.conf can be given. Errors name file:line like Dovecot's.
//
// One parse lists at most 65,536 directory entries while expanding include
// patterns and reads at most 1,024 included files; past either it fails,
// naming the include. Paths with a NUL byte, include paths longer than 4,096
// bytes and include patterns with wildcards in more than 8 directory levels
// are refused.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mailscope::serve {

struct DovecotConfSetting {
  std::string key;
  std::string value;
  std::string where;  // "file:line"
};

struct DovecotConfSection {
  std::string type;  // "metric" or "event_exporter"
  std::string name;
  std::string where;  // "file:line" of the opening line
  std::vector<DovecotConfSetting> settings;
};

struct DovecotConf {
  std::vector<DovecotConfSection> sections;  // in file order
  std::size_t skipped_settings = 0;          // settings outside those blocks
};

// Parses `text` read from `file_name`; includes resolve against the
// directory of `file_name`.
Result<DovecotConf> ParseDovecotConf(std::string_view text, std::string_view file_name);
// Reads and parses a file.
Result<DovecotConf> LoadDovecotConf(const std::string& path);

}  // namespace mailscope::serve
