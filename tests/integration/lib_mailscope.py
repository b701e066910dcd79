"""Shared pieces of the integration tests: checks, old-stats input, mailscope.

  * Checks prints one PASS/FAIL line per check and turns the result into the
    exit code (0, or 1 on any failure; SKIP is 77, and skip() turns it into a
    failure under MAILSCOPE_REQUIRE_INTEGRATION=1); run_test runs a whole
    test in its temporary directory and returns that code.
  * mail_payload/auth_payload build the base64 payloads Dovecot's old-stats
    writers send (reference/dovecot-protocols.md §2.3), write_fifo feeds lines
    into a FIFO the way those writers do.
  * Mailscope runs `mailscope serve` as a child process under one directory
    and stops it with SIGTERM.
  * free_port, wait_until and can_connect_unix are the small helpers all of
    the above (and lib_dovecot) use.

Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterable, NamedTuple, Protocol

# Exit code that ctest reads as "skipped" (SKIP_RETURN_CODE).
SKIP = 77
# Set to 1 by .ci/run, where the tests run as root with every peer installed:
# a test (or part of one) that would be skipped fails instead.
REQUIRE_ENV = "MAILSCOPE_REQUIRE_INTEGRATION"


def integration_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def skip(reason: str) -> int:
    """Exit code of a test that cannot run here: SKIP with a SKIP line, or 1
    with a FAIL line when MAILSCOPE_REQUIRE_INTEGRATION=1."""
    if integration_required():
        print(f"FAIL: {reason} (a skip fails under {REQUIRE_ENV}=1)", flush=True)
        return 1
    print(f"SKIP: {reason}", flush=True)
    return SKIP

# ---- old-stats columns and payloads ----------------------------------------

# Mail columns in output (column) order.
MAIL_FIELDS = (
    "user_cpu", "sys_cpu", "clock_time", "min_faults", "maj_faults", "vol_cs",
    "invol_cs", "disk_input", "disk_output", "read_count", "read_bytes",
    "write_count", "write_bytes", "mail_lookup_path", "mail_lookup_attr",
    "mail_read_count", "mail_read_bytes", "mail_cache_hits")
# Auth columns; struct order and column order are the same.
AUTH_FIELDS = (
    "auth_successes", "auth_master_successes", "auth_failures",
    "auth_db_tempfails", "auth_cache_hits", "auth_cache_misses")
# The mail columns that are timevals; payload builders take them in usec.
TIMEVAL_FIELDS = ("user_cpu", "sys_cpu", "clock_time")

# struct mail_stats on x86_64 (136 bytes): three timevals (int64 sec, int64
# usec), four u32 fault/switch counts, disk_input/output, read_count,
# write_count, read_bytes, write_bytes, three u32 mail counters, padding,
# mail_read_bytes, mail_cache_hits. The struct order of read_count/write_count/
# read_bytes/write_bytes differs from the column order.
MAIL_STRUCT = struct.Struct("<qqqqqqIIIIQQIIQQIII4xQQ")
MAIL_STRUCT_ORDER = (
    "user_cpu", "sys_cpu", "clock_time", "min_faults", "maj_faults", "vol_cs",
    "invol_cs", "disk_input", "disk_output", "read_count", "write_count",
    "read_bytes", "write_bytes", "mail_lookup_path", "mail_lookup_attr",
    "mail_read_count", "mail_read_bytes", "mail_cache_hits")
AUTH_STRUCT = struct.Struct("<6I")
assert MAIL_STRUCT.size == 136 and AUTH_STRUCT.size == 24


def _unknown(values: dict[str, int], known: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TypeError(f"unknown stats column(s): {', '.join(unknown)}")


def mail_payload(**values: int) -> str:
    """base64 of b"mail\\0" + struct mail_stats, columns given by name.

    Columns not given are 0; timevals (TIMEVAL_FIELDS) are given in usec.
    """
    _unknown(values, MAIL_FIELDS)
    flat: list[int] = []
    for name in MAIL_STRUCT_ORDER:
        value = values.get(name, 0)
        flat.extend(divmod(value, 1_000_000) if name in TIMEVAL_FIELDS
                    else (value,))
    raw = b"mail\0" + MAIL_STRUCT.pack(*flat)
    return base64.b64encode(raw).decode("ascii")


def decode_mail_payload(payload: str) -> dict[str, int]:
    """The inverse of mail_payload: every column by name, timevals in usec."""
    raw = base64.b64decode(payload)
    if not raw.startswith(b"mail\0") or len(raw) != 5 + MAIL_STRUCT.size:
        raise ValueError(f"not a mail stats payload: {payload!r}")
    flat = list(MAIL_STRUCT.unpack(raw[5:]))
    values = {}
    for name in MAIL_STRUCT_ORDER:
        if name in TIMEVAL_FIELDS:
            sec, micro = flat.pop(0), flat.pop(0)
            values[name] = sec * 1_000_000 + micro
        else:
            values[name] = flat.pop(0)
    return values


def auth_payload(**values: int) -> str:
    """base64 of b"auth\\0" + struct auth_stats; columns not given are 0."""
    _unknown(values, AUTH_FIELDS)
    raw = b"auth\0" + AUTH_STRUCT.pack(*(values.get(n, 0)
                                         for n in AUTH_FIELDS))
    return base64.b64encode(raw).decode("ascii")


def usec(value: str) -> int:
    """A stats timeval in microseconds; the part after the dot is a count."""
    sec, _, micro = value.partition(".")
    return int(sec) * 1_000_000 + int(micro or 0)


def write_fifo(path: str, lines: Iterable[str], timeout: float = 5.0) -> None:
    """Writes lines into a FIFO in one write(), as Dovecot's writers do.

    Waits up to timeout seconds for the FIFO to exist and have a reader.
    """
    data = "".join(lines).encode("utf-8")
    assert len(data) <= 4096, "keep it atomic (PIPE_BUF)"
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as err:
            # ENXIO: no reader yet; ENOENT: not created yet.
            if err.errno not in (errno.ENXIO, errno.ENOENT) or \
                    time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise RuntimeError(f"short write to {path}: {written} of {len(data)}")


# ---- small helpers ---------------------------------------------------------


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float,
               interval: float = 0.1) -> bool:
    """Polls predicate until it returns a true value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def can_connect_unix(path: str) -> bool:
    """True when a UNIX stream socket at path accepts a connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def doc_block(path: str, marker: str, lang: str) -> str:
    """The first code block in language `lang` ("" for none) after `marker`
    in the document at `path`: the tests run the settings the documents give,
    read from the documents themselves, so the two cannot drift apart."""
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    body: list[str] | None = None
    in_other = False  # inside a block of another language
    for line in doc[doc.index(marker):].split("\n"):
        fence = line.startswith("```")
        if body is not None:
            if fence:
                return "\n".join(body) + "\n"
            body.append(line)
        elif in_other:
            in_other = not fence
        elif fence:
            if line[3:].strip() == lang:
                body = []
            else:
                in_other = True
    raise ValueError(f"{path}: no ```{lang} block after {marker}")


# ---- checks ----------------------------------------------------------------


class Checks:
    """Prints PASS/FAIL lines, remembers failures, and gives the exit code."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.count = 0
        self.started = time.monotonic()

    def check(self, name: str, ok: bool, detail: str = "",
              raw: str | None = None) -> bool:
        """One check: PASS, or FAIL with detail and the raw output, if any."""
        self.count += 1
        if ok:
            print(f"PASS: {name}", flush=True)
            return True
        self.failures.append(name)
        print(f"FAIL: {name}{': ' + detail if detail else ''}", flush=True)
        if raw is not None:
            print("  raw output:")
            for line in (raw.rstrip("\n").split("\n") if raw else ["<empty>"]):
                print("  | " + line)
        return False

    def equal(self, name: str, actual: Any, expected: Any,
              raw: str | None = None) -> bool:
        return self.check(name, actual == expected,
                          f"got {actual!r}, expected {expected!r}", raw)

    def skip_part(self, what: str, reason: str) -> None:
        """Part of a test that cannot run here: a note, or the failed check
        `what` when MAILSCOPE_REQUIRE_INTEGRATION=1."""
        if integration_required():
            self.check(what, False, f"{reason} (a skip fails under {REQUIRE_ENV}=1)")
        else:
            print(f"# note: {reason}; skipped: {what}", flush=True)

    def summary(self, what: str) -> int:
        """Prints the closing line; returns 0, or 1 when any check failed."""
        failed = len(self.failures)
        print(f"# {what}: {self.count - failed} passed, {failed} failed,"
              f" {time.monotonic() - self.started:.1f} s", flush=True)
        return 1 if failed else 0


class Test(Protocol):
    """What run_test needs of a test."""

    def run(self) -> None: ...

    def cleanup(self) -> None: ...

    def print_logs(self) -> None: ...


def run_test(test: Test, checks: Checks, what: str, root: str,
             keep: bool) -> int:
    """Runs test under its temporary directory root; returns the exit code.

    An exception out of test.run() counts as the failed check "test ran to
    the end". test.cleanup() always runs, test.print_logs() when any check
    failed; root is removed unless keep.
    """
    try:
        test.run()
    except Exception as err:  # report, clean up, fail
        checks.check("test ran to the end", False,
                     f"{type(err).__name__}: {err}")
    finally:
        test.cleanup()
        if checks.failures:
            test.print_logs()
        if keep:
            print(f"# kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return checks.summary(what)


def print_log_tails(paths: Iterable[str], size: int = 4000) -> None:
    """Prints the last `size` bytes of each log that exists, for a failed test."""
    for path in paths:
        if os.path.exists(path):
            print(f"# ---- {path}")
            with open(path, errors="replace") as f:
                print(f.read()[-size:])


# ---- mailscope serve -------------------------------------------------------


class Reply(NamedTuple):
    """An HTTP answer; status is -1 when no answer came (detail in body)."""
    status: int
    content_type: str
    body: str


class Mailscope:
    """`mailscope serve` as a child process, stopped with SIGTERM.

    Everything lives under root, which must not exist yet: run/ (the
    old-stats socket and FIFOs), data/, mailscope.log (stdout and stderr) and,
    when config is given, mailscope.toml. The directories are made 0755 so
    that unprivileged writers (Dovecot's mail processes) reach the FIFOs.
    HTTP listens on 127.0.0.1 on a port the kernel picks; start() reads it
    from the "http listening on ADDR" log line.
    """

    def __init__(self, binary: str, root: str,
                 config: str | None = None) -> None:
        self.binary = os.path.abspath(binary)
        self.root = root
        self.run_dir = os.path.join(root, "run")
        self.data_dir = os.path.join(root, "data")
        self.log_path = os.path.join(root, "mailscope.log")
        self.config_path: str | None = None
        self.http_address: str | None = None  # "127.0.0.1:PORT" once started
        self.proc: subprocess.Popen | None = None
        for path in (self.root, self.run_dir, self.data_dir):
            os.makedirs(path)
            os.chmod(path, 0o755)
        if config is not None:
            self.config_path = os.path.join(root, "mailscope.toml")
            with open(self.config_path, "w", encoding="utf-8") as f:
                f.write(config)

    @property
    def socket_path(self) -> str:
        return os.path.join(self.run_dir, "old-stats")

    @property
    def mail_fifo(self) -> str:
        return os.path.join(self.run_dir, "old-stats-mail")

    @property
    def auth_fifo(self) -> str:
        return os.path.join(self.run_dir, "old-stats-user")

    def start(self, timeout: float = 15.0) -> None:
        """Starts serve; returns once the socket accepts and HTTP listens."""
        args = [self.binary, "serve", "--run-dir", self.run_dir,
                "--data-dir", self.data_dir, "--http", "127.0.0.1:0"]
        if self.config_path is not None:
            args += ["--config", self.config_path]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)

        def ready() -> bool:
            if self.http_address is None:
                m = re.search(r"http listening on (\S+)", self.log_text())
                self.http_address = m.group(1) if m else None
            return (self.http_address is not None and
                    can_connect_unix(self.socket_path))

        up = wait_until(lambda: not self.alive() or ready(), timeout)
        if not self.alive():
            raise RuntimeError(f"mailscope exited with {self.proc.returncode}"
                               f" before it was ready: {self.log_text()}")
        if not up:
            raise RuntimeError(
                f"mailscope not ready within {timeout} s (HTTP address"
                f" {self.http_address}, {self.socket_path} accepts:"
                f" {can_connect_unix(self.socket_path)})")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait; returns the exit code (None if it hung)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def http(self, path: str, accept: str = "", method: str = "GET"
             ) -> Reply:
        """One request to the HTTP listener; error statuses are returned."""
        req = urllib.request.Request(f"http://{self.http_address}{path}",
                                     method=method)
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return Reply(resp.status,
                             resp.headers.get("Content-Type", ""),
                             resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.headers.get("Content-Type", ""),
                         err.read().decode("utf-8", "replace"))
        except OSError as err:
            return Reply(-1, "", str(err))

    def metric(self, name: str) -> int | None:
        """The value of the sample `name` (labels included) on /metrics, or None."""
        for line in self.http("/metrics").body.splitlines():
            if line.split(" ")[0] == name:
                return int(float(line.split()[-1]))
        return None

    def log_text(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        return ""


# ---- a real Prometheus ---------------------------------------------------------


class Prometheus:
    """A private Prometheus scraping one target every second (it asks for
    OpenMetrics first), with its API on a free loopback port. Used as a
    context manager; stopped by PID with SIGTERM on exit."""

    def __init__(self, binary: str, target: str, work: str) -> None:
        self.work = work
        self.port = free_port()
        conf = os.path.join(work, "prometheus.yml")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: mailscope\n    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        self.log = open(os.path.join(work, "prometheus.log"), "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={conf}",
             f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> "Prometheus":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
            return json.load(r)["data"]

    def wait_scraped(self, timeout: float = 30.0) -> tuple[str | None, str | None]:
        """(health, lastError) of the target once it was scraped successfully,
        or the last seen ones at the deadline."""
        health = error = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                active = self._get("/api/v1/targets")["activeTargets"]
            except (OSError, ValueError, KeyError):
                continue
            if active and not active[0].get("lastScrape", "").startswith("0001"):
                health, error = active[0]["health"], active[0]["lastError"]
                if health == "up":
                    break
        return health, error

    def query(self, expr: str, want: float | None = None, timeout: float = 10.0) -> float | None:
        """The value of an instant query with one result; waits until it equals
        `want` (when given) or the deadline passes."""
        value = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = self._get("/api/v1/query?query=" + urllib.parse.quote(expr))["result"]
                value = float(result[0]["value"][1]) if result else None
            except (OSError, ValueError, KeyError, IndexError):
                value = None
            if value is not None and (want is None or value == want):
                break
            time.sleep(0.5)
        return value
