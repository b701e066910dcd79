// Interned names: event names and field keys become small integers so that
// consumers compare and index them without hashing strings per event.
//
// Names are never freed: NameIds are copied into held events, metric
// definitions, filters and per-name counters, and NameText() hands out views
// that stay valid forever, so taking a name back would need every holder to
// let go of it. Names that clients make up are therefore budgeted instead:
// each client (a connection of a client-facing decoder, a client's filter)
// may add at most so many names new to the table (NameBudget), and the table
// as a whole keeps a global budget (SetNameBudget) as the backstop against
// many clients, or one that reconnects, spending theirs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mailscope {

using NameId = std::uint32_t;
inline constexpr NameId kNoName = 0;  // the empty name

// Returns the id of `name`, adding it on first use. Ids are dense, start at 1
// for the first non-empty name and stay valid for the life of the process.
// Not budgeted: for trusted text only (catalog, configuration). Thread-safe.
NameId InternName(std::string_view name);

// The inputs whose clients make up names, for counting refusals per input.
enum class NameInput : std::uint8_t {
  kStatsWriter,   // a connection to the stats-writer socket
  kDovecotPost,   // bodies POSTed by Dovecot's event exporter
  kTail,          // the filter of a `mailscope tail` client
  kStatsReader,   // a METRICS-ADD (`doveadm stats add`) on the stats-reader socket
  kExim,          // requests of Exim's event_action (one budget for the endpoint)
  kLogFile,       // lines of a log file (one budget for each log source)
  kStalwartPost,  // bodies POSTed by Stalwart's webhooks (one budget for the route)
};
inline constexpr int kNameInputCount = 7;
// "stats_writer", "dovecot_post", "tail", "stats_reader", "exim", "log_file",
// "stalwart_post".
std::string_view NameInputName(NameInput input);

// Why TryInternName() refused a new name.
enum class NameRefusal : std::uint8_t {
  kClientBudget,  // the client had added its NameBudget's worth of names
  kTableFull,     // the table is at its global budget (SetNameBudget)
};
inline constexpr int kNameRefusalCount = 2;
// "client_budget", "table_full".
std::string_view NameRefusalName(NameRefusal refusal);

// Default of NameBudget's allowance ([serve] max_new_names_per_client). A
// Dovecot installation has a few hundred event names, field keys and
// categories, and every connection after the first finds most of them
// interned already; a few thousand leaves room for plugins and new versions.
inline constexpr std::uint32_t kDefaultMaxNewNamesPerClient = 4096;

// One client's allowance of names new to the table. A name the table holds
// already costs nothing, whoever added it. Thread-compatible: owned by the
// client's decoder or connection.
class NameBudget {
 public:
  NameBudget(NameInput input, std::uint32_t max_new_names)
      : input_(input), max_new_names_(max_new_names) {}

  NameInput input() const { return input_; }
  std::uint32_t max_new_names() const { return max_new_names_; }
  // Names this client added to the table.
  std::uint32_t added() const { return added_; }
  // New names this client may still add.
  std::uint32_t remaining() const { return max_new_names_ - added_; }
  // New names refused to this client, for either reason.
  std::uint64_t refused() const { return refused_; }
  // Why the last refusal happened; meaningful once refused() > 0.
  NameRefusal last_refusal() const { return last_refusal_; }

 private:
  friend NameId TryInternName(std::string_view name, NameBudget& budget);
  friend struct NameTableAccess;

  NameInput input_;
  std::uint32_t max_new_names_;
  std::uint32_t added_ = 0;
  std::uint64_t refused_ = 0;
  NameRefusal last_refusal_ = NameRefusal::kClientBudget;
};

// For names that come from clients (decoders of client input, filters that
// clients send): the id of `name` when the table holds it already; else adds
// it when `budget` has room for one more new name and the table is within
// its global budget, charging `budget`; else kNoName, and the refusal is
// counted in `budget` and in NamesRefused(budget.input(), reason).
// Thread-safe for distinct budgets.
NameId TryInternName(std::string_view name, NameBudget& budget);

// Why TryInternNames() added none of its names.
struct NameShortfall {
  NameRefusal reason;
  std::uint32_t new_names;  // names new to the table among them, each counted once
  std::size_t first_past;   // index of the first new name there was no room for
};

// TryInternName for names a client needs all together (those of a filter):
// when `budget` and the table have room for every new one among `names`,
// adds them, charging `budget`, sets ids[i] to the id of names[i] and returns
// nullopt; else adds none, counts each new one as refused and says why. An
// empty name gets kNoName. REQUIRES: ids.size() == names.size().
// Thread-safe for distinct budgets.
std::optional<NameShortfall> TryInternNames(std::span<const std::string_view> names,
                                            NameBudget& budget, std::span<NameId> ids);

// Why `budget`'s client had a new name refused, for its error message:
// "names new to mailscope per client: at most 4096, 0 left" or "mailscope's
// name table is full".
std::string DescribeNameRefusal(const NameBudget& budget, NameRefusal reason);

// The error for input that needed a new name `budget` refused last: reason
// client_name_budget or name_table_full, message "PREFIXNo room for the new
// WHAT (why)".
Status NameRefusedStatus(const NameBudget& budget, std::string_view what,
                         std::string_view prefix = {});

// The global budget TryInternName keeps: at most `max_names` names holding
// at most `max_bytes` bytes of text in all. InternName is not limited.
// Thread-safe.
void SetNameBudget(std::uint32_t max_names, std::size_t max_bytes);
// Its defaults: room for 244 clients that each spend all of the default
// client budget, in a table whose text then fits in 64 MiB.
inline constexpr std::uint32_t kDefaultMaxNames = 1'000'000;
inline constexpr std::size_t kDefaultMaxNameBytes = 64u << 20;

// New names TryInternName refused since the start, from `input` for
// `reason`; the second form sums every input and reason. Thread-safe.
std::uint64_t NamesRefused(NameInput input, NameRefusal reason);
std::uint64_t NamesRefused();

// Returns the id of `name` if it was interned, else kNoName. Thread-safe.
NameId FindName(std::string_view name);

// Returns the text of an interned id; the view stays valid forever.
// REQUIRES: id was returned by InternName. Thread-safe.
std::string_view NameText(NameId id);

// Number of ids handed out so far, including kNoName. Thread-safe.
std::uint32_t NameCount();

}  // namespace mailscope
