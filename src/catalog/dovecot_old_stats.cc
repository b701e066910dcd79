#include "catalog/dovecot_old_stats.h"

#include <vector>

namespace mailscope::catalog {

const std::array<NameId, kOldStatsFields.size()>& OldStatsFieldIds() {
  static const auto ids = [] {
    std::array<NameId, kOldStatsFields.size()> a{};
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = InternName(kOldStatsFields[i].name);
    return a;
  }();
  return ids;
}

int OldStatsColumnOf(NameId key) {
  // Dense lookup table over the id range that the column names occupy.
  static const auto table = [] {
    const auto& ids = OldStatsFieldIds();
    NameId max = 0;
    for (NameId id : ids) max = std::max(max, id);
    std::vector<std::int8_t> t(max + 1, -1);
    for (std::size_t i = 0; i < ids.size(); ++i) t[ids[i]] = static_cast<std::int8_t>(i);
    return t;
  }();
  return key < table.size() ? table[key] : -1;
}

const OldStatsCommandIds& OldStatsCommands() {
  static const OldStatsCommandIds ids{InternName("CONNECT"), InternName("DISCONNECT"),
                                      InternName("UPDATE-SESSION"), InternName("UPDATE-CMD"),
                                      InternName("ADD-USER")};
  return ids;
}

const OldStatsKeyIds& OldStatsKeys() {
  static const OldStatsKeyIds ids{
      InternName("session"), InternName("user"),      InternName("service"),
      InternName("pid"),     InternName("lip"),       InternName("rip"),
      InternName("cmd_id"),  InternName("cmd_name"),  InternName("cmd_args"),
      InternName("done"),    InternName("continued"), InternName("payload_error"),
      InternName("mail"),    InternName("auth")};
  return ids;
}

}  // namespace mailscope::catalog
