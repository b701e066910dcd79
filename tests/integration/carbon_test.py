#!/usr/bin/env python3
"""Real-peer test: mailscope's carbon export against Dovecot 2.3's own.

    carbon_test.py --mailscope PATH [--keep]

1. A private Dovecot (loopback only, everything under one temporary directory)
   runs its own old-stats process with old_stats_carbon_server pointing at a
   TCP sink of this test, name "dcref", interval 1 s. The same old-stats lines
   (some captured from a live Dovecot, some built here) are written into its
   FIFOs, and the blocks it sends are recorded.
2. mailscope gets the same lines and a carbon export to a second sink, name
   "msref". Its block must match Dovecot's byte for byte once the name, the
   timestamps and last_reset are masked: line terminator, metric paths and
   their order, value formats, and the values themselves.
3. mailscope starts with carbon pointing at a closed port, keeps serving
   /metrics, and delivers blocks once a sink listens on that port.

Prints one PASS/FAIL line per check, exits 1 on any failure, 77 when Dovecot
is not installed or the test does not run as root.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_dovecot as ld  # noqa: E402
import lib_mailscope as lm  # noqa: E402
from lib_mailscope import (AUTH_FIELDS, MAIL_FIELDS,  # noqa: E402
                           TIMEVAL_FIELDS, auth_payload, mail_payload, usec,
                           write_fifo)

INTERVAL = 1.0

# The block: four global counters, then every stats column in column order.
CARBON_FIELDS = (("logins", "cmds", "connected_sessions", "last_reset") +
                 MAIL_FIELDS + AUTH_FIELDS)

# A stats timeval: "<sec>.<usec>", usec not zero-padded and, because Dovecot
# carries into seconds only above 1000000, possibly 7 digits.
TIMEVAL_RE = re.compile(r"^\d+\.(0|[1-9]\d{0,6})$")
INTEGER_RE = re.compile(r"^\d+$")


# ---- the old-stats lines fed to both servers ---------------------------------

# Captured from a live Dovecot 2.3.19.1 (docs reference, worked examples).
LIVE_SESSION = "+0898NFgauV/AAAB"
LIVE_CONNECT = (f"CONNECT\t{LIVE_SESSION}\talice@example.com\timap\t19575"
                "\tlip=127.0.0.1\trip=127.0.0.1\n")
LIVE_UPDATE_PAYLOAD = (
    "bWFpbAAAAAAAAAAAAKQgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAtAIAAAAAAADm"
    "AAAAAgAAACIAAAAIAAAAAEAAAAAAAAAAAAEAAAAAAC0AAAA+AAAATxcAAAAAAACTIQAAAAAA"
    "AAEAAAAAAAAAAQAAAAAAAAAeAAAAAAAAAAEAAAAAAAAA")
LIVE_UPDATE = f"UPDATE-SESSION\t{LIVE_SESSION}\t{LIVE_UPDATE_PAYLOAD}\n"
LIVE_ADD_USERS = (
    "ADD-USER\tcarol@example.net\timap\t"
    "YXV0aAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",   # auth_successes 1
    "ADD-USER\tdave@example.net\timap\t"
    "YXV0aAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAA=\n")   # auth_failures 1

# A second session built here. Its CPU figures make the global sums hit the
# timeval edge cases: user_cpu adds up to exactly 1000000 usec (Dovecot keeps
# it as 0.1000000), sys_cpu is 12 usec (0.12), clock_time has seconds.
BUILT_SESSION = "ZmVlZGZlZWRmZWVk"
BUILT_STATS = {
    "user_cpu": 1_000_000 - 8356, "sys_cpu": 12, "clock_time": 2_000_005,
    "min_faults": 17, "maj_faults": 3, "vol_cs": 9, "invol_cs": 4,
    "disk_input": 4096, "disk_output": 1 << 33, "read_count": 7,
    "write_count": 8, "read_bytes": 300, "write_bytes": 5_000_000_000,
    "mail_lookup_path": 2, "mail_lookup_attr": 5, "mail_read_count": 3,
    "mail_read_bytes": 1234, "mail_cache_hits": 6}
BUILT_LINES = (
    f"CONNECT\t{BUILT_SESSION}\tbob@example.org\tpop3\t4242\trip=127.0.0.2\n",
    f"UPDATE-CMD\t{BUILT_SESSION}\t1\t\tSELECT\tINBOX\t"
    f"{mail_payload(user_cpu=120, read_count=1)}\n",
    f"UPDATE-SESSION\t{BUILT_SESSION}\t{mail_payload(**BUILT_STATS)}\n",
    f"DISCONNECT\t{BUILT_SESSION}\n")
BUILT_ADD_USER = (f"ADD-USER\tbob@example.org\tpop3\t"
                  f"{auth_payload(auth_successes=1, auth_cache_hits=1)}"
                  "\n")

MAIL_FIFO_LINES = (LIVE_CONNECT, LIVE_UPDATE) + BUILT_LINES
AUTH_FIFO_LINES = LIVE_ADD_USERS + (BUILT_ADD_USER,)


def expected_global() -> dict[str, int]:
    """The global figures the fed lines produce (timevals in usec)."""
    live = lm.decode_mail_payload(LIVE_UPDATE_PAYLOAD)
    values = {n: live[n] + BUILT_STATS.get(n, 0) for n in MAIL_FIELDS}
    values.update(logins=2, cmds=1, connected_sessions=1,
                  auth_successes=2, auth_master_successes=0, auth_failures=1,
                  auth_db_tempfails=0, auth_cache_hits=1,
                  auth_cache_misses=0)
    return values


# ---- the carbon sink -------------------------------------------------------


@dataclasses.dataclass
class Received:
    """One TCP connection to the sink: when it came and what it carried."""
    accepted: float   # time.time()
    closed: float
    data: bytes
    eof: bool         # the peer closed; False when the sink gave up waiting


class CarbonSink:
    """A TCP listener on 127.0.0.1 that keeps every connection's bytes."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections: list[Received] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted = time.time()
            t = threading.Thread(target=self._read, args=(conn, accepted),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, conn: socket.socket, accepted: float) -> None:
        chunks = []
        eof = False
        conn.settimeout(5.0)
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    eof = True
                    break
                chunks.append(chunk)
        with self.lock:
            self.connections.append(
                Received(accepted, time.time(), b"".join(chunks), eof))

    def received(self) -> list[Received]:
        with self.lock:
            return sorted(self.connections, key=lambda r: r.accepted)

    def close(self) -> None:
        self.stopping.set()
        self.acceptor.join(2.0)
        self.sock.close()
        for t in self.threads:
            t.join(6.0)


# ---- blocks ----------------------------------------------------------------


@dataclasses.dataclass
class Block:
    """One carbon block split into (path, value, timestamp) lines."""
    raw: bytes
    terminator: bytes
    lines: list[tuple[str, str, str]]

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.lines]

    def values(self) -> dict[str, str]:
        return {p.rsplit(".", 1)[1]: v for p, v, _ in self.lines}


def line_terminator(raw: bytes) -> bytes | None:
    """b"\\r\\n" or b"\\n" when all lines of raw end alike, else None."""
    if not raw.endswith(b"\n"):
        return None
    lf = raw.count(b"\n")
    if raw.count(b"\r\n") == lf and raw.count(b"\r") == lf:
        return b"\r\n"
    if b"\r" not in raw:
        return b"\n"
    return None


def parse_block(raw: bytes) -> Block | None:
    term = line_terminator(raw)
    if term is None:
        return None
    lines = []
    for line in raw[:-len(term)].split(term):
        fields = line.decode("ascii", "replace").split(" ")
        if len(fields) != 3:
            return None
        lines.append((fields[0], fields[1], fields[2]))
    return Block(raw, term, lines)


def masked(raw: bytes, name: str) -> bytes:
    """raw with the name, every timestamp and last_reset's value masked."""
    term = line_terminator(raw) or b"\n"
    out = []
    for line in raw[:-len(term)].split(term):
        path, value, _ = line.split(b" ")
        path = path.replace(f"dovecot.{name}.".encode(), b"dovecot.NAME.", 1)
        if path.endswith(b".last_reset"):
            value = b"RESET"
        out.append(b" ".join((path, value, b"TS")))
    return term.join(out) + term


def blocks_with(sink: CarbonSink, needle: bytes) -> list[Received]:
    return [r for r in sink.received() if r.eof and needle in r.data]


# ---- checks ----------------------------------------------------------------


def check_block(c: lm.Checks, who: str, name: str, rec: Received,
                started: float) -> Block | None:
    """Structure checks every block must pass, Dovecot's and mailscope's."""
    block = parse_block(rec.data)
    if not c.check(f"{who}: block is lines of '<path> <value> <ts>' with one"
                   " terminator", block is not None, repr(rec.data[:200])):
        return None
    expected_paths = [f"dovecot.{name}.global.{f}" for f in CARBON_FIELDS]
    c.equal(f"{who}: metric paths in Dovecot's order", block.paths(),
            expected_paths)
    stamps = {ts for _, _, ts in block.lines}
    c.check(f"{who}: one timestamp for the whole block", len(stamps) == 1,
            f"{sorted(stamps)}")
    ts = next(iter(stamps))
    c.check(f"{who}: timestamp is the current unix time",
            INTEGER_RE.match(ts) is not None and
            abs(int(ts) - rec.accepted) <= 2,
            f"ts {ts!r}, received at {rec.accepted:.3f}")
    bad = []
    for field, value in block.values().items():
        pattern = TIMEVAL_RE if field in TIMEVAL_FIELDS else INTEGER_RE
        if not pattern.match(value):
            bad.append(f"{field}={value!r}")
    c.check(f"{who}: values are integers, timevals '<sec>.<usec unpadded>'",
            not bad, ", ".join(bad))
    last_reset = block.values().get("last_reset", "")
    c.check(f"{who}: last_reset is the server's start time",
            INTEGER_RE.match(last_reset) is not None and
            started - 2 <= int(last_reset) <= rec.accepted + 1,
            f"last_reset {last_reset!r}, started {started:.0f}")
    return block


def check_cadence(c: lm.Checks, who: str, recs: list[Received]) -> None:
    """One connection per interval, each carrying exactly one full block."""
    whole = [r for r in recs if r.eof]
    c.check(f"{who}: every connection is closed by the sender", len(whole) ==
            len(recs), f"{len(recs) - len(whole)} left open")
    counts = [len(r.data.split(b"\n")) - 1 for r in whole]
    c.check(f"{who}: one block ({len(CARBON_FIELDS)} lines) per connection",
            all(n == len(CARBON_FIELDS) for n in counts), f"{counts}")
    gaps = [round(b.accepted - a.accepted, 3) for a, b in zip(whole, whole[1:])]
    c.check(f"{who}: one connection per {INTERVAL:g} s interval",
            len(gaps) >= 1 and all(0.6 * INTERVAL <= g <= 1.4 * INTERVAL
                                   for g in gaps), f"gaps {gaps}")


# ---- servers ---------------------------------------------------------------


class CarbonDovecot(ld.Dovecot):
    """The lib_dovecot instance plus its own old-stats exporting to carbon.

    process_min_avail keeps old-stats running from the start; otherwise the
    master starts it only when something writes to its FIFOs.
    """

    def __init__(self, root_dir: str, carbon_port: int) -> None:
        super().__init__(root_dir, [ld.MailUser("alice@example.com", "pw")])
        self.carbon_port = carbon_port

    def config_text(self) -> str:
        return super().config_text() + f"""\
old_stats_carbon_server = 127.0.0.1:{self.carbon_port}
old_stats_carbon_name = dcref
old_stats_carbon_interval = 1 secs
service old-stats {{
  process_min_avail = 1
}}
"""


def carbon_config(port: int, name: str) -> str:
    return (f'[old_stats]\ncarbon_server = "127.0.0.1:{port}"\n'
            f'carbon_name = "{name}"\ncarbon_interval = "1s"\n')


# ---- the test --------------------------------------------------------------


class CarbonTest:
    def __init__(self, binary: str, root: str) -> None:
        self.binary = binary
        self.root = root
        self.c = lm.Checks()
        self.sinks: list[CarbonSink] = []
        self.dovecot: CarbonDovecot | None = None
        self.servers: list[lm.Mailscope] = []
        self.dovecot_block: Received | None = None

    def sink(self, port: int = 0) -> CarbonSink:
        s = CarbonSink(port)
        self.sinks.append(s)
        return s

    def mailscope(self, tag: str, config: str) -> lm.Mailscope:
        m = lm.Mailscope(self.binary, os.path.join(self.root, tag), config)
        self.servers.append(m)
        return m

    def run(self) -> None:
        self.run_dovecot()
        self.run_mailscope()
        self.run_retry()

    # Dovecot's own old-stats: the reference bytes.
    def run_dovecot(self) -> None:
        c = self.c
        sink = self.sink()
        # The directory name becomes part of instance_name: keep it unique.
        name = "dovecot-" + os.path.basename(self.root).rsplit("-", 1)[-1]
        self.dovecot = CarbonDovecot(os.path.join(self.root, name), sink.port)
        os.makedirs(self.dovecot.root_dir)
        os.chmod(self.dovecot.root_dir, 0o755)
        self.dovecot.install()
        conf = self.dovecot.check_config()
        c.check("doveconf accepts the old_stats_carbon_* settings",
                conf.returncode == 0, conf.stderr.strip())
        started = time.time()
        self.dovecot.start()
        write_fifo(os.path.join(self.dovecot.base_dir, "old-stats-mail"),
                   MAIL_FIFO_LINES)
        write_fifo(os.path.join(self.dovecot.base_dir, "old-stats-user"),
                   AUTH_FIFO_LINES)
        fed = b".global.auth_cache_hits 1 "
        got = lm.wait_until(lambda: len(blocks_with(sink, fed)) >= 2, 10.0)
        recs = sink.received()
        c.check("dovecot: two blocks with the fed figures arrived", got,
                f"{len(recs)} connections")
        self.dovecot.stop()
        log = self.dovecot.log_text()
        c.check("dovecot: old-stats accepted every fed line",
                "FIFO input error" not in log and "Panic" not in log,
                "\n".join(l for l in log.splitlines() if "stats" in l))
        if not recs:
            return
        check_cadence(c, "dovecot", recs)
        fed_blocks = blocks_with(sink, fed)
        if not fed_blocks:
            return
        self.dovecot_block = fed_blocks[-1]
        check_block(c, "dovecot", "dcref", self.dovecot_block, started)
        raw = self.dovecot_block.data
        print(f"INFO: dovecot terminator {line_terminator(raw)!r};"
              " first lines:")
        for line in raw.splitlines(keepends=True)[:3]:
            print(f"INFO:   {line!r}")
        for line in raw.splitlines(keepends=True):
            if any(f".{f} ".encode() in line for f in TIMEVAL_FIELDS):
                print(f"INFO:   {line!r}")

    def run_mailscope(self) -> None:
        c = self.c
        sink = self.sink()
        m = self.mailscope("fed", carbon_config(sink.port, "msref"))
        started = time.time()
        m.start()
        write_fifo(m.mail_fifo, MAIL_FIFO_LINES)
        write_fifo(m.auth_fifo, AUTH_FIFO_LINES)
        fed = b".global.auth_cache_hits 1 "
        got = lm.wait_until(lambda: len(blocks_with(sink, fed)) >= 2, 6.0)
        c.check("mailscope: two blocks with the fed figures arrived", got,
                f"{len(sink.received())} connections")
        rc = m.stop()
        c.equal("mailscope: exits 0 on SIGTERM", rc, 0)
        recs = sink.received()
        if not recs:
            return
        check_cadence(c, "mailscope", recs)
        fed_blocks = blocks_with(sink, fed)
        if not fed_blocks:
            return
        rec = fed_blocks[-1]
        block = check_block(c, "mailscope", "msref", rec, started)
        if block is not None:
            want = expected_global()
            got_values = {}
            for field, value in block.values().items():
                if field in want:
                    got_values[field] = (usec(value) if field in TIMEVAL_FIELDS
                                         else int(value))
            c.equal("mailscope: values are the sums of what was fed",
                    got_values, want)
        if self.dovecot_block is None:
            c.check("mailscope: compared with Dovecot's block", False,
                    "no Dovecot block to compare with")
            return
        ref = self.dovecot_block.data
        c.equal("mailscope: same line terminator as Dovecot",
                line_terminator(rec.data), line_terminator(ref))
        c.equal("mailscope: same bytes as Dovecot (name, timestamps and"
                " last_reset masked)", masked(rec.data, "msref"),
                masked(ref, "dcref"))

    # Receiver down at start: mailscope keeps serving and retries.
    def run_retry(self) -> None:
        c = self.c
        port = lm.free_port()
        m = self.mailscope("retry", carbon_config(port, "msref"))
        m.start()
        http_ok = []
        deadline = time.monotonic() + 3.5 * INTERVAL
        while time.monotonic() < deadline:
            http_ok.append(m.http("/metrics").status)
            time.sleep(0.25)
        c.check("retry: mailscope still runs with the receiver down",
                m.alive(), m.log_text())
        c.check("retry: /metrics answers while the receiver is down",
                http_ok and all(s == 200 for s in http_ok), f"{http_ok}")
        c.check("retry: failed sends are logged",
                re.search(r"carbon.*failed", m.log_text()) is not None,
                m.log_text())
        sink = self.sink(port)
        got = lm.wait_until(
            lambda: len([r for r in sink.received() if r.eof]) >= 2,
            4.0 * INTERVAL)
        c.check("retry: blocks arrive once the receiver listens", got,
                f"{len(sink.received())} connections")
        recs = [r for r in sink.received() if r.eof]
        if recs:
            block = parse_block(recs[-1].data)
            c.check("retry: the block after recovery is complete",
                    block is not None and
                    block.paths()[-1].endswith(".auth_cache_misses") and
                    len(block.lines) == len(CARBON_FIELDS),
                    repr(recs[-1].data[:200]))
        c.equal("retry: /metrics answers after recovery",
                m.http("/metrics").status, 200)
        c.equal("retry: mailscope exits 0 on SIGTERM", m.stop(), 0)

    def cleanup(self) -> None:
        if self.dovecot is not None:
            self.dovecot.stop()
        for m in self.servers:
            m.stop()
        for s in self.sinks:
            s.close()

    def print_logs(self) -> None:
        logs = [("dovecot log",
                 self.dovecot.log_text() if self.dovecot else "")]
        logs += [(f"mailscope log ({os.path.basename(m.root)})", m.log_text())
                 for m in self.servers]
        for title, text in logs:
            print(f"---- {title} ----")
            print(text.rstrip() or "<empty>")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mailscope", required=True,
                   help="path to the mailscope binary")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (configs, logs)")
    args = p.parse_args(argv)
    binary = os.path.abspath(args.mailscope)
    if os.geteuid() != 0:
        return lm.skip("needs root (Dovecot drops privileges itself)")
    if not ld.dovecot_installed():
        return lm.skip("dovecot, doveadm or doveconf not on PATH")
    if not os.access(binary, os.X_OK):
        print(f"FAIL: {binary} is not executable")
        return 1
    root = tempfile.mkdtemp(prefix="mailscope-carbon-")
    os.chmod(root, 0o755)
    test = CarbonTest(binary, root)
    return lm.run_test(test, test.c, "carbon export", root, args.keep)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
