// Parse(): the grammar of 2.3.19 event-filter-parser.y, read without
// recursion so that no input can exhaust the stack:
//   filter := <empty> | expr
//   expr   := expr AND expr | expr OR expr | NOT expr | '(' expr ')' | key op value
//   key    := word | string
//   value  := word | string | AND | OR | NOT      (keywords become "and" "or" "not")
//   op     := '=' | '<' | '>' | '<' '=' | '>' '='
// AND and OR have one precedence and group to the left; NOT binds tighter.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "filter/filter.h"
#include "filter/lexer.h"
#include "filter/program.h"

namespace mailscope::filter {
namespace {

using internal::Cmp;
using internal::Kind;
using internal::Lexer;
using internal::Node;
using internal::Program;
using internal::Token;
using internal::TokenType;

constexpr std::string_view kExpectOperand = "expecting a key, NOT or '('";
constexpr std::string_view kExpectOperator = "expecting AND, OR or end of filter";
constexpr std::string_view kExpectOperatorInGroup = "expecting AND, OR or ')'";

// Dovecot's str_to_intmax(): an optional '-', then decimal digits only.
std::optional<std::int64_t> ParseDovecotInt(std::string_view s) {
  if (s.empty() || s[0] == '+') return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// str_to_uintmax(): decimal digits only.
std::optional<std::uint64_t> ParseDovecotUint(std::string_view s) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Level> LogTypeLevel(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, Level>, 6> kLogTypes = {{
      {"debug", Level::kDebug},
      {"info", Level::kInfo},
      {"warning", Level::kWarn},
      {"error", Level::kError},
      {"fatal", Level::kFatal},
      {"panic", Level::kPanic},
  }};
  for (const auto& [text, level] : kLogTypes)
    if (text == name) return level;
  return std::nullopt;
}

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
  std::string_view what;  // for "not a whole number of ..."
  mailscope::Unit base;   // what the number becomes
};
constexpr auto kBytes = mailscope::Unit::kBytes;
constexpr auto kUsecs = mailscope::Unit::kMicroseconds;
constexpr std::array<Unit, 14> kUnits = {{
    {"k", 1024, "bytes", kBytes},
    {"K", 1024, "bytes", kBytes},
    {"kB", 1024, "bytes", kBytes},
    {"KB", 1024, "bytes", kBytes},
    {"M", 1024 * 1024, "bytes", kBytes},
    {"MB", 1024 * 1024, "bytes", kBytes},
    {"G", 1024 * 1024 * 1024, "bytes", kBytes},
    {"GB", 1024 * 1024 * 1024, "bytes", kBytes},
    {"us", 1, "microseconds", kUsecs},
    {"ms", 1000, "microseconds", kUsecs},
    {"s", 1000 * 1000, "microseconds", kUsecs},
    {"min", 60ull * 1000 * 1000, "microseconds", kUsecs},
    {"h", 3600ull * 1000 * 1000, "microseconds", kUsecs},
    {"d", 86400ull * 1000 * 1000, "microseconds", kUsecs},
}};

// The value of `digits` (all decimal digits) times `factor`, if it fits.
std::optional<std::uint64_t> Scaled(std::string_view digits, std::uint64_t factor) {
  std::uint64_t v = 0;
  for (char c : digits) {
    if (__builtin_mul_overflow(v, std::uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<std::uint64_t>(c - '0'), &v))
      return std::nullopt;
  }
  if (__builtin_mul_overflow(v, factor, &v)) return std::nullopt;
  return v;
}

struct Frame {
  std::optional<std::uint32_t> left;  // the expression read so far at this level
  Kind op = Kind::kAnd;               // the operator before the operand being read
  std::size_t op_pos = 0;
  int nots = 0;  // NOTs before the operand being read
  std::size_t first_not_pos = 0;
};

class Parser {
 public:
  // `names`: the client's budget for new names; nullptr for trusted text.
  Parser(std::string_view text, Dialect dialect, NameBudget* names)
      : lexer_(text, dialect == Dialect::kDovecot), dialect_(dialect), names_(names) {}

  // The parsed program, nullptr for the empty filter.
  Result<std::shared_ptr<const Program>> Run() {
    std::vector<Frame> frames(1);
    bool want_operand = true;
    for (;;) {
      Token t = lexer_.Next();
      if (t.type == TokenType::kError) return SyntaxError(t.pos, t.text);
      Frame& f = frames.back();
      if (want_operand) {
        switch (t.type) {
          case TokenType::kNot:
            if (f.nots == 0) f.first_not_pos = t.pos;
            if (++f.nots >= kMaxDepth) return TooDeep(t.pos);
            continue;
          case TokenType::kLParen:
            frames.emplace_back();
            continue;
          case TokenType::kWord:
          case TokenType::kString: {
            auto leaf = ReadLeaf(std::move(t));
            if (!leaf.ok()) return leaf.status();
            MS_RETURN_IF_ERROR(AddOperand(frames.back(), *leaf));
            want_operand = false;
            continue;
          }
          case TokenType::kEnd:
            if (frames.size() == 1 && !f.left && f.nots == 0)
              return std::shared_ptr<const Program>();
            [[fallthrough]];
          default:
            return Unexpected(t, kExpectOperand);
        }
      }
      switch (t.type) {
        case TokenType::kAnd:
        case TokenType::kOr:
          f.op = t.type == TokenType::kAnd ? Kind::kAnd : Kind::kOr;
          f.op_pos = t.pos;
          want_operand = true;
          continue;
        case TokenType::kRParen:
          if (frames.size() > 1) {
            const std::uint32_t group = *f.left;
            frames.pop_back();
            MS_RETURN_IF_ERROR(AddOperand(frames.back(), group));
            continue;
          }
          return Unexpected(t, kExpectOperator);
        case TokenType::kEnd:
          if (frames.size() == 1) {
            MS_RETURN_IF_ERROR(InternNames());
            return Finish(*f.left);
          }
          return Unexpected(t, kExpectOperatorInGroup);
        default:
          return Unexpected(t, frames.size() == 1 ? kExpectOperator : kExpectOperatorInGroup);
      }
    }
  }

 private:
  Status SyntaxError(std::size_t pos, std::string_view what) const {
    return InvalidArgument(fmt::format("event filter: syntax error at {}, {}", pos + 1, what));
  }
  Status Unexpected(const Token& t, std::string_view expecting) const {
    return SyntaxError(t.pos, fmt::format("unexpected {}, {}", internal::Describe(t), expecting));
  }
  Status TooDeep(std::size_t pos) const {
    return InvalidArgument(
        fmt::format("event filter: nesting deeper than {} levels at {}", kMaxDepth, pos + 1));
  }

  std::uint32_t NewNode(Node node) {
    program_.nodes.push_back(std::move(node));
    return static_cast<std::uint32_t>(program_.nodes.size() - 1);
  }
  int Depth(std::uint32_t i) const { return program_.nodes[i].depth; }

  // Applies the frame's pending NOTs to `operand`, then joins it to the
  // expression on the left. A chain of one operator, (a AND b) AND c, becomes
  // one node: same meaning, same export, and no depth to grow.
  Status AddOperand(Frame& f, std::uint32_t operand) {
    if (Depth(operand) + f.nots > kMaxDepth) return TooDeep(f.first_not_pos);
    for (; f.nots > 0; --f.nots) {
      Node n;
      n.kind = Kind::kNot;
      n.depth = static_cast<std::uint16_t>(Depth(operand) + 1);
      n.children = {operand};
      operand = NewNode(std::move(n));
    }
    if (!f.left) {
      f.left = operand;
      return Status::Ok();
    }
    const bool extend = program_.nodes[*f.left].kind == f.op;
    const int depth = extend ? std::max(Depth(*f.left), Depth(operand) + 1)
                             : std::max(Depth(*f.left), Depth(operand)) + 1;
    if (depth > kMaxDepth) return TooDeep(f.op_pos);
    if (extend) {
      Node& left = program_.nodes[*f.left];
      left.children.push_back(operand);
      left.depth = static_cast<std::uint16_t>(depth);
      return Status::Ok();
    }
    Node n;
    n.kind = f.op;
    n.depth = static_cast<std::uint16_t>(depth);
    n.children = {*f.left, operand};
    f.left = NewNode(std::move(n));
    return Status::Ok();
  }

  static bool RequiresName(const Program& p, std::uint32_t i) {
    const Node& n = p.nodes[i];
    switch (n.kind) {
      case Kind::kAnd:
        for (std::uint32_t c : n.children)
          if (RequiresName(p, c)) return true;
        return false;
      case Kind::kOr:
        for (std::uint32_t c : n.children)
          if (!RequiresName(p, c)) return false;
        return true;
      case Kind::kNot:
        return RequiresName(p, n.children[0]);
      case Kind::kEventName:
      case Kind::kEventWildcard:
        return true;
      default:
        return false;
    }
  }

  std::shared_ptr<const Program> Finish(std::uint32_t root) {
    const bool requires_name = RequiresName(program_, root);
    program_.queries.push_back({root, requires_name});
    program_.requires_name = requires_name;
    return std::make_shared<const Program>(std::move(program_));
  }

  // key op value, with `key` already read.
  Result<std::uint32_t> ReadLeaf(Token key) {
    Token t = lexer_.Next();
    Cmp cmp = Cmp::kEq;
    switch (t.type) {
      case TokenType::kEq:
        t = lexer_.Next();
        break;
      case TokenType::kLt:
      case TokenType::kGt: {
        const bool lt = t.type == TokenType::kLt;
        t = lexer_.Next();
        if (t.type == TokenType::kEq) {
          cmp = lt ? Cmp::kLe : Cmp::kGe;
          t = lexer_.Next();
        } else {
          cmp = lt ? Cmp::kLt : Cmp::kGt;
        }
        break;
      }
      case TokenType::kError:
        return SyntaxError(t.pos, t.text);
      default:
        return Unexpected(t, "expecting '=', '<' or '>'");
    }
    std::string value;
    switch (t.type) {
      case TokenType::kWord:
      case TokenType::kString:
        value = std::move(t.text);
        break;
      case TokenType::kAnd:
        value = "and";
        break;
      case TokenType::kOr:
        value = "or";
        break;
      case TokenType::kNot:
        value = "not";
        break;
      case TokenType::kError:
        return SyntaxError(t.pos, t.text);
      default:
        return Unexpected(t, "expecting a value");
    }

    Node n;
    n.cmp = cmp;
    if (key.text == "event" || key.text == "category" || key.text == "source_location") {
      if (cmp != Cmp::kEq) {
        return InvalidArgument(
            fmt::format("event filter: Only fields support inequality comparisons, found '{}' "
                        "at {}",
                        key.text, key.pos + 1));
      }
      if (key.text == "event") {
        n.kind = IsLiteral(value) ? Kind::kEventName : Kind::kEventWildcard;
      } else if (key.text == "category") {
        if (auto level = LogTypeLevel(value)) {
          n.kind = Kind::kLogType;
          n.level = *level;
        } else {
          n.kind = Kind::kCategory;
        }
      } else {
        n.kind = Kind::kSourceLocation;
        // "file:line" splits at the last ':' when a line number follows it.
        if (auto colon = value.rfind(':'); colon != std::string::npos) {
          if (auto line = ParseDovecotUint(std::string_view(value).substr(colon + 1))) {
            n.line = *line;
            value.resize(colon);
          }
        }
      }
      n.value = std::move(value);
      const bool named = n.kind == Kind::kEventName || n.kind == Kind::kCategory;
      const std::uint32_t node = NewNode(std::move(n));
      if (named) named_.push_back({node, t.pos});
      return node;
    }

    n.kind = Kind::kField;
    n.key = std::move(key.text);
    if (n.key == "source") n.pipeline = internal::PipelineKey::kSource;
    if (n.key == "kind") n.pipeline = internal::PipelineKey::kKind;
    if (n.key == "outcome") n.pipeline = internal::PipelineKey::kOutcome;
    n.base_units = dialect_ == Dialect::kMailscope;
    if (dialect_ == Dialect::kMailscope && t.type == TokenType::kWord)
      MS_RETURN_IF_ERROR(ApplyUnit(value, t.pos, n.unit));
    n.literal = IsLiteral(value);
    if (auto v = ParseDovecotInt(value)) {
      // 2.3.19 marks "not a number" with INT_MIN, so it and anything below
      // it are not numbers.
      n.has_int = *v > std::numeric_limits<std::int32_t>::min();
      n.int_value = *v;
    }
    double d = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), d);
    if (ec == std::errc() && end == value.data() + value.size() && std::isfinite(d)) {
      n.has_double = true;
      n.double_value = d;
    }
    n.value = std::move(value);
    const std::uint32_t node = NewNode(std::move(n));
    named_.push_back({node, key.pos});
    return node;
  }

  static bool IsLiteral(std::string_view s) { return s.find_first_of("*?") == s.npos; }

  // The name a node of named_ tests: an event name, a category, a field key.
  std::string_view NameOf(std::uint32_t node) const {
    const Node& n = program_.nodes[node];
    return n.kind == Kind::kField ? std::string_view(n.key) : std::string_view(n.value);
  }

  // Interns the names of the whole filter once it has parsed, so that a
  // filter with an error adds none. A client's filter adds all of its new
  // names or none (TryInternNames): a refused filter leaves nothing behind.
  Status InternNames() {
    if (names_ == nullptr) {
      for (const Named& n : named_) program_.nodes[n.node].id = InternName(NameOf(n.node));
      return Status::Ok();
    }
    std::vector<std::string_view> names;
    names.reserve(named_.size());
    for (const Named& n : named_) names.push_back(NameOf(n.node));
    std::vector<NameId> ids(names.size());
    if (auto shortfall = TryInternNames(names, *names_, ids)) {
      const Named& first = named_[shortfall->first_past];
      return ResourceExhausted(fmt::format(
          "event filter: no room for its {} new names ({}); the first past the room: '{}' at {}",
          shortfall->new_names, DescribeNameRefusal(*names_, shortfall->reason), NameOf(first.node),
          first.pos + 1));
    }
    for (std::size_t i = 0; i < named_.size(); ++i) program_.nodes[named_[i].node].id = ids[i];
    return Status::Ok();
  }

  // kMailscope: "<digits>[.<digits>]<unit>", with an optional '-', becomes
  // the whole number it stands for, in `base`. Anything else stays as it is.
  Status ApplyUnit(std::string& value, std::size_t pos, mailscope::Unit& base) {
    std::string_view s = value;
    const bool negative = !s.empty() && s[0] == '-';
    if (negative) s.remove_prefix(1);
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    std::string_view whole = s.substr(0, i), fraction;
    if (whole.empty()) return Status::Ok();
    if (i < s.size() && s[i] == '.') {
      std::size_t j = i + 1;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
      fraction = s.substr(i + 1, j - i - 1);
      if (fraction.empty()) return Status::Ok();
      i = j;
    }
    const std::string_view suffix = s.substr(i);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits)
      if (u.suffix == suffix) unit = &u;
    if (unit == nullptr) return Status::Ok();

    auto invalid = [&](std::string_view why) {
      return InvalidArgument(
          fmt::format("event filter: invalid value at {}, '{}' {}", pos + 1, value, why));
    };
    // Up to six decimals keep fraction * factor within 64 bits.
    if (fraction.size() > 6) return invalid("has more than 6 decimals");
    auto total = Scaled(whole, unit->factor);
    auto part = Scaled(fraction, unit->factor);
    std::uint64_t scale = 1;
    for (std::size_t k = 0; k < fraction.size(); ++k) scale *= 10;
    if (!total || !part) return invalid("is too large");
    if (*part % scale != 0) return invalid(fmt::format("is not a whole number of {}", unit->what));
    std::uint64_t v = 0;
    if (__builtin_add_overflow(*total, *part / scale, &v) ||
        v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return invalid("is too large");
    const auto signed_v = static_cast<std::int64_t>(v);
    value = std::to_string(negative ? -signed_v : signed_v);
    base = unit->base;
    return Status::Ok();
  }

  // A node whose id is the name it tests, and where that name is.
  struct Named {
    std::uint32_t node;
    std::size_t pos;
  };

  Lexer lexer_;
  Dialect dialect_;
  NameBudget* names_;
  Program program_;
  std::vector<Named> named_;  // in text order
};

}  // namespace

Result<Filter> Parse(std::string_view text, Dialect dialect) {
  return internal::ParseFilter(text, dialect, nullptr);
}

Result<Filter> ParseClientFilter(std::string_view text, Dialect dialect, NameBudget& names) {
  if (text.size() > kMaxClientFilterBytes) {
    return ResourceExhausted(
        fmt::format("event filter: {} bytes long, more than the {} a filter "
                    "from a client may have",
                    text.size(), kMaxClientFilterBytes));
  }
  return internal::ParseFilter(text, dialect, &names);
}

Result<Filter> internal::ParseFilter(std::string_view text, Dialect dialect, NameBudget* names) {
  auto program = Parser(text, dialect, names).Run();
  if (!program.ok()) return program.status();
  if (*program == nullptr) return Filter();
  return Filter(std::move(*program));
}

}  // namespace mailscope::filter
