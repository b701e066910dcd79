#include "ingest/stalwart_fields.h"

#include <array>
#include <chrono>

#include "catalog/catalog.h"

namespace mailscope::ingest {

Unit StalwartKeyUnit(std::string_view key) {
  if (key == "elapsed") return Unit::kMilliseconds;
  if (key == "size") return Unit::kBytes;
  return Unit::kNone;
}

bool IsStalwartTimestampKey(std::string_view key) {
  static constexpr std::array<std::string_view, 6> kKeys = {"expires", "nextDsn",   "nextRetry",
                                                            "due",     "validFrom", "validTo"};
  for (std::string_view k : kKeys)
    if (k == key) return true;
  return false;
}

namespace {

bool Digits(std::string_view text, std::size_t at, std::size_t n, int& out) {
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

}  // namespace

bool ParseStalwartTimestamp(std::string_view text, std::int64_t& seconds) {
  // 2025-06-15T10:20:53Z
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return false;
  }
  int year, month, day, hour, minute, second;
  if (!Digits(text, 0, 4, year) || !Digits(text, 5, 2, month) || !Digits(text, 8, 2, day) ||
      !Digits(text, 11, 2, hour) || !Digits(text, 14, 2, minute) || !Digits(text, 17, 2, second)) {
    return false;
  }
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return false;
  const auto days = std::chrono::sys_days(date).time_since_epoch().count();
  seconds = static_cast<std::int64_t>(days) * 86400 + hour * 3600 + minute * 60 + second;
  return true;
}

std::string_view StalwartTypeSpelling(std::string_view type) {
  const catalog::EventInfo* info = catalog::Catalog::Get().Find(catalog::System::kStalwart, type);
  return info != nullptr ? std::string_view(info->name) : type;
}

NameId StalwartNames::EventName(std::string_view type) {
  if (auto it = events_.find(type); it != events_.end()) return it->second;
  // The catalog's name for a known type or alias: interned without charge,
  // it is mailscope's own text.
  const catalog::EventInfo* info = catalog::Catalog::Get().Find(catalog::System::kStalwart, type);
  const NameId id = info != nullptr ? InternName(info->name) : TryInternName(type, budget_);
  // A refused name is not cached: the budget counts each refusal.
  if (id != kNoName) events_.emplace(std::string(type), id);
  return id;
}

NameId StalwartNames::Key(NameId parent, std::string_view key) {
  probe_.first = parent;
  probe_.second.assign(key);
  if (auto it = keys_.find(probe_); it != keys_.end()) return it->second;
  NameId id;
  if (parent == kNoName) {
    id = TryInternName(key, budget_);
  } else {
    std::string full(NameText(parent));
    full += '.';
    full += key;
    id = TryInternName(full, budget_);
  }
  if (id != kNoName) keys_.emplace(probe_, id);
  return id;
}

}  // namespace mailscope::ingest
