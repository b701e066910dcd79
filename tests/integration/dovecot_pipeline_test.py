#!/usr/bin/env python3
"""The event pipeline with a real Dovecot 2.3: taxonomy, the FILTER, event control.

A private loopback Dovecot 2.3.19 sends its events to mailscope's
stats-writer. A client of our own connects there too, as Dovecot's processes
do, and keeps every FILTER mailscope sends them. mailscope's config disables
`dovecot:imap_command_finished` and still has metrics on it: a
[metrics.NAME] table with a file exporter, a `metric { }` block of the
Dovecot config (read through stats.dovecot_config) and one added by the real
`doveadm stats add --exporter`. Other metrics count the sessions' ends
(mail_user_session_finished). Real IMAP clients log in, with good and wrong
passwords.

  1. Phase one: no metric asks for auth events, so the FILTER names none and
     Dovecot sends only the sessions' ends: a refused and a good login leave
     no auth event and no taxonomy counter.
  2. Phase two: `doveadm stats add auth_failures 'kind=auth AND
     outcome=failure'`. Dovecot knows no kind or outcome; mailscope's next
     FILTER names auth_request_finished instead, and from then on Dovecot's
     auth process sends every login: auth_failures counts exactly the
     refused ones (doveadm stats dump, dovecot_auth_failures_total), and
     mailscope_taxonomy_events_total{kind="auth",outcome=...,source="dovecot"}
     counts the failures and the successes.
  3. Phase three: two `mailscope tail` clients, one for every event, one for
     the disabled one. No FILTER ever asks for imap_command_finished, so
     Dovecot never sends it. One sent by hand on the stats-writer, as a
     process ignoring the FILTER would, is counted as arriving but reaches
     no output: no metric counts it, no tail prints it, the exporter never
     writes it, while the hand-sent session end next to it and Dovecot's
     other events are tailed, counted and exported.
  4. Throughout, the Dovecot drop-in holds: doveadm adds metrics and dumps
     them on the stats-reader, and dovecot.conf and doveadm metrics keep
     Dovecot's names on /metrics.

Usage: dovecot_pipeline_test.py --mailscope PATH [--keep]. Exits 0 on
success, 1 on failure, 77 when not root or Dovecot is not installed.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import lib_dovecot as ld
import lib_mailscope as lm

WRITER_LINK = "mailscope-stats-writer"
DISABLED = "imap_command_finished"

# Part of the test Dovecot's dovecot.conf; mailscope reads its metric blocks
# through stats.dovecot_config. Neither asks for auth events. Refused logins
# are answered at once instead of after Dovecot's default 2 s.
DOVECOT_METRICS = """\
auth_failure_delay = 0
metric conf_imap_command {
  filter = event=imap_command_finished
  group_by = cmd_name
}
metric conf_session {
  filter = event=mail_user_session_finished
}
"""

CONFIG = """\
[events]
disabled = ["dovecot:imap_command_finished"]

[stats]
dovecot_config = "{dovecot_conf}"

[exporters.everything]
format = "json"
format_args = "time-unix"
transport = "file"
transport_args = "{export_path}"

[metrics.imap_commands]
filter = "event=imap_command_finished"
exporter = "everything"

[metrics.sessions]
filter = "event=mail_user_session_finished"
exporter = "everything"
"""


def tab_unescape(text: str) -> str:
    """Dovecot's tab-unescaping: \\001 followed by 1, t, r or n."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\001" and i + 1 < len(text):
            out.append({"1": "\001", "t": "\t", "r": "\r", "n": "\n"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class FilterWatcher:
    """A stats-writer client that sends no events and keeps every FILTER the
    server sends it: the greeting's, then each broadcast."""

    def __init__(self, path: str) -> None:
        self.filters: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.sendall(b"VERSION\tstats-client\t4\t0\n")
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode()
                if text.startswith("FILTER\t"):
                    with self.lock:
                        self.filters.append(tab_unescape(text[len("FILTER\t"):]))

    def count(self) -> int:
        with self.lock:
            return len(self.filters)

    def last(self) -> str:
        with self.lock:
            return self.filters[-1] if self.filters else ""

    def wait_new(self, seen: int, timeout: float = 5.0) -> bool:
        """Waits for a FILTER after the first `seen` ones."""
        return lm.wait_until(lambda: self.count() > seen, timeout)

    def send_event(self, name: str, **fields: str) -> None:
        """One EVENT line as a Dovecot process writes it (no parent, log
        type debug, created and last sent now), with string fields."""
        sec, usec = divmod(time.time_ns() // 1000, 1_000_000)
        items = ["EVENT", "0", "0", "0", str(sec), str(usec), "s" + os.path.basename(__file__), "1",
                 f"l{sec}", str(usec), "n" + name]
        for key, value in fields.items():
            items += ["S" + key, value]
        self.sock.sendall(("\t".join(items) + "\n").encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # ends the reader's recv()
        self.sock.close()


def asks_for(filter_text: str, event: str) -> bool:
    """Whether the FILTER names `event` other than in NOT event="..."."""
    quoted = f'event="{event}"'
    return filter_text.replace(f"NOT {quoted}", "").find(quoted) >= 0


def taxonomy(kind: str, outcome: str) -> str:
    """The /metrics sample of Dovecot's events of one kind and outcome."""
    return (f'mailscope_taxonomy_events_total{{kind="{kind}",outcome="{outcome}",'
            'source="dovecot"}')


class DovecotPipelineTest:
    def __init__(self, binary: str, root: str) -> None:
        self.c = lm.Checks()
        self.root = root
        self.users = [ld.MailUser("alice@example.com", "alice-pw"),
                      ld.MailUser("bob@example.org", "bob-pw")]
        self.dv = ld.StatsDovecot(os.path.join(root, "dovecot"), self.users, WRITER_LINK,
                                  extra=DOVECOT_METRICS)
        self.export_path = os.path.join(root, "exported.json")
        self.ms = lm.Mailscope(binary, os.path.join(root, "mailscope"),
                               config=CONFIG.replace("{dovecot_conf}", self.dv.config_path)
                               .replace("{export_path}", self.export_path)
                               + ld.mailscope_settings())
        self.watcher: FilterWatcher | None = None
        self.tails: list[subprocess.Popen] = []
        self.next_ip = 1  # failed logins come from 127.0.0.2, .3, ...

    # ---- helpers ------------------------------------------------------------

    def doveadm_stats(self, *args: str) -> subprocess.CompletedProcess:
        """doveadm stats add/remove find stats-reader under base_dir."""
        return subprocess.run(["doveadm", "-c", self.dv.config_path, "-o",
                               f"base_dir={self.ms.run_dir}", "stats", *args],
                              capture_output=True, text=True, timeout=30)

    def dump(self) -> dict[str, int]:
        """doveadm stats dump -s: metric -> count (-1 when the dump failed)."""
        r = subprocess.run(["doveadm", "-c", self.dv.config_path, "stats", "dump",
                            "-s", os.path.join(self.ms.run_dir, "stats-reader")],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return {"": -1}
        counts = {}
        for line in r.stdout.splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) > 2 and cols[1] == "duration":
                counts[cols[0]] = int(cols[2])
        return counts

    def sample(self, body: str, name: str) -> int | None:
        """The value of the sample `name` (with its labels) on /metrics."""
        for line in body.splitlines():
            if line.split(" ")[0] == name:
                return int(float(line.split()[-1]))
        return None

    def dovecot_events(self, body: str) -> dict[str, int]:
        """mailscope_events_total{source="dovecot"} on /metrics: event -> count."""
        found = re.findall(r'^mailscope_events_total\{source="dovecot",event="([^"]+)"\} (\d+)$',
                           body, re.M)
        return {name: int(n) for name, n in found}

    def login(self, user: ld.MailUser) -> None:
        """A good login, SELECT, NOOP and LOGOUT: one session."""
        client = ld.imap_login(self.dv.imap_port, user)
        client.select("INBOX")
        client.noop()
        client.logout()

    def failed_login(self, name: str) -> bool:
        """A wrong password; True when Dovecot refused it with a tagged NO
        [AUTHENTICATIONFAILED] (not a timeout or a lost connection). Each comes from an
        address of its own: auth delays a repeated failure from one address."""
        self.next_ip += 1
        refused, reply = ld.imap_login_refusal(self.dv.imap_port, ld.MailUser(name, "wrong"),
                                               source_ip=f"127.0.0.{self.next_ip}")
        if not refused:
            print(f"# wrong password for {name} not refused with NO: {reply}", flush=True)
        return refused

    def exported(self) -> list[dict]:
        if not os.path.exists(self.export_path):
            return []
        with open(self.export_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f.read().splitlines() if line]

    # ---- the test -----------------------------------------------------------

    def run(self) -> None:
        c = self.c
        self.dv.install()  # mailscope reads its dovecot.conf, so it is written first
        self.ms.start()
        self.watcher = FilterWatcher(os.path.join(self.ms.run_dir, "stats-writer"))
        self.dv.link_writer(os.path.join(self.ms.run_dir, "stats-writer"))
        self.dv.start()

        c.check("the greeting carries a FILTER", self.watcher.wait_new(0), "")
        first = self.watcher.last()
        print(f"# FILTER: {first}", flush=True)
        c.check("the FILTER asks for the sessions' end",
                asks_for(first, "mail_user_session_finished"), first)
        c.check("the FILTER never asks for the disabled event", not asks_for(first, DISABLED),
                first)
        c.check("the FILTER asks for no auth event yet",
                not asks_for(first, "auth_request_finished"), first)

        r = self.doveadm_stats("add", "--exporter", "everything", "imap_doveadm",
                               f"event={DISABLED}")
        c.equal("doveadm stats add imap_doveadm exits 0", r.returncode, 0, r.stderr)

        # ---- phase one: no metric, tail or exporter wants auth events.
        c.check("phase one: a wrong password is refused", self.failed_login(self.users[0].name))
        self.login(self.users[0])
        ok = lm.wait_until(lambda: self.dump().get("sessions", 0) >= 1, 15.0)
        c.check("phase one: the session's end arrives", ok, str(self.dump()))
        time.sleep(0.5)  # the auth process's events, had it sent any
        body = self.ms.http("/metrics").body
        c.equal("phase one: Dovecot sent only what the FILTER asks for (no auth event)",
                self.dovecot_events(body), {"mail_user_session_finished": 1})
        c.check("phase one: no taxonomy auth counter",
                'kind="auth"' not in body,
                "\n".join(ln for ln in body.splitlines() if "taxonomy" in ln))

        # ---- phase two: a metric on mailscope's own keys.
        seen = self.watcher.count()
        r = self.doveadm_stats("add", "auth_failures", "kind=auth AND outcome=failure")
        c.equal("doveadm stats add auth_failures exits 0", r.returncode, 0, r.stderr)
        c.check("a new FILTER follows", self.watcher.wait_new(seen), "")
        second = self.watcher.last()
        print(f"# FILTER: {second}", flush=True)
        c.check("the new FILTER asks for auth_request_finished",
                asks_for(second, "auth_request_finished"), second)
        c.check("the new FILTER still leaves out the disabled event",
                not asks_for(second, DISABLED), second)

        # Dovecot's processes read it in their own time: the watcher saw it
        # as the auth process did, give it a moment to read.
        time.sleep(0.3)
        failures = 3
        for n in range(failures):
            c.check(f"phase two: wrong password {n + 1} is refused",
                    self.failed_login(self.users[n % 2].name))
        self.login(self.users[1])
        ok = lm.wait_until(lambda: self.dump().get("auth_failures", 0) >= failures
                           and self.dump().get("sessions", 0) >= 2, 15.0)
        counts = self.dump()
        c.check("phase two: the failures arrive", ok, str(counts))
        c.equal("doveadm stats dump: auth_failures counts the failed logins after the FILTER",
                counts.get("auth_failures"), failures)
        c.equal("Dovecot's log holds those and the one before the FILTER",
                self.dv.log_text().count("(auth failed,"), failures + 1)
        body = self.ms.http("/metrics").body
        c.equal("/metrics: dovecot_auth_failures_total",
                self.sample(body, "dovecot_auth_failures_total"), failures)
        c.equal("/metrics: taxonomy auth failures",
                self.sample(body, taxonomy("auth", "failure")), failures)
        c.equal("/metrics: taxonomy auth successes",
                self.sample(body, taxonomy("auth", "success")), 1)
        c.equal("phase two: Dovecot sent only what the FILTER asks for, every login now",
                self.dovecot_events(body),
                {"mail_user_session_finished": 2, "auth_request_finished": failures + 1})

        # ---- phase three: tails, and the disabled event sent regardless.
        seen = self.watcher.count()
        every = subprocess.Popen(
            [self.ms.binary, "tail", "--run-dir", self.ms.run_dir, "--timeout", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        disabled = subprocess.Popen(
            [self.ms.binary, "tail", "--run-dir", self.ms.run_dir, "--timeout", "3",
             "--filter", f"event={DISABLED}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.tails = [every, disabled]
        c.check("the tails bring a new FILTER", self.watcher.wait_new(seen), "")
        # Both tails connect at once; a FILTER covering them both comes at the
        # latest a second after the first one.
        lm.wait_until(lambda: asks_for(self.watcher.last(), "*"), 1.5)
        third = self.watcher.last()
        print(f"# FILTER: {third}", flush=True)
        c.check("the tails' FILTER asks for every event", asks_for(third, "*"), third)
        c.check("the tails' FILTER still leaves out the disabled event",
                not asks_for(third, DISABLED), third)
        # What a Dovecot process ignoring the FILTER would send: the disabled
        # event reaches mailscope (and is counted as arriving) but no output,
        # while an event of the same connection that is not disabled does.
        self.watcher.send_event(DISABLED, cmd_name="NOOP", tagged_reply_state="OK",
                                user="watcher@example.net")
        self.watcher.send_event("mail_user_session_finished", user="watcher@example.net")
        self.login(self.users[0])
        out, err = every.communicate(timeout=30)
        c.equal("tail (every event) exits 0", every.returncode, 0, err)
        lines = out.splitlines()
        names = [ln.split(" ")[2] for ln in lines if len(ln.split(" ")) > 2]
        print(f"# tailed: {sorted(set(names))}", flush=True)
        c.check("tail prints the login and the session's end",
                "auth_request_finished" in names and any(
                    " mail_user_session_finished " in ln and "user=alice@example.com" in ln
                    for ln in lines), out[:3000])
        c.equal("tail prints the hand-sent session end once", sum(
            " mail_user_session_finished " in ln and "user=watcher@example.net" in ln
            for ln in lines), 1, out[:3000])
        c.check("tail never prints the disabled event", DISABLED not in names, out[:3000])
        out, err = disabled.communicate(timeout=30)
        c.equal("tail of the disabled event gets nothing (exit 1 at the timeout)",
                (disabled.returncode, out), (1, ""), err)

        sessions = 4  # three logins and the hand-sent one
        ok = lm.wait_until(lambda: self.dump().get("sessions", 0) >= sessions, 15.0)
        counts = self.dump()
        c.check("phase three: the session's end arrives", ok, str(counts))
        c.equal("sessions counts every session's end", counts.get("sessions"), sessions)
        c.equal("conf_session counts every session's end", counts.get("conf_session"), sessions)
        for metric in ("imap_commands", "conf_imap_command", "imap_doveadm"):
            c.equal(f"{metric} counts no disabled event", counts.get(metric), 0)
        c.equal("auth_failures still counts the failures", counts.get("auth_failures"), failures)
        body = self.ms.http("/metrics").body
        # Dovecot's processes test every event against the FILTER before
        # sending it (stats-client.c), and no FILTER named it: the one that
        # arrived is the hand-sent one.
        c.equal("/metrics: Dovecot never sent the disabled event", self.sample(
            body, f'mailscope_events_total{{source="dovecot",event="{DISABLED}"}}'), 1)
        # The taxonomy counts arrivals, as mailscope_events_total does; event
        # control decides what the outputs get.
        c.equal("/metrics: taxonomy counts the hand-sent command as it arrived",
                self.sample(body, taxonomy("command", "success")), 1)
        c.equal("/metrics: taxonomy auth successes after the third login",
                self.sample(body, taxonomy("auth", "success")), 2)
        c.equal("/metrics: taxonomy auth failures unchanged",
                self.sample(body, taxonomy("auth", "failure")), failures)
        c.equal("/metrics: dovecot_conf_session_total (a dovecot.conf metric)",
                self.sample(body, "dovecot_conf_session_total"), sessions)
        c.equal("/metrics: dovecot_conf_imap_command_total (a dovecot.conf metric)",
                self.sample(body, "dovecot_conf_imap_command_total"), 0)
        c.equal("/metrics: dovecot_imap_doveadm_total (a doveadm metric)",
                self.sample(body, "dovecot_imap_doveadm_total"), 0)
        c.equal("/metrics: mailscope_sessions_total (a TOML metric)",
                self.sample(body, "mailscope_sessions_total"), sessions)
        c.equal("/metrics: mailscope_imap_commands_total (a TOML metric)",
                self.sample(body, "mailscope_imap_commands_total"), 0)

        lm.wait_until(lambda: len(self.exported()) >= sessions, 10.0)
        exported = self.exported()
        c.equal("the exporter wrote every session's end and nothing else",
                [e.get("event") for e in exported], ["mail_user_session_finished"] * sessions)
        c.equal("the exporter wrote the hand-sent session end",
                sum(e.get("fields", {}).get("user") == "watcher@example.net" for e in exported), 1)
        body = self.ms.http("/metrics").body
        c.equal("/metrics: the exporter counts them as sent", self.sample(
            body, 'mailscope_exporter_events_total{exporter="everything",result="sent"}'),
            sessions)

    def cleanup(self) -> None:
        for tail in self.tails:
            if tail.poll() is None:
                tail.kill()
                tail.communicate()
        if self.watcher is not None:
            self.watcher.close()
        self.dv.stop()
        rc = self.ms.stop()
        self.c.equal("mailscope exits 0 on SIGTERM", rc, 0)

    def print_logs(self) -> None:
        lm.print_log_tails([self.ms.log_path, self.dv.log_path])


def main(argv: list[str]) -> int:
    return ld.run_dovecot_test(argv, __doc__, "mailscope-dovecot-pipeline-", "dovecot pipeline",
                               DovecotPipelineTest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
