// ConfigSchema: the configuration as data. A block kind (a TOML table, a
// family of named tables, or an array of tables) lists its keys, each with
// type, default text, help, reloadable flag and a typed setter into the
// block's struct. One walker parses every kind; the documentation rows come
// from the same keys. Thread-compatible; schemas are built once and read-only
// afterwards.
//
//   [serve]             BlockShape::kTable,        path "serve"
//   [sources.stalwart]  BlockShape::kTable,        path "sources.stalwart"
//   [outputs.NAME]      BlockShape::kNamedTables,  path "outputs"
//   [[rules]]           BlockShape::kArrayOfTables, path "rules"
//
// Errors read `file:line: key: problem`: unknown keys suggest the closest key
// of the same block kind, unknown tables the closest table.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/event.h"
#include "core/status.h"

namespace mailscope::serve {

enum class SettingType {
  kString,
  kSize,
  kDuration,
  kMode,
  kAddress,
  kLogLevel,
  kEventList,
  kEventLevels,
  kCount,
  kStringList,
  kFilter,
  kBool,
};

// One documented key: a row of docs/configuration.md and --help-config.
struct Setting {
  std::string key;  // "old_stats.memory_limit", "outputs.<name>.level", "rules[].name"
  SettingType type;
  bool reloadable;           // applied on SIGHUP without a restart
  std::string default_text;  // as documented
  std::string help;
};

// A value of the configuration at its place, handed to a key's setter: a
// TOML node, or the text of a dovecot.conf setting. Valid during the parse.
class ConfigValue {
 public:
  // A dovecot.conf value: text only. Problems go to `problems`.
  ConfigValue(std::string text, std::string key, std::string where,
              std::vector<std::string>* problems);

  const std::string& key() const { return key_; }  // full: "events.levels.stalwart:auth.*"
  // The key in its table, or the entry's name: "levels", "stalwart:auth.*".
  const std::string& name() const { return name_; }
  const std::string& where() const { return where_; }  // "file:line"

  // The value in a type, or nullopt when it has another type.
  std::optional<std::string> String() const;
  std::optional<std::int64_t> Integer() const;  // TOML integers only
  std::optional<bool> Bool() const;             // TOML booleans only
  bool IsArray() const;
  bool IsTable() const;
  // The items of an array (same key, own lines); empty for other values.
  std::vector<ConfigValue> Items() const;
  // The entries of a table, keyed "key.ENTRY"; empty for other values.
  std::vector<ConfigValue> Entries() const;

  // Adds "where: key: problem" to the parse's errors and goes on; for
  // setters that check several items. A setter's returned error is reported
  // the same way.
  void Report(std::string_view problem) const;

 private:
  friend struct SchemaWalker;
  ConfigValue() = default;

  const void* node_ = nullptr;  // a toml::node; null for a dovecot.conf text
  std::string text_;
  std::string key_;
  std::string name_;
  std::string where_;
  std::vector<std::string>* problems_ = nullptr;
};

// Value readers shared by setters: the value, or an error saying what was
// expected ("expected a size such as \"16M\"").
Result<std::string> ReadString(const ConfigValue& v);
Result<std::string> ReadAddress(const ConfigValue& v);                    // "ADDR:PORT" or ""
Result<std::uint64_t> ReadSize(const ConfigValue& v);                     // > 0: 4096 or "16M"
Result<std::chrono::seconds> ReadDuration(const ConfigValue& v);          // >= 0
Result<std::chrono::seconds> ReadPositiveDuration(const ConfigValue& v);  // >= 1s
// A duration in milliseconds: a bare number counts milliseconds, "ms"/"msecs"
// too, and every unit of ParseDuration.
Result<std::chrono::milliseconds> ReadMillis(const ConfigValue& v);
Result<mode_t> ReadMode(const ConfigValue& v);          // 0o640 or "0640"
Result<std::uint64_t> ReadCount(const ConfigValue& v);  // a positive integer
Result<bool> ReadBool(const ConfigValue& v);            // true or false
Result<Level> ReadLevel(const ConfigValue& v);          // trace .. error
// A path or an array of paths.
Result<std::vector<std::string>> ReadPaths(const ConfigValue& v);
// A string, or an array of strings joined with spaces (Dovecot's lists).
Result<std::string> ReadWords(const ConfigValue& v);

// "16M", "16 M", "512k", "1G", "1048576" -> bytes.
std::optional<std::uint64_t> ParseSize(std::string_view text);
// Dovecot-style durations: "30s", "30 secs", "1 min", "12 hours", "1d", "90" (seconds).
std::optional<std::chrono::seconds> ParseDuration(std::string_view text);
std::optional<std::chrono::milliseconds> ParseMillisDuration(std::string_view text);

template <typename Block>
using KeySetter = std::function<Status(Block&, const ConfigValue&)>;

// A setter storing what `read` gives into `member`.
template <typename Block, typename T, typename Read>
KeySetter<Block> Store(T Block::*member, Read read) {
  return [member, read](Block& block, const ConfigValue& v) -> Status {
    auto value = read(v);
    if (!value.ok()) return value.status();
    block.*member = std::move(*value);
    return Status::Ok();
  };
}

template <typename Block>
struct Key {
  std::string name;  // "memory_limit"
  SettingType type;
  bool reloadable;
  std::string default_text;
  std::string help;
  KeySetter<Block> set;
};

enum class BlockShape {
  kTable,          // [path]: one table
  kNamedTables,    // [path.NAME]: a table per NAME
  kArrayOfTables,  // [[path]]: tables in file order
};

// Which table of its kind a block is.
struct BlockStart {
  std::string_view name;  // kNamedTables: NAME
  std::size_t index = 0;  // kArrayOfTables: position in the array, from 0
  std::string where;      // "file:line" of the table
};

// A block kind. `open` gives the block the keys of one table are set into:
// for kTable the same block each time, for the others a new one per table.
// `open` runs only for tables that exist in the file.
template <typename Root, typename Block>
struct BlockKind {
  std::string path;  // dotted: "old_stats", "outputs", "sources.stalwart"
  BlockShape shape = BlockShape::kTable;
  std::function<Block&(Root&, const BlockStart&)> open = {};
  std::vector<Key<Block>> keys = {};
  // kNamedTables: what NAME is ("output") and the names allowed (empty: any).
  // Last, so that other kinds can leave them out.
  std::string noun = {};
  std::vector<std::string> names = {};
  // Keys that were renamed or split, each with what replaced it: setting one
  // is an error that names the replacement. Not documented as settings.
  std::vector<std::pair<std::string, std::string>> replaced = {};
};

// The type-erased form the walker reads; built only by ConfigSchema::Add,
// which keeps root and block types matched.
struct ErasedKind {
  std::string path;
  BlockShape shape;
  std::string noun;
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> replaced;
  std::function<void*(void* root, const BlockStart&)> open;
  std::vector<Setting> docs;  // keys as documented, in order
  std::vector<std::function<Status(void* block, const ConfigValue&)>> setters;  // as docs
};

// Parses `toml_text` into `root` along `kinds`; returns every problem, in
// file order. A TOML syntax error is the only problem then.
std::vector<std::string> ParseWithKinds(const std::vector<ErasedKind>& kinds,
                                        std::string_view toml_text, std::string_view file,
                                        void* root);

// The block kinds of a configuration whose parsed form is `Root`.
template <typename Root>
class ConfigSchema {
 public:
  // REQUIRES: no kind has this path, and no path is a dotted prefix of the
  // other ("sources" and "sources.stalwart" cannot both be kinds).
  template <typename Block>
  void Add(BlockKind<Root, Block> kind) {
    for (const ErasedKind& k : kinds_) MS_CHECK(!Overlap(k.path, kind.path));
    ErasedKind e{kind.path, kind.shape, kind.noun, kind.names, kind.replaced, nullptr, {}, {}};
    e.open = [open = kind.open](void* root, const BlockStart& start) -> void* {
      return &open(*static_cast<Root*>(root), start);
    };
    for (Key<Block>& k : kind.keys) {
      e.docs.push_back({DocKey(kind, k.name), k.type, k.reloadable, std::move(k.default_text),
                        std::move(k.help)});
      e.setters.push_back([set = std::move(k.set)](void* block, const ConfigValue& v) {
        return set(*static_cast<Block*>(block), v);
      });
    }
    kinds_.push_back(std::move(e));
  }

  // Sets the keys of `toml_text` into `root`; returns the problems (none: OK).
  std::vector<std::string> Parse(std::string_view toml_text, std::string_view file,
                                 Root& root) const {
    return ParseWithKinds(kinds_, toml_text, file, &root);
  }

  // Every key, kind by kind, in the order added.
  std::vector<Setting> Settings() const {
    std::vector<Setting> out;
    for (const ErasedKind& k : kinds_) out.insert(out.end(), k.docs.begin(), k.docs.end());
    return out;
  }

  // The kind at `path`, or nullptr.
  const ErasedKind* Find(std::string_view path) const {
    for (const ErasedKind& k : kinds_)
      if (k.path == path) return &k;
    return nullptr;
  }

 private:
  static bool Overlap(std::string_view a, std::string_view b) {
    if (a.size() > b.size()) std::swap(a, b);
    return b.starts_with(a) && (b.size() == a.size() || b[a.size()] == '.');
  }

  template <typename Block>
  static std::string DocKey(const BlockKind<Root, Block>& kind, std::string_view key) {
    switch (kind.shape) {
      case BlockShape::kNamedTables:
        return kind.path + ".<name>." + std::string(key);
      case BlockShape::kArrayOfTables:
        return kind.path + "[]." + std::string(key);
      case BlockShape::kTable:
        break;
    }
    return kind.path + "." + std::string(key);
  }

  std::vector<ErasedKind> kinds_;
};

}  // namespace mailscope::serve
