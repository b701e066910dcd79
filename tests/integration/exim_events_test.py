#!/usr/bin/env python3
"""Exim's event_action against mailscope's exim-events socket, with real Exims.

Starts `mailscope serve` with its secure defaults plus exactly the block
docs/integrations/exim.md gives (the socket's group Debian-exim), a private
Exim 4.96 (Debian's exim4-daemon-light) that includes the shipped fragment
docs/integrations/exim-event-action.conf as it is, and a second Exim as the
remote peer (250 to most recipients, 550 to reject*, 451 to tempfail*). Mail
is sent with swaks:
  * a local delivery (appendfile), and a `:fail:` recipient with its bounce,
  * a remote host that refuses connections (nothing listens on 127.0.0.2),
  * the peer answering 250, 550 and 451 to RCPT,
then every event mailscope recorded (`mailscope tail --format json`) is
checked against the sequence Exim 4.96 raises for each message, with the
decoded fields (ECONNREFUSED, smtp_code 451), and the counters of /metrics
against the events: each counted exactly once. Exim's panic log stays empty.
The shipped ACL fragment (docs/integrations/exim-acl.conf) reports each
SMTP session's steps: acl:connect, acl:helo, acl:mail, acl:rcpt and acl:data
with the received message's id and size. Then [[rules]] are turned on with a
SIGHUP, and Exim's own log and the peer's show that a tcp:connect verdict
kept Exim from connecting (defer -58), an smtp:connect verdict closed the
session before any mail went, and ACL verdicts refused a recipient (550) and
deferred a sender (451) as swaks saw them.

Usage: exim_events_test.py --mailscope PATH [--keep]. Exits 0 on success, 1
on failure, 77 when not root or Exim/swaks are missing (1 under
MAILSCOPE_REQUIRE_INTEGRATION=1).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_exim  # noqa: E402
import lib_mailscope as lm  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXIM_DOC = os.path.join(REPO, "docs", "integrations", "exim.md")
FRAGMENT = os.path.join(REPO, "docs", "integrations", "exim-event-action.conf")
ACL_FRAGMENT = os.path.join(REPO, "docs", "integrations", "exim-acl.conf")
SETTINGS_MARKER = "<!-- exim-listener-settings:"
METRICS_MARKER = "<!-- exim-metrics-settings:"

# Settings both Exims share: Debian's users, no DNS or ident lookups, loopback only.
COMMON = """\
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
keep_environment =
host_lookup =
rfc1413_hosts =
check_spool_space = 0
"""

# The Exim under test: the fragment included as shipped, event_action in the
# main section and on both transports.
MAIN_CONF = """\
primary_hostname = mx.test.local
qualify_domain = test.local
domainlist local_domains = test.local
hostlist relay_from_hosts = 127.0.0.1
spool_directory = @ROOT@/spool
log_file_path = @ROOT@/log/%slog
pid_file_path = @ROOT@/exim.pid
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
{common}tls_advertise_hosts =
acl_smtp_connect = mailscope_connect
acl_smtp_helo = mailscope_helo
acl_smtp_mail = mailscope_mail
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
log_selector = +smtp_connection +outgoing_port +pid

MAILSCOPE_SOCKET = {socket}
.include {fragment}
event_action = MAILSCOPE_EVENT_ACTION_MAIN

begin acl
.include {acl_fragment}

acl_check_rcpt:
  accept  hosts = :
  require acl = mailscope_check rcpt
  accept  domains = +local_domains
  accept  hosts = +relay_from_hosts
  deny    message = relay not permitted

acl_check_data:
  require acl = mailscope_check data
  accept

begin routers
smarthost:
  driver = manualroute
  domains = ! +local_domains
  transport = remote_smtp
  self = send
  route_list = dead.example "127.0.0.2::{dead_port}" ; ok.example "127.0.0.1::{peer_port}" ; \
               blocked.example "127.0.0.1::{peer_port}" ; closed.example "127.0.0.4::{peer_port}" ; \
               certcheck.example "127.0.0.5::{peer_port}"
  no_more
nouser:
  driver = redirect
  domains = +local_domains
  local_parts = nouser
  data = :fail: no such user here
  allow_fail
localuser:
  driver = accept
  domains = +local_domains
  local_parts = lsearch;@ROOT@/users
  transport = local_maildir

begin transports
remote_smtp:
  driver = smtp
  allow_localhost
  hosts_try_fastopen =
  event_action = MAILSCOPE_EVENT_ACTION_TRANSPORT
local_maildir:
  driver = appendfile
  directory = @ROOT@/mail/$local_part_data
  maildir_format
  create_directory
  user = Debian-exim
  group = Debian-exim
  mode = 0600
  event_action = MAILSCOPE_EVENT_ACTION_TRANSPORT

begin retry
*   *   F,2h,15m
"""

# The remote peer: no event_action; offers STARTTLS with a self-signed certificate
# (CN=peer.test); answers by local part.
PEER_CONF = """\
primary_hostname = peer.test
spool_directory = @ROOT@/spool
log_file_path = @ROOT@/log/%slog
pid_file_path = @ROOT@/exim.pid
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1 : 127.0.0.4 : 127.0.0.5
{common}tls_advertise_hosts = *
tls_certificate = @ROOT@/cert.pem
tls_privatekey = @ROOT@/key.pem
acl_smtp_rcpt = peer_rcpt
log_selector = +smtp_connection

begin acl
peer_rcpt:
  deny    local_parts = ^reject
          message = 550 5.1.1 <$local_part@$domain>: recipient rejected by peer
  defer   local_parts = ^tempfail
          message = 451 4.3.0 <$local_part@$domain>: try again later
  accept

begin routers
blackhole:
  driver = redirect
  data = :blackhole:
"""

# What Exim 4.96 raises, in order, for each message of a scenario (measured;
# ../shared/reference/exim-captures has the same sequences with STARTTLS).
# The peer offers STARTTLS: Exim says EHLO again after it, and checks the certificate.
REMOTE_CONNECTION = ["tcp:connect", "smtp:connect", "smtp:ehlo", "tls:cert", "smtp:ehlo"]
# Each message begins with mailscope's acl:data (its DATA ACL calls mailscope_check data),
# the first event that knows the message's id.
SCENARIOS = [
    # (name, recipient, sequence for the message, a bounce to the sender expected)
    ("local delivery", "bob@test.local", ["acl:data", "msg:delivery", "msg:complete"], False),
    (":fail: recipient", "nouser@test.local", ["acl:data", "msg:fail:internal", "msg:complete"],
     True),
    ("remote host refuses the connection", "user@dead.example",
     ["acl:data", "tcp:connect", "msg:host:defer", "msg:defer"], False),
    ("remote 250", "user@ok.example",
     ["acl:data"] + REMOTE_CONNECTION + ["tcp:close", "msg:delivery", "msg:complete"], False),
    ("remote 550 to RCPT", "reject@ok.example",
     ["acl:data"] + REMOTE_CONNECTION + ["tcp:close", "msg:fail:delivery", "msg:complete"], True),
    ("remote 451 to RCPT", "tempfail@ok.example",
     ["acl:data"] + REMOTE_CONNECTION + ["msg:rcpt:host:defer", "msg:rcpt:defer", "tcp:close"],
     False),
]
# The steps of each SMTP session before the message has an id.
SESSION = ["acl:connect", "acl:helo", "acl:mail", "acl:rcpt"]
BOUNCE = ["msg:delivery", "msg:complete"]

# Turned on by a SIGHUP after the scenarios above: a verdict for a before-event.
RULES = """
[[rules]]
name = "no-connect"
when = 'event="tcp:connect" AND domain=blocked.example'
verdict = "not connecting: mailscope rule"

[[rules]]
name = "close-session"
when = 'event="smtp:connect" AND domain=closed.example'
verdict = "closed by mailscope"

[[rules]]
name = "untrusted-cert"
when = 'event="tls:cert" AND domain=certcheck.example AND cert_subject="*CN=peer.test*"'
verdict = "untrusted by mailscope"
"""
VERDICT_SCENARIOS = [
    # (name, recipient, sequence, rule)
    ("tcp:connect verdict", "user@blocked.example",
     ["acl:data", "tcp:connect", "mailscope:verdict", "msg:host:defer", "msg:defer"],
     "no-connect"),
    ("smtp:connect verdict", "user@closed.example",
     ["acl:data", "tcp:connect", "smtp:connect", "mailscope:verdict", "tcp:close",
      "msg:host:defer", "msg:defer"], "close-session"),
    # The certificate refused, TLS fails; the host is not in hosts_require_tls, so Exim
    # connects again and delivers in clear.
    ("tls:cert verdict", "user@certcheck.example",
     ["acl:data", "tcp:connect", "smtp:connect", "smtp:ehlo", "tls:cert", "mailscope:verdict",
      "tcp:close", "msg:host:defer", "tcp:connect", "smtp:connect", "smtp:ehlo", "tcp:close",
      "msg:delivery", "msg:complete"], "untrusted-cert"),
]
# Verdicts for mailscope's ACL steps, and what swaks and Exim's log show.
ACL_RULES = """
[[rules]]
name = "no-spammer"
when = 'event="acl:rcpt" AND local_part=spammer'
verdict = "deny spammer not welcome here"

[[rules]]
name = "later"
when = 'event="acl:mail" AND sender_address="later@test.local"'
verdict = "defer come back later"
"""
ACL_VERDICTS = [
    # (name, sender, recipient, swaks' line, Exim's log line)
    ("RCPT denied", "alice@test.local", "spammer@test.local", "<** 550 spammer not welcome here",
     "rejected RCPT <spammer@test.local>: spammer not welcome here"),
    ("MAIL deferred", "later@test.local", "bob@test.local", "<** 451 come back later",
     "temporarily rejected MAIL <later@test.local>: come back later"),
]


def mailscope_settings() -> str:
    block = lm.doc_block(EXIM_DOC, SETTINGS_MARKER, "toml")
    if '"Debian-exim"' not in block:
        raise ValueError(f"{EXIM_DOC}: the settings block no longer names Debian-exim")
    return block + "\n" + lm.doc_block(EXIM_DOC, METRICS_MARKER, "toml")


class EximEventsTest:
    def __init__(self, mailscope: str, root: str, c: lm.Checks) -> None:
        self.c = c
        self.root = root
        self.serve = lm.Mailscope(mailscope, os.path.join(root, "mailscope"),
                                  config=mailscope_settings())
        self.mailscope = mailscope
        self.port = lm.free_port()
        self.peer_port = lm.free_port()
        self.dead_port = lm.free_port()
        socket_path = os.path.join(self.serve.run_dir, "exim-events")
        self.exim = lib_exim.Exim(os.path.join(root, "exim"), "mx", MAIN_CONF.format(
            common=COMMON, port=self.port, socket=socket_path, fragment=FRAGMENT,
            acl_fragment=ACL_FRAGMENT,
            dead_port=self.dead_port,
            peer_port=self.peer_port))
        with open(os.path.join(self.exim.root, "users"), "w", encoding="ascii") as f:
            f.write("alice:\nbob:\n")
        self.peer = lib_exim.Exim(os.path.join(root, "peer"), "peer",
                                  PEER_CONF.format(common=COMMON, port=self.peer_port))
        self.cert_sha256 = lib_exim.self_signed_certificate(self.peer.root, "peer.test")
        self.tail_path = os.path.join(root, "tail.jsonl")
        self.tail: subprocess.Popen | None = None

    def run(self) -> None:
        c = self.c
        check = self.exim.check_config()
        c.check("Exim takes the configuration with the shipped fragment", check.returncode == 0,
                check.stderr + check.stdout)
        self.serve.start()
        st = os.stat(os.path.join(self.serve.run_dir, "exim-events"))
        c.equal("the socket is mode 0660", oct(st.st_mode & 0o777), "0o660")
        c.equal("the socket's group is Debian-exim",
                st.st_gid, lib_exim.grp.getgrnam("Debian-exim").gr_gid)
        with open(self.tail_path, "wb") as out:
            self.tail = subprocess.Popen(
                [self.mailscope, "tail", "--run-dir", self.serve.run_dir, "--format", "json",
                 "--filter", "source=exim"], stdout=out, stderr=subprocess.STDOUT)
        self.peer.start(self.peer_port)
        self.exim.start(self.port)

        ids = {}
        for name, recipient, sequence, bounce in SCENARIOS:
            qid = self.exim.swaks(self.port, "alice@test.local", recipient)
            c.check(f"{name}: Exim took the message", qid != "", qid)
            ids[name] = qid
            # Done once its last event has been recorded (or, for a bounce,
            # the bounce's msg:complete).
            def done(qid=qid, sequence=sequence, bounce=bounce) -> bool:
                events = self.events()
                mine = [e["event"] for e in events if e["fields"].get("message_exim_id") == qid]
                if mine[-1:] != sequence[-1:]:
                    return False
                return not bounce or any(self.bounce_of(qid, events))
            c.check(f"{name}: its events arrived", lm.wait_until(done, 20),
                    f"recorded: {self.summary()}")

        events = self.events()
        for name, recipient, sequence, bounce in SCENARIOS:
            qid = ids[name]
            mine = [e for e in events if e["fields"].get("message_exim_id") == qid]
            c.equal(f"{name}: the events Exim raised, in order", [e["event"] for e in mine],
                    sequence)
            for e in mine:
                c.equal(f"{name}: {e['event']} names the sender",
                        e["fields"].get("sender_address"), "alice@test.local")
            if bounce:
                bounces = list(self.bounce_of(qid, events))
                c.equal(f"{name}: the bounce to the sender", [e["event"] for e in bounces],
                        BOUNCE)
            self.check_fields(name, recipient, mine)
            data = mine[0]["fields"] if mine else {}
            c.check(f"{name}: acl:data has the received message's size and recipients",
                    data.get("message_size", 0) > 0 and data.get("recipients_count") == 1 and
                    data.get("sender_address") == "alice@test.local" and
                    data.get("sender_helo_name") == "client.test", repr(data))
        rcpts = [e["fields"] for e in events if e["event"] == "acl:rcpt"]
        c.equal("acl:rcpt names each recipient, in order",
                [f"{f.get('local_part')}@{f.get('domain')}" for f in rcpts],
                [recipient for _, recipient, _, _ in SCENARIOS])

        c.equal("Exim's panic log stays empty", self.exim.panic_log(), "")
        self.check_counts(events)
        self.verdicts()

    def verdicts(self) -> None:
        """Rules turned on by a reload: Exim does not connect, or closes the session."""
        c = self.c
        with open(self.serve.config_path, "a", encoding="utf-8") as f:
            f.write(RULES)
        self.serve.proc.send_signal(lib_exim.signal.SIGHUP)
        c.check("mailscope reloads with the rules",
                lm.wait_until(lambda: "configuration reloaded" in self.serve.log_text(), 10),
                self.serve.log_text())
        for name, recipient, sequence, rule in VERDICT_SCENARIOS:
            peer_before = self.peer.log_text()
            qid = self.exim.swaks(self.port, "alice@test.local", recipient)
            c.check(f"{name}: Exim took the message", qid != "", qid)

            def mine(qid=qid) -> list[dict]:
                return [e for e in self.events() if e["fields"].get("message_exim_id") == qid]

            lm.wait_until(lambda: [e["event"] for e in mine()][-1:] == sequence[-1:], 20)
            events = mine()
            c.equal(f"{name}: the events, the verdict among them", [e["event"] for e in events],
                    sequence)
            verdict = next((e["fields"] for e in events if e["event"] == "mailscope:verdict"), {})
            c.equal(f"{name}: the verdict's event names its rule",
                    (verdict.get("rule"), verdict.get("for_event")),
                    (rule, sequence[sequence.index("mailscope:verdict") - 1]))
            peer_new = self.peer.log_text()[len(peer_before):]
            if name == "tcp:connect verdict":
                c.check(f"{name}: Exim's log says the event asked it not to connect",
                        lib_exim.wait_for_log(self.exim, re.escape(qid) + r" == " +
                                              re.escape(recipient) + r" .* defer \(-58\)") and
                        "Event requests alternate response" in self.exim.log_text(),
                        self.exim.log_text()[-2000:])
                c.equal(f"{name}: the peer saw no connection", peer_new.count("SMTP connection"),
                        0, peer_new)
                defer = next((e["fields"] for e in events if e["event"] == "msg:host:defer"), {})
                c.equal(f"{name}: the defer is ERRNO_EVENT",
                        (defer.get("event_defer_errno"), defer.get("defer_errno_name")),
                        (-58, "ERRNO_EVENT"))
            elif name == "tls:cert verdict":
                c.check(f"{name}: Exim's log says the certificate was refused, then delivered "
                        "in clear",
                        lib_exim.wait_for_log(self.exim, r"denied by event-action") and
                        lib_exim.wait_for_log(self.exim, r"delivering unencrypted") and
                        lib_exim.wait_for_log(self.exim, re.escape(qid) + r" => user@"),
                        self.exim.log_text()[-2000:])
                delivery = next((e["fields"] for e in events if e["event"] == "msg:delivery"), {})
                c.equal(f"{name}: the delivery went without TLS", delivery.get("tls_out_ver"),
                        None)
                defer = next((e["fields"] for e in events if e["event"] == "msg:host:defer"), {})
                c.equal(f"{name}: the failed TLS session is a host defer, ERRNO_TLSFAILURE",
                        (defer.get("event_defer_errno"), defer.get("defer_errno_name")),
                        (-37, "ERRNO_TLSFAILURE"))
            else:
                c.check(f"{name}: Exim's log says the session was closed by the event",
                        lib_exim.wait_for_log(
                            self.exim, re.escape(qid) +
                            r" .*deferred by smtp:connect event expansion: closed by mailscope"),
                        self.exim.log_text()[-2000:])
                c.check(f"{name}: the peer saw the connection end with QUIT and no message",
                        "closed by QUIT" in peer_new and " <= " not in peer_new, peer_new)
        self.acl_verdicts()
        body = self.serve.http("/metrics").body
        c.check("verdicts count as events",
                re.search(r'^mailscope_events_total\{source="exim",event="mailscope:verdict"\} 5$',
                          body, re.M) is not None,
                "\n".join(line for line in body.splitlines() if "exim" in line))
        c.equal("Exim's panic log stays empty with the rules", self.exim.panic_log(), "")

    def acl_verdicts(self) -> None:
        """Rules for mailscope's ACL steps: the SMTP client is refused in the ACL."""
        c = self.c
        with open(self.serve.config_path, "a", encoding="utf-8") as f:
            f.write(ACL_RULES)
        reloads = self.serve.log_text().count("configuration reloaded")
        self.serve.proc.send_signal(lib_exim.signal.SIGHUP)
        c.check("mailscope reloads with the ACL rules", lm.wait_until(
            lambda: self.serve.log_text().count("configuration reloaded") > reloads, 10))
        for name, sender, recipient, client_line, log_line in ACL_VERDICTS:
            transcript = self.exim.swaks_session(self.port, sender, recipient)
            c.check(f"{name}: the SMTP client is told", client_line in transcript, transcript)
            c.check(f"{name}: Exim's log says so",
                    lib_exim.wait_for_log(self.exim, re.escape(log_line), 10),
                    self.exim.log_text()[-1500:])
        verdicts = [e["fields"] for e in self.events() if e["event"] == "mailscope:verdict"]
        c.equal("the ACL verdicts' events name their rules and steps",
                [(v.get("rule"), v.get("for_event")) for v in verdicts[-2:]],
                [("no-spammer", "acl:rcpt"), ("later", "acl:mail")])

    def check_fields(self, name: str, recipient: str, mine: list[dict]) -> None:
        c = self.c
        by_name = {e["event"]: e["fields"] for e in mine}
        local_part, domain = recipient.split("@")
        if name == "local delivery":
            f = by_name.get("msg:delivery", {})
            c.equal("local delivery: recipient and router", (f.get("local_part"), f.get("domain"),
                    f.get("router_name"), f.get("transport_name"), f.get("hook")),
                    (local_part, domain, "localuser", "local_maildir", "transport"))
            c.equal("local delivery: msg:complete comes from the main section",
                    by_name.get("msg:complete", {}).get("hook"), "main")
        elif name == ":fail: recipient":
            f = by_name.get("msg:fail:internal", {})
            c.equal(":fail: recipient: the reason and router",
                    (f.get("event_data"), f.get("router_name"), f.get("local_part")),
                    ("no such user here", "nouser", "nouser"))
        elif name == "remote host refuses the connection":
            for event in ("msg:host:defer", "msg:defer"):
                f = by_name.get(event, {})
                c.equal(f"refused: {event} decodes the errno",
                        (f.get("event_defer_errno"), f.get("defer_errno_name"),
                         f.get("host_address"), f.get("host_port")),
                        (111, "ECONNREFUSED", "127.0.0.2", self.dead_port))
        elif name == "remote 250":
            f = by_name.get("smtp:ehlo", {})
            c.check("remote 250: the EHLO response comes whole, its lines joined by LF",
                    f.get("event_data", "").startswith("250-peer.test Hello") and
                    "\n250 HELP" in f.get("event_data", ""), repr(f.get("event_data")))
            # Exim keeps the reply to BDAT with its lines joined by a
            # backslash and an n (as its log shows it): that text, byte for byte.
            f = by_name.get("msg:delivery", {})
            c.check("remote 250: msg:delivery carries the peer's confirmation as Exim has it",
                    re.fullmatch(r"250- \d+ byte chunk, total \d+\\n250 OK id=\S+",
                                 f.get("event_data", "")) is not None,
                    repr(f.get("event_data")))
            c.equal("remote 250: host and port", (f.get("host_address"), f.get("host_port")),
                    ("127.0.0.1", self.peer_port))
            c.check("remote 250: delivered over TLS", f.get("tls_out_ver", "").startswith("TLS"),
                    repr(f.get("tls_out_ver")))
            cert = by_name.get("tls:cert", {})
            c.equal("remote 250: tls:cert has the chain depth, the certificate's subject and "
                    "fingerprint", (cert.get("event_data"), cert.get("cert_subject"),
                                    cert.get("cert_sha256", "").replace(":", "").upper()),
                    ("0", "CN=peer.test", self.cert_sha256))
        elif name == "remote 550 to RCPT":
            f = by_name.get("msg:fail:delivery", {})
            c.check("remote 550: the peer's reply is the event data",
                    "550 5.1.1 <reject@ok.example>: recipient rejected by peer"
                    in f.get("event_data", ""), repr(f.get("event_data")))
        elif name == "remote 451 to RCPT":
            for event in ("msg:rcpt:host:defer", "msg:rcpt:defer"):
                f = by_name.get(event, {})
                c.equal(f"451: {event} decodes $event_defer_errno",
                        (f.get("event_defer_errno"), f.get("smtp_code"), f.get("defer_lookup")),
                        ((51 << 8) | ord("A"), 451, "A"))

    def check_counts(self, events: list[dict]) -> None:
        c = self.c
        body = self.serve.http("/metrics").body
        counted = {m.group(1): int(float(m.group(2))) for m in re.finditer(
            r'^mailscope_events_total\{source="exim",event="([^"]+)"\} (\S+)$', body, re.M)}
        seen = collections.Counter(e["event"] for e in events)
        c.equal("each event counted once in mailscope_events_total", counted, dict(seen),
                body if counted != dict(seen) else None)
        expected = collections.Counter()
        for _, _, sequence, bounce in SCENARIOS:
            expected.update(SESSION + sequence + (BOUNCE if bounce else []))
        # Exim's start is waited for by connecting to its port: one more session.
        expected["acl:connect"] += 1
        c.equal("the events Exim raised are the events recorded", dict(seen), dict(expected))
        rejected = re.findall(r'^mailscope_ingest_rejected_total\{source="exim".*$', body, re.M)
        c.equal("no request was rejected", rejected, [])
        delivered = re.search(r'^mailscope_taxonomy_events_total\{kind="delivery",'
                              r'outcome="delivered",source="exim"\} (\S+)$', body, re.M)
        c.equal("deliveries in the taxonomy", delivered and int(float(delivered.group(1))),
                expected["msg:delivery"])
        # The shipped metrics, by their groups.
        def sample(line: str) -> float | None:
            m = re.search("^" + re.escape(line) + r" (\S+)$", body, re.M)
            return float(m.group(1)) if m else None
        c.equal("shipped metric: deliveries by domain, transport and router", sample(
            'mailscope_exim_deliveries_total{domain="test.local",transport_name="local_maildir",'
            'router_name="localuser"}'), 3.0, body if sample("mailscope_exim_deliveries_total")
            is None else None)
        c.equal("shipped metric: all deliveries", sample("mailscope_exim_deliveries_total"),
                float(expected["msg:delivery"]))
        c.equal("shipped metric: a refused connection by errno name", sample(
            'mailscope_exim_host_deferrals_total{domain="dead.example",host_address="127.0.0.2",'
            'defer_errno_name="ECONNREFUSED"}'), 1.0)
        c.equal("shipped metric: a 451 to RCPT by its code", sample(
            'mailscope_exim_rcpt_deferrals_total{domain="ok.example",host_address="127.0.0.1",'
            'smtp_code="451"}'), 1.0)
        c.equal("shipped metric: messages received", sample("mailscope_exim_received_total"),
                float(len(SCENARIOS)))
        c.equal("shipped metric: queue times of every delivery in the histogram",
                sample("mailscope_exim_delivery_queue_time_count"),
                float(expected["msg:delivery"]))
        promtool = shutil.which("promtool")
        if promtool is None:
            c.skip_part("promtool checks /metrics with Exim's metrics", "promtool not installed")
        else:
            lint = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                                  capture_output=True)
            c.check("promtool takes /metrics with Exim's metrics", lint.returncode == 0,
                    lint.stdout + lint.stderr)

    def events(self) -> list[dict]:
        out = []
        with open(self.tail_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
        return out

    @staticmethod
    def bounce_of(qid: str, events: list[dict]):
        """The events of the bounce of message qid: sender <>, to alice."""
        bounce_ids = []
        for e in events:
            f = e["fields"]
            mid = f.get("message_exim_id")
            if (mid and mid != qid and "sender_address" not in f and f.get("local_part") == "alice"
                    and mid not in bounce_ids):
                bounce_ids.append(mid)
        # Bounces come in the order of the scenarios; the one after qid's last event is its own.
        ordered = [e.get("fields", {}).get("message_exim_id") for e in events]
        last = max((i for i, m in enumerate(ordered) if m == qid), default=-1)
        for mid in bounce_ids:
            if ordered.index(mid) > last:
                return (e for e in events if e["fields"].get("message_exim_id") == mid)
        return iter(())

    def summary(self) -> str:
        return ", ".join(f"{e['event']}[{e['fields'].get('message_exim_id', '')}]"
                         for e in self.events())

    def cleanup(self) -> None:
        for stop in (self.exim.stop, self.peer.stop):
            try:
                stop()
            except Exception as err:  # report, go on stopping the rest
                print(f"# stopping Exim: {err}")
        if self.tail is not None:
            self.tail.terminate()
            self.tail.wait(10)
        self.serve.stop()

    def print_logs(self) -> None:
        print("# ---- exim under test")
        print(self.exim.log_text()[-6000:])
        print("# ---- peer")
        print(self.peer.log_text()[-3000:])
        lm.print_log_tails([self.serve.log_path, self.tail_path])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailscope", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        return lm.skip("needs root (Exim's daemon, its trusted configuration list)")
    if not lib_exim.exim_installed():
        return lm.skip("exim4 (exim4-daemon-light) or swaks not installed")
    version = lib_exim.exim_version()
    c = lm.Checks()
    print(f"# Exim {version}", flush=True)
    root = tempfile.mkdtemp(prefix="mailscope-exim-")
    os.chmod(root, 0o755)  # Debian-exim reaches the socket through it
    test = EximEventsTest(args.mailscope, root, c)
    return lm.run_test(test, c, "exim_events", root, args.keep)


if __name__ == "__main__":
    sys.exit(main())
