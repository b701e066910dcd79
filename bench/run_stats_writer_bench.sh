#!/usr/bin/env bash
# Dovecot 2.3 stats-writer ingest benchmark.
#
# One pre-generated stats-writer stream (bench/stats_writer_load.cc: several connections, each
# one Dovecot process's VERSION, CATEGORY, BEGIN, UPDATE, EVENT and END lines) is replayed, in
# one run and on the same machine, into the stats-writer socket of
#   a) Dovecot 2.3's own `stats` process (a private instance: own base_dir, protocols = none,
#      no inet listeners), and
#   b) mailscope (`mailscope serve --run-dir DIR`),
# once with the same 12 metrics defined on both (through `doveadm stats add`, which talks to
# either server's stats-reader socket) and once with none. Each server is started fresh for each
# run. The writer waits for the server's VERSION and FILTER as a Dovecot client does, then sends
# everything with blocking writes whatever the FILTER says, so each server is fed as fast as it
# reads and both see exactly the same bytes; it returns once the server has closed every
# connection after their EOF, i.e. consumed the whole stream. For each server the CPU time
# (utime+stime of its process, all threads), the minor page faults during the replay and the
# peak RSS (VmHWM) are read from /proc.
#
# Checks (any failure makes the script exit non-zero): with metrics, `doveadm stats dump` on
# each server must show every metric's count, a few sums and the histograms' bucket totals as
# counted in the stream, and the two servers' dumps (count sum min max of every line) must be
# equal; both servers must send the same FILTER text; Dovecot's log must hold no warning or
# error from stats; mailscope must have counted every named event and rejected no line.
#
# Needs root for Dovecot's master. Everything it starts is stopped by PID on exit.
#
# Environment (all optional):
#   MAILSCOPE       mailscope binary; unset or missing: only the Dovecot side runs
#   MAILSCOPE_SERVE_ARGS  extra `mailscope serve` arguments (--http 127.0.0.1:0: the HTTP
#                   listener on a free port, so the default one cannot clash with others)
#   EVENTS          EVENT lines in the stream, at least (1000000)
#   CONNECTIONS CONCURRENCY SEED   generator shape (8 200 1)
#   MIX             what the sessions do: capture, deep (long parent chains), short (auth and
#                   short IMAP commands); see stats_writer_load --help (capture)
#   METRIC_SETS     which runs, in order: "12" (the 12 metrics), "0" (none) ("12 0")
#   STREAM_FILE     replay this file instead of generating one (a stats_writer_load --write-file
#                   stream, or a unixproxy capture such as stats-writer-wire.txt)
#   STATS_WRITER_LOAD  stats_writer_load binary; unset: built here with g++ -O2
#   WRITE_CHUNK     bytes per write(), rounded to whole lines (1048576)
#   SKIP_DOVECOT=1  run only the mailscope side
#   DRAIN_TIMEOUT   seconds a server may take to consume the stream (900)
#   KEEP_WORKDIR=1  keep the work directory (configs, logs, dumps, stream) for inspection
set -euo pipefail
export LC_ALL=C

EVENTS=${EVENTS:-1000000}
CONNECTIONS=${CONNECTIONS:-8}
CONCURRENCY=${CONCURRENCY:-200}
SEED=${SEED:-1}
MIX=${MIX:-capture}
METRIC_SETS=${METRIC_SETS:-12 0}
MAILSCOPE=${MAILSCOPE:-}
MAILSCOPE_SERVE_ARGS=${MAILSCOPE_SERVE_ARGS---http 127.0.0.1:0}
STREAM_FILE=${STREAM_FILE:-}
STATS_WRITER_LOAD=${STATS_WRITER_LOAD:-}
WRITE_CHUNK=${WRITE_CHUNK:-1048576}
SKIP_DOVECOT=${SKIP_DOVECOT:-0}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLK_TCK=$(getconf CLK_TCK)

if [[ $(id -u) -ne 0 && $SKIP_DOVECOT != 1 ]]; then
  echo "run_stats_writer_bench.sh: needs root (it starts a private Dovecot instance)" >&2
  exit 2
fi
for set in $METRIC_SETS; do
  [[ $set == 12 || $set == 0 ]] || { echo "METRIC_SETS: \"$set\" is not 12 or 0" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/stats-writer-bench.XXXXXX)
chmod 755 "$WORK"  # Dovecot's unprivileged processes must reach base_dir
DOVECOT_MASTER_PID=""
DOVECOT_CHILD_PIDS=""
MS_PID=""

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the load generator and the stream ------------------------------------------------------
if [[ -z $STATS_WRITER_LOAD ]]; then
  STATS_WRITER_LOAD=$WORK/stats_writer_load
  g++ -std=c++20 -O2 -pthread -o "$STATS_WRITER_LOAD" "$BENCH_DIR/stats_writer_load.cc"
fi

if [[ -n $STREAM_FILE ]]; then
  STREAM=$STREAM_FILE
  GEN_CMD="stats_writer_load --in $STREAM_FILE"
  "$STATS_WRITER_LOAD" --in "$STREAM_FILE" --write-file /dev/null >"$WORK/stream.summary"
else
  STREAM=$WORK/stream
  GEN_CMD="stats_writer_load --events $EVENTS --connections $CONNECTIONS"
  GEN_CMD+=" --concurrency $CONCURRENCY --seed $SEED --mix $MIX"
  log "generating a stream of $EVENTS events ($MIX mix)"
  "$STATS_WRITER_LOAD" --events "$EVENTS" --connections "$CONNECTIONS" \
    --concurrency "$CONCURRENCY" --seed "$SEED" --mix "$MIX" --write-file "$STREAM" \
    >"$WORK/stream.summary"
fi
log "stream: $(cat "$WORK/stream.summary")"
# key=value from the generator's summary line (0 when absent)
summary_value() {
  local v
  v=$(tr ' ' '\n' <"$WORK/stream.summary" | sed -n "s/^$1=//p")
  echo "${v:-0}"
}
EXPECT_EVENTS=$(summary_value events)
EXPECT_NAMED=$(summary_value named_events)
EXPECT_LINES=$(summary_value lines)
EXPECT_BYTES=$(summary_value bytes)
EXPECT_IMAP=$(summary_value ev_imap_command_finished)
EXPECT_AUTH=$(summary_value ev_auth_request_finished)
EXPECT_AUTH_OK=$(summary_value auth_success)

# --- the 12 metrics ---------------------------------------------------------------------------
# The metric { } blocks of the capture instance (reference/dovecot-captures/dovecot.conf), whose
# perf-only run is the issue's "12 metrics", without their exporters:
#   name | fields | group_by | filter | description | expected count (summary key or expression)
METRICS=(
  "imap_command|bytes_in bytes_out|cmd_name tagged_reply_state|event=imap_command_finished|IMAP commands by name and reply state|ev_imap_command_finished"
  "imap_command_tab|||event=imap_command_finished||ev_imap_command_finished"
  "imap_command_special|||event=imap_command_finished AND (cmd_name=SEARCH OR cmd_name=STORE OR tagged_reply_state=BAD OR tagged_reply_state=NO)|selected IMAP commands with all fields|imap_special"
  "imap_command_duration||duration:exponential:1:5:10|event=imap_command_finished|IMAP command duration histogram|ev_imap_command_finished"
  "imap_command_bytes_out||bytes_out:linear:0:1000:250|event=imap_command_finished||ev_imap_command_finished"
  "auth_success|||event=auth_request_finished AND success=yes|successful authentications|auth_success"
  "auth_failure|||event=auth_request_finished AND NOT success=yes|failed authentications|=$((EXPECT_AUTH - EXPECT_AUTH_OK))"
  "auth_client_request||mechanism|event=auth_client_request_finished||ev_auth_client_request_finished"
  "mail_delivery|message_size message_vsize||event=mail_delivery_finished|LMTP deliveries|ev_mail_delivery_finished"
  "smtp_server_command||cmd_name status_code|event=smtp_server_command_finished||ev_smtp_server_command_finished"
  "mail_user_session|utime stime|service|event=mail_user_session_finished||ev_mail_user_session_finished"
  "storage_mail_opened|||category=storage AND event=mail_opened||storage_mail_opened"
)
# metric field summary-key: sums that must match exactly
SUMS=(
  "imap_command duration imap_duration_sum"
  "imap_command bytes_in imap_bytes_in_sum"
  "imap_command bytes_out imap_bytes_out_sum"
  "mail_delivery message_size delivery_size_sum"
)

# A private Dovecot config; doveadm reads it even when only mailscope runs.
write_dovecot_conf() {
  local dir=$1
  mkdir -p "$dir/run" "$dir/state"
  chmod 755 "$dir" "$dir/run"
  cat >"$dir/dovecot.conf" <<EOF
# Private Dovecot instance for the stats-writer ingest benchmark: only its stats service,
# no protocols, no inet listeners.
instance_name = stats-writer-bench-$$-$(basename "$dir")
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
listen = 127.0.0.1
protocols = none
ssl = no
service stats {
  process_min_avail = 1
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
}

# add_metrics CONF [DOVEADM-OPTION...]: the 12 metrics through the server's stats-reader.
add_metrics() {
  local conf=$1 def name fields group_by filter description expect
  shift
  for def in "${METRICS[@]}"; do
    IFS='|' read -r name fields group_by filter description expect <<<"$def"
    local args=()
    [[ -n $description ]] && args+=(--description "$description")
    [[ -n $fields ]] && args+=(--fields "$fields")
    [[ -n $group_by ]] && args+=(--group-by "$group_by")
    if ! doveadm -c "$conf" "$@" stats add "${args[@]}" "$name" "$filter" \
      >>"$WORK/doveadm.log" 2>&1; then
      echo "doveadm stats add $name failed:" >&2
      tail -n 5 "$WORK/doveadm.log" >&2
      return 1
    fi
  done
  # Servers push the new FILTER to writers a second after a change; let that pass first.
  sleep 1.5
}


# dump_value DUMP METRIC FIELD COLUMN: one value of a `doveadm stats dump -f "count sum min max"`
dump_value() {
  awk -F'\t' -v m="$2" -v f="$3" -v c="$4" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == m && $2 == f { print $(col[c]); found = 1; exit }
    END { if (!found) print "missing" }' "$1"
}
# Sum of the counts of METRIC's sub-metrics at depth 1 whose names start with METRIC_PREFIX.
bucket_total() {
  awk -F'\t' -v p="$2" 'NR > 1 && $2 == "duration" && index($1, p) == 1 { s += $3 }
                        END { print s + 0 }' "$1"
}

# check_dump LABEL DUMP: the metrics' counts and sums against the stream; appends notes.
check_dump() {
  local label=$1 dump=$2 def name fields group_by filter description expect want got bad=0
  for def in "${METRICS[@]}"; do
    IFS='|' read -r name fields group_by filter description expect <<<"$def"
    if [[ $expect == =* ]]; then want=${expect#=}; else want=$(summary_value "$expect"); fi
    got=$(dump_value "$dump" "$name" duration count)
    if [[ $got != "$want" ]]; then
      echo "$label: $name count $got, expected $want" >>"$WORK/check-failures"
      bad=1
    fi
  done
  local row metric field key
  for row in "${SUMS[@]}"; do
    read -r metric field key <<<"$row"
    want=$(summary_value "$key")
    got=$(dump_value "$dump" "$metric" "$field" sum)
    if [[ $got != "$want" ]]; then
      echo "$label: $metric $field sum $got, expected $want" >>"$WORK/check-failures"
      bad=1
    fi
  done
  for metric in imap_command_duration imap_command_bytes_out; do
    got=$(bucket_total "$dump" "${metric}_")
    if [[ $got != "$EXPECT_IMAP" ]]; then
      echo "$label: $metric buckets hold $got events, expected $EXPECT_IMAP" >>"$WORK/check-failures"
      bad=1
    fi
  done
  return $bad
}

# mailscope's own counters on /metrics: every named event counted, nothing rejected.
check_mailscope_counters() {
  local label=$1 port=$2 page events rejected
  page=$(curl -sf "http://127.0.0.1:$port/metrics") || {
    echo "$label: GET /metrics failed" >>"$WORK/check-failures"
    return 1
  }
  events=$(awk '/^mailscope_events_total\{/ && /source="dovecot"/ { s += $NF } END { print s + 0 }' \
    <<<"$page")
  rejected=$(awk '/^mailscope_ingest_rejected_total\{/ && /source="dovecot"/ { s += $NF }
                  END { print s + 0 }' <<<"$page")
  echo "mailscope_events_total=$events/$EXPECT_NAMED rejected=$rejected"
  if [[ $events != "$EXPECT_NAMED" || $rejected != 0 ]]; then
    echo "$label: mailscope counted $events of $EXPECT_NAMED named events, rejected $rejected" \
      >>"$WORK/check-failures"
    return 1
  fi
}

# measure LABEL SET PID SOCKET READER_SOCKET: replays the stream, appends one result row to
# $WORK/results.
measure() {
  local label=$1 set=$2 pid=$3 sock=$4 reader=$5
  local u0 s0 u1 s1 n0 n1 f0 f1 hwm status=ok notes="" replay_s=0
  read -r u0 s0 < <(proc_cpu_ticks "$pid")
  n0=$(proc_sched_ns "$pid")
  f0=$(proc_minor_faults "$pid")
  log "$label, $set metrics: replaying $EXPECT_EVENTS events into $sock"
  if ! timeout "$DRAIN_TIMEOUT" "$STATS_WRITER_LOAD" --in "$STREAM" --out "$sock" \
    --chunk-bytes "$WRITE_CHUNK" --drain-timeout-s "$DRAIN_TIMEOUT" \
    --filter-out "$WORK/$label-$set.filter" >"$WORK/$label-$set.writer" 2>&1; then
    status=writer-failed
    tail -n 3 "$WORK/$label-$set.writer" >&2
  fi
  if kill -0 "$pid" 2>/dev/null; then
    read -r u1 s1 < <(proc_cpu_ticks "$pid")
    n1=$(proc_sched_ns "$pid")
    f1=$(proc_minor_faults "$pid")
    hwm=$(proc_status_kb "$pid" VmHWM)
  else
    status=died
    u1=$u0 s1=$s0 n1=$n0 f1=$f0 hwm=0
  fi
  replay_s=$(sed -n 's/^replayed .* seconds=\([0-9.]*\).*/\1/p' "$WORK/$label-$set.writer")
  if [[ $status == ok && $set == 12 ]]; then
    doveadm -c "$DOVECOT_CONF_FOR_DOVEADM" stats dump -s "$reader" -f "count sum min max" \
      >"$WORK/$label-$set.dump" 2>>"$WORK/doveadm.log" || status="dump-failed"
    if [[ $status == ok ]] && ! check_dump "$label" "$WORK/$label-$set.dump"; then
      status=mismatch
    fi
    notes="imap_command=$(dump_value "$WORK/$label-$set.dump" imap_command duration count)/$EXPECT_IMAP"
  fi
  echo "$label $set $EXPECT_EVENTS $((u1 - u0)) $((s1 - s0)) $hwm ${replay_s:-0} $((n1 - n0))" \
    "$((f1 - f0)) $status $notes" >>"$WORK/results"
  log "$label, $set metrics: $status $notes"
}

# --- a) Dovecot's own stats process -----------------------------------------------------------
DOVECOT_VERSION=$(dovecot --version)
run_dovecot() {
  local set=$1
  local dir=$WORK/dovecot-$set
  write_dovecot_conf "$dir"
  log "starting Dovecot $DOVECOT_VERSION ($set metrics)"
  dovecot -c "$dir/dovecot.conf"
  for _ in $(seq 100); do
    [[ -s $dir/run/master.pid ]] && break
    sleep 0.1
  done
  DOVECOT_MASTER_PID=$(cat "$dir/run/master.pid")
  local stats_pid=""
  for _ in $(seq 100); do
    stats_pid=$(pgrep -P "$DOVECOT_MASTER_PID" -f '/stats$' || true)
    [[ -n $stats_pid && -S $dir/run/stats-writer && -S $dir/run/stats-reader ]] && break
    sleep 0.1
  done
  [[ -n $stats_pid ]] || { echo "Dovecot's stats process did not start" >&2; exit 1; }
  DOVECOT_CHILD_PIDS=$(pgrep -P "$DOVECOT_MASTER_PID" | tr '\n' ' ')
  [[ $set == 12 ]] && add_metrics "$dir/dovecot.conf"
  DOVECOT_CONF_FOR_DOVEADM=$dir/dovecot.conf
  measure dovecot "$set" "$stats_pid" "$dir/run/stats-writer" "$dir/run/stats-reader"
  local problems
  problems=$(grep -E 'stats: (Warning|Error|Panic|Fatal)' "$dir/dovecot.log" || true)
  if [[ -n $problems ]]; then
    echo "dovecot $set: stats logged problems: $(head -n 3 <<<"$problems")" >>"$WORK/check-failures"
  fi
  log "dovecot, $set metrics: $(grep -c . <<<"$problems" || true) warning/error lines from stats"
  stop_dovecot
}

# --- b) mailscope -----------------------------------------------------------------------------
MS_NOTE=""
run_mailscope() {
  local set=$1
  local dir=$WORK/mailscope-$set
  mkdir -p "$dir/run"
  chmod 755 "$dir" "$dir/run"
  write_dovecot_conf "$WORK/doveadm-$set"  # what doveadm reads; no Dovecot runs from it
  DOVECOT_CONF_FOR_DOVEADM=$WORK/doveadm-$set/dovecot.conf
  log "starting $MAILSCOPE serve $MAILSCOPE_SERVE_ARGS ($set metrics)"
  # shellcheck disable=SC2086  # MAILSCOPE_SERVE_ARGS is a list of words
  "$MAILSCOPE" serve --run-dir "$dir/run" $MAILSCOPE_SERVE_ARGS >"$dir/stdout" 2>"$dir/stderr" &
  MS_PID=$!
  for _ in $(seq 200); do
    [[ -S $dir/run/stats-writer && -S $dir/run/stats-reader ]] && break
    kill -0 "$MS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -S $dir/run/stats-writer || ! -S $dir/run/stats-reader ]]; then
    stop_mailscope
    MS_NOTE="mailscope did not create run-dir/stats-writer and stats-reader (see $dir/stderr)"
    echo "mailscope $set: $MS_NOTE" >>"$WORK/check-failures"
    return
  fi
  # doveadm stats add takes no -s: it finds stats-reader under base_dir.
  [[ $set == 12 ]] && add_metrics "$DOVECOT_CONF_FOR_DOVEADM" -o "base_dir=$dir/run"
  measure mailscope "$set" "$MS_PID" "$dir/run/stats-writer" "$dir/run/stats-reader"
  local port
  port=$(sed -n 's/.*http listening on [^ ]*:\([0-9]*\).*/\1/p' "$dir/stderr" | head -n 1)
  if [[ -n $port ]]; then
    local counters
    counters=$(check_mailscope_counters "mailscope $set" "$port" || true)
    log "mailscope, $set metrics: $counters"
  fi
  stop_mailscope
}

HAVE_MAILSCOPE=0
if [[ -z $MAILSCOPE ]]; then
  MS_NOTE="MAILSCOPE is unset: mailscope not measured"
elif [[ ! -x $MAILSCOPE ]]; then
  MS_NOTE="MAILSCOPE=$MAILSCOPE is not an executable: mailscope not measured"
else
  HAVE_MAILSCOPE=1
fi

for set in $METRIC_SETS; do
  [[ $SKIP_DOVECOT == 1 ]] || run_dovecot "$set"
  [[ $HAVE_MAILSCOPE == 1 ]] && run_mailscope "$set"
  # The same metrics must give the same FILTER and the same numbers on both servers.
  if [[ -f $WORK/dovecot-$set.filter && -f $WORK/mailscope-$set.filter ]] &&
    ! cmp -s "$WORK/dovecot-$set.filter" "$WORK/mailscope-$set.filter"; then
    echo "$set metrics: the servers sent different FILTER lines" >>"$WORK/check-failures"
  fi
  if [[ -f $WORK/dovecot-$set.dump && -f $WORK/mailscope-$set.dump ]]; then
    if ! diff <(sort "$WORK/dovecot-$set.dump") <(sort "$WORK/mailscope-$set.dump") \
      >"$WORK/dump-$set.diff"; then
      echo "$set metrics: the dumps differ ($(grep -c '^[<>]' "$WORK/dump-$set.diff") lines):" \
        "$(head -n 4 "$WORK/dump-$set.diff" | tr '\n' ' ')" >>"$WORK/check-failures"
    else
      log "$set metrics: both dumps equal ($(($(wc -l <"$WORK/dovecot-$set.dump") - 1)) lines)"
    fi
  fi
done

# --- report ---------------------------------------------------------------------------------
echo
echo "stats-writer ingest: $EXPECT_EVENTS events ($EXPECT_NAMED named) in $EXPECT_LINES lines," \
  "$EXPECT_BYTES bytes, $(summary_value connections) connections"
echo "stream: $GEN_CMD"
echo "writer: stats_writer_load --in STREAM --out SOCKET --chunk-bytes $WRITE_CHUNK" \
  "(one connection each, blocking writes)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
  "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
echo "dovecot: $DOVECOT_VERSION"
if [[ $HAVE_MAILSCOPE == 1 ]]; then
  echo "mailscope: $MAILSCOPE ($("$MAILSCOPE" --version 2>/dev/null || true))"
fi
[[ -n $MS_NOTE ]] && echo "mailscope: $MS_NOTE"
touch "$WORK/results"
awk -v tck="$CLK_TCK" '
  BEGIN {
    printf "%-10s %7s %9s %8s %8s %8s %8s %14s %9s %10s %8s %8s  %s\n", "server", "metrics",
           "events", "cpu_s", "user_s", "sys_s", "sched_s", "events/cpu_s", "us/event",
           "VmHWM_MiB", "replay_s", "faults", "check"
  }
  {
    cpu = ($4 + $5) / tck
    key = $1 " " $2
    rate[key] = cpu > 0 ? $3 / cpu : 0
    printf "%-10s %7s %9d %8.2f %8.2f %8.2f %8.3f %14.0f %9.3f %10.1f %8.2f %8d  %s", $1, $2, $3,
           cpu, $4 / tck, $5 / tck, $8 / 1e9, rate[key], (cpu > 0 ? cpu * 1e6 / $3 : 0), $6 / 1024,
           $7, $9, $10
    for (i = 11; i <= NF; i++) printf " %s", $i
    printf "\n"
    if (!($2 in seen)) { seen[$2] = 1; sets[++n] = $2 }
  }
  END {
    for (i = 1; i <= n; i++) {
      s = sets[i]; d = rate["dovecot " s]; m = rate["mailscope " s]
      if (d > 0 && m > 0) {
        printf "ratio mailscope/dovecot events per CPU-second, %s metrics: %.1fx", s, m / d
        if (s == 12) printf " (goal: at least 20x)"
        printf "\n"
      }
      if (s == 12 && m > 0)
        printf "mailscope, 12 metrics: %.2f M events per CPU-second (goal: at least 2 M)\n", m / 1e6
    }
  }' "$WORK/results"
if [[ -s $WORK/check-failures ]]; then
  echo "CHECKS FAILED:"
  sed 's/^/  /' "$WORK/check-failures"
  exit 1
fi
if awk '$10 != "ok" { bad = 1 } END { exit !bad }' "$WORK/results"; then
  echo "CHECKS FAILED: a run did not finish (see the check column)"
  exit 1
fi
echo "checks: all passed"
