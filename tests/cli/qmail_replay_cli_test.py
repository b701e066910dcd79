#!/usr/bin/env python3
"""`mailscope replay` on s/qmail logs, checked against exact counts.

  * A golden run: tests/data/qmail/small.log (a few sessions and messages written
    by hand after reference/qmail-logs.md) against small.report.txt and
    small.report.json, and against the qmailanalog zoverall figures worked out
    by hand below. MAILSCOPE_UPDATE_GOLDEN=1 rewrites the two goldens instead.
  * Generated logs: bench/gen_qmail_log.py writes 150,000 lines with a fixed
    seed in each of its timestamp prefixes, with a --truth JSON of what it
    wrote; the --json totals and the --openmetrics counters must equal it.
    The same log gzip'ed, zstd'ed, on stdin and cut in two files must give the
    same report; --show-unparsed names every noise line and nothing else.
  * Errors: a missing file, an unknown --format, an empty file, binary garbage.

Needs no root and no peer; gzip and zstd (scripts/install-deps.sh --test) for
the compressed runs, which are skipped without them (a failure under
MAILSCOPE_REQUIRE_INTEGRATION=1).

Usage: qmail_replay_cli_test.py --mailscope PATH [--generator PATH] [--data DIR]
       [--keep]. Exits 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))
from lib_mailscope import Checks  # noqa: E402

UPDATE_ENV = "MAILSCOPE_UPDATE_GOLDEN"
LINES = 150_000
SEED = 20240108
PREFIXES = ("tai64n", "s6", "syslog", "accustamp", "none")
# Prefixes whose lines carry their own time: their reports must be the same.
# Without a prefix every line takes the time of the run.
TIMED = ("tai64n", "s6", "syslog", "accustamp")

# qmailanalog's zoverall for tests/data/qmail/small.log, worked out by hand
# from the matchup records of its three messages (times in seconds after the
# first line, 2024-01-08 12:00:00 UTC):
#
#   msg 3587739  new 10.000, end 10.500; delivery 1 local bob@example.org
#                10.400-10.450 success.
#   msg 3587740  new 40.000, end 442.600; delivery 2 remote carol@remote.example
#                40.500-70.500 deferral, delivery 3 remote dave@gone.example
#                40.510-41.010 failure, delivery 5 to carol again 440.500-442.500
#                success; the failure bounced (bounce msg ... qp 652).
#   msg 3587741  the bounce: new 71.010, end 71.200; delivery 4 local
#                alice@example.org 71.100-71.130 success.
#
#   Completed messages                 3
#   Recipients for completed messages  4   (successes + failures: 1 + 2 + 1)
#   Total delivery attempts            5   success 3, failure 1, deferral 1
#   Average message qtime              (0.500 + 402.600 + 0.190) / 3 = 134.430000 s
#   Average ddelay per success         (0.450 + 402.500 + 0.120) / 3 = 134.356667 s
#                                      (end of the success minus the new msg)
#   Average xdelay per attempt         (0.050 + 30.000 + 0.500 + 2.000 + 0.030) / 5
#                                      = 32.580 / 5 = 6.516000 s
#   Bytes in completed messages        953 + 2048 + 2871 = 5872, all delivered
#
#   Time span                          first birth to last end: 10.000 to
#                                      442.600 = 432.6 s
#   Average concurrency                32.58 / 432.6 = 0.07531
SMALL_ZOVERALL = {
    ("totals", "received"): 3,
    ("totals", "recipients"): 4,
    ("totals", "delivery_attempts"): 5,
    ("totals", "delivered"): 3,
    ("totals", "failed"): 1,
    ("totals", "deferred"): 1,
    ("totals", "bytes_delivered"): 5872,
    ("overall", "average_qtime_seconds"): 134.43,
    ("overall", "average_ddelay_seconds"): 134.356667,
    ("overall", "average_xdelay_seconds"): 6.516,
    ("overall", "time_span_seconds"): 432.6,
    ("overall", "average_concurrency"): 0.075312,
}
# The rest of small.log: two SMTP sessions with verdicts, one refused by
# rblsmtpd, one submission with SMTP AUTH over IPv6, one POP3 login and one
# simscan line of another dialect.
SMALL_OTHERS = {
    ("totals", "new_messages"): 3,
    ("totals", "accepted"): 3,
    ("totals", "rejected"): 2,
    ("totals", "connections"): 5,
    ("totals", "sessions"): 5,
    ("totals", "rbl_refused"): 1,
    ("totals", "pop3_accepted"): 1,
    ("input", "lines"): 61,
    ("input", "unparsed"): 1,
}


def replay(binary: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Runs `mailscope replay ARGS`; stdout and stderr as text (bytes that are
    not UTF-8 replaced)."""
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        r = subprocess.run([binary, "replay", *args], stdin=f, capture_output=True, timeout=600)
    return subprocess.CompletedProcess(r.args, r.returncode,
                                       r.stdout.decode("utf-8", "replace"),
                                       r.stderr.decode("utf-8", "replace"))


def output_lines(text: str) -> list[str]:
    """The lines of an output, split at LF only: a quoted log line may hold CR
    and other bytes that str.splitlines() would split at too."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def mask_input(report: str, *keys: str) -> str:
    """The --json report with the given members of its "input" object set to
    0 (what differs between runs of the same log: seconds, and for other
    inputs bytes and files)."""
    m = re.search(r'"input":\{[^{}]*(?:\{[^{}]*\}[^{}]*)?\}', report)
    if not m:
        return report
    part = m.group(0)
    for key in keys:
        part = re.sub(r'"%s":[0-9.]+' % key, '"%s":0' % key, part)
    return report[:m.start()] + part + report[m.end():]


def pick(report: dict, path: tuple[str, str]):
    return report.get(path[0], {}).get(path[1])


def unescape_label(v: str) -> str:
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \S+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of an OpenMetrics text: (name, labels, value)."""
    out = []
    for line in output_lines(text):
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"not an OpenMetrics sample: {line!r}")
        labels = {k: unescape_label(v) for k, v in LABEL.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


class ReplayTest:
    def __init__(self, c: Checks, binary: str, generator: str, data: str, root: str) -> None:
        self.c = c
        self.ms = binary
        self.generator = generator
        self.data = data
        self.root = root
        self.first_timed: tuple[str, str] | None = None  # (prefix, masked report)

    def run(self) -> None:
        self.golden()
        for prefix in PREFIXES:
            self.generated(prefix)
        self.errors()

    # ---- small.log and its goldens ----------------------------------------------

    def golden(self) -> None:
        c = self.c
        log = os.path.join(self.data, "small.log")
        text = replay(self.ms, log)
        js = replay(self.ms, "--json", log)
        c.check("small.log: replay exits 0", text.returncode == 0 and js.returncode == 0,
                text.stderr + js.stderr)
        outputs = {"small.report.txt": text.stdout,
                   "small.report.json": mask_input(js.stdout, "seconds")}
        for name, actual in outputs.items():
            path = os.path.join(self.data, name)
            if os.environ.get(UPDATE_ENV) == "1":
                with open(path, "w", encoding="utf-8") as f:
                    f.write(actual)
                print(f"# {UPDATE_ENV}=1: wrote {path}", flush=True)
                continue
            with open(path, encoding="utf-8") as f:
                expected = f.read()
            if name.endswith(".json") and actual != expected:
                # One line each: show the difference pretty-printed.
                try:
                    actual_lines = json.dumps(json.loads(actual), indent=1).splitlines()
                    expected_lines = json.dumps(json.loads(expected), indent=1).splitlines()
                except ValueError:
                    actual_lines, expected_lines = actual.splitlines(), expected.splitlines()
            else:
                actual_lines, expected_lines = actual.splitlines(), expected.splitlines()
            diff = "\n".join(difflib.unified_diff(expected_lines, actual_lines, name,
                                                  "replay", lineterm=""))
            c.check(f"small.log: output equals {name} (regenerate with {UPDATE_ENV}=1)",
                    actual == expected, "\n" + diff)
        report = json.loads(js.stdout)
        for path, want in list(SMALL_ZOVERALL.items()) + list(SMALL_OTHERS.items()):
            c.equal(f"small.log: {'.'.join(path)}", pick(report, path), want)

    # ---- generated logs against their truth -------------------------------------

    def generated(self, prefix: str) -> None:
        c = self.c
        log = os.path.join(self.root, f"{prefix}.log")
        truth_path = os.path.join(self.root, f"{prefix}.truth.json")
        subprocess.run([sys.executable, self.generator, "--lines", str(LINES), "--seed", str(SEED),
                        "--prefix", prefix, "-o", log, "--truth", truth_path],
                       check=True, capture_output=True, timeout=600)
        with open(truth_path, encoding="utf-8") as f:
            truth = json.load(f)
        r = replay(self.ms, "--json", log)
        if not c.check(f"{prefix}: replay --json exits 0", r.returncode == 0, r.stderr):
            return
        report = json.loads(r.stdout)
        totals, inp = report["totals"], report["input"]
        noise = truth["unparsed_noise_lines"]
        # The log starts with an empty queue, so every `end msg` in it follows
        # its message's `new msg` and `info msg`: every ended message is one
        # zoverall counts as completed, and every delivery result follows its
        # `starting delivery`.
        expected = {
            "received": truth["messages_ended"],
            "new_messages": truth["messages_received"],
            "delivered": truth["deliveries"]["success"],
            "deferred": truth["deliveries"]["deferral"],
            "failed": truth["deliveries"]["failure"],
            "delivery_attempts": truth["deliveries_started"],
            "results_without_start": 0,
            "rejected": truth["smtpd_rejected_lines"],
            "accepted": truth["smtpd_by_action"].get("Accept", 0),
            "smtp_deferred": truth["smtpd_by_action"].get("Deferred", 0),
            "connections": truth["tcpserver_connections"],
            "connections_denied": truth["lines_by_kind"].get("tcpserver_deny", 0),
            "sessions": truth["lines_by_kind"].get("tcpserver_end", 0),
            "rbl_refused": sum(truth["rblsmtpd_by_code"].values()),
            "pop3_accepted": sum(n for v, n in truth["popup_verdicts"].items()
                                 if v.startswith("Accept::")),
            "pop3_rejected": sum(n for v, n in truth["popup_verdicts"].items()
                                 if v.startswith("Reject::")),
        }
        for key, want in expected.items():
            c.equal(f"{prefix}: totals.{key}", totals.get(key), want)
        c.equal(f"{prefix}: input.lines", inp["lines"], truth["lines"])
        c.equal(f"{prefix}: input.bytes", inp["bytes"], truth["bytes"])
        c.equal(f"{prefix}: input.unparsed is the noise lines", inp["unparsed"], noise)
        c.equal(f"{prefix}: input.parsed", inp["parsed"], truth["lines"] - noise)
        self.openmetrics(prefix, log, truth)
        if prefix in TIMED:
            self.same_report(prefix, r.stdout)
        if prefix == "tai64n":
            self.other_inputs(log, r.stdout, truth)
            self.show_unparsed(log, noise)

    def openmetrics(self, prefix: str, log: str, truth: dict) -> None:
        c = self.c
        r = replay(self.ms, "--openmetrics", log)
        if not c.check(f"{prefix}: replay --openmetrics exits 0", r.returncode == 0, r.stderr):
            return
        c.check(f"{prefix}: the OpenMetrics text ends with # EOF",
                r.stdout.endswith("# EOF\n"), r.stdout[-200:])
        try:
            got = samples(r.stdout)
        except ValueError as err:
            c.check(f"{prefix}: OpenMetrics samples parse", False, str(err))
            return
        smtpd = {(l["action"], l["type"], l["condition"]): int(v)
                 for name, l, v in got
                 if name == "mailscope_qmail_smtpd_total"
                 and set(l) == {"action", "type", "condition"}}
        want = {tuple(v.split("::", 2)): n for v, n in truth["smtpd_verdicts"].items()}
        missing = {k: n for k, n in want.items() if smtpd.get(k) != n}
        extra = {k: n for k, n in smtpd.items() if k not in want}
        c.check(f"{prefix}: mailscope_qmail_smtpd_total{{action,type,condition}} is the truth's "
                f"{len(want)} verdicts, labels as the log writes them",
                not missing and not extra,
                f"wrong or missing {missing}, not in the truth {extra}")
        lines = {l.get("result"): int(v) for name, l, v in got
                 if name == "mailscope_log_lines_total" and l.get("format") == "qmail"}
        noise = truth["unparsed_noise_lines"]
        c.equal(f"{prefix}: mailscope_log_lines_total{{format=\"qmail\"}} by result", lines,
                {"parsed": truth["lines"] - noise, "unparsed": noise})

    def same_report(self, prefix: str, report: str) -> None:
        """Logs that differ only in their prefix give the same report."""
        masked = mask_input(report, "seconds", "bytes")
        if self.first_timed is None:
            self.first_timed = (prefix, masked)
            return
        first, text = self.first_timed
        self.c.check(f"{prefix}: same --json report as {first}, apart from input bytes and seconds",
                     masked == text)

    def other_inputs(self, log: str, report: str, truth: dict) -> None:
        """The same lines compressed, on stdin, and cut in two files."""
        c = self.c
        masked = mask_input(report, "seconds", "bytes")
        inputs: list[tuple[str, list[str], str | None]] = [("stdin (-)", ["-"], log)]
        for tool, suffix in (("gzip", ".gz"), ("zstd", ".zst")):
            if shutil.which(tool) is None:
                c.skip_part(f"tai64n: {tool}'ed log", f"no {tool} command (install-deps.sh --test)")
                continue
            packed = log + suffix
            with open(packed, "wb") as out:
                subprocess.run([tool, "-c", log], stdout=out, check=True, timeout=300)
            inputs.append((f"{tool}'ed", [packed], None))
        for what, files, stdin in inputs:
            r = replay(self.ms, "--json", *files, stdin=stdin)
            c.check(f"tai64n {what}: same --json report as the plain file, apart from input "
                    f"bytes and seconds",
                    r.returncode == 0 and mask_input(r.stdout, "seconds", "bytes") == masked,
                    r.stderr)
        # Two files, cut at a line in the middle: what is in flight at the cut
        # (sessions, messages, deliveries) is joined across it.
        with open(log, "rb") as f:
            data = f.read()
        cut = data.index(b"\n", len(data) // 2) + 1
        parts = [log + ".1", log + ".2"]
        for path, piece in zip(parts, (data[:cut], data[cut:])):
            with open(path, "wb") as f:
                f.write(piece)
        r = replay(self.ms, "--json", *parts)
        ok = r.returncode == 0
        c.check("tai64n cut in two files: same --json report as one file, apart from input "
                "files and seconds",
                ok and mask_input(r.stdout, "seconds", "files") == mask_input(report, "seconds",
                                                                              "files"),
                r.stderr)
        if ok:
            inp = json.loads(r.stdout)["input"]
            c.equal("tai64n cut in two files: input.files and input.lines",
                    (inp["files"], inp["lines"]), (2, truth["lines"]))

    def show_unparsed(self, log: str, noise: int) -> None:
        """--show-unparsed prints one line per noise line: file:line: reason."""
        c = self.c
        r = replay(self.ms, "--show-unparsed", "--json", log)
        shown = output_lines(r.stderr)
        c.equal("tai64n --show-unparsed: one stderr line per noise line", len(shown), noise,
                r.stderr[:2000])
        where = re.compile(re.escape(log) + r":(\d+): [a-z_]+: ")
        numbers = []
        for line in shown:
            m = where.match(line)
            if m:
                numbers.append(int(m.group(1)))
        c.equal("tai64n --show-unparsed: every line starts with file:line: reason:",
                len(numbers), len(shown))
        # The generator's noise: indimail's, simscan's and chkuser's lines.
        noise_lines = []
        with open(log, encoding="ascii") as f:
            for n, line in enumerate(f, 1):
                text = line.rstrip("\n").split(" ", 1)[1]
                if text.startswith(("simscan:[", "CHKUSER ")) or (
                        text.startswith("qmail-smtpd: pid ") and " HELO <" in text):
                    noise_lines.append(n)
        c.equal("tai64n --show-unparsed: the line numbers are those of the noise lines",
                numbers, noise_lines)
        c.check("tai64n --show-unparsed: stdout is the same report",
                mask_input(r.stdout, "seconds") ==
                mask_input(replay(self.ms, "--json", log).stdout, "seconds"))

    # ---- errors -------------------------------------------------------------------

    def errors(self) -> None:
        c = self.c
        missing = os.path.join(self.root, "no-such.log")
        r = replay(self.ms, missing)
        c.check("a missing file: exit 1, a message naming it, no report",
                r.returncode == 1 and missing in r.stderr and r.stdout == "",
                f"rc {r.returncode}, stderr {r.stderr!r}")
        small = os.path.join(self.data, "small.log")
        r = replay(self.ms, small, missing)
        c.check("a missing second file: exit 1 before any report, naming it",
                r.returncode == 1 and missing in r.stderr and r.stdout == "",
                f"rc {r.returncode}, stderr {r.stderr!r}")

        r = replay(self.ms, "--format", "nosuch", small)
        c.check("--format nosuch: a usage error (not 0, not 1), naming the value, no report",
                r.returncode not in (0, 1) and "nosuch" in r.stderr and r.stdout == "",
                f"rc {r.returncode}, stderr {r.stderr!r}")

        empty = os.path.join(self.root, "empty.log")
        open(empty, "wb").close()
        r = replay(self.ms, "--format", "qmail", "--json", empty)
        ok = r.returncode == 0
        c.check("an empty file with --format qmail: exit 0", ok, r.stderr)
        if ok:
            report = json.loads(r.stdout)
            c.check("an empty file: every total 0, no lines",
                    all(v == 0 for v in report["totals"].values())
                    and report["input"]["lines"] == 0 and report["input"]["files"] == 1,
                    r.stdout)
        r = replay(self.ms, "--json", empty)
        c.check("an empty file with --format auto: an empty report, or exit 1 naming the file",
                (r.returncode == 0 and json.loads(r.stdout)["input"]["lines"] == 0)
                or (r.returncode == 1 and empty in r.stderr),
                f"rc {r.returncode}, stderr {r.stderr!r}")

        garbage = os.path.join(self.root, "garbage.bin")
        rng = random.Random(SEED)
        data = bytes(rng.getrandbits(8) for _ in range(64 * 1024)) + b"\0\r\n\xff\xfe\n\n\t"
        with open(garbage, "wb") as f:
            f.write(data)
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        r = replay(self.ms, "--format", "qmail", "--json", "--show-unparsed", garbage)
        ok = r.returncode == 0
        c.check("binary garbage with --format qmail: exit 0", ok, r.stderr[:2000])
        if ok:
            inp = json.loads(r.stdout)["input"]
            c.equal("binary garbage: every line read and unparsed",
                    (inp["lines"], inp["parsed"], inp["unparsed"]), (lines, 0, lines))
            c.equal("binary garbage: --show-unparsed prints each line",
                    len(output_lines(r.stderr)), lines)
        r = replay(self.ms, "--json", garbage)
        c.check("binary garbage with --format auto: all unparsed, or exit 1 naming the file",
                (r.returncode == 0 and json.loads(r.stdout)["input"]["parsed"] == 0)
                or (r.returncode == 1 and garbage in r.stderr),
                f"rc {r.returncode}, stderr {r.stderr[:500]!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailscope", required=True, help="the mailscope binary")
    ap.add_argument("--generator", default=os.path.join(SOURCE_DIR, "bench", "gen_qmail_log.py"))
    ap.add_argument("--data", default=os.path.join(SOURCE_DIR, "tests", "data", "qmail"),
                    help="the folder of small.log and its goldens")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    c = Checks()
    root = tempfile.mkdtemp(prefix="qmail-replay-")
    try:
        ReplayTest(c, os.path.abspath(args.mailscope), args.generator, args.data, root).run()
    except Exception as err:  # report, clean up, fail
        c.check("test ran to the end", False, f"{type(err).__name__}: {err}")
    finally:
        if args.keep:
            print(f"# kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return c.summary("qmail replay")


if __name__ == "__main__":
    sys.exit(main())
