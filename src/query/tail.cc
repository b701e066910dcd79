#include "query/tail.h"

#include <fmt/format.h>

#include <vector>

#include "core/tab_escape.h"

namespace mailscope::query {

std::string_view TailFormatName(TailFormat format) {
  switch (format) {
    case TailFormat::kText:
      return "text";
    case TailFormat::kJson:
      return "json";
    case TailFormat::kTabText:
      return "tab-text";
  }
  return "text";
}

Result<TailFormat> ParseTailFormat(std::string_view name) {
  if (name == "text") return TailFormat::kText;
  if (name == "json") return TailFormat::kJson;
  if (name == "tab-text") return TailFormat::kTabText;
  return InvalidArgument(fmt::format("unknown format '{}' (text, json, tab-text)", name));
}

Result<TailRequest> ParseTailRequest(std::span<char> line, NameBudget& names) {
  std::vector<std::string_view> args;
  SplitTabEscaped(line, args);
  if (args.empty() || args[0] != "TAIL") {
    return InvalidArgument("expected a TAIL request");
  }
  if (args.size() != 5) {
    return InvalidArgument(fmt::format("TAIL takes 4 arguments, got {}", args.size() - 1));
  }
  if (args[1] != "1") {
    return InvalidArgument(fmt::format("unsupported tail protocol version '{}'", args[1]));
  }
  TailRequest req;
  auto format = ParseTailFormat(args[2]);
  if (!format.ok()) return format.status();
  req.format = *format;
  if (args[3] == "mailscope") {
    req.dialect = filter::Dialect::kMailscope;
  } else if (args[3] == "dovecot") {
    req.dialect = filter::Dialect::kDovecot;
  } else {
    return InvalidArgument(
        fmt::format("unknown filter dialect '{}' (mailscope, dovecot)", args[3]));
  }
  req.filter_text = std::string(args[4]);
  auto parsed = filter::ParseClientFilter(req.filter_text, req.dialect, names);
  if (!parsed.ok()) return parsed.status();
  if (parsed->empty()) parsed = filter::Parse("event=*", filter::Dialect::kDovecot);
  req.filter = std::move(*parsed);
  return req;
}

std::string TailRequestLine(TailFormat format, filter::Dialect dialect,
                            std::string_view filter_text) {
  std::string line = "TAIL\t1\t";
  line += TailFormatName(format);
  line += dialect == filter::Dialect::kDovecot ? "\tdovecot\t" : "\tmailscope\t";
  AppendTabEscaped(line, filter_text);
  line += '\n';
  return line;
}

}  // namespace mailscope::query
