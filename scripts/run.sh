#!/usr/bin/env bash
# Installs what is missing, builds mailscope (release) and runs `mailscope serve`
# in the foreground on its embedded defaults. Extra arguments go to `serve`,
# e.g. scripts/run.sh --run-dir ./run --http 127.0.0.1:9390
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
export CCACHE_BASEDIR="$root"
cmake --preset release -DMAILSCOPE_TESTS=OFF -DMAILSCOPE_BENCH=OFF >/dev/null
cmake --build --preset release -j"$(nproc)"
exec build/release/src/app/mailscope serve "$@"
