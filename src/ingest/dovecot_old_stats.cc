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
  args_.reserve(16);
  payload_.reserve(256);
  (void)catalog::OldStatsFieldIds();  // intern the keys before the first event
}

Status DovecotOldStatsDecoder::DecodePayload(std::string_view base64, Event& out) {
  payload_.resize(Base64DecodedSize(base64.size()));
  std::ptrdiff_t decoded = Base64DecodeTo(base64, payload_.data());
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
    out.Add(mail ? keys.mail : keys.auth,
            Value::Record(mail ? &catalog::kOldStatsMailRecord : &catalog::kOldStatsAuthRecord, p));
    p += size;
    left -= size;
  }
  return Status::Ok();
}

DecodeResult DovecotOldStatsDecoder::Decode(std::span<char> line, TimePoint now, Event& out) {
  out.Clear();
  out.source = Source::kDovecotOldStats;
  out.time = now;
  SplitTabEscaped(line, args_);
  if (args_.empty()) return {false, Rejected("empty_line", "Empty line")};

  const auto& cmds = catalog::OldStatsCommands();
  const auto& keys = catalog::OldStatsKeys();
  const std::string_view cmd = args_[0];
  const std::size_t n = args_.size() - 1;  // parameters after the command
  auto arg = [this](std::size_t i) { return args_[i + 1]; };

  // Statistics payload: on error the event still goes out without statistics.
  auto with_payload = [&](std::size_t index) -> DecodeResult {
    Status st = index < n ? DecodePayload(arg(index), out)
                          : Rejected("invalid_base64", "Missing statistics payload");
    if (!st.ok()) {
      out.Add(keys.payload_error, Value::String(st.reason()));
      return {true, Status(st.code(), st.reason().data(),
                           std::string(cmd) + " " + QuoteForLog(arg(0)) + ": " + st.message())};
    }
    return {true, Status::Ok()};
  };

  // Most frequent first: every comparison of equal length costs a memcmp.
  if (cmd == "UPDATE-CMD") {
    // UPDATE-CMD <session> <id> <flags> <name> <args> <stats>   (new command)
    // UPDATE-CMD <session> <id> c[d] <stats>                    (continued)
    if (n < 3) return {false, Rejected("too_few_fields", "UPDATE-CMD: Too few parameters")};
    std::uint32_t id = 0;
    if (!ParseDecimal(arg(1), id) || id == 0) {
      return {false, Rejected("invalid_command_id", "UPDATE-CMD: Invalid command id")};
    }
    bool done = false, continued = false;
    for (char c : arg(2)) {
      if (c == 'd') {
        done = true;
      } else if (c == 'c') {
        continued = true;
      } else {
        return {false, Rejected("invalid_flags", "UPDATE-CMD: Invalid flags parameter")};
      }
    }
    if (!continued && n < 5) {
      return {false, Rejected("too_few_fields", "UPDATE-CMD: Too few parameters")};
    }
    out.name = cmds.update_cmd;
    out.Add(keys.session, Value::String(arg(0)));
    out.Add(keys.cmd_id, Value::Uint(id));
    out.Add(keys.done, Value::Bool(done));
    out.Add(keys.continued, Value::Bool(continued));
    if (!continued) {
      out.Add(keys.cmd_name, Value::String(arg(3)));
      out.Add(keys.cmd_args, Value::String(arg(4)));
      return with_payload(5);
    }
    return with_payload(3);
  }
  if (cmd == "UPDATE-SESSION") {
    // UPDATE-SESSION <session> <base64 stats>
    if (n < 1) return {false, Rejected("too_few_fields", "UPDATE-SESSION: Too few parameters")};
    out.name = cmds.update_session;
    out.Add(keys.session, Value::String(arg(0)));
    return with_payload(1);
  }
  if (cmd == "CONNECT") {
    // CONNECT <session> <user> <service> <pid> [lip=<ip>] [rip=<ip>] [...]
    if (n < 4) return {false, Rejected("too_few_fields", "CONNECT: Too few parameters")};
    std::int32_t pid = 0;
    if (!ParseDecimal(arg(3), pid) || pid < 0) {
      return {false, Rejected("invalid_pid", "CONNECT: Invalid pid " + QuoteForLog(arg(3)) +
                                                 " for session ID " + QuoteForLog(arg(0)))};
    }
    out.name = cmds.connect;
    out.Add(keys.session, Value::String(arg(0)));
    out.Add(keys.user, Value::String(arg(1)));
    out.Add(keys.service, Value::String(arg(2)));
    out.Add(keys.pid, Value::Int(pid));
    for (std::size_t i = 4; i < n; ++i) {
      std::string_view a = arg(i);
      if (a.starts_with("lip=")) out.Add(keys.lip, Value::String(a.substr(4)));
      if (a.starts_with("rip=")) out.Add(keys.rip, Value::String(a.substr(4)));
    }
    return {true, Status::Ok()};
  }
  if (cmd == "DISCONNECT") {
    if (n < 1) return {false, Rejected("too_few_fields", "DISCONNECT: Too few parameters")};
    out.name = cmds.disconnect;
    out.Add(keys.session, Value::String(arg(0)));
    return {true, Status::Ok()};
  }
  if (cmd == "ADD-USER") {
    // ADD-USER <user> <service> <base64 auth stats delta>
    if (n < 3) return {false, Rejected("too_few_fields", "ADD-USER: Too few parameters")};
    out.name = cmds.add_user;
    out.Add(keys.user, Value::String(arg(0)));
    out.Add(keys.service, Value::String(arg(1)));
    return with_payload(2);
  }
  return {false, Rejected("unknown_command", "Unknown command: " + QuoteForLog(cmd))};
}

}  // namespace mailscope::ingest
