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
#
# Environment (all optional but MAILSCOPE):
#   MAILSCOPE     mailscope binary (a release build: build/release/src/app/mailscope)
#   CLIENTS_LIST  concurrent clients per paced run ("1 100 1000")
#   RATE          requests per second over all clients (5000)
#   SECONDS_EACH  length of each run (10)
#   EXIM_LOAD     the load generator; unset: built here with g++ -O2
#   KEEP_WORKDIR=1 keep the work directory
set -euo pipefail
export LC_ALL=C

MAILSCOPE=${MAILSCOPE:-}
CLIENTS_LIST=${CLIENTS_LIST:-"1 100 1000"}
RATE=${RATE:-5000}
SECONDS_EACH=${SECONDS_EACH:-10}
EXIM_LOAD=${EXIM_LOAD:-}
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
