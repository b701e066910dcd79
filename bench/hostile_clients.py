#!/usr/bin/env python3
"""Hostile local clients against a running `mailscope serve`.

Opens, against the run directory RUN_DIR of a mailscope started by the caller:
  - CLIENTS stats-writer connections, each sending the client VERSION line and then
    HALF_BYTES bytes of an EVENT line without its end, and holding them;
  - one old-stats connection that pipelines `EXPORT global` requests and never reads;
  - one stats-writer connection that sends a LINE_MIB MiB line.
While they hold on, it reads the server's resident memory from /proc (VmRSS, and VmHWM,
the peak) and times `GET /healthz` on HTTP and `doveadm oldstats dump -s RUN_DIR/old-stats
global`. Prints one line per figure and exits 1 when the peak is RSS_LIMIT_MIB or more or an
answer takes DEADLINE seconds or more (or never comes).

Then, with those answers taken, HTTP_CLIENTS connections to HTTP_ADDR each send half a
request header and hold it; those over the HTTP listener's client_limit should be answered
503 and closed. The peak RSS of the whole run counts.

Usage: hostile_clients.py PID RUN_DIR HTTP_ADDR [CLIENTS HALF_BYTES LINE_MIB HTTP_CLIENTS]
"""
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request

RSS_LIMIT_MIB = 128
DEADLINE = 2.0


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def open_half_lines(path, count, half_bytes, held):
    hello = b"VERSION\tstats-client\t4\t0\n"
    half = (b"EVENT\t0\t1\t0\t1700000000\t0\tsimap_command_finished\t" + b"x" * half_bytes)[:half_bytes]
    refused = 0
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.sendall(hello + half)
            held.append(s)
        except OSError:
            refused += 1
            s.close()
    return refused


def open_half_requests(addr, count, held):
    host, port = addr.rsplit(":", 1)
    half = b"GET /healthz HTTP/1.1\r\nHost: mailscope\r\nX-Pad: " + b"z" * 2048
    failed = 0
    for _ in range(count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:  # this client's own descriptors ran out
            failed += 1
            continue
        try:
            s.connect((host, int(port)))
            s.sendall(half)
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    time.sleep(1.0)  # let the server accept or refuse each
    refused = 0
    for s in held:
        s.settimeout(0.01)
        try:
            if s.recv(64).startswith(b"HTTP/1.1 503"):
                refused += 1
        except OSError:
            pass
    return refused, failed


def pipeline_exports(path, stop, sent):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(0.5)
    chunk = b"EXPORT\tglobal\n" * 4096
    while not stop.is_set():
        try:
            s.sendall(chunk)
            sent[0] += 4096
        except socket.timeout:
            continue  # the server stopped reading: what this client wants to see
        except OSError:
            break
    stop.wait()
    s.close()


def send_long_line(path, mib, outcome):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"VERSION\tstats-client\t4\t0\n")
    block = b"y" * (1 << 20)
    sent = 0
    try:
        for _ in range(mib):
            s.sendall(block)
            sent += 1
        s.sendall(b"\n")
        outcome.append(f"sent all {mib} MiB")
    except OSError as e:
        outcome.append(f"closed by the server after {sent} MiB sent ({e.strerror})")
    s.close()


def timed(what, fn):
    start = time.monotonic()
    try:
        fn()
        ok = True
    except Exception as e:  # noqa: BLE001 - any failure is a failed answer
        print(f"{what}: failed: {e}")
        ok = False
    return ok, time.monotonic() - start


def main():
    pid, run_dir, http = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 8000
    half_bytes = int(sys.argv[5]) if len(sys.argv) > 5 else 512
    line_mib = int(sys.argv[6]) if len(sys.argv) > 6 else 64
    http_clients = int(sys.argv[7]) if len(sys.argv) > 7 else 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    rss_start = proc_kib(pid, "VmRSS")
    held = []
    t0 = time.monotonic()
    refused = open_half_lines(f"{run_dir}/stats-writer", clients, half_bytes, held)
    print(f"stats-writer clients holding {half_bytes} bytes of a line: {len(held)} "
          f"({refused} refused) in {time.monotonic() - t0:.1f} s")

    stop = threading.Event()
    sent = [0]
    pipeliner = threading.Thread(target=pipeline_exports,
                                 args=(f"{run_dir}/old-stats", stop, sent), daemon=True)
    pipeliner.start()
    outcome = []
    long_line = threading.Thread(target=send_long_line,
                                 args=(f"{run_dir}/stats-writer", line_mib, outcome), daemon=True)
    long_line.start()
    long_line.join(60)
    time.sleep(1.0)  # let the pipeliner fill what the server lets it fill

    ok_http, t_http = timed("GET /healthz", lambda: urllib.request.urlopen(
        f"http://{http}/healthz", timeout=10).read())
    ok_dump, t_dump = timed("doveadm oldstats dump", lambda: subprocess.run(
        ["doveadm", "oldstats", "dump", "-s", f"{run_dir}/old-stats", "global"],
        check=True, capture_output=True, timeout=10))
    rss = proc_kib(pid, "VmRSS")
    stop.set()
    pipeliner.join(5)

    http_held = []
    http_refused, http_failed = open_half_requests(http, http_clients, http_held)
    http_rss = proc_kib(pid, "VmRSS")
    hwm = proc_kib(pid, "VmHWM")

    print(f"EXPORT requests sent without reading: {sent[0]}")
    print(f"{line_mib} MiB line: {outcome[0] if outcome else 'still sending after 60 s'}")
    print(f"GET /healthz: {t_http:.3f} s")
    print(f"doveadm oldstats dump -s {run_dir}/old-stats global: {t_dump:.3f} s")
    print(f"HTTP clients holding half a request header: {http_clients}, "
          f"{http_refused} answered 503, {http_failed} could not connect or send")
    print(f"RSS: {rss_start / 1024:.1f} MiB before, {rss / 1024:.1f} MiB with the clients, "
          f"{http_rss / 1024:.1f} MiB with the HTTP clients too, peak {hwm / 1024:.1f} MiB")
    failed = (not ok_http or not ok_dump or t_http >= DEADLINE or t_dump >= DEADLINE
              or hwm >= RSS_LIMIT_MIB * 1024)
    for s in held + http_held:
        s.close()
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
