#!/usr/bin/env python3
"""Event records in SQLite with a real Dovecot 2.3: kept, queried, and safe from SIGKILL.

mailscope serve runs with a [records] table; a private loopback Dovecot
2.3.19 writes its events to mailscope's stats-writer, and a client of our
own writes there too, as Dovecot's processes do (the stats-writer protocol,
tab-escaped).

  1. Real IMAP logins, refused and good: `mailscope events --data-dir DIR
     --filter F --json` gives exactly the auth events and session ends that
     mailscope_events_total counts, each with source, event, an RFC 3339
     time, the normalized columns and Dovecot's fields; the refused logins
     are the ones Dovecot's own log reports. --format table, --limit,
     --since and --until shape and narrow the same records.
  2. Hostile values: quotes, backslashes, CR/LF, TAB, NUL, bytes that are
     not UTF-8 and a 400 KiB string come back byte for byte; an event over
     max_record_size is refused and counted in
     mailscope_records_dropped_total{reason="too_large"}.
  3. SIGKILL mid-stream: while 30,000 events stream in, mailscope is killed
     with SIGKILL right after /metrics said how many records were committed.
     After a restart on the same data directory, at least that many are
     there, and they are exactly the first ones sent (no gap, no duplicate);
     the restarted mailscope goes on adding to the same file.

Usage: records_test.py --mailscope PATH [--keep]. Exits 0 on success, 1 on
failure, 77 when not root or Dovecot is not installed.
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import lib_dovecot as ld
import lib_mailscope as lm

WRITER_LINK = "mailscope-stats-writer"
STREAMED = 30_000

CONFIG = """\
[records]
filter = ['kind=auth', 'event=mail_user_session_finished', 'user=streamer* OR user=hostile*']
max_record_size = "512K"
"""

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def field_bytes(value: object) -> bytes:
    """A field of `mailscope events --json` as the bytes it stands for."""
    if isinstance(value, dict) and "base64" in value:
        return base64.b64decode(value["base64"])
    return str(value).encode("utf-8")


class RecordsTest:
    def __init__(self, binary: str, root: str) -> None:
        self.c = lm.Checks()
        self.root = root
        self.users = [ld.MailUser("alice@example.com", "alice-pw"),
                      ld.MailUser("bob@example.org", "bob-pw")]
        self.dv = ld.StatsDovecot(os.path.join(root, "dovecot"), self.users, WRITER_LINK,
                                  extra="auth_failure_delay = 0\n")
        self.ms = lm.Mailscope(binary, os.path.join(root, "mailscope"),
                               config=CONFIG + ld.mailscope_settings())
        self.clients: list[ld.StatsWriterClient] = []

    # ---- helpers ------------------------------------------------------------

    def events(self, *args: str) -> tuple[int, str, str]:
        r = subprocess.run([self.ms.binary, "events", "--data-dir", self.ms.data_dir, *args],
                           capture_output=True, timeout=120)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8",
                                                                                   "replace")

    def events_json(self, flt: str, *args: str) -> list[dict]:
        rc, out, err = self.events("--filter", flt, "--json", *args)
        self.c.equal(f"mailscope events --filter '{flt}' --json exits 0", rc, 0, err)
        return [json.loads(line) for line in out.splitlines() if line]

    def writer(self) -> ld.StatsWriterClient:
        client = ld.StatsWriterClient(os.path.join(self.ms.run_dir, "stats-writer"))
        self.clients.append(client)
        return client

    def wait_written(self, n: int, timeout: float = 15.0) -> bool:
        return lm.wait_until(lambda: (self.ms.metric("mailscope_records_written_total") or 0) >= n,
                             timeout)

    # ---- the test -----------------------------------------------------------

    def run(self) -> None:
        self.dv.install()
        self.ms.start()
        self.dv.link_writer(os.path.join(self.ms.run_dir, "stats-writer"))
        self.dv.start()
        self.real_dovecot()
        self.hostile_values()
        self.sigkill_mid_stream()

    def real_dovecot(self) -> None:
        c = self.c
        # Dovecot's processes read the FILTER (which the records' filters are
        # part of) when they connect.
        time.sleep(0.5)
        failures = 0
        for n, user in enumerate(self.users):
            refused, reply = ld.imap_login_refusal(self.dv.imap_port, ld.MailUser(user.name, "no"),
                                                   source_ip=f"127.0.0.{n + 2}")
            c.check(f"Dovecot refuses the wrong password of {user.name}", refused, reply)
            failures += 1
            client = ld.imap_login(self.dv.imap_port, user)
            client.select("INBOX")
            client.logout()

        def arrived() -> dict[str, int]:
            body = self.ms.http("/metrics").body
            found = re.findall(
                r'^mailscope_events_total\{source="dovecot",event="([^"]+)"\} (\d+)$', body, re.M)
            return {name: int(n) for name, n in found}

        lm.wait_until(lambda: arrived().get("mail_user_session_finished", 0) >= 2
                      and arrived().get("auth_request_finished", 0) >= 4, 15.0)
        counts = arrived()
        want = counts.get("auth_request_finished", 0) + counts.get("mail_user_session_finished", 0)
        c.check("the logins' auth events and session ends arrive",
                counts.get("mail_user_session_finished") == 2
                and counts.get("auth_request_finished", 0) >= 4, str(counts))
        c.check("every one of them is committed", self.wait_written(want),
                str(self.ms.metric("mailscope_records_written_total")))

        failed = self.events_json("kind=auth AND outcome=failure")
        c.equal("the refused logins are recorded, as many as Dovecot logged",
                (len(failed), self.dv.log_text().count("(auth failed,")), (failures, failures))
        c.equal("each names the user and where the login came from",
                sorted((r.get("fields", {}).get("user"), r.get("remote_ip")) for r in failed),
                sorted((u.name, f"127.0.0.{n + 2}") for n, u in enumerate(self.users)))
        c.check("each has source, event, an RFC 3339 time, kind and outcome", all(
            r.get("source") == "dovecot" and r.get("event") == "auth_request_finished"
            and RFC3339.match(r.get("time", "")) and r.get("kind") == "auth"
            and r.get("outcome") == "failure" for r in failed), json.dumps(failed)[:2000])
        everything = self.events_json("kind=auth OR event=mail_user_session_finished")
        c.equal("auth events and session ends: as many as arrived", len(everything), want)
        sessions = self.events_json("event=mail_user_session_finished")
        c.equal("the session ends name their users",
                sorted(r["fields"].get("user") for r in sessions),
                sorted(u.name for u in self.users))
        c.equal("records come oldest first", [r["time"] for r in everything],
                sorted(r["time"] for r in everything))

        rc, out, err = self.events("--format", "table", "--filter", "kind=auth", "--limit", "2")
        lines = out.splitlines()
        c.check("--format table --limit 2: a header and the two newest",
                rc == 0 and len(lines) == 3 and lines[0].startswith("TIME")
                and "auth/" in lines[1] and "auth/" in lines[2], out + err)
        newest = self.events_json("kind=auth", "--limit", "1")
        c.equal("--limit 1 is the newest", [r["time"] for r in newest],
                [max(r["time"] for r in everything if r.get("kind") == "auth")])
        rc, out, _ = self.events("--since", "1h")
        c.equal("--since 1h: everything, as text lines", len(out.splitlines()), want)
        rc, out, _ = self.events("--until", "1h")
        c.equal("--until 1h: nothing", (rc, out), (0, ""))
        rc, _, err = self.events("--since", "yesterday-ish")
        c.check("a bad --since is a usage error naming the forms",
                rc == 2 and "RFC 3339" in err, err)
        rc, _, err = self.events("--filter", "event=(")
        c.check("a bad --filter is a usage error", rc == 2 and "--filter" in err, err)

    def hostile_values(self) -> None:
        c = self.c
        values = {
            "quotes": b"it's \"quoted\" \\ back\\slashed",
            "controls": b"CR\rLF\nTAB\tNUL\x00SOH\x01 end",
            "latin1": b"caf\xe9 \xff\xfe not UTF-8",
            "utf8": "gr\u00fc\u00dfe \u2028 \U0001F4E7".encode(),
            "big": b"x" * (400 * 1024),
        }
        client = self.writer()
        client.send("imap_command_finished", user=b"hostile1", **values)
        client.send("imap_command_finished", user=b"hostile2", huge=b"y" * (600 * 1024))
        client.send("imap_command_finished", user=b"hostile3")
        ok = lm.wait_until(lambda: len(self.events_json("user=hostile*")) >= 2, 10.0)
        got = {r["fields"]["user"]: r for r in self.events_json("user=hostile*")}
        c.check("the hostile event and the one after it are recorded", ok and
                sorted(got) == ["hostile1", "hostile3"], str(sorted(got)))
        fields = got.get("hostile1", {}).get("fields", {})
        for key, value in values.items():
            c.equal(f"{key} comes back byte for byte",
                    field_bytes(fields.get(key, "")) == value, True,
                    repr(fields.get(key))[:200])
        c.equal("the event over max_record_size is counted as too_large",
                self.ms.metric('mailscope_records_dropped_total{reason="too_large"}'), 1)

    def sigkill_mid_stream(self) -> None:
        c = self.c
        before = self.ms.metric("mailscope_records_written_total") or 0
        client = self.writer()
        data = b"".join(ld.StatsWriterClient.event_line(
            "imap_command_finished", {"user": b"streamer", "seq": str(i).encode()})
            for i in range(STREAMED))
        sent = threading.Event()

        def stream() -> None:
            try:
                for at in range(0, len(data), 65536):
                    client.sock.sendall(data[at:at + 65536])
            except OSError:
                pass
            sent.set()

        threading.Thread(target=stream, daemon=True).start()
        acknowledged = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            acknowledged = (self.ms.metric("mailscope_records_written_total") or 0) - before
            # Somewhere in the stream: some committed, more to come.
            if acknowledged > 3000:
                break
            time.sleep(0.005)
        os.kill(self.ms.proc.pid, signal.SIGKILL)
        self.ms.proc.wait()
        c.check("mailscope committed part of the stream before the kill", acknowledged > 3000,
                str(acknowledged))
        sent.wait(10)
        for cl in self.clients:
            cl.close()
        self.clients.clear()

        shutil.move(self.ms.log_path, self.ms.log_path + ".killed")
        self.ms.http_address = None
        self.ms.start()
        seqs = [int(r["fields"]["seq"]) for r in self.events_json("user=streamer")]
        print(f"# acknowledged {acknowledged}, found {len(seqs)} of {STREAMED}", flush=True)
        c.check("every record acknowledged before SIGKILL is there",
                len(seqs) >= acknowledged, f"{len(seqs)} < {acknowledged}")
        c.check("they are the first ones sent, once each, in order",
                seqs == list(range(len(seqs))), str(seqs[:20]))
        c.check("the stream was cut: not all of it was written", len(seqs) < STREAMED,
                str(len(seqs)))
        self.writer().send("imap_command_finished", user=b"streamer", seq=b"after-restart")
        ok = lm.wait_until(lambda: any(r["fields"]["seq"] == "after-restart" for r in
                                       self.events_json("user=streamer", "--limit", "1")), 10.0)
        c.check("the restarted mailscope adds to the same file", ok)

    def cleanup(self) -> None:
        for client in self.clients:
            client.close()
        self.dv.stop()
        rc = self.ms.stop()
        self.c.equal("mailscope exits 0 on SIGTERM", rc, 0)

    def print_logs(self) -> None:
        lm.print_log_tails([self.ms.log_path, self.ms.log_path + ".killed", self.dv.log_path])


def main(argv: list[str]) -> int:
    return ld.run_dovecot_test(argv, __doc__, "mailscope-records-", "records", RecordsTest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
