#include "store/record.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iterator>

#include "core/base64.h"
#include "export/json_writer.h"

namespace mailscope::store {
namespace {

void PutU32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
  out.append(b, 4);
}

void PatchU32(std::string& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(v >> (8 * i));
}

std::uint32_t GetU32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void PutI64(std::string& out, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  PutU32(out, static_cast<std::uint32_t>(u));
  PutU32(out, static_cast<std::uint32_t>(u >> 32));
}

std::int64_t GetI64(const char* p) {
  const std::uint64_t lo = GetU32(p);
  const std::uint64_t hi = GetU32(p + 4);
  return static_cast<std::int64_t>(lo | (hi << 32));
}

void PutString(std::string& out, std::string_view s) {
  PutU32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

// Bytes that JSON strings escape: '"', '\\' and the control characters.
constexpr std::array<bool, 256> kJsonEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = true;
  t['"'] = t['\\'] = true;
  return t;
}();

// The length of the valid UTF-8 sequence at `p` (of `left` bytes), or 0.
std::size_t Utf8Sequence(const unsigned char* p, std::size_t left) {
  const unsigned char c = p[0];
  std::size_t len;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (left < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Appends `s` as a JSON string when it is valid UTF-8 and returns true; else
// leaves `out` as it was and returns false. One pass: runs of bytes that
// need no escape are copied whole.
bool AppendUtf8JsonString(std::string& out, std::string_view s) {
  const std::size_t start = out.size();
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t run = 0, i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (!kJsonEscape[c]) {
        ++i;
        continue;
      }
      out.append(s.data() + run, i - run);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out.append(esc, sizeof esc);
        }
      }
      run = ++i;
      continue;
    }
    const std::size_t len = Utf8Sequence(p + i, n - i);
    if (len == 0) {
      out.resize(start);
      return false;
    }
    i += len;
  }
  out.append(s.data() + run, n - run);
  out += '"';
  return true;
}

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

// A value as JSON, in the record's conventions (record.h).
void AppendJsonValue(std::string& out, const Value& v) {
  switch (v.type()) {
    case Value::Type::kNone:
    case Value::Type::kRecord:
      out += "null";
      break;
    case Value::Type::kInt:
      AppendNumber(out, v.as_int());
      break;
    case Value::Type::kUint:
      AppendNumber(out, v.as_uint());
      break;
    case Value::Type::kDouble:
      if (std::isfinite(v.as_double())) {
        fmt::format_to(std::back_inserter(out), "{}", v.as_double());
      } else {
        out += "null";
      }
      break;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Type::kTimeval:
      fmt::format_to(std::back_inserter(out), "\"{}.{:06}\"", v.as_timeval().sec,
                     v.as_timeval().usec);
      break;
    case Value::Type::kString: {
      const std::string_view s = v.as_string();
      if (!AppendUtf8JsonString(out, s)) {
        out += "{\"base64\":\"";
        out += Base64Encode(s.data(), s.size());
        out += "\"}";
      }
      break;
    }
  }
}

// A value as the text of a normalized column.
std::string_view ColumnText(const Value& v, std::string& scratch) {
  scratch.clear();
  switch (v.type()) {
    case Value::Type::kString:
      return v.as_string();
    case Value::Type::kInt:
      fmt::format_to(std::back_inserter(scratch), "{}", v.as_int());
      return scratch;
    case Value::Type::kUint:
      fmt::format_to(std::back_inserter(scratch), "{}", v.as_uint());
      return scratch;
    default:
      return {};
  }
}

}  // namespace

void AppendRfc3339(std::string& out, std::int64_t time_us) {
  // By hand from the day count: chrono's formatting goes through
  // nanoseconds, which hold only the years 1677 to 2262.
  auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - (a % b < 0 ? 1 : 0); };
  const std::int64_t secs = floor_div(time_us, 1'000'000);
  const std::int64_t days = floor_div(secs, 86'400);
  const std::int64_t in_day = secs - days * 86'400;
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days(std::chrono::days(static_cast<int>(days)))};
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                 static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                 static_cast<unsigned>(ymd.day()), in_day / 3600, in_day / 60 % 60, in_day % 60,
                 time_us - secs * 1'000'000);
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t i = 0; i < s.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = Utf8Sequence(p + i, s.size() - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

RecordEncoder::RecordEncoder()
    : remote_ip_(InternName("remote_ip")),
      user_(InternName("user")),
      sender_(InternName("sender")),
      recipient_(InternName("recipient")),
      domain_(InternName("domain")),
      message_id_(InternName("message_id")) {
  for (std::string_view f : kMessageIdFields) message_id_fields_.push_back(InternName(f));
}

void RecordEncoder::Flatten(const Event& event) {
  has_records_ = false;
  event.VisitChain([&](const Event& e) {
    for (const Field& f : e.fields)
      has_records_ = has_records_ || f.value.type() == Value::Type::kRecord;
    return has_records_;
  });
  // The nearest value of a key wins; the first position it was seen at is
  // kept, as `mailscope tail` prints them. Fields are told apart by name id,
  // record columns (whose names are not interned) by text.
  flat_.clear();
  // Name ids seen in this event carry this event's stamp: one look each.
  if (++stamp_ == 0) {
    std::fill(seen_.begin(), seen_.end(), 0);
    stamp_ = 1;
  }
  auto seen_id = [&](NameId id) {
    if (id >= seen_.size()) seen_.resize(id + 1024, 0);
    if (seen_[id] == stamp_) return true;
    seen_[id] = stamp_;
    return false;
  };
  auto seen_text = [&](std::string_view key) {
    for (const Entry& e : flat_)
      if (e.key == key) return true;
    return false;
  };
  event.VisitChain([&](const Event& e) {
    for (const Field& f : e.fields) {
      if (f.value.type() == Value::Type::kRecord) {
        const RecordSchema* schema = f.value.record_schema();
        for (std::size_t i = 0; i < schema->column_count; ++i) {
          const std::string_view name = schema->columns[i].name;
          if (!seen_text(name))
            flat_.push_back({kNoName, name, f.value.RecordColumnValue(schema->columns[i])});
        }
      } else if (!seen_id(f.key) && (!has_records_ || !seen_text(NameText(f.key)))) {
        flat_.push_back({f.key, NameText(f.key), f.value});
      }
    }
    return false;
  });
  categories_.clear();
  event.VisitChain([&](const Event& e) {
    for (NameId c : e.categories) {
      bool seen = false;
      for (NameId s : categories_) seen = seen || s == c;
      if (!seen) categories_.push_back(c);
    }
    return false;
  });
}

std::string_view RecordEncoder::Normalized(const Event& event, NameId normalized,
                                           std::string& scratch) {
  // As the filter language looks a key up: the field of that name, else the
  // source field the taxonomy maps it to. So `user=bob` on a record means
  // its user column equals bob.
  for (NameId field : {normalized, event.taxonomy.FieldFor(normalized)}) {
    if (field == kNoName) continue;
    for (const Entry& e : flat_)
      if (e.id == field || (e.id == kNoName && e.key == NameText(field)))
        return ColumnText(e.value, scratch);
  }
  return {};
}

std::size_t RecordEncoder::Append(const Event& event, std::uint64_t stream, std::uint64_t seq,
                                  std::string& out) {
  Flatten(event);
  json_.clear();
  units_.clear();
  json_ += '{';
  for (const Entry& e : flat_) {
    if (json_.size() > 1) json_ += ',';
    if (!AppendUtf8JsonString(json_, e.key)) exporter::AppendJsonString(json_, e.key);
    json_ += ':';
    AppendJsonValue(json_, e.value);
    if (e.value.unit() != Unit::kNone) {
      units_ += units_.empty() ? '{' : ',';
      if (!AppendUtf8JsonString(units_, e.key)) exporter::AppendJsonString(units_, e.key);
      units_ += ':';
      AppendUtf8JsonString(units_, UnitName(e.value.unit()));
    }
  }
  json_ += '}';
  if (!units_.empty()) units_ += '}';
  cats_.clear();
  for (NameId c : categories_) {
    cats_ += cats_.empty() ? '[' : ',';
    if (!AppendUtf8JsonString(cats_, NameText(c))) exporter::AppendJsonString(cats_, NameText(c));
  }
  if (!cats_.empty()) cats_ += ']';

  std::string_view message_id = Normalized(event, message_id_, normalized_[5]);
  for (std::size_t i = 0; message_id.empty() && i < message_id_fields_.size(); ++i) {
    for (const Entry& e : flat_)
      if (e.id == message_id_fields_[i]) message_id = ColumnText(e.value, normalized_[5]);
  }

  const std::size_t start = out.size();
  PutU32(out, 0);
  out += static_cast<char>(kRecordVersion);
  out += static_cast<char>(event.source);
  out += static_cast<char>(event.level);
  out += '\0';
  PutI64(out, event.time.time_since_epoch().count());
  PutI64(out, static_cast<std::int64_t>(stream));
  PutI64(out, static_cast<std::int64_t>(seq));
  PutString(out, event.name == kNoName ? std::string_view("-") : NameText(event.name));
  PutString(out, NameText(event.taxonomy.kind));
  PutString(out, NameText(event.taxonomy.outcome));
  PutString(out, Normalized(event, remote_ip_, normalized_[0]));
  PutString(out, Normalized(event, user_, normalized_[1]));
  PutString(out, Normalized(event, sender_, normalized_[2]));
  PutString(out, Normalized(event, recipient_, normalized_[3]));
  PutString(out, Normalized(event, domain_, normalized_[4]));
  PutString(out, message_id);
  PutString(out, cats_);
  PutString(out, json_);
  PutString(out, units_);
  const std::size_t size = out.size() - start;
  PatchU32(out, start, static_cast<std::uint32_t>(size));
  return size;
}

void AppendRecord(const RecordView& r, std::string& out) {
  const std::size_t start = out.size();
  PutU32(out, 0);
  out += static_cast<char>(kRecordVersion);
  out += static_cast<char>(r.source);
  out += static_cast<char>(r.level);
  out += '\0';
  PutI64(out, r.time_us);
  PutI64(out, static_cast<std::int64_t>(r.stream));
  PutI64(out, static_cast<std::int64_t>(r.seq));
  for (std::string_view s : {r.event, r.kind, r.outcome, r.remote_ip, r.user, r.sender, r.recipient,
                             r.domain, r.message_id, r.categories, r.fields, r.units})
    PutString(out, s);
  PatchU32(out, start, static_cast<std::uint32_t>(out.size() - start));
}

Status DecodeRecord(std::string_view in, RecordView& out, std::size_t* size) {
  auto corrupt = [](std::string msg) { return Rejected("record_corrupt", std::move(msg)); };
  if (in.size() < kRecordHeaderBytes) return corrupt("record header cut short");
  const std::uint32_t total = GetU32(in.data());
  if (total < kRecordHeaderBytes + 4 * kRecordStrings || total > in.size())
    return corrupt(fmt::format("record size {} does not fit the {} bytes left", total, in.size()));
  if (static_cast<std::uint8_t>(in[4]) != kRecordVersion)
    return corrupt(fmt::format("unknown record version {}", static_cast<unsigned char>(in[4])));
  const auto source = static_cast<std::uint8_t>(in[5]);
  const auto level = static_cast<std::uint8_t>(in[6]);
  if (source >= kSourceCount) return corrupt(fmt::format("unknown source {}", source));
  if (in[7] != 0) return corrupt("record header's reserved byte is not 0");
  if (level > static_cast<std::uint8_t>(Level::kPanic))
    return corrupt(fmt::format("unknown level {}", level));
  out.source = static_cast<Source>(source);
  out.level = static_cast<Level>(level);
  out.time_us = GetI64(in.data() + 8);
  out.stream = static_cast<std::uint64_t>(GetI64(in.data() + 16));
  out.seq = static_cast<std::uint64_t>(GetI64(in.data() + 24));
  std::string_view* strings[kRecordStrings] = {
      &out.event,     &out.kind,   &out.outcome,    &out.remote_ip,  &out.user,   &out.sender,
      &out.recipient, &out.domain, &out.message_id, &out.categories, &out.fields, &out.units};
  std::size_t at = kRecordHeaderBytes;
  for (std::string_view* s : strings) {
    if (total - at < 4) return corrupt("record strings cut short");
    const std::uint32_t len = GetU32(in.data() + at);
    at += 4;
    if (total - at < len) return corrupt("record string longer than the record");
    *s = in.substr(at, len);
    at += len;
  }
  if (at != total) return corrupt("record has bytes after its strings");
  *size = total;
  return Status::Ok();
}

}  // namespace mailscope::store
