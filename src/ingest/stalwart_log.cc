#include "ingest/stalwart_log.h"

#include <charconv>
#include <chrono>
#include <limits>

#include "core/check.h"
#include "ingest/log_lines.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

constexpr std::size_t kNpos = std::string_view::npos;
// Stalwart's keys are short camelCase words and its types
// `subsystem.kebab-name`; longer runs are neither, and bounding them keeps
// each probe for one constant.
constexpr std::size_t kMaxKeyBytes = 64;
constexpr std::size_t kMaxTypeBytes = 128;
// `2025-06-15T10:20:53Z`
constexpr std::size_t kTimestampBytes = 20;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}
bool IsTypeChar(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || c == '-'; }

bool At(std::string_view text, std::size_t i, std::string_view s) {
  return i <= text.size() && text.substr(i).starts_with(s);
}

// The length of the key at `i` when `key = ` follows it; else 0.
std::size_t KeyLengthAt(std::string_view text, std::size_t i) {
  std::size_t n = 0;
  while (i + n < text.size() && n <= kMaxKeyBytes && IsKeyChar(text[i + n])) ++n;
  if (n == 0 || n > kMaxKeyBytes || !At(text, i + n, " = ")) return 0;
  return n;
}

// Whether a type group `(subsystem.name)` opens at `i`; `close` is its ')'.
bool TypeGroupAt(std::string_view text, std::size_t i, std::size_t& close) {
  if (i >= text.size() || text[i] != '(') return false;
  std::size_t dot = kNpos;
  std::size_t j = i + 1;
  for (; j < text.size() && j - i <= kMaxTypeBytes; ++j) {
    const char c = text[j];
    if (c == '.' && dot == kNpos) {
      dot = j;
    } else if (!IsTypeChar(c)) {
      break;
    }
  }
  if (j >= text.size() || text[j] != ')' || dot == kNpos || dot == i + 1 || dot + 1 == j) {
    return false;
  }
  close = j;
  return true;
}

// The length of the ECMA-48 control sequence at `i` (ESC '[', parameter
// bytes, intermediate bytes, one final byte), or 0. Colours are `ESC[..m`;
// the other sequences a console may carry go as well.
std::size_t ControlSequenceLength(std::string_view s, std::size_t i) {
  if (!At(s, i, "\x1b[")) return 0;
  std::size_t j = i + 2;
  while (j < s.size() && s[j] >= 0x30 && s[j] <= 0x3f) ++j;
  while (j < s.size() && s[j] >= 0x20 && s[j] <= 0x2f) ++j;
  if (j >= s.size() || s[j] < 0x40 || s[j] > 0x7e) return 0;
  return j + 1 - i;
}

// `line` without its control sequences into `out`; false (and `out`
// untouched) when it has none.
bool StripAnsi(std::string_view line, std::string& out) {
  std::size_t esc = line.find('\x1b');
  if (esc == kNpos) return false;
  out.clear();
  std::size_t from = 0;
  while (esc != kNpos) {
    out.append(line.substr(from, esc - from));
    const std::size_t n = ControlSequenceLength(line, esc);
    if (n == 0) {
      out += '\x1b';
      from = esc + 1;
    } else {
      from = esc + n;
    }
    esc = line.find('\x1b', from);
  }
  out.append(line.substr(from));
  return true;
}

bool ParseLevel(std::string_view word, Level& level) {
  if (word == "INFO") {
    level = Level::kInfo;
  } else if (word == "DEBUG") {
    level = Level::kDebug;
  } else if (word == "TRACE") {
    level = Level::kTrace;
  } else if (word == "WARN") {
    level = Level::kWarn;
  } else if (word == "ERROR") {
    level = Level::kError;
  } else {
    return false;
  }
  return true;
}

// The punctuation of `YYYY-MM-DDTHH:MM:SSZ`; the digits are checked by
// ParseStalwartTimestamp.
bool HasTimestampShape(std::string_view s) {
  return s.size() >= kTimestampBytes && IsDigit(s[0]) && s[4] == '-' && s[7] == '-' &&
         s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z';
}

// Rust's Display of an f64: digits with a point, NaN, inf, -inf. A float
// that is a whole number prints without a point and comes here only when
// it does not fit 64 bits.
bool ParseDouble(std::string_view s, double& out) {
  if (s == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s == "inf" || s == "-inf") {
    out = s[0] == '-' ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    return true;
  }
  const auto [ptr, ec] =
      std::from_chars(s.data(), s.data() + s.size(), out, std::chars_format::fixed);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// A value that is neither quoted, nor an array, nor a nested event.
// REQUIRES: !token.empty().
Value ScalarValue(std::string_view token) {
  if (token == "true") return Value::Bool(true);
  if (token == "false") return Value::Bool(false);
  const char c = token[0];
  if (IsDigit(c) || c == '-' || c == 'N' || c == 'i') {
    std::uint64_t u = 0;
    std::int64_t i = 0;
    if (c != '-' && ParseDecimal(token, u)) return Value::Uint(u);
    if (c == '-' && ParseDecimal(token, i)) return i < 0 ? Value::Int(i) : Value::Uint(0);
    if (token.ends_with("ms") && ParseDecimal(token.substr(0, token.size() - 2), u)) {
      return Value::Uint(u).WithUnit(Unit::kMilliseconds);
    }
    std::int64_t seconds = 0;
    if (token.size() == kTimestampBytes && ParseStalwartTimestamp(token, seconds)) {
      return Value::Tv({seconds, 0});
    }
    double d = 0;
    if (ParseDouble(token, d)) return Value::Double(d);
  }
  if (token.starts_with("base64:")) return Value::String(token.substr(7));
  // An address, or a constant older releases printed without quotes.
  return Value::String(token);
}

class StalwartLineFormat final : public LogLineFormat {
 public:
  std::string_view name() const override { return "stalwart"; }
  Source source() const override { return Source::kStalwartLog; }
  Status DecodeLine(std::string_view message, Event& out) override {
    return decoder_.Decode(message, out);
  }
  // The level follows the time, where syslog has its host.
  bool iso8601_syslog_header() const override { return false; }
  // Each line is a whole event: the span's keys are printed on it already.
  void Join(Event&) override {}
  std::string SaveState() const override { return {}; }
  Status LoadState(std::string_view saved) override {
    if (!saved.empty()) {
      return InvalidArgument("stalwart log state: expected none, got \"" + QuoteForLog(saved) +
                             "\"");
    }
    return Status::Ok();
  }

 private:
  StalwartLineDecoder decoder_;
};

}  // namespace

StalwartLineDecoder::StalwartLineDecoder()
    : names_(NameBudget(NameInput::kLogFile, kMaxNewNames)) {}

Status StalwartLineDecoder::Decode(std::string_view line, Event& out) {
  out.name = kNoName;
  out.fields.clear();
  line_ = line;
  text_ = StripAnsi(line, clean_) ? std::string_view(clean_) : line;
  pos_ = 0;
  // Every string a field points to lies in the line or in scratch_, which
  // must therefore not move while the line is decoded. What goes there is
  // never longer than the line: an unescaped string is shorter than its
  // quoted text, an array's TAB-joined elements shorter than the array
  // (an event in an array adds its type's v0.16 name, at most twice as
  // long as the type as written). Put() checks it.
  scratch_.clear();
  scratch_.reserve(text_.size() * 2 + 64);
  Status st = DecodeClean(out);
  if (!st.ok()) {
    out.name = kNoName;
    out.fields.clear();
  }
  return st;
}

Status StalwartLineDecoder::DecodeClean(Event& out) {
  // A line without keys ends in ") " (and a console may pad it).
  while (!text_.empty() && text_.back() == ' ') text_.remove_suffix(1);
  if (text_.empty()) return Bad("bad_line", "empty line");
  if (text_[0] == '\t') return Bad("multiline", "a key line of a multiline log");
  if (HasTimestampShape(text_)) {
    std::int64_t seconds = 0;
    if (!ParseStalwartTimestamp(text_.substr(0, kTimestampBytes), seconds)) {
      return Bad("bad_timestamp", "not a time");
    }
    pos_ = kTimestampBytes;
    if (pos_ == text_.size()) return Bad("bad_line", "only a time");
    if (text_[pos_] != ' ') return Bad("bad_timestamp", "no space after the time");
    out.time = TimePoint(std::chrono::seconds(seconds));
    ++pos_;
  }
  const std::size_t level_end = text_.find(' ', pos_);
  if (level_end == kNpos || !ParseLevel(text_.substr(pos_, level_end - pos_), out.level)) {
    return Bad("bad_level", "expected TRACE, DEBUG, INFO, WARN or ERROR");
  }
  pos_ = level_end + 1;

  // The description is free text: the type is the first group that ends
  // the line or is followed by a key.
  std::size_t open = pos_;
  std::size_t close = 0;
  for (;; ++open) {
    open = text_.find('(', open);
    if (open == kNpos) return Bad("no_type", "no (type) before the keys");
    if (text_[open - 1] == ' ' && TypeGroupAt(text_, open, close) &&
        (close + 1 == text_.size() ||
         (text_[close + 1] == ' ' && KeyLengthAt(text_, close + 2) != 0))) {
      break;
    }
  }
  pos_ = close + 1;
  if (pos_ < text_.size()) {
    ++pos_;
    MS_RETURN_IF_ERROR(ParseKeys(kNoName, 0, Context::kTop, true, out));
  }
  // The type is named last: a line garbled in its keys spends no name on it.
  const std::string_view type = text_.substr(open + 1, close - open - 1);
  out.name = names_.EventName(type);
  if (out.name == kNoName) {
    return NameRefusedStatus(names_.budget(), "event type \"" + QuoteForLog(type) + "\"");
  }
  return Status::Ok();
}

Status StalwartLineDecoder::ParseKeys(NameId parent, int depth, Context context, bool emit,
                                      Event& out) {
  for (;;) {
    const std::size_t n = KeyLengthAt(text_, pos_);
    if (n == 0) return Bad("bad_key", "expected `key = value`");
    const std::string_view leaf = text_.substr(pos_, n);
    pos_ += n + 3;
    // The span id is the event's, not a field (stalwart_fields.h); the log
    // does not print it, but a line that has it keeps it there.
    const bool span = parent == kNoName && leaf == "spanId";
    NameId key = kNoName;
    bool keep = false;
    if (emit && !span) {
      key = names_.Key(parent, leaf);
      if (key == kNoName) {
        return NameRefusedStatus(names_.budget(), "key \"" + QuoteForLog(leaf) + "\"");
      }
      // A repeated key (a span's key and the event's own) keeps its first
      // value, as the webhook's JSON does.
      keep = out.Find(key) == nullptr;
    }
    Value v;
    MS_RETURN_IF_ERROR(ParseValue(key, leaf, depth, context, keep, out, v));
    if (span && emit && out.span_id == 0 && v.type() == Value::Type::kUint) {
      out.span_id = v.as_uint();
    }
    if (context == Context::kTop && pos_ == text_.size()) return Status::Ok();
    if (context == Context::kNested && At(text_, pos_, " }")) {
      pos_ += 2;
      return Status::Ok();
    }
    if (!At(text_, pos_, ", ")) {
      return Bad("bad_value", context == Context::kNested ? "expected ', ' or ' }' after a value"
                                                          : "expected ', ' after a value");
    }
    pos_ += 2;
  }
}

Status StalwartLineDecoder::ParseValue(NameId key, std::string_view leaf, int depth,
                                       Context context, bool emit, Event& out, Value& v) {
  const std::size_t mark = scratch_.size();
  v = Value();
  if (pos_ >= text_.size()) return Bad("bad_value", "no value");
  if (text_[pos_] == '"') {
    std::string_view raw;
    bool escaped = false;
    MS_RETURN_IF_ERROR(ParseQuoted(context, raw, escaped));
    if (escaped) {
      Unescape(raw);
      raw = std::string_view(scratch_.data() + mark, scratch_.size() - mark);
    }
    v = Value::String(raw);
  } else if (text_[pos_] == '[') {
    if (depth + 1 > kStalwartMaxNesting) return Bad("too_deep", "arrays nested too deep");
    MS_RETURN_IF_ERROR(ParseArray(depth + 1, out));
    v = Value::String(std::string_view(scratch_.data() + mark, scratch_.size() - mark));
  } else {
    std::size_t open = kNpos;
    std::size_t close = 0;
    const std::size_t end = BareEnd(context, open, close);
    if (open != kNpos) {
      std::string_view type;
      return ParseNested(open, close, key, depth, emit, out, type);
    }
    const std::string_view token = text_.substr(pos_, end - pos_);
    pos_ = end;
    if (token.empty()) return Bad("bad_value", "empty value");
    if (token == "(null)") return Status::Ok();
    v = ScalarValue(token);
    if ((v.type() == Value::Type::kUint || v.type() == Value::Type::kInt) &&
        v.unit() == Unit::kNone) {
      v = v.WithUnit(StalwartKeyUnit(leaf));
    }
  }
  if (emit) {
    out.Add(key, v);
  } else {
    scratch_.resize(mark);
  }
  return Status::Ok();
}

Status StalwartLineDecoder::ParseArray(int depth, Event& out) {
  ++pos_;  // '['
  if (At(text_, pos_, "]")) {
    ++pos_;
    return Status::Ok();
  }
  for (;;) {
    MS_RETURN_IF_ERROR(ParseElement(depth, out));
    if (At(text_, pos_, "]")) {
      ++pos_;
      return Status::Ok();
    }
    if (!At(text_, pos_, ", ")) return Bad("bad_value", "expected ', ' or ']' in an array");
    pos_ += 2;
    Put("\t");
  }
}

// An element's text: a string unescaped, a duration's number, bytes'
// base64, a nested event's type; `(null)` none; others as written.
Status StalwartLineDecoder::ParseElement(int depth, Event& out) {
  if (pos_ >= text_.size()) return Bad("bad_value", "an array without its ']'");
  if (text_[pos_] == '"') {
    std::string_view raw;
    bool escaped = false;
    MS_RETURN_IF_ERROR(ParseQuoted(Context::kArray, raw, escaped));
    Unescape(raw);
    return Status::Ok();
  }
  if (text_[pos_] == '[') {
    if (depth + 1 > kStalwartMaxNesting) return Bad("too_deep", "arrays nested too deep");
    return ParseArray(depth + 1, out);
  }
  std::size_t open = kNpos;
  std::size_t close = 0;
  const std::size_t end = BareEnd(Context::kArray, open, close);
  if (open != kNpos) {
    std::string_view type;
    MS_RETURN_IF_ERROR(ParseNested(open, close, kNoName, depth, false, out, type));
    Put(StalwartTypeSpelling(type));
    return Status::Ok();
  }
  std::string_view token = text_.substr(pos_, end - pos_);
  pos_ = end;
  if (token.empty()) return Bad("bad_value", "empty array element");
  if (token == "(null)") return Status::Ok();
  const Value v = ScalarValue(token);
  if (v.unit() == Unit::kMilliseconds) {
    token.remove_suffix(2);
  } else if (v.type() == Value::Type::kString) {
    token = v.as_string();  // base64 without its prefix
  }
  Put(token);
  return Status::Ok();
}

Status StalwartLineDecoder::ParseNested(std::size_t open, std::size_t close, NameId key, int depth,
                                        bool emit, Event& out, std::string_view& type) {
  // What stands before the group is the nested event's description.
  type = text_.substr(open + 1, close - open - 1);
  pos_ = close + 1;
  if (emit) out.Add(key, Value::String(StalwartTypeSpelling(type)));
  // Stalwart writes braces only around keys; empty ones are taken too.
  if (At(text_, pos_, " {}")) {
    pos_ += 3;
    return Status::Ok();
  }
  if (At(text_, pos_, " { }")) {
    pos_ += 4;
    return Status::Ok();
  }
  if (!At(text_, pos_, " { ")) return Status::Ok();
  if (depth + 1 > kStalwartMaxNesting) return Bad("too_deep", "events nested too deep");
  pos_ += 3;
  return ParseKeys(key, depth + 1, Context::kNested, emit, out);
}

Status StalwartLineDecoder::ParseQuoted(Context context, std::string_view& raw, bool& escaped) {
  escaped = false;
  std::size_t i = pos_ + 1;
  for (;;) {
    i = text_.find_first_of("\"\\", i);
    if (i == kNpos) return Bad("bad_value", "a string without its closing quote");
    if (text_[i] == '\\') {
      escaped = true;
      i += 2;
      continue;
    }
    // Older releases (0.12) did not escape a quote inside a string: one
    // that no separator follows is part of it.
    if (SeparatorAt(i + 1, context)) break;
    ++i;
  }
  raw = text_.substr(pos_ + 1, i - pos_ - 1);
  pos_ = i + 1;
  return Status::Ok();
}

void StalwartLineDecoder::Unescape(std::string_view raw) {
  // Never longer than `raw`.
  MS_CHECK(scratch_.size() + raw.size() <= scratch_.capacity());
  constexpr std::string_view kHex = "0123456789abcdef";
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\' || i + 1 == raw.size()) {
      scratch_.push_back(c);
      continue;
    }
    const char e = raw[++i];
    switch (e) {
      case 'r':
        scratch_.push_back('\r');
        break;
      case 'n':
        scratch_.push_back('\n');
        break;
      case 't':
        scratch_.push_back('\t');
        break;
      case '\\':
      case '"':
        scratch_.push_back(e);
        break;
      case 'x': {
        // Control bytes, as \x1b.
        const std::size_t hi = i + 1 < raw.size() ? kHex.find(raw[i + 1]) : kNpos;
        const std::size_t lo = i + 2 < raw.size() ? kHex.find(raw[i + 2]) : kNpos;
        if (hi != kNpos && lo != kNpos) {
          scratch_.push_back(static_cast<char>(hi * 16 + lo));
          i += 2;
        } else {
          scratch_.push_back('\\');
          scratch_.push_back(e);
        }
        break;
      }
      default:  // not an escape Stalwart writes: kept as it stands
        scratch_.push_back('\\');
        scratch_.push_back(e);
        break;
    }
  }
}

std::size_t StalwartLineDecoder::BareEnd(Context context, std::size_t& open,
                                         std::size_t& close) const {
  open = kNpos;
  for (std::size_t i = pos_; i < text_.size(); ++i) {
    const char c = text_[i];
    if ((c == ',' || c == ' ' || c == ']') && SeparatorAt(i, context)) return i;
    if (c == '(' && (i == pos_ || text_[i - 1] == ' ') && TypeGroupAt(text_, i, close) &&
        (At(text_, close + 1, " { ") || At(text_, close + 1, " {}") ||
         SeparatorAt(close + 1, context))) {
      open = i;
      return close + 1;
    }
  }
  return text_.size();
}

bool StalwartLineDecoder::SeparatorAt(std::size_t i, Context context) const {
  if (i >= text_.size()) return true;
  switch (context) {
    case Context::kTop:
      return At(text_, i, ", ") && KeyLengthAt(text_, i + 2) != 0;
    case Context::kNested:
      return At(text_, i, " }") || (At(text_, i, ", ") && KeyLengthAt(text_, i + 2) != 0);
    case Context::kArray:
      return At(text_, i, ", ") || At(text_, i, "]");
  }
  return false;
}

void StalwartLineDecoder::Put(std::string_view s) {
  // Fields point into scratch_: it must not move (see Decode).
  MS_CHECK(scratch_.size() + s.size() <= scratch_.capacity());
  scratch_.insert(scratch_.end(), s.begin(), s.end());
}

Status StalwartLineDecoder::Bad(const char* reason, std::string_view what) const {
  return Rejected(reason, std::string(what) + " at byte " + std::to_string(pos_) + ": \"" +
                              QuoteForLog(line_) + "\"");
}

bool LooksLikeStalwartLogLine(std::string_view line) {
  std::string clean;
  if (StripAnsi(line, clean)) line = clean;
  std::int64_t seconds = 0;
  if (!HasTimestampShape(line) ||
      !ParseStalwartTimestamp(line.substr(0, kTimestampBytes), seconds) ||
      !At(line, kTimestampBytes, " ")) {
    return false;
  }
  line.remove_prefix(kTimestampBytes + 1);
  const std::size_t sp = line.find(' ');
  Level level;
  if (sp == kNpos || !ParseLevel(line.substr(0, sp), level)) return false;
  std::size_t close = 0;
  for (std::size_t open = line.find('(', sp); open != kNpos; open = line.find('(', open + 1)) {
    if (TypeGroupAt(line, open, close)) return true;
  }
  return false;
}

std::unique_ptr<LogLineFormat> MakeStalwartLineFormat() {
  return std::make_unique<StalwartLineFormat>();
}

}  // namespace mailscope::ingest
