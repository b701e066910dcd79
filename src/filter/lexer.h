// The tokens of the event filter language (2.3.19 event-filter-lexer.l).
// Internal to src/filter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailscope::filter::internal {

enum class TokenType : std::uint8_t {
  kEnd,
  kWord,    // bare word: [A-Za-z0-9:.*?_-]+ other than a keyword
  kString,  // "quoted", `text` decoded
  kAnd,     // keywords, any case
  kOr,
  kNot,
  kLParen,
  kRParen,
  kEq,
  kLt,
  kGt,
  kError,  // `text` says what is wrong
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::size_t pos = 0;      // byte offset of the first byte
  std::string_view source;  // the bytes of the token as written
  std::string text;         // word or decoded string; error message
};

// Thread-compatible; `input` must outlive the lexer and its tokens.
class Lexer {
 public:
  // `drop_unterminated`: a string still open at the end of the input is
  // dropped, the input ending before it, as the 2.3.19 lexer does (flex
  // discards the unfinished token at end of file); else it is an error.
  Lexer(std::string_view input, bool drop_unterminated)
      : input_(input), drop_unterminated_(drop_unterminated) {}
  Token Next();

 private:
  std::string_view input_;
  bool drop_unterminated_;
  std::size_t pos_ = 0;
};

// "'word'", "\"string\"", "end of filter": what a token looks like in an error.
std::string Describe(const Token& token);

}  // namespace mailscope::filter::internal
