#include "core/names.h"

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/check.h"
#include "core/hash.h"

namespace mailscope {
namespace {

// Ids index fixed-size chunks of views that never move once written, so
// NameText() reads without a lock: an id only exists after its entry was
// stored, and the chunk pointer is published with release semantics.
constexpr std::size_t kChunkBits = 12;
constexpr std::size_t kChunkSize = std::size_t{1} << kChunkBits;
constexpr std::size_t kMaxChunks = 1 << 16;  // 268 million names

struct Table {
  std::mutex mu;                    // guards interning
  std::deque<std::string> storage;  // deque: element addresses never move
  std::unordered_map<std::string_view, NameId, SeededStringHash> ids;  // names are the sender's
  std::array<std::atomic<std::string_view*>, kMaxChunks> chunks{};
  std::atomic<std::uint32_t> count{1};         // id 0 is the empty name
  std::size_t bytes = 0;                       // text of every name
  std::uint32_t max_names = kDefaultMaxNames;  // TryInternName's global budget
  std::size_t max_bytes = kDefaultMaxNameBytes;
  // By input, then reason.
  std::array<std::array<std::atomic<std::uint64_t>, kNameRefusalCount>, kNameInputCount> refused{};

  Table() { chunks[0].store(new std::string_view[kChunkSize](), std::memory_order_release); }
};

Table& GetTable() {
  static Table* table = new Table();  // never destroyed: names outlive static destructors
  return *table;
}

// REQUIRES: t.mu held, `name` not interned yet and not empty.
NameId AddLocked(Table& t, std::string_view name) {
  const std::uint32_t id = t.count.load(std::memory_order_relaxed);
  const std::size_t chunk = id >> kChunkBits;
  MS_CHECK(chunk < kMaxChunks);
  std::string_view* views = t.chunks[chunk].load(std::memory_order_relaxed);
  if (views == nullptr) {
    views = new std::string_view[kChunkSize]();
    t.chunks[chunk].store(views, std::memory_order_release);
  }
  const std::string& stored = t.storage.emplace_back(name);
  views[id & (kChunkSize - 1)] = stored;
  t.ids.emplace(stored, id);
  t.bytes += name.size();
  t.count.store(id + 1, std::memory_order_release);
  return id;
}

}  // namespace

NameId InternName(std::string_view name) {
  if (name.empty()) return kNoName;
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  if (auto it = t.ids.find(name); it != t.ids.end()) return it->second;
  return AddLocked(t, name);
}

// NameBudget's counters, for TryInternNames().
struct NameTableAccess {
  static void Charge(NameBudget& b, std::uint32_t added) { b.added_ += added; }
  static void Refuse(NameBudget& b, std::uint32_t refused, NameRefusal why) {
    b.refused_ += refused;
    b.last_refusal_ = why;
  }
};

std::optional<NameShortfall> TryInternNames(std::span<const std::string_view> names,
                                            NameBudget& budget, std::span<NameId> ids) {
  MS_CHECK(ids.size() == names.size());
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  // The new names, each once, and the first one past the room: the client's,
  // then the table's.
  std::unordered_set<std::string_view, SeededStringHash> fresh;
  std::size_t fresh_bytes = 0;
  std::optional<NameShortfall> shortfall;
  const std::uint32_t count = t.count.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty() || t.ids.contains(names[i]) || !fresh.insert(names[i]).second) continue;
    fresh_bytes += names[i].size();
    if (shortfall) continue;
    if (fresh.size() > budget.remaining()) {
      shortfall = NameShortfall{NameRefusal::kClientBudget, 0, i};
    } else if (count + fresh.size() > t.max_names || t.bytes + fresh_bytes > t.max_bytes) {
      shortfall = NameShortfall{NameRefusal::kTableFull, 0, i};
    }
  }
  if (shortfall) {
    shortfall->new_names = static_cast<std::uint32_t>(fresh.size());
    NameTableAccess::Refuse(budget, shortfall->new_names, shortfall->reason);
    t.refused[static_cast<std::size_t>(budget.input())][static_cast<std::size_t>(shortfall->reason)]
        .fetch_add(shortfall->new_names, std::memory_order_relaxed);
    return shortfall;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      ids[i] = kNoName;
    } else if (auto it = t.ids.find(names[i]); it != t.ids.end()) {
      ids[i] = it->second;
    } else {
      ids[i] = AddLocked(t, names[i]);
    }
  }
  NameTableAccess::Charge(budget, static_cast<std::uint32_t>(fresh.size()));
  return std::nullopt;
}

NameId TryInternName(std::string_view name, NameBudget& budget) {
  if (name.empty()) return kNoName;
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  if (auto it = t.ids.find(name); it != t.ids.end()) return it->second;
  // The client's own budget first: a client past it is refused for that
  // reason even when the table is full too.
  NameRefusal refusal;
  if (budget.added_ >= budget.max_new_names_) {
    refusal = NameRefusal::kClientBudget;
  } else if (t.count.load(std::memory_order_relaxed) >= t.max_names ||
             t.bytes + name.size() > t.max_bytes) {
    refusal = NameRefusal::kTableFull;
  } else {
    ++budget.added_;
    return AddLocked(t, name);
  }
  ++budget.refused_;
  budget.last_refusal_ = refusal;
  t.refused[static_cast<std::size_t>(budget.input_)][static_cast<std::size_t>(refusal)].fetch_add(
      1, std::memory_order_relaxed);
  return kNoName;
}

void SetNameBudget(std::uint32_t max_names, std::size_t max_bytes) {
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  t.max_names = max_names;
  t.max_bytes = max_bytes;
}

std::uint64_t NamesRefused(NameInput input, NameRefusal reason) {
  return GetTable().refused[static_cast<std::size_t>(input)][static_cast<std::size_t>(reason)].load(
      std::memory_order_relaxed);
}

std::uint64_t NamesRefused() {
  std::uint64_t sum = 0;
  for (const auto& by_reason : GetTable().refused)
    for (const auto& n : by_reason) sum += n.load(std::memory_order_relaxed);
  return sum;
}

std::string DescribeNameRefusal(const NameBudget& budget, NameRefusal reason) {
  if (reason == NameRefusal::kTableFull) return "mailscope's name table is full";
  return "names new to mailscope per client: at most " + std::to_string(budget.max_new_names()) +
         ", " + std::to_string(budget.remaining()) + " left";
}

Status NameRefusedStatus(const NameBudget& budget, std::string_view what, std::string_view prefix) {
  const NameRefusal why = budget.last_refusal();
  return ResourceExhausted(
      why == NameRefusal::kClientBudget ? "client_name_budget" : "name_table_full",
      std::string(prefix) + "No room for the new " + std::string(what) + " (" +
          DescribeNameRefusal(budget, why) + ")");
}

std::string_view NameInputName(NameInput input) {
  switch (input) {
    case NameInput::kStatsWriter:
      return "stats_writer";
    case NameInput::kDovecotPost:
      return "dovecot_post";
    case NameInput::kTail:
      return "tail";
    case NameInput::kStatsReader:
      return "stats_reader";
    case NameInput::kExim:
      return "exim";
    case NameInput::kLogFile:
      return "log_file";
    case NameInput::kStalwartPost:
      return "stalwart_post";
  }
  return "unknown";
}

std::string_view NameRefusalName(NameRefusal refusal) {
  switch (refusal) {
    case NameRefusal::kClientBudget:
      return "client_budget";
    case NameRefusal::kTableFull:
      return "table_full";
  }
  return "unknown";
}

NameId FindName(std::string_view name) {
  if (name.empty()) return kNoName;
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  auto it = t.ids.find(name);
  return it == t.ids.end() ? kNoName : it->second;
}

std::string_view NameText(NameId id) {
  Table& t = GetTable();
  MS_CHECK(id < t.count.load(std::memory_order_acquire));
  return t.chunks[id >> kChunkBits].load(std::memory_order_acquire)[id & (kChunkSize - 1)];
}

std::uint32_t NameCount() { return GetTable().count.load(std::memory_order_acquire); }

}  // namespace mailscope
