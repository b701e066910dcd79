#!/usr/bin/env bash
# Hostile local clients: memory and responsiveness of `mailscope serve --run-dir DIR` while
# CLIENTS (8000) stats-writer clients each hold HALF_BYTES (512) bytes of an unfinished line,
# one client pipelines old-stats `EXPORT global` requests without reading a reply, and one
# stats-writer client sends a LINE_MIB (64) MiB line (bench/hostile_clients.py does the
# clients and the measuring); then HTTP_CLIENTS (2000) HTTP connections each hold half a
# request header. Passes when the server's peak RSS stays under 128 MiB and
# `GET /healthz` and `doveadm oldstats dump -s DIR/old-stats global` each answer within 2 s.
#
# Environment: MAILSCOPE (the binary, default build/release/src/app/mailscope),
# CLIENTS, HALF_BYTES, LINE_MIB, HTTP_CLIENTS, HTTP (127.0.0.1:19391), KEEP_WORKDIR=1.
# Needs doveadm (dovecot-core). Everything it starts is stopped by PID on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MAILSCOPE=${MAILSCOPE:-$here/../build/release/src/app/mailscope}
CLIENTS=${CLIENTS:-8000}
HALF_BYTES=${HALF_BYTES:-512}
LINE_MIB=${LINE_MIB:-64}
HTTP_CLIENTS=${HTTP_CLIENTS:-2000}
HTTP=${HTTP:-127.0.0.1:19391}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
WORK=$(mktemp -d /tmp/mailscope-hostile.XXXXXX)
DOVECOT_MASTER_PID="" DOVECOT_CHILD_PIDS="" MS_PID=""
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
trap cleanup EXIT

# The server may take as many descriptors as the hard limit allows.
ulimit -n "$(ulimit -Hn)"
log "mailscope: $MAILSCOPE ($("$MAILSCOPE" --version 2>/dev/null || echo unknown version))"
"$MAILSCOPE" serve --run-dir "$WORK/run" --data-dir "$WORK/data" --http "$HTTP" \
  >"$WORK/serve.log" 2>&1 &
MS_PID=$!
for _ in $(seq 100); do
  [[ -S $WORK/run/old-stats && -S $WORK/run/stats-writer ]] && break
  sleep 0.1
done
status=0
python3 "$here/hostile_clients.py" "$MS_PID" "$WORK/run" "$HTTP" "$CLIENTS" "$HALF_BYTES" "$LINE_MIB" \
  "$HTTP_CLIENTS" ||
  status=$?
curl -fsS "http://$HTTP/metrics" | grep -E '^mailscope_listener_(refused|closed|connections|input_buffered)' |
  grep -v ' 0$' || true
exit $status
