#include "export/event_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "core/tab_escape.h"
#include "export/json_writer.h"

namespace mailscope::exporter {
namespace {

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? static_cast<std::size_t>(end - buf) : 0);
}

// `v` in decimal, left-padded with zeros to `width` digits.
void AppendPadded(std::string& out, std::uint64_t v, std::size_t width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  const auto len = static_cast<std::size_t>(end - buf);
  if (len < width) out.append(width - len, '0');
  out.append(buf, len);
}

// The civil date of a day count since 1970-01-01 (H. Hinnant's
// civil_from_days), for any time gmtime() could give and beyond.
struct Civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};
Civil CivilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<std::uint64_t>(z - era * 146097);
  const std::uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const std::uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::uint64_t mp = (5 * doy + 2) / 153;
  const auto d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const auto m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  return {m <= 2 ? y + 1 : y, m, d};
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

void AppendJsonQuoted(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

// A string value, cut as the log transport wants (append_str_max_len() and
// append_field_str() in event-exporter-fmt-*.c).
void AppendJsonCut(std::string& out, std::string_view s, std::size_t max) {
  out += '"';
  if (max != 0 && s.size() > max) {
    AppendJsonEscaped(out, s.substr(0, max));
    out += "...";
  } else {
    AppendJsonEscaped(out, s);
  }
  out += '"';
}

void AppendTabCut(std::string& out, std::string_view s, std::size_t max) {
  if (max != 0 && s.size() > max) {
    AppendTabEscaped(out, s.substr(0, max));
    out += "...";
  } else {
    AppendTabEscaped(out, s);
  }
}

void AppendDouble(std::string& out, double d, bool json) {
  if (json && !std::isfinite(d)) {
    out += "null";
    return;
  }
  AppendNumber(out, d);
}

// Calls f(element) for each TAB-separated element of a joined string list;
// none for the empty string.
template <typename F>
void ForEachListElement(std::string_view joined, F&& f) {
  if (joined.empty()) return;
  for (;;) {
    const std::size_t tab = joined.find('\t');
    f(joined.substr(0, tab), tab == std::string_view::npos);
    if (tab == std::string_view::npos) return;
    joined.remove_prefix(tab + 1);
  }
}

}  // namespace

Timeval ToTimeval(TimePoint t) {
  const std::int64_t us = t.time_since_epoch().count();
  const std::int64_t sec = FloorDiv(us, 1'000'000);
  return {sec, us - sec * 1'000'000};
}

// event_export_helper_fmt_unix_time(): "%ld.%06u"; _rfc3339_time(): gmtime()
// and "%04d-%02d-%02dT%02d:%02d:%02d.%06luZ".
void AppendExportTime(std::string& out, Timeval tv, TimeFormat format) {
  if (format == TimeFormat::kUnix) {
    AppendNumber(out, tv.sec);
    out += '.';
    AppendPadded(out, static_cast<std::uint32_t>(tv.usec), 6);
    return;
  }
  const std::int64_t days = FloorDiv(tv.sec, 86'400);
  const auto secs = static_cast<std::uint64_t>(tv.sec - days * 86'400);
  const Civil date = CivilFromDays(days);
  if (date.year < 0) {
    out += '-';
    AppendPadded(out, static_cast<std::uint64_t>(-date.year), 3);
  } else {
    AppendPadded(out, static_cast<std::uint64_t>(date.year), 4);
  }
  out += '-';
  AppendPadded(out, date.month, 2);
  out += '-';
  AppendPadded(out, date.day, 2);
  out += 'T';
  AppendPadded(out, secs / 3600, 2);
  out += ':';
  AppendPadded(out, secs / 60 % 60, 2);
  out += ':';
  AppendPadded(out, secs % 60, 2);
  out += '.';
  AppendPadded(out, static_cast<std::uint64_t>(tv.usec), 6);
  out += 'Z';
}

FormatSpec MakeFormatSpec(const ExporterSettings& exporter, const ExporterInclude& include,
                          std::span<const std::string> metric_fields, std::string_view hostname) {
  FormatSpec spec;
  spec.format = exporter.format;
  spec.time_format = exporter.time_format;
  spec.include = include;
  spec.fields = metric_fields;
  spec.hostname = hostname;
  spec.max_field_bytes = exporter.max_field_bytes;
  return spec;
}

EventFormatter::EventFormatter() : EventFormatter(kDefaultListKeys) {}

EventFormatter::EventFormatter(std::span<const std::string_view> list_keys)
    : list_keys_(list_keys.begin(), list_keys.end()) {}

bool EventFormatter::IsListKey(std::string_view key) const {
  return std::find(list_keys_.begin(), list_keys_.end(), key) != list_keys_.end();
}

void EventFormatter::Format(const Event& event, const FormatSpec& spec, TimePoint now,
                            std::string& out) {
  out.clear();
  if (spec.format == EventFormat::kNone) return;
  Flatten(event);
  if (spec.format == EventFormat::kJson) {
    FormatJson(event, spec, now, out);
  } else {
    FormatTabText(event, spec, now, out);
  }
}

// event_flatten(): the global event's chain, then the event's, each from its
// root; categories and fields copied in that order.
void EventFormatter::Flatten(const Event& event) {
  chain_.clear();
  for (const Event* start : {event.global, event.parent}) {
    const std::size_t from = chain_.size();
    int hops = 0;
    for (const Event* e = start; e != nullptr && hops < Event::kMaxChain; e = e->parent, ++hops) {
      chain_.push_back(e);
    }
    std::reverse(chain_.begin() + static_cast<std::ptrdiff_t>(from), chain_.end());
  }
  chain_.push_back(&event);

  flat_.clear();
  categories_.clear();
  for (const Event* e : chain_) {
    for (NameId c : e->categories) {
      if (std::find(categories_.begin(), categories_.end(), c) == categories_.end()) {
        categories_.push_back(c);
      }
    }
    AddFields(*e);
  }
}

void EventFormatter::AddFields(const Event& e) {
  auto set = [this](std::string_view key, Value v) {
    for (Entry& f : flat_) {
      if (f.key.data() == key.data() || f.key == key) {
        f.value = v;
        return;
      }
    }
    flat_.push_back({key, v});
  };
  for (const Field& f : e.fields) {
    switch (f.value.type()) {
      case Value::Type::kNone:
        break;
      case Value::Type::kRecord: {
        const RecordSchema* schema = f.value.record_schema();
        for (std::size_t i = 0; i < schema->column_count; ++i) {
          set(schema->columns[i].name, f.value.RecordColumnValue(schema->columns[i]));
        }
        break;
      }
      default:
        if (f.key != kNoName) set(NameText(f.key), f.value);
        break;
    }
  }
}

const EventFormatter::Entry* EventFormatter::FindFlat(std::string_view key) const {
  for (const Entry& f : flat_) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

void EventFormatter::AppendJsonValue(std::string& out, const Entry& e, const FormatSpec& spec) {
  const Value& v = e.value;
  switch (v.type()) {
    case Value::Type::kInt:
      AppendNumber(out, v.as_int());
      break;
    case Value::Type::kUint:
      AppendNumber(out, v.as_uint());
      break;
    case Value::Type::kDouble:
      AppendDouble(out, v.as_double(), true);
      break;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Type::kTimeval:
      if (spec.time_format == TimeFormat::kRfc3339) out += '"';
      AppendExportTime(out, v.as_timeval(), spec.time_format);
      if (spec.time_format == TimeFormat::kRfc3339) out += '"';
      break;
    case Value::Type::kString:
      if (IsListKey(e.key)) {
        out += '[';
        ForEachListElement(v.as_string(), [&](std::string_view elem, bool last) {
          AppendJsonCut(out, elem, spec.max_field_bytes);
          if (!last) out += ',';
        });
        out += ']';
      } else {
        AppendJsonCut(out, v.as_string(), spec.max_field_bytes);
      }
      break;
    case Value::Type::kNone:
    case Value::Type::kRecord:  // flattened into columns
      out += "null";
      break;
  }
}

void EventFormatter::AppendTabValue(std::string& out, const Entry& e, const FormatSpec& spec) {
  const Value& v = e.value;
  switch (v.type()) {
    case Value::Type::kInt:
      AppendNumber(out, v.as_int());
      break;
    case Value::Type::kUint:
      AppendNumber(out, v.as_uint());
      break;
    case Value::Type::kDouble:
      AppendDouble(out, v.as_double(), false);
      break;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Type::kTimeval:
      AppendExportTime(out, v.as_timeval(), spec.time_format);
      break;
    case Value::Type::kString:
      if (IsListKey(e.key)) {
        // append_strlist(): the elements tab-escaped and joined by TAB, then
        // all of it escaped again; never cut.
        scratch_.clear();
        ForEachListElement(v.as_string(), [&](std::string_view elem, bool last) {
          AppendTabEscaped(scratch_, elem);
          if (!last) scratch_ += '\t';
        });
        AppendTabEscaped(out, scratch_);
      } else {
        AppendTabCut(out, v.as_string(), spec.max_field_bytes);
      }
      break;
    case Value::Type::kNone:
    case Value::Type::kRecord:
      break;
  }
}

// event_export_fmt_json(): every part ends with ',' and the last one is cut.
void EventFormatter::FormatJson(const Event& event, const FormatSpec& spec, TimePoint now,
                                std::string& out) {
  const ExporterInclude& inc = spec.include;
  if (inc.none()) {
    out += "{}";
    return;
  }
  out += '{';
  if (inc.name) {
    out += "\"event\":";
    AppendJsonQuoted(out, event.name == kNoName ? std::string_view() : NameText(event.name));
    out += ',';
  }
  if (inc.hostname) {
    out += "\"hostname\":";
    AppendJsonQuoted(out, spec.hostname);
    out += ',';
  }
  if (inc.timestamps) {
    const bool quote = spec.time_format == TimeFormat::kRfc3339;
    out += quote ? "\"start_time\":\"" : "\"start_time\":";
    AppendExportTime(out, ToTimeval(event.time), spec.time_format);
    out += quote ? "\",\"end_time\":\"" : ",\"end_time\":";
    AppendExportTime(out, ToTimeval(now), spec.time_format);
    out += quote ? "\"," : ",";
  }
  if (inc.categories) {
    out += "\"categories\":[";
    for (std::size_t i = 0; i < categories_.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonQuoted(out, NameText(categories_[i]));
    }
    out += "],";
  }
  if (inc.fields) {
    out += "\"fields\":{";
    bool appended = false;
    auto append = [&](std::string_view key, const Entry& e) {
      AppendJsonQuoted(out, key);
      out += ':';
      AppendJsonValue(out, e, spec);
      out += ',';
      appended = true;
    };
    if (spec.fields.empty()) {
      for (const Entry& e : flat_) append(e.key, e);
    } else {
      for (const std::string& name : spec.fields) {
        if (const Entry* e = FindFlat(name)) append(name, *e);
      }
    }
    if (appended) out.pop_back();
    out += "},";
  }
  out.pop_back();
  out += '}';
}

// event_export_fmt_tabescaped_text(): every item ends with TAB and the last
// TAB is cut. The categories part always adds one more TAB of its own.
void EventFormatter::FormatTabText(const Event& event, const FormatSpec& spec, TimePoint now,
                                   std::string& out) {
  const ExporterInclude& inc = spec.include;
  if (inc.none()) return;
  if (inc.name) {
    out += "event:";
    AppendTabEscaped(out, event.name == kNoName ? std::string_view() : NameText(event.name));
    out += '\t';
  }
  if (inc.hostname) {
    out += "hostname:";
    AppendTabEscaped(out, spec.hostname);
    out += '\t';
  }
  if (inc.timestamps) {
    out += "start_time:";
    AppendExportTime(out, ToTimeval(event.time), spec.time_format);
    out += "\tend_time:";
    AppendExportTime(out, ToTimeval(now), spec.time_format);
    out += '\t';
  }
  if (inc.categories) {
    for (std::size_t i = 0; i < categories_.size(); ++i) {
      if (i > 0) out += '\t';
      out += "category:";
      AppendTabEscaped(out, NameText(categories_[i]));
    }
    out += '\t';
  }
  if (inc.fields) {
    auto append = [&](std::string_view key, const Entry& e) {
      out += "field:";
      AppendTabEscaped(out, key);
      out += '=';
      AppendTabValue(out, e, spec);
      out += '\t';
    };
    if (spec.fields.empty()) {
      for (const Entry& e : flat_) append(e.key, e);
    } else {
      for (const std::string& name : spec.fields) {
        if (const Entry* e = FindFlat(name)) append(name, *e);
      }
    }
  }
  if (!out.empty()) out.pop_back();
}

}  // namespace mailscope::exporter
