#!/usr/bin/env python3
"""Stalwart's webhook POSTs against `mailscope serve`.

Stalwart is not packaged for Debian: the bodies are built exactly as the
reference describes them (lib_stalwart.py), and sent the way Stalwart sends
them, by real HTTP clients: Python's http.client on the loopback listener,
and curl over TLS on the [sources.stalwart] listen address with a
certificate made by openssl. Checks:
  * a full SMTP session, deliveries (delivered, deferred, failed), auth
    failures and one event of every catalog subsystem count in
    mailscope_events_total{source="stalwart"} under their v0.16 names, in
    both naming eras;
  * a re-sent batch counts once, a batch re-sent merged with newer events
    counts the newer ones only;
  * the signature (from openssl dgst, not from mailscope's code) is checked:
    missing 401, wrong 403, right 200; Basic (curl -u) and Bearer the same,
    on a second mailscope, whose new token a SIGHUP puts in force;
  * an oversize body is a 413, truncated JSON and wrong types a 400, each
    counted in mailscope_ingest_rejected_total and changing no other count;
  * the TLS listener refuses plain HTTP and takes curl's signed POST;
  * the shipped metrics come out on /metrics, which promtool's linter takes.

Usage: stalwart_webhook_test.py --mailscope PATH [--keep]. Exits 0 on
success, 1 on failure, 77 when curl or openssl is not installed.
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_mailscope as lm  # noqa: E402
import lib_stalwart as ls  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = "w3bh00k-signing-key"
T0 = 1_749_982_853


def post(address: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/ingest/stalwart", body=data,
                     headers=dict({"Content-Type": "application/json"}, **headers))
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    except OSError as err:  # a refused oversize body may reset the connection
        return -1, str(err)
    finally:
        conn.close()


def openssl_signature(data: bytes) -> str:
    out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", KEY, "-binary"], input=data,
                         capture_output=True, check=True).stdout
    return subprocess.run(["base64", "-w0"], input=out, capture_output=True,
                          check=True).stdout.decode()


def counts(serve: lm.Mailscope) -> dict[str, int]:
    """Every stalwart sample of mailscope_events_total and rejections."""
    out = {}
    for line in serve.http("/metrics").body.splitlines():
        if 'source="stalwart"' in line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = int(float(value))
    return out


def events(c: dict[str, int], name: str) -> int:
    return c.get(f'mailscope_events_total{{source="stalwart",event="{name}"}}', 0)


def rejected(c: dict[str, int], reason: str) -> int:
    return c.get(f'mailscope_ingest_rejected_total{{source="stalwart",reason="{reason}"}}', 0)


class StalwartTest:
    def __init__(self, c: lm.Checks, binary: str, work: str) -> None:
        self.c = c
        self.work = work
        self.tls_port = lm.free_port()
        self.make_cert()
        config = (
            "[sources.stalwart]\n"
            f'signature_key = "{KEY}"\n'
            "max_body_size = \"1M\"\n"
            "shipped_metrics = true\n"
            f'listen = "127.0.0.1:{self.tls_port}"\n'
            f'tls_certificate = "{os.path.join(work, "cert.pem")}"\n'
            f'tls_key = "{os.path.join(work, "key.pem")}"\n')
        self.serve = lm.Mailscope(binary, os.path.join(work, "mailscope"), config)
        self.others: list[lm.Mailscope] = []

    def make_cert(self) -> None:
        """A self-signed certificate for 127.0.0.1 and its key, new each time."""
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", os.path.join(self.work, "key.pem"),
                        "-out", os.path.join(self.work, "cert.pem")],
                       check=True, capture_output=True)

    def signed(self, data: bytes) -> tuple[int, str]:
        return post(self.serve.http_address, data, {"X-Signature": ls.signature(KEY, data)})

    def run(self) -> None:
        c = self.c
        self.serve.start()
        addr = self.serve.http_address
        s = ls.Stalwart(seed=7)

        session = s.smtp_session(T0, "203.0.113.5", "alice@example.net", "bob@example.org", 48213)
        data = ls.body(session)
        c.equal("Python's HMAC and openssl's agree", ls.signature(KEY, data),
                openssl_signature(data))
        status, reply = self.signed(data)
        c.equal("a signed SMTP session is taken", status, 200, reply)
        c.equal("the reply counts its events", reply.strip(), '{"events":7,"duplicates":0}')
        after = counts(self.serve)
        for name in ("smtp.connection-start", "smtp.ehlo", "smtp.mail-from", "smtp.rcpt-to",
                     "queue.message-queued", "message-ingest.ham", "smtp.connection-end"):
            c.equal(f"{name} counted once", events(after, name), 1)

        status, _ = self.signed(data)
        c.equal("the same batch re-sent is taken", status, 200)
        newer = s.delivery(T0 + 5, "alice@example.org", "carol@example.com", "mx1.example.com",
                           250, "2.0.0 Ok: queued as 4Xyz")
        status, reply = self.signed(ls.body(newer + session))
        c.equal("re-sent merged with newer events: only the newer count",
                reply.strip(), '{"events":3,"duplicates":7}')
        after = counts(self.serve)
        c.equal("the session still counts once", events(after, "smtp.connection-start"), 1)
        c.equal("the delivery counts", events(after, "delivery.delivered"), 1)

        # Deferred and failed deliveries; auth failures from two addresses.
        batch = (s.delivery(T0 + 10, "alice@example.org", "dave@slow.example", "mx.slow.example",
                            451, "4.7.1 Try again later")
                 + s.delivery(T0 + 11, "alice@example.org", "nobody@gone.example",
                              "mx.gone.example", 550, "5.1.1 User unknown")
                 + [s.auth_failure(T0 + 12, "198.51.100.7", "bob@example.org"),
                    s.auth_failure(T0 + 13, "198.51.100.7", "bob@example.org"),
                    s.auth_failure(T0 + 14, "192.0.2.99", "root")])
        status, _ = self.signed(ls.body(batch))
        c.equal("deliveries and auth failures are taken", status, 200)
        after = counts(self.serve)
        c.equal("two recipients rejected (451 and 550)", events(after, "delivery.rcpt-to-rejected"),
                2)
        c.equal("three auth failures", events(after, "auth.failed"), 3)
        c.equal("taxonomy: one delivery deferred", after.get(
            'mailscope_taxonomy_events_total{kind="delivery",outcome="deferred",source="stalwart"}'),
            1)
        c.equal("taxonomy: one delivery failed", after.get(
            'mailscope_taxonomy_events_total{kind="delivery",outcome="failed",source="stalwart"}'), 1)

        # The old era: ids collide within a second, names are the old ones.
        old = ls.Stalwart(era="0.12", seed=8)
        old_batch = [old.event(T0 + 20, "queue.message-queued", {"queueId": 1, "size": 10}),
                     old.event(T0 + 20, "queue.message-queued", {"queueId": 2, "size": 20})]
        c.equal("old-era ids collide", old_batch[0]["id"], old_batch[1]["id"])
        status, reply = self.signed(ls.body(old_batch))
        c.equal("old-era events with one id but other data both count", reply.strip(),
                '{"events":2,"duplicates":0}')
        after = counts(self.serve)
        c.equal("queue.queue-message counts as queue.message-queued",
                events(after, "queue.message-queued"), 3)

        # One event of every subsystem of the catalog.
        names = ls.catalog_subsystems(SOURCE_DIR)
        every = [s.event(T0 + 30, n, {"spanId": 1, "elapsed": 3}) for n in names]
        status, _ = self.signed(ls.body(every))
        c.equal(f"one event of each of the {len(names)} subsystems is taken", status, 200)
        after = counts(self.serve)
        missing = [n for n in names if events(after, n) < 1]
        c.check("every subsystem's event counts", not missing, ", ".join(missing))
        c.equal("no event is unknown to the catalog",
                after.get('mailscope_events_unknown_total{source="stalwart"}'), 0)

        self.refusals(after)
        self.tls(s)
        self.metrics()
        self.credentials()

    def refusals(self, before: dict[str, int]) -> None:
        c = self.c
        addr = self.serve.http_address
        s = ls.Stalwart(seed=9)
        data = ls.body([s.auth_failure(T0 + 40, "192.0.2.1", "eve")])
        cases = [
            ("no signature", post(addr, data, {}), 401, "missing_signature"),
            ("a wrong signature", post(addr, data, {"X-Signature": ls.signature("other", data)}),
             403, "bad_signature"),
            ("truncated JSON", self.signed(data[:-3]), 400, "bad_json"),
            ("wrong types", self.signed(b'{"events":[{"type":7}]}'), 400, "bad_event"),
            ("deeply nested values", self.signed(ls.body([s.event(
                T0, "smtp.ehlo", {"x": deep_list(17)})])), 400, "too_deep"),
        ]
        # curl, as Stalwart's client, sends a large body after `Expect: 100-continue`,
        # so the 413 comes before the body is sent.
        big = ls.body([s.event(T0, "smtp.ehlo", {"domain": "x" * 2_000_000})])
        path = os.path.join(self.work, "big.json")
        with open(path, "wb") as f:
            f.write(big)
        result = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H",
             f"X-Signature: {ls.signature(KEY, big)}", "--data-binary", f"@{path}",
             f"http://{addr}/ingest/stalwart"], capture_output=True, text=True, timeout=30)
        code = int(result.stdout) if result.stdout.isdigit() else -1
        cases.append(("an oversize body", (code, result.stderr), 413, "body_too_large"))
        for what, (status, reply), want, reason in cases:
            c.equal(f"{what}: {want}", status, want, reply)
        after = counts(self.serve)
        for what, _, _, reason in cases:
            c.equal(f"{what}: counted as {reason}", rejected(after, reason) - rejected(before, reason),
                    1)
        changed = {k: (before.get(k), v) for k, v in after.items()
                   if k.startswith("mailscope_events_total") and before.get(k) != v}
        c.check("refused bodies change no event count", not changed, str(changed))

    def tls(self, s: ls.Stalwart) -> None:
        c = self.c
        url = f"https://127.0.0.1:{self.tls_port}/ingest/stalwart"
        data = ls.body([s.auth_failure(T0 + 50, "198.51.100.77", "mallory")])
        path = os.path.join(self.work, "tls-body.json")
        with open(path, "wb") as f:
            f.write(data)
        result = subprocess.run(
            ["curl", "-sS", "--cacert", os.path.join(self.work, "cert.pem"), "-w", "\n%{http_code}",
             "-H", "Content-Type: application/json", "-H",
             f"X-Signature: {openssl_signature(data)}", "--data-binary", f"@{path}", url],
            capture_output=True, text=True, timeout=30)
        c.equal("curl's signed POST over TLS is taken", result.stdout.strip().split("\n")[-1],
                "200", result.stdout + result.stderr)
        plain = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--data-binary", f"@{path}",
                                url.replace("https", "http")],
                               capture_output=True, text=True, timeout=30)
        c.check("plain HTTP on the TLS listener gets no answer", plain.returncode != 0,
                plain.stdout + plain.stderr)
        c.equal("the failed handshake is counted", lm_sample(
            self.serve.http("/metrics").body,
            f'mailscope_listener_closed_total{{listener="https 127.0.0.1:{self.tls_port}",'
            'reason="tls_handshake"}'), 1)
        unsigned = subprocess.run(
            ["curl", "-sS", "--cacert", os.path.join(self.work, "cert.pem"), "-o", "/dev/null",
             "-w", "%{http_code}", "--data-binary", f"@{path}", url],
            capture_output=True, text=True, timeout=30)
        c.equal("an unsigned POST over TLS is a 401", unsigned.stdout, "401")
        metrics = subprocess.run(
            ["curl", "-sS", "--cacert", os.path.join(self.work, "cert.pem"), "-o", "/dev/null",
             "-w", "%{http_code}", url.replace("/ingest/stalwart", "/metrics")],
            capture_output=True, text=True, timeout=30)
        c.equal("the TLS listener serves the ingest route only", metrics.stdout, "404")
        c.equal("the TLS POST counted", events(counts(self.serve), "auth.failed"), 4)

        # A renewed certificate: new files under the same paths, then SIGHUP.
        old_cert = os.path.join(self.work, "old-cert.pem")
        shutil.copy(os.path.join(self.work, "cert.pem"), old_cert)
        self.make_cert()
        self.serve.proc.send_signal(signal.SIGHUP)
        lm.wait_until(lambda: "configuration reloaded" in self.serve.log_text(), 10)

        def status_with(ca: str) -> str:
            r = subprocess.run(
                ["curl", "-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                 "-H", f"X-Signature: {openssl_signature(data)}", "--data-binary", f"@{path}",
                 url], capture_output=True, text=True, timeout=30)
            return r.stdout
        c.equal("after SIGHUP the renewed certificate is served",
                status_with(os.path.join(self.work, "cert.pem")), "200")
        c.check("and the old one no longer", status_with(old_cert) != "200")

    def metrics(self) -> None:
        c = self.c
        body = self.serve.http("/metrics").body
        om = self.serve.http("/metrics", accept="application/openmetrics-text").body
        c.check("shipped: auth failures by IP", re.search(
            r'^mailscope_stalwart_auth_failures_by_ip_total\{remote_ip="198\.51\.100\.7"\} 2$', body,
            re.M) is not None)
        c.check("shipped: deliveries by outcome", re.search(
            r'^mailscope_stalwart_deliveries_total\{outcome="deferred"\} 1$', body, re.M)
            is not None)
        buckets = re.findall(
            r'^mailscope_stalwart_smtp_session_duration_bucket\{le="([^"]+)"\} (\d+)$', om, re.M)
        c.check("session durations as a histogram in seconds with cumulative buckets",
                bool(buckets) and [int(n) for _, n in buckets] == sorted(int(n) for _, n in buckets)
                and ("10" in [le for le, _ in buckets] or "10.0" in [le for le, _ in buckets]),
                str(buckets))
        # 7 + 7 from the re-sent session, 1 from the TLS POST sent again after the
        # certificate was renewed: both listeners share one dedup table.
        c.equal("dedup: duplicates counted", lm_sample(body, "mailscope_stalwart_duplicates_total"),
                15)
        promtool = shutil.which("promtool")
        if promtool is None:
            c.skip_part("promtool lints /metrics", "promtool not installed")
            return
        lint = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                              text=True)
        c.equal("promtool check metrics passes", lint.returncode, 0, lint.stdout + lint.stderr)

    def credentials(self) -> None:
        """Basic and Bearer as curl sends them (-u, -H), on a second mailscope that
        requires them, taking its credentials anew on SIGHUP."""
        c = self.c
        config = ('[sources.stalwart]\nusername = "stalwart"\nsecret = "s3cr:et"\n'
                  'token = "t0ken"\n')
        other = lm.Mailscope(self.serve.binary, os.path.join(self.work, "auth"), config)
        self.others.append(other)
        other.start()
        url = f"http://{other.http_address}/ingest/stalwart"
        path = os.path.join(self.work, "auth-body.json")
        s = ls.Stalwart(seed=11)
        with open(path, "wb") as f:
            f.write(ls.body([s.auth_failure(T0 + 60, "192.0.2.60", "trudy")]))

        def code(*args: str) -> str:
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--data-binary", f"@{path}", *args, url],
                               capture_output=True, text=True, timeout=30)
            return r.stdout
        c.equal("no credentials: 401", code(), "401")
        c.equal("curl -u with the right password: 200", code("-u", "stalwart:s3cr:et"), "200")
        c.equal("curl -u with a wrong password: 403", code("-u", "stalwart:wrong"), "403")
        c.equal("Bearer with the token: 200", code("-H", "Authorization: Bearer t0ken"), "200")
        c.equal("Bearer with another token: 403", code("-H", "Authorization: Bearer nope"), "403")
        # The same event twice with good credentials: counted once.
        c.equal("the auth failure counted once", lm_sample(
            other.http("/metrics").body,
            'mailscope_events_total{source="stalwart",event="auth.failed"}'), 1)
        c.equal("refusals counted by reason", [lm_sample(
            other.http("/metrics").body,
            f'mailscope_ingest_rejected_total{{source="stalwart",reason="{r}"}}')
            for r in ("missing_authorization", "bad_authorization")], [1, 2])
        # A new token on SIGHUP: the old one stops working at once.
        with open(other.config_path, "w", encoding="utf-8") as f:
            f.write('[sources.stalwart]\ntoken = "rotated"\n')
        other.proc.send_signal(signal.SIGHUP)
        lm.wait_until(lambda: "configuration reloaded" in other.log_text(), 10)
        c.equal("after a reload the old token is refused",
                code("-H", "Authorization: Bearer t0ken"), "403")
        c.equal("and the new one taken", code("-H", "Authorization: Bearer rotated"), "200")
        c.equal("Basic is no longer taken once the file drops it",
                code("-u", "stalwart:s3cr:et"), "403")

    def cleanup(self) -> None:
        self.serve.stop()
        for other in self.others:
            other.stop()

    def print_logs(self) -> None:
        lm.print_log_tails([self.serve.log_path] + [o.log_path for o in self.others])


def deep_list(levels: int) -> object:
    """[[...[1]...]] with `levels` arrays: more than a body may nest below data."""
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def lm_sample(body: str, name: str) -> int | None:
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
    return int(float(m.group(1))) if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailscope", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            return lm.skip(f"{tool} not installed")
    c = lm.Checks()
    work = tempfile.mkdtemp(prefix="mailscope-stalwart-")
    test = StalwartTest(c, args.mailscope, work)
    return lm.run_test(test, c, "stalwart webhook", work, args.keep)


if __name__ == "__main__":
    sys.exit(main())
