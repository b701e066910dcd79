# Shared by the side-by-side benchmark scripts (sourced, not run): logging, stopping what a
# script started by PID, the EXIT trap, and reading a process's CPU time and memory from /proc.
#
# The sourcing script sets WORK (its work directory) and KEEP_WORKDIR, and keeps the PIDs it
# starts in DOVECOT_MASTER_PID, DOVECOT_CHILD_PIDS and MS_PID; it installs the trap with
# `trap cleanup EXIT`.

log() { echo "== $*" >&2; }

# Waits up to $2 seconds for PID $1 to exit; then SIGKILL.
stop_pid() {
  local pid=$1 timeout=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_dovecot() {
  [[ -n $DOVECOT_MASTER_PID ]] || return 0
  stop_pid "$DOVECOT_MASTER_PID" 15
  local pid
  for pid in $DOVECOT_CHILD_PIDS; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  DOVECOT_MASTER_PID=""
  DOVECOT_CHILD_PIDS=""
}

stop_mailscope() {
  [[ -n $MS_PID ]] || return 0
  stop_pid "$MS_PID" 15
  wait "$MS_PID" 2>/dev/null || true
  MS_PID=""
}

cleanup() {
  stop_mailscope
  stop_dovecot
  if [[ $KEEP_WORKDIR == 1 ]]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}

# utime and stime of a process, all threads, in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the comm field may hold spaces, so count from after its closing parenthesis).
proc_cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }
# On-CPU nanoseconds summed over the live threads (/proc/PID/task/*/schedstat): finer than the
# 10 ms ticks, a cross-check for short runs; threads that exited are missing from it.
proc_sched_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
# Minor page faults of the process so far, all threads (/proc/PID/stat): each is a page touched
# for the first time, some microseconds of kernel time on a VM.
proc_minor_faults() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $8 }'; }
# A /proc/PID/status value in kB: proc_status_kb PID VmHWM.
proc_status_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
