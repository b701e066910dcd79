#!/usr/bin/env bash
# Batch reading of s/qmail logs: `mailscope replay` against mtail and `wc -l`, on the same files
# in one run.
#
# Inputs (made by bench/gen_qmail_log.py with fixed seeds, kept in $BENCH_DIR and made again
# only when missing): a 1,000,000-line log and a log of at least 1 GiB, each with the
# generator's counts (.truth.json). The page cache is warmed before each file, then:
#   - `wc -l`: the floor for reading the bytes and finding the line ends (the fastest of
#     WC_RUNS runs);
#   - mtail one-shot with bench/qmail.mtail: counts qmail-smtpd verdicts by action, type and
#     condition and by remote IP, tcpserver connections, deliveries by result and all lines;
#     its counts are checked against the generator's;
#   - `mailscope replay --openmetrics FILE` (REPLAY_ARGS), its OpenMetrics output kept in the
#     work directory.
# For each: wall seconds, lines/s, bytes/s, CPU seconds (user+sys) and peak RSS (from
# /usr/bin/time -f). Then a Markdown table with mailscope lines/s / mtail lines/s and
# mailscope bytes/s / wc -l bytes/s.
#
# Environment (all optional):
#   MAILSCOPE       mailscope binary (build/release/src/app/mailscope of this checkout)
#   REPLAY_ARGS     arguments before the log file ("--openmetrics")
#   BENCH_DIR       where the generated logs are kept (/tmp/mailscope-qmail-bench); never
#                   inside the repository
#   SMALL_LINES     lines of the small log (1000000), seed SMALL_SEED (1)
#   BIG_BYTES       bytes of the big log, at least (1073741824), seed BIG_SEED (2)
#   PREFIX          timestamp prefix of the generated logs (tai64n; see gen_qmail_log.py)
#   RUNS            runs of mtail and of mailscope per file; the median wall time counts (1)
#   WC_RUNS         runs of wc -l per file; the fastest counts (5)
#   SKIP_MAILSCOPE=1  measure wc -l and mtail only
#   SKIP_BIG=1      leave out the big log
#   KEEP_WORKDIR=1  keep the work directory (mtail and mailscope outputs, timings)
set -euo pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
MAILSCOPE=${MAILSCOPE:-$REPO_DIR/build/release/src/app/mailscope}
REPLAY_ARGS=${REPLAY_ARGS:---openmetrics}
BENCH_DIR=${BENCH_DIR:-/tmp/mailscope-qmail-bench}
SMALL_LINES=${SMALL_LINES:-1000000}
SMALL_SEED=${SMALL_SEED:-1}
BIG_BYTES=${BIG_BYTES:-1073741824}
BIG_SEED=${BIG_SEED:-2}
PREFIX=${PREFIX:-tai64n}
RUNS=${RUNS:-1}
WC_RUNS=${WC_RUNS:-5}
SKIP_MAILSCOPE=${SKIP_MAILSCOPE:-0}
SKIP_BIG=${SKIP_BIG:-0}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
GEN=$SCRIPT_DIR/gen_qmail_log.py
PROG=$SCRIPT_DIR/qmail.mtail
TIME=/usr/bin/time

die() {
  echo "run_qmail_replay_bench.sh: $*" >&2
  exit 2
}

# --- what is needed, checked before anything long ----------------------------------------------
[[ -x $TIME ]] || die "$TIME is missing (apt-get install time)"
command -v python3 >/dev/null || die "python3 is needed for the generator"
MTAIL=$(command -v mtail || true)
[[ -n $MTAIL ]] || die "mtail is missing (apt-get install mtail; stop the service it starts)"
if [[ $SKIP_MAILSCOPE != 1 ]]; then
  [[ -x $MAILSCOPE ]] || die "no mailscope binary at $MAILSCOPE (build it, set MAILSCOPE, or SKIP_MAILSCOPE=1)"
  # An unknown subcommand's --help prints the top-level help and exits 0: look for replay in
  # the list of subcommands instead.
  "$MAILSCOPE" --help 2>/dev/null | grep -Eq '^[[:space:]]+replay([[:space:]]|$)' ||
    die "$MAILSCOPE has no 'replay' subcommand yet (not listed by '$MAILSCOPE --help')"
fi
BENCH_DIR=$(realpath -m "$BENCH_DIR")
case "$BENCH_DIR/" in
  "$(realpath -m "$REPO_DIR")/"*) die "BENCH_DIR ($BENCH_DIR) is inside the repository" ;;
esac
mkdir -p "$BENCH_DIR"

WORK=$(mktemp -d /tmp/qmail-replay-bench.XXXXXX)
# lib.sh's cleanup stops these when set; nothing here runs in the background.
# shellcheck disable=SC2034
MS_PID=""
# shellcheck disable=SC2034
DOVECOT_MASTER_PID=""
# shellcheck disable=SC2034
DOVECOT_CHILD_PIDS=""
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
trap cleanup EXIT

# --- inputs ------------------------------------------------------------------------------------
# make_input NAME SIZE-ARGS...: $BENCH_DIR/NAME.log and NAME.truth.json, unless both exist.
make_input() {
  local name=$1
  shift
  local f=$BENCH_DIR/$name.log
  if [[ -s $f && -s $BENCH_DIR/$name.truth.json ]]; then
    log "reusing $f"
    return
  fi
  log "generating $f ($*)"
  rm -f "$f" "$BENCH_DIR/$name.truth.json"
  python3 "$GEN" "$@" --prefix "$PREFIX" -o "$f.part" --truth "$BENCH_DIR/$name.truth.json.part"
  mv "$f.part" "$f"
  mv "$BENCH_DIR/$name.truth.json.part" "$BENCH_DIR/$name.truth.json"
}
SMALL=qmail-${SMALL_LINES}lines-seed$SMALL_SEED-$PREFIX
BIG=qmail-${BIG_BYTES}bytes-seed$BIG_SEED-$PREFIX
make_input "$SMALL" --lines "$SMALL_LINES" --seed "$SMALL_SEED"
NAMES=("$SMALL")
if [[ $SKIP_BIG != 1 ]]; then
  make_input "$BIG" --bytes "$BIG_BYTES" --seed "$BIG_SEED"
  NAMES+=("$BIG")
fi

# --- measuring ---------------------------------------------------------------------------------
# measure OUT -- CMD...: runs CMD with stdout to OUT.out and stderr to OUT.err, and writes
# "wall_s user_s sys_s maxrss_kb exit" to OUT.m. The wall time is taken here in nanoseconds
# (/usr/bin/time's %e has two decimals); CPU and peak RSS come from /usr/bin/time.
measure() {
  local out=$1
  shift 2
  local t0 t1 rc=0
  t0=$(date +%s%N)
  "$TIME" -f "%U %S %M" -o "$out.time" "$@" >"$out.out" 2>"$out.err" || rc=$?
  t1=$(date +%s%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') $(tail -n 1 "$out.time") $rc" >"$out.m"
}
# pick RUN-FILES... (each holding one .m line) by wall time: "median" or "min".
pick() {
  local how=$1
  shift
  cat "$@" | sort -n -k1,1 | awk -v how="$how" '{ l[NR] = $0 } END {
    print (how == "min") ? l[1] : l[int((NR + 1) / 2)] }'
}
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# The mtail one-shot JSON against the generator's counts: lines, connections, deliveries by
# result, verdicts by action/type/condition, and the per-IP series (count, sum and top 20).
check_mtail() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
m, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def series(name):
    out = {}
    for metric in m.get(name, []):
        for lv in metric.get("LabelValues", []):
            out[tuple(lv.get("Labels") or [])] = lv["Value"]["Value"]
    return out
got = {
    "lines": series("qmail_lines_total").get((), 0),
    "tcpserver_connections": series("tcpserver_connections_total").get((), 0),
    "deliveries": {k[0]: v for k, v in series("qmail_send_deliveries_total").items()},
    "smtpd_verdicts": {"::".join(k): v for k, v in series("qmail_smtpd_verdicts_total").items()},
}
want = {
    "lines": t["lines"],
    "tcpserver_connections": t["tcpserver_connections"],
    "deliveries": {k: v for k, v in t["deliveries"].items() if v},
    "smtpd_verdicts": t["smtpd_verdicts"],
}
ips = series("qmail_smtpd_lines_by_ip_total")
top = sorted(((k[0], v) for k, v in ips.items()), key=lambda kv: (-kv[1], kv[0]))[:20]
bad = [k for k in want if got[k] != want[k]]
if len(ips) != t["smtpd_distinct_ips"] or sum(ips.values()) != sum(want["smtpd_verdicts"].values()) \
        or [list(x) for x in top] != t["smtpd_lines_by_ip_top"]:
    bad.append("per-IP series")
if bad:
    print("mismatch: " + ", ".join(bad))
    sys.exit(1)
print("match (%d lines, %d verdict series, %d IPs)" % (got["lines"], len(got["smtpd_verdicts"]), len(ips)))
EOF
}

CHECK_FAILED=0
ROWS=$WORK/rows
: >"$ROWS"
log "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $("$MTAIL" --version | head -n 1)"
for name in "${NAMES[@]}"; do
  f=$BENCH_DIR/$name.log
  truth=$BENCH_DIR/$name.truth.json
  lines=$(json_get "$truth" lines)
  bytes=$(stat -c %s "$f")
  log "$name: $lines lines, $bytes bytes; warming the page cache"
  cat "$f" >/dev/null

  for ((i = 1; i <= WC_RUNS; i++)); do
    measure "$WORK/$name.wc.$i" -- wc -l "$f"
    got=$(awk '{ print $1 }' "$WORK/$name.wc.$i.out")
    [[ $got == "$lines" ]] || die "wc -l counted $got lines in $f, the generator wrote $lines"
  done
  echo "$name wc $lines $bytes $(pick min "$WORK/$name".wc.*.m)" >>"$ROWS"

  for ((i = 1; i <= RUNS; i++)); do
    log "$name: mtail run $i"
    # One shot: read the file from its start to EOF, print the metrics as JSON, exit. It still
    # opens its HTTP listener, so on a free port of the loopback only.
    measure "$WORK/$name.mtail.$i" -- "$MTAIL" --one_shot --one_shot_format json \
      --logtostderr --address 127.0.0.1 --port 0 --progs "$PROG" --logs "$f"
    read -r _ _ _ _ rc <"$WORK/$name.mtail.$i.m"
    if [[ $rc != 0 ]]; then
      tail -n 20 "$WORK/$name.mtail.$i.err" >&2
      die "mtail exited with $rc on $f"
    fi
    if ! result=$(check_mtail "$WORK/$name.mtail.$i.out" "$truth"); then
      CHECK_FAILED=1
    fi
    log "$name: mtail counts against the generator's: $result"
  done
  echo "$name mtail $lines $bytes $(pick median "$WORK/$name".mtail.*.m)" >>"$ROWS"

  if [[ $SKIP_MAILSCOPE != 1 ]]; then
    for ((i = 1; i <= RUNS; i++)); do
      log "$name: mailscope replay run $i"
      # shellcheck disable=SC2086  # REPLAY_ARGS is a list of words
      measure "$WORK/$name.mailscope.$i" -- "$MAILSCOPE" replay $REPLAY_ARGS "$f"
      read -r _ _ _ _ rc <"$WORK/$name.mailscope.$i.m"
      if [[ $rc != 0 ]]; then
        tail -n 20 "$WORK/$name.mailscope.$i.err" >&2
        die "mailscope replay exited with $rc on $f"
      fi
    done
    echo "$name mailscope $lines $bytes $(pick median "$WORK/$name".mailscope.*.m)" >>"$ROWS"
  fi
done

# --- report ------------------------------------------------------------------------------------
# rows: name tool lines bytes wall_s user_s sys_s maxrss_kb exit
echo
echo "| file | tool | lines | MB | wall s | lines/s | MB/s | CPU s (user+sys) | peak RSS MB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk '{
  printf "| %s | %s | %d | %.1f | %.3f | %.0f | %.1f | %.2f | %.1f |\n",
    $1, ($2 == "wc" ? "wc -l" : ($2 == "mtail" ? "mtail --one_shot" : "mailscope replay")),
    $3, $4 / 1e6, $5, $3 / $5, $4 / 1e6 / $5, $6 + $7, $8 / 1024
}' "$ROWS"
echo
echo "| file | mailscope lines/s ÷ mtail lines/s | mailscope bytes/s ÷ wc -l bytes/s |"
echo "|---|---:|---:|"
awk '{ wall[$1, $2] = $5; if (!($1 in order)) { order[$1] = ++n; byorder[n] = $1 } }
  END {
    for (i = 1; i <= n; i++) {
      f = byorder[i]
      if ((f, "mailscope") in wall) {
        # Same file, so the ratio of rates is the inverse ratio of wall times.
        printf "| %s | %.2f | %.3f |\n", f, wall[f, "mtail"] / wall[f, "mailscope"],
          wall[f, "wc"] / wall[f, "mailscope"]
      } else {
        printf "| %s | - | - |\n", f
      }
    }
  }' "$ROWS"
echo
echo "wc -l: fastest of $WC_RUNS runs; mtail and mailscope: median of $RUNS run(s). Inputs in $BENCH_DIR ($PREFIX prefixes)."
if [[ $CHECK_FAILED == 1 ]]; then
  echo "run_qmail_replay_bench.sh: mtail's counts differ from the generator's (see above)" >&2
  exit 1
fi
