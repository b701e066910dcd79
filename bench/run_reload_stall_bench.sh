#!/usr/bin/env bash
# Loop stalls during SIGHUP reloads, under stats-writer load.
#
# mailscope answers every socket, FIFO and HTTP request on one event loop; whatever runs on it
# holds up everything else. This script measures how long the loop is held while the
# configuration is reloaded under load:
#
#   1. `mailscope serve` starts on a configuration with 12 metrics (the stats-writer benchmark's,
#      as [metrics.NAME] tables) and a file exporter that every IMAP command goes to;
#   2. a stats-writer stream (bench/stats_writer_load.cc) is replayed into its stats-writer
#      socket at a steady LOAD_BYTES_PER_SECOND, again and again, for the whole run;
#   3. a probe (bench/loop_probe.cc) times GET /healthz round trips over one kept-alive
#      connection, one every PROBE_INTERVAL_MS: for QUIET_S seconds of load alone, then while
#      RELOADS SIGHUPs are sent, RELOAD_INTERVAL_MS apart. Each SIGHUP comes with the other of
#      two configuration files, which differ only in the exporter's file, so every reload
#      replaces the exporter (and its queue, up to 16 MiB) as well as reading the file;
#   4. after each phase, mailscope_loop_stall_seconds is read from /metrics, where the build
#      has it: the longest time the loop was late for a timer due every 10 ms, since the start;
#   5. each reload's own time on the loop is read from its log line ("configuration reloaded
#      from FILE (... applied in N ms)"), where the build logs it: the median and the longest.
#
# The probe's round trip includes the wait for a CPU on a busy machine (the load generator,
# mailscope and the probe share it), so its longest round trip is an upper bound of the loop's
# longest stall; the gauge is the loop's own view. Compare the reload phase with the load-only
# phase of the same run, and builds with each other only within one sitting.
#
# Checks (any failure makes the script exit non-zero): mailscope logged every reload as
# applied (SIGHUPs that arrive while a parse runs may be coalesced: at least one, at most
# RELOADS) and no reload failure; the probe saw no failed request; mailscope stayed up.
#
# Environment (all optional but MAILSCOPE):
#   MAILSCOPE          mailscope binary (a release build: build/release/src/app/mailscope)
#   RELOADS            SIGHUPs in the reload phase (20)
#   RELOAD_INTERVAL_MS between two SIGHUPs (250)
#   QUIET_S            seconds of the load-only phase (5)
#   PROBE_INTERVAL_MS  pause between two probe requests (2)
#   EVENTS CONNECTIONS CONCURRENCY SEED   stream shape (1000000 8 200 1)
#   LOAD_BYTES_PER_SECOND  replay pace, over all connections (25000000: about 60,000 events/s)
#   STATS_WRITER_LOAD LOOP_PROBE  binaries; unset: built here with g++ -O2
#   KEEP_WORKDIR=1     keep the work directory (configurations, logs, probe output)
set -euo pipefail
export LC_ALL=C

MAILSCOPE=${MAILSCOPE:-}
RELOADS=${RELOADS:-20}
RELOAD_INTERVAL_MS=${RELOAD_INTERVAL_MS:-250}
QUIET_S=${QUIET_S:-5}
PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-2}
EVENTS=${EVENTS:-1000000}
CONNECTIONS=${CONNECTIONS:-8}
CONCURRENCY=${CONCURRENCY:-200}
SEED=${SEED:-1}
LOAD_BYTES_PER_SECOND=${LOAD_BYTES_PER_SECOND:-25000000}
STATS_WRITER_LOAD=${STATS_WRITER_LOAD:-}
LOOP_PROBE=${LOOP_PROBE:-}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z $MAILSCOPE || ! -x $MAILSCOPE ]]; then
  echo "run_reload_stall_bench.sh: set MAILSCOPE to a mailscope binary" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/reload-stall-bench.XXXXXX)
DOVECOT_MASTER_PID=""
DOVECOT_CHILD_PIDS=""
MS_PID=""
LOAD_PID=""
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
stop_load() {
  [[ -n $LOAD_PID ]] || return 0
  touch "$WORK/stop-load"
  kill -TERM "$LOAD_PID" 2>/dev/null || true
  pkill -TERM -P "$LOAD_PID" 2>/dev/null || true
  wait "$LOAD_PID" 2>/dev/null || true
  LOAD_PID=""
}
trap 'stop_load; cleanup' EXIT
trap 'exit 130' INT TERM

# --- tools and the stream ---------------------------------------------------------------------
if [[ -z $STATS_WRITER_LOAD ]]; then
  STATS_WRITER_LOAD=$WORK/stats_writer_load
  g++ -std=c++20 -O2 -pthread -o "$STATS_WRITER_LOAD" "$BENCH_DIR/stats_writer_load.cc"
fi
if [[ -z $LOOP_PROBE ]]; then
  LOOP_PROBE=$WORK/loop_probe
  g++ -std=c++20 -O2 -o "$LOOP_PROBE" "$BENCH_DIR/loop_probe.cc"
fi
log "generating a stream of $EVENTS events"
"$STATS_WRITER_LOAD" --events "$EVENTS" --connections "$CONNECTIONS" \
  --concurrency "$CONCURRENCY" --seed "$SEED" --write-file "$WORK/stream" >"$WORK/stream.summary"
log "stream: $(cat "$WORK/stream.summary")"

# --- the two configurations -------------------------------------------------------------------
# write_config FILE EXPORT_FILE
write_config() {
  cat >"$1" <<EOF
# Reload stall benchmark: the stats-writer benchmark's 12 metrics; every IMAP command is
# exported, one JSON line each, to a file.
[serve]
run_dir = "$WORK/run"
data_dir = "$WORK/data"
http = "127.0.0.1:0"

[exporters.commands]
format = "json"
format_args = "time-rfc3339"
transport = "file"
transport_args = "$2"

[metrics.imap_command]
filter = "event=imap_command_finished"
fields = ["bytes_in", "bytes_out"]
group_by = ["cmd_name", "tagged_reply_state"]
exporter = "commands"
[metrics.imap_command_tab]
filter = "event=imap_command_finished"
[metrics.imap_command_special]
filter = "event=imap_command_finished AND (cmd_name=SEARCH OR cmd_name=STORE OR tagged_reply_state=BAD OR tagged_reply_state=NO)"
[metrics.imap_command_duration]
filter = "event=imap_command_finished"
group_by = ["duration:exponential:1:5:10"]
[metrics.imap_command_bytes_out]
filter = "event=imap_command_finished"
group_by = ["bytes_out:linear:0:1000:250"]
[metrics.auth_success]
filter = "event=auth_request_finished AND success=yes"
[metrics.auth_failure]
filter = "event=auth_request_finished AND NOT success=yes"
[metrics.auth_client_request]
filter = "event=auth_client_request_finished"
group_by = ["mechanism"]
[metrics.mail_delivery]
filter = "event=mail_delivery_finished"
fields = ["message_size", "message_vsize"]
[metrics.smtp_server_command]
filter = "event=smtp_server_command_finished"
group_by = ["cmd_name", "status_code"]
[metrics.mail_user_session]
filter = "event=mail_user_session_finished"
fields = ["utime", "stime"]
group_by = ["service"]
[metrics.storage_mail_opened]
filter = "category=storage AND event=mail_opened"
EOF
}
mkdir -p "$WORK/run" "$WORK/data"
write_config "$WORK/a.toml" "$WORK/export-a.jsonl"
write_config "$WORK/b.toml" "$WORK/export-b.jsonl"
cp "$WORK/a.toml" "$WORK/mailscope.toml"
"$MAILSCOPE" check-config "$WORK/mailscope.toml" >"$WORK/check-config.out" 2>&1 || {
  cat "$WORK/check-config.out" >&2
  exit 1
}

# --- mailscope and the load -------------------------------------------------------------------
log "starting $MAILSCOPE serve"
"$MAILSCOPE" serve --config "$WORK/mailscope.toml" >"$WORK/stdout" 2>"$WORK/stderr" &
MS_PID=$!
PORT=""
for _ in $(seq 200); do
  PORT=$(sed -n 's/.*http listening on [^ ]*:\([0-9]*\).*/\1/p' "$WORK/stderr" | head -n 1)
  [[ -n $PORT && -S $WORK/run/stats-writer ]] && break
  kill -0 "$MS_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $PORT || ! -S $WORK/run/stats-writer ]]; then
  echo "mailscope did not start (see $WORK/stderr):" >&2
  tail -n 5 "$WORK/stderr" >&2
  exit 1
fi

(
  while [[ ! -e $WORK/stop-load ]]; do
    "$STATS_WRITER_LOAD" --in "$WORK/stream" --out "$WORK/run/stats-writer" \
      --bytes-per-second "$LOAD_BYTES_PER_SECOND" --chunk-bytes 65536 \
      >>"$WORK/load.out" 2>&1 || sleep 0.1
  done
) &
LOAD_PID=$!

# After a phase: the loop's own figure in ms, where the build has it ("n/a" where it does not),
# and the Dovecot events ingested so far.
read_page() {
  curl -sf "http://127.0.0.1:$PORT/metrics" |
    awk '$1 == "mailscope_loop_stall_seconds" { stall = sprintf("%.1f", $2 * 1000) }
         /^mailscope_events_total\{/ && /source="dovecot"/ { events += $NF }
         END { printf "%s %d\n", (stall == "" ? "n/a" : stall), events }'
}
# The replay loads the stream and handshakes first: wait until events flow.
EVENTS_START=0
for _ in $(seq 600); do
  read -r _ EVENTS_START < <(read_page)
  ((EVENTS_START > 0)) && break
  sleep 0.1
done
if ((EVENTS_START == 0)); then
  echo "no event reached mailscope within 60 s (see $WORK/load.out)" >&2
  exit 1
fi

# --- 1: load alone ----------------------------------------------------------------------------
log "load alone: probing /healthz for $QUIET_S s"
"$LOOP_PROBE" --addr "127.0.0.1:$PORT" --interval-ms "$PROBE_INTERVAL_MS" \
  --duration-s "$QUIET_S" >"$WORK/probe-load"
read -r STALL_LOAD EVENTS_LOAD < <(read_page)

# --- 2: load and reloads ----------------------------------------------------------------------
RELOADED_BEFORE=$(grep -c "configuration reloaded" "$WORK/stderr" || true)
PROBE_S=$(((RELOADS * RELOAD_INTERVAL_MS + 999) / 1000 + 1))
log "load and $RELOADS SIGHUPs, $RELOAD_INTERVAL_MS ms apart: probing /healthz for $PROBE_S s"
"$LOOP_PROBE" --addr "127.0.0.1:$PORT" --interval-ms "$PROBE_INTERVAL_MS" \
  --duration-s "$PROBE_S" >"$WORK/probe-reload" &
PROBE_PID=$!
sleep 0.2
for ((i = 1; i <= RELOADS; i++)); do
  if ((i % 2)); then cp "$WORK/b.toml" "$WORK/mailscope.toml"; else cp "$WORK/a.toml" "$WORK/mailscope.toml"; fi
  kill -HUP "$MS_PID"
  sleep "$(awk -v ms="$RELOAD_INTERVAL_MS" 'BEGIN { printf "%.3f", ms / 1000 }')"
done
wait "$PROBE_PID"
read -r STALL_RELOAD EVENTS_RELOAD < <(read_page)
sleep 0.5  # the last reload logged
RELOADED=$(($(grep -c "configuration reloaded" "$WORK/stderr" || true) - RELOADED_BEFORE))
# The loop time of each reload of phase 2, where the log line gives it, sorted.
grep "configuration reloaded" "$WORK/stderr" | tail -n "$RELOADED" |
  sed -n 's/.* in \([0-9.]*\) ms)$/\1/p' | sort -g >"$WORK/reload-ms"
FAILED_RELOADS=$(grep -c "reload failed" "$WORK/stderr" || true)

stop_load
ALIVE=1
kill -0 "$MS_PID" 2>/dev/null || ALIVE=0
EXPORTED=$(curl -sf "http://127.0.0.1:$PORT/metrics" |
  awk '/^mailscope_exporter_events_total\{exporter="commands"/ { printf "%s ", $0 }' || true)
stop_mailscope

# --- report -----------------------------------------------------------------------------------
probe_value() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }
echo
echo "loop stalls during reload: $RELOADS SIGHUPs ${RELOAD_INTERVAL_MS} ms apart, under"
echo "stats-writer load (stats_writer_load --events $EVENTS --connections $CONNECTIONS" \
  "--concurrency $CONCURRENCY --seed $SEED, replayed in a loop at $LOAD_BYTES_PER_SECOND" \
  "bytes/s), 12 metrics, one file exporter"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
  "kernel $(uname -r)"
echo "mailscope: $MAILSCOPE ($("$MAILSCOPE" --version 2>/dev/null || true))"
printf "%-16s %9s %9s %9s %9s %9s %7s %14s %10s\n" phase probes p50_ms p99_ms p999_ms max_ms \
  errors loop_stall_ms events
for phase in load reload; do
  f=$WORK/probe-$phase
  if [[ $phase == load ]]; then
    name="load alone" stall=$STALL_LOAD events=$((EVENTS_LOAD - EVENTS_START))
  else
    name="load + reloads" stall=$STALL_RELOAD events=$((EVENTS_RELOAD - EVENTS_LOAD))
  fi
  printf "%-16s %9s %9s %9s %9s %9s %7s %14s %10s\n" "$name" "$(probe_value "$f" samples)" \
    "$(probe_value "$f" p50_ms)" "$(probe_value "$f" p99_ms)" "$(probe_value "$f" p999_ms)" \
    "$(probe_value "$f" max_ms)" "$(probe_value "$f" errors)" "$stall" "$events"
done
echo "(loop_stall_ms: mailscope_loop_stall_seconds after the phase, the longest since the start;"
echo " events: Dovecot events ingested during the phase)"
echo "reloads logged as applied: $RELOADED of $RELOADS SIGHUPs; failed: $FAILED_RELOADS"
if [[ -s $WORK/reload-ms ]]; then
  echo "time on the loop per reload (from the log): median $(awk '{ v[NR] = $1 }
    END { print v[int((NR + 1) / 2)] }' "$WORK/reload-ms") ms, longest $(tail -n 1 "$WORK/reload-ms") ms"
else
  echo "time on the loop per reload: n/a (this build does not log it)"
fi
echo "exporter: $EXPORTED"

status=0
if ((RELOADED < 1 || RELOADED > RELOADS || FAILED_RELOADS > 0)); then
  echo "CHECK FAILED: reloads applied $RELOADED, failed $FAILED_RELOADS"
  status=1
fi
for phase in load reload; do
  if [[ $(probe_value "$WORK/probe-$phase" errors) != 0 ]]; then
    echo "CHECK FAILED: the probe saw failed requests ($phase)"
    status=1
  fi
done
if ((ALIVE == 0)); then
  echo "CHECK FAILED: mailscope died (see $WORK/stderr)"
  status=1
fi
((status == 0)) && echo "checks: all passed"
exit $status
