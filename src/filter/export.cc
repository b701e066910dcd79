// Dovecot's event_filter_export() format: what the stats server sends to
// its clients in FILTER, so every byte matters (reference §3.4).
#include <fmt/format.h>

#include "filter/filter.h"
#include "filter/program.h"

namespace mailscope::filter {
namespace internal {
namespace {

std::string_view CmpText(Cmp cmp) {
  switch (cmp) {
    case Cmp::kEq:
      return "=";
    case Cmp::kGt:
      return ">";
    case Cmp::kLt:
      return "<";
    case Cmp::kGe:
      return ">=";
    case Cmp::kLe:
      return "<=";
  }
  return "=";
}

std::string_view LogTypeName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kFatal:
      return "fatal";
    case Level::kPanic:
      return "panic";
    case Level::kTrace:
      break;
  }
  return "debug";  // unreachable: the parser makes no other log type
}

}  // namespace

void Export(const Program& program, std::uint32_t node, std::string& out) {
  const Node& n = program.nodes[node];
  switch (n.kind) {
    case Kind::kAnd:
    case Kind::kOr: {
      // A chain is one node here but binary in Dovecot: ((a AND b) AND c).
      const std::string_view op = n.kind == Kind::kAnd ? " AND " : " OR ";
      out.append(n.children.size() - 1, '(');
      Export(program, n.children[0], out);
      for (std::size_t i = 1; i < n.children.size(); ++i) {
        out += op;
        Export(program, n.children[i], out);
        out += ')';
      }
      return;
    }
    case Kind::kNot:
      out += "(NOT ";
      Export(program, n.children[0], out);
      out += ')';
      return;
    case Kind::kEventName:
    case Kind::kEventWildcard:
      out += "event";
      out += CmpText(n.cmp);
      AppendDovecotQuoted(out, n.value);
      return;
    case Kind::kCategory:
      out += "category";
      out += CmpText(n.cmp);
      AppendDovecotQuoted(out, n.value);
      return;
    case Kind::kLogType:
      out += "category";
      out += CmpText(n.cmp);
      out += LogTypeName(n.level);
      return;
    case Kind::kSourceLocation:
      out += "source_location";
      out += CmpText(n.cmp);
      AppendDovecotQuoted(out, n.line == 0 ? n.value : fmt::format("{}:{}", n.value, n.line));
      return;
    case Kind::kField:
      AppendDovecotQuoted(out, n.key);
      out += CmpText(n.cmp);
      AppendDovecotQuoted(out, n.value);
      return;
  }
}

}  // namespace internal

std::string Filter::ExportDovecot() const {
  std::string out;
  if (program_ == nullptr) return out;
  for (const internal::Query& q : program_->queries) {
    if (!out.empty()) out += " OR ";
    out += '(';
    internal::Export(*program_, q.root, out);
    out += ')';
  }
  return out;
}

std::string Filter::ToString() const { return empty() ? "(empty filter)" : ExportDovecot(); }

void AppendDovecotQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace mailscope::filter
