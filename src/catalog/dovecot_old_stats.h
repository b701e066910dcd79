// The statistics columns of Dovecot's old-stats process, as data: the two
// registered items ("mail" from old_stats_mail, "auth" from stats_auth), their
// raw C struct layouts on x86_64, and the export columns in the order
// Dovecot 2.3.19 prints them (mail columns first: modules load sorted by name).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "core/event.h"
#include "core/names.h"

namespace mailscope::catalog {

enum class OldStatsType { kU32, kU64, kTimeval };

struct OldStatsItem {
  std::string_view name;
  std::size_t size;  // sizeof the C struct that follows "name\0" in a payload
};
inline constexpr int kOldStatsMailItem = 0;
inline constexpr int kOldStatsAuthItem = 1;
inline constexpr std::array<OldStatsItem, 2> kOldStatsItems = {{{"mail", 136}, {"auth", 24}}};

struct OldStatsField {
  std::string_view name;  // export column name
  OldStatsType type;
  int item;            // index into kOldStatsItems
  std::size_t offset;  // byte offset inside the item's struct
};

// Column order. Note that the struct order of read_count/write_count/
// read_bytes/write_bytes differs from the column order.
inline constexpr std::array<OldStatsField, 24> kOldStatsFields = {{
    {"user_cpu", OldStatsType::kTimeval, 0, 0},
    {"sys_cpu", OldStatsType::kTimeval, 0, 16},
    {"clock_time", OldStatsType::kTimeval, 0, 32},
    {"min_faults", OldStatsType::kU32, 0, 48},
    {"maj_faults", OldStatsType::kU32, 0, 52},
    {"vol_cs", OldStatsType::kU32, 0, 56},
    {"invol_cs", OldStatsType::kU32, 0, 60},
    {"disk_input", OldStatsType::kU64, 0, 64},
    {"disk_output", OldStatsType::kU64, 0, 72},
    {"read_count", OldStatsType::kU32, 0, 80},
    {"read_bytes", OldStatsType::kU64, 0, 88},
    {"write_count", OldStatsType::kU32, 0, 84},
    {"write_bytes", OldStatsType::kU64, 0, 96},
    {"mail_lookup_path", OldStatsType::kU32, 0, 104},
    {"mail_lookup_attr", OldStatsType::kU32, 0, 108},
    {"mail_read_count", OldStatsType::kU32, 0, 112},
    {"mail_read_bytes", OldStatsType::kU64, 0, 120},
    {"mail_cache_hits", OldStatsType::kU64, 0, 128},
    {"auth_successes", OldStatsType::kU32, 1, 0},
    {"auth_master_successes", OldStatsType::kU32, 1, 4},
    {"auth_failures", OldStatsType::kU32, 1, 8},
    {"auth_db_tempfails", OldStatsType::kU32, 1, 12},
    {"auth_cache_hits", OldStatsType::kU32, 1, 16},
    {"auth_cache_misses", OldStatsType::kU32, 1, 20},
}};
inline constexpr int kOldStatsTimevalColumns = 3;        // the first three columns
inline constexpr std::size_t kOldStatsMailColumns = 18;  // columns 0..17 are the mail item's

// The two items as record schemas (column order, struct offsets): a decoded
// payload item is one field (key "mail" or "auth") with a record value.
inline constexpr RecordColumn::Type ToRecordType(OldStatsType t) {
  return t == OldStatsType::kU32   ? RecordColumn::Type::kU32
         : t == OldStatsType::kU64 ? RecordColumn::Type::kU64
                                   : RecordColumn::Type::kTimeval;
}
template <std::size_t First, std::size_t Count>
constexpr std::array<RecordColumn, Count> MakeRecordColumns() {
  std::array<RecordColumn, Count> c{};
  for (std::size_t i = 0; i < Count; ++i) {
    const auto& f = kOldStatsFields[First + i];
    c[i] = {f.name, ToRecordType(f.type), f.offset};
  }
  return c;
}
inline constexpr auto kOldStatsMailRecordColumns = MakeRecordColumns<0, kOldStatsMailColumns>();
inline constexpr auto kOldStatsAuthRecordColumns =
    MakeRecordColumns<kOldStatsMailColumns, kOldStatsFields.size() - kOldStatsMailColumns>();
inline constexpr RecordSchema kOldStatsMailRecord{"mail", 136, kOldStatsMailRecordColumns.data(),
                                                  kOldStatsMailRecordColumns.size()};
inline constexpr RecordSchema kOldStatsAuthRecord{"auth", 24, kOldStatsAuthRecordColumns.data(),
                                                  kOldStatsAuthRecordColumns.size()};

// Interned ids of the column names, in column order.
const std::array<NameId, kOldStatsFields.size()>& OldStatsFieldIds();

// Returns the column of an interned field key, or -1.
int OldStatsColumnOf(NameId key);

// The mail-process protocol commands (event names of source dovecot_old_stats).
struct OldStatsCommandIds {
  NameId connect, disconnect, update_session, update_cmd, add_user;
};
const OldStatsCommandIds& OldStatsCommands();

// Keys of the non-statistics fields the decoder emits.
struct OldStatsKeyIds {
  NameId session, user, service, pid, lip, rip, cmd_id, cmd_name, cmd_args, done, continued,
      payload_error, mail, auth;
};
const OldStatsKeyIds& OldStatsKeys();

}  // namespace mailscope::catalog
