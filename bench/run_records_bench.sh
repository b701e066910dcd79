#!/usr/bin/env bash
# Event records (docs/PERFORMANCE.md, "Event records"):
#   1. the sink's writer into SQLite, 1, 100 and 1,000 records a transaction
#      (bench/records_sink_bench.cc: records/s and records per CPU-second);
#   2. the same into a private PostgreSQL 15 (root only: it runs as the postgres user),
#      with the server's own CPU (the postmaster, its reaped backends and its workers);
#   3. ingest with and without the sink: one stats-writer stream (bench/stats_writer_load.cc)
#      replayed into `mailscope serve` without [records], recording the logins and session
#      ends, and recording every event; as fast as mailscope reads, and paced; the replay time,
#      the CPU of the loop thread (the main thread) and of the process, and whether every
#      chosen event was written;
#   4. `mailscope events` on a million records spread over 30 days, for five queries.
#
# Environment:
#   MAILSCOPE            mailscope binary (required; a release build)
#   RECORDS_SINK_BENCH   records_sink_bench binary (required; build/release/bench/...)
#   RECORDS              records per sink run at batch 100 and 1,000 (200000; 1/10 at batch 1)
#   EVENTS               events in the ingest stream (500000)
#   QUERY_RECORDS        records for the query timings (1000000)
#   PACED_BYTES          --bytes-per-second of the paced ingest runs (20000000); the rate
#                        reached is events / replay_s of each line
#   SKIP_POSTGRES=1      leave PostgreSQL out
#   KEEP_WORKDIR=1       keep the work directory
set -euo pipefail
export LC_ALL=C

MAILSCOPE=${MAILSCOPE:-}
RECORDS_SINK_BENCH=${RECORDS_SINK_BENCH:-}
RECORDS=${RECORDS:-200000}
EVENTS=${EVENTS:-500000}
QUERY_RECORDS=${QUERY_RECORDS:-1000000}
PACED_BYTES=${PACED_BYTES:-20000000}
SKIP_POSTGRES=${SKIP_POSTGRES:-0}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
PG_BIN=/usr/lib/postgresql/15/bin

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for bin in "$MAILSCOPE" "$RECORDS_SINK_BENCH"; do
  if [[ -z $bin || ! -x $bin ]]; then
    echo "run_records_bench.sh: set MAILSCOPE and RECORDS_SINK_BENCH to built binaries" >&2
    exit 2
  fi
done
WORK=$(mktemp -d /tmp/records-bench.XXXXXX)
chmod 755 "$WORK"
MS_PID=""
DOVECOT_MASTER_PID=""
DOVECOT_CHILD_PIDS=""
PG_PID=""
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
stop_postgres() {
  [[ -n $PG_PID ]] || return 0
  kill -INT "$PG_PID" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$PG_PID" 2>/dev/null || break
    sleep 0.1
  done
  PG_PID=""
}
trap 'stop_postgres; cleanup' EXIT
CLK_TCK=$(getconf CLK_TCK)

# --- 1. SQLite ---------------------------------------------------------------------------------
for batch in 1 100 1000; do
  n=$RECORDS
  [[ $batch == 1 ]] && n=$((RECORDS / 10))
  rm -f "$WORK"/sink.sqlite*
  echo "sqlite $("$RECORDS_SINK_BENCH" --sqlite "$WORK/sink.sqlite" --records "$n" --batch "$batch")"
done

# --- 2. PostgreSQL -----------------------------------------------------------------------------
# The postmaster's CPU with that of the children it reaped (fields 14-17 of its stat) and of
# the children alive now, in clock ticks.
pg_cpu_ticks() {
  local total children
  total=$(sed 's/^.*) //' "/proc/$PG_PID/stat" | awk '{ print $12 + $13 + $14 + $15 }')
  children=$(pgrep -P "$PG_PID" || true)
  for c in $children; do
    total=$((total + $(sed 's/^.*) //' "/proc/$c/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$total"
}
if [[ $SKIP_POSTGRES != 1 && $(id -u) == 0 && -x $PG_BIN/postgres ]]; then
  mkdir -p "$WORK/pg"
  chown postgres: "$WORK/pg"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 >"$WORK/pg/initdb.log"
  port=$((20000 + RANDOM % 20000))
  # The server as Debian configures it (fsync on, synchronous_commit on).
  runuser -u postgres -- "$PG_BIN/postgres" -D "$WORK/pg/data" -p "$port" \
    -c listen_addresses=127.0.0.1 -c "unix_socket_directories=$WORK/pg" \
    >"$WORK/pg/postgres.log" 2>&1 &
  PG_PID=$!
  for _ in $(seq 100); do
    "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$port" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # runuser stays the parent: the postmaster is its child.
  PG_PID=$(head -n 1 "$WORK/pg/data/postmaster.pid")
  psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE mailscope"
  url="postgresql://postgres@127.0.0.1:$port/mailscope"
  for batch in 1 100 1000; do
    n=$RECORDS
    [[ $batch == 1 ]] && n=$((RECORDS / 20))
    psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d mailscope \
      -c "DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS mailscope_schema"
    t0=$(pg_cpu_ticks)
    line=$("$RECORDS_SINK_BENCH" --database "$url" --records "$n" --batch "$batch")
    sleep 0.5  # the backend exits and is reaped
    t1=$(pg_cpu_ticks)
    server_cpu=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    echo "postgres $line server_cpu_s=$server_cpu"
  done
  stop_postgres
else
  log "PostgreSQL left out (SKIP_POSTGRES=1, not root, or no $PG_BIN/postgres)"
fi

# --- 3. ingest with and without the sink -------------------------------------------------------
LOAD=$WORK/stats_writer_load
g++ -std=c++20 -O2 -pthread -o "$LOAD" "$BENCH_DIR/stats_writer_load.cc"
"$LOAD" --events "$EVENTS" --connections 8 --concurrency 200 --seed 1 \
  --write-file "$WORK/stream" >"$WORK/stream.summary"
log "stream: $(cat "$WORK/stream.summary")"
# none: no [records]; logins: the auth events and session ends (9% of the stream); all: every
# event. Each unpaced (as fast as mailscope reads) and paced at PACED_BYTES a second.
: >"$WORK/none.toml"
printf "[records]\nfilter = 'kind=auth OR event=mail_user_session_finished'\n" >"$WORK/logins.toml"
printf "[records]\nfilter = 'event=*'\n" >"$WORK/all.toml"
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }
for pace in 0 "$PACED_BYTES"; do
  for variant in none logins all; do
    dir=$WORK/ingest-$variant-$pace
    mkdir -p "$dir/run" "$dir/data"
    "$MAILSCOPE" serve --run-dir "$dir/run" --data-dir "$dir/data" --http 127.0.0.1:0 \
      --config "$WORK/$variant.toml" >"$dir/log" 2>&1 &
    MS_PID=$!
    for _ in $(seq 100); do
      [[ -S $dir/run/stats-writer ]] && grep -q "http listening" "$dir/log" && break
      sleep 0.1
    done
    http=$(sed -n 's/.*http listening on \([^ ]*\).*/\1/p' "$dir/log" | head -n 1)
    read -r lu0 ls0 < <(proc_cpu_ticks "$MS_PID/task/$MS_PID")
    read -r pu0 ps0 < <(proc_cpu_ticks "$MS_PID")
    pacing=()
    [[ $pace != 0 ]] && pacing=(--bytes-per-second "$pace")
    "$LOAD" --in "$WORK/stream" --out "$dir/run/stats-writer" --chunk-bytes 65536 \
      "${pacing[@]}" >"$dir/writer" 2>&1
    replay=$(sed -n 's/^replayed .* seconds=\([0-9.]*\).*/\1/p' "$dir/writer")
    read -r lu1 ls1 < <(proc_cpu_ticks "$MS_PID/task/$MS_PID")
    # What the writer still holds is part of the sink's cost: wait for it.
    if [[ $variant != none ]]; then
      for _ in $(seq 1200); do
        [[ $(metric "$http" mailscope_records_queued) == 0 ]] && break
        sleep 0.1
      done
    fi
    read -r pu1 ps1 < <(proc_cpu_ticks "$MS_PID")
    events=$(curl -s "http://$http/metrics" |
      awk '/^mailscope_events_total\{source="dovecot"/ { s += $2 } END { print s + 0 }')
    written=$(metric "$http" mailscope_records_written_total)
    dropped=$(curl -s "http://$http/metrics" |
      awk '/^mailscope_records_dropped_total/ { s += $2 } END { print s + 0 }')
    echo "ingest records=$variant paced_bytes_per_s=$pace events=$events replay_s=$replay" \
      "loop_cpu_s=$(ticks_to_s $((lu1 + ls1 - lu0 - ls0)))" \
      "process_cpu_s=$(ticks_to_s $((pu1 + ps1 - pu0 - ps0)))" \
      "records_written=${written:-0} records_dropped=${dropped:-0}"
    stop_mailscope
  done
done

# --- 4. mailscope events on a million records --------------------------------------------------
db=$WORK/query.sqlite
"$RECORDS_SINK_BENCH" --sqlite "$db" --fill "$QUERY_RECORDS" --days 30 >"$WORK/fill.log"
log "filled: $(cat "$WORK/fill.log")"
# A user with logins in the last week, the address of a failed login, a message id.
user=$(sqlite3 "$db" "SELECT user FROM events WHERE user IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET 4321")
ip=$(sqlite3 "$db" "SELECT remote_ip FROM events WHERE kind = 'auth' AND outcome = 'failure' LIMIT 1 OFFSET 9876")
mid=$(sqlite3 "$db" "SELECT message_id FROM events WHERE message_id IS NOT NULL LIMIT 1 OFFSET 555555")
query() {
  local what=$1
  shift
  local t0 t1 lines
  t0=$(date +%s.%N)
  lines=$("$MAILSCOPE" events --file "$db" "$@" | wc -l)
  t1=$(date +%s.%N)
  echo "query \"$what\" lines=$lines seconds=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')"
}
query "message_id=ID" --filter "message_id=$mid"
query "user=\"USER\" --since 7d" --filter "user=\"$user\"" --since 7d
query "remote_ip=IP AND kind=auth" --filter "remote_ip=$ip AND kind=auth"
query "everything, as text" --filter ""
query "event=\"msg:rcpt:defer\" --since 1d" --filter 'event="msg:rcpt:defer"' --since 1d
query "kind=auth AND outcome=failure --limit 20" --filter 'kind=auth AND outcome=failure' --limit 20
query "domain=example3.org AND outcome=deferred (no index)" \
  --filter 'domain=example3.org AND outcome=deferred'
