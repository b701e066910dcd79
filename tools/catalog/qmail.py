"""s/qmail: events.qmail.tsv.

Inputs (under --shared):
  seeds/sqmail-smtpd-logging.txt  s/qmail's page on qmail-smtpd logging, flattened to one line:
                                  the `Action Type Condition Explanation` table, the protocol
                                  codes, and the information tags `S:IP:FQDN P:Protocol H:Helo
                                  F:Mailfrom T:Rcptto`.
  reference/qmail-logs.md         the lines of tcpserver, rblsmtpd, qmail-send and qmail-popup, and
                                  which tags each qmail-smtpd verdict carries.

Naming rules (repeated in the file's comment):
  qmail-smtpd   `Action::Type::Condition` exactly as the seed's table spells it; the rows with the
                placeholder condition `type` (the AUTH method) keep it: `Accept::AUTH::type`.
                subsystem = the Type in upper case (the one row spelled `Auth` belongs to AUTH).
  other lines   `<program>::<keyword>[::<variant>]`: keyword = the fixed words opening the line
                after the program's prefix, lower case, other characters as `_` (`new msg` ->
                `new_msg`, `[RBL info]` -> `rbl_info`, `451`); variant = the fixed word that
                tells outcomes apart (`delivery D: success` -> `delivery::success`, `status:
                exiting` -> `status::exiting`). qmail-popup lines carry their own verdict:
                `qmail-popup::Accept::AUTH::User`. subsystem = the program.
"""

import pathlib
import re

SEED = pathlib.Path("seeds") / "sqmail-smtpd-logging.txt"
REFERENCE = pathlib.Path("reference") / "qmail-logs.md"

EXPECTED_SMTPD_ROWS = 39
ACTIONS = ("Accept", "Reject", "Deferred")
TAG_ORDER = ["S", "P", "H", "F", "T"]  # the order of the seed's information example
TAG_FIELDS = {"S": ["remote_ip", "remote_host"], "P": ["protocol"], "H": ["helo"],
              "F": ["mail_from"], "T": ["rcpt_to"]}
# The seed's protocol list: SMTP ESMTP ESMTPA ESMTPS ESMTPSA and "ESMTP[SA]UTF8". The seed
# misspells ESMTPS once as "ESMPTS"; both spellings are accepted when checking.
PROTOCOLS = ["SMTP", "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA"]
UTF8_PROTOCOLS = ["ESMTPUTF8", "ESMTPAUTF8", "ESMTPSUTF8", "ESMTPSAUTF8"]
POP3_PROTOCOLS = ["POP3", "POP3S"]

# Tags per verdict where the reference's "Field emission per helper" table (§2.2) names the
# row; a row it does not name gets the seed's full `S P H F T`. `Reject::Auth::Method` follows
# the reference's sample line for that verdict (`Reject::AUTH::Auth_Meth ... H:z.example ?~`).
# Matching is case-insensitive: the reference writes `DNS_Helo` where the seed has `DNS_HELO`.
HELPER_TAGS = {
    "SPH": ["Reject::TLS::missing", "Reject::AUTH::missing", "Reject::AUTH::type",
            "Reject::Auth::Method"],
    "SPHFT": ["Accept::SNDR::Relay_Client", "Accept::ORIG::Local_Sender",
              "Reject::SNDR::Invalid_Relay", "Reject::ORIG::DNS_MF", "Reject::RCPT::Failed_Rcptto",
              "Reject::RCPT::Bad_Rcptto", "Reject::RCPT::Toomany_Rcptto", "Reject::SPF::Fail",
              "Reject::DATA::Invalid_Size", "Reject::SNDR::Bad_Helo", "Reject::SNDR::DNS_Helo",
              "Reject::ORIG::Bad_Mailfrom", "Reject::DATA::Bad_MIME", "Reject::DATA::Bad_Loader",
              "Reject::DATA::Spam_Message", "Reject::DATA::Virus_Infected",
              "Accept::RCPT::Recipients_Cdb", "Accept::RCPT::Recipients_Pam",
              "Accept::RCPT::Recipients_Wild", "Accept::RCPT::Rcpthosts_Rcptto",
              "Accept::SPF::Recipients_Cdb", "Accept::SPF::Recipients_Pam",
              "Accept::SPF::Recipients_Wild", "Accept::SPF::Rcpthosts_Rcptto",
              "Accept::AUTH::type"],
}
# Verdicts followed by `?~ 'user'` (loga, logb, and the Auth_Meth sample) or by a quoted
# `'info'` (logi).
USER_INFO = ["Accept::AUTH::type", "Reject::AUTH::type", "Reject::Auth::Method"]
QUOTED_INFO = ["Reject::SNDR::Bad_Helo", "Reject::SNDR::DNS_HELO", "Reject::ORIG::Bad_Mailfrom",
               "Reject::DATA::Bad_MIME", "Reject::DATA::Bad_Loader", "Reject::DATA::Spam_Message",
               "Reject::DATA::Virus_Infected"]
# Other spellings of seed verdicts that the reference shows in log lines: the capitalised
# `Missing` of newer releases, `DNS_Helo`, the code's `Auth_Meth`, the reference's own reading
# `AUTH::Method`, and the AUTH methods that stand in for `type` (login/plain/cram-md5).
ALIASES = {
    "Reject::AUTH::missing": ["Reject::AUTH::Missing"],
    "Reject::SNDR::DNS_HELO": ["Reject::SNDR::DNS_Helo"],
    "Reject::Auth::Method": ["Reject::AUTH::Method", "Reject::AUTH::Auth_Meth"],
    "Accept::AUTH::type": ["Accept::AUTH::login", "Accept::AUTH::plain", "Accept::AUTH::cram-md5"],
    "Reject::AUTH::type": ["Reject::AUTH::login", "Reject::AUTH::plain", "Reject::AUTH::cram-md5"],
}
ALIAS_EVIDENCE = ["Reject::AUTH::Missing", "Reject::SNDR::DNS_Helo", "Reject::AUTH::Auth_Meth",
                  "Reject::AUTH::{setup,type,Method}", "method = login/plain/cram-md5"]

# Lines of the other programs: (name, fields, description, text of the reference that shows
# the line; checked to be there).
CONNECTION = "pid,local_host,local_ip,local_port,remote_host,remote_ip,remote_info,remote_port"
TCPSERVER = [
    ("tcpserver::status", "concurrency,limit", "connections in use / limit",
     '"tcpserver: status: " N "/" LIMIT'),
    ("tcpserver::pid", "pid,remote_ip", "child forked for a connection",
     '"tcpserver: pid " P " from " IP'),
    ("tcpserver::ok", CONNECTION, "connection allowed", '"tcpserver: " ("ok" / "deny")'),
    ("tcpserver::deny", CONNECTION, "connection refused by rules", '"tcpserver: " ("ok" / "deny")'),
    ("tcpserver::end", "pid,status", "child ended; raw wait status",
     '"tcpserver: end " P " status " WSTAT'),
    ("tcpserver::warning", "reason", "connection dropped",
     '"tcpserver: warning: dropping connection, "'),
    ("tcpserver::fatal", "reason", "tcpserver gave up", '"tcpserver: fatal: " reason'),
]
RBLSMTPD = [
    ("rblsmtpd::451", "remote_ip,pid,reason", "temporary refusal: listed, or lookup failed",
     '("451 " / "553 ") reason'),
    ("rblsmtpd::553", "remote_ip,pid,reason", "permanent refusal (bounce mode)",
     '("451 " / "553 ") reason'),
    ("rblsmtpd::rbl_info", "remote_ip,pid,reason", "listing noted, connection goes on",
     '"[RBL info] " reason'),
    ("rblsmtpd::greetdelay", "remote_ip,pid,seconds", "greeting delayed", '"greetdelay: " SECONDS'),
]
QMAIL_SEND = [
    ("qmail-send::new_msg", "msg", "message entered the queue", "new msg M"),
    ("qmail-send::info_msg", "msg,bytes,sender,qp,uid", "message size, sender, injector",
     "info msg M: bytes B from <SENDER> qp Q uid U"),
    ("qmail-send::starting_delivery", "delivery,msg,channel,recipient", "delivery attempt begins",
     "starting delivery D: msg M to local|remote RCPT"),
    ("qmail-send::delivery::success", "delivery,report", "delivered",
     "delivery D: success|deferral|failure: REPORT"),
    ("qmail-send::delivery::deferral", "delivery,report", "temporary failure, retried later",
     "delivery D: success|deferral|failure: REPORT"),
    ("qmail-send::delivery::failure", "delivery,report", "permanent failure",
     "delivery D: success|deferral|failure: REPORT"),
    ("qmail-send::status", "local,local_limit,remote,remote_limit",
     "deliveries in progress / limits", "status: local l/L remote r/R"),
    ("qmail-send::status::exiting", "", "qmail-send stopping", "status: exiting"),
    ("qmail-send::end_msg", "msg", "message left the queue", "end msg M"),
    ("qmail-send::bounce_msg", "msg,qp", "bounce queued for a message", "bounce msg M qp Q"),
    ("qmail-send::double_bounce", "text", "double bounce dropped", "double bounce: discarding"),
    ("qmail-send::triple_bounce", "msg", "triple bounce dropped",
     "triple bounce: discarding bounce/M"),
    ("qmail-send::warning", "text", "", "warning: …"),
    ("qmail-send::alert", "text", "", "alert: …"),
]
POPUP_GRAMMAR = ['action = "Accept" / "Reject"', 'type   = "AUTH" / "STLS"',
                 'cond   = "User" / "Apop" (AUTH) ; "Any" (STLS)', 'proto  = "POP3" / "POP3S"']
POPUP = [(action, type_, cond) for action in ("Accept", "Reject")
         for type_, conds in (("AUTH", ("User", "Apop")), ("STLS", ("Any",))) for cond in conds]


class SeedError(Exception):
    pass


def parse_seed(text: str):
    """(rows [(action, type, condition)], tags [letters]) from the one-line seed."""
    head = re.search(r"Action Type Condition Explanation -+ ", text)
    tail = text.find(" SNDR (S) corresponds")
    if not head or tail < head.end():
        raise SeedError(f"{SEED}: the Action Type Condition table was not found")
    words = text[head.end():tail].split(" ")
    rows = []
    for i, word in enumerate(words):
        if word in ACTIONS:
            action, type_, cond = words[i:i + 3]
            if not re.fullmatch(r"[A-Za-z]+", type_) or not re.fullmatch(r"[A-Za-z0-9_]+", cond):
                raise SeedError(f"{SEED}: cannot read the row {' '.join(words[i:i + 4])!r}")
            rows.append((action, type_, cond))
    if not rows or words[0] not in ACTIONS:
        raise SeedError(f"{SEED}: the table does not start with an action")

    info = re.search(r"constructed from the SMTP envelope like: ((?:[A-Z]:\S+ ?)+)", text)
    if not info:
        raise SeedError(f"{SEED}: the information tags were not found")
    tags = [t.split(":", 1)[0] for t in info.group(1).split()]
    if tags != TAG_ORDER:
        raise SeedError(f"{SEED}: information tags are {tags}, expected {TAG_ORDER}")

    protocol = re.search(r"Protocol -+ (.*?) The Information", text)
    if not protocol:
        raise SeedError(f"{SEED}: the protocol list was not found")
    codes = set(protocol.group(1).replace("ESMPTS", "ESMTPS").split())
    missing = [p for p in PROTOCOLS + ["ESMTP[SA]UTF8"] if p not in codes]
    if missing:
        raise SeedError(f"{SEED}: protocol codes not found: {missing}")
    return rows, tags


def tsv_field(value: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise SeedError(f"value contains a TAB or newline: {value!r}")
    return value


def generate(shared: pathlib.Path) -> dict[str, str]:
    rows, _ = parse_seed((shared / SEED).read_text(encoding="utf-8"))
    reference = (shared / REFERENCE).read_text(encoding="utf-8")
    if len(rows) != EXPECTED_SMTPD_ROWS:
        raise SeedError(f"{SEED}: {len(rows)} rows, expected {EXPECTED_SMTPD_ROWS}")
    names = ["::".join(r) for r in rows]
    by_lower = {n.lower(): n for n in names}
    if len(by_lower) != len(names):
        raise SeedError(f"{SEED}: two rows differ only in case")

    def seed_name(name, what):
        if name.lower() not in by_lower:
            raise SeedError(f"{what} names {name}, which the seed's table does not have")
        return by_lower[name.lower()]

    tags = {}
    for letters, verdicts in HELPER_TAGS.items():
        for v in verdicts:
            tags[seed_name(v, "HELPER_TAGS")] = list(letters)
    user_info = {seed_name(v, "USER_INFO") for v in USER_INFO}
    quoted_info = {seed_name(v, "QUOTED_INFO") for v in QUOTED_INFO}
    for v in ALIASES:
        seed_name(v, "ALIASES")
    for text in ALIAS_EVIDENCE + [anchor for *_, anchor in TCPSERVER + RBLSMTPD + QMAIL_SEND] \
            + POPUP_GRAMMAR:
        if text not in reference:
            raise SeedError(f"{REFERENCE}: expected to find {text!r}")

    out = [
        "# s/qmail's log lines: generated by tools/catalog/generate.py from",
        "# seeds/sqmail-smtpd-logging.txt (qmail-smtpd verdicts, protocols, information tags)",
        "# and reference/qmail-logs.md (tcpserver, rblsmtpd, qmail-send, qmail-popup).",
        "# Do not edit by hand.",
        "# Names: qmail-smtpd verdicts are `Action::Type::Condition` exactly as in the seed's",
        "#   table (`type` stands for the AUTH method: `Accept::AUTH::type`); subsystem = Type",
        "#   in upper case (the seed's one `Auth` row is AUTH).",
        "#   Other lines are `<program>::<keyword>[::<variant>]`: keyword = the fixed words",
        "#   opening the line after the program's prefix, lower case, other characters as `_`",
        "#   (`new msg` -> new_msg, `[RBL info]` -> rbl_info); variant = the fixed word telling",
        "#   outcomes apart (`delivery D: success` -> delivery::success). qmail-popup lines keep",
        "#   their verdict: qmail-popup::Accept::AUTH::User. subsystem = the program.",
        "# tags: S,P,H,F,T as the reference's per-helper table gives them, else all five.",
        "# fields: pid; S remote_ip,remote_host; P protocol; H helo; F mail_from; T rcpt_to;",
        "#   `?~ 'user'` user; a quoted note info. Aliases: spellings seen in real lines.",
        "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription",
    ]

    def row(name, subsystem, fields, aliases, attributes, description):
        attribute_text = ";".join(f"{k}={v}" for k, v in attributes)
        out.append("\t".join(tsv_field(v) for v in (
            name, subsystem, "", fields, ",".join(aliases), attribute_text, description)))

    for (action, type_, cond), name in zip(rows, names):
        letters = tags.get(name, TAG_ORDER)
        fields = ["pid"] + [f for t in letters for f in TAG_FIELDS[t]]
        if name in user_info:
            fields.append("user")
        if name in quoted_info:
            fields.append("info")
        attributes = [("program", "qmail-smtpd"), ("action", action), ("type", type_),
                      ("condition", cond), ("tags", ",".join(letters))]
        if "P" in letters:
            attributes.append(("protocols", ",".join(PROTOCOLS + UTF8_PROTOCOLS)))
        row(name, type_.upper(), ",".join(fields), ALIASES.get(name, []), attributes, "")

    for program, lines in (("tcpserver", TCPSERVER), ("rblsmtpd", RBLSMTPD),
                           ("qmail-send", QMAIL_SEND)):
        for name, fields, description, _ in lines:
            row(name, program, fields, [], [("program", program)], description)
    for action, type_, cond in POPUP:
        row(f"qmail-popup::{action}::{type_}::{cond}", "qmail-popup",
            "pid,protocol,remote_ip,remote_host,user", [],
            [("program", "qmail-popup"), ("action", action), ("type", type_), ("condition", cond),
             ("tags", "S,P"), ("protocols", ",".join(POP3_PROTOCOLS))], "")

    seen = set()
    for line in out:
        if line.startswith("#"):
            continue
        name, _, _, _, aliases, *_ = line.split("\t")
        for n in [name] + (aliases.split(",") if aliases else []):
            if n in seen:
                raise SeedError(f"{n} names two events")
            seen.add(n)
    return {"events.qmail.tsv": "\n".join(out) + "\n"}
