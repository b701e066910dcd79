#include "core/event.h"

#include <cstring>

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

std::string_view UnitName(Unit unit) {
  switch (unit) {
    case Unit::kNone:
      return "";
    case Unit::kMicroseconds:
      return "us";
    case Unit::kMilliseconds:
      return "ms";
    case Unit::kSeconds:
      return "s";
    case Unit::kBytes:
      return "bytes";
  }
  return "";
}

Value Value::RecordColumnValue(const RecordColumn& column) const {
  const auto* p = static_cast<const unsigned char*>(u_.r.data) + column.offset;
  switch (column.type) {
    case RecordColumn::Type::kU32: {
      std::uint32_t v;
      std::memcpy(&v, p, sizeof v);
      return Uint(v);
    }
    case RecordColumn::Type::kU64: {
      std::uint64_t v;
      std::memcpy(&v, p, sizeof v);
      return Uint(v);
    }
    case RecordColumn::Type::kTimeval: {
      Timeval tv;
      std::memcpy(&tv.sec, p, sizeof tv.sec);
      std::memcpy(&tv.usec, p + 8, sizeof tv.usec);
      return Tv(tv);
    }
  }
  return {};
}

Value Event::Lookup(std::string_view key) const {
  Value v;
  return FindHere(FindName(key), key, v) ? v : Value{};
}

bool Event::FindHere(NameId id, std::string_view key, Value& out) const {
  if (const Value* own = OwnValue(id)) {
    out = *own;
    return true;
  }
  for (const Field& f : fields) {
    if (f.value.type() != Value::Type::kRecord) continue;
    const RecordSchema* schema = f.value.record_schema();
    for (std::size_t i = 0; i < schema->column_count; ++i) {
      if (schema->columns[i].name == key) {
        out = f.value.RecordColumnValue(schema->columns[i]);
        return true;
      }
    }
  }
  return false;
}

bool Event::FindInChain(NameId id, std::string_view key, Value& out) const {
  if (id == kNoName) return false;  // no field has an empty key
  return VisitChain([&](const Event& e) { return e.FindHere(id, key, out); });
}

bool ParseSourceName(std::string_view name, Source& out) {
  for (int i = 0; i < kSourceCount; ++i) {
    if (SourceName(static_cast<Source>(i)) == name) {
      out = static_cast<Source>(i);
      return true;
    }
  }
  return false;
}

bool ParseLevelName(std::string_view name, Level& out) {
  for (int i = 0; i <= static_cast<int>(Level::kPanic); ++i) {
    if (LevelName(static_cast<Level>(i)) == name) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
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
    case Level::kFatal:
      return "fatal";
    case Level::kPanic:
      return "panic";
  }
  return "unknown";
}

}  // namespace mailscope
