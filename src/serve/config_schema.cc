#include "serve/config_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>

// Header-only, without exceptions: errors come back as values, and the
// packaged library (built with exceptions) is not needed.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
// toml++ 3.3 asserts on input it then rejects properly (a table header such
// as "[= 1"): its assertions are turned off so bad configs give errors.
#define TOML_ASSERT(expr) static_assert(true)
#include <toml++/toml.h>

#include "catalog/catalog.h"

namespace mailscope::serve {
namespace {

const toml::node* Node(const void* p) { return static_cast<const toml::node*>(p); }

std::string Where(std::string_view file, const toml::node& n) {
  return fmt::format("{}:{}", file, n.source().begin.line);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "16 M" / "30secs" into number and unit.
bool SplitNumberUnit(std::string_view text, std::uint64_t& number, std::string_view& unit) {
  text = Trim(text);
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || ptr == text.data()) return false;
  unit = Trim(std::string_view(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr)));
  return true;
}

std::string Lower(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool MulOk(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate closest to `word`, if close enough to be a likely typo.
std::string Closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = SIZE_MAX;
  for (const std::string& c : candidates) {
    std::size_t d = EditDistance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best_d <= std::max<std::size_t>(3, word.size() / 3) ? best : std::string();
}

// Decodes the UTF-8 character at text[i] as toml++ does, strictly: no
// overlong forms, no surrogates, nothing past U+10FFFF.
bool DecodeUtf8(std::string_view text, std::size_t i, char32_t& cp, std::size_t& len) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  char32_t min = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (text.size() - i < len) return false;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xc0) != 0x80) return false;
    cp = (cp << 6) | (b & 0x3f);
  }
  return cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
}

// A basic string's escape for `cp`.
void AppendEscape(std::string& out, char32_t cp) {
  if (cp <= 0xffff) {
    fmt::format_to(std::back_inserter(out), "\\u{:04X}", static_cast<std::uint32_t>(cp));
  } else {
    fmt::format_to(std::back_inserter(out), "\\U{:08X}", static_cast<std::uint32_t>(cp));
  }
}

// Rejects what TOML forbids anyway and what toml++ 3.3 mishandles. toml++ 3.3
// tells whether a non-ASCII character is whitespace by reaching an
// "unreachable" point for most of U+00A1..U+FEFE. It asks wherever whitespace
// may appear: between tokens; all along a number or date, which it reads up
// to a blank, ',', ']', '}' or '#', quotes included; after a backslash in a
// basic string; and, in a multi-line basic string, on the first character
// after a line-ending backslash and the blanks after it. It never asks about
// the rest of a string or a comment. So this lexes just enough TOML to find
// strings, comments and bare values (values other than strings, arrays and
// inline tables, each read as toml++ reads a number), and rejects
//  - control characters other than TAB, CR and LF, anywhere;
//  - non-ASCII bytes outside strings and comments;
//  - a non-ASCII byte after a backslash, or after a backslash and blanks on
//    the same line (invalid escapes);
//  - a non-ASCII byte first after a line-ending backslash, its line break and
//    blanks: valid TOML, but toml++ would classify it (and silently drop
//    U+00A0 or U+3000 there); a \uXXXX escape reads the same.
// On invalid TOML the two lexers may part ways; this one then errs towards
// bare values, where a quote opens no string. toml++ decodes UTF-8 strictly
// (no overlong forms), so a byte below 0x80 is always the ASCII character it
// reads, and lexing bytes follows its lexing.
//
// Lexing may still part ways on inputs no one has thought of (the config
// fuzzer found two), so toml++ is not trusted with a single non-ASCII byte:
// `out` gets the text with every non-ASCII character of a basic string
// written as a \uXXXX or \UXXXXXXXX escape, a literal string that holds one
// rewritten as the basic string of the same value, and the non-ASCII bytes of
// comments left out. Lines stay where they were, so toml++'s line numbers hold.
std::optional<std::string> PrecheckToml(std::string_view text, std::string_view name,
                                        std::string& out) {
  enum class In { kCode, kBareValue, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  In in = In::kCode;
  std::string nest;             // the arrays ('[') and inline tables ('{') open
  bool value_next = false;      // what starts here is a value, not a key
  std::size_t bare_start = 0;   // where the bare value began
  std::size_t bare_take = 0;    // a byte of it even if a blank, ',', ']', '}' or '#'
  bool escaped = false;         // the previous byte was a backslash in a basic string
  bool line_ending = false;     // after a line-ending backslash in a multi-line basic string
  bool line_ending_nl = false;  // ... and past its line break
  int line = 1;
  auto fail = [&](std::string_view problem) {
    return fmt::format("{}:{}: {}", name, line, problem);
  };
  auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
  auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  // The run of `q` starting at i, counted up to 5 as toml++ does: in a
  // multi-line string 3 to 5 end it, the 1 or 2 beyond the three belonging to it.
  auto run = [&](std::size_t i, char q) {
    std::size_t n = 0;
    while (n < 5 && i + n < text.size() && text[i + n] == q) ++n;
    return n;
  };
  out.clear();
  out.reserve(text.size());
  std::size_t copied = 0;  // text[copied, i) is still to be appended to `out` as it is
  // Appends the character at i, non-ASCII, as an escape of a basic string and
  // moves i to its last byte. False when it is not UTF-8.
  auto escape_at = [&](std::size_t& i) {
    char32_t cp = 0;
    std::size_t len = 0;
    if (!DecodeUtf8(text, i, cp, len)) return false;
    out.append(text.substr(copied, i - copied));
    AppendEscape(out, cp);
    i += len - 1;
    copied = i + 1;
    return true;
  };
  // A literal string being rewritten as a basic string.
  bool converting = false;
  // Whether the literal string opening at i holds a non-ASCII byte, up to
  // where this lexer ends it.
  auto LiteralHoldsNonAscii = [&](std::size_t i, bool multi) {
    for (std::size_t j = i + (multi ? 3 : 1); j < text.size(); ++j) {
      if (static_cast<unsigned char>(text[j]) >= 0x80) return true;
      if (!multi && (text[j] == '\'' || text[j] == '\n')) return false;
      if (multi && text[j] == '\'') {
        const std::size_t n = run(j, '\'');
        if (n >= 3) return false;
        j += n - 1;
      }
    }
    return false;
  };
  // Appends the literal-string byte at i as a basic string holds it; a
  // non-ASCII character whole. False when it is not UTF-8.
  auto ConvertLiteralByte = [&](std::size_t& i) {
    const char b = text[i];
    if (static_cast<unsigned char>(b) >= 0x80) {
      copied = i;
      return escape_at(i);
    }
    if (b == '\\' || b == '"') out += '\\';
    out += b;
    return true;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) {
      return fail(fmt::format("control character 0x{:02x} is not allowed", c));
    }
    const bool ascii = c < 0x80;
    if (ch == '\n') ++line;
    switch (in) {
      case In::kBareValue:
        if (!ascii) return fail("non-ASCII character outside a string or comment");
        if (i == bare_take) break;
        // After a date, a space and a digit ("1979-05-27 07:32:00"), toml++
        // takes the next character whatever it is, then reads on as before.
        if (ch == ' ' && i + 1 < text.size() && digit(text[i + 1]) &&
            text.substr(bare_start, i - bare_start).find_first_not_of("0123456789-_") ==
                std::string_view::npos) {
          bare_take = i + 2;
          break;
        }
        if (!(blank(ch) || ch == ',' || ch == ']' || ch == '}' || ch == '#')) break;
        in = In::kCode;
        [[fallthrough]];
      case In::kCode:
        if (!ascii) return fail("non-ASCII character outside a string or comment");
        switch (ch) {
          case '#':
            in = In::kComment;
            break;
          case '"':
          case '\'': {
            const bool multi = run(i, ch) >= 3;
            if (ch == '\'' && LiteralHoldsNonAscii(i, multi)) {
              // Rewritten as a basic string, byte by byte below.
              out.append(text.substr(copied, i - copied));
              out += multi ? "\"\"\"" : "\"";
              copied = i + (multi ? 3 : 1);
              converting = true;
            }
            if (multi) i += 2;
            in = ch == '"' ? (multi ? In::kMultiBasic : In::kBasic)
                           : (multi ? In::kMultiLiteral : In::kLiteral);
            break;
          }
          case '=':
            value_next = true;
            break;
          case '[':  // else a table header
            if (value_next) nest += '[';
            break;
          case '{':
            if (value_next) nest += '{';
            value_next = false;
            break;
          case ',':
            if (!nest.empty()) value_next = nest.back() == '[';
            break;
          case ']':
          case '}':
            if (!nest.empty() && nest.back() == (ch == ']' ? '[' : '{')) {
              nest.pop_back();
              value_next = false;
            }
            break;
          case '\n':
            if (nest.empty()) value_next = false;
            break;
          case ' ':
          case '\t':
          case '\r':
            break;
          default:
            if (value_next) {
              in = In::kBareValue;
              bare_start = i;
              bare_take = std::string_view::npos;
            }
            break;
        }
        break;
      case In::kComment:
        if (!ascii) {  // left out
          out.append(text.substr(copied, i - copied));
          copied = i + 1;
        }
        if (ch == '\n') {
          in = In::kCode;
          if (nest.empty()) value_next = false;
        }
        break;
      case In::kBasic:
      case In::kLiteral:
        if (ch == '\n') {  // toml++ rejects it; go on as if it ended the string
          escaped = false;
          converting = false;  // left unterminated, as it was
          in = In::kCode;
          if (nest.empty()) value_next = false;
          break;
        }
        if (converting) {
          if (ch == '\'') {
            out += '"';
            converting = false;
            in = In::kCode;
          } else if (!ConvertLiteralByte(i)) {
            return fail("invalid UTF-8");
          }
          copied = i + 1;
          break;
        }
        if (escaped) {
          if (!ascii) return fail("invalid escape: a backslash before a non-ASCII character");
          escaped = false;
        } else if (ch == '\\' && in == In::kBasic) {
          escaped = true;
        } else if (ch == (in == In::kBasic ? '"' : '\'')) {
          in = In::kCode;
        } else if (!ascii && !escape_at(i)) {
          return fail("invalid UTF-8");
        }
        break;
      case In::kMultiBasic:
        if (line_ending) {
          if (blank(ch)) {
            line_ending_nl = line_ending_nl || ch == '\n';
            break;
          }
          if (!ascii && !line_ending_nl) {
            return fail("invalid escape: a backslash before blanks and a non-ASCII character");
          }
          if (!ascii) {
            return fail(
                "non-ASCII character first after a line-ending backslash is not supported; "
                "write it as \\uXXXX");
          }
          line_ending = false;
        }
        if (escaped) {
          if (!ascii) return fail("invalid escape: a backslash before a non-ASCII character");
          escaped = false;
          if (blank(ch)) {
            line_ending = true;
            line_ending_nl = ch == '\n';
          }
        } else if (ch == '\\') {
          escaped = true;
        } else if (ch == '"') {
          const std::size_t n = run(i, '"');
          i += n - 1;
          if (n >= 3) in = In::kCode;
        } else if (!ascii && !escape_at(i)) {
          return fail("invalid UTF-8");
        }
        break;
      case In::kMultiLiteral:
        if (ch == '\'') {
          const std::size_t n = run(i, '\'');
          if (converting) {
            // The quotes beyond three belong to the content.
            out.append(n >= 3 ? n - 3 : n, '\'');
            if (n >= 3) out += "\"\"\"";
            copied = i + n;
            if (n >= 3) converting = false;
          }
          i += n - 1;
          if (n >= 3) in = In::kCode;
        } else if (converting) {
          if (!ConvertLiteralByte(i)) return fail("invalid UTF-8");
          copied = i + 1;
        }
        break;
    }
  }
  out.append(text.substr(copied));
  // What the lexing above makes sure of, checked: toml++ gets ASCII only.
  if (std::any_of(out.begin(), out.end(), [](char b) { return b & 0x80; })) {
    return fmt::format("{}: a non-ASCII character this reader cannot place", name);
  }
  return std::nullopt;
}

}  // namespace

// Walks the TOML tree along the block kinds. A table key is, in this order:
// a block kind's path, a prefix of one (recursed into), or unknown.
struct SchemaWalker {
  const std::vector<ErasedKind>& kinds;
  std::string_view file;
  void* root;
  std::vector<std::string> problems;

  ConfigValue Value(const toml::node& n, std::string key, std::string_view name) {
    ConfigValue v;
    v.node_ = &n;
    v.key_ = std::move(key);
    v.name_ = name;
    v.where_ = Where(file, n);
    v.problems_ = &problems;
    return v;
  }

  void Fail(const toml::node& n, std::string_view key, std::string_view problem) {
    problems.push_back(fmt::format("{}: {}: {}", Where(file, n), key, problem));
  }

  const ErasedKind* KindAt(std::string_view path) const {
    for (const ErasedKind& k : kinds)
      if (k.path == path) return &k;
    return nullptr;
  }

  bool IsPrefixOfKind(std::string_view path) const {
    for (const ErasedKind& k : kinds)
      if (k.path.size() > path.size() && k.path.starts_with(path) && k.path[path.size()] == '.')
        return true;
    return false;
  }

  static std::string Header(const ErasedKind& k) {
    switch (k.shape) {
      case BlockShape::kNamedTables:
        return "[" + k.path + ".NAME]";
      case BlockShape::kArrayOfTables:
        return "[[" + k.path + "]]";
      case BlockShape::kTable:
        break;
    }
    return "[" + k.path + "]";
  }

  void Walk(const toml::table& table, const std::string& prefix) {
    for (const auto& [k, node] : table) {
      std::string path =
          prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const ErasedKind* kind = KindAt(path)) {
        WalkKind(*kind, node, path);
      } else if (IsPrefixOfKind(path)) {
        if (const toml::table* t = node.as_table()) {
          Walk(*t, path);
        } else {
          Fail(node, path, fmt::format("expected a table such as [{}.NAME]", path));
        }
      } else {
        Unknown(node, path, prefix);
      }
    }
  }

  void WalkKind(const ErasedKind& kind, const toml::node& node, const std::string& path) {
    switch (kind.shape) {
      case BlockShape::kTable:
        if (const toml::table* t = node.as_table()) {
          Block(kind, *t, path, BlockStart{{}, 0, Where(file, node)});
        } else {
          Fail(node, path, fmt::format("expected a table [{}]", path));
        }
        return;
      case BlockShape::kArrayOfTables: {
        const toml::array* arr = node.as_array();
        if (arr == nullptr || !arr->is_array_of_tables()) {
          Fail(node, path, fmt::format("expected an array of tables [[{}]]", path));
          return;
        }
        for (std::size_t i = 0; i < arr->size(); ++i) {
          const toml::node& item = *arr->get(i);
          Block(kind, *item.as_table(), fmt::format("{}[{}]", path, i),
                BlockStart{{}, i, Where(file, item)});
        }
        return;
      }
      case BlockShape::kNamedTables:
        break;
    }
    const toml::table* named = node.as_table();
    if (named == nullptr) {
      Fail(node, path, fmt::format("expected a table such as [{}.NAME]", path));
      return;
    }
    for (const auto& [name, body] : *named) {
      std::string base = path + "." + std::string(name.str());
      if (!kind.names.empty() &&
          std::find(kind.names.begin(), kind.names.end(), name.str()) == kind.names.end()) {
        std::string hint = Closest(name.str(), kind.names);
        Fail(body, base,
             fmt::format("unknown {}; {}he {}s are {}", kind.noun,
                         hint.empty() ? "t" : "did you mean [" + path + "." + hint + "]? T",
                         kind.noun, fmt::join(kind.names, ", ")));
        continue;
      }
      if (const toml::table* t = body.as_table()) {
        Block(kind, *t, base, BlockStart{name.str(), 0, Where(file, body)});
      } else {
        Fail(body, base, fmt::format("expected a table [{}]", base));
      }
    }
  }

  void Block(const ErasedKind& kind, const toml::table& table, const std::string& base,
             const BlockStart& start) {
    void* block = kind.open(root, start);
    for (const auto& [k, node] : table) {
      std::string key = base + "." + std::string(k.str());
      std::size_t i = 0;
      while (i < kind.docs.size() && LeafOf(kind.docs[i].key) != k.str()) ++i;
      const std::string_view leaf = k.str();  // a structured binding clang 14 cannot capture
      auto replaced = std::find_if(kind.replaced.begin(), kind.replaced.end(),
                                   [leaf](const auto& r) { return r.first == leaf; });
      if (i == kind.docs.size() && replaced != kind.replaced.end()) {
        Fail(node, key, fmt::format("no longer a setting; replaced by {}", replaced->second));
        continue;
      }
      if (i == kind.docs.size()) {
        std::vector<std::string> names;
        for (const Setting& s : kind.docs) names.emplace_back(LeafOf(s.key));
        std::string hint = Closest(k.str(), names);
        std::string header =
            kind.shape == BlockShape::kArrayOfTables ? Header(kind) : "[" + base + "]";
        Fail(node, key,
             hint.empty()
                 ? fmt::format("unknown setting; {} takes {}", header, fmt::join(names, ", "))
                 : fmt::format("unknown setting; did you mean {}.{}?", base, hint));
        continue;
      }
      ConfigValue v = Value(node, key, k.str());
      Status st = kind.setters[i](block, v);
      if (!st.ok()) v.Report(st.message());
    }
  }

  // A key that is neither a block nor on the way to one.
  void Unknown(const toml::node& node, const std::string& path, const std::string& prefix) {
    if (node.is_table() || node.is_array_of_tables()) {
      std::vector<std::string> paths;
      for (const ErasedKind& k : kinds) paths.push_back(k.path);
      std::string hint = Closest(path, paths);
      const ErasedKind* near = hint.empty() ? nullptr : KindAt(hint);
      Fail(node, path,
           near == nullptr ? "unknown table"
                           : fmt::format("unknown table; did you mean {}?", Header(*near)));
      return;
    }
    // A key outside any table: suggest the key of that name in its table.
    if (prefix.empty()) {
      std::string hint;
      std::size_t best = std::max<std::size_t>(2, path.size() / 4) + 1;
      for (const ErasedKind& k : kinds) {
        for (const Setting& s : k.docs) {
          std::size_t d = EditDistance(path, LeafOf(s.key));
          if (d < best) {
            best = d;
            hint = s.key;
          }
        }
      }
      Fail(node, path,
           hint.empty() ? "unknown setting (settings live in tables such as [old_stats])"
                        : fmt::format("unknown setting; did you mean {}?", hint));
      return;
    }
    Fail(node, path, "unknown setting");
  }

  static std::string_view LeafOf(std::string_view key) {
    std::size_t dot = key.rfind('.');
    return dot == std::string_view::npos ? key : key.substr(dot + 1);
  }
};

ConfigValue::ConfigValue(std::string text, std::string key, std::string where,
                         std::vector<std::string>* problems)
    : text_(std::move(text)),
      key_(std::move(key)),
      name_(SchemaWalker::LeafOf(key_)),
      where_(std::move(where)),
      problems_(problems) {}

std::optional<std::string> ConfigValue::String() const {
  if (node_ == nullptr) return text_;
  if (auto s = Node(node_)->value<std::string>(); s && Node(node_)->is_string()) return *s;
  return std::nullopt;
}

std::optional<std::int64_t> ConfigValue::Integer() const {
  if (node_ == nullptr || !Node(node_)->is_integer()) return std::nullopt;
  return Node(node_)->value<std::int64_t>();
}

std::optional<bool> ConfigValue::Bool() const {
  if (node_ == nullptr || !Node(node_)->is_boolean()) return std::nullopt;
  return Node(node_)->value<bool>();
}

bool ConfigValue::IsArray() const { return node_ != nullptr && Node(node_)->is_array(); }
bool ConfigValue::IsTable() const { return node_ != nullptr && Node(node_)->is_table(); }

std::vector<ConfigValue> ConfigValue::Items() const {
  std::vector<ConfigValue> out;
  if (!IsArray()) return out;
  std::string file = where_.substr(0, where_.rfind(':'));
  for (const toml::node& item : *Node(node_)->as_array()) {
    ConfigValue v = *this;
    v.node_ = &item;
    v.where_ = Where(file, item);
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<ConfigValue> ConfigValue::Entries() const {
  std::vector<ConfigValue> out;
  if (!IsTable()) return out;
  std::string file = where_.substr(0, where_.rfind(':'));
  for (const auto& [k, node] : *Node(node_)->as_table()) {
    ConfigValue v = *this;
    v.node_ = &node;
    v.key_ = key_ + "." + std::string(k.str());
    v.name_ = k.str();
    v.where_ = Where(file, node);
    out.push_back(std::move(v));
  }
  return out;
}

void ConfigValue::Report(std::string_view problem) const {
  if (problems_ != nullptr) problems_->push_back(fmt::format("{}: {}: {}", where_, key_, problem));
}

std::vector<std::string> ParseWithKinds(const std::vector<ErasedKind>& kinds,
                                        std::string_view toml_text, std::string_view file,
                                        void* root) {
  std::string ascii;
  if (auto bad = PrecheckToml(toml_text, file, ascii)) return {*bad};
  toml::parse_result parsed = toml::parse(ascii, file);
  if (!parsed) {
    const auto& err = parsed.error();
    return {fmt::format("{}:{}: {}", file, err.source().begin.line, err.description())};
  }
  SchemaWalker walker{kinds, file, root, {}};
  walker.Walk(parsed.table(), "");
  // toml++ iterates tables by key; problems read best in file order.
  auto line_of = [prefix = file.size() + 1](const std::string& p) {
    int line = 0;
    std::from_chars(p.data() + prefix, p.data() + p.size(), line);
    return line;
  };
  std::stable_sort(
      walker.problems.begin(), walker.problems.end(),
      [&](const std::string& a, const std::string& b) { return line_of(a) < line_of(b); });
  return std::move(walker.problems);
}

Result<std::string> ReadString(const ConfigValue& v) {
  if (auto s = v.String()) return *s;
  return InvalidArgument("expected a string");
}

Result<std::string> ReadAddress(const ConfigValue& v) {
  auto s = v.String();
  if (!s) return InvalidArgument("expected a string \"ADDR:PORT\"");
  if (s->empty()) return *s;
  std::size_t colon = s->rfind(':');
  unsigned port = 0;
  std::string_view p =
      colon == std::string::npos ? std::string_view() : std::string_view(*s).substr(colon + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (colon == std::string::npos || p.empty() || ec != std::errc() || ptr != p.data() + p.size() ||
      port > 65535) {
    return InvalidArgument("expected \"ADDR:PORT\", got \"" + *s + "\"");
  }
  return *s;
}

Result<std::uint64_t> ReadSize(const ConfigValue& v) {
  if (auto i = v.Integer()) {
    if (*i <= 0) return InvalidArgument("must be positive");
    return static_cast<std::uint64_t>(*i);
  }
  auto s = v.String();
  auto size = s ? ParseSize(*s) : std::nullopt;
  if (!size || *size == 0) return InvalidArgument("expected a size such as \"16M\"");
  return *size;
}

Result<std::chrono::seconds> ReadDuration(const ConfigValue& v) {
  if (auto i = v.Integer()) {
    if (*i < 0) return InvalidArgument("must not be negative");
    return std::chrono::seconds(*i);
  }
  auto s = v.String();
  auto d = s ? ParseDuration(*s) : std::nullopt;
  if (!d) return InvalidArgument("expected a duration such as \"30 secs\" or \"12 hours\"");
  return *d;
}

Result<std::chrono::milliseconds> ReadMillis(const ConfigValue& v) {
  if (auto i = v.Integer()) {
    if (*i < 0) return InvalidArgument("must not be negative");
    return std::chrono::milliseconds(*i);
  }
  auto s = v.String();
  auto d = s ? ParseMillisDuration(*s) : std::nullopt;
  if (!d) return InvalidArgument("expected a duration such as \"500 msecs\" or \"2 secs\"");
  return *d;
}

Result<std::chrono::seconds> ReadPositiveDuration(const ConfigValue& v) {
  auto d = ReadDuration(v);
  if (d.ok() && d->count() <= 0) return InvalidArgument("must be at least 1 second");
  return d;
}

Result<mode_t> ReadMode(const ConfigValue& v) {
  std::uint64_t mode = 0;
  if (auto i = v.Integer()) {
    if (*i < 0) return InvalidArgument("mode out of range");
    mode = static_cast<std::uint64_t>(*i);  // written as 0o666 in TOML
  } else if (auto s = v.String()) {
    std::string_view t = *s;
    if (t.starts_with("0o")) t.remove_prefix(2);
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), mode, 8);
    if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) {
      return InvalidArgument("expected an octal mode such as \"0660\"");
    }
  } else {
    return InvalidArgument("expected an octal mode such as \"0660\"");
  }
  if (mode > 07777) return InvalidArgument("mode out of range");
  return static_cast<mode_t>(mode);
}

Result<std::uint64_t> ReadCount(const ConfigValue& v) {
  auto i = v.Integer();
  if (!i || *i <= 0) return InvalidArgument("expected a positive integer");
  return static_cast<std::uint64_t>(*i);
}

Result<bool> ReadBool(const ConfigValue& v) {
  auto b = v.Bool();
  if (!b) return InvalidArgument("expected true or false");
  return *b;
}

Result<Level> ReadLevel(const ConfigValue& v) {
  auto s = v.String();
  auto level = s ? catalog::ParseLevel(*s) : std::nullopt;
  if (!level) return InvalidArgument("expected one of trace, debug, info, warn, error");
  return *level;
}

Result<std::vector<std::string>> ReadPaths(const ConfigValue& v) {
  if (auto s = v.String()) return std::vector<std::string>{*s};
  if (!v.IsArray()) return InvalidArgument("expected a path or an array of paths");
  std::vector<std::string> paths;
  for (const ConfigValue& item : v.Items()) {
    auto p = item.String();
    if (!p) return InvalidArgument("expected a path or an array of paths");
    paths.push_back(*p);
  }
  return paths;
}

Result<std::string> ReadWords(const ConfigValue& v) {
  if (auto s = v.String()) return *s;
  if (!v.IsArray()) return InvalidArgument("expected a string or an array of strings");
  std::string out;
  for (const ConfigValue& item : v.Items()) {
    auto s = item.String();
    if (!s) return InvalidArgument("expected a string or an array of strings");
    if (!out.empty()) out += ' ';
    out += *s;
  }
  return out;
}

std::optional<std::uint64_t> ParseSize(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, n, unit)) return std::nullopt;
  std::uint64_t mul = 1;
  std::string u = Lower(unit);
  if (u.empty() || u == "b")
    mul = 1;
  else if (u == "k" || u == "kb" || u == "kib")
    mul = 1ull << 10;
  else if (u == "m" || u == "mb" || u == "mib")
    mul = 1ull << 20;
  else if (u == "g" || u == "gb" || u == "gib")
    mul = 1ull << 30;
  else if (u == "t" || u == "tb" || u == "tib")
    mul = 1ull << 40;
  else
    return std::nullopt;
  std::uint64_t out = 0;
  if (!MulOk(n, mul, out)) return std::nullopt;
  return out;
}

std::optional<std::chrono::seconds> ParseDuration(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, n, unit)) return std::nullopt;
  std::string u = Lower(unit);
  std::uint64_t mul = 0;
  if (u.empty() || u == "s" || u == "sec" || u == "secs" || u == "second" || u == "seconds")
    mul = 1;
  else if (u == "m" || u == "min" || u == "mins" || u == "minute" || u == "minutes")
    mul = 60;
  else if (u == "h" || u == "hour" || u == "hours")
    mul = 3600;
  else if (u == "d" || u == "day" || u == "days")
    mul = 86400;
  else if (u == "w" || u == "week" || u == "weeks")
    mul = 7 * 86400;
  else
    return std::nullopt;
  std::uint64_t out = 0;
  if (!MulOk(n, mul, out) || out > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return std::chrono::seconds(static_cast<std::int64_t>(out));
}

std::optional<std::chrono::milliseconds> ParseMillisDuration(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, n, unit)) return std::nullopt;
  const std::string u = Lower(unit);
  if (u.empty() || u == "ms" || u == "msec" || u == "msecs" || u == "millisecond" ||
      u == "milliseconds") {
    if (n > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(n));
  }
  auto s = ParseDuration(text);
  std::uint64_t ms = 0;
  if (!s || !MulOk(static_cast<std::uint64_t>(s->count()), 1000, ms) ||
      ms > static_cast<std::uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

}  // namespace mailscope::serve
