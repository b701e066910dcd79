#!/usr/bin/env python3
"""Event exporters and the ingest of Dovecot's own exports, with real Dovecot.

Two private loopback Dovecot 2.3.19 instances:
  * "writer" sends its events to mailscope's stats-writer. mailscope's config
    (event_exporter and metric blocks in Dovecot's syntax) exports failed
    logins as JSON to a file, good logins as tab-text to a UNIX socket and
    LMTP deliveries as JSON over HTTP POST to a sink started here; the
    exported bytes must have Dovecot's formats, with the metric's fields and
    exporter_include applied, and /metrics must count them as sent.
  * "posting" keeps Dovecot's own stats process, whose http-post
    event_exporter posts JSON to mailscope's POST /dovecot/events; mailscope
    must count those events in its metrics (doveadm stats dump) and stream
    them to `mailscope tail --format json`.
Bad bodies posted by hand get 400/415 and are counted as rejections.

Usage: dovecot_exporters_test.py --mailscope PATH [--keep]. Exits 0 on
success, 1 on failure, 77 when not root or Dovecot is not installed.
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import lib_dovecot as ld
import lib_mailscope as lm

WRITER_LINK = "mailscope-stats-writer"


class HttpSink:
    """Records every POST (path, content type, body) and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.posts.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class UnixSink:
    """A UNIX stream listener that keeps every line each peer sends."""

    def __init__(self, path: str) -> None:
        self.lines: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.lines.append(line.decode())

    def close(self) -> None:
        self.sock.close()


def exporter_blocks(file_path: str, unix_path: str, http_port: int) -> str:
    return f"""\
event_exporter failures_file {{
  format = json
  format_args = time-rfc3339
  transport = file
  transport_args = {file_path}
}}
event_exporter logins_unix {{
  format = tab-text
  format_args = time-unix
  transport = unix
  transport_args = {unix_path}
}}
event_exporter deliveries_http {{
  format = json
  format_args = time-unix
  transport = http-post
  transport_args = http://127.0.0.1:{http_port}/deliveries
  transport_timeout = 2 secs
}}
metric auth_success {{
  filter = event=auth_request_finished AND success=yes
  exporter = logins_unix
}}
metric auth_failure {{
  filter = event=auth_request_finished AND NOT success=yes
  exporter = failures_file
  exporter_include = name timestamps fields
}}
metric mail_delivery {{
  filter = event=mail_delivery_finished
  fields = message_size
  exporter = deliveries_http
}}
"""


CONFIG = """\
[stats]
dovecot_config = "dovecot-stats.conf"

# What the posting Dovecot exports to POST /dovecot/events.
[metrics.posted_logins]
filter = "event=auth_request_finished AND user=carol* AND success=yes"

[metrics.posted_commands]
filter = "event=imap_command_finished AND user=carol*"
group_by = "cmd_name"
"""


def posting_blocks(mailscope_http: str) -> str:
    return f"""
event_exporter mailscope {{
  format = json
  format_args = time-rfc3339
  transport = http-post
  transport_args = http://{mailscope_http}/ingest/dovecot
  transport_timeout = 2 secs
}}
metric posted_auth {{
  filter = event=auth_request_finished
  exporter = mailscope
}}
metric posted_imap {{
  filter = event=imap_command_finished
  exporter = mailscope
}}
"""


class DovecotExportersTest:
    def __init__(self, binary: str, root: str) -> None:
        self.c = lm.Checks()
        self.root = root
        self.ms = lm.Mailscope(binary, os.path.join(root, "mailscope"),
                               config=CONFIG + ld.mailscope_settings())
        self.http = HttpSink()
        self.file_path = os.path.join(self.ms.root, "failures.json")
        self.unix_path = os.path.join(self.ms.root, "logins.sock")
        self.unix = UnixSink(self.unix_path)
        with open(os.path.join(self.ms.root, "dovecot-stats.conf"), "w") as f:
            f.write(exporter_blocks(self.file_path, self.unix_path, self.http.port))
        self.alice = ld.MailUser("alice@example.com", "alice-pw")
        self.carol = ld.MailUser("carol@example.net", "carol-pw")
        self.writer = ld.StatsDovecot(os.path.join(root, "writer"), [self.alice], WRITER_LINK,
                                      lmtp=True)
        self.posting: ld.StatsDovecot | None = None

    def dump(self) -> dict[str, int]:
        """metric -> count, from the real doveadm against mailscope."""
        r = subprocess.run(["doveadm", "-c", self.writer.config_path, "stats", "dump",
                            "-s", os.path.join(self.ms.run_dir, "stats-reader")],
                           capture_output=True, text=True, timeout=30)
        counts = {}
        for line in r.stdout.splitlines()[1:]:
            cols = line.split("\t")
            if cols[1] == "duration":
                counts[cols[0]] = int(cols[2])
        return counts

    def post(self, content_type: str, body: bytes, path: str = "/dovecot/events") -> int:
        req = urllib.request.Request(f"http://{self.ms.http_address}{path}",
                                     data=body, method="POST",
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def run(self) -> None:
        c = self.c
        self.ms.start()
        self.writer.install()
        self.writer.link_writer(os.path.join(self.ms.run_dir, "stats-writer"))
        self.writer.start()

        # ---- exporters: mailscope exports what the writer Dovecot sends it.
        ld.imap_login(self.writer.imap_port, self.alice).logout()
        c.check("the writer Dovecot refuses a wrong password with NO",
                *ld.imap_login_refusal(self.writer.imap_port,
                                       ld.MailUser(self.alice.name, "wrong")))
        message = "From: carol@example.net\r\nSubject: hi\r\n\r\nhello\r\n"
        c.equal("LMTP delivers", ld.lmtp_deliver(self.writer.lmtp_port, "carol@example.net",
                                                 [self.alice.name], message), {})

        def file_lines() -> list[str]:
            if not os.path.exists(self.file_path):
                return []
            with open(self.file_path) as f:
                return f.read().splitlines()

        lm.wait_until(lambda: file_lines() and self.unix.lines and self.http.posts, 20.0)
        lines = file_lines()
        c.equal("file exporter: one line per failed login", len(lines), 1, "\n".join(lines))
        event = json.loads(lines[0]) if lines else {}
        c.equal("file exporter: JSON keys in Dovecot's order, as exporter_include says",
                list(event), ["event", "start_time", "end_time", "fields"])
        c.equal("file exporter: the event name", event.get("event"), "auth_request_finished")
        c.check("file exporter: RFC 3339 times",
                str(event.get("start_time", "")).endswith("Z") and "T" in event.get("end_time", ""),
                str(event))
        c.equal("file exporter: the user field", event.get("fields", {}).get("user"),
                self.alice.name)
        c.check("file exporter: no success field on a failure",
                event.get("fields", {}).get("success") != "yes", str(event))

        c.equal("unix exporter: one line per good login", len(self.unix.lines), 1,
                "\n".join(self.unix.lines))
        items = self.unix.lines[0].split("\t") if self.unix.lines else []
        c.check("unix exporter: tab-text with name, hostname, unix times, categories, fields",
                items[:1] == ["event:auth_request_finished"] and items[1].startswith("hostname:")
                and items[2].startswith("start_time:") and "." in items[2]
                and "category:auth" in items and "field:success=yes" in items
                and f"field:user={self.alice.name}" in items, str(items))

        c.equal("http-post exporter: one POST per delivery", len(self.http.posts), 1)
        path, ctype, body = self.http.posts[0] if self.http.posts else ("", "", b"{}")
        c.equal("http-post exporter: the URL's path", path, "/deliveries")
        c.equal("http-post exporter: Content-Type", ctype, "application/json")
        posted = json.loads(body)
        c.equal("http-post exporter: only the metric's fields",
                list(posted.get("fields", {})), ["message_size"])
        c.check("http-post exporter: unix times are bare numbers",
                isinstance(posted.get("start_time"), float), str(posted))

        metrics = self.ms.http("/metrics").body
        for name in ("failures_file", "logins_unix", "deliveries_http"):
            line = f'mailscope_exporter_events_total{{exporter="{name}",result="sent"}} 1'
            c.check(f"/metrics counts {name}'s event as sent", line in metrics,
                    "\n".join(ln for ln in metrics.splitlines() if "exporter_events" in ln))

        # ---- ingest: Dovecot's own stats process posts to mailscope.
        self.posting = ld.StatsDovecot(os.path.join(self.root, "posting"), [self.carol], None,
                                       extra=posting_blocks(self.ms.http_address))
        self.posting.install()
        self.posting.start()
        tail = subprocess.Popen(
            [self.ms.binary, "tail", "--run-dir", self.ms.run_dir, "--format", "json", "-n", "1",
             "--timeout", "30", "--filter",
             "event=imap_command_finished AND cmd_name=SELECT AND user=carol*"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        client = ld.imap_login(self.posting.imap_port, self.carol)
        client.select("INBOX")
        client.logout()
        c.check("the posting Dovecot refuses a wrong password with NO",
                *ld.imap_login_refusal(self.posting.imap_port,
                                       ld.MailUser(self.carol.name, "wrong")))
        ok = lm.wait_until(lambda: self.dump().get("posted_commands", 0) >= 2, 20.0)
        counts = self.dump()
        c.check("posted events reach mailscope's metrics", ok, str(counts))
        c.equal("posted_logins counts carol's good login", counts.get("posted_logins"), 1)
        c.equal("posted_commands: SELECT", counts.get("posted_commands_SELECT"), 1)
        c.equal("posted_commands: LOGOUT", counts.get("posted_commands_LOGOUT"), 1)
        try:
            out, err = tail.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            tail.kill()
            out, err = tail.communicate()
        c.equal("tail --format json exits 0 after one event", tail.returncode, 0, err)
        try:
            tailed = json.loads(out)
        except ValueError:
            tailed = {}
        c.check("tail --format json streams the posted SELECT as Dovecot's JSON",
                tailed.get("event") == "imap_command_finished"
                and tailed.get("fields", {}).get("cmd_name") == "SELECT"
                and "hostname" in tailed and "categories" in tailed, out)

        # ---- bad bodies.
        c.equal("a body that is not JSON gets 400", self.post("application/json", b"{nope"), 400)
        c.equal("a JSON body without an event name gets 400",
                self.post("application/json", b'{"fields":{}}'), 400)
        c.equal("an unknown content type gets 415", self.post("image/png", b"\x89PNG"), 415)
        c.equal("a tab-text body is accepted",
                self.post("text/plain", b"event:posted_by_hand\tfield:user=carol@example.net"), 204)
        c.equal("POST /ingest/dovecot is the same route",
                self.post("text/plain", b"event:posted_by_hand\tfield:user=dave@example.net",
                          "/ingest/dovecot"), 204)
        req = urllib.request.Request(f"http://{self.ms.http_address}/dovecot/events")
        try:
            urllib.request.urlopen(req, timeout=5)
            code = 200
        except urllib.error.HTTPError as e:
            code = e.code
        c.equal("GET /dovecot/events gets 405", code, 405)
        metrics = self.ms.http("/metrics").body
        for reason in ("bad_json", "missing_event", "unsupported_content_type"):
            line = f'mailscope_ingest_rejected_total{{source="dovecot",reason="{reason}"}} 1'
            c.check(f"/metrics counts the {reason} rejection", line in metrics,
                    "\n".join(ln for ln in metrics.splitlines() if "rejected" in ln))
        c.check("/metrics counts the hand-posted event",
                'mailscope_events_total{source="dovecot",event="posted_by_hand"} 2' in metrics)

    def cleanup(self) -> None:
        if self.posting is not None:
            self.posting.stop()
        self.writer.stop()
        rc = self.ms.stop()
        self.c.equal("mailscope exits 0 on SIGTERM", rc, 0)
        self.http.close()
        self.unix.close()

    def print_logs(self) -> None:
        paths = [self.ms.log_path, self.writer.log_path]
        if self.posting is not None:
            paths.append(self.posting.log_path)
        lm.print_log_tails(paths)


def main(argv: list[str]) -> int:
    return ld.run_dovecot_test(argv, __doc__, "mailscope-dovecot-exporters-", "dovecot exporters", DovecotExportersTest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
