#include "ingest/dovecot_old_stats.h"

#include <charconv>
#include <cstring>
#include <string>
#include <utility>

#include "catalog/dovecot_old_stats.h"
#include "core/base64.h"
#include "core/tab_escape.h"
#include "ingest/text.h"

namespace mailscope::ingest {
namespace {

using catalog::kOldStatsFields;
using catalog::kOldStatsItems;
using catalog::OldStatsType;

}  // namespace

DovecotOldStatsDecoder::DovecotOldStatsDecoder() {
  payload_.reserve(256);
  (void)catalog::OldStatsFieldIds();  // intern the keys before the first event
}

Status DovecotOldStatsDecoder::DecodePayload(TabFields& fields, Event& out) {
  // The payload is the last field Dovecot reads, and neither TAB nor \001 is
  // base64: when the rest of the line decodes, it was that field, and the
  // scan for its end is spared (220 of 2,940 instructions a record, callgrind).
  std::string_view base64 = fields.Rest();
  payload_.resize(Base64DecodedSize(base64.size()));
  std::ptrdiff_t decoded = Base64DecodeTo(base64, payload_.data());
  if (decoded < 0) {  // more fields follow, or an escape, or bad base64
    base64 = fields.Next();
    decoded = Base64DecodeTo(base64, payload_.data());
  }
  if (decoded < 0) return Rejected("invalid_base64", "Invalid base64 input");
  payload_.resize(static_cast<std::size_t>(decoded));
  // The payload is "name\0" + raw struct, repeated per item (stats_export()).
  const std::size_t first_field = out.fields.size();
  const auto& keys = catalog::OldStatsKeys();
  const std::uint8_t* p = payload_.data();
  std::size_t left = payload_.size();
  while (left > 0) {
    const void* nul = std::memchr(p, '\0', left);
    if (nul == nullptr) {
      out.fields.resize(first_field);
      return Rejected("unknown_stats_item", "Unknown stats name without terminator");
    }
    std::string_view name(reinterpret_cast<const char*>(p),
                          static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - p));
    int item = -1;
    for (std::size_t i = 0; i < kOldStatsItems.size(); ++i)
      if (kOldStatsItems[i].name == name) item = static_cast<int>(i);
    if (item < 0) {
      out.fields.resize(first_field);
      return Rejected("unknown_stats_item", "Unknown stats name: '" + QuoteForLog(name) + "'");
    }
    left -= name.size() + 1;
    p += name.size() + 1;
    const std::size_t size = kOldStatsItems[static_cast<std::size_t>(item)].size;
    if (left < size) {
      out.fields.resize(first_field);
      return Rejected("stats_too_small", std::string(name) + "_stats too small");
    }
    // The item's struct stays where it is: the event carries it as a record
    // whose schema names and types its columns.
    const bool mail = item == catalog::kOldStatsMailItem;
    out.AddInPlace(mail ? keys.mail : keys.auth)
        .set_record(mail ? &catalog::kOldStatsMailRecord : &catalog::kOldStatsAuthRecord, p);
    p += size;
    left -= size;
  }
  return Status::Ok();
}

DecodeResult DovecotOldStatsDecoder::Decode(std::span<char> line, TimePoint now, Event& out) {
  out.Clear();
  out.source = Source::kDovecotOldStats;
  out.time = now;
  // Fields are taken one at a time, as each command needs them; what follows
  // the last one a command reads (parameters Dovecot ignores) is not scanned.
  TabFields fields(line);
  if (fields.done()) return {false, Rejected("empty_line", "Empty line")};

  const auto& cmds = catalog::OldStatsCommands();
  const auto& keys = catalog::OldStatsKeys();
  const std::string_view cmd = fields.Next();
  // Takes the next `count` parameters into `into`; false if the line has fewer.
  auto take = [&fields](std::string_view* into, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      if (fields.done()) return false;
      into[i] = fields.Next();
    }
    return true;
  };
  std::string_view first;  // the first parameter, which names the record in messages

  // Statistics payload, the next parameter: on error the event still goes
  // out without statistics.
  auto with_payload = [&]() -> DecodeResult {
    Status st = fields.done() ? Rejected("invalid_base64", "Missing statistics payload")
                              : DecodePayload(fields, out);
    if (!st.ok()) {
      out.AddInPlace(keys.payload_error).set_string(st.reason());
      return {true, Status(st.code(), st.reason().data(),
                           std::string(cmd) + " " + QuoteForLog(first) + ": " + st.message())};
    }
    return {true, Status::Ok()};
  };

  // Most frequent first: every comparison of equal length costs a memcmp.
  if (cmd == "UPDATE-CMD") {
    // UPDATE-CMD <session> <id> <flags> <name> <args> <stats>   (new command)
    // UPDATE-CMD <session> <id> c[d] <stats>                    (continued)
    std::string_view p[3];
    if (!take(p, 3)) return {false, Rejected("too_few_fields", "UPDATE-CMD: Too few parameters")};
    first = p[0];
    std::uint32_t id = 0;
    if (!ParseDecimal(p[1], id) || id == 0) {
      return {false, Rejected("invalid_command_id", "UPDATE-CMD: Invalid command id")};
    }
    bool done = false, continued = false;
    for (char c : p[2]) {
      if (c == 'd') {
        done = true;
      } else if (c == 'c') {
        continued = true;
      } else {
        return {false, Rejected("invalid_flags", "UPDATE-CMD: Invalid flags parameter")};
      }
    }
    std::string_view name_args[2];
    if (!continued && !take(name_args, 2)) {
      return {false, Rejected("too_few_fields", "UPDATE-CMD: Too few parameters")};
    }
    out.name = cmds.update_cmd;
    out.AddInPlace(keys.session).set_string(first);
    out.AddInPlace(keys.cmd_id).set_uint(id);
    out.AddInPlace(keys.done).set_bool(done);
    out.AddInPlace(keys.continued).set_bool(continued);
    if (!continued) {
      out.AddInPlace(keys.cmd_name).set_string(name_args[0]);
      out.AddInPlace(keys.cmd_args).set_string(name_args[1]);
    }
    return with_payload();
  }
  if (cmd == "UPDATE-SESSION") {
    // UPDATE-SESSION <session> <base64 stats>
    if (!take(&first, 1)) {
      return {false, Rejected("too_few_fields", "UPDATE-SESSION: Too few parameters")};
    }
    out.name = cmds.update_session;
    out.AddInPlace(keys.session).set_string(first);
    return with_payload();
  }
  if (cmd == "CONNECT") {
    // CONNECT <session> <user> <service> <pid> [lip=<ip>] [rip=<ip>] [...]
    std::string_view p[4];
    if (!take(p, 4)) return {false, Rejected("too_few_fields", "CONNECT: Too few parameters")};
    std::int32_t pid = 0;
    if (!ParseDecimal(p[3], pid) || pid < 0) {
      return {false, Rejected("invalid_pid", "CONNECT: Invalid pid " + QuoteForLog(p[3]) +
                                                 " for session ID " + QuoteForLog(p[0]))};
    }
    out.name = cmds.connect;
    out.AddInPlace(keys.session).set_string(p[0]);
    out.AddInPlace(keys.user).set_string(p[1]);
    out.AddInPlace(keys.service).set_string(p[2]);
    out.AddInPlace(keys.pid).set_int(pid);
    while (!fields.done()) {
      std::string_view a = fields.Next();
      if (a.starts_with("lip=")) out.AddInPlace(keys.lip).set_string(a.substr(4));
      if (a.starts_with("rip=")) out.AddInPlace(keys.rip).set_string(a.substr(4));
    }
    return {true, Status::Ok()};
  }
  if (cmd == "DISCONNECT") {
    if (!take(&first, 1)) {
      return {false, Rejected("too_few_fields", "DISCONNECT: Too few parameters")};
    }
    out.name = cmds.disconnect;
    out.AddInPlace(keys.session).set_string(first);
    return {true, Status::Ok()};
  }
  if (cmd == "ADD-USER") {
    // ADD-USER <user> <service> <base64 auth stats delta>
    std::string_view p[2];
    if (!take(p, 2) || fields.done()) {
      return {false, Rejected("too_few_fields", "ADD-USER: Too few parameters")};
    }
    first = p[0];
    out.name = cmds.add_user;
    out.AddInPlace(keys.user).set_string(p[0]);
    out.AddInPlace(keys.service).set_string(p[1]);
    return with_payload();
  }
  return {false, Rejected("unknown_command", "Unknown command: " + QuoteForLog(cmd))};
}

}  // namespace mailscope::ingest
