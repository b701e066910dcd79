#!/usr/bin/env python3
"""GET /metrics against the real Prometheus tooling.

Starts `mailscope serve`, feeds old-stats lines (good and bad) into its FIFO,
then checks:
  * the Prometheus text format passes `promtool check metrics` (Prometheus'
    own linter, from Debian's prometheus package),
  * the OpenMetrics body (asked for with Accept) ends in "# EOF" and carries
    the same samples, and a real Prometheus (which asks for OpenMetrics)
    scrapes it with the target up and no error,
  * the counters match what was fed: events per command, rejections per
    reason, logins, auth successes,
  * /healthz answers, unknown paths give 404, POST gives 405.

Usage: metrics_test.py --mailscope PATH. Exits 0 on success, 1 on failure,
77 when promtool is not installed (1 under MAILSCOPE_REQUIRE_INTEGRATION=1, which
also turns a missing prometheus into a failed check).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_mailscope as lm  # noqa: E402


def sample(body: str, name: str) -> float:
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
    return float(m.group(1)) if m else float("nan")


def scrape_with_prometheus(c: lm.Checks, target: str, work: str) -> None:
    """A real Prometheus scrapes /metrics (it asks for OpenMetrics first)."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        c.skip_part("a real Prometheus scrapes mailscope", "prometheus not installed")
        return
    with lm.Prometheus(prometheus, target, work) as prom:
        health, error = prom.wait_scraped()
        c.check("a real Prometheus scrapes mailscope with the target up", health == "up",
                f"health={health} error={error}")
        c.check("the scrape reports no error", error == "", str(error))
        value = prom.query('mailscope_old_stats_logins_total{job="mailscope"}', want=2)
        c.check("Prometheus holds mailscope's logins counter", value == 2, str(value))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailscope", required=True)
    args = ap.parse_args()
    promtool = shutil.which("promtool")
    if promtool is None:
        return lm.skip("promtool not installed (Debian package prometheus)")

    c = lm.Checks()
    work = tempfile.mkdtemp(prefix="mailscope-metrics-")
    serve = lm.Mailscope(args.mailscope, os.path.join(work, "mailscope"))
    try:
        error = ""
        try:
            serve.start(timeout=10)
        except RuntimeError as err:
            error = str(err)
        c.check("serve announces its HTTP address", serve.http_address is not None, error)
        if serve.http_address is None:
            return 1

        lines = [
            "CONNECT\ts1\talice@example.com\timap\t100\tlip=127.0.0.1\trip=127.0.0.1",
            "CONNECT\ts2\tbob@example.org\tpop3\t101\trip=::1",
            f"UPDATE-SESSION\ts1\t{lm.mail_payload(user_cpu=2500, read_bytes=4096)}",
            f"UPDATE-CMD\ts1\t1\t\tSELECT\tINBOX\t{lm.mail_payload(user_cpu=10, read_bytes=1)}",
            "UPDATE-SESSION\ts2\tnot-base64!",
            "BOGUS\tline",
            "DISCONNECT\ts2",
        ]
        lm.write_fifo(serve.mail_fifo, [line + "\n" for line in lines])
        lm.write_fifo(serve.auth_fifo, [
            f"ADD-USER\talice@example.com\timap\t{lm.auth_payload(auth_successes=1)}\n"])

        # Wait (with a deadline) until every line is accounted.
        body = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, ctype, body = serve.http("/metrics")
            if 'event="ADD-USER"} 1' in body and 'event="DISCONNECT"} 1' in body:
                break
            time.sleep(0.05)

        c.check("text format content type", ctype.startswith("text/plain; version=0.0.4"), ctype)
        lint = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                              capture_output=True)
        c.check("promtool check metrics accepts the text format", lint.returncode == 0,
                (lint.stdout + lint.stderr).strip()[:2000])

        def ev(name: str) -> float:
            return sample(body, f'mailscope_events_total{{source="dovecot_old_stats",event="{name}"}}')

        c.check("CONNECT events counted", ev("CONNECT") == 2, str(ev("CONNECT")))
        c.check("UPDATE-SESSION events counted (the bad payload one too)", ev("UPDATE-SESSION") == 2)
        c.check("UPDATE-CMD events counted", ev("UPDATE-CMD") == 1)
        c.check("ADD-USER events counted", ev("ADD-USER") == 1)
        rej = lambda reason: sample(
            body, f'mailscope_ingest_rejected_total{{source="dovecot_old_stats",reason="{reason}"}}')
        c.check("bad base64 rejection counted", rej("invalid_base64") == 1)
        c.check("unknown command rejection counted", rej("unknown_command") == 1)
        c.check("global logins", sample(body, "mailscope_old_stats_logins_total") == 2)
        c.check("global commands", sample(body, "mailscope_old_stats_commands_total") == 1)
        c.check("connected sessions", sample(body, "mailscope_old_stats_connected_sessions") == 1)
        c.check("auth successes", sample(body, "mailscope_old_stats_auth_successes_total") == 1)
        c.check("user CPU in seconds", abs(sample(body, "mailscope_old_stats_user_cpu_seconds_total")
                                           - 0.0025) < 1e-9)
        c.check("read bytes", sample(body, "mailscope_old_stats_read_bytes_total") == 4096)
        c.check("memory limit", sample(body, 'mailscope_memory_limit_bytes{store="old_stats"}')
                == 16 * 1024 * 1024)

        status, ctype, om = serve.http("/metrics", accept="application/openmetrics-text;version=1.0.0")
        c.check("OpenMetrics content type", ctype.startswith("application/openmetrics-text"), ctype)
        c.check("OpenMetrics body ends in # EOF", om.endswith("# EOF\n"))
        c.check("OpenMetrics counter family without _total",
                "# TYPE mailscope_events counter\n" in om)
        c.check("OpenMetrics carries the same samples",
                sample(om, "mailscope_old_stats_logins_total") == 2)
        scrape_with_prometheus(c, serve.http_address, work)

        status, _, text = serve.http("/healthz")
        c.check("/healthz answers ok", status == 200 and text == "ok\n")
        status, _, _ = serve.http("/nowhere")
        c.check("unknown path is 404", status == 404)
        status, _, _ = serve.http("/metrics", method="POST")
        c.check("POST is 405", status == 405)
    finally:
        rc = serve.stop(timeout=10)
        c.check("serve exits 0 on SIGTERM", rc == 0, str(rc))
        shutil.rmtree(work, ignore_errors=True)
    return c.summary("metrics")


if __name__ == "__main__":
    sys.exit(main())
