#!/usr/bin/env python3
"""Event records in a real PostgreSQL 15: outages, restarts, every record exactly once.

A private PostgreSQL 15 (initdb in a temporary directory as the postgres
user, loopback, a free port) and mailscope serve with [records] database
pointing at it. Events come in on the stats-writer socket as a Dovecot
process writes them, each with a sequence number.

  1. `mailscope records migrate --database URL` makes the schema (version 1)
     and says so; running it again changes nothing.
  2. Events flow; the server is stopped at once (SIGQUIT, connections cut)
     in the middle of the stream. mailscope goes on taking events: they
     wait in DATA_DIR/records-spool (mailscope_records_spool,
     mailscope_records_database_up 0).
  3. While they wait, mailscope itself is stopped and started again: what
     it held goes to the spool on the way out, and the new process finds the
     spool and keeps adding to it.
  4. The server comes back: the spool drains, and every record sent is in
     the table exactly once (the keys (stream, seq) are unique, and each
     sequence number is there once); `mailscope events --database URL`
     reads them back.
  5. Hostile values — quotes and SQL, CR/LF/TAB/NUL, bytes that are not
     UTF-8, a 300 KiB string, a user name that is not UTF-8 — come back from
     PostgreSQL byte for byte through the fields.
  6. A record the server refuses while it is up (a CHECK added by hand) is
     left out and counted (reason "rejected"); the ones around it are written.

Usage: records_postgres_test.py --mailscope PATH [--keep]. Exits 0 on
success, 1 on failure, 77 when not root or PostgreSQL 15 is not installed.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import lib_dovecot as ld
import lib_mailscope as lm
import lib_postgres as lp

FIRST = 20_000   # sent while the server goes away
SECOND = 1_000   # sent to the restarted mailscope, the server still away
RATE = 5_000     # events per second


class RecordsPostgresTest:
    def __init__(self, binary: str, root: str) -> None:
        self.c = lm.Checks()
        self.root = root
        self.binary = binary
        self.pg = lp.Postgres(os.path.join(root, "postgres"))
        self.ms: lm.Mailscope | None = None
        self.clients: list[ld.StatsWriterClient] = []

    def writer(self) -> ld.StatsWriterClient:
        client = ld.StatsWriterClient(os.path.join(self.ms.run_dir, "stats-writer"))
        self.clients.append(client)
        return client

    def stream(self, first: int, n: int) -> threading.Thread:
        """Sends events first..first+n-1 at RATE a second, from a thread."""
        client = self.writer()

        def run() -> None:
            start = time.monotonic()
            for i in range(first, first + n):
                due = start + (i - first) / RATE
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                client.send("imap_command_finished", user=b"pgstream", seq=str(i).encode())

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def restart_mailscope(self) -> None:
        rc = self.ms.stop()
        self.c.equal("mailscope exits 0 on SIGTERM with records in the spool", rc, 0)
        for client in self.clients:
            client.close()
        self.clients.clear()
        os.replace(self.ms.log_path, self.ms.log_path + ".1")
        self.ms.http_address = None
        self.ms.start()

    def run(self) -> None:
        c = self.c
        self.pg.start()
        self.pg.create_database()
        r = subprocess.run([self.binary, "records", "migrate", "--database", self.pg.url],
                           capture_output=True, text=True, timeout=60)
        c.check("records migrate makes the schema and says its version",
                r.returncode == 0 and "schema version 1" in r.stdout, r.stdout + r.stderr)
        c.equal("the tables are there", self.pg.psql("mailscope", "SELECT version FROM "
                                                     "mailscope_schema").strip(), "1")
        r = subprocess.run([self.binary, "records", "migrate", "--database", self.pg.url],
                           capture_output=True, text=True, timeout=60)
        c.check("migrating again is a no-op", r.returncode == 0, r.stderr)

        config = (f"[records]\nfilter = 'user=pgstream OR user=pghostile*'\ndatabase = \"{self.pg.url}\"\n"
                  "batch_size = 500\n")
        self.ms = lm.Mailscope(self.binary, os.path.join(self.root, "mailscope"), config=config)
        self.ms.start()
        c.check("the database is up for mailscope", lm.wait_until(
            lambda: self.ms.metric("mailscope_records_database_up") == 1, 10.0))

        sender = self.stream(0, FIRST)
        lm.wait_until(lambda: (self.ms.metric("mailscope_records_written_total") or 0) >= 3000, 30.0)
        self.pg.kill()
        written_before = self.ms.metric("mailscope_records_written_total") or 0
        print(f"# PostgreSQL stopped after {written_before} records were committed", flush=True)
        c.check("the outage comes in the middle of the stream",
                0 < written_before < FIRST, str(written_before))
        sender.join(30)
        c.check("mailscope spools while the server is away", lm.wait_until(
            lambda: self.ms.metric("mailscope_records_database_up") == 0
            and (self.ms.metric("mailscope_records_spool") or 0) > 0, 15.0),
            str(self.ms.metric("mailscope_records_spool")))

        self.restart_mailscope()
        spooled = self.ms.metric("mailscope_records_spool") or 0
        print(f"# the restarted mailscope finds {spooled} records in the spool", flush=True)
        c.check("the restarted mailscope finds what was spooled (and what it held)",
                spooled > 0 and spooled + written_before >= FIRST,
                f"spool {spooled}, written before {written_before}")
        self.stream(FIRST, SECOND).join(30)
        c.check("new records join the spool", lm.wait_until(
            lambda: (self.ms.metric("mailscope_records_spool") or 0) >= spooled + SECOND, 15.0),
            str(self.ms.metric("mailscope_records_spool")))
        c.equal("nothing was dropped", self.ms.metric(
            'mailscope_records_dropped_total{reason="spool_full"}'), 0)

        self.pg.start()
        drained = lm.wait_until(lambda: self.ms.metric("mailscope_records_spool") == 0
                                and self.ms.metric("mailscope_records_database_up") == 1, 90.0)
        c.check("the spool drains once the server is back", drained,
                str(self.ms.metric("mailscope_records_spool")))
        total = FIRST + SECOND
        rows = self.pg.psql("mailscope", "SELECT count(*), count(DISTINCT (fields->>'seq')), "
                            "min((fields->>'seq')::int), max((fields->>'seq')::int), "
                            "count(DISTINCT stream) FROM events WHERE \"user\" = 'pgstream'")
        count, distinct, low, high, streams = (int(x) for x in rows.strip().split("|"))
        print(f"# rows {count}, distinct seq {distinct}, {low}..{high}, {streams} streams",
              flush=True)
        c.equal("every record is there exactly once", (count, distinct, low, high),
                (total, total, 0, total - 1))
        c.equal("two runs of mailscope wrote them", streams, 2)

        r = subprocess.run([self.binary, "events", "--database", self.pg.url, "--filter",
                            "user=pgstream", "--json"], capture_output=True, text=True,
                           timeout=120)
        records = [json.loads(line) for line in r.stdout.splitlines() if line]
        c.equal("mailscope events --database reads them all back", len(records), total, r.stderr)
        c.check("each with source, event, RFC 3339 time and fields", all(
            x.get("source") == "dovecot" and x.get("event") == "imap_command_finished"
            and x.get("time", "").endswith("Z") and x.get("fields", {}).get("user") == "pgstream"
            for x in records[:100]), json.dumps(records[:2]))
        r = subprocess.run([self.binary, "events", "--database", self.pg.url, "--filter",
                            "user=pgstream", "--limit", "3", "--json"],
                           capture_output=True, text=True, timeout=60)
        newest = [json.loads(line)["fields"]["seq"] for line in r.stdout.splitlines()]
        c.equal("--limit 3: the three newest, oldest first", len(newest), 3, r.stderr)
        self.hostile_values()
        self.refused_record()

    def refused_record(self) -> None:
        """A record the server refuses while it is up (here a CHECK a DBA added) is left out
        and counted; the records around it are written and nothing waits on it."""
        c = self.c
        self.pg.psql("mailscope", "ALTER TABLE events ADD CONSTRAINT no_poison "
                     "CHECK (fields::text NOT LIKE '%poison%')")
        client = self.writer()
        for tag in (b"before", b"poison", b"after"):
            client.send("imap_command_finished", user=b"pgstream", seq=b"refused-" + tag)
        ok = lm.wait_until(lambda: self.ms.metric(
            'mailscope_records_dropped_total{reason="rejected"}') == 1, 15.0)
        c.check("the refused record is counted as rejected", ok, str(self.ms.metric(
            'mailscope_records_dropped_total{reason="rejected"}')))
        rows = self.pg.psql("mailscope", "SELECT fields->>'seq' FROM events WHERE "
                            "fields->>'seq' LIKE 'refused-%' ORDER BY id").split()
        c.equal("the records around it are written", rows, ["refused-before", "refused-after"])
        c.equal("the database stays up", self.ms.metric("mailscope_records_database_up"), 1)

    def hostile_values(self) -> None:
        """What PostgreSQL's text and json refuse (NUL, bytes that are not UTF-8) and what
        SQL quoting fears come back byte for byte through the fields."""
        c = self.c
        values = {
            "quotes": b"it's \"quoted\" \\ '); DROP TABLE events; --",
            "controls": b"CR\rLF\nTAB\tNUL\x00SOH\x01 end",
            "latin1": b"caf\xe9 \xff\xfe not UTF-8",
            "utf8": "gr\u00fc\u00dfe \u2028 \U0001F4E7".encode(),
            "big": b"x" * (300 * 1024),
        }
        self.writer().send("imap_command_finished", user=b"pghostile", **values)
        self.writer().send("imap_command_finished", user=b"pghostile\xff", other=b"x")
        def read() -> list[dict]:
            r = subprocess.run([self.binary, "events", "--database", self.pg.url, "--filter",
                                "user=pghostile*", "--json"], capture_output=True, timeout=60)
            return [json.loads(line) for line in r.stdout.decode().splitlines() if line]
        ok = lm.wait_until(lambda: len(read()) >= 2, 15.0)
        records = read()
        c.check("the hostile events are in PostgreSQL", ok and len(records) == 2, str(len(records)))
        fields = records[0].get("fields", {}) if records else {}
        for key, value in values.items():
            got = fields.get(key, "")
            raw = base64.b64decode(got["base64"]) if isinstance(got, dict) else got.encode()
            c.equal(f"{key} comes back byte for byte from PostgreSQL", raw == value, True,
                    repr(got)[:200])
        last = records[-1] if records else {}
        c.check("a user that is not UTF-8: no user column, the field keeps the bytes",
                "user" not in last and last.get("fields", {}).get("user") ==
                {"base64": base64.b64encode(b"pghostile\xff").decode()}, json.dumps(last)[:300])

    def cleanup(self) -> None:
        for client in self.clients:
            client.close()
        if self.ms is not None:
            rc = self.ms.stop()
            self.c.equal("mailscope exits 0 on SIGTERM", rc, 0)
        self.pg.stop()

    def print_logs(self) -> None:
        paths = [self.pg.log_path]
        if self.ms is not None:
            paths = [self.ms.log_path + ".1", self.ms.log_path] + paths
        lm.print_log_tails(paths)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mailscope", required=True)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        return lm.skip("needs root (it starts a private PostgreSQL as the postgres user)")
    if not lp.postgres_installed():
        return lm.skip("postgresql-15 not installed")
    root = tempfile.mkdtemp(prefix="mailscope-records-pg-")
    os.chmod(root, 0o755)
    test = RecordsPostgresTest(os.path.abspath(args.mailscope), root)
    return lm.run_test(test, test.c, "records in PostgreSQL", root, args.keep)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
