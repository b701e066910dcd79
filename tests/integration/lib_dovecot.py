"""A private Dovecot 2.3 instance for integration tests, plus small clients.

Everything lives under one directory given by the caller: the config, base_dir,
state_dir, the passwd-file, the mail homes and the log. The instance listens on
127.0.0.1 only. Dovecot daemonizes, so it is tracked by the PID in
base_dir/master.pid and stopped with a signal to that PID, never by name.

Standard library and lib_mailscope only; needs root (Dovecot drops privileges
itself).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import grp
import imaplib
import os
import poplib
import smtplib
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable

from lib_mailscope import doc_block, free_port, run_test, skip, wait_until

# The unprivileged account that owns the test mailboxes. A dedicated system
# account keeps the test away from real users' uids; it is created once
# (useradd --system) and left in place for later runs.
MAIL_USER = "mailscope-vmail"

DOVECOT_BINARIES = ("dovecot", "doveadm", "doveconf")

DOVECOT_DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "docs", "integrations", "dovecot.md")
SETTINGS_MARKER = "<!-- dovecot-listener-settings:"
SYSTEM_USERS_MARKER = "<!-- dovecot-system-users-settings:"


def _doc_block(marker: str, lang: str) -> str:
    """The first ```lang block after `marker` in DOVECOT_DOC."""
    return doc_block(DOVECOT_DOC, marker, lang)


def system_users_settings() -> tuple[str, str]:
    """(dovecot.conf lines, mailscope settings) of the system-users setup in
    docs/integrations/dovecot.md: a group of its own given to every mail
    process with mail_access_groups. The group is created (groupadd
    --system) when missing; the test's mail account is not a member."""
    dovecot_conf = _doc_block(SYSTEM_USERS_MARKER, "")
    settings = _doc_block(SYSTEM_USERS_MARKER, "toml")
    group = dovecot_conf.split("mail_access_groups =", 1)[1].split()[0]
    try:
        grp.getgrnam(group)
    except KeyError:
        subprocess.run(["groupadd", "--system", group], check=True)
    return dovecot_conf, "\n" + settings


def mailscope_settings() -> str:
    """The mailscope settings docs/integrations/dovecot.md gives for Debian's
    Dovecot, with this test's mail account in place of `vmail`.

    Every test that lets a real Dovecot write to mailscope runs mailscope's
    defaults plus exactly this block, read from the document itself, so the
    document and the tests cannot drift apart.
    """
    block = _doc_block(SETTINGS_MARKER, "toml")
    ensure_mail_user()  # its group must exist when mailscope starts
    if '"vmail"' not in block:
        raise ValueError(f"{DOVECOT_DOC}: the settings block no longer names vmail")
    return "\n" + block.replace('"vmail"', f'"{MAIL_USER}"')


def dovecot_installed() -> bool:
    """True when the dovecot, doveadm and doveconf binaries are on PATH."""
    return all(shutil.which(name) for name in DOVECOT_BINARIES)


def ensure_mail_user() -> tuple[int, int]:
    """Returns (uid, gid) of MAIL_USER, creating the system account if needed."""
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
             MAIL_USER],
            check=True)
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid


def process_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (init may reap late)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def tcp_listening(port: int) -> bool:
    """True when some socket listens on 127.0.0.1:port (read from /proc)."""
    # /proc/net/tcp prints the address in host byte order (little-endian here).
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":
                return True
    return False


@dataclasses.dataclass(frozen=True)
class MailUser:
    name: str
    password: str


@dataclasses.dataclass
class Dump:
    """Parsed output of `doveadm oldstats dump`: rc, header and rows."""
    returncode: int
    stdout: str
    stderr: str
    header: list[str]
    rows: list[dict[str, str]]


class Dovecot:
    """One private Dovecot instance under root_dir, controlled by master PID.

    notify_path is the absolute FIFO path the old_stats plugin writes to; when
    None, the plugin uses Dovecot's own base_dir/old-stats-mail.
    auth_listener_path, when set, moves Dovecot's own `old-stats-user` FIFO to
    that name, so base_dir/old-stats-user is left for a permanent symlink.
    extra_conf is appended to the configuration.
    """

    def __init__(self, root_dir: str, users: Iterable[MailUser],
                 notify_path: str | None = None,
                 auth_listener_path: str | None = None, lmtp: bool = False,
                 extra_conf: str = "") -> None:
        self.root_dir = root_dir
        self.extra_conf = extra_conf
        self.lmtp = lmtp
        self.users = list(users)
        self.notify_path = notify_path
        self.auth_listener_path = auth_listener_path
        self.base_dir = os.path.join(root_dir, "run")
        self.state_dir = os.path.join(root_dir, "state")
        self.home_root = os.path.join(root_dir, "home")
        self.config_path = os.path.join(root_dir, "dovecot.conf")
        self.passwd_path = os.path.join(root_dir, "users")
        self.log_path = os.path.join(root_dir, "dovecot.log")
        self.imap_port = free_port()
        self.pop3_port = free_port()
        self.lmtp_port = free_port() if lmtp else 0
        self.master_pid: int | None = None
        self.uid, self.gid = ensure_mail_user()
        # Debian's dovecot-core creates both accounts.
        self.internal_user = "dovecot"
        self.login_user = "dovenull"

    # ---- setup -------------------------------------------------------------

    def install(self) -> None:
        """Writes the passwd-file, mail homes and dovecot.conf."""
        for path in (self.base_dir, self.state_dir, self.home_root):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
        lines = []
        for user in self.users:
            home = os.path.join(self.home_root, user.name)
            os.makedirs(home, exist_ok=True)
            os.chown(home, self.uid, self.gid)
            os.chmod(home, 0o700)
            lines.append(f"{user.name}:{{PLAIN}}{user.password}:"
                         f"{self.uid}:{self.gid}::{home}::\n")
        with open(self.passwd_path, "w", encoding="utf-8") as f:
            f.writelines(lines)
        # auth runs as default_internal_user and reads the passwd-file.
        os.chown(self.passwd_path, 0, pwd.getpwnam(self.internal_user).pw_gid)
        os.chmod(self.passwd_path, 0o640)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.config_text())

    def config_text(self) -> str:
        internal = self.internal_user
        login = self.login_user
        notify = ""
        if self.notify_path is not None:
            notify = f"  old_stats_notify_path = {self.notify_path}\n"
        protocols = "imap pop3 lmtp" if self.lmtp else "imap pop3"
        lmtp_service = ""
        if self.lmtp:
            lmtp_service = f"""service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
"""
        auth_path = ""
        if self.auth_listener_path is not None:
            auth_path = f"    path = {self.auth_listener_path}\n"
        return f"""\
# Private instance for the mailscope integration tests.
instance_name = mailscope-it-{os.path.basename(self.root_dir)}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
listen = 127.0.0.1
protocols = {protocols}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_stats = yes
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
mail_location = maildir:~/Maildir
login_trusted_networks =

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd_path}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd_path}
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
{lmtp_service}service old-stats {{
  fifo_listener old-stats-mail {{
    mode = 0666
  }}
  fifo_listener old-stats-user {{
{auth_path}    mode = 0666
  }}
}}

mail_plugins = $mail_plugins old_stats
protocol imap {{
  mail_plugins = $mail_plugins imap_old_stats
}}
plugin {{
  old_stats_refresh = 1 secs
  old_stats_track_cmds = yes
{notify}}}
{self.extra_conf}"""

    # ---- lifecycle ---------------------------------------------------------

    def check_config(self) -> subprocess.CompletedProcess:
        """Runs `doveconf -c CONF -n`; a non-zero rc means the config is bad."""
        return subprocess.run(["doveconf", "-c", self.config_path, "-n"],
                              capture_output=True, text=True, timeout=30)

    @property
    def pid_file(self) -> str:
        return os.path.join(self.base_dir, "master.pid")

    @property
    def own_old_stats_socket(self) -> str:
        return os.path.join(self.base_dir, "old-stats")

    @property
    def auth_fifo_path(self) -> str:
        return os.path.join(self.base_dir, "old-stats-user")

    def start(self, timeout: float = 20.0) -> None:
        """Starts the daemon and waits until IMAP and POP3 accept connections."""
        # The daemon inherits stdout/stderr; pipes would never reach EOF.
        out_path = os.path.join(self.root_dir, "dovecot-start.out")
        with open(out_path, "w+", encoding="utf-8") as out:
            proc = subprocess.run(["dovecot", "-c", self.config_path],
                                  stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout)
            out.seek(0)
            output = out.read().strip()
        if proc.returncode != 0:
            raise RuntimeError(f"dovecot failed to start (rc={proc.returncode}):"
                               f" {output}")
        # The file may be there a moment before its PID is.
        def read_pid() -> int | None:
            with contextlib.suppress(OSError, ValueError):
                with open(self.pid_file, encoding="ascii") as f:
                    return int(f.read().strip())
            return None

        if not wait_until(lambda: read_pid() is not None, timeout):
            raise RuntimeError(f"{self.pid_file} did not appear with a PID in it")
        self.master_pid = read_pid()
        # Probing with a connection would start a login process and, through
        # it, auth, before the caller has a chance to redirect auth's FIFO.
        ready = lambda: (tcp_listening(self.imap_port) and
                         tcp_listening(self.pop3_port))
        if not wait_until(ready, timeout):
            raise RuntimeError("dovecot listeners did not come up")

    def stop(self, timeout: float = 20.0) -> bool:
        """Sends SIGTERM to the master PID and waits for it to exit."""
        if self.master_pid is None:
            return True
        pid = self.master_pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        stopped = wait_until(lambda: not process_alive(pid), timeout)
        if not stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not process_alive(pid), 5.0)
        self.master_pid = None
        return stopped

    def reload(self) -> subprocess.CompletedProcess:
        return self.doveadm("reload")

    def child_pids(self, executable: str) -> list[int]:
        """PIDs of this master's children whose /proc/PID/exe ends in executable."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                exe = os.readlink(f"/proc/{entry}/exe")
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.master_pid and os.path.basename(exe) == executable:
                found.append(int(entry))
        return found

    def redirect_auth_fifo(self, target: str) -> None:
        """Replaces base_dir/old-stats-user with a symlink to target.

        The rename is atomic, so auth never sees the name missing.
        """
        tmp = self.auth_fifo_path + ".mailscope-tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, self.auth_fifo_path)

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # ---- doveadm -----------------------------------------------------------

    def doveadm(self, *args: str, timeout: float = 15.0
                ) -> subprocess.CompletedProcess:
        """Runs doveadm against this instance's config (no /etc/dovecot needed)."""
        return subprocess.run(["doveadm", "-c", self.config_path, *args],
                              capture_output=True, text=True, timeout=timeout)

    def oldstats_dump(self, socket_path: str, level: str,
                      filter_arg: str | None = None) -> Dump:
        """`doveadm oldstats dump -s socket_path level [filter]`, parsed."""
        args = ["oldstats", "dump", "-s", socket_path, level]
        if filter_arg is not None:
            args.append(filter_arg)
        proc = self.doveadm(*args)
        lines = [line for line in proc.stdout.split("\n") if line != ""]
        header = lines[0].split("\t") if lines else []
        rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
        return Dump(proc.returncode, proc.stdout, proc.stderr, header, rows)

    def oldstats_reset(self, socket_path: str) -> subprocess.CompletedProcess:
        return self.doveadm("oldstats", "reset", "-s", socket_path)


# ---- clients ---------------------------------------------------------------


class RecordingIMAP(imaplib.IMAP4):
    """imaplib client that records the name of every command sent after login.

    The record is what the server saw on the wire, so it also covers commands
    that imaplib adds on its own. "UID FETCH" style commands keep both words,
    as Dovecot names them that way.
    """

    def __init__(self, host: str, port: int, timeout: float = 15.0,
                 source_ip: str | None = None) -> None:
        self.sent_after_login: list[str] = []
        self.source_ip = source_ip
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        # Any 127.x.y.z reaches the loopback listener; a source address of
        # its own keeps a client out of auth's per-IP failure penalty.
        source = (self.source_ip, 0) if self.source_ip else None
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=source)

    def send(self, data: bytes) -> None:
        if self.state != "NONAUTH" and data.startswith(self.tagpre):
            words = data.split(b"\r\n", 1)[0].split(b" ")
            if len(words) >= 2:
                name = words[1].decode("ascii", "replace").upper()
                if name == "UID" and len(words) >= 3:
                    name += " " + words[2].decode("ascii", "replace").upper()
                self.sent_after_login.append(name)
        super().send(data)

    def raw_idle(self, seconds: float = 0.3) -> None:
        """Enters IDLE, waits, sends DONE; imaplib 3.11 has no idle()."""
        tag = self._new_tag()
        self.send(tag + b" IDLE\r\n")
        line = self.readline()
        if not line.startswith(b"+"):
            raise imaplib.IMAP4.error(f"IDLE not accepted: {line!r}")
        time.sleep(seconds)
        self.send(b"DONE\r\n")
        while True:
            line = self.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed during IDLE")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise imaplib.IMAP4.error(f"IDLE failed: {line!r}")
                return


def imap_login(port: int, user: MailUser, source_ip: str | None = None) -> RecordingIMAP:
    """LOGIN over a new connection, from source_ip when given (127.0.0.0/8)."""
    client = RecordingIMAP("127.0.0.1", port, source_ip=source_ip)
    client.login(user.name, user.password)
    return client


def imap_login_refusal(port: int, user: MailUser,
                       source_ip: str | None = None) -> tuple[bool, str]:
    """LOGIN that the server should refuse, from source_ip when given. Returns
    (True, its text) for the tagged `NO [AUTHENTICATIONFAILED]` a wrong password
    gets, else (False, what happened instead: a login, a BAD, a BYE, a timeout or
    a lost connection)."""
    try:
        client = RecordingIMAP("127.0.0.1", port, source_ip=source_ip)
    except (OSError, imaplib.IMAP4.error) as err:
        return False, f"connect: {type(err).__name__}: {err}"
    try:
        client.login(user.name, user.password)
        return False, "LOGIN succeeded"
    except imaplib.IMAP4.abort as err:  # BYE or the connection lost
        return False, f"aborted: {err}"
    except imaplib.IMAP4.error as err:
        # login() raises the text of a tagged NO as is (bytes); a BAD comes as
        # "LOGIN command error: ...". RFC 5530: AUTHENTICATIONFAILED is the
        # response code of NO for wrong credentials.
        text = err.args[0] if err.args else b""
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return text.startswith("[AUTHENTICATIONFAILED]"), text
    except OSError as err:  # timeout, reset
        return False, f"{type(err).__name__}: {err}"
    finally:
        with contextlib.suppress(Exception):
            client.shutdown()


def pop3_session(port: int, user: MailUser) -> tuple[int, int]:
    """USER/PASS, STAT, LIST, QUIT. Returns (message count, mailbox size)."""
    client = poplib.POP3("127.0.0.1", port, timeout=15.0)
    try:
        client.user(user.name)
        client.pass_(user.password)
        count, size = client.stat()
        client.list()
    finally:
        client.quit()
    return count, size


def lmtp_deliver(port: int, sender: str, recipients: list[str], message: str) -> dict:
    """One LMTP transaction (LHLO, MAIL, RCPT..., DATA). Returns smtplib's map
    of refused recipients; raises when every recipient is refused."""
    with smtplib.LMTP("127.0.0.1", port, timeout=15.0) as client:
        return client.sendmail(sender, recipients, message.encode())


class StatsDovecot(Dovecot):
    """Dovecot whose processes write their events to mailscope's stats-writer
    (through a link named `writer_link` in base_dir, made by link_writer())
    instead of to Dovecot's own stats process. `extra` is appended to the
    configuration (metric and event_exporter blocks, say)."""

    def __init__(self, root_dir: str, users: Iterable[MailUser], writer_link: str | None,
                 extra: str = "", lmtp: bool = False) -> None:
        super().__init__(root_dir, users, lmtp=lmtp)
        self.writer_link = writer_link
        self.extra = extra

    def config_text(self) -> str:
        text = super().config_text()
        if self.writer_link is not None:
            text += f"\nstats_writer_socket_path = {self.writer_link}\n"
        return text + self.extra

    def link_writer(self, target: str) -> None:
        os.makedirs(self.base_dir, exist_ok=True)
        os.symlink(target, os.path.join(self.base_dir, self.writer_link))


def run_dovecot_test(argv: list[str], doc: str, prefix: str, what: str,
                     make_test: Callable[[str, str], Any]) -> int:
    """main() of a test that starts private Dovecot instances: parses
    --mailscope and --keep, skips (77, or fails under
    MAILSCOPE_REQUIRE_INTEGRATION=1) unless root with Dovecot installed, and
    runs make_test(mailscope_binary, root) under a fresh directory."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--mailscope", required=True)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        return skip("needs root (it starts private Dovecot instances)")
    if not dovecot_installed():
        return skip("dovecot not installed")
    root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    test = make_test(os.path.abspath(args.mailscope), root)
    return run_test(test, test.c, what, root, args.keep)


# ---- a stats-writer client of our own -------------------------------------------


def tab_escape(value: bytes) -> bytes:
    """Dovecot's str_tabescape()."""
    out = bytearray()
    for b in value:
        out += {0x01: b"\x011", 0x09: b"\x01t", 0x0d: b"\x01r", 0x0a: b"\x01n",
                0x00: b"\x010"}.get(b, bytes([b]))
    return bytes(out)


class StatsWriterClient:
    """A stats-writer client that sends events as a Dovecot process does and
    reads (and ignores) what the server sends it."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.sendall(b"VERSION\tstats-client\t4\t0\n")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                if not self.sock.recv(65536):
                    return
            except OSError:
                return

    @staticmethod
    def event_line(name: str, fields: dict[str, bytes]) -> bytes:
        sec, usec = divmod(time.time_ns() // 1000, 1_000_000)
        items = [b"EVENT", b"0", b"0", b"0", str(sec).encode(), str(usec).encode(),
                 b"s" + os.path.basename(sys.argv[0]).encode(), b"1", f"l{sec}".encode(), str(usec).encode(),
                 b"n" + name.encode()]
        for key, value in fields.items():
            items += [b"S" + key.encode(), tab_escape(value)]
        return b"\t".join(items) + b"\n"

    def send(self, name: str, **fields: bytes) -> None:
        self.sock.sendall(self.event_line(name, fields))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
