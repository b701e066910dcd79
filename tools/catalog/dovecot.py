"""Dovecot: events.dovecot.tsv.

Inputs (under --shared):
  reference/dovecot-events.tsv      every named event of Dovecot 2.3.19.1 and Pigeonhole 0.5.19
                                    (event_name, category, fields, since_version), checked
                                    against the source.
  reference/dovecot-protocols.md    §4, the notes on that list: the renamed event and the field
                                    whose name starts with a space.

seeds/dovecot-events.txt (Dovecot's list_of_events page) is not read: it lost the event names,
so its field lists cannot be tied to events, and the reference covers every event it shows.

Rules (repeated in the file's comment):
  subsystem   the category when the reference names exactly one; for sql events the `sql`
              category (the driver category is a child of it). Empty where the category is not
              fixed: the owner's category (connection API), the root event, and events whose
              category depends on the process or login protocol; the description says which.
  fields      as the reference lists them. The field Dovecot names " user_mask" (leading space)
              is listed as `user_mask`, since list items carry no spaces; the description of
              those events says so.
  aliases     the older name of a renamed event (from the §4 notes).
  attributes  since=<first Dovecot version>; origin=core|pigeonhole.
"""

import pathlib
import re

REFERENCE = pathlib.Path("reference") / "dovecot-events.tsv"
NOTES = pathlib.Path("reference") / "dovecot-protocols.md"

# §4 states 100 rows: 88 from core, 12 from Pigeonhole.
EXPECTED_CORE = 88
EXPECTED_PIGEONHOLE = 12

HEADER = ["event_name", "category", "fields", "since_version"]
NAME = re.compile(r"[a-z][a-z0-9_]*")
CATEGORY = re.compile(r"[a-z][a-z0-9-]*")
SINCE = re.compile(r"(\d+\.\d+\.\d+)(?: \(Pigeonhole (\d+\.\d+\.\d+)\))?")
FIELD = re.compile(r"[a-z][a-z0-9_]*")

# Category texts of the reference that are not a single category name, with the subsystem
# and description they become.
SPECIAL_CATEGORIES = [
    (re.compile(r"\(owner's category\)"), lambda m: ("", "category of the owning connection list")),
    (re.compile(r"\(none; root event\)"), lambda m: ("", "root event, no category")),
    (re.compile(r"([a-z][a-z0-9-]*) \(\+ driver: ([a-z|]+)\)"),
     lambda m: (m.group(1), "plus the driver category (" + m.group(2).replace("|", ", ") + ")")),
    (re.compile(r"([a-z][a-z0-9-]*) \([a-z-]+ process\) / ([a-z][a-z0-9-]*) \([a-z-]+ process\)"),
     lambda m: ("", f"category {m.group(1)} or {m.group(2)}, by process")),
    (re.compile(r"([a-z0-9]+(?:\|[a-z0-9]+)+) \(login process\)"),
     lambda m: ("", "category of the login protocol: " + m.group(1).replace("|", ", "))),
]


class SeedError(Exception):
    pass


def subsystem_of(category: str, where: str):
    """(subsystem, description) for a category cell of the reference."""
    if CATEGORY.fullmatch(category):
        return category, ""
    for pattern, result in SPECIAL_CATEGORIES:
        m = pattern.fullmatch(category)
        if m:
            return result(m)
    raise SeedError(f"{where}: unknown category form {category!r}")


def parse_notes(text: str):
    """(renames {new: old}, names of fields with a leading space) from §4 of the notes."""
    section = text.split("## 4. Events list", 1)
    if len(section) != 2:
        raise SeedError(f"{NOTES}: section 4 not found")
    notes = section[1].split("\n## ", 1)[0]
    renames = dict(re.findall(r"`([a-z_]+)` was called `([a-z_]+)` in", notes))
    if not renames:
        raise SeedError(f"{NOTES}: the renamed event was not found in §4")
    spaced = re.findall(r'named `" ([a-z_]+)"` with a\s+\*\*leading space\*\*', notes)
    return renames, spaced


def tsv_field(value: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise SeedError(f"value contains a TAB or newline: {value!r}")
    return value


def generate(shared: pathlib.Path) -> dict[str, str]:
    lines = (shared / REFERENCE).read_text(encoding="utf-8").split("\n")
    renames, spaced = parse_notes((shared / NOTES).read_text(encoding="utf-8"))
    if lines[0].split("\t") != HEADER:
        raise SeedError(f"{REFERENCE}:1: header is not {HEADER}")

    rows, seen, spaced_seen = [], set(), set()
    origins = {"core": 0, "pigeonhole": 0}
    for number, line in enumerate(lines[1:], 2):
        if not line:
            continue
        where = f"{REFERENCE}:{number}"
        cols = line.split("\t")
        if len(cols) != 4:
            raise SeedError(f"{where}: {len(cols)} columns")
        name, category, field_cell, since_cell = cols
        if not NAME.fullmatch(name) or name in seen:
            raise SeedError(f"{where}: bad or repeated event name {name!r}")
        seen.add(name)
        subsystem, description = subsystem_of(category, where)

        fields = []
        for f in field_cell.split(",") if field_cell else []:
            if f.startswith(" ") and f.strip() in spaced:
                spaced_seen.add(f.strip())
                description = f"'{f.strip()}' has a leading space in Dovecot"
                f = f.strip()
            if not FIELD.fullmatch(f) or f in fields:
                raise SeedError(f"{where}: bad or repeated field {f!r}")
            fields.append(f)

        m = SINCE.fullmatch(since_cell)
        if not m:
            raise SeedError(f"{where}: cannot read since_version {since_cell!r}")
        origin = "pigeonhole" if m.group(2) else "core"
        origins[origin] += 1
        aliases = [old for new, old in renames.items() if new == name]
        rows.append((name, subsystem, "", ",".join(fields), ",".join(aliases),
                     f"since={m.group(1)};origin={origin}", description))

    missing = [n for n in renames if n not in seen] + [o for o in renames.values() if o in seen]
    if missing:
        raise SeedError(f"{NOTES}: renamed events do not match the list: {missing}")
    if set(spaced) != spaced_seen:
        raise SeedError(f"{NOTES}: fields with a leading space not found in the list: {spaced}")
    if origins != {"core": EXPECTED_CORE, "pigeonhole": EXPECTED_PIGEONHOLE}:
        raise SeedError(f"{REFERENCE}: {origins}, expected {EXPECTED_CORE} core and "
                        f"{EXPECTED_PIGEONHOLE} pigeonhole events")

    out = [
        "# Dovecot's named events: generated by tools/catalog/generate.py from",
        "# reference/dovecot-events.tsv (Dovecot 2.3.19.1, Pigeonhole 0.5.19) and the notes in",
        "# §4 of reference/dovecot-protocols.md. Do not edit by hand.",
        "# subsystem: the category. Empty where it is not fixed (owner's category, root event, per",
        "#   process or login protocol; the description says which). sql events: `sql`, the driver",
        "#   category being its child.",
        "# fields: the event's own and inherited fields. Any event can also carry `duration`",
        "#   (added by the stats process), `reason_code` and, where enabled, `user_cpu_usecs`.",
        "#   Dovecot's field \" user_mask\" starts with a space; it is listed as `user_mask`.",
        "# since: first Dovecot release with the name (2.3.11.x counts as 2.3.11). Pigeonhole",
        "#   events (origin=pigeonhole) appeared with Dovecot 2.3.9 / Pigeonhole 0.5.9.",
        "name\tsubsystem\tlevel\tfields\taliases\tattributes\tdescription",
    ]
    out.extend("\t".join(tsv_field(v) for v in row) for row in rows)
    return {"events.dovecot.tsv": "\n".join(out) + "\n"}
