#!/usr/bin/env python3
"""`mailscope catalog` as a user sees it: the JSON interface, filters, show.

Usage: catalog_cli_test.py --mailscope PATH. Exits 0 on success, 1 on failure.
"""

import argparse
import json
import subprocess
import sys

REQUIRED_KEYS = {"system", "name", "subsystem", "level", "kind", "fields", "aliases"}


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def run(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "catalog", *args], capture_output=True, text=True, timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailscope", required=True)
    args = ap.parse_args()
    c = Checks()
    ms = args.mailscope

    r = run(ms, "--json")
    c.check("catalog --json exits 0", r.returncode == 0, r.stderr)
    events = json.loads(r.stdout)
    c.check("one JSON array", isinstance(events, list) and len(events) > 0)
    c.check("every object has the interface keys",
            all(REQUIRED_KEYS <= set(e) for e in events),
            str([e for e in events if not REQUIRED_KEYS <= set(e)][:1]))
    systems = {e["system"] for e in events}
    c.check("four systems", systems == {"dovecot", "stalwart", "exim", "qmail"}, str(systems))
    stalwart = [e for e in events if e["system"] == "stalwart"]
    c.check("605 Stalwart events", len(stalwart) == 605, str(len(stalwart)))
    c.check("43 Stalwart subsystems", len({e["subsystem"] for e in stalwart}) == 43)
    c.check("Stalwart events carry their default level",
            all(e["level"] in ("trace", "debug", "info", "warn", "error") for e in stalwart))
    c.check("other systems have level null",
            all(e["level"] is None for e in events if e["system"] != "stalwart"))
    c.check("kind is a string or null", all(e["kind"] is None or isinstance(e["kind"], str) for e in events))
    c.check("fields and aliases are lists of strings",
            all(all(isinstance(x, str) for x in e["fields"] + e["aliases"]) for e in events))
    queued = [e for e in stalwart if e["name"] == "queue.message-queued"]
    c.check("both naming eras: queue.queue-message is an alias",
            len(queued) == 1 and "queue.queue-message" in queued[0]["aliases"])
    c.check("qmail type rows are named Accept::AUTH::type",
            any(e["system"] == "qmail" and e["name"] == "Accept::AUTH::type" for e in events))
    c.check("Exim msg:delivery is known", any(e["system"] == "exim" and e["name"] == "msg:delivery" for e in events))

    r = run(ms, "--json", "--system", "exim")
    only = json.loads(r.stdout)
    c.check("--system filters", len(only) > 0 and all(e["system"] == "exim" for e in only))
    r = run(ms, "--json", "--kind", "auth")
    auth = json.loads(r.stdout)
    names = {(e["system"], e["name"]) for e in auth}
    c.check("--kind auth spans the four systems",
            {("dovecot", "auth_request_finished"), ("stalwart", "auth.failed"), ("exim", "auth:fail")} <= names
            and any(s == "qmail" for s, _ in names), str(sorted(names)[:5]))
    r = run(ms, "--json", "--kind", "none", "--system", "stalwart")
    c.check("--kind none keeps events without a kind", all(e["kind"] is None for e in json.loads(r.stdout)))
    r = run(ms, "--json", "--level", "error", "--system", "stalwart")
    c.check("--level filters", all(e["level"] == "error" for e in json.loads(r.stdout)))
    r = run(ms, "--json", "--grep", "^smtp\\.mail-from$")
    grep = json.loads(r.stdout)
    c.check("--grep matches names", [e["name"] for e in grep] == ["smtp.mail-from"], str(grep[:2]))
    r = run(ms, "--grep", "(")
    c.check("a bad --grep pattern is an error", r.returncode != 0 and "bad --grep" in r.stderr)
    r = run(ms, "--system", "postfix")
    c.check("an unknown --system is an error", r.returncode != 0)

    r = run(ms, "show", "queue.queue-message")
    c.check("show resolves an alias", r.returncode == 0 and "stalwart:queue.message-queued" in r.stdout, r.stdout)
    r = run(ms, "show", "stalwart:auth.failed")
    c.check("show lists counterparts in other systems",
            r.returncode == 0 and "counterparts" in r.stdout and "exim:auth:fail" in r.stdout, r.stdout)
    r = run(ms, "show", "--json", "exim:msg:delivery")
    shown = json.loads(r.stdout)
    c.check("show --json gives the attributes",
            shown[0]["attributes"].get("when") == "after" and shown[0]["attributes"].get("section") == "transport",
            str(shown))
    r = run(ms, "show", "auth.faild")
    c.check("an unknown event exits 1 naming the closest", r.returncode == 1 and "stalwart:auth.failed" in r.stderr,
            r.stderr)
    r = run(ms, "--help")
    c.check("--help exits 0", r.returncode == 0 and "--grep" in r.stdout)

    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
