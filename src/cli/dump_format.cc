#include "cli/dump_format.h"

#include <fmt/format.h>

#include <charconv>

#include "core/tab_escape.h"
#include "export/json_writer.h"

namespace mailscope::cli {

std::vector<std::string> SplitRow(std::string_view row) {
  std::string copy(row);
  std::vector<std::string_view> views;
  SplitTabEscaped(copy, views);
  return {views.begin(), views.end()};
}

double DovecotTimevalSeconds(std::string_view text) {
  std::size_t dot = text.find('.');
  long long sec = 0, usec = 0;
  std::from_chars(text.data(), text.data() + (dot == std::string_view::npos ? text.size() : dot),
                  sec);
  if (dot != std::string_view::npos)
    std::from_chars(text.data() + dot + 1, text.data() + text.size(), usec);
  return static_cast<double>(sec) + static_cast<double>(usec) / 1e6;
}

namespace {
bool IsTextColumn(std::string_view c) {
  return c == "cmd" || c == "args" || c == "session" || c == "user" || c == "ip" ||
         c == "service" || c == "domain";
}
bool IsNumber(std::string_view v) {
  if (v.empty()) return false;
  for (char ch : v)
    if (!(ch >= '0' && ch <= '9') && ch != '.') return false;
  return true;
}
}  // namespace

std::string RowsToJson(const std::vector<std::string>& rows) {
  std::string out = "[";
  if (rows.empty()) return "[]\n";
  std::vector<std::string> header = SplitRow(rows[0]);
  for (std::size_t r = 1; r < rows.size(); ++r) {
    std::vector<std::string> cols = SplitRow(rows[r]);
    out += r == 1 ? "\n  {" : ",\n  {";
    for (std::size_t i = 0; i < header.size() && i < cols.size(); ++i) {
      if (i > 0) out += ", ";
      exporter::AppendJsonString(out, header[i]);
      out += ": ";
      const std::string& h = header[i];
      const std::string& v = cols[i];
      if (IsTextColumn(h) || !IsNumber(v)) {
        exporter::AppendJsonString(out, v);
      } else if (h == "user_cpu" || h == "sys_cpu" || h == "clock_time") {
        out += fmt::format("{:.6f}", DovecotTimevalSeconds(v));
      } else {
        out += v;
      }
    }
    out += '}';
  }
  out += "\n]\n";
  return out;
}

}  // namespace mailscope::cli
