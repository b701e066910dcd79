#!/usr/bin/env python3
"""Black-box test of `mailscope top` against a running `mailscope serve`.

    top_test.py --mailscope PATH [--keep]

Feeds CONNECT and UPDATE-SESSION lines for two sessions (old-stats FIFO
format, payload = base64 of b"mail\\0" + the x86_64 struct mail_stats) into
RUN_DIR/old-stats-mail, then checks
  * `top -b -n 2 -d 0.5 cpu`: two frames, the header columns, both users,
    sorted by CPU;
  * `top -b -n 2 -d 1 cpu` with an update between the frames: the second frame
    shows per-second rates and is re-sorted;
  * the default sort (disk), `--help`, and an error for a missing socket;
  * the full-screen view under tmux (private server socket): it draws both
    users, quits on 'q' with exit code 0 and leaves the terminal as it was.
    Skipped with a note when tmux is not installed (a failed check under
    MAILSCOPE_REQUIRE_INTEGRATION=1).

Prints one PASS/FAIL line per check, exits 1 on any failure. Needs neither
root nor Dovecot.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_mailscope as lm  # noqa: E402

HEADER = ["USER", "SERVICE", "IP", "%CPU", "%SYS", "DISKIN/s", "DISKOUT/s",
          "CMDS/s", "READ/s", "WRITE/s"]

# Session ids sort opposite to the CPU order, and the higher-CPU session has
# the lower disk figures, so neither id order nor disk order passes for a
# CPU sort.
ALICE_SESSION = "zzzzAliceSess001"
BOB_SESSION = "AAAABobSession01"

# Figures every fed session carries besides CPU, disk and I/O bytes.
BACKGROUND = {
    "clock_time": 1000, "min_faults": 100, "vol_cs": 10, "invol_cs": 2,
    "read_count": 5, "write_count": 6, "mail_lookup_path": 1,
    "mail_read_count": 1, "mail_read_bytes": 30, "mail_cache_hits": 1}


def update(session: str, **figures: int) -> str:
    """An UPDATE-SESSION line: the given figures on top of BACKGROUND."""
    payload = lm.mail_payload(**{**BACKGROUND, **figures})
    return f"UPDATE-SESSION\t{session}\t{payload}\n"


# ---- parsing `top -b` output -------------------------------------------------


def parse_frames(text: str) -> list[dict]:
    """Frames of batch output: title, header words and rows keyed by user.

    A row is USER SERVICE IP and seven numbers; the test gives every session
    an IP, so whitespace splitting is unambiguous.
    """
    frames = []
    for chunk in text.strip("\n").split("\n\n"):
        lines = chunk.split("\n")
        if len(lines) < 2:
            continue
        rows = []
        for line in lines[2:]:
            words = line.split()
            rows.append({"user": words[0], "words": words,
                         "cpu": float(words[3]) if len(words) == 10 else None,
                         "sys": float(words[4]) if len(words) == 10 else None})
        frames.append({"title": lines[0], "header": lines[1].split(),
                       "rows": rows})
    return frames


def users(frame: dict) -> list[str]:
    return [r["user"] for r in frame["rows"]]


def row(frame: dict, user: str) -> dict:
    return next((r for r in frame["rows"] if r["user"] == user),
                {"cpu": None, "sys": None, "words": []})


# ---- the test --------------------------------------------------------------


class TopTest:
    def __init__(self, binary: str, root: str) -> None:
        self.binary = binary
        self.root = root
        self.serve = lm.Mailscope(binary, os.path.join(root, "mailscope"))
        self.run_dir = self.serve.run_dir
        self.c = lm.Checks()
        self.tmux_socket = os.path.join(root, "tmux.sock")
        self.tmux_started = False

    def top(self, *args: str, timeout: float = 15.0
            ) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "top", *args], capture_output=True,
                              text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def feed(self, lines: list[str]) -> None:
        lm.write_fifo(self.serve.mail_fifo, lines)

    def wait_sessions(self, n: int) -> bool:
        """Until `top -b -n 1` lists n sessions (the FIFO is read async)."""
        def ready() -> bool:
            out = self.top("-b", "-n", "1", "--run-dir", self.run_dir).stdout
            frames = parse_frames(out)
            return bool(frames) and len(frames[0]["rows"]) >= n
        return lm.wait_until(ready, 5.0, 0.1)

    def run(self) -> None:
        c = self.c
        h = self.top("--help")
        c.check("top --help exits 0 and describes the sort fields",
                h.returncode == 0 and "cpu" in h.stdout and "disk" in h.stdout,
                f"rc {h.returncode}: {h.stdout}{h.stderr}")
        missing = self.top("-b", "-n", "1", "--run-dir",
                           os.path.join(self.root, "nowhere"))
        c.check("top without a server fails with a message on stderr",
                missing.returncode != 0 and missing.stderr.strip() != "",
                f"rc {missing.returncode}: {missing.stderr!r}")

        self.serve.start()
        self.feed([
            f"CONNECT\t{ALICE_SESSION}\talice@example.com\timap\t101"
            "\tlip=127.0.0.1\trip=10.0.0.1\n",
            f"CONNECT\t{BOB_SESSION}\tbob@example.org\tpop3\t102"
            "\tlip=127.0.0.1\trip=10.0.0.2\n",
            update(ALICE_SESSION, user_cpu=200_000, sys_cpu=50_000,
                   disk_input=1024, read_bytes=4096, write_bytes=512),
            update(BOB_SESSION, user_cpu=10_000, disk_input=4 << 20,
                   disk_output=1 << 20, read_bytes=8192, write_bytes=2048)])
        c.check("both sessions are visible to top", self.wait_sessions(2),
                self.serve.log_text())
        self.check_batch()
        self.check_default_sort()
        self.check_interactive()
        # Last: it changes the figures the checks above expect.
        self.check_rates()

    def check_batch(self) -> None:
        c = self.c
        p = self.top("-b", "-n", "2", "-d", "0.5", "--run-dir", self.run_dir,
                     "cpu")
        c.equal("top -b -n 2 -d 0.5 cpu exits 0", p.returncode, 0)
        frames = parse_frames(p.stdout)
        if not c.equal("two frames printed", len(frames), 2):
            print(p.stdout + p.stderr)
            return
        for i, frame in enumerate(frames, 1):
            c.equal(f"frame {i}: header columns", frame["header"], HEADER)
            c.check(f"frame {i}: title names the count and the sort",
                    "2 connected sessions" in frame["title"] and
                    "sort: cpu" in frame["title"], frame["title"])
            c.equal(f"frame {i}: lists both users", sorted(users(frame)),
                    ["alice@example.com", "bob@example.org"])
        first = frames[0]
        c.equal("frame 1: sorted by CPU, busiest first", users(first),
                ["alice@example.com", "bob@example.org"])
        alice, bob = row(first, "alice@example.com"), row(first,
                                                          "bob@example.org")
        c.check("frame 1: service and IP columns",
                alice["words"][1:3] == ["imap", "10.0.0.1"] and
                bob["words"][1:3] == ["pop3", "10.0.0.2"],
                f"{alice['words']} / {bob['words']}")
        # Rates over the same interval keep the fed ratios: user_cpu 0.2 s vs
        # 0.01 s, sys_cpu 0.05 s vs 0.
        c.check("frame 1: %CPU reflects user_cpu (20:1)",
                bool(alice["cpu"]) and bool(bob["cpu"]) and
                abs(alice["cpu"] / bob["cpu"] - 20) < 0.5,
                f"alice {alice['cpu']}, bob {bob['cpu']}")
        c.check("frame 1: %SYS reflects sys_cpu",
                bool(alice["sys"]) and bob["sys"] == 0.0 and
                abs(alice["sys"] / alice["cpu"] - 0.25) < 0.01,
                f"alice {alice['sys']}, bob {bob['sys']}")
        second = frames[1]
        c.check("frame 2: nothing changed, so the rates are 0",
                all(r["cpu"] == 0.0 and r["sys"] == 0.0
                    for r in second["rows"]), f"{second['rows']}")

    def check_rates(self) -> None:
        """An update between two frames: the second frame shows its rate."""
        c = self.c
        proc = subprocess.Popen(
            [self.binary, "top", "-b", "-n", "2", "-d", "1", "--run-dir",
             self.run_dir, "cpu"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            first = []
            while True:
                line = proc.stdout.readline()
                if line in ("", "\n"):
                    break
                first.append(line)
            # Cumulative totals: bob gains 0.5 s user CPU, alice 0.1 s.
            self.feed([
                update(ALICE_SESSION, user_cpu=300_000, sys_cpu=50_000,
                       disk_input=1024, read_bytes=4096, write_bytes=512),
                update(BOB_SESSION, user_cpu=510_000, disk_input=4 << 20,
                       disk_output=1 << 20, read_bytes=8192,
                       write_bytes=2048)])
            rest, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        c.equal("top -b -n 2 -d 1 cpu exits 0", proc.returncode, 0)
        frames = parse_frames("".join(first) + "\n" + rest)
        if not c.equal("two frames around the update", len(frames), 2):
            print("".join(first) + rest + err)
            return
        c.equal("frame 1 (before the update): alice first",
                users(frames[0]), ["alice@example.com", "bob@example.org"])
        second = frames[1]
        c.equal("frame 2 (after the update): re-sorted, bob first",
                users(second), ["bob@example.org", "alice@example.com"])
        bob, alice = row(second, "bob@example.org"), row(second,
                                                         "alice@example.com")
        # 0.5 s of CPU over a bit more than the 1 s interval.
        c.check("frame 2: %CPU is the per-second rate of the change",
                bob["cpu"] is not None and 30.0 <= bob["cpu"] <= 51.0 and
                alice["cpu"] is not None and 6.0 <= alice["cpu"] <= 10.5,
                f"bob {bob['cpu']}, alice {alice['cpu']}")

    def check_default_sort(self) -> None:
        c = self.c
        p = self.top("-b", "-n", "1", "-d", "0.5", "--run-dir", self.run_dir)
        frames = parse_frames(p.stdout)
        c.check("default sort is disk: bob (more disk I/O) first",
                p.returncode == 0 and len(frames) == 1 and
                "sort: disk" in frames[0]["title"] and
                users(frames[0]) == ["bob@example.org", "alice@example.com"],
                p.stdout + p.stderr)

    # ---- full-screen view under tmux ---------------------------------------

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.tmux_socket, *args],
                              capture_output=True, text=True, timeout=10,
                              env={**os.environ, "TERM": "xterm"})

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top").stdout

    def pane_flags(self) -> str:
        return self.tmux("display-message", "-p", "-t", "top",
                         "#{alternate_on} #{cursor_flag}").stdout.strip()

    def check_interactive(self) -> None:
        c = self.c
        if shutil.which("tmux") is None:
            c.skip_part("interactive top", "tmux not installed; the batch checks above"
                        " still count")
            return
        rc_file = os.path.join(self.root, "top.rc")
        before = os.path.join(self.root, "stty.before")
        after = os.path.join(self.root, "stty.after")
        top_cmd = " ".join(shlex.quote(a) for a in (
            self.binary, "top", "--run-dir", self.run_dir, "-d", "0.5", "cpu"))
        script = (f"stty -a > {shlex.quote(before)}; {top_cmd}; "
                  f"echo $? > {shlex.quote(rc_file)}; "
                  f"stty -a > {shlex.quote(after)}; exec sleep 60")
        new = self.tmux("new-session", "-d", "-s", "top", "-x", "120", "-y",
                        "30", "sh", "-c", script)
        if not c.equal("tmux session starts", new.returncode, 0):
            print(new.stderr)
            return
        self.tmux_started = True
        drawn = lm.wait_until(lambda: "alice@example.com" in self.screen() and
                              "bob@example.org" in self.screen(), 5.0)
        shown = self.screen()
        c.check("interactive: the view shows both users", drawn, shown)
        lines = shown.split("\n")
        c.check("interactive: title and header drawn",
                any(l.startswith("mailscope top") for l in lines) and
                any(l.split()[:3] == HEADER[:3] for l in lines if l.strip()),
                shown)
        at_alice = next((i for i, l in enumerate(lines)
                         if "alice@example.com" in l), -1)
        at_bob = next((i for i, l in enumerate(lines)
                       if "bob@example.org" in l), -1)
        c.check("interactive: sorted by CPU", 0 <= at_alice < at_bob,
                shown)
        c.check("interactive: runs on the alternate screen, cursor hidden",
                self.pane_flags() == "1 0", self.pane_flags())
        self.tmux("send-keys", "-t", "top", "q")
        quit_ok = lm.wait_until(lambda: os.path.exists(after), 5.0)
        c.check("interactive: 'q' quits", quit_ok, self.screen())
        if not quit_ok:
            return
        with open(rc_file, encoding="ascii") as f:
            c.equal("interactive: exit code 0", f.read().strip(), "0")
        with open(before, encoding="ascii") as f, \
                open(after, encoding="ascii") as g:
            c.equal("interactive: terminal modes restored (stty -a)",
                    g.read(), f.read())
        c.equal("interactive: normal screen and cursor back",
                self.pane_flags(), "0 1")
        c.check("interactive: the view is gone from the screen",
                "mailscope top" not in self.screen(), self.screen())

    # ---- teardown ----------------------------------------------------------

    def cleanup(self) -> None:
        if self.tmux_started:
            # The server on this test's own socket; other tmux servers are not
            # touched.
            self.tmux("kill-server")
        self.serve.stop()

    def print_logs(self) -> None:
        print("---- mailscope log ----")
        print(self.serve.log_text().rstrip() or "<empty>")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mailscope", required=True,
                   help="path to the mailscope binary")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory")
    args = p.parse_args(argv)
    binary = os.path.abspath(args.mailscope)
    if not os.access(binary, os.X_OK):
        print(f"FAIL: {binary} is not executable")
        return 1
    root = tempfile.mkdtemp(prefix="mailscope-top-")
    test = TopTest(binary, root)
    return lm.run_test(test, test.c, "mailscope top", root, args.keep)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
