#include "export/carbon.h"

#include <fmt/format.h>

namespace mailscope::exporter {

std::string RenderCarbon(const stats::OldGlobal& g, std::string_view name, std::int64_t ts) {
  std::string out;
  auto line = [&](std::string_view field, std::string_view value) {
    fmt::format_to(std::back_inserter(out), "dovecot.{}.global.{} {} {}\r\n", name, field, value,
                   ts);
  };
  line("logins", std::to_string(g.num_logins));
  line("cmds", std::to_string(g.num_cmds));
  line("connected_sessions", std::to_string(g.num_connected_sessions));
  line("last_reset", std::to_string(g.reset_timestamp));
  std::string value;
  for (std::size_t i = 0; i < catalog::kOldStatsFields.size(); ++i) {
    value.clear();
    g.stats.AppendColumn(value, i);
    line(catalog::kOldStatsFields[i].name, value);
  }
  return out;
}

}  // namespace mailscope::exporter
