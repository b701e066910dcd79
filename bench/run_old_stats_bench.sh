#!/usr/bin/env bash
# Old-stats ingest benchmark.
#
# One pre-generated stream of mail-process updates (bench/old_stats_load.cc) is written, in one
# run and on the same machine, into the old-stats-mail FIFO of
#   a) Dovecot 2.3's own old-stats process (a private instance: own base_dir, no protocols), and
#   b) mailscope (`mailscope serve --run-dir DIR`),
# both under the same old-stats memory limit. The writer uses blocking writes, so each server is
# fed as fast as it reads and both see exactly the same bytes. For each server the CPU time
# (utime+stime of its process, all threads) and peak RSS (VmHWM) are read from /proc, and
# `doveadm oldstats dump global` must show every login, command and byte of the stream.
#
# Needs root for Dovecot's master. Everything it starts is stopped by PID on exit.
#
# Environment (all optional):
#   MAILSCOPE       mailscope binary; unset or missing: only the Dovecot side runs
#   MAILSCOPE_SERVE_ARGS  extra `mailscope serve` arguments (--http 127.0.0.1:0: the HTTP
#                   listener on a free port, so the default one cannot clash with others)
#   RECORDS         records in the stream (2000000)
#   USERS DOMAINS IPS CONCURRENCY SEED   generator shape (10000 100 2000 500 1)
#   MEMORY_LIMIT    old_stats_memory_limit for Dovecot and [old_stats] memory_limit (16M)
#   STREAM_FILE     replay this file instead of generating one (raw lines or fifotap capture)
#   OLD_STATS_LOAD  old_stats_load binary; unset: built here with g++ -O2
#   WRITE_CHUNK     bytes per write(), rounded to whole lines (1048576); 1 = one record per
#                   write(), the way Dovecot's own writers send
#   SKIP_DOVECOT=1  run only the mailscope side
#   DRAIN_TIMEOUT   seconds to wait for a server to account the whole stream (900)
#   KEEP_WORKDIR=1  keep the work directory (configs, logs, stream) for inspection
set -euo pipefail
export LC_ALL=C

RECORDS=${RECORDS:-2000000}
USERS=${USERS:-10000}
DOMAINS=${DOMAINS:-100}
IPS=${IPS:-2000}
CONCURRENCY=${CONCURRENCY:-500}
SEED=${SEED:-1}
MEMORY_LIMIT=${MEMORY_LIMIT:-16M}
MAILSCOPE=${MAILSCOPE:-}
MAILSCOPE_SERVE_ARGS=${MAILSCOPE_SERVE_ARGS---http 127.0.0.1:0}
STREAM_FILE=${STREAM_FILE:-}
OLD_STATS_LOAD=${OLD_STATS_LOAD:-}
WRITE_CHUNK=${WRITE_CHUNK:-1048576}
SKIP_DOVECOT=${SKIP_DOVECOT:-0}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLK_TCK=$(getconf CLK_TCK)

if [[ $(id -u) -ne 0 && $SKIP_DOVECOT != 1 ]]; then
  echo "run_old_stats_bench.sh: needs root (it starts a private Dovecot instance)" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/old-stats-bench.XXXXXX)
chmod 755 "$WORK"  # Dovecot's unprivileged processes must reach base_dir
DOVECOT_MASTER_PID=""
DOVECOT_CHILD_PIDS=""
MS_PID=""

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the load generator and the stream ------------------------------------------------------
if [[ -z $OLD_STATS_LOAD ]]; then
  OLD_STATS_LOAD=$WORK/old_stats_load
  g++ -std=c++20 -O2 -o "$OLD_STATS_LOAD" "$BENCH_DIR/old_stats_load.cc"
fi

# key=value from the generator's summary line
summary_value() { tr ' ' '\n' <"$WORK/stream.summary" | sed -n "s/^$1=//p"; }

if [[ -n $STREAM_FILE ]]; then
  STREAM=$STREAM_FILE
  GEN_CMD="$OLD_STATS_LOAD --in $STREAM_FILE --write-file /dev/null"
  "$OLD_STATS_LOAD" --in "$STREAM_FILE" --write-file /dev/null >"$WORK/stream.summary"
else
  STREAM=$WORK/stream.txt
  GEN_CMD="old_stats_load --records $RECORDS --users $USERS --domains $DOMAINS --ips $IPS"
  GEN_CMD+=" --concurrency $CONCURRENCY --seed $SEED"
  log "generating $RECORDS records"
  "$OLD_STATS_LOAD" --records "$RECORDS" --users "$USERS" --domains "$DOMAINS" --ips "$IPS" \
    --concurrency "$CONCURRENCY" --seed "$SEED" --write-file "$STREAM" >"$WORK/stream.summary"
fi
log "stream: $(cat "$WORK/stream.summary")"
EXPECT_RECORDS=$(summary_value records)
EXPECT_BYTES=$(summary_value bytes)
EXPECT_LOGINS=$(summary_value expect_num_logins)
EXPECT_CMDS=$(summary_value expect_num_cmds)
EXPECT_CONNECTED=$(($(summary_value connect) - $(summary_value disconnect)))
# Only known for generated streams (sums of the sessions' final values).
EXPECT_READ_BYTES=$(summary_value expect_read_bytes)
EXPECT_AUTH_SUCCESSES=$(summary_value expect_auth_successes)

# --- measuring one server -------------------------------------------------------------------
DOVECOT_CONF=$WORK/dovecot/dovecot.conf  # doveadm reads it even when only Dovecot's side is off
mkdir -p "$WORK/dovecot/run" "$WORK/dovecot/state"
chmod 755 "$WORK/dovecot" "$WORK/dovecot/run"
cat >"$DOVECOT_CONF" <<EOF
# Private Dovecot instance for the old-stats ingest benchmark: no protocols, loopback only.
instance_name = old-stats-bench-$$
base_dir = $WORK/dovecot/run
state_dir = $WORK/dovecot/state
log_path = $WORK/dovecot/dovecot.log
listen = 127.0.0.1
protocols = none
ssl = no
old_stats_memory_limit = $MEMORY_LIMIT
service old-stats {
  process_min_avail = 1
  fifo_listener old-stats-mail {
    mode = 0666
  }
}
EOF

global_dump() { doveadm -c "$DOVECOT_CONF" oldstats dump -s "$1" global 2>/dev/null || true; }
# Column $2 of the single data row of a `dump global` output in $1.
dump_field() {
  awk -F'\t' -v want="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == want) col = i; next }
                           NR == 2 && col { print $col }' <<<"$1"
}

# measure LABEL PID FIFO SOCKET: writes the stream, waits until the server has accounted it,
# and appends one result row to $WORK/results.
measure() {
  local label=$1 pid=$2 fifo=$3 sock=$4
  local u0 s0 u1 s1 n0 n1 t0 t1 hwm dump logins cmds connected deadline status=ok notes=""
  read -r u0 s0 < <(proc_cpu_ticks "$pid")
  n0=$(proc_sched_ns "$pid")
  t0=$(date +%s.%N)
  log "$label: writing $EXPECT_RECORDS records into $fifo"
  if ! "$OLD_STATS_LOAD" --in "$STREAM" --out "$fifo" --chunk-bytes "$WRITE_CHUNK" \
    >"$WORK/$label.writer"; then
    status=writer-failed
  fi
  deadline=$((SECONDS + DRAIN_TIMEOUT))
  while :; do
    dump=$(global_dump "$sock")
    logins=$(dump_field "$dump" num_logins)
    cmds=$(dump_field "$dump" num_cmds)
    [[ $logins == "$EXPECT_LOGINS" && $cmds == "$EXPECT_CMDS" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      status=died
      break
    fi
    if ((SECONDS >= deadline)); then
      status=timeout
      break
    fi
    sleep 0.2
  done
  t1=$(date +%s.%N)
  if [[ $status != died ]]; then
    read -r u1 s1 < <(proc_cpu_ticks "$pid")
    n1=$(proc_sched_ns "$pid")
    hwm=$(proc_status_kb "$pid" VmHWM)
  else
    u1=$u0 s1=$s0 n1=$n0 hwm=0
  fi
  connected=$(dump_field "$dump" num_connected_sessions)
  notes="num_logins=${logins:-?}/$EXPECT_LOGINS num_cmds=${cmds:-?}/$EXPECT_CMDS"
  notes+=" connected=${connected:-?}/$EXPECT_CONNECTED"
  [[ $connected == "$EXPECT_CONNECTED" ]] || status=mismatch
  if [[ -n $EXPECT_READ_BYTES ]]; then
    local rb auth
    rb=$(dump_field "$dump" read_bytes)
    auth=$(dump_field "$dump" auth_successes)
    notes+=" read_bytes=${rb:-?}/$EXPECT_READ_BYTES auth_successes=${auth:-?}/$EXPECT_AUTH_SUCCESSES"
    [[ $rb == "$EXPECT_READ_BYTES" && $auth == "$EXPECT_AUTH_SUCCESSES" ]] || status=mismatch
  fi
  [[ $logins == "$EXPECT_LOGINS" && $cmds == "$EXPECT_CMDS" ]] || status=${status/ok/mismatch}
  echo "$label $EXPECT_RECORDS $((u1 - u0)) $((s1 - s0)) $hwm $t0 $t1 $((n1 - n0)) $status $notes" \
    >>"$WORK/results"
  log "$label: $status $notes"
}

# --- a) Dovecot's own old-stats ---------------------------------------------------------------
DOVECOT_VERSION=$(dovecot --version)
if [[ $SKIP_DOVECOT != 1 ]]; then
  log "starting Dovecot $DOVECOT_VERSION (old_stats_memory_limit = $MEMORY_LIMIT)"
  dovecot -c "$DOVECOT_CONF"
  for _ in $(seq 100); do
    [[ -s $WORK/dovecot/run/master.pid ]] && break
    sleep 0.1
  done
  DOVECOT_MASTER_PID=$(cat "$WORK/dovecot/run/master.pid")
  OLD_STATS_PID=""
  for _ in $(seq 100); do
    OLD_STATS_PID=$(pgrep -P "$DOVECOT_MASTER_PID" -f '/old-stats$' || true)
    [[ -n $OLD_STATS_PID && -p $WORK/dovecot/run/old-stats-mail ]] && break
    sleep 0.1
  done
  [[ -n $OLD_STATS_PID ]] || { echo "old-stats process did not start" >&2; exit 1; }
  DOVECOT_CHILD_PIDS=$(pgrep -P "$DOVECOT_MASTER_PID" | tr '\n' ' ')
  measure dovecot "$OLD_STATS_PID" "$WORK/dovecot/run/old-stats-mail" "$WORK/dovecot/run/old-stats"
  DOVECOT_LOG_PROBLEMS=$(grep -cE 'old-stats: (Warning|Error|Panic|Fatal)' \
    "$WORK/dovecot/dovecot.log" || true)
  log "dovecot: $DOVECOT_LOG_PROBLEMS warning/error lines from old-stats in its log"
  stop_dovecot
fi

# --- b) mailscope ---------------------------------------------------------------------------
MS_NOTE=""
if [[ -z $MAILSCOPE ]]; then
  MS_NOTE="MAILSCOPE is unset: mailscope not measured"
elif [[ ! -x $MAILSCOPE ]]; then
  MS_NOTE="MAILSCOPE=$MAILSCOPE is not an executable: mailscope not measured"
else
  MS_DIR=$WORK/mailscope
  mkdir -p "$MS_DIR/run"
  chmod 755 "$MS_DIR" "$MS_DIR/run"
  cat >"$MS_DIR/mailscope.toml" <<EOF
[old_stats]
memory_limit = "$MEMORY_LIMIT"
EOF
  log "starting $MAILSCOPE serve $MAILSCOPE_SERVE_ARGS (memory_limit = $MEMORY_LIMIT)"
  # shellcheck disable=SC2086  # MAILSCOPE_SERVE_ARGS is a list of words
  "$MAILSCOPE" serve --run-dir "$MS_DIR/run" --config "$MS_DIR/mailscope.toml" \
    $MAILSCOPE_SERVE_ARGS >"$MS_DIR/stdout" 2>"$MS_DIR/stderr" &
  MS_PID=$!
  for _ in $(seq 200); do
    [[ -p $MS_DIR/run/old-stats-mail && -S $MS_DIR/run/old-stats ]] && break
    kill -0 "$MS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 "$MS_PID" 2>/dev/null; then
    rc=0
    wait "$MS_PID" || rc=$?
    MS_PID=""
    echo "mailscope serve exited with status $rc before listening; its stderr:" >&2
    tail -n 20 "$MS_DIR/stderr" >&2
    MS_NOTE="mailscope serve exited ($rc) at start-up (config [old_stats] memory_limit rejected?)"
  elif [[ ! -p $MS_DIR/run/old-stats-mail || ! -S $MS_DIR/run/old-stats ]]; then
    MS_NOTE="mailscope did not create run-dir/old-stats-mail and run-dir/old-stats in 20 s"
    stop_mailscope
  else
    measure mailscope "$MS_PID" "$MS_DIR/run/old-stats-mail" "$MS_DIR/run/old-stats"
    stop_mailscope
  fi
fi

# --- report ---------------------------------------------------------------------------------
echo
echo "old-stats ingest: $EXPECT_RECORDS records, $EXPECT_BYTES bytes, memory limit $MEMORY_LIMIT"
echo "stream: $GEN_CMD"
echo "writer: old_stats_load --in STREAM --out FIFO --chunk-bytes $WRITE_CHUNK (blocking writes)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
  "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
echo "dovecot: $DOVECOT_VERSION"
if [[ -n $MAILSCOPE && -x $MAILSCOPE ]]; then
  echo "mailscope: $MAILSCOPE ($("$MAILSCOPE" --version 2>/dev/null || true))"
fi
[[ -n $MS_NOTE ]] && echo "mailscope: $MS_NOTE"
touch "$WORK/results"
awk -v tck="$CLK_TCK" '
  BEGIN {
    printf "%-10s %9s %8s %8s %8s %8s %14s %10s %10s %8s  %s\n", "server", "records", "cpu_s",
           "user_s", "sys_s", "sched_s", "records/cpu_s", "us/record", "VmHWM_MiB", "wall_s", "check"
  }
  {
    cpu = ($3 + $4) / tck
    rate[$1] = cpu > 0 ? $2 / cpu : 0
    printf "%-10s %9d %8.2f %8.2f %8.2f %8.3f %14.0f %10.3f %10.1f %8.2f  %s\n", $1, $2, cpu,
           $3 / tck, $4 / tck, $8 / 1e9, rate[$1], (cpu > 0 ? cpu * 1e6 / $2 : 0), $5 / 1024,
           $7 - $6, $9
    note[$1] = ""
    for (i = 10; i <= NF; i++) note[$1] = note[$1] " " $i
    order[++n] = $1
  }
  END {
    for (i = 1; i <= n; i++) printf "  %s:%s\n", order[i], note[order[i]]
    if (rate["dovecot"] > 0 && rate["mailscope"] > 0)
      printf "ratio mailscope/dovecot records per CPU-second: %.1fx (goal: at least 10x)\n",
             rate["mailscope"] / rate["dovecot"]
  }' "$WORK/results"
grep -q ' ok ' "$WORK/results" && ! grep -qv ' ok ' "$WORK/results"
