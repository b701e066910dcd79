#include "ingest/dovecot_event_export.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/tab_escape.h"
#include "ingest/dovecot_field_units.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

namespace od = simdjson::ondemand;

// Timestamps past the year 9999 are garbage, as in dovecot_stats_writer.cc.
constexpr std::int64_t kMaxSeconds = 253'402'300'799;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Hinnant's days_from_civil.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool IsLeap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Exactly `n` digits at s[at..] as a number.
bool Digits(std::string_view s, std::size_t at, std::size_t n, unsigned& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!IsDigit(s[i])) return false;
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

// "<digits>" of 1..9 fraction digits as microseconds (truncated).
bool Fraction(std::string_view f, std::int64_t& usec) {
  if (f.empty() || f.size() > 9) return false;
  usec = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    if (i < f.size() && !IsDigit(f[i])) return false;
    usec = usec * 10 + (i < f.size() ? f[i] - '0' : 0);
  }
  return std::all_of(f.begin(), f.end(), IsDigit);
}

TimePoint FromTimeval(std::int64_t sec, std::int64_t usec) {
  return TimePoint(std::chrono::microseconds(sec * 1'000'000 + usec));
}

// A canonical decimal integer: "0" or -?[1-9][0-9]*, so that the text of an
// integer field comes back unchanged ("007" stays a string).
bool IsCanonicalInteger(std::string_view s) {
  const std::string_view digits = !s.empty() && s.front() == '-' ? s.substr(1) : s;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) return false;
  if (digits.size() > 1 && digits.front() == '0') return false;
  return !(digits == "0" && s.size() != digits.size());  // no "-0"
}

// An integer value: kInt, or kUint when it does not fit but is positive.
bool IntegerValue(std::string_view s, Value& out) {
  std::int64_t i = 0;
  if (ParseDecimal(s, i)) {
    out = Value::Int(i);
    return true;
  }
  std::uint64_t u = 0;
  if (ParseDecimal(s, u)) {
    out = Value::Uint(u);
    return true;
  }
  return false;
}

// A JSON number token (RFC 8259 grammar) as a Value; false if it is not one.
bool JsonNumberValue(std::string_view tok, Value& out) {
  std::size_t i = 0;
  const std::size_t n = tok.size();
  if (i < n && tok[i] == '-') ++i;
  const std::size_t int_start = i;
  if (i < n && tok[i] == '0') {
    ++i;
  } else {
    while (i < n && IsDigit(tok[i])) ++i;
  }
  if (i == int_start) return false;
  const std::size_t int_end = i;
  std::size_t frac_digits = 0;
  if (i < n && tok[i] == '.') {
    ++i;
    while (i < n && IsDigit(tok[i])) ++i, ++frac_digits;
    if (frac_digits == 0) return false;
  }
  bool exponent = false;
  if (i < n && (tok[i] == 'e' || tok[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < n && (tok[i] == '+' || tok[i] == '-')) ++i;
    const std::size_t exp_start = i;
    while (i < n && IsDigit(tok[i])) ++i;
    if (i == exp_start) return false;
  }
  if (i != n) return false;
  if (frac_digits == 0 && !exponent && IntegerValue(tok, out)) return true;
  // Dovecot's time-unix timeval fields: "%ld.%06u".
  if (frac_digits == 6 && !exponent && !tok.starts_with("-0")) {
    std::int64_t sec = 0;
    unsigned usec = 0;
    if (ParseDecimal(tok.substr(0, int_end), sec) && sec >= -kMaxSeconds && sec <= kMaxSeconds &&
        Digits(tok, int_end + 1, 6, usec)) {
      out = Value::Tv({sec, usec});
      return true;
    }
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + n, d);
  if (ec != std::errc() || ptr != tok.data() + n) return false;
  out = Value::Double(d);
  return true;
}

std::string_view TrimJsonSpace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Status Reject(const char* reason, std::string msg) { return Rejected(reason, std::move(msg)); }

}  // namespace

std::optional<TimePoint> ParseExportTime(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.size() >= 20 && text[4] == '-' && text[7] == '-') {
    // time-rfc3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
    unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    if (!Digits(text, 0, 4, y) || !Digits(text, 5, 2, mo) || !Digits(text, 8, 2, d) ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !Digits(text, 11, 2, h) ||
        text[13] != ':' || !Digits(text, 14, 2, mi) || text[16] != ':' || !Digits(text, 17, 2, s)) {
      return std::nullopt;
    }
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && IsLeap(y) ? 1 : 0) ||
        h > 23 || mi > 59 || s > 60) {
      return std::nullopt;
    }
    std::string_view rest = text.substr(19);
    std::int64_t usec = 0;
    if (!rest.empty() && rest.front() == '.') {
      const std::size_t end = std::min(rest.find_first_not_of("0123456789", 1), rest.size());
      if (!Fraction(rest.substr(1, end - 1), usec)) return std::nullopt;
      rest.remove_prefix(end);
    }
    std::int64_t offset = 0;
    if (rest == "Z" || rest == "z") {
      offset = 0;
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
      unsigned oh = 0, om = 0;
      if (!Digits(rest, 1, 2, oh) || !Digits(rest, 4, 2, om) || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset = (rest[0] == '+' ? 1 : -1) * static_cast<std::int64_t>(oh * 3600 + om * 60);
    } else {
      return std::nullopt;
    }
    const std::int64_t sec = DaysFromCivil(y, mo, d) * 86'400 + h * 3600 + mi * 60 + s - offset;
    if (sec < -kMaxSeconds || sec > kMaxSeconds) return std::nullopt;
    return FromTimeval(sec, usec);
  }
  // time-unix: "%ld.%06u", the usec part belonging to the timeval as is.
  const std::size_t dot = text.find('.');
  std::int64_t sec = 0, usec = 0;
  if (!ParseDecimal(text.substr(0, dot), sec) || sec < -kMaxSeconds || sec > kMaxSeconds) {
    return std::nullopt;
  }
  if (dot != std::string_view::npos) {
    const std::string_view frac = text.substr(dot + 1);
    if (frac.size() > 6 || !Fraction(frac, usec)) return std::nullopt;
  }
  return FromTimeval(sec, usec);
}

Result<EventExportFormat> EventExportFormatFromContentType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  auto is = [&](std::string_view want) {
    return type.size() == want.size() &&
           std::equal(type.begin(), type.end(), want.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           });
  };
  if (is("application/json")) return EventExportFormat::kJson;
  if (is("text/plain")) return EventExportFormat::kTabText;
  if (is("application/octet-stream")) return EventExportFormat::kNone;
  return Rejected("unsupported_content_type", "Unsupported Content-Type '" +
                                                  QuoteForLog(content_type) +
                                                  "': expected application/json or text/plain");
}

struct DovecotEventExportDecoder::Json {
  explicit Json(std::size_t max_bytes) : parser(max_bytes) {}
  od::parser parser;
};

DovecotEventExportDecoder::DovecotEventExportDecoder(EventExportOptions options)
    : options_(options),
      names_(NameInput::kDovecotPost, options.max_new_names),
      json_(std::make_unique<Json>(options.max_body_bytes)) {
  fields_.reserve(FieldList::kCapacity);
  event_.source = Source::kDovecot;
}

DovecotEventExportDecoder::~DovecotEventExportDecoder() = default;

Status DovecotEventExportDecoder::Decode(std::string_view content_type, std::string_view body,
                                         TimePoint received) {
  Result<EventExportFormat> format = EventExportFormatFromContentType(content_type);
  if (!format.ok()) return format.status();
  return Decode(*format, body, received);
}

Status DovecotEventExportDecoder::Decode(EventExportFormat format, std::string_view body,
                                         TimePoint received) {
  event_.Clear();
  event_.source = Source::kDovecot;
  event_.level = Level::kDebug;
  hostname_ = {};
  end_time_.reset();
  parts_ = {};
  fields_.clear();
  if (format == EventExportFormat::kNone) {
    return Reject("no_payload", "format none: the body carries no event");
  }
  if (body.size() > options_.max_body_bytes) {
    return ResourceExhausted("body_too_large", "Body of " + std::to_string(body.size()) +
                                                   " bytes is over " +
                                                   std::to_string(options_.max_body_bytes));
  }
  // A copy the event's strings can point into, with simdjson's padding.
  body_.resize(body.size() + simdjson::SIMDJSON_PADDING);
  std::copy(body.begin(), body.end(), body_.begin());
  std::fill(body_.begin() + static_cast<std::ptrdiff_t>(body.size()), body_.end(), '\0');
  Status st = format == EventExportFormat::kJson ? DecodeJson(received) : DecodeTabText(received);
  if (st.ok() && event_.name == kNoName) {
    st = Reject("missing_event", "The body has no event name (exporter_include lacks name?)");
  }
  if (st.ok()) std::copy(fields_.begin(), fields_.end(), event_.fields.Append(fields_.size()));
  return st;
}

Status DovecotEventExportDecoder::SetName(std::string_view name) {
  if (name.size() > options_.max_name_bytes) {
    return ResourceExhausted("name_too_long",
                             "Event name of " + std::to_string(name.size()) + " bytes");
  }
  parts_.name = true;
  event_.name = name.empty() ? kNoName : TryInternName(name, names_);
  if (event_.name == kNoName && !name.empty()) return NameRefused("event name");
  return Status::Ok();
}

Status DovecotEventExportDecoder::NameRefused(std::string_view what) const {
  return NameRefusedStatus(names_, what);
}

Status DovecotEventExportDecoder::AddCategory(std::string_view name) {
  parts_.categories = true;
  if (name.empty()) return Status::Ok();
  if (name.size() > options_.max_name_bytes) {
    return ResourceExhausted("name_too_long",
                             "Category name of " + std::to_string(name.size()) + " bytes");
  }
  const NameId id = TryInternName(name, names_);
  if (id == kNoName) return NameRefused("category name");
  if (event_.categories.contains(id)) return Status::Ok();
  if (event_.categories.size() == CategoryList::kCapacity) {
    return ResourceExhausted(
        "too_many_categories",
        "More than " + std::to_string(CategoryList::kCapacity) + " categories");
  }
  event_.categories.push_back(id);
  return Status::Ok();
}

Status DovecotEventExportDecoder::AddField(std::string_view key, Value value) {
  if (key.empty()) return Status::Ok();  // no Dovecot field has an empty key
  if (key.size() > options_.max_name_bytes) {
    return ResourceExhausted("name_too_long",
                             "Field key of " + std::to_string(key.size()) + " bytes");
  }
  const NameId id = TryInternName(key, names_);
  if (id == kNoName) return Status::Ok();  // no room for a new key: the field is left out
  const Value::Type t = value.type();
  if (t == Value::Type::kInt || t == Value::Type::kUint || t == Value::Type::kDouble)
    value = value.WithUnit(DovecotFieldUnit(key));
  for (Field& f : fields_) {
    if (f.key == id) {
      f.value = value;
      return Status::Ok();
    }
  }
  if (fields_.size() == FieldList::kCapacity) {
    return ResourceExhausted("too_many_fields",
                             "More than " + std::to_string(FieldList::kCapacity) + " fields");
  }
  fields_.push_back({id, value});
  return Status::Ok();
}

Status DovecotEventExportDecoder::DecodeJson(TimePoint received) {
  const std::size_t size = body_.size() - simdjson::SIMDJSON_PADDING;
  // Joined string lists are never longer than the body, so views into text_
  // stay valid while it fills.
  text_.clear();
  text_.reserve(size);
  auto bad = [](simdjson::error_code e) {
    return Reject("bad_json", std::string("Invalid JSON: ") + simdjson::error_message(e));
  };
  od::document doc;
  if (auto e = json_->parser.iterate(simdjson::padded_string_view(body_.data(), size, body_.size()))
                   .get(doc)) {
    return bad(e);
  }
  od::object root;
  if (auto e = doc.get_object().get(root)) return bad(e);
  bool has_time = false;
  for (auto member : root) {
    od::field field;
    std::string_view key;
    if (auto e = std::move(member).get(field)) return bad(e);
    if (auto e = field.unescaped_key().get(key)) return bad(e);
    od::value value = field.value();
    std::string_view s;
    if (key == "event") {
      if (auto e = value.get_string().get(s)) return bad(e);
      MS_RETURN_IF_ERROR(SetName(s));
    } else if (key == "hostname") {
      if (auto e = value.get_string().get(s)) return bad(e);
      hostname_ = s;
      parts_.hostname = true;
    } else if (key == "start_time" || key == "end_time") {
      od::json_type type;
      if (auto e = value.type().get(type)) return bad(e);
      if (type == od::json_type::string) {
        if (auto e = value.get_string().get(s)) return bad(e);
      } else {
        s = TrimJsonSpace(value.raw_json_token());
      }
      std::optional<TimePoint> t = ParseExportTime(s);
      if (!t) {
        std::string msg = "Invalid ";
        msg.append(key).append(" '").append(QuoteForLog(s)).append("'");
        return Reject("bad_time", std::move(msg));
      }
      parts_.timestamps = true;
      if (key == "end_time") {
        end_time_ = t;
      } else {
        event_.time = *t;
        has_time = true;
      }
    } else if (key == "categories") {
      od::array cats;
      if (value.get_array().get(cats)) return Reject("bad_categories", "categories is no array");
      parts_.categories = true;
      for (auto c : cats) {
        if (c.get_string().get(s)) return Reject("bad_categories", "A category is no string");
        MS_RETURN_IF_ERROR(AddCategory(s));
      }
    } else if (key == "fields") {
      od::object fields;
      if (value.get_object().get(fields)) return Reject("bad_fields", "fields is no object");
      parts_.fields = true;
      for (auto fm : fields) {
        od::field f;
        std::string_view name;
        if (auto e = std::move(fm).get(f)) return bad(e);
        if (auto e = f.unescaped_key().get(name)) return bad(e);
        od::value v = f.value();
        od::json_type type;
        if (auto e = v.type().get(type)) return bad(e);
        Value out;
        auto what = [name] { return "Field '" + QuoteForLog(name) + "': "; };
        switch (type) {
          case od::json_type::string:
            if (auto e = v.get_string().get(s)) return bad(e);
            out = Value::String(s);
            break;
          case od::json_type::number:
            if (!JsonNumberValue(TrimJsonSpace(v.raw_json_token()), out)) {
              return Reject("bad_field_value", what() + "invalid number");
            }
            break;
          case od::json_type::boolean: {
            bool b = false;
            if (auto e = v.get_bool().get(b)) return bad(e);
            out = Value::Bool(b);
            break;
          }
          case od::json_type::null: {
            bool is_null = false;
            if (v.is_null().get(is_null) || !is_null) {
              return Reject("bad_json", what() + "invalid literal");
            }
            continue;
          }
          case od::json_type::array: {
            // A string list: the elements joined by TAB.
            od::array elems;
            if (auto e = v.get_array().get(elems)) return bad(e);
            const std::size_t start = text_.size();
            bool first = true;
            for (auto elem : elems) {
              if (elem.get_string().get(s)) {
                return Reject("bad_field_value", what() + "a list element is no string");
              }
              MS_CHECK(text_.size() + s.size() + 1 <= text_.capacity());
              if (!first) text_.push_back('\t');
              text_.insert(text_.end(), s.begin(), s.end());
              first = false;
            }
            out = Value::String(std::string_view(text_.data() + start, text_.size() - start));
            break;
          }
          case od::json_type::object:
            return Reject("bad_field_value", what() + "an object is no field value");
        }
        MS_RETURN_IF_ERROR(AddField(name, out));
      }
    }
    // Other keys: ignored, as the body may carry more in later versions.
  }
  // Past the object, current_location() is out of bounds unless more follows.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) {
    return Reject("bad_json", "Invalid JSON: content after the object");
  }
  if (!has_time) event_.time = received;
  return Status::Ok();
}

Status DovecotEventExportDecoder::DecodeTabText(TimePoint received) {
  const std::size_t size = body_.size() - simdjson::SIMDJSON_PADDING;
  bool has_time = false;
  char* p = body_.data();
  char* const end = p + size;
  // event_export_fmt_tabescaped_text(): items joined by TAB, each escaped on
  // its own; "field:" items escape key and value separately, which unescaping
  // the whole item undoes as well (escapes contain no '=').
  while (p <= end && size > 0) {
    char* tab = static_cast<char*>(std::memchr(p, '\t', static_cast<std::size_t>(end - p)));
    char* stop = tab != nullptr ? tab : end;
    const std::string_view item = UnescapeTabInPlace({p, static_cast<std::size_t>(stop - p)});
    p = stop + 1;
    auto rest = [&](std::string_view prefix) { return item.substr(prefix.size()); };
    if (item.empty()) {
      // Dovecot writes an empty item for included categories when there are none.
      parts_.categories = true;
    } else if (item.starts_with("event:")) {
      MS_RETURN_IF_ERROR(SetName(rest("event:")));
    } else if (item.starts_with("hostname:")) {
      hostname_ = rest("hostname:");
      parts_.hostname = true;
    } else if (item.starts_with("start_time:") || item.starts_with("end_time:")) {
      const bool start = item.front() == 's';
      const std::string_view text = rest(start ? "start_time:" : "end_time:");
      std::optional<TimePoint> t = ParseExportTime(text);
      if (!t) return Reject("bad_time", "Invalid time '" + QuoteForLog(text) + "'");
      parts_.timestamps = true;
      if (start) {
        event_.time = *t;
        has_time = true;
      } else {
        end_time_ = t;
      }
    } else if (item.starts_with("category:")) {
      MS_RETURN_IF_ERROR(AddCategory(rest("category:")));
    } else if (item.starts_with("field:")) {
      const std::string_view kv = rest("field:");
      const std::size_t eq = kv.find('=');
      if (eq == std::string_view::npos) {
        return Reject("bad_item", "Field item without '=': '" + QuoteForLog(kv) + "'");
      }
      parts_.fields = true;
      const std::string_view text = kv.substr(eq + 1);
      Value v = Value::String(text);
      if (IsCanonicalInteger(text)) IntegerValue(text, v);
      MS_RETURN_IF_ERROR(AddField(kv.substr(0, eq), v));
    }
    // Other items: ignored.
    if (tab == nullptr) break;
  }
  if (!has_time) event_.time = received;
  return Status::Ok();
}

}  // namespace mailscope::ingest
