#!/usr/bin/env bash
# Installs what is missing, builds mailscope and runs the whole test suite:
#   1. debug build (-Werror): unit tests and the integration tests against the real
#      peers: Dovecot 2.3 and doveadm, Exim 4.96, PostgreSQL 15, Prometheus (those need
#      root; they are skipped otherwise)
#   2. ASan+UBSan build: unit tests
#   3. libFuzzer targets, each run for a short time from its seed corpus
#   4. clang-format check; the catalog data is what tools/catalog/generate.py makes
# Set MAILSCOPE_FUZZ_SECONDS to change the fuzzing time per target (default 20).
# MAILSCOPE_REQUIRE_INTEGRATION=1 (.ci/run sets it) makes every skip a failure: an
# integration test without root or a peer (Dovecot, doveadm, promtool, prometheus,
# tmux), a unit test without its tool or the shared documents, and a missing shared
# folder for the catalog check. Otherwise those are skipped with a message.
# The shared folder (seeds/, reference/) is $MAILSCOPE_SHARED_DIR if set, else
# ../shared beside this checkout, else ../shared beside the origin repository when
# this is a clone of a local one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
# Paths below the checkout are hashed relative to it, and the working directory
# not at all, so a fresh clone elsewhere reuses what an earlier build compiled.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
jobs=$(nproc)
step() { printf '\n==== %s\n' "$*"; }
required=0
if [ "${MAILSCOPE_REQUIRE_INTEGRATION:-}" = "1" ]; then required=1; fi
# A skip: a message, or the end of the run under MAILSCOPE_REQUIRE_INTEGRATION=1.
skip() {
  if [ "$required" -eq 1 ]; then
    echo "FAIL: $* (a skip fails under MAILSCOPE_REQUIRE_INTEGRATION=1)" >&2
    exit 1
  fi
  echo "SKIP: $*"
}
# ctest with its output in $2; under MAILSCOPE_REQUIRE_INTEGRATION=1 a skipped test
# fails the run, except those named in the remaining arguments.
run_ctest() {
  local preset=$1 log=$2
  shift 2
  ctest --preset "$preset" -j"$jobs" 2>&1 | tee "$log"
  [ "$required" -eq 1 ] || return 0
  local skipped
  skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$log")
  for exempt in "$@"; do skipped=$(grep -vxF "$exempt" <<<"$skipped" || true); done
  if [ -n "$skipped" ]; then
    printf 'FAIL: skipped under MAILSCOPE_REQUIRE_INTEGRATION=1:\n%s\n' "$skipped" >&2
    exit 1
  fi
}

shared=""
if [ -n "${MAILSCOPE_SHARED_DIR:-}" ]; then
  shared=$MAILSCOPE_SHARED_DIR
elif [ -d "$root/../shared" ]; then
  shared=$root/../shared
else
  origin=$(git config remote.origin.url || true)
  origin=${origin#file://}
  if [ -n "$origin" ] && [ -d "$origin" ] && [ -d "$origin/../shared" ]; then
    shared=$origin/../shared
  fi
fi
if [ -n "$shared" ] && [ ! -d "$shared" ]; then
  echo "test.sh: MAILSCOPE_SHARED_DIR=$shared is not a directory" >&2
  exit 2
fi
if [ -n "$shared" ]; then
  shared=$(cd "$shared" && pwd -P)
  echo "shared documents: $shared"
fi

step "format"
mapfile -t sources < <(git ls-files 'src/*.cc' 'src/*.h' 'fuzz/*.cc' 'bench/*.cc')
clang-format --dry-run --Werror "${sources[@]}"

step "catalog data"
# The committed data must be what the generator makes from the documents.
if [ -n "$shared" ] && [ -d "$shared/seeds" ]; then
  python3 tools/catalog/generate.py --shared "$shared" --check
else
  skip "no shared folder with seeds/ (set MAILSCOPE_SHARED_DIR): generator check skipped"
fi
shared_flag=()
if [ -n "$shared" ]; then shared_flag=(-DMAILSCOPE_SHARED_DIR="$shared"); fi

step "debug build"
cmake --preset debug -DMAILSCOPE_WERROR=ON "${shared_flag[@]}" >/dev/null
cmake --build --preset debug -j"$jobs"

step "unit and integration tests"
logs=$(mktemp -d)
run_ctest debug "$logs/debug"

step "ASan+UBSan build and unit tests"
cmake --preset asan -DMAILSCOPE_WERROR=ON "${shared_flag[@]}" >/dev/null
cmake --build --preset asan -j"$jobs"
# Heap allocations are not counted under ASan (core/allocation_counter_testing.h):
# the tests that show a steady state allocates nothing skip there by design.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest asan "$logs/asan" \
  AllocationCounterTest.CountsEveryNew \
  FilterMatchTest.MatchingDoesNotAllocate \
  MetricsEngineTest.SteadyStateAllocatesNothing \
  EventFormatTest.SteadyStateAllocatesNothing \
  DovecotEventExportTest.SteadyStateAllocatesNothing \
  LogTimeParserTest.ParsingAllocatesNothing \
  StalwartWebhookTest.DecodingAllocatesNothingOnceNamesAreKnown
rm -rf "$logs"

step "fuzzing"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs" --target fuzzers
seconds=${MAILSCOPE_FUZZ_SECONDS:-20}
for target in base64 dovecot_old_stats old_stats_request config dovecot_conf filter dovecot_stats_writer \
    stats_reader dovecot_event_export exim_event records log_time qmail_log stalwart_log \
    stalwart_webhook; do
  work=$(mktemp -d)
  cp fuzz/corpus/"$target"/* "$work"/
  echo "fuzz $target for ${seconds}s"
  build/fuzz/fuzz/"$target"_fuzz -max_total_time="$seconds" -max_len=9000 -print_final_stats=0 \
    -artifact_prefix="$work/" "$work" >"$work/log" 2>&1 || { tail -40 "$work/log"; exit 1; }
  rm -rf "$work"
done

step "all tests passed"
