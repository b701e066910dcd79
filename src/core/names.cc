#include "core/names.h"

#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/check.h"

namespace mailscope {
namespace {

struct Table {
  std::mutex mu;
  std::deque<std::string> storage;  // deque: element addresses never move
  std::vector<std::string_view> by_id{std::string_view()};
  std::unordered_map<std::string_view, NameId> ids;
};

Table& GetTable() {
  static Table* table = new Table();  // never destroyed: names outlive static destructors
  return *table;
}

}  // namespace

NameId InternName(std::string_view name) {
  if (name.empty()) return kNoName;
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  if (auto it = t.ids.find(name); it != t.ids.end()) return it->second;
  const std::string& stored = t.storage.emplace_back(name);
  auto id = static_cast<NameId>(t.by_id.size());
  t.by_id.push_back(stored);
  t.ids.emplace(stored, id);
  return id;
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
  std::lock_guard lock(t.mu);
  MS_CHECK(id < t.by_id.size());
  return t.by_id[id];
}

std::uint32_t NameCount() {
  Table& t = GetTable();
  std::lock_guard lock(t.mu);
  return static_cast<std::uint32_t>(t.by_id.size());
}

}  // namespace mailscope
