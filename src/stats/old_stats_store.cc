#include "stats/old_stats_store.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <new>
#include <utility>

#include "catalog/dovecot_old_stats.h"
#include "core/check.h"

namespace mailscope::stats {
namespace {

// Dovecot: a session that sends nothing for this long belongs to a process
// that died; it is disconnected. Commands not updated for as long are
// considered lost when memory is tight.
constexpr auto kSessionIdleTimeout = std::chrono::minutes(15);
constexpr auto kCommandTimeout = std::chrono::minutes(15);

// What glibc malloc really hands out for a request of n bytes: an 8-byte
// header, 16-byte alignment and a 32-byte minimum chunk.
std::size_t MallocBytes(std::size_t n) {
  return std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15});
}
std::size_t StringBytes(const std::string& s) {
  return s.capacity() > 15 ? MallocBytes(s.capacity() + 1) : 0;
}

// Lists whose head pointer lives in the owning object (a user's sessions...).
template <typename T, Hook<T> T::*H>
void Prepend(T*& head, T* x) {
  (x->*H).prev = nullptr;
  (x->*H).next = head;
  if (head != nullptr) (head->*H).prev = x;
  head = x;
}
template <typename T, Hook<T> T::*H>
void Unlink(T*& head, T* x) {
  Hook<T>& h = x->*H;
  if (h.prev != nullptr)
    (h.prev->*H).next = h.next;
  else
    head = h.next;
  if (h.next != nullptr) (h.next->*H).prev = h.prev;
  h.prev = h.next = nullptr;
}

std::size_t CommandBytes(const OldCommand& c) {
  return MallocBytes(sizeof c + c.name_size + c.args_size);
}
std::size_t SessionBytes(const OldSession& s) {
  return MallocBytes(sizeof s + s.id_size + s.service_size);
}
std::size_t UserBytes(const OldUser& u) { return MallocBytes(sizeof u + u.name_size); }

// Allocates a T with `texts` stored right after it, back to back: one block
// instead of one more per string, and no second cache line to chase.
template <typename T>
T* NewWithText(std::initializer_list<std::string_view> texts) {
  std::size_t extra = 0;
  for (std::string_view t : texts) extra += t.size();
  void* block = ::operator new(sizeof(T) + extra);
  T* x = new (block) T();
  char* w = static_cast<char*>(block) + sizeof(T);
  for (std::string_view t : texts) {
    if (!t.empty()) std::memcpy(w, t.data(), t.size());
    w += t.size();
  }
  return x;
}
template <typename T>
void DeleteWithText(T* x) {
  x->~T();
  ::operator delete(static_cast<void*>(x));
}

void PrefetchForReuse(const OldCommand* victim) {
  // At the limit, each new command frees the oldest one, and malloc hands
  // that block to the next new command, which writes all of it. The block
  // was last touched long ago: filling it stalled on every cache line (a
  // sixth of the store's time). Asked for now, the lines arrive while the
  // next record is decoded.
  const char* bytes = reinterpret_cast<const char*>(victim);
  for (std::size_t at = 64; at < sizeof(OldCommand); at += 64) __builtin_prefetch(bytes + at, 1);
}

std::size_t DomainBytes(const OldDomain& d) { return MallocBytes(sizeof d) + StringBytes(d.name); }
std::size_t IpBytes(const OldIp&) { return MallocBytes(sizeof(OldIp)); }

template <typename Map>
std::size_t MapBytes(const Map& m) {
  // Open addressing: one slot plus one metadata byte per bucket.
  return m.bucket_count() == 0
             ? 0
             : MallocBytes(m.bucket_count() * (sizeof(typename Map::value_type) + 1));
}

}  // namespace

std::string_view OldLevelName(OldLevel level) {
  static constexpr std::string_view kNames[] = {"command", "session", "user",
                                                "domain",  "ip",      "global"};
  return kNames[static_cast<int>(level)];
}

namespace {
// Slots of the event keys the store reads: 0..23 are the statistics columns.
enum KeySlot : std::int8_t {
  kSlotNone = -1,
  kSlotSession = OldStatsVector::kColumns,
  kSlotUser,
  kSlotService,
  kSlotPid,
  kSlotRip,
  kSlotCmdId,
  kSlotCmdName,
  kSlotCmdArgs,
  kSlotDone,
  kSlotContinued,
  kSlotPayloadError,
  kSlotMail,
  kSlotAuth,
};

// Copies the columns [First, First + N) of an old-stats record into `v`;
// the offsets are compile-time constants, so this is straight-line code.
template <std::size_t First, std::size_t... I>
void ImportRecord(const unsigned char* p, OldStatsVector& v, std::index_sequence<I...>) {
  auto one = [&]<std::size_t Col>() {
    constexpr auto spec = catalog::kOldStatsFields[Col];
    if constexpr (spec.type == catalog::OldStatsType::kTimeval) {
      std::memcpy(&v.tv[Col].sec, p + spec.offset, 8);
      std::memcpy(&v.tv[Col].usec, p + spec.offset + 8, 8);
    } else if constexpr (spec.type == catalog::OldStatsType::kU32) {
      std::uint32_t x;
      std::memcpy(&x, p + spec.offset, 4);
      v.n[Col - OldStatsVector::kTimevals] = x;
    } else {
      std::memcpy(&v.n[Col - OldStatsVector::kTimevals], p + spec.offset, 8);
    }
  };
  (one.template operator()<First + I>(), ...);
}
}  // namespace

std::vector<std::int8_t> OldStatsStore::BuildKeySlots() {
  const auto& k = catalog::OldStatsKeys();
  const auto& cols = catalog::OldStatsFieldIds();
  std::vector<std::pair<NameId, std::int8_t>> pairs = {{k.session, kSlotSession},
                                                       {k.user, kSlotUser},
                                                       {k.service, kSlotService},
                                                       {k.pid, kSlotPid},
                                                       {k.rip, kSlotRip},
                                                       {k.cmd_id, kSlotCmdId},
                                                       {k.cmd_name, kSlotCmdName},
                                                       {k.cmd_args, kSlotCmdArgs},
                                                       {k.done, kSlotDone},
                                                       {k.continued, kSlotContinued},
                                                       {k.payload_error, kSlotPayloadError},
                                                       {k.mail, kSlotMail},
                                                       {k.auth, kSlotAuth}};
  for (std::size_t i = 0; i < cols.size(); ++i)
    pairs.emplace_back(cols[i], static_cast<std::int8_t>(i));
  NameId max = 0;
  for (const auto& [id, slot] : pairs) max = std::max(max, id);
  std::vector<std::int8_t> table(max + 1, kSlotNone);
  for (const auto& [id, slot] : pairs) table[id] = slot;
  return table;
}

// The fields of one event, pulled out in a single pass.
struct OldStatsStore::Parsed {
  std::string_view session, user, service, cmd_name, cmd_args, rip;
  std::int64_t pid = 0;
  std::uint32_t cmd_id = 0;
  bool done = false, continued = false, has_rip = false, payload_error = false;
  std::uint32_t columns = 0;  // bit i: column i present in `values`
  OldStatsVector values;      // zero in the columns not present

  Parsed(const Event& e, const std::vector<std::int8_t>& slots) {
    for (const Field& f : e.fields) {
      const std::int8_t slot = f.key < slots.size() ? slots[f.key] : std::int8_t{kSlotNone};
      if (slot >= 0 && slot < static_cast<std::int8_t>(OldStatsVector::kColumns)) {
        values.Set(static_cast<std::size_t>(slot), f.value);
        columns |= 1u << slot;
        continue;
      }
      switch (slot) {
        case kSlotSession:
          session = f.value.as_string();
          break;
        case kSlotUser:
          user = f.value.as_string();
          break;
        case kSlotService:
          service = f.value.as_string();
          break;
        case kSlotPid:
          pid = f.value.as_int();
          break;
        case kSlotRip:
          rip = f.value.as_string();
          has_rip = true;
          break;
        case kSlotCmdId:
          cmd_id = static_cast<std::uint32_t>(f.value.as_uint());
          break;
        case kSlotCmdName:
          cmd_name = f.value.as_string();
          break;
        case kSlotCmdArgs:
          cmd_args = f.value.as_string();
          break;
        case kSlotDone:
          done = f.value.as_bool();
          break;
        case kSlotContinued:
          continued = f.value.as_bool();
          break;
        case kSlotPayloadError:
          payload_error = true;
          break;
        case kSlotMail:
          if (f.value.type() == Value::Type::kRecord &&
              f.value.record_schema() == &catalog::kOldStatsMailRecord) {
            ImportRecord<0>(static_cast<const unsigned char*>(f.value.record_data()), values,
                            std::make_index_sequence<catalog::kOldStatsMailColumns>{});
            columns |= OldStatsVector::kMailColumns;
          }
          break;
        case kSlotAuth:
          if (f.value.type() == Value::Type::kRecord &&
              f.value.record_schema() == &catalog::kOldStatsAuthRecord) {
            ImportRecord<catalog::kOldStatsMailColumns>(
                static_cast<const unsigned char*>(f.value.record_data()), values,
                std::make_index_sequence<OldStatsVector::kColumns -
                                         catalog::kOldStatsMailColumns>{});
            columns |= OldStatsVector::kAuthColumns;
          }
          break;
        default:
          break;
      }
    }
  }
};

OldStatsStore::OldStatsStore(const OldStatsOptions& options, const Clock& clock)
    : options_(options), clock_(clock), key_slots_(BuildKeySlots()) {
  now_ = clock_.Now();
  global_.reset_timestamp = UnixSeconds(now_);
}

OldStatsStore::~OldStatsStore() {
  while (OldCommand* c = commands_.head()) FreeCommand(c);
  while (OldSession* s = sessions_stable_.head()) FreeSession(s);
  while (OldUser* u = users_stable_.head()) FreeUser(u);
  while (OldIp* ip = ips_stable_.head()) FreeIp(ip);
  while (OldDomain* d = domains_stable_.head()) FreeDomain(d);
}

std::size_t OldStatsStore::count(OldLevel level) const {
  return level == OldLevel::kGlobal ? 1 : counts_[static_cast<int>(level)];
}

void OldStatsStore::UpdateIndexBytes() {
  // Open-addressing tables only grow (on insert); erasing keeps their size.
  index_bytes_ = MapBytes(sessions_by_id_) + MapBytes(users_by_name_) + MapBytes(domains_by_name_) +
                 MapBytes(ips_by_addr_);
}

const OldUser* OldStatsStore::FindUser(std::string_view name) const {
  auto it = users_by_name_.find(name);
  return it == users_by_name_.end() ? nullptr : it->second;
}
const OldDomain* OldStatsStore::FindDomain(std::string_view name) const {
  auto it = domains_by_name_.find(name);
  return it == domains_by_name_.end() ? nullptr : it->second;
}
const OldIp* OldStatsStore::FindIp(const IpAddress& ip) const {
  auto it = ips_by_addr_.find(ip);
  return it == ips_by_addr_.end() ? nullptr : it->second;
}

Status OldStatsStore::Apply(const Event& event) {
  now_ = event.time.time_since_epoch().count() != 0 ? event.time : clock_.Now();
  const Parsed p(event, key_slots_);
  const auto& cmds = catalog::OldStatsCommands();
  Status st;
  if (event.name == cmds.connect) {
    st = Connect(p);
  } else if (event.name == cmds.update_session) {
    st = UpdateSession(p);
  } else if (event.name == cmds.update_cmd) {
    st = UpdateCommand(p);
  } else if (event.name == cmds.disconnect) {
    st = Disconnect(p);
  } else if (event.name == cmds.add_user) {
    st = AddUser(p);
  } else {
    st = Rejected("unknown_command", "not an old-stats command");
  }
  EnforceLimit();
  return st;
}

// --- creation and refresh (mail-session.c, mail-user.c, mail-domain.c, mail-ip.c)

OldDomain* OldStatsStore::GetDomain(std::string_view name) {
  if (auto it = domains_by_name_.find(name); it != domains_by_name_.end()) return it->second;
  auto* d = new OldDomain();
  d->name.assign(name);
  d->reset_timestamp = UnixSeconds(now_);
  domains_by_name_.emplace(d->name, d);
  UpdateIndexBytes();
  domains_stable_.PushFront(d);
  domains_lru_.PushBack(d);
  ++counts_[static_cast<int>(OldLevel::kDomain)];
  entry_bytes_ += DomainBytes(*d);
  return d;
}

OldUser* OldStatsStore::LoginUser(std::string_view name) {
  if (auto it = users_by_name_.find(name); it != users_by_name_.end()) {
    RefreshUser(it->second, nullptr);
    return it->second;
  }
  // The domain is what follows the first '@', or "" without one.
  std::size_t at = name.find('@');
  OldDomain* domain =
      GetDomain(at == std::string_view::npos ? std::string_view() : name.substr(at + 1));
  auto* u = NewWithText<OldUser>({name});
  u->name_size = static_cast<std::uint32_t>(name.size());
  u->reset_timestamp = UnixSeconds(now_);
  u->domain = domain;
  u->last_update = now_;
  users_by_name_.emplace(u->name(), u);
  UpdateIndexBytes();
  users_stable_.PushFront(u);
  users_lru_.PushBack(u);
  Prepend<OldUser, &OldUser::in_domain>(domain->users, u);
  ++domain->num_users;
  ++counts_[static_cast<int>(OldLevel::kUser)];
  entry_bytes_ += UserBytes(*u);
  return u;
}

OldIp* OldStatsStore::LoginIp(const IpAddress& addr) {
  OldIp* ip;
  if (auto it = ips_by_addr_.find(addr); it != ips_by_addr_.end()) {
    ip = it->second;
  } else {
    ip = new OldIp();
    ip->ip = addr;
    ip->reset_timestamp = UnixSeconds(now_);
    ips_by_addr_.emplace(addr, ip);
    UpdateIndexBytes();
    ips_stable_.PushFront(ip);
    ips_lru_.PushBack(ip);
    ++counts_[static_cast<int>(OldLevel::kIp)];
    entry_bytes_ += IpBytes(*ip);
  }
  ++ip->num_logins;
  ++ip->num_connected_sessions;
  RefreshIp(ip, nullptr);
  return ip;
}

OldSession* OldStatsStore::CreateSession(std::string_view id, std::string_view user,
                                         std::string_view service, std::int64_t pid,
                                         const IpAddress* ip) {
  auto* s = NewWithText<OldSession>({id, service});
  s->id_size = static_cast<std::uint32_t>(id.size());
  s->service_size = static_cast<std::uint32_t>(service.size());
  s->pid = pid;
  s->last_update = now_;
  s->user = LoginUser(user);
  ++s->user->num_logins;
  OldDomain* d = s->user->domain;
  ++d->num_logins;
  ++d->num_connected_sessions;
  RefreshDomain(d, nullptr);
  if (ip != nullptr) s->ip = LoginIp(*ip);

  sessions_by_id_.emplace(s->id(), s);
  UpdateIndexBytes();
  sessions_stable_.PushFront(s);
  sessions_lru_.PushBack(s);
  sessions_connected_.PushBack(s);
  Prepend<OldSession, &OldSession::in_user>(s->user->sessions, s);
  ++s->user->num_sessions;
  if (s->ip != nullptr) {
    Prepend<OldSession, &OldSession::in_ip>(s->ip->sessions, s);
    ++s->ip->num_sessions;
  }
  ++counts_[static_cast<int>(OldLevel::kSession)];
  entry_bytes_ += SessionBytes(*s);
  ++global_.num_logins;
  ++global_.num_connected_sessions;
  return s;
}

void OldStatsStore::RefreshGlobal(const OldStatsVector* diff) {
  if (diff != nullptr) global_.stats.Add(*diff);
  global_.last_update = now_;
}

void OldStatsStore::RefreshDomain(OldDomain* d, const OldStatsVector* diff) {
  if (diff != nullptr) d->stats.Add(*diff);
  d->last_update = now_;
  domains_lru_.MoveToBack(d);
  RefreshGlobal(diff);
}

void OldStatsStore::RefreshUser(OldUser* u, const OldStatsVector* diff) {
  if (diff != nullptr) u->stats.Add(*diff);
  u->last_update = now_;
  users_lru_.MoveToBack(u);
  RefreshDomain(u->domain, diff);
}

void OldStatsStore::RefreshIp(OldIp* ip, const OldStatsVector* diff) {
  if (diff != nullptr) ip->stats.Add(*diff);
  ip->last_update = now_;
  ips_lru_.MoveToBack(ip);
}

void OldStatsStore::RefreshSession(OldSession* s, const OldStatsVector* diff) {
  if (diff != nullptr) s->stats.Add(*diff);
  s->last_update = now_;
  sessions_lru_.MoveToBack(s);
  if (!s->disconnected) sessions_connected_.MoveToBack(s);
  RefreshUser(s->user, diff);
  if (s->ip != nullptr) RefreshIp(s->ip, diff);
}

void OldStatsStore::DisconnectSession(OldSession* s) {
  OldDomain* d = s->user->domain;
  if (d->num_connected_sessions > 0) --d->num_connected_sessions;
  if (global_.num_connected_sessions > 0) --global_.num_connected_sessions;
  if (s->ip != nullptr && s->ip->num_connected_sessions > 0) --s->ip->num_connected_sessions;
  sessions_by_id_.erase(s->id());
  sessions_connected_.Remove(s);
  s->disconnected = true;
}

OldSession* OldStatsStore::GetOrPlaceholder(std::string_view id) {
  if (auto it = sessions_by_id_.find(id); it != sessions_by_id_.end()) return it->second;
  // An update for a session never announced (mailscope started after the
  // mail process): Dovecot creates a placeholder with user "", service "",
  // pid 0, so later updates accumulate somewhere visible.
  return CreateSession(id, {}, {}, 0, nullptr);
}

// --- the commands

Status OldStatsStore::Connect(const Parsed& p) {
  if (auto it = sessions_by_id_.find(p.session); it != sessions_by_id_.end()) {
    return Rejected("duplicate_session", "CONNECT: Duplicate session ID " + std::string(p.session));
  }
  std::optional<IpAddress> ip;
  if (p.has_rip) ip = IpAddress::Parse(p.rip);
  CreateSession(p.session, p.user, p.service, p.pid, ip ? &*ip : nullptr);
  return Status::Ok();
}

Status OldStatsStore::Disconnect(const Parsed& p) {
  auto it = sessions_by_id_.find(p.session);
  if (it == sessions_by_id_.end()) {
    return {StatusCode::kNotFound, "unknown_session",
            "DISCONNECT: Couldn't find session ID: " + std::string(p.session)};
  }
  DisconnectSession(it->second);
  return Status::Ok();
}

Status OldStatsStore::UpdateSession(const Parsed& p) {
  OldSession* s = GetOrPlaceholder(p.session);
  if (p.payload_error) return Status::Ok();  // counted by the decoder
  // stats_import() keeps the stored value of a column the record lacks.
  OldStatsVector diff;
  MS_RETURN_IF_ERROR(OldStatsVector::Diff(s->stats, p.values, diff, p.columns));
  RefreshSession(s, &diff);
  return Status::Ok();
}

Status OldStatsStore::UpdateCommand(const Parsed& p) {
  OldSession* s = GetOrPlaceholder(p.session);
  OldCommand* cmd = nullptr;
  if (p.cmd_id <= s->highest_cmd_id) {
    OldCommand* c = s->commands;
    for (std::uint32_t k = 0; k < s->num_commands; ++k, c = c->older_in_session) {
      if (c->id == p.cmd_id) {
        cmd = c;
        break;
      }
    }
  }
  if (!p.continued) {
    if (cmd != nullptr)
      return Rejected("duplicate_command", "UPDATE-CMD: Duplicate new command id");
    cmd = NewWithText<OldCommand>({p.cmd_name, p.cmd_args});
    cmd->name_size = static_cast<std::uint32_t>(p.cmd_name.size());
    cmd->args_size = static_cast<std::uint32_t>(p.cmd_args.size());
    cmd->session = s;
    cmd->id = p.cmd_id;
    cmd->last_update = now_;
    commands_.PushBack(cmd);
    cmd->older_in_session = s->commands;
    s->commands = cmd;
    ++s->num_commands;
    ++counts_[static_cast<int>(OldLevel::kCommand)];
    entry_bytes_ += CommandBytes(*cmd);
    s->highest_cmd_id = std::max(s->highest_cmd_id, p.cmd_id);
    ++s->num_cmds;
    ++s->user->num_cmds;
    ++s->user->domain->num_cmds;
    if (s->ip != nullptr) ++s->ip->num_cmds;
    ++global_.num_cmds;
  } else {
    if (cmd == nullptr) {
      return {StatusCode::kNotFound, "expired_command", "UPDATE-CMD: Already expired"};
    }
    cmd->last_update = now_;
  }
  if (p.payload_error) return Status::Ok();  // counted by the decoder
  // Command statistics stay with the command; sessions get theirs from UPDATE-SESSION.
  if (!p.continued) {
    MS_RETURN_IF_ERROR(SetNewCommandStats(*cmd, p));
  } else {
    OldStatsVector diff;
    MS_RETURN_IF_ERROR(OldStatsVector::Diff(cmd->stats, p.values, diff, p.columns));
    cmd->stats.Add(diff);
  }
  if (p.done) cmd->id = 0;
  RefreshSession(s, nullptr);
  return Status::Ok();
}

Status OldStatsStore::SetNewCommandStats(OldCommand& cmd, const Parsed& p) {
  // A new command's statistics are zero, so adding the difference from zero
  // is assigning it (a normalized timeval never carries). Its memory is
  // fresh and not in cache: read-modify-write of it stalled on every column
  // (12 % of the store's time); assigning only writes.
  static const OldStatsVector kZero;
  OldStatsVector diff;
  MS_RETURN_IF_ERROR(OldStatsVector::Diff(kZero, p.values, diff, p.columns));
  cmd.stats = diff;
  return Status::Ok();
}

Status OldStatsStore::AddUser(const Parsed& p) {
  OldUser* u = LoginUser(p.user);
  if (p.payload_error) return Status::Ok();  // counted by the decoder
  // The payload is a delta, added to user, domain and global: imported over
  // zeros, it is the values as parsed.
  RefreshUser(u, &p.values);
  return Status::Ok();
}

void OldStatsStore::Tick() {
  now_ = clock_.Now();
  while (OldSession* s = sessions_connected_.head()) {
    if (now_ - s->last_update < kSessionIdleTimeout) break;
    DisconnectSession(s);
  }
  EnforceLimit();
}

void OldStatsStore::Reset() {
  now_ = clock_.Now();
  global_.stats = {};
  global_.num_logins = 0;
  global_.num_cmds = 0;
  global_.reset_timestamp = UnixSeconds(now_);
  global_.last_update = TimePoint{};
}

void OldStatsStore::SetOptions(const OldStatsOptions& options) {
  options_ = options;
  EnforceLimit();
}

// --- freeing

void OldStatsStore::FreeCommand(OldCommand* c) {
  MS_CHECK(c == commands_.head());  // what older_in_session relies on
  entry_bytes_ -= CommandBytes(*c);
  commands_.Remove(c);
  // The session's oldest command: the link to it from the next newer one is
  // past num_commands from now on, and never followed.
  if (--c->session->num_commands == 0) c->session->commands = nullptr;
  --counts_[static_cast<int>(OldLevel::kCommand)];
  DeleteWithText(c);
}

void OldStatsStore::FreeSession(OldSession* s) {
  entry_bytes_ -= SessionBytes(*s);
  if (!s->disconnected) {
    sessions_by_id_.erase(s->id());
    sessions_connected_.Remove(s);
  }
  sessions_stable_.Remove(s);
  sessions_lru_.Remove(s);
  Unlink<OldSession, &OldSession::in_user>(s->user->sessions, s);
  --s->user->num_sessions;
  if (s->ip != nullptr) {
    Unlink<OldSession, &OldSession::in_ip>(s->ip->sessions, s);
    --s->ip->num_sessions;
  }
  --counts_[static_cast<int>(OldLevel::kSession)];
  DeleteWithText(s);
}

void OldStatsStore::FreeUser(OldUser* u) {
  entry_bytes_ -= UserBytes(*u);
  users_by_name_.erase(u->name());
  users_stable_.Remove(u);
  users_lru_.Remove(u);
  Unlink<OldUser, &OldUser::in_domain>(u->domain->users, u);
  --u->domain->num_users;
  --counts_[static_cast<int>(OldLevel::kUser)];
  DeleteWithText(u);
}

void OldStatsStore::FreeDomain(OldDomain* d) {
  entry_bytes_ -= DomainBytes(*d);
  domains_by_name_.erase(std::string_view(d->name));
  domains_stable_.Remove(d);
  domains_lru_.Remove(d);
  --counts_[static_cast<int>(OldLevel::kDomain)];
  delete d;
}

void OldStatsStore::FreeIp(OldIp* ip) {
  entry_bytes_ -= IpBytes(*ip);
  ips_by_addr_.erase(ip->ip);
  ips_stable_.Remove(ip);
  ips_lru_.Remove(ip);
  --counts_[static_cast<int>(OldLevel::kIp)];
  delete ip;
}

// --- eviction (global-memory.c): per level, look only at the oldest entry.
// An eligible oldest entry is freed whatever its age; freeing then goes on
// while still over the limit and the next oldest is both eligible and older
// than the level's min_time.

bool OldStatsStore::Younger(TimePoint last_update, std::chrono::seconds min_time) const {
  return UnixSeconds(now_) - UnixSeconds(last_update) < min_time.count();
}

void OldStatsStore::EnforceLimit() {
  while (OverLimit()) {
    if (!FreeSomething()) break;
  }
  if (OverLimit()) FreeUnderPressure();
}

// Dovecot's rounds stop at an ineligible oldest entry, and commands of a
// connected session are never eligible (the "d" flag practically never
// arrives), so with long sessions 2.3.19 grows past its limit. To make the
// limit hold, this pass frees the oldest commands whatever their state (a
// later continuation of one is then ignored as expired), and then the oldest
// eligible sessions, users, IPs and domains behind ineligible ones. Connected
// sessions and what they refer to are never freed.
void OldStatsStore::FreeUnderPressure() {
  while (OverLimit() && !commands_.empty()) {
    FreeCommand(commands_.head());
    ++evicted_[static_cast<int>(OldLevel::kCommand)];
  }
  for (OldSession* s = sessions_lru_.head(); s != nullptr && OverLimit();) {
    OldSession* next = s->lru.next;
    if (s->disconnected && s->num_commands == 0) {
      FreeSession(s);
      ++evicted_[static_cast<int>(OldLevel::kSession)];
    }
    s = next;
  }
  for (OldUser* u = users_lru_.head(); u != nullptr && OverLimit();) {
    OldUser* next = u->lru.next;
    if (u->num_sessions == 0) {
      FreeUser(u);
      ++evicted_[static_cast<int>(OldLevel::kUser)];
    }
    u = next;
  }
  for (OldIp* ip = ips_lru_.head(); ip != nullptr && OverLimit();) {
    OldIp* next = ip->lru.next;
    if (ip->num_sessions == 0) {
      FreeIp(ip);
      ++evicted_[static_cast<int>(OldLevel::kIp)];
    }
    ip = next;
  }
  for (OldDomain* d = domains_lru_.head(); d != nullptr && OverLimit();) {
    OldDomain* next = d->lru.next;
    if (d->num_users == 0) {
      FreeDomain(d);
      ++evicted_[static_cast<int>(OldLevel::kDomain)];
    }
    d = next;
  }
}

bool OldStatsStore::FreeSomething() {
  const std::size_t before = memory_used_bytes();
  FreeCommands();
  if (OverLimit()) FreeSessions();
  if (OverLimit()) FreeUsers();
  if (OverLimit()) FreeIps();
  if (OverLimit()) FreeDomains();
  return memory_used_bytes() < before;
}

void OldStatsStore::FreeCommands() {
  while (OldCommand* c = commands_.head()) {
    const bool eligible =
        c->id == 0 || c->session->disconnected || now_ - c->last_update > kCommandTimeout;
    if (!eligible) break;
    PrefetchForReuse(c);
    FreeCommand(c);
    ++evicted_[static_cast<int>(OldLevel::kCommand)];
    if (BelowLimit() || commands_.empty()) break;
    if (Younger(commands_.head()->last_update, options_.command_min_time)) break;
  }
}

void OldStatsStore::FreeSessions() {
  while (OldSession* s = sessions_lru_.head()) {
    if (!s->disconnected || s->num_commands > 0) break;
    FreeSession(s);
    ++evicted_[static_cast<int>(OldLevel::kSession)];
    if (BelowLimit() || sessions_lru_.empty()) break;
    if (Younger(sessions_lru_.head()->last_update, options_.session_min_time)) break;
  }
}

void OldStatsStore::FreeUsers() {
  while (OldUser* u = users_lru_.head()) {
    if (u->num_sessions > 0) break;
    FreeUser(u);
    ++evicted_[static_cast<int>(OldLevel::kUser)];
    if (BelowLimit() || users_lru_.empty()) break;
    if (Younger(users_lru_.head()->last_update, options_.user_min_time)) break;
  }
}

void OldStatsStore::FreeIps() {
  while (OldIp* ip = ips_lru_.head()) {
    if (ip->num_sessions > 0) break;
    FreeIp(ip);
    ++evicted_[static_cast<int>(OldLevel::kIp)];
    if (BelowLimit() || ips_lru_.empty()) break;
    if (Younger(ips_lru_.head()->last_update, options_.ip_min_time)) break;
  }
}

void OldStatsStore::FreeDomains() {
  while (OldDomain* d = domains_lru_.head()) {
    if (d->num_users > 0) break;
    FreeDomain(d);
    ++evicted_[static_cast<int>(OldLevel::kDomain)];
    if (BelowLimit() || domains_lru_.empty()) break;
    if (Younger(domains_lru_.head()->last_update, options_.domain_min_time)) break;
  }
}

}  // namespace mailscope::stats
