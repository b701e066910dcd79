#!/usr/bin/env python3
"""Dovecot 2.3 statistics against mailscope, with real Dovecot processes.

A private loopback Dovecot 2.3.19 sends its events to mailscope's
stats-writer socket (stats_writer_socket_path names a link to it in Dovecot's
base_dir). Metrics come from three places: the `metric { }` blocks of that
Dovecot's own dovecot.conf, which mailscope reads whole (IMAP commands by
command and reply state, auth successes and failures, an exponential
duration histogram, LMTP deliveries), a [metrics.NAME] table of mailscope's
config (with a size unit), and the real doveadm adding and removing metrics at run time on
mailscope's stats-reader (doveadm stats add takes no -s, so it runs with
-o base_dir=<mailscope run dir>). Real clients log in over IMAP (good and
bad passwords), run commands and deliver two messages over LMTP; then
`doveadm stats dump -s` must show exactly that traffic, /metrics must carry
it under Dovecot's names (mailscope_<name> for the [metrics.NAME] one) and
pass promtool, and a real Prometheus must scrape it with the target up and
hold the same numbers.

Usage: dovecot_stats_test.py --mailscope PATH [--keep]. Exits 0 on success,
1 on failure, 77 when not root or Dovecot is not installed.
"""

import os
import shutil
import subprocess
import sys
import time

import lib_dovecot as ld
import lib_mailscope as lm

WRITER_LINK = "mailscope-stats-writer"

# Metric blocks in Dovecot's own syntax and filter language. They are part of
# the test Dovecot's dovecot.conf (so Dovecot itself checks them when it
# starts), and mailscope reads that whole file through stats.dovecot_config.
DOVECOT_METRICS = """\
# metrics of the stats service
metric imap_command {
  description = IMAP commands by name and reply state
  filter = event=imap_command_finished
  fields = bytes_in bytes_out
  group_by = cmd_name tagged_reply_state
}
metric auth_success {
  description = successful authentications
  filter = event=auth_request_finished AND success=yes
}
metric auth_failure {
  description = failed authentications
  filter = event=auth_request_finished AND NOT success=yes
}
metric imap_duration {
  description = IMAP command duration
  filter = event=imap_command_finished
  group_by = duration:exponential:1:7:10
}
metric mail_delivery {
  description = LMTP deliveries
  filter = event=mail_delivery_finished
  fields = message_size
}
"""

CONFIG = """\
[stats]
dovecot_config = "{dovecot_conf}"

[metrics.big_delivery]
description = "deliveries of 1 KiB or more"
filter = "event=mail_delivery_finished AND message_size >= 1k"
"""
CONFIGURED = ["imap_command", "auth_success", "auth_failure", "imap_duration", "mail_delivery"]


class DovecotStatsTest:
    def __init__(self, binary: str, root: str) -> None:
        self.c = lm.Checks()
        self.root = root
        self.users = [ld.MailUser("alice@example.com", "alice-pw"),
                      ld.MailUser("bob@example.org", "bob-pw")]
        self.dv = ld.StatsDovecot(os.path.join(root, "dovecot"), self.users, WRITER_LINK,
                                  extra=DOVECOT_METRICS, lmtp=True)
        self.ms = lm.Mailscope(binary, os.path.join(root, "mailscope"),
                               config=CONFIG.replace("{dovecot_conf}", self.dv.config_path)
                               + ld.mailscope_settings())
        self.dump_order: list[str] = []

    # ---- helpers ------------------------------------------------------------

    def doveadm_reader(self, *args: str) -> subprocess.CompletedProcess:
        """doveadm stats add/remove: they find stats-reader under base_dir."""
        return subprocess.run(["doveadm", "-c", self.dv.config_path, "-o",
                               f"base_dir={self.ms.run_dir}", "stats", *args],
                              capture_output=True, text=True, timeout=30)

    def dump(self) -> dict[tuple[str, str], list[str]]:
        """doveadm stats dump -s: (metric, field) -> the stat columns."""
        r = subprocess.run(["doveadm", "-c", self.dv.config_path, "stats", "dump",
                            "-s", os.path.join(self.ms.run_dir, "stats-reader")],
                           capture_output=True, text=True, timeout=30)
        self.c.equal("doveadm stats dump exits 0", r.returncode, 0)
        rows: dict[tuple[str, str], list[str]] = {}
        self.dump_order = []
        lines = r.stdout.splitlines()
        if lines:
            self.c.equal("dump header",
                         lines[0].split("\t"),
                         ["metric_name", "field", "count", "sum", "min", "max", "avg",
                          "median", "stddev", "%95"])
        for line in lines[1:]:
            cols = line.split("\t")
            rows[(cols[0], cols[1])] = cols[2:]
            if cols[0] not in self.dump_order:
                self.dump_order.append(cols[0])
        return rows

    def count(self, rows: dict, metric: str) -> int:
        cols = rows.get((metric, "duration"))
        return int(cols[0]) if cols else -1

    # ---- the test -----------------------------------------------------------

    def run(self) -> None:
        c = self.c
        self.dv.install()  # mailscope reads its dovecot.conf, so it is written first
        self.ms.start()
        self.dv.link_writer(os.path.join(self.ms.run_dir, "stats-writer"))
        self.dv.start()

        r = self.doveadm_reader("add", "--group-by", "cmd_name",
                                "--description", "IMAP commands", "imap_cmd",
                                "event=imap_command_finished")
        c.equal("doveadm stats add imap_cmd exits 0", r.returncode, 0)
        # doveadm itself is a stats client: it resolves the writer name
        # against its working directory and says so (a 2.3.19 quirk).
        errors = [ln for ln in r.stderr.splitlines() if "Error" in ln and WRITER_LINK not in ln]
        c.check("doveadm stats add imap_cmd prints no other error", not errors, r.stderr)
        r = self.doveadm_reader("add", "auth_ok", "event=auth_request_finished AND success=yes")
        c.equal("doveadm stats add auth_ok exits 0", r.returncode, 0)
        r = self.doveadm_reader("add", "auth_fail",
                                "event=auth_request_finished AND NOT success=yes")
        c.equal("doveadm stats add auth_fail exits 0", r.returncode, 0)
        r = self.doveadm_reader("add", "--group-by", "duration:exponential:1:5:10", "imap_hist",
                                "event=imap_command_finished")
        c.equal("doveadm stats add imap_hist exits 0", r.returncode, 0)
        r = self.doveadm_reader("add", "imap_cmd", "event=imap_command_finished")
        c.check("adding an existing metric is refused", "Metric already exists" in r.stderr,
                r.stderr)
        r = self.doveadm_reader("add", "bad", "event=(")
        c.check("a bad filter is refused with the parser's message",
                "event filter: syntax error" in r.stderr, r.stderr)
        # New metrics reach the writers in a new FILTER a second later.
        time.sleep(1.5)

        alice = ld.imap_login(self.dv.imap_port, self.users[0])
        alice.select("INBOX")
        alice.noop()
        alice.noop()
        alice.noop()
        alice.logout()
        bob = ld.imap_login(self.dv.imap_port, self.users[1])
        bob.select("INBOX")
        bob.noop()
        bob.logout()
        refused, reply = ld.imap_login_refusal(self.dv.imap_port,
                                               ld.MailUser("alice@example.com", "wrong"))
        c.check("a wrong password is refused with NO [AUTHENTICATIONFAILED]", refused, reply)

        # A tail for events no metric wants: Dovecot's processes must be asked
        # for them (a new FILTER), and they must reach the tail.
        tail = subprocess.Popen(
            [self.ms.binary, "tail", "--run-dir", self.ms.run_dir, "-n", "2", "--timeout", "30",
             "--filter", "event=smtp_server_command_finished AND cmd_name=RCPT"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        small = "From: carol@example.net\r\nSubject: small\r\n\r\nhello\r\n"
        big = "From: carol@example.net\r\nSubject: big\r\n\r\n" + "x" * 70 + "\r\n"
        big += ("y" * 70 + "\r\n") * 40
        refused = ld.lmtp_deliver(self.dv.lmtp_port, "carol@example.net",
                                  ["alice@example.com"], small)
        c.equal("LMTP delivers the small message", refused, {})
        refused = ld.lmtp_deliver(self.dv.lmtp_port, "carol@example.net",
                                  ["bob@example.org"], big)
        c.equal("LMTP delivers the big message", refused, {})

        try:
            out, err = tail.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            tail.kill()
            out, err = tail.communicate()
        c.equal("mailscope tail exits 0 after -n 2 events", tail.returncode, 0, err)
        lines = out.splitlines()
        c.check("tail prints the two LMTP RCPT commands in order, with their parents' fields",
                len(lines) == 2
                and all(" dovecot smtp_server_command_finished categories=" in ln
                        and " cmd_name=RCPT " in ln and " protocol=lmtp" in ln for ln in lines)
                and "TO:<alice@example.com>" in lines[0] and "TO:<bob@example.org>" in lines[-1],
                out)
        bad = subprocess.run([self.ms.binary, "tail", "--run-dir", self.ms.run_dir,
                              "--filter", "event=("], capture_output=True, text=True)
        c.check("tail rejects a bad filter naming the position",
                bad.returncode == 2 and "syntax error at 7" in bad.stderr, bad.stderr)

        expected = {"SELECT": 2, "NOOP": 4, "LOGOUT": 2}
        total = sum(expected.values())
        ok = ld.wait_until(lambda: self.count(self.dump(), "imap_cmd") >= total, 20.0)
        rows = self.dump()
        c.check("imap_cmd counts every IMAP command", ok and self.count(rows, "imap_cmd") == total,
                str(rows.get(("imap_cmd", "duration"))))
        for cmd, n in expected.items():
            c.equal(f"imap_cmd_{cmd} count", self.count(rows, f"imap_cmd_{cmd}"), n)
        c.equal("auth_ok counts the two good logins", self.count(rows, "auth_ok"), 2)
        c.equal("auth_fail counts the bad login", self.count(rows, "auth_fail"), 1)
        cols = rows.get(("imap_cmd", "duration"), ["0"] * 8)
        c.check("durations are plausible (sum >= max >= min > 0)",
                int(cols[1]) >= int(cols[3]) >= int(cols[2]) > 0, str(cols))

        # The metrics of the configuration, pasted Dovecot blocks first.
        dynamic = ["imap_cmd", "auth_ok", "auth_fail", "imap_hist"]
        c.equal("configured metrics (the TOML table, then dovecot.conf's blocks) come first",
                [m for m in self.dump_order if m in ["big_delivery"] + CONFIGURED + dynamic],
                ["big_delivery"] + CONFIGURED + dynamic)
        c.equal("imap_command counts every IMAP command", self.count(rows, "imap_command"), total)
        for cmd, n in expected.items():
            c.equal(f"imap_command_{cmd}_OK count", self.count(rows, f"imap_command_{cmd}_OK"), n)
        c.equal("auth_success counts the two good logins", self.count(rows, "auth_success"), 2)
        c.equal("auth_failure counts the bad login", self.count(rows, "auth_failure"), 1)
        buckets = {m: self.count(rows, m) for (m, f) in rows
                   if m.startswith("imap_duration_duration_") and f == "duration"}
        c.equal("the duration histogram's buckets hold every command",
                sum(buckets.values()), total, str(buckets))
        c.equal("mail_delivery counts both LMTP deliveries", self.count(rows, "mail_delivery"), 2)
        size = rows.get(("mail_delivery", "message_size"), ["0"] * 8)
        c.check("message_size: two values, the big one over 1 KiB, the small one under",
                size[0] == "2" and int(size[3]) >= 1024 > int(size[2]) > 0, str(size))
        c.equal("big_delivery (mailscope units: >= 1k) counts the big one",
                self.count(rows, "big_delivery"), 1)

        r = self.doveadm_reader("remove", "auth_fail")
        c.equal("doveadm stats remove exits 0", r.returncode, 0)
        r = self.doveadm_reader("remove", "nosuch")
        c.check("removing an unknown metric is refused",
                "metrics 'nosuch' not found" in r.stderr, r.stderr)
        rows = self.dump()
        c.check("a removed metric is gone from the dump", ("auth_fail", "duration") not in rows)

        body = self.ms.http("/metrics").body
        line = 'mailscope_events_total{source="dovecot",event="imap_command_finished"}'
        value = next((ln.split()[-1] for ln in body.splitlines() if ln.startswith(line)), None)
        c.check("/metrics counts the events by name", value is not None and int(value) >= total,
                str(value))

        def sample(name: str) -> str | None:
            return next((ln.split()[-1] for ln in body.splitlines()
                         if ln.split(" ")[0] == name), None)
        c.equal("/metrics: dovecot_imap_cmd_total", sample("dovecot_imap_cmd_total"), str(total))
        c.equal("/metrics: NOOP sub-metric", sample('dovecot_imap_cmd_total{cmd_name="NOOP"}'), "4")
        c.equal("/metrics: histogram count", sample("dovecot_imap_hist_count"), str(total))
        c.equal("/metrics: +Inf bucket", sample('dovecot_imap_hist_bucket{le="+Inf"}'), str(total))
        c.equal("/metrics: auth_success", sample("dovecot_auth_success_total"), "2")
        c.equal("/metrics: auth_failure", sample("dovecot_auth_failure_total"), "1")
        c.equal("/metrics: NOOP/OK sub-metric",
                sample('dovecot_imap_command_total{cmd_name="NOOP",tagged_reply_state="OK"}'), "4")
        c.equal("/metrics: deliveries", sample("dovecot_mail_delivery_total"), "2")
        c.equal("/metrics: duration histogram count", sample("dovecot_imap_duration_count"),
                str(total))
        c.equal("/metrics: a [metrics.NAME] metric is mailscope_<name>",
                sample("mailscope_big_delivery_total"), "1")
        c.equal("/metrics: its sub-metric drops", sample(
            'mailscope_metric_sub_metrics_dropped_total{metric="big_delivery"}'), "0")
        promtool = shutil.which("promtool")
        if promtool is None:
            c.skip_part("promtool check metrics accepts the Dovecot metrics",
                        "promtool not installed")
        else:
            lint = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                                  capture_output=True)
            c.check("promtool check metrics accepts the Dovecot metrics", lint.returncode == 0,
                    (lint.stdout + lint.stderr)[:2000])
        prometheus = shutil.which("prometheus")
        if prometheus is None:
            c.skip_part("a real Prometheus scrapes the Dovecot metrics",
                        "prometheus not installed")
            return
        with lm.Prometheus(prometheus, self.ms.http_address, self.root) as prom:
            health, error = prom.wait_scraped()
            c.check("a real Prometheus scrapes the Dovecot metrics with the target up",
                    health == "up", f"health={health} error={error}")
            c.check("the scrape reports no error", error == "", str(error))
            for expr, want in [
                ('dovecot_imap_command_total{cmd_name="NOOP",tagged_reply_state="OK"}', 4),
                ('dovecot_imap_command_total{cmd_name="SELECT",tagged_reply_state="OK"}', 2),
                ("dovecot_auth_success_total", 2),
                ("dovecot_auth_failure_total", 1),
                ("dovecot_mail_delivery_total", 2),
                ("mailscope_big_delivery_total", 1),
                ("dovecot_imap_duration_count", total),
                ('dovecot_imap_duration_bucket{le="+Inf"}', total),
                # The family holds the metric and its sub-metrics: sum the labelled ones.
                ('sum(dovecot_imap_cmd_total{cmd_name!=""})', total),
            ]:
                value = prom.query(expr, want=want)
                c.equal(f"Prometheus: {expr}", value, want)
            median = prom.query("histogram_quantile(0.5, dovecot_imap_duration_bucket)")
            c.check("Prometheus computes a median from the duration histogram",
                    median is not None and 0 < median < 10, str(median))

    def cleanup(self) -> None:
        self.dv.stop()
        rc = self.ms.stop()
        self.c.equal("mailscope exits 0 on SIGTERM", rc, 0)
        for name in ("stats-writer", "stats-reader"):
            self.c.check(f"mailscope removed its {name} socket",
                         not os.path.lexists(os.path.join(self.ms.run_dir, name)))

    def print_logs(self) -> None:
        lm.print_log_tails([self.ms.log_path, self.dv.log_path])


def main(argv: list[str]) -> int:
    return ld.run_dovecot_test(argv, __doc__, "mailscope-dovecot-stats-", "dovecot stats", DovecotStatsTest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
