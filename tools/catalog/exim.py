"""Exim: events.exim.tsv.

Inputs (under --shared):
  seeds/exim-events.txt         the Events chapter of Exim's spec: the event table
                                (`name | before/after | main/transport/both | frequency |`), the
                                `$event_data` table, and the table of what a non-empty expansion
                                result forces.
  reference/exim-events.md      §2: every event with the first release that has it and the
                                variables valid while it runs, including events newer than the seed.

Rules (repeated in the file's comment):
  name, subsystem   the event name; subsystem is its first colon-separated part.
  when, section, frequency, event_data, result
                    from the seed's tables for the seed's events, from the reference for the others.
                    `;` separates attributes, so a `;` inside a value becomes `,`.
  since             the reference's version; `≤4.87` (present when events became mainline and on
                    by default, 4.87) is written 4.87.
  fields            the Exim variables the reference lists for the event, without `$`, where a
                    cell says "as <event>" that event's variables too, and `event_defer_errno` for
                    the :defer events (seed). `event_name` and `event_data` are always set and not
                    listed.
  origin            `exim` for the events Exim raises; `mailscope` for the steps of reception
                    that mailscope defines (ACL_EVENTS below): Exim raises no event for them, so
                    the named ACLs of docs/integrations/exim-acl.conf report them.
"""

import pathlib
import re

SEED = pathlib.Path("seeds") / "exim-events.txt"
REFERENCE = pathlib.Path("reference") / "exim-events.md"

EXPECTED_SEED_EVENTS = 17
EXPECTED_REFERENCE_EVENTS = 19

NAME = re.compile(r"[a-z]+(?::[a-z]+)+")
VARIABLE = re.compile(r"\$([a-z][a-z0-9_]*[a-z0-9])(?![a-z0-9_*])")
VERSION = re.compile(r"(?:≤)?(\d+\.\d+)")
# Variables the reference names as "TLS certs" (dropped where a cell says "minus TLS certs").
TLS_CERTS = ("tls_out_ourcert", "tls_out_peercert")


class SeedError(Exception):
    pass


# Reception steps, which Exim's events do not cover (reference §3): mailscope defines an event
# for each, sent by the named ACL mailscope_check from the ACL of that step. Fields: the
# variables that ACL sends and Exim has set at that step. A verdict ("deny TEXT" or "defer
# TEXT") makes the step fail with that text.
ACL_FIELDS_SESSION = ["sender_host_address", "sender_host_port", "received_ip_address",
                      "received_port", "tls_in_ver", "tls_in_cipher"]
ACL_EVENTS = [
    ("acl:connect", "per connection", ACL_FIELDS_SESSION,
     "a client connected (acl_smtp_connect)"),
    ("acl:helo", "per HELO or EHLO", ACL_FIELDS_SESSION + ["sender_helo_name"],
     "the client said HELO or EHLO (acl_smtp_helo)"),
    ("acl:mail", "per MAIL command", ACL_FIELDS_SESSION + ["sender_helo_name", "sender_address",
                                                            "authenticated_id"],
     "the client gave the envelope sender (acl_smtp_mail)"),
    ("acl:rcpt", "per RCPT command", ACL_FIELDS_SESSION + ["sender_helo_name", "sender_address",
                                                            "authenticated_id", "local_part",
                                                            "domain"],
     "the client gave a recipient and the ACL reached mailscope's statement (acl_smtp_rcpt)"),
    ("acl:data", "per message", ACL_FIELDS_SESSION + ["sender_helo_name", "sender_address",
                                                       "authenticated_id", "message_exim_id",
                                                       "message_size", "recipients_count"],
     "a message was received and the DATA ACL reached mailscope's statement (acl_smtp_data)"),
]


def table(text: str, start: str, end: str, columns: int, where: str):
    """Rows `a | b | ... |` between the line containing `start` and the one starting `end`."""
    lines = text.split("\n")
    try:
        first = next(i for i, line in enumerate(lines) if start in line) + 1
        last = next(i for i in range(first, len(lines)) if lines[i].startswith(end))
    except StopIteration:
        raise SeedError(f"{where}: table after {start!r} not found") from None
    rows = []
    for number in range(first, last):
        line = lines[number]
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != columns + 1 or cells[-1] != "" or not NAME.fullmatch(cells[0]):
            raise SeedError(f"{where}:{number + 1}: not a {columns}-column row: {line!r}")
        rows.append(cells[:columns])
    return rows


def parse_seed(text: str):
    events = table(text, "The current list of events is:", "New event types", 4, str(SEED))
    data = table(text, "An additional variable, $event_data,", "The :defer events", 2, str(SEED))
    results = table(text, "the following will be forced:", "All other message types", 2, str(SEED))
    defer = re.search(r"The (:[a-z]+) events populate one extra variable: \$([a-z_]+)\.", text)
    if not defer:
        raise SeedError(f"{SEED}: the sentence on the :defer events' variable was not found")
    names = [e[0] for e in events]
    for kind, rows in (("$event_data", data), ("result", results)):
        unknown = [r[0] for r in rows if r[0] not in names]
        if unknown:
            raise SeedError(f"{SEED}: the {kind} table names events the event table lacks: "
                            f"{unknown}")
    for name, when, section, _ in events:
        if when not in ("before", "after") or section not in ("main", "transport", "both"):
            raise SeedError(f"{SEED}: {name}: unexpected when/section {when!r}/{section!r}")
    return events, dict(data), dict(results), defer.groups()


def parse_reference(text: str):
    """[(names, hook, fires, since, event_data, variables)] from the §2 table."""
    m = re.search(r"^\| event \| hook \| fires \| since \|.*\n\|[-|]+\|\n((?:\|.*\n)+)", text, re.M)
    if not m:
        raise SeedError(f"{REFERENCE}: the event table of §2 was not found")
    rows = []
    for row in m.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        if len(cells) != 6:
            raise SeedError(f"{REFERENCE}: row with {len(cells)} cells: {row[:60]!r}")
        names = re.findall(r"`([a-z:]+)`", cells[0])
        if not names or not all(NAME.fullmatch(n) for n in names):
            raise SeedError(f"{REFERENCE}: cannot read the event names in {cells[0]!r}")
        rows.append((names, *cells[1:]))
    return rows


def variables(cell: str, resolved: dict[str, list[str]], where: str):
    """Variable names of a reference cell; `as <event>` pulls in that event's list."""
    out = []
    m = re.match(r"(?:same as|as) ([a-z]+(?::[a-z]+)+)", cell)
    if m:
        if m.group(1) not in resolved:
            raise SeedError(f"{where}: refers to {m.group(1)}, which comes later in the table")
        inherited = resolved[m.group(1)]
        if "minus TLS certs" in cell:
            inherited = [v for v in inherited if v not in TLS_CERTS]
        out.extend(inherited)
    for v in VARIABLE.findall(cell):
        if v not in out and v not in ("event_name", "event_data"):
            out.append(v)
    return out


def tsv_field(value: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise SeedError(f"value contains a TAB or newline: {value!r}")
    return value


def generate(shared: pathlib.Path) -> dict[str, str]:
    seed_events, seed_data, seed_results, (defer_suffix, defer_variable) = parse_seed(
        (shared / SEED).read_text(encoding="utf-8"))
    reference = parse_reference((shared / REFERENCE).read_text(encoding="utf-8"))
    if len(seed_events) != EXPECTED_SEED_EVENTS:
        raise SeedError(f"{SEED}: {len(seed_events)} events, expected {EXPECTED_SEED_EVENTS}")

    facts: dict[str, dict] = {}
    resolved: dict[str, list[str]] = {}
    for names, hook, fires, since, event_data, cell in reference:
        v = VERSION.match(since)
        if not v:
            raise SeedError(f"{REFERENCE}: {names}: cannot read the version {since!r}")
        fields = variables(cell, resolved, f"{REFERENCE}: {names[0]}")
        for name in names:
            if name in facts:
                raise SeedError(f"{REFERENCE}: {name} listed twice")
            resolved[name] = fields
            facts[name] = {"hook": hook, "fires": fires, "since": v.group(1),
                           "event_data": event_data}
    if len(facts) != EXPECTED_REFERENCE_EVENTS:
        raise SeedError(f"{REFERENCE}: {len(facts)} events, expected {EXPECTED_REFERENCE_EVENTS}")
    seed_names = [e[0] for e in seed_events]
    missing = [n for n in seed_names if n not in facts]
    if missing:
        raise SeedError(f"{REFERENCE}: seed events missing from the reference: {missing}")

    rows = []
    for name, when, section, frequency in seed_events:
        attributes = [("when", when), ("section", section), ("frequency", frequency)]
        if name in seed_data:
            attributes.append(("event_data", seed_data[name]))
        if name in seed_results:
            attributes.append(("result", seed_results[name]))
        attributes.append(("since", facts[name]["since"]))
        rows.append((name, attributes, ""))

    # Events the seed does not list. The reference's cells are prose; these are its facts in
    # the catalog's terms (when, section, frequency, $event_data).
    newer = {
        "smtp:fail:protocol": ([("when", "after"), ("section", "main"), ("frequency", "per error"),
                                ("event_data", "error message")],
                               "inbound SMTP protocol error (the source raises smtp:fail:syntax)"),
        "smtp:fail:syntax": ([("when", "after"), ("section", "main"), ("frequency", "per error"),
                              ("event_data", "error message")],
                             "inbound SMTP syntax error"),
    }
    extra = [n for n in facts if n not in seed_names]
    if sorted(extra) != sorted(newer):
        raise SeedError(f"{REFERENCE}: events beyond the seed are {extra}, "
                        f"expected {sorted(newer)}")
    for name in extra:
        fact = facts[name]
        if not (fact["hook"] == "main" and fact["fires"].startswith("after")
                and "error message" in fact["event_data"]):
            raise SeedError(f"{REFERENCE}: {name}: facts changed: {fact}")
        attributes, description = newer[name]
        rows.append((name, attributes + [("since", fact["since"])], description))

    for name, frequency, fields, description in ACL_EVENTS:
        if name in facts:
            raise SeedError(f"{name}: Exim raises an event of that name now; mailscope's ACL "
                            "events need another")
        resolved[name] = fields
        rows.append((name, [("when", "before"), ("section", "acl"), ("frequency", frequency),
                            ("result", "fail the step: \"deny TEXT\" or \"defer TEXT\"")],
                     description))

    out = [
        "# Exim's events: generated by tools/catalog/generate.py from seeds/exim-events.txt",
        "# (names, when, section, frequency, $event_data, result) and reference/exim-events.md",
        "# (first version, variables, events newer than the seed). Do not edit by hand.",
        "# subsystem: the first part of the name. fields: Exim variables set during the event,",
        "#   without `$` ($event_name and $event_data always are). A `;` inside a seed value",
        "#   becomes `,`. since=4.87 also stands for the reference's `≤4.87`: the event existed",
        "#   when events became mainline (4.87). origin=mailscope marks the reception steps",
        "#   mailscope defines (acl:*): the named ACLs of docs/integrations/exim-acl.conf send",
        "#   them; Exim itself raises every event of origin=exim.",
        "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription",
    ]
    seen = set()
    acl_names = {e[0] for e in ACL_EVENTS}
    for name, attributes, description in rows:
        if name in seen:
            raise SeedError(f"{name} listed twice")
        seen.add(name)
        attributes = [("origin", "mailscope" if name in acl_names else "exim")] + attributes
        fields = list(resolved[name])
        if name.endswith(defer_suffix) and defer_variable not in fields:
            fields.append(defer_variable)
        # `;` joins the attributes, so one inside a value (a frequency of the seed) becomes `,`.
        attribute_text = ";".join(f"{k}={v.replace(';', ',')}" for k, v in attributes)
        out.append("\t".join(tsv_field(v) for v in (
            name, name.split(":", 1)[0], "", ",".join(fields), "", attribute_text, description)))
    return {"events.exim.tsv": "\n".join(out) + "\n"}
