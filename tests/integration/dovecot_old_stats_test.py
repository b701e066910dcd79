#!/usr/bin/env python3
"""Real-peer test: a real Dovecot 2.3 writes old stats, real doveadm reads them.

    dovecot_old_stats_test.py --mailscope PATH [--keep] [--auth-fifo MODE] [--mail-group]
    dovecot_old_stats_test.py --against-dovecot [--keep]

Starts mailscope, then a private Dovecot (loopback ports, everything under one
temporary directory), drives IMAP and POP3 traffic with imaplib/poplib, and
checks what `doveadm oldstats dump -s RUNDIR/old-stats` reports at every level
and filter. --against-dovecot points the same Dovecot at its own old-stats
process instead: the expected numbers must hold there too, which is what keeps
the assertions honest.

--auth-fifo picks how auth's `old-stats-user` FIFO (always opened relative to
base_dir) is sent to mailscope:
  replace    Dovecot creates base_dir/old-stats-user; after start (and after
             every reload) it is replaced by a symlink to mailscope's FIFO.
  permanent  Dovecot's listener is renamed, so a symlink made before start
             survives restarts and reloads (what docs/integrations/dovecot.md
             recommends).

mailscope runs with its secure defaults plus exactly the settings
docs/integrations/dovecot.md gives (read from the document): the group of the
mail account on old-stats-mail or, with --mail-group, the system-users setup,
where Dovecot's mail_access_groups gives every mail process a group of its own
that mailscope names.

Prints one PASS/FAIL line per check, exits 1 on any failure, 77 when Dovecot
is not installed or the test does not run as root. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import imaplib
import os
import re
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_dovecot as ld  # noqa: E402
import lib_mailscope as lm  # noqa: E402
from lib_mailscope import (AUTH_FIELDS, MAIL_FIELDS,  # noqa: E402
                           TIMEVAL_FIELDS, usec)

DOVEADM_TEMPFAIL = 75

ALICE = ld.MailUser("alice@example.com", "alice-pw")
BOB = ld.MailUser("bob@example.org", "bob-pw")
CAROL = ld.MailUser("carol@example.com", "carol-pw")
DAVE = ld.MailUser("dave", "dave-pw")
USERS = (ALICE, BOB, CAROL, DAVE)

# Commands that imap_old_stats never reports: IDLE on purpose, unknown
# commands because they never reach the command hooks.
UNREPORTED = {"IDLE", "XYZZY"}

FIXED_COLUMNS = {
    "command": ["cmd", "args", "session", "user", "last_update"],
    "session": ["session", "user", "ip", "service", "pid", "connected",
                "last_update", "num_cmds"],
    "user": ["user", "reset_timestamp", "last_update", "num_logins",
             "num_cmds"],
    "domain": ["domain", "reset_timestamp", "last_update", "num_logins",
               "num_cmds", "num_connected_sessions"],
    "ip": ["ip", "reset_timestamp", "last_update", "num_logins", "num_cmds",
           "num_connected_sessions"],
    "global": ["reset_timestamp", "last_update", "num_logins", "num_cmds",
               "num_connected_sessions"],
}

# Stats timevals print as "<sec>.<usec>" with usec NOT zero-padded
# (0.2863 is 2863 us); last_update prints usec with six digits.
STATS_TIMEVAL_RE = re.compile(r"^\d+\.(0|[1-9]\d{0,5})$")
LAST_UPDATE_RE = re.compile(r"^\d+\.\d{6}$")


def field_value(row: dict[str, str], name: str) -> int:
    return usec(row[name]) if name in TIMEVAL_FIELDS else int(row[name])


class Traffic:
    """What the clients did, for the expected numbers."""

    def __init__(self) -> None:
        # user name -> IMAP command names sent after login, in order.
        self.imap_cmds: dict[str, list[str]] = {u.name: [] for u in USERS}
        self.logins: dict[str, int] = {u.name: 0 for u in USERS}
        self.failures: dict[str, int] = {u.name: 0 for u in USERS}

    def reported(self, user: str) -> list[str]:
        return [c for c in self.imap_cmds[user] if c not in UNREPORTED]

    def total_reported(self) -> int:
        return sum(len(self.reported(u.name)) for u in USERS)


class Test:
    def __init__(self, args: argparse.Namespace, root: str) -> None:
        self.args = args
        self.root = root
        self.checks = lm.Checks()
        self.traffic = Traffic()
        self.mailscope: lm.Mailscope | None = None
        self.held: ld.RecordingIMAP | None = None  # carol, kept logged in
        self.since = 0  # unix time after which only carol's session acts
        self.sessions: ld.Dump | None = None  # session level, for sums
        self.users: ld.Dump | None = None  # user level, for sums
        against = args.against_dovecot
        dovecot_extra = ""
        if args.mail_group:
            dovecot_extra, settings = ld.system_users_settings()
        else:
            settings = ld.mailscope_settings()
        # The group the mail processes reach old-stats-mail through.
        self.mail_gid = grp.getgrnam(
            settings.split("group =", 1)[1].split()[0].strip('"')).gr_gid
        if not against:
            self.mailscope = lm.Mailscope(args.mailscope,
                                          os.path.join(root, "mailscope"),
                                          config=settings)
        self.link_mode = None if against else args.auth_fifo
        dovecot_root = os.path.join(root, "dovecot")
        os.makedirs(dovecot_root)
        os.chmod(dovecot_root, 0o755)
        base_dir = os.path.join(dovecot_root, "run")
        if against:
            stats_dir = base_dir
        else:
            stats_dir = self.mailscope.run_dir
        self.stats_socket = os.path.join(stats_dir, "old-stats")
        self.notify_path = os.path.join(stats_dir, "old-stats-mail")
        self.auth_target = os.path.join(stats_dir, "old-stats-user")
        self.dovecot = ld.Dovecot(
            dovecot_root, USERS, notify_path=self.notify_path, extra_conf=dovecot_extra,
            auth_listener_path=("old-stats-user-dovecot"
                                if self.link_mode == "permanent" else None))

    # ---- helpers -----------------------------------------------------------

    def dump(self, level: str, filter_arg: str | None = None) -> ld.Dump:
        return self.dovecot.oldstats_dump(self.stats_socket, level, filter_arg)

    def by(self, dump: ld.Dump, key: str) -> dict[str, dict[str, str]]:
        return {row[key]: row for row in dump.rows}

    def link_auth_fifo(self) -> None:
        self.dovecot.redirect_auth_fifo(self.auth_target)

    # ---- phases ------------------------------------------------------------

    def run(self) -> None:
        c = self.checks
        if self.mailscope is not None:
            self.mailscope.start()
            st = os.lstat(self.stats_socket) if os.path.lexists(self.stats_socket) else None
            c.check("mailscope accepts on run-dir/old-stats",
                    st is not None and stat.S_ISSOCK(st.st_mode)
                    and lm.can_connect_unix(self.stats_socket),
                    f"{self.stats_socket}: {st}")
            for name in ("old-stats-mail", "old-stats-user"):
                path = os.path.join(self.mailscope.run_dir, name)
                st = os.lstat(path) if os.path.lexists(path) else None
                c.check(f"mailscope created FIFO {name}",
                        st is not None and stat.S_ISFIFO(st.st_mode),
                        "missing" if st is None else f"mode {st.st_mode:o}")
                if st is not None:
                    c.check(f"{name} is not writable by everyone",
                            st.st_mode & 0o002 == 0,
                            f"mode {stat.S_IMODE(st.st_mode):04o}")
            # The documented setting gives the mail processes' group the mail
            # FIFO; auth opens its FIFO as root and needs none.
            st = os.lstat(self.mailscope.mail_fifo)
            c.equal("old-stats-mail: mode and group",
                    (stat.S_IMODE(st.st_mode), st.st_gid),
                    (0o660, self.mail_gid))
            st = os.lstat(self.mailscope.auth_fifo)
            c.equal("old-stats-user: mode and group (the defaults)",
                    (stat.S_IMODE(st.st_mode), st.st_gid), (0o660, os.getegid()))

        self.dovecot.install()
        conf = self.dovecot.check_config()
        c.check("doveconf -n parses the config", conf.returncode == 0,
                conf.stderr.strip(), conf.stderr if conf.returncode else None)
        c.check("doveconf shows the notify path",
                f"old_stats_notify_path = {self.notify_path}" in conf.stdout,
                raw=conf.stdout)
        if self.link_mode == "permanent":
            # base_dir is created here so the link exists before Dovecot does.
            self.link_auth_fifo()
        self.dovecot.start()
        print(f"# dovecot master pid {self.dovecot.master_pid}, imap port"
              f" {self.dovecot.imap_port}, pop3 port {self.dovecot.pop3_port}",
              flush=True)
        if self.link_mode == "replace":
            # Must happen before the first login: auth opens the FIFO once,
            # when the auth process starts, and keeps that fd.
            self.link_auth_fifo()
        if self.link_mode is not None:
            c.equal("base_dir/old-stats-user points at mailscope",
                    os.path.realpath(self.dovecot.auth_fifo_path),
                    os.path.realpath(self.auth_target))
            c.equal("no auth process started before the link",
                    self.dovecot.child_pids("auth"), [])

        self.drive_traffic()
        self.wait_settled()
        self.touch_held_session_after_since()
        # A phase that trips over malformed output is reported and the
        # remaining phases still run.
        phases = [self.check_command_level, self.check_session_level,
                  self.check_user_level, self.check_domain_level,
                  self.check_ip_level, self.check_global_level,
                  self.check_errors_and_empty, self.check_reset,
                  self.check_reload]
        if self.mailscope is not None:
            phases.append(self.check_http)
        phases.append(self.check_dovecot_log)
        for phase in phases:
            try:
                phase()
            except (KeyError, ValueError, IndexError, TypeError) as err:
                c.check(f"{phase.__name__} ran", False,
                        f"{type(err).__name__}: {err}")
        self.finish()

    def drive_traffic(self) -> None:
        c = self.checks
        t = self.traffic
        port = self.dovecot.imap_port

        # carol stays logged in for the `connected` checks.
        self.held = ld.imap_login(port, CAROL)
        t.logins[CAROL.name] += 1
        self.held.select("INBOX")
        self.held.noop()

        message = (b"From: test@example.net\r\nSubject: old stats\r\n\r\n"
                   b"hello\r\n")
        alice = ld.imap_login(port, ALICE)
        t.logins[ALICE.name] += 1
        alice.list()
        alice.select("INBOX")
        alice.append("INBOX", None, None, message)
        alice.append("INBOX", None, None, message)
        alice.fetch("1:*", "(FLAGS)")
        alice.search(None, "ALL")
        alice.uid("SEARCH", "ALL")
        alice.store("1", "+FLAGS", "(\\Seen)")
        with contextlib.suppress(imaplib.IMAP4.error):
            alice.xatom("XYZZY")
        alice.raw_idle(0.2)
        alice.noop()
        alice.status("INBOX", "(MESSAGES)")
        alice.close()
        alice.logout()

        bob = ld.imap_login(port, BOB)
        t.logins[BOB.name] += 1
        bob.select("INBOX")
        bob.append("INBOX", None, None, message)
        bob.fetch("1", "(RFC822.SIZE)")
        bob.noop()
        bob.logout()

        dave = ld.imap_login(port, DAVE)
        t.logins[DAVE.name] += 1
        dave.select("INBOX")
        dave.noop()
        dave.logout()

        count, _ = ld.pop3_session(self.dovecot.pop3_port, ALICE)
        t.logins[ALICE.name] += 1
        c.equal("POP3 STAT sees alice's two messages", count, 2)

        # Last, as the failure delay and anvil's penalty slow later logins.
        bad = ld.RecordingIMAP("127.0.0.1", port)
        try:
            bad.login(ALICE.name, "wrong-password")
            failed = False
        except imaplib.IMAP4.error:
            failed = True
        finally:
            with contextlib.suppress(OSError):
                bad.shutdown()
        t.failures[ALICE.name] += 1
        c.check("IMAP login with a wrong password is refused", failed)

        for client, user in ((self.held, CAROL), (alice, ALICE), (bob, BOB),
                             (dave, DAVE)):
            t.imap_cmds[user.name] = list(client.sent_after_login)
        print("# IMAP commands sent after login: " + "; ".join(
            f"{u}: {' '.join(cmds)}" for u, cmds in t.imap_cmds.items()),
            flush=True)

    def expected_global(self) -> dict[str, int]:
        t = self.traffic
        return {
            "num_logins": sum(t.logins.values()),
            "num_cmds": t.total_reported(),
            "num_connected_sessions": 1,
            "auth_successes": sum(t.logins.values()),
            "auth_failures": sum(t.failures.values()),
        }

    def wait_settled(self) -> None:
        """Waits until the global row shows every login, command and auth."""
        expected = self.expected_global()
        last: list[ld.Dump] = []

        def settled() -> bool:
            d = self.dump("global")
            last[:] = [d]
            try:
                return len(d.rows) == 1 and all(
                    int(d.rows[0][k]) == v for k, v in expected.items())
            except (KeyError, ValueError):
                return False

        ok = lm.wait_until(settled, 20.0, 0.25)
        got = ({k: last[0].rows[0].get(k) for k in expected}
               if last and last[0].rows else None)
        self.checks.check("global counters settle", ok,
                          f"expected {expected}, last {got}",
                          last[0].stdout + last[0].stderr if last and not ok
                          else None)

    def touch_held_session_after_since(self) -> None:
        """Picks `since`, then lets only carol's session act after it."""
        self.since = int(time.time()) + 1
        lm.wait_until(lambda: time.time() >= self.since + 0.05, 3.0, 0.02)
        self.held.noop()
        self.traffic.imap_cmds[CAROL.name] = list(self.held.sent_after_login)
        session = []

        def carol_quiet() -> bool:
            d = self.dump("session", f"user={CAROL.name}")
            if len(d.rows) != 1:
                return False
            session[:] = d.rows
            try:
                updated = usec(d.rows[0]["last_update"]) / 1e6
                cmds = int(d.rows[0]["num_cmds"])
            except (KeyError, ValueError):
                return False
            # old_stats_refresh = 1 s: a change is reported within a second
            # and followed by one duplicate; then the session is quiet.
            return (updated >= self.since and
                    cmds == len(self.traffic.reported(CAROL.name)) and
                    time.time() - updated >= 2.2)

        ok = lm.wait_until(carol_quiet, 10.0, 0.2)
        self.checks.check("held session updated after since, then idle", ok,
                          f"last row {session}")

    # ---- levels ------------------------------------------------------------

    def check_header(self, level: str, dump: ld.Dump) -> None:
        self.checks.equal(
            f"{level}: header columns", dump.header,
            FIXED_COLUMNS[level] + list(MAIL_FIELDS) + list(AUTH_FIELDS),
            dump.stdout)

    def check_command_level(self) -> None:
        c = self.checks
        d = self.dump("command")
        c.equal("command: rc", d.returncode, 0, d.stderr)
        self.check_header("command", d)
        for user in USERS:
            got = [r["cmd"] for r in d.rows if r["user"] == user.name]
            c.equal(f"command: {user.name} commands (all but IDLE and unknown,"
                    f" oldest first)", got, self.traffic.reported(user.name),
                    d.stdout)
        append_args = [r["args"] for r in d.rows
                       if r["user"] == ALICE.name and r["cmd"] == "APPEND"]
        c.check("command: APPEND args show the literal size",
                bool(append_args) and all(re.fullmatch(
                    r"INBOX <\d+ byte literal>", a) for a in append_args),
                f"{append_args}")
        d2 = self.dump("command", "user=ali*")
        c.equal("command user=ali*: only alice's commands",
                [r["cmd"] for r in d2.rows],
                self.traffic.reported(ALICE.name), d2.stdout)
        d3 = self.dump("command", f"since={self.since}")
        c.equal("command since=: the held session's commands",
                sorted({r["user"] for r in d3.rows}), [CAROL.name], d3.stdout)
        c.check("command: last_update has six-digit microseconds",
                all(LAST_UPDATE_RE.match(r["last_update"]) for r in d.rows),
                raw=d.stdout)

    def check_session_level(self) -> None:
        c = self.checks
        t = self.traffic
        d = self.dump("session")
        c.equal("session: rc", d.returncode, 0, d.stderr)
        self.check_header("session", d)
        c.equal("session: one row per login", len(d.rows),
                sum(t.logins.values()), d.stdout)
        for row in d.rows:
            user = row["user"]
            label = f"session {row['service']} {user}"
            held = user == CAROL.name
            c.equal(f"{label}: connected", row["connected"],
                    "1" if held else "0", d.stdout)
            c.equal(f"{label}: ip", row["ip"], "127.0.0.1")
            c.check(f"{label}: pid is a process id",
                    row["pid"].isdigit() and int(row["pid"]) > 0, row["pid"])
            expected_cmds = (len(t.reported(user))
                             if row["service"] == "imap" else 0)
            c.equal(f"{label}: num_cmds", int(row["num_cmds"]), expected_cmds,
                    d.stdout)
            c.check(f"{label}: no auth stats on session rows",
                    all(row[f] == "0" for f in AUTH_FIELDS),
                    str({f: row[f] for f in AUTH_FIELDS}))
        services = sorted((r["user"], r["service"]) for r in d.rows)
        c.equal("session: users and services", services, sorted(
            [(ALICE.name, "imap"), (ALICE.name, "pop3"), (BOB.name, "imap"),
             (CAROL.name, "imap"), (DAVE.name, "imap")]), d.stdout)

        dc = self.dump("session", "connected")
        c.equal("session connected: only the held session",
                [(r["user"], r["connected"]) for r in dc.rows],
                [(CAROL.name, "1")], dc.stdout)
        da = self.dump("session", "user=ali*")
        c.equal("session user=ali*: alice's imap and pop3",
                sorted(r["service"] for r in da.rows), ["imap", "pop3"],
                da.stdout)
        db = self.dump("session", f"user={BOB.name}")
        c.equal("session user=<exact>: bob's one session",
                [r["user"] for r in db.rows], [BOB.name], db.stdout)
        di = self.dump("session", "ip=127.0.0.0/8")
        c.equal("session ip=127.0.0.0/8: every session", len(di.rows),
                len(d.rows), di.stdout)
        ds = self.dump("session", f"since={self.since}")
        c.equal("session since=: only the held session",
                [r["user"] for r in ds.rows], [CAROL.name], ds.stdout)
        held_ids = [r["session"] for r in d.rows if r["user"] == CAROL.name]
        if held_ids:
            sid = held_ids[0]
            dd = self.dump("session", f"session={sid}")
            c.equal("session session=<id>: that session",
                    [r["session"] for r in dd.rows], [sid], dd.stdout)
            dm = self.dump("command", f"session={sid}")
            c.equal("command session=<id>: that session's commands",
                    [r["cmd"] for r in dm.rows],
                    self.traffic.reported(CAROL.name), dm.stdout)
        c.check("session: stats timevals are <sec>.<usec unpadded>",
                all(STATS_TIMEVAL_RE.match(r[f]) for r in d.rows
                    for f in TIMEVAL_FIELDS), raw=d.stdout)
        self.sessions = d

    def check_user_level(self) -> None:
        c = self.checks
        t = self.traffic
        d = self.dump("user")
        c.equal("user: rc", d.returncode, 0, d.stderr)
        self.check_header("user", d)
        rows = self.by(d, "user")
        c.equal("user: one row per user", sorted(rows),
                sorted(u.name for u in USERS), d.stdout)
        for user in USERS:
            row = rows.get(user.name)
            if row is None:
                continue
            n = user.name
            c.equal(f"user {n}: num_logins", int(row["num_logins"]),
                    t.logins[n])
            c.equal(f"user {n}: num_cmds", int(row["num_cmds"]),
                    len(t.reported(n)))
            c.equal(f"user {n}: auth_successes", int(row["auth_successes"]),
                    t.logins[n])
            c.equal(f"user {n}: auth_failures", int(row["auth_failures"]),
                    t.failures[n])
            sessions = [s for s in self.sessions.rows if s["user"] == n]
            sums = {f: sum(field_value(s, f) for s in sessions)
                    for f in MAIL_FIELDS}
            got = {f: field_value(row, f) for f in MAIL_FIELDS}
            c.equal(f"user {n}: mail stats are the sum of its sessions",
                    got, sums)
        self.users = d

        da = self.dump("user", "user=ali*")
        c.equal("user user=ali*: alice only", [r["user"] for r in da.rows],
                [ALICE.name], da.stdout)
        dd = self.dump("user", "domain=example.*")
        c.equal("user domain=example.*: alice, bob, carol",
                sorted(r["user"] for r in dd.rows),
                sorted([ALICE.name, BOB.name, CAROL.name]), dd.stdout)
        dc = self.dump("user", "connected")
        c.equal("user connected: carol only", [r["user"] for r in dc.rows],
                [CAROL.name], dc.stdout)
        dx = self.dump("user", f"user={BOB.name}")
        c.equal("user user=<exact>: bob with one login",
                [(r["user"], r["num_logins"]) for r in dx.rows],
                [(BOB.name, "1")], dx.stdout)
        ds = self.dump("user", f"since={self.since}")
        c.equal("user since=: only the user active after since",
                [r["user"] for r in ds.rows], [CAROL.name], ds.stdout)
        di = self.dump("user", "ip=127.0.0.0/8")
        c.equal("user ip=127.0.0.0/8: every user", len(di.rows), len(USERS),
                di.stdout)

    def check_domain_level(self) -> None:
        c = self.checks
        d = self.dump("domain")
        c.equal("domain: rc", d.returncode, 0, d.stderr)
        self.check_header("domain", d)
        rows = self.by(d, "domain")
        c.equal("domain: rows (dave has the empty domain)", sorted(rows),
                ["", "example.com", "example.org"], d.stdout)
        users = self.users.rows
        for domain, row in rows.items():
            members = [u for u in users
                       if (u["user"].split("@", 1)[1]
                           if "@" in u["user"] else "") == domain]
            label = f"domain '{domain}'"
            fields = ("num_logins", "num_cmds") + AUTH_FIELDS + MAIL_FIELDS
            c.equal(f"{label}: counters and stats are the sums of its users",
                    {f: field_value(row, f) for f in fields},
                    {f: sum(field_value(u, f) for u in members)
                     for f in fields})
            connected = 1 if domain == "example.com" else 0
            c.equal(f"{label}: num_connected_sessions",
                    int(row["num_connected_sessions"]), connected)
        c.equal("domain example.com: num_logins (alice imap+pop3, carol)",
                int(rows.get("example.com", {}).get("num_logins", -1)), 3)
        c.equal("domain example.com: auth successes / failures",
                (rows.get("example.com", {}).get("auth_successes"),
                 rows.get("example.com", {}).get("auth_failures")),
                ("3", "1"))

        dw = self.dump("domain", "domain=example.*")
        c.equal("domain domain=example.*: example.com and example.org",
                sorted(r["domain"] for r in dw.rows),
                ["example.com", "example.org"], dw.stdout)
        dc = self.dump("domain", "connected")
        c.equal("domain connected: example.com with one session",
                [(r["domain"], r["num_connected_sessions"]) for r in dc.rows],
                [("example.com", "1")], dc.stdout)
        du = self.dump("domain", "user=ali*")
        c.equal("domain user=ali*: alice's domain",
                [r["domain"] for r in du.rows], ["example.com"], du.stdout)
        ds = self.dump("domain", f"since={self.since}")
        c.equal("domain since=: only the active domain",
                [r["domain"] for r in ds.rows], ["example.com"], ds.stdout)

    def check_ip_level(self) -> None:
        c = self.checks
        t = self.traffic
        d = self.dump("ip")
        c.equal("ip: rc", d.returncode, 0, d.stderr)
        self.check_header("ip", d)
        c.equal("ip: one row, 127.0.0.1", [r["ip"] for r in d.rows],
                ["127.0.0.1"], d.stdout)
        if d.rows:
            row = d.rows[0]
            c.equal("ip 127.0.0.1: num_logins", int(row["num_logins"]),
                    sum(t.logins.values()))
            c.equal("ip 127.0.0.1: num_cmds", int(row["num_cmds"]),
                    t.total_reported())
            c.equal("ip 127.0.0.1: num_connected_sessions",
                    int(row["num_connected_sessions"]), 1)
            c.check("ip 127.0.0.1: no auth stats on ip rows",
                    all(row[f] == "0" for f in AUTH_FIELDS),
                    str({f: row[f] for f in AUTH_FIELDS}))
        for filter_arg in ("ip=127.0.0.0/8", "ip=127.0.0.1", "connected",
                           f"since={self.since}"):
            df = self.dump("ip", filter_arg)
            c.equal(f"ip {filter_arg}: 127.0.0.1", [r["ip"] for r in df.rows],
                    ["127.0.0.1"], df.stdout)
        dn = self.dump("ip", "ip=10.0.0.0/8")
        c.check("ip ip=10.0.0.0/8: header, no rows",
                dn.returncode == 0 and bool(dn.header) and dn.rows == [],
                raw=dn.stdout + dn.stderr)

    def check_global_level(self) -> None:
        c = self.checks
        d = self.dump("global")
        c.equal("global: rc", d.returncode, 0, d.stderr)
        self.check_header("global", d)
        if len(d.rows) != 1:
            c.check("global: one row", False, raw=d.stdout)
            return
        row = d.rows[0]
        for key, value in self.expected_global().items():
            c.equal(f"global: {key}", int(row[key]), value, d.stdout)
        for f in ("auth_master_successes", "auth_db_tempfails",
                  "auth_cache_hits", "auth_cache_misses"):
            c.equal(f"global: {f}", row[f], "0")
        c.check("global: user_cpu, sys_cpu or clock_time > 0",
                any(usec(row[f]) > 0 for f in TIMEVAL_FIELDS),
                str({f: row[f] for f in TIMEVAL_FIELDS}))
        c.check("global: stats timevals are <sec>.<usec unpadded>",
                all(STATS_TIMEVAL_RE.match(row[f]) for f in TIMEVAL_FIELDS),
                str({f: row[f] for f in TIMEVAL_FIELDS}))
        c.check("global: last_update is <sec>.<6 digits>",
                bool(LAST_UPDATE_RE.match(row["last_update"])),
                row["last_update"])
        sums = {f: sum(field_value(s, f) for s in self.sessions.rows)
                for f in MAIL_FIELDS}
        c.equal("global: mail stats are the sum of all sessions",
                {f: field_value(row, f) for f in MAIL_FIELDS}, sums)
        c.check("global: reset_timestamp is a recent unix time",
                abs(int(row["reset_timestamp"]) - time.time()) < 600,
                row["reset_timestamp"])
        dg = self.dump("global", "user=nobody*")
        c.equal("global user=nobody*: filters are ignored",
                dg.rows[0]["num_logins"] if dg.rows else None,
                row["num_logins"], dg.stdout)

    def check_errors_and_empty(self) -> None:
        c = self.checks
        d = self.dump("nosuchlevel")
        c.equal("dump of an unknown level: doveadm exits 75", d.returncode,
                DOVEADM_TEMPFAIL, d.stdout + d.stderr)
        d = self.dump("user", "user=nobody*")
        c.check("user user=nobody*: header, no rows",
                d.returncode == 0 and bool(d.header) and d.rows == [],
                raw=d.stdout + d.stderr)
        # An exact user=, domain= or ip= that finds nothing gets a bare empty
        # line, not even a header, which doveadm reports as below.
        for level, filter_arg in (("domain", "domain=nomatch.invalid"),
                                  ("user", "user=nobody@example.com"),
                                  ("session", "ip=10.0.0.1")):
            d = self.dump(level, filter_arg)
            c.check(f"{level} {filter_arg}: no statistics available",
                    d.returncode == 0 and d.header == [] and
                    "no statistics available" in d.stderr,
                    raw=d.stdout + d.stderr)
        # A socket that answers must still answer after the errors above.
        d = self.dump("global")
        c.equal("global still served after bad requests", len(d.rows), 1,
                d.stdout + d.stderr)

    def check_reset(self) -> None:
        c = self.checks
        r = self.dovecot.oldstats_reset(self.stats_socket)
        c.check("oldstats reset: rc 0, 'Stats reset'",
                r.returncode == 0 and "Stats reset" in r.stdout + r.stderr,
                raw=r.stdout + r.stderr)
        d = self.dump("global")
        row = d.rows[0] if d.rows else {}
        c.equal("after reset: global num_logins", row.get("num_logins"), "0",
                d.stdout)
        c.equal("after reset: global num_cmds", row.get("num_cmds"), "0")
        c.equal("after reset: global last_update", row.get("last_update"),
                "0.000000")
        c.equal("after reset: global stats zero",
                [row.get(f) for f in ("user_cpu", "auth_successes")],
                ["0.0", "0"])
        c.equal("after reset: num_connected_sessions is kept",
                row.get("num_connected_sessions"), "1")
        c.check("after reset: reset_timestamp is now",
                abs(int(row.get("reset_timestamp", "0")) - time.time()) < 5,
                row.get("reset_timestamp", ""))
        du = self.dump("user", f"user={ALICE.name}")
        c.equal("after reset: user rows keep their counters",
                [r["num_logins"] for r in du.rows],
                [str(self.traffic.logins[ALICE.name])], du.stdout)

    def check_reload(self) -> None:
        """After `doveadm reload`, auth stats still reach the server."""
        c = self.checks
        before = os.path.lexists(self.dovecot.auth_fifo_path) and os.lstat(
            self.dovecot.auth_fifo_path)
        r = self.dovecot.reload()
        c.equal("doveadm reload: rc", r.returncode, 0, r.stderr)
        if self.link_mode == "replace":
            # The master unlinks and re-creates every FIFO listener on
            # reload, replacing the symlink; put it back once that happened.
            def is_fifo() -> bool:
                try:
                    return stat.S_ISFIFO(
                        os.lstat(self.dovecot.auth_fifo_path).st_mode)
                except FileNotFoundError:  # between unlink and mkfifo
                    return False
            recreated = lm.wait_until(is_fifo, 10.0, 0.05)
            c.check("reload replaces the symlink with Dovecot's FIFO",
                    recreated)
            self.link_auth_fifo()
        elif self.link_mode == "permanent":
            time.sleep(0.5)
            st = os.lstat(self.dovecot.auth_fifo_path)
            c.check("reload leaves the permanent symlink alone",
                    stat.S_ISLNK(st.st_mode) and before and
                    st.st_ino == before.st_ino)
        bob = ld.imap_login(self.dovecot.imap_port, BOB)
        bob.logout()

        def counted() -> bool:
            d = self.dump("global")
            return bool(d.rows) and (d.rows[0]["num_logins"],
                                     d.rows[0]["auth_successes"]) == ("1", "1")
        ok = lm.wait_until(counted, 15.0, 0.25)
        d = self.dump("global")
        c.check("after reload: a login counts num_logins and auth_successes",
                ok, raw=None if ok else d.stdout)

    def check_http(self) -> None:
        c = self.checks
        status, _, _ = self.mailscope.http("/healthz")
        c.equal("GET /healthz: 200", status, 200)
        status, _, body = self.mailscope.http("/metrics")
        c.equal("GET /metrics: 200", status, 200, body)
        m = re.search(r'^mailscope_events_total\{source="dovecot_old_stats",'
                      r'event="CONNECT"\} (\S+)$', body, re.MULTILINE)
        c.check("/metrics: CONNECT events counted",
                m is not None and float(m.group(1)) > 0,
                "line missing" if m is None else f"value {m.group(1)}",
                None if m else body[:4000])

    def check_dovecot_log(self) -> None:
        """The writers (imap, pop3, auth) logged no trouble with the FIFOs.

        Only their lines count: Dovecot's own old-stats logs the bad requests
        this test sends on purpose, and the master may log reload chatter.
        """
        log = self.dovecot.log_text()
        writer = re.compile(r"^\S+ \S+ \S+ (imap|pop3|auth)[(:].*"
                            r"(Error|Warning|Panic|Fatal): .*stats")
        bad = [line for line in log.split("\n") if writer.search(line)]
        self.checks.equal("dovecot log: no stats errors from the writers",
                          bad, [])

    def finish(self) -> None:
        """Logs carol out, stops Dovecot, then mailscope."""
        c = self.checks
        if self.held is not None:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                self.held.logout()
            self.held = None
        c.check("dovecot master exits on SIGTERM", self.dovecot.stop())
        if self.mailscope is not None:
            rc = self.mailscope.stop()
            c.equal("mailscope exits 0 on SIGTERM", rc, 0)
            c.check("mailscope removed its old-stats socket",
                    not os.path.lexists(self.mailscope.socket_path))
            # The FIFOs stay, so writers that keep their descriptor reach
            # the next mailscope; see "Restarting mailscope" in
            # docs/integrations/dovecot.md.
            for name in ("old-stats-mail", "old-stats-user"):
                path = os.path.join(self.mailscope.run_dir, name)
                c.check(f"mailscope left FIFO {name} in place at exit",
                        os.path.lexists(path)
                        and stat.S_ISFIFO(os.lstat(path).st_mode))

    def cleanup(self) -> None:
        """Stops whatever still runs; safe to call twice."""
        if self.held is not None:
            with contextlib.suppress(Exception):
                self.held.shutdown()
        with contextlib.suppress(Exception):
            self.dovecot.stop()
        if self.mailscope is not None:
            with contextlib.suppress(Exception):
                self.mailscope.stop()

    def print_logs(self) -> None:
        for title, text in (("dovecot log", self.dovecot.log_text()),
                            ("mailscope log", self.mailscope.log_text()
                             if self.mailscope else "")):
            if text:
                tail = text.rstrip("\n").split("\n")[-40:]
                print(f"# --- {title} (last {len(tail)} lines)")
                for line in tail:
                    print("# " + line)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mailscope", help="path to the mailscope binary")
    p.add_argument("--against-dovecot", action="store_true",
                   help="check Dovecot's own old-stats instead of mailscope")
    p.add_argument("--auth-fifo", choices=("replace", "permanent"),
                   default="replace",
                   help="how auth's old-stats-user reaches mailscope")
    p.add_argument("--mail-group", action="store_true",
                   help="the system-users setup of docs/integrations/dovecot.md: the mail "
                   "processes reach old-stats-mail through Dovecot's mail_access_groups, "
                   "not through their own group")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (config, logs)")
    args = p.parse_args(argv)
    if not args.against_dovecot and not args.mailscope:
        p.error("--mailscope PATH or --against-dovecot is required")
    if args.mailscope and not args.against_dovecot:
        args.mailscope = os.path.abspath(args.mailscope)
        if not os.access(args.mailscope, os.X_OK):
            p.error(f"{args.mailscope} is not executable")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not ld.dovecot_installed():
        return lm.skip("dovecot not installed")
    if os.geteuid() != 0:
        return lm.skip("needs root (Dovecot and a mail uid)")

    root = tempfile.mkdtemp(prefix="mailscope-dovecot-")
    # mkdtemp makes 0700; the mail uid, dovecot and dovenull must traverse.
    os.chmod(root, 0o755)
    target = "Dovecot's own old-stats" if args.against_dovecot else (
        f"mailscope ({args.mailscope}, auth FIFO: {args.auth_fifo}"
        f"{', mail_access_groups' if args.mail_group else ''})")
    print(f"# testing {target} in {root}", flush=True)
    test = Test(args, root)
    return lm.run_test(test, test.checks, "dovecot old stats", root,
                       args.keep)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
