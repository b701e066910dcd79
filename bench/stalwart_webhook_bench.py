#!/usr/bin/env python3
"""Stalwart webhook ingest: events per CPU-second of `mailscope serve` and the
latency of its 2xx, for batches of 1, 100 and 10,000 events, with and
without signature checking and de-duplication.

The events are a mix built as Stalwart makes them (tests/integration/
lib_stalwart.py, fixed seed): inbound SMTP sessions (7 events each),
outbound deliveries (3 events: delivered, deferred or failed) and auth
failures, every event distinct, so de-duplication looks up and inserts
each one. Before the measured events the server takes as many others
(in batches of at least 100), so that its dedup table is grown and full of
them, as in a server that has run a while. For each case a fresh
`mailscope serve` (release build; the
shipped Stalwart metrics off, as by default, or on) takes the batches over
one keep-alive connection,
one POST at a time, as Stalwart sends them; its CPU time (user + system,
from /proc/PID/stat) is read before and after. The client's time between
sending a request and reading the whole response is the latency.

Usage: stalwart_webhook_bench.py [--mailscope PATH] [--events N] [--work DIR]
Prints a Markdown table. With --write-body FILE it writes one body of
10,000 events of the mix for the in-process stalwart_webhook_benchmark.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import lib_stalwart as ls  # noqa: E402

KEY = "bench-signing-key"
T0 = 1_749_982_853


def make_events(n: int) -> list[dict]:
    s = ls.Stalwart(seed=42)
    out: list[dict] = []
    i = 0
    while len(out) < n:
        t = T0 + i // 50
        r = i % 10
        if r < 6:
            out += s.smtp_session(t, f"203.0.{i % 250}.{i % 200 + 1}", f"user{i % 997}@ex{i % 53}.net",
                                  f"box{i % 389}@example.org", 1000 + (i * 7919) % 200000,
                                  spam=(i % 13 == 0))
        elif r < 9:
            code = (250, 250, 250, 451, 550)[i % 5]
            out += s.delivery(t, f"user{i % 997}@example.org", f"rcpt{i}@dest{i % 71}.example",
                              f"mx{i % 7}.dest{i % 71}.example", code, f"{code} reply text")
        else:
            out.append(s.auth_failure(t, f"198.51.{i % 100}.{i % 250 + 1}", f"user{i % 211}"))
        i += 1
    return out[:n]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024 if m else float("nan")


def run_case(binary: str, work: str, warmup: list[bytes], bodies: list[bytes],
             events_per_body: int, signed: bool, dedup: bool, metrics: bool) -> dict:
    root = tempfile.mkdtemp(dir=work)
    config = os.path.join(root, "mailscope.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"[sources.stalwart]\nshipped_metrics = {'true' if metrics else 'false'}\n")
        f.write(f'signature_key = "{KEY}"\n' if signed else "")
        f.write('dedup_window = "5 mins"\n' if dedup else "dedup_window = 0\n")
    log = open(os.path.join(root, "serve.log"), "wb")
    proc = subprocess.Popen([binary, "serve", "--config", config, "--run-dir",
                             os.path.join(root, "run"), "--data-dir", os.path.join(root, "data"),
                             "--http", "127.0.0.1:0"], stdout=log, stderr=log)
    try:
        address = None
        for _ in range(200):
            with open(os.path.join(root, "serve.log"), encoding="utf-8", errors="replace") as f:
                m = re.search(r"http listening on (\S+)", f.read())
            if m:
                address = m.group(1)
                break
            time.sleep(0.05)
        if address is None:
            raise RuntimeError("mailscope did not start")
        host, port = address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = [{"Content-Type": "application/json",
                    **({"X-Signature": ls.signature(KEY, b)} if signed else {})} for b in bodies]
        # Warm-up: as many other events as are measured, so that the dedup
        # table holds them (a server that has run a while) and the measured
        # events find it grown.
        for warm in warmup:
            conn.request("POST", "/ingest/stalwart", body=warm, headers={
                "Content-Type": "application/json",
                **({"X-Signature": ls.signature(KEY, warm)} if signed else {})})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"warm-up status {resp.status}")
        latencies = []
        cpu0 = cpu_seconds(proc.pid)
        wall0 = time.perf_counter()
        for body, h in zip(bodies, headers):
            t = time.perf_counter()
            conn.request("POST", "/ingest/stalwart", body=body, headers=h)
            resp = conn.getresponse()
            reply = resp.read()
            latencies.append(time.perf_counter() - t)
            if resp.status != 200:
                raise RuntimeError(f"status {resp.status}: {reply[:200]!r}")
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds(proc.pid) - cpu0
        conn.close()
        rss = peak_rss_mib(proc.pid)
        events = len(bodies) * events_per_body
        latencies.sort()
        return {"events": events, "cpu": cpu, "wall": wall, "rss": rss,
                "p50": latencies[len(latencies) // 2],
                "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                "bytes": sum(len(b) for b in bodies)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailscope", default=os.path.join(REPO, "build", "release", "src", "app",
                                                         "mailscope"))
    ap.add_argument("--events", type=int, default=1_000_000,
                    help="events per case for batches of 100 and 10,000 (batches of 1: a tenth)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--write-body", metavar="FILE",
                    help="write one body of 10,000 events of the mix (for "
                         "stalwart_webhook_benchmark --body) and exit")
    args = ap.parse_args()
    if args.write_body:
        with open(args.write_body, "wb") as f:
            f.write(ls.body(make_events(10_000)))
        return 0
    work = args.work or tempfile.mkdtemp(prefix="mailscope-stalwart-bench-")
    events = make_events(2 * args.events)
    rows = []
    for batch in (1, 100, 10_000):
        n = args.events // 10 if batch == 1 else args.events
        n -= n % batch
        warm_events = events[args.events:args.events + n]
        warmup = [ls.body(warm_events[i:i + max(batch, 100)])
                  for i in range(0, n, max(batch, 100))]
        bodies = [ls.body(events[i:i + batch]) for i in range(0, n, batch)]
        for signed, dedup, metrics in ((False, False, False), (True, True, False),
                                       (True, True, True)):
            r = run_case(args.mailscope, work, warmup, bodies, batch, signed, dedup, metrics)
            rows.append((batch, signed, dedup, metrics, r))
            print(f"# batch {batch} signed={signed} dedup={dedup} metrics={metrics}: "
                  f"{json.dumps(r)}", flush=True)
    print()
    print("| batch | signature | dedup | shipped metrics | events | body MiB | server CPU s | "
          "events / CPU-s | wall s | p50 ms | p99 ms | peak RSS MiB |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch, signed, dedup, metrics, r in rows:
        print(f"| {batch:,} | {'on' if signed else 'off'} | {'on' if dedup else 'off'} | "
              f"{'on' if metrics else 'off'} | "
              f"{r['events']:,} | {r['bytes'] / 2**20:.1f} | {r['cpu']:.2f} | "
              f"{r['events'] / r['cpu']:,.0f} | {r['wall']:.2f} | {r['p50'] * 1000:.2f} | "
              f"{r['p99'] * 1000:.2f} | {r['rss']:.0f} |")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
