#!/usr/bin/env bash
# Installs what is missing, builds mailscope and runs the whole test suite:
#   1. debug build (-Werror): unit tests and the integration tests against real
#      Dovecot 2.3 and doveadm (those need root; they are skipped otherwise)
#   2. ASan+UBSan build: unit tests
#   3. libFuzzer targets, each run for a short time from its seed corpus
#   4. clang-format check; the catalog data is what tools/catalog/generate.py makes
# Set MAILSCOPE_FUZZ_SECONDS to change the fuzzing time per target (default 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
# Paths below the checkout are hashed relative to it, and the working directory
# not at all, so a fresh clone elsewhere reuses what an earlier build compiled.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
jobs=$(nproc)
step() { printf '\n==== %s\n' "$*"; }

step "format"
mapfile -t sources < <(git ls-files 'src/*.cc' 'src/*.h' 'fuzz/*.cc' 'bench/*.cc')
clang-format --dry-run --Werror "${sources[@]}"

step "catalog data"
# The committed data must be what the generator makes from the documents.
if [ -d ../shared/seeds ]; then
  python3 tools/catalog/generate.py --shared ../shared --check
else
  echo "../shared not beside the repository: generator check skipped"
fi

step "debug build"
cmake --preset debug -DMAILSCOPE_WERROR=ON >/dev/null
cmake --build --preset debug -j"$jobs"

step "unit and integration tests"
ctest --preset debug -j"$jobs"

step "ASan+UBSan build and unit tests"
cmake --preset asan -DMAILSCOPE_WERROR=ON >/dev/null
cmake --build --preset asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --preset asan -j"$jobs"

step "fuzzing"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs" --target fuzzers
seconds=${MAILSCOPE_FUZZ_SECONDS:-20}
for target in dovecot_old_stats old_stats_request config dovecot_conf filter dovecot_stats_writer \
    stats_reader dovecot_event_export; do
  work=$(mktemp -d)
  cp fuzz/corpus/"$target"/* "$work"/
  echo "fuzz $target for ${seconds}s"
  build/fuzz/fuzz/"$target"_fuzz -max_total_time="$seconds" -max_len=9000 -print_final_stats=0 \
    -artifact_prefix="$work/" "$work" >"$work/log" 2>&1 || { tail -40 "$work/log"; exit 1; }
  rm -rf "$work"
done

step "all tests passed"
