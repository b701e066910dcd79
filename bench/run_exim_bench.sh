#!/usr/bin/env bash
# Round trips of the exim-events endpoint, as Exim's ${readsocket} makes them.
#
# Exim waits on every event_action call, so what counts is the time from when a request is due
# to when mailscope has answered and closed. bench/exim_load.cc plays readsocket (connect,
# write one request, half-close, read to EOF) from CLIENTS_LIST concurrent clients at RATE
# requests per second in all, for SECONDS each, and once more unpaced for requests per CPU
# second of mailscope. Each is run twice on one `mailscope serve`:
#   - without rules, a msg:delivery request (the shipped fragment's fields, 1.1 KB);
#   - with 20 [[rules]], a tcp:connect request that the 20th rule answers: every rule's filter
#     is tested and the verdict's own event is dispatched too.
# Then the same load against bench/null_endpoint.cc, a one-thread epoll server that accepts,
# reads to the newline and closes (no parsing, no dispatch): the machine's floor, the "floor"
# lines. Last, when /usr/sbin/exim4 is installed, Exim itself as the client: EXIM_PROCS
# concurrent `exim4 -be` processes, each expanding ${readsocket} EXIM_CALLS times in a
# ${reduce} and taking $tod_epoch_l (microseconds) before and after each call, against
# the floor and against mailscope (the "exim" lines; latency from Exim's own clock).
#
# Environment (all optional but MAILSCOPE):
#   MAILSCOPE     mailscope binary (a release build: build/release/src/app/mailscope)
#   CLIENTS_LIST  concurrent clients per paced run ("1 100 1000")
#   RATE          requests per second over all clients (5000)
#   SECONDS_EACH  length of each run (10)
#   EXIM_LOAD     the load generator; unset: built here with g++ -O2
#   NULL_ENDPOINT the floor server; unset: built here with g++ -O2
#   EXIM_PROCS    concurrent Exim processes per Exim run ("1 2")
#   EXIM_CALLS    readsocket calls per Exim process (20000, a multiple of 2000)
#   KEEP_WORKDIR=1 keep the work directory
set -euo pipefail
export LC_ALL=C

MAILSCOPE=${MAILSCOPE:-}
CLIENTS_LIST=${CLIENTS_LIST:-"1 100 1000"}
RATE=${RATE:-5000}
SECONDS_EACH=${SECONDS_EACH:-10}
EXIM_LOAD=${EXIM_LOAD:-}
NULL_ENDPOINT=${NULL_ENDPOINT:-}
EXIM_PROCS=${EXIM_PROCS:-"1 2"}
EXIM_CALLS=${EXIM_CALLS:-20000}
EXIM=/usr/sbin/exim4
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z $MAILSCOPE || ! -x $MAILSCOPE ]]; then
  echo "run_exim_bench.sh: set MAILSCOPE to a mailscope binary" >&2
  exit 2
fi
WORK=$(mktemp -d /tmp/mailscope-exim-bench.XXXXXX)
MS_PID=""
DOVECOT_MASTER_PID=""
DOVECOT_CHILD_PIDS=""
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
trap cleanup EXIT

if [[ -z $EXIM_LOAD ]]; then
  EXIM_LOAD=$WORK/exim_load
  g++ -std=c++20 -O2 -o "$EXIM_LOAD" "$BENCH_DIR/exim_load.cc"
fi
if [[ -z $NULL_ENDPOINT ]]; then
  NULL_ENDPOINT=$WORK/null_endpoint
  g++ -std=c++20 -O2 -o "$NULL_ENDPOINT" "$BENCH_DIR/null_endpoint.cc"
fi

# A tcp:connect as the fragment sends it, for the run with rules.
cat >"$WORK/tcp_connect.req" <<'EOF'
event hook=transport exim_version=4.96 event_name="tcp:connect" event_defer_errno=0 message_exim_id=1xaInK-00045c-1N sender_address="alice@test.local" message_size=445 received_time=1796588714 domain=ok.example local_part=user host=mx.ok.example host_address=198.51.100.20 host_port=25 transport_name=remote_smtp verify_mode="" sending_port=-1 tls_out_bits=0 tls_out_dane=no tls_out_tlsa_usage=0 tls_out_certificate_verified=0 sender_host_address=127.0.0.1 sender_host_port=60274 received_ip_address=127.0.0.1 received_port=2525 pid=15725
EOF
{
  for i in $(seq 1 19); do
    printf '[[rules]]\nname = "r%d"\nwhen = %s\nverdict = "no %d"\n\n' "$i" \
      "'event=\"tcp:connect\" AND host_address=192.0.2.$i'" "$i"
  done
  printf '[[rules]]\nname = "r20"\nwhen = %s\nverdict = "not connecting"\n' \
    "'event=\"tcp:connect\" AND host_address=198.51.100.*'"
} >"$WORK/rules.toml"
: >"$WORK/none.toml"

run_serve() {
  local config=$1
  mkdir -p "$WORK/run" "$WORK/data"
  "$MAILSCOPE" serve --run-dir "$WORK/run" --data-dir "$WORK/data" --http "" \
    --config "$config" >"$WORK/serve.log" 2>&1 &
  MS_PID=$!
  for _ in $(seq 100); do
    [[ -S $WORK/run/exim-events ]] && return 0
    sleep 0.05
  done
  echo "run_exim_bench.sh: mailscope did not start" >&2
  cat "$WORK/serve.log" >&2
  exit 1
}

for variant in none rules; do
  run_serve "$WORK/$variant.toml"
  request=()
  [[ $variant == rules ]] && request=(--request "$WORK/tcp_connect.req")
  for clients in $CLIENTS_LIST; do
    echo "$variant $("$EXIM_LOAD" --socket "$WORK/run/exim-events" --clients "$clients" \
      --rate "$RATE" --seconds "$SECONDS_EACH" "${request[@]}" --server-pid "$MS_PID")"
  done
  echo "$variant $("$EXIM_LOAD" --socket "$WORK/run/exim-events" --clients 8 --rate 0 \
    --seconds "$SECONDS_EACH" "${request[@]}" --server-pid "$MS_PID")"
  stop_mailscope
done

# The floor: the same paced and unpaced load against null_endpoint.
mkdir -p "$WORK/floor"
"$NULL_ENDPOINT" --socket "$WORK/floor/exim-events" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
for _ in $(seq 100); do
  [[ -S $WORK/floor/exim-events ]] && break
  sleep 0.05
done
for clients in $CLIENTS_LIST; do
  echo "floor $("$EXIM_LOAD" --socket "$WORK/floor/exim-events" --clients "$clients" \
    --rate "$RATE" --seconds "$SECONDS_EACH" --server-pid "$FLOOR_PID")"
done
echo "floor $("$EXIM_LOAD" --socket "$WORK/floor/exim-events" --clients 8 --rate 0 \
  --seconds "$SECONDS_EACH" --server-pid "$FLOOR_PID")"

if [[ ! -x $EXIM ]]; then
  log "no $EXIM: the Exim-as-client runs are left out"
  stop_pid "$FLOOR_PID" 5
  exit 0
fi

# Exim as the client. exim -be takes expansion lines of about 1 KB at most, so the EXIM_CALLS
# calls are lines of 2,000, each two nested lists of 50 x 40. Each call appends " START:END"
# in microseconds; the request is a main-hook msg:delivery.
mkdir -p "$WORK/exim-spool"
cat >"$WORK/exim.conf" <<CONF
spool_directory = $WORK/exim-spool
log_file_path = $WORK/exim-%slog
primary_hostname = bench.test
CONF
exim_expansion() {
  local socket=$1 outer inner req line
  outer=$(seq -s, 1 50)
  inner=$(seq -s, 1 40)
  req='event hook=main exim_version=4.96 event_name=msg:delivery'
  req+=' message_exim_id=1xaInK-00045c-1N sender_address=alice@test.local domain=ok.example'
  req+=' local_part=user host_address=127.0.0.1 transport_name=remote_smtp pid=1\n'
  # shellcheck disable=SC2016 # Exim's own $ expansions
  for ((line = 0; line < EXIM_CALLS / 2000; line++)); do
    printf '${reduce{<, %s}{}{$value${reduce{<, %s}{}{$value $tod_epoch_l${readsocket{%s}{%s}{1s}{}{}}:$tod_epoch_l}}}}\n' \
      "$outer" "$inner" "$socket" "$req"
  done
}
cpu_seconds() { proc_cpu_ticks "$1" | awk -v hz="$(getconf CLK_TCK)" '{ print ($1 + $2) / hz }'; }
exim_run() {
  local name=$1 socket=$2 pid=$3 procs=$4 i cpu0 cpu1 t0 t1 pids=()
  exim_expansion "$socket" >"$WORK/exim.expr"
  cpu0=$(cpu_seconds "$pid")
  t0=$(date +%s.%N)
  for ((i = 0; i < procs; i++)); do
    "$EXIM" -C "$WORK/exim.conf" -be <"$WORK/exim.expr" >"$WORK/exim.out.$i" &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(date +%s.%N)
  cpu1=$(cpu_seconds "$pid")
  echo "exim $name $(cat "$WORK"/exim.out.* | "$BENCH_DIR/exim_timings.py" "$procs" \
    "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
    "$(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN { print a - b }')")"
  rm -f "$WORK"/exim.out.*
}
for procs in $EXIM_PROCS; do
  exim_run floor "$WORK/floor/exim-events" "$FLOOR_PID" "$procs"
done
stop_pid "$FLOOR_PID" 5
run_serve "$WORK/none.toml"
for procs in $EXIM_PROCS; do
  exim_run mailscope "$WORK/run/exim-events" "$MS_PID" "$procs"
done
stop_mailscope
