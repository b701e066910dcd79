#include "filter/lexer.h"

#include <fmt/format.h>

namespace mailscope::filter::internal {
namespace {

bool IsWordByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.' || c == '*' || c == '?' || c == '_' || c == '-';
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool EqualsIcase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string Printable(std::string_view s) {
  constexpr std::size_t kMax = 40;
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (s.size() > kMax) out += "...";
  return out;
}

}  // namespace

Token Lexer::Next() {
  while (pos_ < input_.size() && IsSpace(input_[pos_])) ++pos_;
  Token t;
  t.pos = pos_;
  if (pos_ == input_.size()) return t;
  const std::size_t start = pos_;
  const char c = input_[pos_];
  auto single = [&](TokenType type) {
    ++pos_;
    t.type = type;
    t.source = input_.substr(start, 1);
    return t;
  };
  switch (c) {
    case '(':
      return single(TokenType::kLParen);
    case ')':
      return single(TokenType::kRParen);
    case '=':
      return single(TokenType::kEq);
    case '<':
      return single(TokenType::kLt);
    case '>':
      return single(TokenType::kGt);
    default:
      break;
  }
  if (c == '"') {
    // 2.3.19 lexer: "\\" is '\', "\"" is '"', a backslash before any other
    // byte is kept with it. Its rule for that needs a byte flex's '.' matches,
    // which excludes '\n': a backslash before a newline is dropped there.
    ++pos_;
    while (pos_ < input_.size()) {
      const char b = input_[pos_];
      if (b == '"') {
        ++pos_;
        t.type = TokenType::kString;
        t.source = input_.substr(start, pos_ - start);
        return t;
      }
      if (b == '\0') break;  // Dovecot reads C strings: no NUL can reach it
      if (b == '\\' && pos_ + 1 < input_.size()) {
        const char n = input_[pos_ + 1];
        if (n == '\\' || n == '"') {
          t.text += n;
          pos_ += 2;
          continue;
        }
        if (n != '\n') t.text += '\\';
        ++pos_;
        continue;
      }
      if (b == '\\') {  // at the end of input
        ++pos_;
        continue;
      }
      t.text += b;
      ++pos_;
    }
    t.pos = pos_;
    if (pos_ == input_.size() && drop_unterminated_) {
      t.text.clear();
      return t;  // kEnd
    }
    t.type = TokenType::kError;
    if (pos_ < input_.size()) {
      t.source = input_.substr(pos_, 1);
      t.text = "unexpected character '\\x00'";
    } else {
      t.text = fmt::format("unexpected end of filter in the string opened at {}", start + 1);
    }
    return t;
  }
  if (IsWordByte(c)) {
    while (pos_ < input_.size() && IsWordByte(input_[pos_])) ++pos_;
    t.source = input_.substr(start, pos_ - start);
    if (EqualsIcase(t.source, "and")) {
      t.type = TokenType::kAnd;
    } else if (EqualsIcase(t.source, "or")) {
      t.type = TokenType::kOr;
    } else if (EqualsIcase(t.source, "not")) {
      t.type = TokenType::kNot;
    } else {
      t.type = TokenType::kWord;
      t.text = std::string(t.source);
    }
    return t;
  }
  t.type = TokenType::kError;
  t.source = input_.substr(start, 1);
  t.text = fmt::format("unexpected character '{}'", Printable(t.source));
  return t;
}

std::string Describe(const Token& token) {
  switch (token.type) {
    case TokenType::kEnd:
      return "end of filter";
    case TokenType::kString:
      return Printable(token.source);
    case TokenType::kError:
      return token.text;
    default:
      return fmt::format("'{}'", Printable(token.source));
  }
}

}  // namespace mailscope::filter::internal
