"""A private Exim 4.96 (Debian's exim4-daemon-light) for the integration tests.

  * Exim runs a daemon of its own configuration with -C, listening on a
    loopback port, its spool, logs and mailboxes under one directory. A -C
    configuration keeps root only when it is listed in Exim's
    TRUSTED_CONFIG_LIST, /etc/exim4/trusted_configs on Debian: start() adds
    the file to that list and stop() takes it out again (the list is left as
    it was, and removed when this made it).
  * The daemon is stopped by the PID it wrote, with SIGTERM.
  * swaks() sends one message with the real swaks and returns Exim's queue id.

Standard library only.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess


from lib_mailscope import wait_until

EXIM = "/usr/sbin/exim4"
TRUSTED_CONFIGS = "/etc/exim4/trusted_configs"
EXIM_USER = "Debian-exim"


def exim_installed() -> bool:
    return os.access(EXIM, os.X_OK) and shutil.which("swaks") is not None


def exim_version() -> str:
    out = subprocess.run([EXIM, "-bV"], capture_output=True, text=True).stdout
    m = re.search(r"Exim version (\S+)", out)
    return m.group(1) if m else ""


class Exim:
    """One Exim daemon under `root` (which must not exist yet) with the main
    configuration `config`; `@ROOT@` in it stands for root."""

    def __init__(self, root: str, name: str, config: str) -> None:
        self.root = root
        self.name = name
        self.conf = os.path.join(root, "exim.conf")
        self.pid_file = os.path.join(root, "exim.pid")
        self.mainlog = os.path.join(root, "log", "mainlog")
        self.paniclog = os.path.join(root, "log", "paniclog")
        self.pid: int | None = None
        self._trusted_added = False
        self._trusted_created = False
        uid = pwd.getpwnam(EXIM_USER).pw_uid
        gid = grp.getgrnam(EXIM_USER).gr_gid
        os.makedirs(root)
        os.chmod(root, 0o755)
        for sub in ("spool", "log", "mail"):
            path = os.path.join(root, sub)
            os.makedirs(path)
            os.chown(path, uid, gid)
            os.chmod(path, 0o750)
        # Exim refuses a -C file that others can write; it must be root's.
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(config.replace("@ROOT@", root))
        os.chmod(self.conf, 0o644)

    def check_config(self) -> subprocess.CompletedProcess:
        return subprocess.run([EXIM, "-C", self.conf, "-bV"], capture_output=True, text=True)

    def start(self, port: int, timeout: float = 15.0) -> None:
        self._trust()
        subprocess.run([EXIM, "-C", self.conf, "-bd"], check=True, capture_output=True, text=True,
                       timeout=timeout)

        def up() -> bool:
            # Exim creates its PID file before it writes it: it may be empty.
            with contextlib.suppress(OSError, ValueError):
                with open(self.pid_file, encoding="ascii") as f:
                    words = f.read().split()
                if words:
                    self.pid = int(words[0])
            return self.pid is not None and _listening(port)

        if not wait_until(up, timeout):
            raise RuntimeError(f"exim {self.name} not listening on {port} within {timeout} s: "
                               f"{self.log_text()}")

    def stop(self, timeout: float = 15.0) -> None:
        try:
            if self.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
                wait_until(lambda: not _alive(self.pid), timeout)
        finally:
            self._untrust()

    def swaks(self, port: int, sender: str, recipient: str, timeout: float = 30.0) -> str:
        """Sends one message; returns the queue id Exim gave it ("" if none)."""
        out = self.swaks_session(port, sender, recipient, timeout)
        m = re.search(r"^<-\s+250 OK id=(\S+)", out, re.M)
        return m.group(1) if m else ""

    @staticmethod
    def swaks_session(port: int, sender: str, recipient: str, timeout: float = 30.0) -> str:
        """Sends one message; returns swaks' transcript of the session."""
        return subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{port}", "--from", sender, "--to", recipient,
             "--helo", "client.test", "--header", f"Subject: mailscope test to {recipient}"],
            capture_output=True, text=True, timeout=timeout).stdout

    def log_text(self) -> str:
        parts = []
        for path in (self.mainlog, self.paniclog):
            with contextlib.suppress(FileNotFoundError):
                with open(path, encoding="utf-8", errors="replace") as f:
                    parts.append(f"{os.path.basename(path)}:\n{f.read()}")
        return "\n".join(parts)

    def panic_log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            with open(self.paniclog, encoding="utf-8", errors="replace") as f:
                return f.read()
        return ""

    def _trust(self) -> None:
        lines = []
        if os.path.exists(TRUSTED_CONFIGS):
            with open(TRUSTED_CONFIGS, encoding="utf-8") as f:
                lines = f.read().splitlines()
        else:
            self._trusted_created = True
        if self.conf not in lines:
            lines.append(self.conf)
            self._write_trusted(lines)
            self._trusted_added = True

    def _untrust(self) -> None:
        if not self._trusted_added:
            return
        with open(TRUSTED_CONFIGS, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line != self.conf]
        if not lines and self._trusted_created:
            os.unlink(TRUSTED_CONFIGS)
        else:
            self._write_trusted(lines)
        self._trusted_added = False

    @staticmethod
    def _write_trusted(lines: list[str]) -> None:
        tmp = TRUSTED_CONFIGS + ".mailscope-test"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, 0o644)
        os.replace(tmp, TRUSTED_CONFIGS)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_log(exim: Exim, pattern: str, timeout: float = 20.0) -> bool:
    """True once `pattern` (a regular expression) matches Exim's main log."""
    rx = re.compile(pattern, re.M)
    return wait_until(lambda: rx.search(exim.log_text()) is not None, timeout)




def self_signed_certificate(directory: str, common_name: str) -> str:
    """Writes cert.pem and key.pem (RSA 2048, CN=common_name) into directory,
    readable by Exim's user; returns the certificate's SHA-256 fingerprint as
    upper-case hex without colons."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={common_name}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    gid = grp.getgrnam(EXIM_USER).gr_gid
    os.chown(key, 0, gid)
    os.chmod(key, 0o640)
    os.chmod(cert, 0o644)
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1].replace(":", "").upper()
