// OldStatsVector: one object's statistics in Dovecot's old-stats model (the
// 24 columns of catalog::kOldStatsFields) with Dovecot's exact arithmetic and
// text form, so exports are byte-identical.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "catalog/dovecot_old_stats.h"
#include "core/event.h"
#include "core/status.h"

namespace mailscope::stats {

struct OldStatsVector {
  static constexpr std::size_t kColumns = catalog::kOldStatsFields.size();
  static constexpr std::size_t kTimevals = catalog::kOldStatsTimevalColumns;

  std::array<Timeval, kTimevals> tv{};                  // columns 0..2
  std::array<std::uint64_t, kColumns - kTimevals> n{};  // columns 3..23

  // Sets column `col` from a decoded field value (u32 columns truncate).
  void Set(std::size_t col, const Value& v);

  // diff = now - old per column (stats_diff). Fails, naming the column, if
  // any column shrank; `diff` is unspecified then.
  static Status Diff(const OldStatsVector& old, const OldStatsVector& now, OldStatsVector& diff);

  // this += d (stats_add): integers add (u32 columns wrap at 2^32); timevals
  // add both parts and carry only when usec > 1000000.
  void Add(const OldStatsVector& d);

  // Appends the column's text: u32/u64 decimal; timeval "<sec>.<usec>" with
  // usec NOT zero-padded, as Dovecot prints it ("%ld.%u").
  void AppendColumn(std::string& out, std::size_t col) const;
  // All columns, TAB-separated, no trailing TAB.
  void AppendAll(std::string& out) const;
  // The column as a number in base units (seconds for timevals).
  double ColumnAsDouble(std::size_t col) const;

  friend bool operator==(const OldStatsVector&, const OldStatsVector&) = default;
};

// The column names joined by TAB (the stats part of every EXPORT header).
const std::string& OldStatsHeader();

}  // namespace mailscope::stats
