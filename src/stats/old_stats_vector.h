// OldStatsVector: one object's statistics in Dovecot's old-stats model (the
// 24 columns of catalog::kOldStatsFields) with Dovecot's exact arithmetic and
// text form, so exports are byte-identical.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
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
  void Set(std::size_t col, const Value& v) {
    if (col < kTimevals) {
      tv[col] = v.type() == Value::Type::kTimeval ? v.as_timeval() : Timeval{};
    } else {
      n[col - kTimevals] =
          (v.type() == Value::Type::kUint ? v.as_uint() : 0) & kMask[col - kTimevals];
    }
  }

  static constexpr std::uint32_t kAllColumns = (1u << kColumns) - 1;
  // What Dovecot's two payload items carry: "mail" the timevals and the
  // integer columns before catalog::kOldStatsMailColumns, "auth" the rest.
  static constexpr std::uint32_t kMailColumns = (1u << catalog::kOldStatsMailColumns) - 1;
  static constexpr std::uint32_t kAuthColumns = kAllColumns & ~kMailColumns;

  // diff = now - old per column (stats_diff), for the columns whose bit is
  // set in `present`; the others differ by nothing (stats_import() keeps the
  // stored value of a column the record lacks). Fails, naming the column, if
  // any present column shrank; `diff` is unspecified then.
  static Status Diff(const OldStatsVector& old, const OldStatsVector& now, OldStatsVector& diff,
                     std::uint32_t present = kAllColumns) {
    // Records carry whole items: those cases run as straight-line code with
    // no per-column test (the general loop cost ~19 instructions a column).
    constexpr std::size_t kMailInts = catalog::kOldStatsMailColumns - kTimevals;
    bool shrank;
    if (present == kAllColumns) {
      shrank = DiffTimevals(old, now, diff) | DiffInts<0, kColumns - kTimevals>(old, now, diff);
    } else if (present == kMailColumns) {
      shrank = DiffTimevals(old, now, diff) | DiffInts<0, kMailInts>(old, now, diff);
      std::fill(diff.n.begin() + kMailInts, diff.n.end(), 0);
    } else if (present == kAuthColumns) {
      diff = {};
      shrank = DiffInts<kMailInts, kColumns - kTimevals>(old, now, diff);
    } else {
      shrank = DiffEach(old, now, diff, present);
    }
    return shrank ? ShrankError(old, now, present) : Status::Ok();
  }

  // this += d (stats_add): integers add (u32 columns wrap at 2^32); timevals
  // add both parts and carry only when usec > 1000000.
  void Add(const OldStatsVector& d) {
    for (std::size_t i = 0; i < kTimevals; ++i) {
      tv[i].sec = Wrap(tv[i].sec, d.tv[i].sec, std::plus<>());
      tv[i].usec = Wrap(tv[i].usec, d.tv[i].usec, std::plus<>());
      if (tv[i].usec > 1'000'000) {
        tv[i].usec -= 1'000'000;
        tv[i].sec = Wrap(tv[i].sec, std::int64_t{1}, std::plus<>());
      }
    }
    for (std::size_t i = 0; i < n.size(); ++i) n[i] = (n[i] + d.n[i]) & kMask[i];
  }

  // Appends the column's text: u32/u64 decimal; timeval "<sec>.<usec>" with
  // usec NOT zero-padded, as Dovecot prints it ("%ld.%u").
  void AppendColumn(std::string& out, std::size_t col) const;
  // All columns, TAB-separated, no trailing TAB.
  void AppendAll(std::string& out) const;
  // The column as a number in base units (seconds for timevals).
  double ColumnAsDouble(std::size_t col) const;

  friend bool operator==(const OldStatsVector&, const OldStatsVector&) = default;

 private:
  // a OP b on the two's-complement 64 bits, as Dovecot's C gets them from the
  // machine: a payload is any bytes, and its timevals must wrap, not be
  // undefined (found by the old-stats fuzz target under UBSan).
  template <typename Op>
  static std::int64_t Wrap(std::int64_t a, std::int64_t b, Op op) {
    return static_cast<std::int64_t>(
        op(static_cast<std::uint64_t>(a), static_cast<std::uint64_t>(b)));
  }
  // now - old of timeval column i, in µs.
  static std::int64_t DiffUsecs(const OldStatsVector& old, const OldStatsVector& now,
                                std::size_t i) {
    const std::int64_t secs = Wrap(now.tv[i].sec, old.tv[i].sec, std::minus<>());
    return Wrap(Wrap(secs, std::int64_t{1'000'000}, std::multiplies<>()),
                Wrap(now.tv[i].usec, old.tv[i].usec, std::minus<>()), std::plus<>());
  }
  // Per integer column: all ones for u64, the low 32 bits for u32 columns,
  // which wrap at 2^32 as in Dovecot.
  static constexpr std::array<std::uint64_t, kColumns - kTimevals> kMask = [] {
    std::array<std::uint64_t, kColumns - kTimevals> m{};
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = catalog::kOldStatsFields[i + kTimevals].type == catalog::OldStatsType::kU32
                 ? 0xffffffffu
                 : ~std::uint64_t{0};
    }
    return m;
  }();
  // The timeval part of Diff() for all three; true if one shrank.
  static bool DiffTimevals(const OldStatsVector& old, const OldStatsVector& now,
                           OldStatsVector& diff) {
    bool shrank = false;
    for (std::size_t i = 0; i < kTimevals; ++i) shrank |= DiffTimeval(old, now, diff, i);
    return shrank;
  }
  static bool DiffTimeval(const OldStatsVector& old, const OldStatsVector& now,
                          OldStatsVector& diff, std::size_t i) {
    const std::int64_t us = DiffUsecs(old, now, i);
    // Most differences are below a second: spare the divisions.
    diff.tv[i] = us < 1'000'000 ? Timeval{0, us} : Timeval{us / 1'000'000, us % 1'000'000};
    return us < 0;
  }
  // The integer columns [From, To) of Diff(); true if one shrank.
  template <std::size_t From, std::size_t To>
  static bool DiffInts(const OldStatsVector& old, const OldStatsVector& now, OldStatsVector& diff) {
    bool shrank = false;
    for (std::size_t i = From; i < To; ++i) shrank |= DiffInt(old, now, diff, i);
    return shrank;
  }
  static bool DiffInt(const OldStatsVector& old, const OldStatsVector& now, OldStatsVector& diff,
                      std::size_t i) {
    diff.n[i] = now.n[i] - old.n[i];
    return now.n[i] < old.n[i];
  }
  // Diff() column by column, for any other set of columns.
  static bool DiffEach(const OldStatsVector& old, const OldStatsVector& now, OldStatsVector& diff,
                       std::uint32_t present) {
    diff = {};
    bool shrank = false;
    for (std::size_t i = 0; i < kTimevals; ++i) {
      if ((present >> i) & 1u) shrank |= DiffTimeval(old, now, diff, i);
    }
    for (std::size_t i = 0; i < now.n.size(); ++i) {
      if ((present >> (i + kTimevals)) & 1u) shrank |= DiffInt(old, now, diff, i);
    }
    return shrank;
  }
  // The error naming the first present column that shrank.
  static Status ShrankError(const OldStatsVector& old, const OldStatsVector& now,
                            std::uint32_t present);
};

// The column names joined by TAB (the stats part of every EXPORT header).
const std::string& OldStatsHeader();

}  // namespace mailscope::stats
