"""Stalwart: events.stalwart.tsv and keys.stalwart.tsv.

Inputs (under --shared):
  seeds/stalwart-events.txt         Stalwart's event list, a flattened web page: a subsystem
                                    heading line, the row `| Event | Level | Short | Long |`, a
                                    separator, then one `name | level | short | long |` line per
                                    event; at the end a `| Key | Description |` table.
  reference/stalwart-telemetry.md   renamed events (v0.12-v0.15 <-> v0.16), the keys some events
                                    carry, and the value types of keys.

Only names, levels, keys and types are taken over; the seed's descriptions are not.
"""

import pathlib
import re

SEED = pathlib.Path("seeds") / "stalwart-events.txt"
REFERENCE = pathlib.Path("reference") / "stalwart-telemetry.md"

# The numbers the seed is known to hold; a different count means the seed changed or the
# parser lost rows, and either needs a look before the catalog is regenerated.
EXPECTED_EVENTS = 605
EXPECTED_SUBSYSTEMS = 43

LEVELS = ("trace", "debug", "info", "warn", "error")
EVENT_HEADER = "| Event | Level | Short | Long |"
KEY_HEADER = "| Key | Description |"
SEPARATOR = re.compile(r"^\|(-+\|)+$")
EVENT_ROW = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)*)\.([a-z0-9]+(?:-[a-z0-9]+)*) \| ([a-z]+) \| ")
EVENT_INSIDE = re.compile(r"[a-z0-9-]+\.[a-z0-9-]+ \| (?:%s) \| " % "|".join(LEVELS))
KEY_ROW = re.compile(r"^([a-z][A-Za-z0-9]*) \| ")
HEADING = re.compile(r"^[A-Z][A-Za-z0-9]*$")

# Value types of keys (reference §1 "Value variants" and the worked webhook examples of §2.5).
# Only keys whose type the reference shows are listed; `to` is a string or an array depending
# on the event and `reason` a string or a nested event, so both stay untyped.
KEY_TYPES = {
    "spanId": "uint",  # u64, random per connection or delivery attempt
    "elapsed": "duration",  # integer milliseconds
    "nextRetry": "timestamp",
    "nextDsn": "timestamp",
    "expires": "timestamp",
    "remoteIp": "ip",
    "localPort": "uint",
    "remotePort": "uint",
    "listenerId": "string",
    "queueId": "uint",
    "queueName": "string",
    "from": "string",
    "size": "uint",
    "total": "uint",
    "accountId": "uint",
    "accountName": "string",
    "documentId": "uint",
    "changeId": "uint",
    "mailboxId": "array",
    "blobId": "string",
    "messageId": "string",
    "hostname": "string",
    "code": "uint",
    "details": "string",
    "causedBy": "event",
}
KEY_NOTES = {
    "to": "one address or a list of addresses, depending on the event",
    "reason": "text, or a nested event",
    "elapsed": "milliseconds",
    "causedBy": "nested event; may repeat",
    "spanId": "links an event to its connection or delivery attempt",
}

# Keys stated outside the reference's tables: §2.4 says telemetry.webhook-error carries a
# `details` text and, for discarded events, `total`.
EXTRA_FIELDS = {"telemetry.webhook-error": ["details", "total"]}


class SeedError(Exception):
    pass


def kebab(heading: str) -> str:
    """`MessageIngest` -> `message-ingest`, `Pop3` -> `pop3`, `TlsRpt` -> `tls-rpt`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", heading).lower()


def parse_seed(text: str):
    """Returns (events, keys, headings): events as dicts in seed order, keys as names,
    headings as {heading: row count}. Every line must be recognised."""
    lines = text.split("\n")
    events, keys, headings = [], [], {}
    heading_lines = []
    section = "intro"  # intro -> events -> keys
    heading = None
    previous = None  # the last non-empty line, the heading when a table header follows
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        where = f"{SEED}:{number}"
        if not line.strip():
            continue
        if line == EVENT_HEADER:
            if previous is None or not HEADING.match(previous):
                raise SeedError(f"{where}: event table without a subsystem heading before it")
            heading = previous
            if heading in headings:
                raise SeedError(f"{where}: heading {heading} appears twice")
            headings[heading] = 0
            section = "events"
        elif line == KEY_HEADER:
            section = "keys"
        elif SEPARATOR.match(line):
            pass
        elif section == "events" and EVENT_ROW.match(line):
            m = EVENT_ROW.match(line)
            subsystem, level = m.group(1), m.group(3)
            name = f"{m.group(1)}.{m.group(2)}"
            if level not in LEVELS:
                raise SeedError(f"{where}: {name}: unknown level {level!r}")
            if not line.endswith(" |") or line.count(" | ") < 3:
                raise SeedError(f"{where}: {name}: row is not `name | level | short | long |`")
            if EVENT_INSIDE.search(line, m.end()):
                raise SeedError(f"{where}: two event rows run together on one line")
            if subsystem != kebab(heading):
                raise SeedError(f"{where}: {name} listed under heading {heading}")
            events.append({"name": name, "subsystem": subsystem, "level": level})
            headings[heading] += 1
        elif section == "keys" and KEY_ROW.match(line):
            keys.append(KEY_ROW.match(line).group(1))
        elif HEADING.match(line):
            if section != "intro" and line != "Keys":
                heading_lines.append(line)  # checked below: each must head an event table
        elif section == "intro" or (section == "events" and previous == "Keys"):
            pass  # prose: the page's introduction, the sentence above the key table
        else:
            raise SeedError(f"{where}: unrecognised line: {line[:80]!r}")
        previous = line
    stray = [h for h in heading_lines if h not in headings]
    if stray:
        raise SeedError(f"{SEED}: headings without an event table: {', '.join(stray)}")
    empty = [h for h, n in headings.items() if n == 0]
    if empty:
        raise SeedError(f"{SEED}: headings without events: {', '.join(empty)}")
    return events, keys, headings


def check_unique(names, what):
    seen = set()
    for n in names:
        if n in seen:
            raise SeedError(f"{SEED}: {what} {n} listed twice")
        seen.add(n)


def parse_renames(text: str):
    """The v0.12-v0.15 and v0.16 spellings from the reference's 'A few names changed' item,
    paired in order: {v0.16 name: v0.12-v0.15 name}."""
    m = re.search(r"A few names changed between releases: v0\.12.v0\.15 (.*?); v0\.16 uses\s+(.*?)\.\s+\*\*",
                  text, re.S)
    if not m:
        raise SeedError(f"{REFERENCE}: the list of renamed events was not found")
    old = re.findall(r"`([a-z0-9.-]+)`", m.group(1))
    new = re.findall(r"`([a-z0-9.-]+)`", m.group(2))
    if len(old) != len(new) or not old:
        raise SeedError(f"{REFERENCE}: renamed events do not pair up: {old} / {new}")
    return dict(zip(new, old))


def key_words(cell: str, known_keys):
    """Key names mentioned in a table cell, in order: whole words only, so `return-path`
    does not yield `path`; annotations like `to[]`, `accountName?`, `reason/details` work."""
    words = re.findall(r"(?<![\w-])([a-z][A-Za-z0-9]*)(?![\w-])", cell)
    return [w for w in words if w in known_keys]


def expand_names(cell: str):
    """Event names in a reference table cell. Forms used there: `a.b`, `a.b|c|d`,
    `a.{b,c}`, `a.b / c / d` and `a.b` (and `c`, `d`), where bare names share the
    subsystem of the last full name. Wildcards and templates (`dane.*`, `<proto>.x`) are
    dropped: they do not say which events carry the key."""
    cell = re.sub(r"\((?!and )[^)]*\)", "", cell)  # notes like "(elapsed>0)"
    cell = re.sub(r"\.\{([a-z0-9,-]+)\}", lambda m: "." + m.group(1).replace(",", "|"), cell)
    cell = cell.replace("`", "").replace("(and ", ",").replace(")", ",")
    out, subsystem = [], None
    for part in re.split(r"\s*[,/]\s*", cell):
        part = part.strip()
        if not part or "*" in part or "<" in part:
            continue
        if "." in part:
            subsystem, rest = part.split(".", 1)
            out.extend(f"{subsystem}.{n}" for n in rest.split("|"))
        elif subsystem and re.fullmatch(r"[a-z0-9-]+", part):
            out.append(f"{subsystem}.{part}")
        else:
            raise SeedError(f"{REFERENCE}: cannot read event name {part!r}")
    return out


def parse_fields(text: str, known_keys, seed_names):
    """{event: [keys]} from the reference: the span paragraph of §1 (connection-start,
    connection-end and delivery attempt-start keys), the per-event key table of §1, and the
    'fed by event / key used' columns of the histogram table in §4.2."""
    fields: dict[str, list[str]] = {}

    def add(name, keys, source):
        if name not in seed_names:
            raise SeedError(f"{REFERENCE}: {source} names {name}, which the seed does not list")
        have = fields.setdefault(name, [])
        have.extend(k for k in keys if k not in have)

    span = re.search(r"Only six event types open a span:(.*?);", text, re.S)
    if not span:
        raise SeedError(f"{REFERENCE}: the list of span events was not found")
    span_starts = re.findall(r"`([a-z0-9.-]+)`", span.group(1))
    connection_starts = [s for s in span_starts if s.endswith(".connection-start")]
    if sorted(span_starts) != sorted(connection_starts + ["delivery.attempt-start"]):
        raise SeedError(f"{REFERENCE}: unexpected span events {span_starts}")
    targets = {
        "Connection-start keys": connection_starts,
        "Connection-end keys": [s.replace("-start", "-end") for s in connection_starts],
        "Delivery attempt-start keys": ["delivery.attempt-start"],
    }
    for label, names in targets.items():
        m = re.search(re.escape(label) + r": `([^`]*)`", text)
        if not m:
            raise SeedError(f"{REFERENCE}: '{label}' not found")
        for name in names:
            add(name, key_words(m.group(1), known_keys), label)

    table = re.search(r"\| event \| keys emitted at the call site \|\n\|[-|]+\|\n((?:\|.*\n)+)", text)
    if not table:
        raise SeedError(f"{REFERENCE}: the per-event key table was not found")
    for row in table.group(1).splitlines():
        # Split on ' | ' only: the event cell itself uses '|' between alternatives.
        cells = row.strip().strip("|").split(" | ")
        if len(cells) != 2:
            raise SeedError(f"{REFERENCE}: per-event key row {row!r}")
        keys = key_words(cells[1], known_keys)
        for name in expand_names(cells[0]):
            add(name, keys, "the per-event key table")

    hist = re.search(r"\| metric \| fed by event \| key used \|.*?\n\|[-|]+\|\n((?:\|.*\n)+)", text)
    if not hist:
        raise SeedError(f"{REFERENCE}: the histogram table was not found")
    for row in hist.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        if len(cells) != 5:
            raise SeedError(f"{REFERENCE}: histogram row {row!r}")
        keys = key_words(cells[2].split("(")[0], known_keys)
        for name in expand_names(cells[1]):
            add(name, keys, "the histogram table")

    for name, keys in EXTRA_FIELDS.items():
        add(name, keys, "the webhook section")
    return fields


def tsv_field(value: str) -> str:
    if "\t" in value or "\n" in value:
        raise SeedError(f"value contains a TAB or newline: {value!r}")
    return value


def generate(shared: pathlib.Path) -> dict[str, str]:
    seed_text = (shared / SEED).read_text(encoding="utf-8")
    reference = (shared / REFERENCE).read_text(encoding="utf-8")
    events, keys, headings = parse_seed(seed_text)

    check_unique([e["name"] for e in events], "event")
    check_unique(keys, "key")
    if len(events) != EXPECTED_EVENTS or len(headings) != EXPECTED_SUBSYSTEMS:
        raise SeedError(f"{SEED}: {len(events)} events in {len(headings)} subsystems, expected "
                        f"{EXPECTED_EVENTS} in {EXPECTED_SUBSYSTEMS}")
    names = {e["name"] for e in events}

    renames = parse_renames(reference)
    aliases: dict[str, str] = {}
    for new, old in renames.items():
        # The row keeps the seed's spelling; the other era's spelling becomes the alias.
        if new in names and old not in names:
            aliases[new] = old
        elif old in names and new not in names:
            aliases[old] = new
        else:
            raise SeedError(f"{SEED}: expected exactly one of {new} / {old}")
    # A renamed event's each spelling belongs to one era only.
    eras = {name: "0.16" if name in renames else "0.12-0.15" for name in aliases}

    unknown = [k for k in KEY_TYPES if k not in keys] + [k for k in KEY_NOTES if k not in keys]
    if unknown:
        raise SeedError(f"key types given for keys the seed does not list: {unknown}")
    fields = parse_fields(reference, set(keys), names)

    out = [
        "# Stalwart's events: generated by tools/catalog/generate.py from",
        "# seeds/stalwart-events.txt (names, subsystems, default levels) and",
        "# reference/stalwart-telemetry.md (renamed events, keys). Do not edit by hand.",
        "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription",
    ]
    for e in events:
        name = e["name"]
        attributes = f"era={eras[name]}" if name in eras else ""
        out.append("\t".join(tsv_field(v) for v in (
            name, e["subsystem"], e["level"], ",".join(fields.get(name, [])),
            aliases.get(name, ""), attributes, "")))

    key_out = [
        "# Keys of Stalwart's events: generated by tools/catalog/generate.py from the key",
        "# table of seeds/stalwart-events.txt; types from reference/stalwart-telemetry.md.",
        "key\ttype\tdescription",
    ]
    for k in keys:
        key_out.append("\t".join(tsv_field(v) for v in (k, KEY_TYPES.get(k, ""), KEY_NOTES.get(k, ""))))

    return {
        "events.stalwart.tsv": "\n".join(out) + "\n",
        "keys.stalwart.tsv": "\n".join(key_out) + "\n",
    }
