"""Taxonomy: taxonomy.tsv (the normalized kinds) and taxonomy_map.tsv (every catalog event).

generate.py runs this module last and hands it the events.<system>.tsv texts the system
modules produced. Every event of every system gets exactly one row in taxonomy_map.tsv:
either a kind with its outcome and normalized fields, or `-` when the event is not one of
the things the taxonomy describes. The mapping is total by construction: an event no rule
names gets `-`.

The rules below are data. For each system an ordered list of (matcher, mapping):
  - a matcher is an event name (exact) or a compiled regular expression (full match);
    exact names always win over expressions, expressions are tried in list order;
  - a mapping is M(kind, outcome, normalized=source, ...) or NONE (no counterpart).
Every rule must match at least one event, so a renamed event fails the generation instead
of silently falling through to `-`.

Principles (see the kinds' descriptions in KINDS):
  - Map an event only when it is that thing, not when it is merely related to it: a step
    of a delivery attempt towards one host is not the delivery outcome; a client-side view
    of an authentication that the server side also reports is not a second authentication.
  - Count once: when a system reports the same occurrence twice (a per-host record and a
    per-recipient summary, a request start and its end), only one of them is mapped.
  - Fields: a normalized field is mapped only from a source field the event carries. For
    Dovecot, Exim and qmail the event files list the fields, and a rule naming a field the
    event does not have is an error (Dovecot's stats process adds `duration` to any event;
    EXIM_EXTRA names the Exim variables seen set beyond the list). Stalwart's file lists
    keys only where the reference documents them, so its rules state the keys from
    Stalwart's call sites (v0.16) plus the keys a span merges into its events; those are
    not cross-checked.

Outcome rules (`field:<name>=<value>><outcome>,...`): the first pair whose value matches
wins. `*` matches anything, a value ending in `*` matches by prefix (`5*` = any 5xx code),
and an empty value matches a field that is absent or empty.
"""

import pathlib
import re
import sys
from dataclasses import dataclass

SYSTEMS = ("dovecot", "stalwart", "exim", "qmail")

NORMALIZED_FIELDS = ("outcome", "remote_ip", "user", "domain", "sender", "recipient", "reason",
                     "smtp_code", "duration", "protocol")


@dataclass(frozen=True)
class Kind:
    kind: str
    outcomes: tuple[str, ...]
    fields: tuple[str, ...]
    description: str


# The kinds, their outcomes and the normalized fields an event of the kind may carry.
KINDS = (
    Kind("auth", ("success", "failure"),
         ("outcome", "remote_ip", "user", "reason", "protocol", "duration"),
         "A client proved or failed to prove its identity to the server (SASL, IMAP LOGIN, "
         "POP3 USER/PASS, SMTP AUTH, HTTP credentials). One event per attempt."),
    Kind("connection", ("open", "close"),
         ("outcome", "remote_ip", "duration"),
         "A client's network session with the server began or ended. Only sessions of "
         "clients with the server; connections the server opens itself are not counted."),
    Kind("message", ("received", "queued"),
         ("outcome", "remote_ip", "sender", "recipient"),
         "A message entered the server's custody. received: a client handed it over and the "
         "server accepted it. queued: it entered the delivery queue without a known client "
         "origin, being made by the server (bounce, DSN, report, auto-reply) or coming from a "
         "log that does not tell the origin."),
    Kind("delivery", ("delivered", "deferred", "failed"),
         ("outcome", "remote_ip", "sender", "recipient", "domain", "reason", "smtp_code",
          "duration"),
         "The result of handing a message on for one recipient (or, where the system only "
         "reports that, for one message): into a mailbox or to the next server. deferred: "
         "it will be tried again; failed: given up."),
    Kind("rejection", ("connection", "helo", "sender", "recipient", "message"),
         ("outcome", "remote_ip", "sender", "recipient", "reason", "protocol"),
         "The server refused something a client offered, temporarily or for good; the "
         "outcome says what: the connection itself or, in SMTP, the HELO/EHLO name, the "
         "envelope sender, a recipient, or the message (size, content, policy)."),
    Kind("tls_failure", ("inbound", "outbound"),
         ("outcome", "remote_ip", "reason"),
         "A TLS session could not be established or its peer could not be verified. inbound: "
         "a client connecting to the server; outbound: the server connecting to another."),
    Kind("verdict", ("spam", "virus"),
         ("outcome", "remote_ip", "sender", "recipient", "reason"),
         "A content scan classified a message as spam or as carrying a virus."),
    Kind("command", ("success", "failure"),
         ("outcome", "remote_ip", "user", "reason", "duration"),
         "A command of a mailbox access protocol (IMAP, POP3, ManageSieve) finished; failure "
         "when the server answered it with an error."),
)
KIND_BY_NAME = {k.kind: k for k in KINDS}


@dataclass(frozen=True)
class Mapping:
    kind: str
    outcome: str
    fields: tuple[tuple[str, str], ...]  # (normalized, source), in NORMALIZED_FIELDS order


def M(kind: str, outcome: str, **fields: str) -> Mapping:
    unknown = set(fields) - set(NORMALIZED_FIELDS)
    if unknown:
        raise ValueError(f"unknown normalized fields {sorted(unknown)}")
    ordered = tuple((f, fields[f]) for f in NORMALIZED_FIELDS if f in fields)
    return Mapping(kind, outcome, ordered)


NONE = None  # an event with no counterpart in the taxonomy


def rx(pattern: str) -> re.Pattern:
    return re.compile(pattern)


# --------------------------------------------------------------------------------------
# Dovecot (2.3 named events). `duration` is added to every event by the stats process
# (microseconds); every other source field is listed in events.dovecot.tsv.

DOVECOT_IMPLICIT = {"duration", "reason_code"}

DOVECOT = [
    # The auth server's verdict on one SASL request: `success` is "yes" only on success.
    ("auth_request_finished",
     M("auth", "field:success=yes>success,*>failure", remote_ip="remote_ip", user="user",
       reason="error", protocol="service", duration="duration")),
    # The login process's view of the same request (auth-client) and the per-passdb and
    # per-userdb lookups inside it would count one login several times.
    (rx(r"auth_client_.*"), NONE),
    (rx(r"auth_(passdb|userdb|policy|worker)_request_.*"), NONE),
    (rx(r"auth_master_client_login_.*"), NONE),
    # tagged_reply_state is OK, NO or BAD; not sent for commands before login (Stalwart does
    # not report those as commands either; the login is an auth event).
    ("imap_command_finished",
     M("command", "field:tagged_reply_state=OK>success,*>failure", remote_ip="remote_ip",
       user="user", reason="tagged_reply", duration="duration")),
    # `error` is set only when the command failed.
    ("managesieve_command_finished",
     M("command", "field:error=>success,*>failure", user="user", reason="error",
       duration="duration")),
    # LDA/LMTP storing a message for one recipient; `error` is set when it was not stored.
    # Dovecot does not tell a temporary failure from a permanent one here.
    ("mail_delivery_finished",
     M("delivery", "field:error=>delivered,*>failed", recipient="rcpt_to", reason="error",
       duration="duration")),
    # Connection API events come from every process using lib's connection code, mostly
    # internal sockets (auth, dict, stats, doveadm); they are not client sessions.
    (rx(r"(client|server)_connection_.*"), NONE),
    # A proxy's own connection to the backend, made after the client logged in.
    (rx(r"proxy_session_.*"), NONE),
    # SMTP inside Dovecot (submission, LMTP): a finished transaction or RCPT may have been
    # accepted or refused, and the kind cannot depend on a field; SMTP commands are not
    # commands of a mailbox access protocol; smtp-client is Dovecot sending.
    (rx(r"smtp_(server|client)_.*"), NONE),
    (rx(r"smtp_submit_.*"), NONE),
]

# --------------------------------------------------------------------------------------
# Stalwart (v0.16 names; v0.12-v0.15 spellings are aliases of the same rows). Keys are those
# of the call sites; sessions (smtp, imap, pop3, manage-sieve, http) and delivery attempts
# merge their start event's keys into every event of the span, which is where remoteIp
# (session) and from/to (delivery attempt: the pending recipients) come from.

STALWART_SESSION_PROTOCOLS = ("smtp", "imap", "pop3", "manage-sieve", "http")
_SESSIONS = "|".join(re.escape(p) for p in STALWART_SESSION_PROTOCOLS)
# 2xx never reaches these events; 5xx is permanent, anything else is retried.
SMTP_CODE_OUTCOME = "field:code=5*>failed,*>deferred"

STALWART = [
    # Authentication. Every attempt ends in exactly one event: auth.success, or the error
    # the login returned, logged as an event naming its cause: failed (bad credentials),
    # too-many-attempts (bad credentials once more than the session allows; it wraps the
    # failure instead of adding to it), mfa-required (second factor missing), expired
    # credential or bearer token, an internal error (Dovecot counts its internal failures
    # as unsuccessful requests too), a credential not allowed from this address. An AUTH
    # command refused before any check (mechanism not offered, no AUTH on this listener) is
    # a refused attempt as well, as qmail-smtpd's Reject::AUTH::Auth_Meth. auth.warning is
    # not a verdict; the bans follow failures already counted.
    ("auth.success", M("auth", "success", remote_ip="remoteIp", user="accountName")),
    (rx(r"auth\.(failed|too-many-attempts|error)"),
     M("auth", "failure", remote_ip="remoteIp", user="accountName", reason="reason")),
    (rx(r"auth\.(mfa-required|credential-expired)"),
     M("auth", "failure", remote_ip="remoteIp", user="accountName")),
    ("auth.token-expired", M("auth", "failure", remote_ip="remoteIp")),
    ("security.ip-unauthorized", M("auth", "failure", remote_ip="remoteIp", user="accountName")),
    (rx(r"smtp\.auth-(mechanism-not-supported|not-allowed)"),
     M("auth", "failure", remote_ip="remoteIp")),

    # Client sessions. The start event carries the address; the end event gets it merged in
    # from its span and carries the session's length.
    (rx(rf"({_SESSIONS})\.connection-start"), M("connection", "open", remote_ip="remoteIp")),
    (rx(rf"({_SESSIONS})\.connection-end"),
     M("connection", "close", remote_ip="remoteIp", duration="elapsed")),

    # Messages accepted from a client (the event fires while the DATA reply is pending) and
    # messages the server made itself.
    ("queue.message-queued",
     M("message", "received", remote_ip="remoteIp", sender="from", recipient="to")),
    ("queue.authenticated-message-queued",
     M("message", "received", remote_ip="remoteIp", sender="from", recipient="to")),
    (rx(r"queue\.(dsn|report|autogenerated)-queued"),
     M("message", "queued", sender="from", recipient="to")),
    # Rescheduled closes an attempt that left anything pending (a retry, or only a DSN that
    # is due later); the recipients' outcomes were reported by the events below, and mapping
    # it too would count a deferral twice.
    ("queue.rescheduled", NONE),

    # Delivery outcomes per recipient (remote) and per stored message (local delivery, which
    # emits no delivery.delivered). delivery.failed fires when a recipient's temporary
    # failures ran past the message's expiry: it is the giving up. delivery.null-mx fails
    # every recipient of the domain with no other event. message-rejected is the remote's
    # answer to DATA for all recipients of the attempt.
    ("delivery.delivered",
     M("delivery", "delivered", sender="from", recipient="to", reason="details",
       smtp_code="code", duration="elapsed")),
    ("message-ingest.ham", M("delivery", "delivered", sender="from", duration="elapsed")),
    ("delivery.rcpt-to-rejected",
     M("delivery", SMTP_CODE_OUTCOME, sender="from", recipient="to", reason="details",
       smtp_code="code", duration="elapsed")),
    ("delivery.message-rejected",
     M("delivery", SMTP_CODE_OUTCOME, sender="from", recipient="to", reason="details",
       smtp_code="code", duration="elapsed")),
    ("delivery.failed", M("delivery", "failed", sender="from", recipient="to", reason="reason")),
    ("delivery.null-mx", M("delivery", "failed", sender="from", domain="domain")),
    # Per-host steps of an attempt (connect, greeting, EHLO, MAIL FROM, a RCPT that could not
    # be sent): the recipients' outcome comes later or from another host. DSNs are
    # consequences of outcomes; completed means the message left the queue.

    # Spam verdict at local delivery: the message was filed as junk. Ham is the ordinary
    # delivery above.
    ("message-ingest.spam", M("verdict", "spam", sender="from")),

    # Refusals: a connection from a blocked address or over the per-address limit (any
    # listener), and SMTP replies 4xx/5xx at the stage named.
    ("security.ip-blocked", M("rejection", "connection", remote_ip="remoteIp")),
    ("limit.concurrent-connection", M("rejection", "connection", remote_ip="remoteIp")),
    ("smtp.invalid-ehlo", M("rejection", "helo", remote_ip="remoteIp")),
    ("smtp.mail-from-unauthenticated", M("rejection", "sender", remote_ip="remoteIp")),
    (rx(r"smtp\.mail-from-(unauthorized|not-allowed)"),
     M("rejection", "sender", remote_ip="remoteIp", sender="from")),
    ("smtp.invalid-sender-address", M("rejection", "sender", remote_ip="remoteIp")),
    (rx(r"smtp\.(mailbox-does-not-exist|relay-not-allowed|rcpt-to-greylisted)"),
     M("rejection", "recipient", remote_ip="remoteIp", recipient="to")),
    ("smtp.too-many-recipients", M("rejection", "recipient", remote_ip="remoteIp")),
    ("smtp.invalid-recipient-address", M("rejection", "recipient", remote_ip="remoteIp")),
    (rx(r"smtp\.(message-too-large|message-parse-failed|loop-detected|too-many-messages)"),
     M("rejection", "message", remote_ip="remoteIp")),
    # Rate and concurrency limits apply at several stages (connect, MAIL, RCPT) and the event
    # does not say which; milters, MTA hooks and Sieve scripts likewise decide at any stage.
    ("smtp.rate-limit-exceeded", NONE),
    ("smtp.concurrency-limit-exceeded", NONE),
    (rx(r"(milter|mta-hook)\..*"), NONE),

    # TLS: the listener's handshake (inbound) and the delivery side (outbound), including a
    # DANE check of the remote certificate, which TLS-RPT reports as a TLS failure too.
    ("tls.handshake-error", M("tls_failure", "inbound", remote_ip="remoteIp")),
    (rx(r"delivery\.(start-tls-error|implicit-tls-error)"), M("tls_failure", "outbound")),
    ("dane.authentication-failure", M("tls_failure", "outbound")),

    # Mailbox access commands: each command event fires when the command completed (it
    # carries its running time); a command that failed reports <protocol>.error instead.
    # IDLE is counted when it ends, as Dovecot reports it.
    (rx(r"(imap|pop3|manage-sieve)\.raw-(input|output)"), NONE),
    ("imap.idle-start", NONE),
    (rx(r"(imap|pop3|manage-sieve)\.error"), M("command", "failure", remote_ip="remoteIp")),
    (rx(r"(imap|pop3|manage-sieve)\.[a-z0-9-]+"),
     M("command", "success", remote_ip="remoteIp", duration="elapsed")),
]

# --------------------------------------------------------------------------------------
# Exim (event_action events). $event_data is set for every event. The recipient is
# $local_part@$domain: two variables, which a field mapping cannot join, so only the domain
# is mapped.

EXIM_IMPLICIT = {"event_data"}
# Variables the event file does not list but the captured 4.96 requests show set
# (reference/exim-captures, scenario S08): msg:rcpt:defer has the recipient and host of
# msg:rcpt:host:defer, and every msg:* delivery event has the message's sender.
EXIM_EXTRA = {
    # Set for the whole of an inbound SMTP session (empty when Exim is the client).
    "auth:fail": {"sender_host_address"},
    "msg:rcpt:defer": {"domain", "local_part", "host_address", "sender_address"},
    "msg:defer": {"sender_address"},
    "msg:fail:internal": {"sender_address"},
}

EXIM = [
    # Server side: a failed authenticator run; client side: a 5xx answer to Exim's own AUTH.
    # The event does not tell them apart.
    ("auth:fail",
     M("auth", "failure", remote_ip="sender_host_address", user="authenticated_fail_id",
       reason="event_data")),
    ("tls:fail:connect",
     M("tls_failure", "inbound", remote_ip="sender_host_address", reason="event_data")),
    ("dane:fail", M("tls_failure", "outbound", remote_ip="host_address", reason="event_data")),
    ("msg:delivery",
     M("delivery", "delivered", remote_ip="host_address", sender="sender_address",
       domain="domain", reason="event_data")),
    # The last host deferred the whole message (host errors), or a recipient's RCPT.
    ("msg:defer",
     M("delivery", "deferred", remote_ip="host_address", sender="sender_address",
       domain="domain", reason="event_data")),
    ("msg:rcpt:defer",
     M("delivery", "deferred", remote_ip="host_address", sender="sender_address",
       domain="domain", reason="event_data")),
    # Per-host records of the same deferrals; the two events above are their summary.
    (rx(r"msg:(host|rcpt:host):defer"), NONE),
    ("msg:fail:delivery",
     M("delivery", "failed", remote_ip="host_address", sender="sender_address",
       domain="domain", reason="event_data")),
    # Failed without a transport: router refusal, :fail:, filter fail, removal by an admin.
    ("msg:fail:internal",
     M("delivery", "failed", sender="sender_address", domain="domain", reason="event_data")),
    # Outbound connections (tcp:*, smtp:connect, smtp:ehlo) are not client sessions; inbound
    # protocol errors are not refusals of something offered.
    # mailscope's reception steps (the named ACLs of docs/integrations/exim-acl.conf): a client
    # session began; a message was handed over and the DATA ACL reached mailscope's statement.
    ("acl:connect", M("connection", "open", remote_ip="sender_host_address")),
    ("acl:data",
     M("message", "received", remote_ip="sender_host_address", sender="sender_address")),
    # HELO, MAIL and RCPT reaching the statement are steps on the way, not outcomes.
    (rx(r"acl:(helo|mail|rcpt)"), NONE),
]

# --------------------------------------------------------------------------------------
# s/qmail (qmail-smtpd verdicts, tcpserver, rblsmtpd, qmail-send, qmail-popup).

QMAIL_SMTP = dict(remote_ip="remote_ip", protocol="protocol")

QMAIL = [
    # SMTP AUTH attempts: the method's verdict (`type` stands for login/plain/cram-md5), a
    # method refused by policy (Auth_Meth: LOGIN or PLAIN where only CRAM-MD5 is allowed),
    # and an attempt the server could not check (setup).
    ("Accept::AUTH::type", M("auth", "success", user="user", **QMAIL_SMTP)),
    ("Reject::AUTH::type", M("auth", "failure", user="user", **QMAIL_SMTP)),
    ("Reject::Auth::Method", M("auth", "failure", user="user", **QMAIL_SMTP)),
    ("Reject::AUTH::setup", M("auth", "failure", **QMAIL_SMTP)),
    # `missing` is no attempt: qmail-smtpd logs it when a client sends MAIL without having
    # authenticated where authentication is required (smtp_mail in s/qmail's qmail-smtpd.c),
    # as Stalwart's smtp.mail-from-unauthenticated. TLS::missing is the same check for
    # STARTTLS (the seed's "TLS connection could not be established" describes a session
    # without TLS, not a failed handshake); the seed gives `required` the same wording.
    ("Reject::AUTH::missing", M("rejection", "sender", **QMAIL_SMTP)),
    (rx(r"Reject::TLS::(missing|required)"), M("rejection", "sender", **QMAIL_SMTP)),
    # POP3 logins (USER/PASS or APOP). The STLS lines: the reference does not say when
    # qmail-popup logs them.
    (rx(r"qmail-popup::Accept::AUTH::.*"), M("auth", "success", user="user", **QMAIL_SMTP)),
    (rx(r"qmail-popup::Reject::AUTH::.*"), M("auth", "failure", user="user", **QMAIL_SMTP)),

    # Refusals. ORIG is the envelope sender, RCPT a recipient, SNDR the client's HELO (and,
    # for Invalid_Relay, a recipient it may not relay to), DATA/DKIM the message. GREY
    # defers a recipient (the triple's last element).
    (rx(r"Reject::ORIG::.*"),
     M("rejection", "sender", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    ("Reject::ORIG::Bad_Mailfrom",
     M("rejection", "sender", sender="mail_from", recipient="rcpt_to", reason="info",
       **QMAIL_SMTP)),
    ("Reject::SPF::Fail",
     M("rejection", "sender", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    (rx(r"Reject::RCPT::.*"),
     M("rejection", "recipient", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    ("Reject::SNDR::Invalid_Relay",
     M("rejection", "recipient", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    ("Deferred::GREY::Grey_Listed",
     M("rejection", "recipient", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    (rx(r"Reject::SNDR::(Bad_Helo|DNS_HELO)"),
     M("rejection", "helo", sender="mail_from", recipient="rcpt_to", reason="info",
       **QMAIL_SMTP)),
    ("Reject::DATA::Invalid_Size",
     M("rejection", "message", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    (rx(r"Reject::DATA::(Bad_MIME|Bad_Loader)"),
     M("rejection", "message", sender="mail_from", recipient="rcpt_to", reason="info",
       **QMAIL_SMTP)),
    ("Reject::DKIM::Signature",
     M("rejection", "message", sender="mail_from", recipient="rcpt_to", **QMAIL_SMTP)),
    # Content scans; the note names the scanner (virus) or the filter's word (spam).
    ("Reject::DATA::Spam_Message",
     M("verdict", "spam", remote_ip="remote_ip", sender="mail_from", recipient="rcpt_to",
       reason="info")),
    ("Reject::DATA::Virus_Infected",
     M("verdict", "virus", remote_ip="remote_ip", sender="mail_from", recipient="rcpt_to",
       reason="info")),
    # Accept::* lines record why a sender or recipient was let through; the taxonomy has no
    # kind for an accepted envelope step.

    # tcpserver: `pid P from IP` is logged for every accepted socket (before the rules), so
    # it is the opening; `ok` repeats it after the rules passed, `deny` refuses it.
    ("tcpserver::pid", M("connection", "open", remote_ip="remote_ip")),
    ("tcpserver::end", M("connection", "close")),
    ("tcpserver::deny", M("rejection", "connection", remote_ip="remote_ip")),
    # rblsmtpd answers 451 or 553 to every SMTP command instead of qmail-smtpd.
    (rx(r"rblsmtpd::(451|553)"), M("rejection", "connection", remote_ip="remote_ip",
                                   reason="reason")),

    # qmail-send. `info msg` follows `new msg` for every message injected through
    # qmail-queue (SMTP, local injection, qmail-send's own bounces alike) and carries the
    # sender. `bounce msg` announces a bounce that then enters the queue with its own
    # `info msg`. Delivery results carry only the delivery number; the recipient is on the
    # `starting delivery` line.
    ("qmail-send::info_msg", M("message", "queued", sender="sender")),
    ("qmail-send::delivery::success", M("delivery", "delivered", reason="report")),
    ("qmail-send::delivery::deferral", M("delivery", "deferred", reason="report")),
    ("qmail-send::delivery::failure", M("delivery", "failed", reason="report")),
]

RULES = {"dovecot": DOVECOT, "stalwart": STALWART, "exim": EXIM, "qmail": QMAIL}


# --------------------------------------------------------------------------------------

class TaxonomyError(Exception):
    pass


@dataclass
class Event:
    name: str
    subsystem: str
    fields: list[str]


def parse_events(file_name: str, text: str) -> list[Event]:
    """The rows of an events.<system>.tsv text: '#' comments, a header, then rows."""
    events, header = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if not line or (header is None and line.startswith("#")):
            continue
        cols = line.split("\t")
        if header is None:
            header = cols
            if cols[:4] != ["name", "subsystem", "level", "fields"]:
                raise TaxonomyError(f"{file_name}:{number}: unexpected header {cols}")
            continue
        if len(cols) != len(header):
            raise TaxonomyError(
                f"{file_name}:{number}: {len(cols)} columns, expected {len(header)}")
        events.append(Event(cols[0], cols[1], [f for f in cols[3].split(",") if f]))
    if header is None:
        raise TaxonomyError(f"{file_name}: no header line")
    return events


def available_fields(system: str, event: Event) -> set[str] | None:
    """Source fields a rule may map for this event; None when they are not checked."""
    if system == "stalwart":
        return None
    have = set(event.fields)
    if system == "dovecot":
        have |= DOVECOT_IMPLICIT
    elif system == "exim":
        have |= EXIM_IMPLICIT | EXIM_EXTRA.get(event.name, set())
    return have


def outcome_rule_values(outcome: str) -> tuple[str | None, list[str]]:
    """(field, outcomes) of an outcome; field is None for a constant outcome."""
    if not outcome.startswith("field:"):
        return None, [outcome]
    field, _, pairs = outcome[len("field:"):].partition("=")
    results = []
    for pair in pairs.split(","):
        value, sep, result = pair.rpartition(">")
        if not sep:
            raise TaxonomyError(f"outcome rule {outcome!r}: pair {pair!r} lacks '>'")
        results.append(result)
    return field, results


def check_mapping(system: str, event: Event, mapping: Mapping) -> None:
    kind = KIND_BY_NAME.get(mapping.kind)
    where = f"{system} {event.name}"
    if kind is None:
        raise TaxonomyError(f"{where}: unknown kind {mapping.kind!r}")
    field, outcomes = outcome_rule_values(mapping.outcome)
    for outcome in outcomes:
        if outcome not in kind.outcomes:
            raise TaxonomyError(f"{where}: outcome {outcome!r} is not one of {kind.kind}'s")
    for normalized, _ in mapping.fields:
        if normalized not in kind.fields:
            raise TaxonomyError(f"{where}: {kind.kind} events carry no {normalized!r}")
    have = available_fields(system, event)
    if have is None:
        return
    sources = [src for _, src in mapping.fields] + ([field] if field else [])
    missing = [src for src in sources if src not in have]
    if missing:
        raise TaxonomyError(f"{where}: the event has no field {', '.join(missing)}")


def classify(system: str, events: list[Event]) -> list[tuple[Event, Mapping | None]]:
    rules = RULES[system]
    exact = {}
    for matcher, mapping in rules:
        if isinstance(matcher, str):
            if matcher in exact:
                raise TaxonomyError(f"{system}: two rules for {matcher}")
            exact[matcher] = mapping
    patterns = [(m, mapping) for m, mapping in rules if not isinstance(m, str)]
    used: set[int] = set()
    names = {e.name for e in events}
    out = []
    for event in events:
        mapping = None
        if event.name in exact:
            mapping = exact[event.name]
        else:
            for index, (pattern, candidate) in enumerate(patterns):
                if pattern.fullmatch(event.name):
                    used.add(index)
                    mapping = candidate
                    break
        if mapping is not None:
            check_mapping(system, event, mapping)
        out.append((event, mapping))
    stale = [m for m in exact if m not in names]
    stale += [p.pattern for i, (p, _) in enumerate(patterns) if i not in used]
    if stale:
        raise TaxonomyError(f"{system}: rules match no event: {', '.join(stale)}")
    return out


def taxonomy_tsv() -> str:
    lines = [
        "# The normalized kinds events are mapped onto: generated by tools/catalog/generate.py",
        "# from the rules in tools/catalog/taxonomy.py. Do not edit by hand.",
        "# outcomes: the values of the normalized field `outcome` for the kind. fields: the",
        "#   normalized fields an event of the kind may carry. Values are as the source gives",
        "#   them: `duration` is Stalwart milliseconds and Dovecot microseconds; `recipient` may",
        "#   be a list where the source event covers several recipients.",
        "kind\toutcomes\tfields\tdescription",
    ]
    for k in KINDS:
        lines.append("\t".join((k.kind, ",".join(k.outcomes), ",".join(k.fields), k.description)))
    return "\n".join(lines) + "\n"


def taxonomy_map_tsv(classified: dict[str, list[tuple[Event, Mapping | None]]]) -> str:
    lines = [
        "# Every catalog event, mapped onto a kind of taxonomy.tsv or `-` when it has no",
        "# counterpart there: generated by tools/catalog/generate.py from the rules in",
        "# tools/catalog/taxonomy.py. Do not edit by hand.",
        "# outcome: a constant, or `field:<name>=<value>><outcome>,...`: the first pair whose",
        "#   value matches the event's field wins; `*` matches anything, `<prefix>*` by prefix,",
        "#   an empty value a field that is absent or empty.",
        "# fields: `<normalized>=<source field>` pairs joined by `;`.",
        "system\tname\tkind\toutcome\tfields",
    ]
    for system in SYSTEMS:
        for event, mapping in classified[system]:
            if mapping is None:
                lines.append(f"{system}\t{event.name}\t-\t\t")
            else:
                fields = ";".join(f"{n}={s}" for n, s in mapping.fields)
                lines.append(f"{system}\t{event.name}\t{mapping.kind}\t{mapping.outcome}\t{fields}")
    return "\n".join(lines) + "\n"


def classify_all(files: dict[str, str]) -> dict[str, list[tuple[Event, Mapping | None]]]:
    classified = {}
    for system in SYSTEMS:
        file_name = f"events.{system}.tsv"
        if file_name not in files:
            raise TaxonomyError(f"{file_name}: not produced by the system modules")
        classified[system] = classify(system, parse_events(file_name, files[file_name]))
    return classified


def generate(shared: pathlib.Path, files: dict[str, str]) -> dict[str, str]:
    del shared  # the taxonomy reads only the event files the other modules produced
    classified = classify_all(files)
    return {"taxonomy.tsv": taxonomy_tsv(), "taxonomy_map.tsv": taxonomy_map_tsv(classified)}


def summary(files: dict[str, str]) -> str:
    """Counts per kind and system, for review: python3 tools/catalog/taxonomy.py [DATA_DIR]."""
    classified = classify_all(files)
    counts: dict[tuple[str, str], int] = {}
    for system, rows in classified.items():
        for _, mapping in rows:
            key = (mapping.kind if mapping else "-", system)
            counts[key] = counts.get(key, 0) + 1
    kinds = [k.kind for k in KINDS] + ["-"]
    out = ["kind".ljust(12) + "".join(s.rjust(10) for s in SYSTEMS) + "total".rjust(8)]
    for kind in kinds:
        row = [counts.get((kind, s), 0) for s in SYSTEMS]
        out.append(kind.ljust(12) + "".join(str(n).rjust(10) for n in row) + str(sum(row)).rjust(8))
    return "\n".join(out)


if __name__ == "__main__":
    data = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src/catalog/data")
    print(summary({p.name: p.read_text(encoding="utf-8") for p in data.glob("events.*.tsv")}))
