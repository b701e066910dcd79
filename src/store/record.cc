#include "store/record.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iterator>

#include "core/base64.h"
#include "core/check.h"
#include "export/event_format.h"
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

// A name (a field's key, a category) as a JSON string: names are text, so a
// NUL or a byte that is not UTF-8 in one becomes U+FFFD.
void AppendJsonName(std::string& out, std::string_view name) {
  if (name.find('\0') == std::string_view::npos) return exporter::AppendJsonString(out, name);
  std::string fixed;
  for (char c : name) {
    if (c == '\0') {
      fixed += "\xEF\xBF\xBD";
    } else {
      fixed += c;
    }
  }
  exporter::AppendJsonString(out, fixed);  // replaces what is not UTF-8
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
        // The shortest text that reads back as the same double, and reads
        // back as a double: 1.0 is "1.0", not the integer "1".
        const std::size_t at = out.size();
        fmt::format_to(std::back_inserter(out), "{}", v.as_double());
        if (out.find_first_of(".eE", at) == std::string::npos) out += ".0";
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
    case Value::Type::kString:
      AppendJsonBytes(out, v.as_string());
      break;
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
  exporter::AppendExportTime(out,
                             exporter::ToTimeval(TimePoint(std::chrono::microseconds(time_us))),
                             exporter::TimeFormat::kRfc3339);
}

void AppendJsonBytes(std::string& out, std::string_view s) {
  // NUL is no more text than bytes that are not UTF-8: PostgreSQL's text
  // refuses it, and one \u0000 in a json value makes ->> fail.
  if (s.find('\0') == std::string_view::npos && exporter::IsValidUtf8(s)) {
    exporter::AppendJsonString(out, s);
    return;
  }
  out += "{\"base64\":\"";
  out += Base64Encode(s.data(), s.size());
  out += "\"}";
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
    if (id >= seen_.size()) {
      seen_.resize(id + 1024, 0);
      slot_.resize(id + 1024, 0);
    }
    if (seen_[id] == stamp_) return true;
    seen_[id] = stamp_;
    slot_[id] = static_cast<std::uint32_t>(flat_.size());
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
      } else if (!seen_id(f.key)) {
        const std::string_view name = NameText(f.key);
        bool column = false;
        for (std::size_t i = 0; has_records_ && !column && i < flat_.size(); ++i) {
          if (flat_[i].id == kNoName && flat_[i].key == name) {
            slot_[f.key] = static_cast<std::uint32_t>(i);  // a record column had it first
            column = true;
          }
        }
        if (!column) flat_.push_back({f.key, name, f.value});
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
    if (const Entry* e = FindFlat(field)) return ColumnText(e->value, scratch);
  }
  return {};
}

const RecordEncoder::Entry* RecordEncoder::FindFlat(NameId id) const {
  if (id < seen_.size() && seen_[id] == stamp_) return &flat_[slot_[id]];
  if (!has_records_) return nullptr;
  for (const Entry& e : flat_)  // a record column of that name
    if (e.id == kNoName && e.key == NameText(id)) return &e;
  return nullptr;
}
std::size_t RecordEncoder::Capture(const Event& event, std::uint64_t stream, std::uint64_t seq,
                                   std::string& out) {
  Flatten(event);
  std::string_view message_id = Normalized(event, message_id_, normalized_[5]);
  for (std::size_t i = 0; message_id.empty() && i < message_id_fields_.size(); ++i) {
    if (const Entry* e = FindFlat(message_id_fields_[i]))
      message_id = ColumnText(e->value, normalized_[5]);
  }
  const std::string_view columns[] = {
      event.name == kNoName ? std::string_view("-") : NameText(event.name),
      NameText(event.taxonomy.kind),
      NameText(event.taxonomy.outcome),
      Normalized(event, remote_ip_, normalized_[0]),
      Normalized(event, user_, normalized_[1]),
      Normalized(event, sender_, normalized_[2]),
      Normalized(event, recipient_, normalized_[3]),
      Normalized(event, domain_, normalized_[4]),
      message_id};
  // The size first, then one resize and plain stores: the small appends of
  // a field at a time were most of the loop's cost.
  std::size_t size = kRecordHeaderBytes + 4 + 4;
  for (std::string_view c : columns) size += 4 + c.size();
  for (NameId c : categories_) size += 4 + NameText(c).size();
  for (const Entry& e : flat_) {
    size += 4 + e.key.size() + 2;
    switch (e.value.type()) {
      case Value::Type::kString:
        size += 4 + e.value.as_string().size();
        break;
      case Value::Type::kTimeval:
        size += 16;
        break;
      case Value::Type::kNone:
      case Value::Type::kRecord:
        break;
      default:
        size += 8;
        break;
    }
  }
  const std::size_t start = out.size();
  out.resize(start + size);
  char* p = out.data() + start;
  auto u32 = [&p](std::uint32_t v) {
    for (int k = 0; k < 4; ++k) *p++ = static_cast<char>(v >> (8 * k));
  };
  auto i64 = [&u32](std::int64_t v) {
    const auto u = static_cast<std::uint64_t>(v);
    u32(static_cast<std::uint32_t>(u));
    u32(static_cast<std::uint32_t>(u >> 32));
  };
  auto bytes = [&p, &u32](std::string_view v) {
    u32(static_cast<std::uint32_t>(v.size()));
    if (v.empty()) return;  // an empty view's data() may be null
    std::memcpy(p, v.data(), v.size());
    p += v.size();
  };
  u32(static_cast<std::uint32_t>(size));
  *p++ = static_cast<char>(kCaptureVersion);
  *p++ = static_cast<char>(event.source);
  *p++ = static_cast<char>(event.level);
  *p++ = '\0';
  i64(event.time.time_since_epoch().count());
  i64(static_cast<std::int64_t>(stream));
  i64(static_cast<std::int64_t>(seq));
  for (std::string_view c : columns) bytes(c);
  u32(static_cast<std::uint32_t>(categories_.size()));
  for (NameId c : categories_) bytes(NameText(c));
  u32(static_cast<std::uint32_t>(flat_.size()));
  for (const Entry& e : flat_) {
    bytes(e.key);
    const Value& v = e.value;
    *p++ = static_cast<char>(v.type());
    *p++ = static_cast<char>(v.unit());
    switch (v.type()) {
      case Value::Type::kString:
        bytes(v.as_string());
        break;
      case Value::Type::kTimeval:
        i64(v.as_timeval().sec);
        i64(v.as_timeval().usec);
        break;
      case Value::Type::kDouble: {
        std::uint64_t bits;
        const double d = v.as_double();
        std::memcpy(&bits, &d, sizeof bits);
        i64(static_cast<std::int64_t>(bits));
        break;
      }
      case Value::Type::kInt:
        i64(v.as_int());
        break;
      case Value::Type::kUint:
      case Value::Type::kBool:
        i64(static_cast<std::int64_t>(v.as_uint()));
        break;
      case Value::Type::kNone:
      case Value::Type::kRecord:  // flattened into columns already
        break;
    }
  }
  MS_CHECK(p == out.data() + start + size);
  return size;
}

Status RecordEncoder::Finish(std::string_view in, std::string& out, std::size_t* used) {
  auto corrupt = [](const char* what) {
    return Rejected("record_corrupt", std::string("capture: ") + what);
  };
  if (in.size() < kRecordHeaderBytes) return corrupt("header cut short");
  const std::uint32_t total = GetU32(in.data());
  if (total < kRecordHeaderBytes || total > in.size()) return corrupt("size out of bounds");
  if (static_cast<std::uint8_t>(in[4]) != kCaptureVersion) return corrupt("not a capture");
  std::size_t at = kRecordHeaderBytes;
  bool ok = true;
  auto u32 = [&]() -> std::uint32_t {
    if (!ok || total - at < 4) {
      ok = false;
      return 0;
    }
    const std::uint32_t v = GetU32(in.data() + at);
    at += 4;
    return v;
  };
  auto i64 = [&]() -> std::int64_t {
    if (!ok || total - at < 8) {
      ok = false;
      return 0;
    }
    const std::int64_t v = GetI64(in.data() + at);
    at += 8;
    return v;
  };
  auto str = [&]() -> std::string_view {
    const std::uint32_t len = u32();
    if (!ok || total - at < len) {
      ok = false;
      return {};
    }
    const std::string_view v = in.substr(at, len);
    at += len;
    return v;
  };
  auto byte = [&]() -> std::uint8_t {
    if (!ok || total - at < 1) {
      ok = false;
      return 0;
    }
    return static_cast<std::uint8_t>(in[at++]);
  };
  if (static_cast<std::uint8_t>(in[5]) >= kSourceCount ||
      static_cast<std::uint8_t>(in[6]) > static_cast<std::uint8_t>(Level::kPanic))
    return corrupt("unknown source or level");
  RecordView r;
  r.source = static_cast<Source>(in[5]);
  r.level = static_cast<Level>(in[6]);
  r.time_us = GetI64(in.data() + 8);
  r.stream = static_cast<std::uint64_t>(GetI64(in.data() + 16));
  r.seq = static_cast<std::uint64_t>(GetI64(in.data() + 24));
  for (std::string_view* f : {&r.event, &r.kind, &r.outcome, &r.remote_ip, &r.user, &r.sender,
                              &r.recipient, &r.domain, &r.message_id})
    *f = str();
  cats_.clear();
  for (std::uint32_t n = u32(); ok && n > 0; --n) {
    const std::string_view c = str();
    cats_ += cats_.empty() ? '[' : ',';
    AppendJsonName(cats_, c);
  }
  if (!cats_.empty()) cats_ += ']';
  json_.assign(1, '{');
  units_.clear();
  for (std::uint32_t n = u32(); ok && n > 0; --n) {
    const std::string_view key = str();
    const auto type = static_cast<Value::Type>(byte());
    const auto unit = static_cast<Unit>(byte());
    Value v;
    switch (type) {
      case Value::Type::kString:
        v = Value::String(str());
        break;
      case Value::Type::kTimeval: {
        const std::int64_t sec = i64();
        v = Value::Tv({sec, i64()});
        break;
      }
      case Value::Type::kDouble: {
        const auto bits = static_cast<std::uint64_t>(i64());
        double d;
        std::memcpy(&d, &bits, sizeof d);
        v = Value::Double(d);
        break;
      }
      case Value::Type::kInt:
        v = Value::Int(i64());
        break;
      case Value::Type::kUint:
        v = Value::Uint(static_cast<std::uint64_t>(i64()));
        break;
      case Value::Type::kBool:
        v = Value::Bool(i64() != 0);
        break;
      default:
        break;
    }
    if (!ok) break;
    if (json_.size() > 1) json_ += ',';
    AppendJsonName(json_, key);
    json_ += ':';
    AppendJsonValue(json_, v);
    if (unit != Unit::kNone) {
      units_ += units_.empty() ? '{' : ',';
      AppendJsonName(units_, key);
      units_ += ':';
      exporter::AppendJsonString(units_, UnitName(unit));
    }
  }
  if (!ok || at != total) return corrupt("fields do not add up to its size");
  json_ += '}';
  if (!units_.empty()) units_ += '}';
  r.categories = cats_;
  r.fields = json_;
  r.units = units_;
  AppendRecord(r, out);
  *used = total;
  return Status::Ok();
}

std::size_t RecordEncoder::Append(const Event& event, std::uint64_t stream, std::uint64_t seq,
                                  std::string& out) {
  capture_.clear();
  Capture(event, stream, seq, capture_);
  const std::size_t before = out.size();
  std::size_t used = 0;
  const Status s = Finish(capture_, out, &used);
  MS_CHECK(s.ok());
  return out.size() - before;
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
