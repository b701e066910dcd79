#include "core/event.h"

namespace mailscope {

std::string_view SourceName(Source source) {
  switch (source) {
    case Source::kDovecotOldStats:
      return "dovecot_old_stats";
    case Source::kDovecot:
      return "dovecot";
    case Source::kExim:
      return "exim";
    case Source::kStalwart:
      return "stalwart";
    case Source::kQmailLog:
      return "qmail_log";
    case Source::kEximLog:
      return "exim_log";
    case Source::kStalwartLog:
      return "stalwart_log";
  }
  return "unknown";
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "unknown";
}

}  // namespace mailscope
