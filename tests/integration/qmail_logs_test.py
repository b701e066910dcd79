#!/usr/bin/env python3
"""s/qmail logs read live by `mailscope serve` ([[logs]]), through real rotation and SIGKILL.

  1. Real multilog: lines of bench/gen_qmail_log.py (no prefix) are piped into
     daemontools' `multilog t s200000 n50 DIR`, which stamps them with TAI64N
     and rotates `current` to `@....s` many times while mailscope follows
     DIR/current. Every line is counted once: mailscope_log_lines_total
     {format="qmail",result="parsed"|"unparsed"} equals the generator's truth,
     mailscope_qmail_smtpd_total{action,type,condition} equals its count per
     verdict, and mailscope_log_rotations_total saw the rotations.
  2. SIGKILL mid-file: a 300,000-line log is read with every event kept in
     the records store. One run reads it uninterrupted; another, whose copy of
     the log holds 60 % of the lines at first, is killed with SIGKILL once a
     third is read and a position saved, the rest is appended, and it is
     started again on the same data directory. Both runs' records are the same, row for row (event, time and
     fields, the stitched session and delivery fields included): no line and
     no session was lost or counted twice. The killed run's saved position
     was inside the file.

Usage: qmail_logs_test.py --mailscope PATH [--keep]. Exits 0 on success, 1
on failure.
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import lib_mailscope as lm

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = os.path.join(HERE, "..", "..", "bench", "gen_qmail_log.py")
MULTILOG = "/usr/bin/multilog"


def generate(path: str, lines: int, seed: int, prefix: str) -> dict:
    truth = path + ".truth.json"
    subprocess.run([sys.executable, GENERATOR, "--lines", str(lines), "--seed", str(seed),
                    "--prefix", prefix, "-o", path, "--truth", truth],
                   check=True, stderr=subprocess.DEVNULL)
    with open(truth, encoding="utf-8") as f:
        return json.load(f)


def logs_config(files: str, records: bool) -> str:
    text = f"""\
[[logs]]
name = "qmail"
format = "qmail"
files = ["{files}"]
start = "start"
poll_interval = "50 msecs"
checkpoint_interval = "200 msecs"
"""
    if records:
        # Kept whatever their age: the generated lines are from 2024.
        text += "\n[records]\nfilter = 'source=qmail_log'\nmax_age = 0\n"
    return text


def lines_read(ms: lm.Mailscope) -> int:
    parsed = ms.metric('mailscope_log_lines_total{format="qmail",result="parsed"}') or 0
    unparsed = ms.metric('mailscope_log_lines_total{format="qmail",result="unparsed"}') or 0
    return parsed + unparsed


def verdict_series(body: str) -> dict[str, int]:
    """mailscope_qmail_smtpd_total{action,type,condition} samples by verdict."""
    out = {}
    for line in body.splitlines():
        if not line.startswith("mailscope_qmail_smtpd_total{action="):
            continue
        labels, value = line.rsplit(" ", 1)
        parts = dict(p.split("=", 1) for p in labels[len("mailscope_qmail_smtpd_total{"):-1]
                     .split(","))
        if set(parts) != {"action", "type", "condition"}:
            continue
        key = "::".join(parts[k].strip('"') for k in ("action", "type", "condition"))
        out[key] = int(float(value))
    return out


def multilog_part(checks: lm.Checks, binary: str, work: str) -> None:
    if not os.path.exists(MULTILOG):
        checks.check("multilog is installed (daemontools)", False, MULTILOG)
        return
    log_dir = os.path.join(work, "multilog")
    os.makedirs(log_dir)
    source = os.path.join(work, "plain.log")
    truth = generate(source, 60_000, 11, "none")
    ms = lm.Mailscope(binary, os.path.join(work, "ms-multilog"),
                      logs_config(os.path.join(log_dir, "current"), records=False))
    try:
        ms.start()
        # multilog stamps and rotates; written in pieces while mailscope reads.
        with open(source, "rb") as f:
            data = f.read()
        proc = subprocess.Popen([MULTILOG, "t", "s200000", "n50", log_dir],
                                stdin=subprocess.PIPE)
        step = len(data) // 20
        at = 0
        while at < len(data):
            end = data.find(b"\n", min(len(data) - 1, at + step)) + 1 or len(data)
            proc.stdin.write(data[at:end])
            proc.stdin.flush()
            at = end
            time.sleep(0.05)
        proc.stdin.close()
        proc.wait(30)
        rotated = [n for n in os.listdir(log_dir) if n.startswith("@")]
        checks.check("multilog rotated several times", len(rotated) >= 5, f"{len(rotated)} files")
        total = truth["lines"]
        lm.wait_until(lambda: lines_read(ms) >= total, 60)
        time.sleep(0.5)  # nothing more may come
        noise = truth["lines_by_kind"]["noise"]
        checks.equal("every line parsed once",
                      ms.metric('mailscope_log_lines_total{format="qmail",result="parsed"}'),
                      total - noise)
        checks.equal("the noise lines counted as unparsed",
                      ms.metric('mailscope_log_lines_total{format="qmail",result="unparsed"}'),
                      noise)
        checks.check("rotations followed",
                     (ms.metric('mailscope_log_rotations_total{log="qmail"}') or 0) >= len(rotated),
                     str(ms.metric('mailscope_log_rotations_total{log="qmail"}')))
        checks.equal("no rotation lost", ms.metric('mailscope_log_lost_rotations_total{log="qmail"}'),
                     0)
        series = verdict_series(ms.http("/metrics").body)
        checks.equal("mailscope_qmail_smtpd_total per verdict equals the truth", series,
                     truth["smtpd_verdicts"])
    finally:
        ms.stop()


def records_of(data_dir: str) -> list[tuple]:
    """(line offset, time, event, fields) of every record, in line order. The
    origin's stream depends on the file's path, which differs between runs."""
    db = sqlite3.connect(f"file:{data_dir}/records.sqlite?mode=ro", uri=True)
    try:
        return db.execute("SELECT origin_seq, time, event, fields FROM events "
                          "ORDER BY origin_seq").fetchall()
    finally:
        db.close()


def record_count(data_dir: str) -> int:
    try:
        db = sqlite3.connect(f"file:{data_dir}/records.sqlite?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return -1


def sigkill_part(checks: lm.Checks, binary: str, work: str) -> None:
    path = os.path.join(work, "big.log")
    truth = generate(path, 300_000, 12, "tai64n")
    parsed_lines = truth["lines"] - truth["lines_by_kind"]["noise"]
    config = logs_config(path, records=True)

    # One run, uninterrupted.
    whole = lm.Mailscope(binary, os.path.join(work, "ms-whole"), config)
    whole.start()
    lm.wait_until(lambda: record_count(whole.data_dir) >= parsed_lines, 180)
    checks.equal("uninterrupted: every parsed line is a record", whole.stop(), 0)
    expected = records_of(whole.data_dir)
    checks.equal("uninterrupted: records", len(expected), parsed_lines)

    # Killed a third of the way, then started again. Its copy of the log has
    # only the first 60 % of the lines until then, so that the kill falls in
    # the middle however fast the reading; the rest is appended while it is
    # down.
    with open(path, "rb") as f:
        data = f.read()
    cut = data.find(b"\n", len(data) * 6 // 10) + 1
    growing = os.path.join(work, "growing", "big.log")
    os.makedirs(os.path.dirname(growing))
    with open(growing, "wb") as f:
        f.write(data[:cut])
    killed = lm.Mailscope(binary, os.path.join(work, "ms-killed"), logs_config(growing, True))
    killed.start()
    # A third read, and a position saved since (so that the restart has one
    # to go on from); the kill then falls between two saves.
    lm.wait_until(lambda: lines_read(killed) >= truth["lines"] // 3, 120)
    saved = killed.metric('mailscope_log_checkpoints_total{log="qmail"}') or 0
    # (All that is there may have been read and saved already: then no new
    # save comes, and the last one stands.)
    lm.wait_until(lambda: (killed.metric('mailscope_log_checkpoints_total{log="qmail"}') or 0)
                  > saved, 10)
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait()
    state_path = os.path.join(killed.data_dir, "logs", "qmail.state")
    with open(state_path, encoding="utf-8", errors="replace") as f:
        position = next(l for l in f if l.startswith("position "))
    offset = int(position.split(":")[3])
    checks.check("the saved position is inside the file", 0 < offset < len(data),
                 f"offset {offset} of {len(data)}")
    at_kill = record_count(killed.data_dir)
    checks.check("killed before the end", 0 < at_kill < parsed_lines, f"{at_kill} records")
    with open(growing, "ab") as f:
        f.write(data[cut:])
    os.rename(killed.log_path, killed.log_path + ".1")
    restarted = lm.Mailscope.__new__(lm.Mailscope)
    restarted.__dict__.update(killed.__dict__)
    restarted.proc = None
    restarted.http_address = None
    restarted.start()
    lm.wait_until(lambda: record_count(restarted.data_dir) >= parsed_lines, 180)
    time.sleep(1)  # a duplicate would come now
    checks.equal("restarted: clean stop", restarted.stop(), 0)
    got = records_of(restarted.data_dir)
    checks.equal("after SIGKILL and restart: as many records", len(got), len(expected))
    same = got == expected
    if not same:
        for a, b in zip(got, expected):
            if a != b:
                print(f"first difference:\n  got      {a}\n  expected {b}")
                break
    checks.check("after SIGKILL and restart: the same records, row for row", same)
    ends = sum(1 for r in got if r[2] == "tcpserver::end" and '"duration"' in r[3])
    checks.check("sessions stitched across the restart", ends > 0, f"{ends} session ends")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailscope", required=True)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    checks = lm.Checks()
    work = tempfile.mkdtemp(prefix="mailscope-qmail-logs-")
    try:
        multilog_part(checks, args.mailscope, work)
        sigkill_part(checks, args.mailscope, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return checks.summary("qmail logs")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
