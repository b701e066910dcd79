#include "ingest/exim_event.h"

#include <string.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>

#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

constexpr std::string_view kVerb = "event";
constexpr std::size_t kMaxKeyBytes = 64;
// The fields decoded from $event_defer_errno.
constexpr std::string_view kSmtpCodeKey = "smtp_code";
constexpr std::string_view kLookupKey = "defer_lookup";
constexpr std::string_view kErrnoNameKey = "defer_errno_name";
// How long a message has been in Exim's hands at a msg:* event: the event's
// time less $received_time (Exim's log shows it as QT=).
constexpr std::string_view kQueueTimeKey = "queue_time";

// Exim's own negative errno values (macros.h). -1..-50 have the same meaning
// in 4.96 and later releases; below that 4.96 differs from its successors.
constexpr std::array<std::string_view, 50> kStableErrnoNames = {
    "ERRNO_UNKNOWNERROR",  "ERRNO_USERSLASH",       "ERRNO_EXISTRACE",      "ERRNO_NOTREGULAR",
    "ERRNO_NOTDIRECTORY",  "ERRNO_BADUGID",         "ERRNO_BADMODE",        "ERRNO_INODECHANGED",
    "ERRNO_LOCKFAILED",    "ERRNO_BADADDRESS2",     "ERRNO_FORBIDPIPE",     "ERRNO_FORBIDFILE",
    "ERRNO_FORBIDREPLY",   "ERRNO_MISSINGPIPE",     "ERRNO_MISSINGFILE",    "ERRNO_MISSINGREPLY",
    "ERRNO_BADREDIRECT",   "ERRNO_SMTPCLOSED",      "ERRNO_SMTPFORMAT",     "ERRNO_SPOOLFORMAT",
    "ERRNO_NOTABSOLUTE",   "ERRNO_EXIMQUOTA",       "ERRNO_HELD",           "ERRNO_FILTER_FAIL",
    "ERRNO_CHHEADER_FAIL", "ERRNO_WRITEINCOMPLETE", "ERRNO_EXPANDFAIL",     "ERRNO_GIDFAIL",
    "ERRNO_UIDFAIL",       "ERRNO_BADTRANSPORT",    "ERRNO_MBXLENGTH",      "ERRNO_UNKNOWNHOST",
    "ERRNO_FORMATUNKNOWN", "ERRNO_BADCREATE",       "ERRNO_LISTDEFER",      "ERRNO_DNSDEFER",
    "ERRNO_TLSFAILURE",    "ERRNO_TLSREQUIRED",     "ERRNO_CHOWNFAIL",      "ERRNO_PIPEFAIL",
    "ERRNO_CALLOUTDEFER",  "ERRNO_AUTHFAIL",        "ERRNO_CONNECTTIMEOUT", "ERRNO_RCPT4XX",
    "ERRNO_MAIL4XX",       "ERRNO_DATA4XX",         "ERRNO_PROXYFAIL",      "ERRNO_AUTHPROB",
    "ERRNO_UTF8_FWD",      "ERRNO_HOST_IS_LOCAL",
};
// -51..-58 in Exim 4.96.
constexpr std::array<std::string_view, 8> kErrnoNames496 = {
    "ERRNO_TAINT",      "ERRNO_RRETRY",       "ERRNO_LRETRY", "ERRNO_HRETRY",
    "ERRNO_LOCAL_ONLY", "ERRNO_QUEUE_DOMAIN", "ERRNO_TRETRY", "ERRNO_EVENT",
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsKeyChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool IsEventNameChar(char c) { return IsKeyChar(c) || c == ':' || c == '-'; }

// Keys whose values are numbers; others are strings. A value of one of
// these that is not a decimal number is an error.
struct NumericKey {
  std::string_view key;
  Unit unit;
};
constexpr NumericKey kNumericKeys[] = {
    {"event_defer_errno", Unit::kNone},
    {"host_port", Unit::kNone},
    {"sending_port", Unit::kNone},
    {"received_port", Unit::kNone},
    {"sender_host_port", Unit::kNone},
    {"message_size", Unit::kBytes},
    {"tls_out_bits", Unit::kNone},
    {"tls_in_bits", Unit::kNone},
    {"pid", Unit::kNone},
    {"recipients_count", Unit::kNone},
    {"received_time", Unit::kNone},
};

const NumericKey* FindNumeric(std::string_view key) {
  for (const NumericKey& k : kNumericKeys)
    if (k.key == key) return &k;
  return nullptr;
}

Status NameRefused(const NameBudget& budget, std::string_view what, std::string_view name) {
  return NameRefusedStatus(budget, std::string(what) + " \"" + QuoteForLog(name) + "\"");
}

Status Malformed(std::size_t offset, std::string message) {
  return Rejected("malformed_request", "byte " + std::to_string(offset) + ": " + message);
}

}  // namespace

DeferErrno DecodeDeferErrno(std::string_view event_name, std::int64_t value,
                            std::string_view exim_version) {
  DeferErrno d;
  if (!EndsWith(event_name, ":defer") || value == 0) return d;
  if (event_name.starts_with("msg:rcpt:")) {
    const std::int64_t low = value & 0xff;
    const std::int64_t digits = value >> 8;
    if (value > 0 && (low == 'A' || low == 'M') && digits < 100) {
      d.lookup = low == 'A' ? "A" : "MX";
      d.smtp_code = 400 + static_cast<int>(digits);
    }
    return d;
  }
  if (value > 0) {
    if (value <= 4095) {
      if (const char* name = ::strerrorname_np(static_cast<int>(value))) d.name = name;
    }
    return d;
  }
  const std::int64_t code = -value;
  if (code <= static_cast<std::int64_t>(kStableErrnoNames.size())) {
    d.name = kStableErrnoNames[static_cast<std::size_t>(code - 1)];
  } else if ((exim_version == "4.96" || exim_version.starts_with("4.96.")) &&
             code <= 50 + static_cast<std::int64_t>(kErrnoNames496.size())) {
    d.name = kErrnoNames496[static_cast<std::size_t>(code - 51)];
  }
  return d;
}

EximEventDecoder::EximEventDecoder(EximDecoderOptions options)
    : budget_(NameInput::kExim, options.max_new_names) {}

std::optional<NameId> EximEventDecoder::Name(std::string_view text) {
  const NameId id = TryInternName(text, budget_);
  if (id == kNoName) return std::nullopt;
  return id;
}

Status EximEventDecoder::Decode(std::span<char> request, TimePoint now, Event& out) {
  out.Clear();
  out.source = Source::kExim;
  out.level = Level::kInfo;
  out.time = now;
  char* const begin = request.data();
  char* const end = begin + request.size();
  if (std::string_view(begin, request.size()).find('\0') != std::string_view::npos) {
    return Malformed(std::string_view(begin, request.size()).find('\0'),
                     "NUL byte (Exim's variables hold none)");
  }
  char* p = begin;
  auto offset = [&](const char* at) { return static_cast<std::size_t>(at - begin); };
  auto skip_spaces = [&] {
    while (p < end && *p == ' ') ++p;
  };
  skip_spaces();
  if (p == end) return Rejected("empty_line", "empty request");
  {
    char* verb = p;
    while (p < end && *p != ' ') ++p;
    if (std::string_view(verb, static_cast<std::size_t>(p - verb)) != kVerb) {
      return Rejected("unknown_command",
                      "request begins with \"" +
                          QuoteForLog(std::string_view(verb, static_cast<std::size_t>(p - verb))) +
                          "\", not \"event\"");
    }
  }
  std::string_view event_name;
  std::string_view exim_version;
  std::optional<std::int64_t> defer_errno;
  std::int64_t received_time = 0;
  std::array<std::string_view, kEximRequestMaxFields> keys{};
  std::size_t key_count = 0;
  for (;;) {
    skip_spaces();
    if (p == end) break;
    char* key_begin = p;
    while (p < end && IsKeyChar(*p)) ++p;
    const std::string_view key(key_begin, static_cast<std::size_t>(p - key_begin));
    if (key.empty() || p == end || *p != '=') {
      return Malformed(offset(p), key.empty() ? "expected KEY=VALUE"
                                              : "expected '=' after \"" + QuoteForLog(key) + "\"");
    }
    if (key.size() > kMaxKeyBytes) {
      return Malformed(offset(key_begin), "key of " + std::to_string(key.size()) + " bytes");
    }
    ++p;  // '='
    std::string_view value;
    if (p < end && *p == '"') {
      // ${quote:}: \" \\ \n \r; unescaped in place, the text only shrinks.
      char* w = p;
      char* const value_begin = p;
      ++p;
      bool closed = false;
      while (p < end) {
        char c = *p++;
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (p == end) break;
          const char e = *p++;
          switch (e) {
            case '\\':
            case '"':
              c = e;
              break;
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            default:
              return Malformed(offset(p - 2), std::string("unknown escape \\") + e);
          }
        }
        *w++ = c;
      }
      if (!closed) return Malformed(offset(value_begin), "quoted value without its closing quote");
      value = std::string_view(value_begin, static_cast<std::size_t>(w - value_begin));
      if (p < end && *p != ' ')
        return Malformed(offset(p), "expected a space after a quoted value");
    } else {
      char* value_begin = p;
      while (p < end && *p != ' ') ++p;
      value = std::string_view(value_begin, static_cast<std::size_t>(p - value_begin));
      if (value.find('"') != std::string_view::npos) {
        return Malformed(offset(value_begin), "quote inside an unquoted value");
      }
    }
    if (key == kSmtpCodeKey || key == kLookupKey || key == kErrnoNameKey || key == kQueueTimeKey) {
      return Malformed(offset(key_begin),
                       "\"" + std::string(key) + "\" is mailscope's, decoded, not sent");
    }
    for (std::size_t i = 0; i < key_count; ++i) {
      if (keys[i] == key) return Malformed(offset(key_begin), "\"" + std::string(key) + "\" twice");
    }
    if (key_count == keys.size()) {
      return Rejected("too_many_fields",
                      "more than " + std::to_string(kEximRequestMaxFields) + " fields");
    }
    keys[key_count++] = key;
    if (key == "event_name") {
      event_name = value;
      continue;
    }
    if (key == "exim_version") exim_version = value;
    if (value.empty()) continue;
    const std::optional<NameId> id = Name(key);
    if (!id) {
      return NameRefused(budget_, "field", key);
    }
    Value v;
    if (const NumericKey* numeric = FindNumeric(key)) {
      std::int64_t n = 0;
      if (!ParseDecimal(value, n)) {
        return Rejected("invalid_number", "\"" + std::string(key) + "\" is not a number: \"" +
                                              QuoteForLog(value) + "\"");
      }
      v.set_int(n, numeric->unit);
    } else {
      v.set_string(value);
    }
    out.Add(*id, v);
    if (key == "event_defer_errno") defer_errno = v.as_int();
    if (key == "received_time") received_time = v.as_int();
  }
  if (event_name.empty()) return Rejected("no_event_name", "no event_name in the request");
  if (event_name.size() > kMaxKeyBytes ||
      !std::all_of(event_name.begin(), event_name.end(), IsEventNameChar)) {
    return Rejected("invalid_event_name",
                    "event_name \"" + QuoteForLog(event_name) + "\" is not an Exim event name");
  }
  const std::optional<NameId> name = Name(event_name);
  if (!name) {
    return NameRefused(budget_, "event name", event_name);
  }
  out.name = *name;
  if (defer_errno) {
    const DeferErrno d = DecodeDeferErrno(event_name, *defer_errno, exim_version);
    static const NameId kLookup = InternName(kLookupKey);
    static const NameId kSmtpCode = InternName(kSmtpCodeKey);
    static const NameId kErrnoName = InternName(kErrnoNameKey);
    if (!d.lookup.empty()) out.Add(kLookup, Value::String(d.lookup));
    if (d.smtp_code != 0) out.Add(kSmtpCode, Value::Int(d.smtp_code));
    if (!d.name.empty()) out.Add(kErrnoName, Value::String(d.name));
  }
  if (received_time > 0 && event_name.starts_with("msg:")) {
    static const NameId kQueueTime = InternName(kQueueTimeKey);
    const std::int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    out.Add(kQueueTime,
            Value::Int(std::max<std::int64_t>(0, now_s - received_time)).WithUnit(Unit::kSeconds));
  }
  if (out.fields.truncated()) {
    return Rejected("too_many_fields", "more than " + std::to_string(FieldList::kCapacity) +
                                           " fields with the decoded ones");
  }
  return Status::Ok();
}

}  // namespace mailscope::ingest
