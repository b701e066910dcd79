// OldStatsStore: the six zoom levels of Dovecot's old-stats process
// (command, session, user, domain, IP, global) fed by dovecot_old_stats
// events, with Dovecot 2.3.19's semantics for logins, connected sessions,
// last_update and reset_timestamp, and its eviction order under a memory
// limit — except that every byte an entry holds is counted and, when
// Dovecot's rounds cannot free enough, a further pass frees the oldest
// entries that are not in use, so the limit truly holds. Connected sessions
// (and the users, domains and IPs they refer to) are never freed: the limit
// can only be exceeded by those. Loop thread only; owns every entry.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/event.h"
#include "core/hash.h"
#include "core/ip_address.h"
#include "core/status.h"
#include "stats/intrusive_list.h"
#include "stats/old_stats_vector.h"

namespace mailscope::stats {

struct OldStatsOptions {
  std::size_t memory_limit_bytes = 16u << 20;
  std::chrono::seconds command_min_time{60};
  std::chrono::seconds session_min_time{15 * 60};
  std::chrono::seconds user_min_time{60 * 60};
  std::chrono::seconds domain_min_time{12 * 60 * 60};
  std::chrono::seconds ip_min_time{12 * 60 * 60};
};

struct OldSession;
struct OldUser;

// One allocation per command: the struct, then its name and arguments.
// The fields that eviction reads come first, in one cache line.
struct OldCommand {
  Hook<OldCommand> stable;  // all commands, oldest first; also the eviction order
  // The session's next older command. Commands are freed oldest first, the
  // whole store's and so each session's, so a freed command is always the
  // last of its session's list: only the first num_commands links of that
  // list are ever followed, and freeing touches no neighbour.
  OldCommand* older_in_session = nullptr;
  OldSession* session = nullptr;
  std::uint32_t id = 0;  // 0 once finished ("d" flag)
  std::uint32_t name_size = 0;
  TimePoint last_update{};
  std::uint32_t args_size = 0;
  OldStatsVector stats;

  std::string_view name() const { return {text(), name_size}; }
  std::string_view args() const { return {text() + name_size, args_size}; }

 private:
  const char* text() const { return reinterpret_cast<const char*>(this + 1); }
};

struct OldDomain {
  std::string name;
  std::int64_t reset_timestamp = 0;
  TimePoint last_update{};
  std::uint32_t num_logins = 0, num_cmds = 0, num_connected_sessions = 0;
  OldStatsVector stats;
  OldUser* users = nullptr;  // newest first, via OldUser::in_domain
  std::uint32_t num_users = 0;
  Hook<OldDomain> stable, lru;
};

struct OldIp {
  IpAddress ip;
  std::int64_t reset_timestamp = 0;
  TimePoint last_update{};
  std::uint32_t num_logins = 0, num_cmds = 0, num_connected_sessions = 0;
  OldStatsVector stats;
  OldSession* sessions = nullptr;  // newest first, via OldSession::in_ip
  std::uint32_t num_sessions = 0;
  Hook<OldIp> stable, lru;
};

// Like commands, users and sessions carry their strings after themselves in
// one allocation: a lookup by name or id reads no separate heap block.
struct OldUser {
  std::string_view name() const { return {reinterpret_cast<const char*>(this + 1), name_size}; }

  std::uint32_t name_size = 0;
  OldDomain* domain = nullptr;
  std::int64_t reset_timestamp = 0;
  TimePoint last_update{};
  std::uint32_t num_logins = 0, num_cmds = 0;
  OldStatsVector stats;
  OldSession* sessions = nullptr;  // newest first, via OldSession::in_user
  std::uint32_t num_sessions = 0;
  Hook<OldUser> stable, lru, in_domain;
};

struct OldSession {
  std::string_view id() const { return {text(), id_size}; }
  std::string_view service() const { return {text() + id_size, service_size}; }

  std::uint32_t id_size = 0, service_size = 0;
  OldUser* user = nullptr;
  OldIp* ip = nullptr;
  std::int64_t pid = 0;
  bool disconnected = false;
  TimePoint last_update{};
  std::uint32_t num_cmds = 0;
  std::uint32_t highest_cmd_id = 0;
  OldStatsVector stats;
  OldCommand* commands = nullptr;  // newest first; num_commands of them are alive
  std::uint32_t num_commands = 0;
  Hook<OldSession> stable, lru, connected, in_user, in_ip;

 private:
  const char* text() const { return reinterpret_cast<const char*>(this + 1); }
};

struct OldGlobal {
  std::int64_t reset_timestamp = 0;
  TimePoint last_update{};
  std::uint32_t num_logins = 0, num_cmds = 0, num_connected_sessions = 0;
  OldStatsVector stats;
};

enum class OldLevel { kCommand, kSession, kUser, kDomain, kIp, kGlobal };
inline constexpr int kOldLevelCount = 6;
std::string_view OldLevelName(OldLevel level);

class OldStatsStore {
 public:
  OldStatsStore(const OldStatsOptions& options, const Clock& clock);
  ~OldStatsStore();
  OldStatsStore(const OldStatsStore&) = delete;
  OldStatsStore& operator=(const OldStatsStore&) = delete;

  // Applies one dovecot_old_stats event. Errors (with a counter reason):
  // duplicate_session, duplicate_command, stats_shrank, expired_command,
  // unknown_session, and the payload_error carried by the event. Whatever the
  // error, the store stays consistent and within its memory limit.
  Status Apply(const Event& event);

  // Disconnects sessions idle for 15 minutes (their process is presumed
  // dead), as Dovecot's per-session idle timer does. Call about once a second.
  void Tick();

  // RESET: zeroes the global statistics and counters except connected sessions.
  void Reset();

  // Replaces the limits; evicts at once if the new limit is lower.
  void SetOptions(const OldStatsOptions& options);
  const OldStatsOptions& options() const { return options_; }

  std::size_t memory_used_bytes() const { return entry_bytes_ + index_bytes_; }
  std::uint64_t evicted(OldLevel level) const { return evicted_[static_cast<int>(level)]; }
  std::size_t count(OldLevel level) const;

  // Read access for exports. Lists are in Dovecot's export order.
  const OldCommand* commands_oldest() const { return commands_.head(); }
  const OldSession* sessions_newest() const { return sessions_stable_.head(); }
  const OldUser* users_newest() const { return users_stable_.head(); }
  const OldDomain* domains_newest() const { return domains_stable_.head(); }
  const OldIp* ips_newest() const { return ips_stable_.head(); }
  const OldGlobal& global() const { return global_; }
  const OldUser* FindUser(std::string_view name) const;
  const OldDomain* FindDomain(std::string_view name) const;
  const OldIp* FindIp(const IpAddress& ip) const;

 private:
  struct Parsed;
  Status Connect(const Parsed& p);
  Status Disconnect(const Parsed& p);
  Status UpdateSession(const Parsed& p);
  Status UpdateCommand(const Parsed& p);
  Status SetNewCommandStats(OldCommand& cmd, const Parsed& p);
  Status AddUser(const Parsed& p);

  OldSession* GetOrPlaceholder(std::string_view id);
  OldSession* CreateSession(std::string_view id, std::string_view user, std::string_view service,
                            std::int64_t pid, const IpAddress* ip);
  OldUser* LoginUser(std::string_view name);
  OldDomain* GetDomain(std::string_view name);
  OldIp* LoginIp(const IpAddress& ip);
  void DisconnectSession(OldSession* s);

  void RefreshSession(OldSession* s, const OldStatsVector* diff);
  void RefreshUser(OldUser* u, const OldStatsVector* diff);
  void RefreshDomain(OldDomain* d, const OldStatsVector* diff);
  void RefreshIp(OldIp* ip, const OldStatsVector* diff);
  void RefreshGlobal(const OldStatsVector* diff);

  void FreeCommand(OldCommand* c);
  void FreeSession(OldSession* s);
  void FreeUser(OldUser* u);
  void FreeDomain(OldDomain* d);
  void FreeIp(OldIp* ip);

  // global_memory_free_something() and its per-level helpers.
  void EnforceLimit();
  bool FreeSomething();
  void FreeCommands();
  void FreeSessions();
  void FreeUsers();
  void FreeIps();
  void FreeDomains();
  void FreeUnderPressure();
  bool OverLimit() const { return memory_used_bytes() > options_.memory_limit_bytes; }
  bool BelowLimit() const { return memory_used_bytes() < options_.memory_limit_bytes; }
  bool Younger(TimePoint last_update, std::chrono::seconds min_time) const;

  void UpdateIndexBytes();
  static std::vector<std::int8_t> BuildKeySlots();

  OldStatsOptions options_;
  const Clock& clock_;
  TimePoint now_{};  // the time of the event being applied

  struct IpHash {
    std::size_t operator()(const IpAddress& ip) const { return ip.Hash(); }
  };
  // Session ids, user and domain names are the sender's: seeded.
  using StrHash = SeededStringHash;
  const std::vector<std::int8_t> key_slots_;  // event key -> what it carries
  boost::unordered_flat_map<std::string_view, OldSession*, StrHash, ShortStringEqual>
      sessions_by_id_;  // connected only
  boost::unordered_flat_map<std::string_view, OldUser*, StrHash, ShortStringEqual> users_by_name_;
  boost::unordered_flat_map<std::string_view, OldDomain*, StrHash> domains_by_name_;
  boost::unordered_flat_map<IpAddress, OldIp*, IpHash> ips_by_addr_;

  IntrusiveList<OldCommand, &OldCommand::stable> commands_;
  IntrusiveList<OldSession, &OldSession::stable> sessions_stable_;
  IntrusiveList<OldSession, &OldSession::lru> sessions_lru_;
  IntrusiveList<OldSession, &OldSession::connected> sessions_connected_;
  IntrusiveList<OldUser, &OldUser::stable> users_stable_;
  IntrusiveList<OldUser, &OldUser::lru> users_lru_;
  IntrusiveList<OldDomain, &OldDomain::stable> domains_stable_;
  IntrusiveList<OldDomain, &OldDomain::lru> domains_lru_;
  IntrusiveList<OldIp, &OldIp::stable> ips_stable_;
  IntrusiveList<OldIp, &OldIp::lru> ips_lru_;

  std::size_t counts_[kOldLevelCount] = {};
  std::uint64_t evicted_[kOldLevelCount] = {};
  std::size_t entry_bytes_ = 0;
  std::size_t index_bytes_ = 0;
  OldGlobal global_;
};

}  // namespace mailscope::stats
