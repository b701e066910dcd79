"""A private PostgreSQL 15 (Debian's postgresql-15) for the integration tests.

  * initdb makes a cluster under a directory of its own, owned by the
    `postgres` user (PostgreSQL refuses to run as root), with trust
    authentication for local and loopback connections only.
  * The server listens on 127.0.0.1 on a free port and on a UNIX socket in
    the same directory; it is stopped by the PID in postmaster.pid.
  * stop() is a fast shutdown (SIGINT), kill() an immediate one (SIGQUIT),
    as an outage looks to a client.

Standard library only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess

from lib_mailscope import free_port, wait_until

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "postgres"


def postgres_installed() -> bool:
    return os.access(os.path.join(PG_BIN, "postgres"), os.X_OK) and _has_user()


def _has_user() -> bool:
    try:
        pwd.getpwnam(PG_USER)
        return True
    except KeyError:
        return False


class Postgres:
    def __init__(self, root: str) -> None:
        self.root = root
        self.data = os.path.join(root, "data")
        self.log_path = os.path.join(root, "postgres.log")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        os.makedirs(root)
        pw = pwd.getpwnam(PG_USER)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o755)
        self._as_postgres([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", PG_USER,
                           "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])

    def _as_postgres(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", PG_USER, "--", *args], check=True,
                              capture_output=True, text=True, timeout=120, **kw)

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/mailscope"

    def start(self, timeout: float = 30.0) -> None:
        """Starts the server (not through pg_ctl: the test holds its PID)."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["runuser", "-u", PG_USER, "--", os.path.join(PG_BIN, "postgres"), "-D", self.data,
             "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={self.root}", "-c", "fsync=off"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        ok = wait_until(lambda: self.proc.poll() is not None or self._ready(), timeout)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError(f"PostgreSQL did not start: {self.log_text()[-2000:]}")

    def _ready(self) -> bool:
        r = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p",
                            str(self.port)], capture_output=True)
        return r.returncode == 0

    def create_database(self, name: str = "mailscope") -> None:
        self.psql("postgres", f"CREATE DATABASE {name}")

    def psql(self, db: str, sql: str) -> str:
        r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", PG_USER, "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr}")
        return r.stdout

    def pid(self) -> int | None:
        try:
            with open(os.path.join(self.data, "postmaster.pid"), encoding="ascii") as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def _signal_and_wait(self, sig: int, timeout: float) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                self.proc.wait()
        wait_until(lambda: not os.path.exists(os.path.join(self.data, "postmaster.pid"))
                   or self.pid() is None, 5.0)
        self.proc = None

    def stop(self, timeout: float = 30.0) -> None:
        self._signal_and_wait(signal.SIGINT, timeout)

    def kill(self) -> None:
        """An immediate shutdown: connections are cut, nothing is committed after."""
        self._signal_and_wait(signal.SIGQUIT, 30.0)

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

