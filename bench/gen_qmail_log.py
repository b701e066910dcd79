#!/usr/bin/env python3
"""Writes a synthetic but realistic combined s/qmail log for benchmarks and parser tests.

The log is what a small ISP's mail host collects in one file over days: tcpserver -v lines of
the SMTP (25), submission (587) and POP3 (110) services, rblsmtpd refusals, s/qmail
qmail-smtpd verdict lines (Action::Type::Condition with P: S: H: F: T: fields), qmail-popup
verdicts, and qmail-send's queue lifecycle (new msg, info msg, starting delivery, delivery
results with logsafe reports, status, bounce, end msg), with retries of deferred deliveries,
domains that never answer, greylisting, PID reuse, interleaved concurrent sessions, a day/night
rhythm and occasional spam waves, plus a few lines of other dialects that a parser should count
as unparsed.

Output is a pure function of the arguments: the same --seed gives the same bytes, and a
shorter --lines/--bytes run is a prefix of a longer one with the same seed and --start.

  gen_qmail_log.py --lines 1000000 -o qmail.log --truth qmail.truth.json
  gen_qmail_log.py --bytes 1G --prefix s6 > qmail.log

--truth writes the exact counts of what was written (per line kind, per verdict, messages,
deliveries, noise) as JSON.
"""

import argparse
import bisect
import heapq
import ipaddress
import itertools
import json
import math
import random
import sys
import time

NS = 1_000_000_000
TAI_OFFSET = 0x4000000000000000 + 10   # tai64n label = unix seconds + 2^62 + 10
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The mail host.
MX_NAME = "mx.example.org"
MX_IP4 = "192.0.2.25"
MX_IP6 = "2001:db8:25::25"
POP_NAME = "pop.example.org"
POP_IP4 = "192.0.2.26"
POP_IP6 = "2001:db8:25::26"
SYSLOG_HOST = "mx"
QMAILD_UID = 7791
QMAILS_UID = 7796
LOCAL_LIMIT = 10
REMOTE_LIMIT = 20
QUEUE_LIFETIME = 604800      # qmail's default queuelifetime, seconds
PID_MAX = 32768

BIG_PROVIDERS = ["gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de", "hotmail.com",
                 "t-online.de", "icloud.com", "aol.com", "mail.ru", "yandex.ru", "orange.fr",
                 "free.fr", "libero.it", "gmx.net", "protonmail.com", "qq.com", "163.com"]
TLDS = ["com", "com", "com", "net", "net", "org", "de", "de", "fr", "it", "nl", "ru", "pl",
        "co.uk", "info", "biz", "br", "jp", "es", "ch", "at", "be", "cz", "se", "io", "us"]
SYLL = ["ka", "ro", "mi", "ta", "ne", "lo", "ver", "san", "tel", "mar", "kon", "bi", "do",
        "ra", "lu", "pe", "sol", "tri", "gen", "ax", "vi", "no", "ze", "fa", "qu", "el", "or",
        "in", "net", "com", "ly", "ster", "berg", "wald", "feld", "haus", "mont", "ville"]
FIRST = ["anna", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "karl", "lena", "mike", "nina", "oscar", "paula", "quinn", "rita", "sam", "tina",
         "uwe", "vera", "walt", "xena", "yves", "zoe", "peter", "maria", "thomas", "julia",
         "stefan", "sabine", "jan", "eva", "michael", "claudia", "andreas", "petra", "markus",
         "monika", "klaus", "ute", "juergen", "birgit", "tobias", "katrin", "lukas", "sophie"]
LAST = ["mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
        "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "neumann", "schwarz", "braun",
        "zimmermann", "krueger", "hartmann", "lange", "werner", "krause", "lehmann", "smith",
        "jones", "brown", "miller", "davis", "garcia", "martin", "bernard", "rossi", "russo"]
ROLE = ["info", "office", "kontakt", "sales", "support", "admin", "billing", "hr", "jobs",
        "service", "team", "mail", "post", "buchhaltung", "verkauf", "technik"]
GUESS = ["admin", "info", "test", "user", "postmaster", "sales", "support", "webmaster",
         "office", "root", "contact", "mail", "test1", "guest", "backup", "scanner", "noreply",
         "marketing", "abuse", "hello", "demo", "oracle", "ftp", "www", "print", "a", "b"]
BOT_HELOS = ["User", "localhost", "ylmf-pc", "windows", "WIN-{rnd}", "DESKTOP-{rnd}",
             "{ip}", "[{ip}]", "example.org", "mx.example.org", "{word}.com", "{word}",
             "mail.{word}.{tld}", "smtp.{word}.{tld}", "{rnd}.local", "ADMIN", "PC-{rnd}"]
BAD_HELO_CLASS = ["0", "!", ".", "*", "=", "M"]
BAD_MAILFROM_CLASS = ["@", "~", "=", "-", "+", "*"]
VIRUS_SCANNERS = ["clamdscan", "clamdscan", "clamdscan", "clamd", "sophie"]
BAD_MIME = ["TVqQAAMAA", "TVpQAAIAA", "UEsDBBQAA", "TVqAAAEAA"]
BAD_LOADER = ["TVqQAAMAAAAEAAAA//8AALgA", "TVpQAAIAAAAEAA8A//8AALgA"]
RBL_REASONS = [
    ("451", "Blocked - see https://www.spamhaus.org/query/ip/{ip}", 60),
    ("451", "Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org", 12),
    ("451", "Listed by PSBL, see https://psbl.org/listing?ip={ip}", 8),
    ("451", "https://www.spamcop.net/bl.shtml?{ip}", 8),
    ("451", "Your IP {ip} is listed in bl.mailspike.net", 4),
    ("451", "temporary RBL lookup error", 2),
    ("553", "Rejected: listed in local blocklist", 4),
    ("553", "Blocked: {ip} is a known dial-up address", 2),
]


def logsafe(text):
    """qmail-send's logsafe: newline -> '/', any byte outside 33..126 or '%' -> '_'."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("/")
        elif ch == "%" or not 33 <= ord(ch) <= 126:
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class Zipf:
    """Draws items with Zipf-like skew (rank r has weight 1/r^s) from a precomputed table."""

    def __init__(self, rng, items, s, bits=18):
        weights = [1.0 / (r + 1) ** s for r in range(len(items))]
        idx = rng.choices(range(len(items)), weights=weights, k=1 << bits)
        self.table = [items[i] for i in idx]
        self.bits = bits
        self.rb = rng.getrandbits

    def pick(self):
        return self.table[self.rb(self.bits)]


class Weighted:
    def __init__(self, rng, pairs):
        self.items = [p[0] for p in pairs]
        total = 0.0
        self.cum = []
        for _, w in pairs:
            total += w
            self.cum.append(total)
        self.total = total
        self.random = rng.random

    def pick(self):
        return self.items[bisect.bisect_right(self.cum, self.random() * self.total)]


class Inst:
    """One tcpserver instance: its local endpoint, concurrency limit and live children."""

    def __init__(self, name, host, ip4, ip6, port, limit):
        self.name, self.host, self.ip4, self.ip6 = name, host, ip4, ip6
        self.port, self.limit, self.n = port, limit, 0


class Msg:
    __slots__ = ("mid", "origin", "sender", "nbytes", "qp", "uid", "failed", "rcpts")

    def __init__(self, origin, sender, nbytes, qp, uid):
        self.mid = 0
        self.origin, self.sender, self.nbytes, self.qp, self.uid = origin, sender, nbytes, qp, uid
        self.failed = []
        self.rcpts = []


class Delivery:
    __slots__ = ("msg", "chan", "rcpt", "d", "result", "report")

    def __init__(self, msg, chan, rcpt, result, report):
        self.msg, self.chan, self.rcpt, self.result, self.report = msg, chan, rcpt, result, report
        self.d = 0


class Gen:
    def __init__(self, seed, start, prefix):
        self.rng = rng = random.Random(seed)
        self.rb = rng.getrandbits
        self.rand = rng.random
        self.prefix_kind = prefix
        self.heap = []
        self.seq = itertools.count()
        self.t = start * NS
        self.next_pid = 1000 + rng.randrange(20000)
        self.live_pids = set()
        self.next_inode = 3400000 + rng.randrange(200000)
        self.free_inodes = []
        self.delivery_no = 0
        self.local_busy = 0
        self.remote_busy = 0
        self.wave_until = 0
        # Counters for --truth.
        self.kinds = {}
        self.verdicts = {}
        self.popup_verdicts = {}
        self.by_ip = {}
        self.end_status = {}
        self.rbl_codes = {}
        self.origins = {}
        self.deliv = {"local": {"success": 0, "deferral": 0, "failure": 0},
                      "remote": {"success": 0, "deferral": 0, "failure": 0}}
        self.noise = {}
        self.build_pools()
        self.smtp = Inst("smtp", MX_NAME, MX_IP4, MX_IP6, 25, 100)
        self.subm = Inst("submission", MX_NAME, MX_IP4, MX_IP6, 587, 40)
        self.pop3 = Inst("pop3", POP_NAME, POP_IP4, POP_IP6, 110, 40)
        self.kinds_normal = Weighted(rng, [
            (self.s_rbl, 33), (self.s_deny, 1.5), (self.s_drop, 10), (self.s_helo, 4.5),
            (self.s_relay, 4), (self.s_orig, 4.5), (self.s_spf, 2.5), (self.s_grey, 3.5),
            (self.s_dict, 8), (self.s_data, 4), (self.s_dkim, 0.5), (self.s_tls25, 0.5),
            (self.s_inbound, 11), (self.s_lan, 1.5),
            (self.s_authfail, 4), (self.s_authmissing, 1.5), (self.s_origauth, 0.5),
            (self.s_submit, 3), (self.s_tlsreq, 0.3), (self.s_authodd, 0.1),
            (self.s_pop_ok, 6), (self.s_pop_fail, 3.5), (self.s_pop_stls, 0.2),
            (self.s_local_inject, 0.6), (self.s_noise, 0.4)])
        self.kinds_wave = Weighted(rng, [
            (self.s_rbl, 50), (self.s_dict, 20), (self.s_helo, 8), (self.s_data, 8),
            (self.s_relay, 6), (self.s_authfail, 8), (self.s_inbound, 3), (self.s_drop, 5)])

    # --- pools --------------------------------------------------------------------------------

    def rand_ip4(self):
        rb = self.rb
        while True:
            a = rb(8)
            if a in (0, 10, 127) or a >= 224:
                continue
            b = rb(8)
            if (a == 172 and 16 <= b < 32) or (a == 192 and b == 168) or (a == 169 and b == 254) \
                    or (a == 100 and 64 <= b < 128) or (a == 192 and b == 0):
                continue
            return "%d.%d.%d.%d" % (a, b, rb(8), 1 + rb(8) % 254)

    def rand_ip6(self, server):
        rng = self.rng
        top = rng.choice([0x2a00, 0x2a01, 0x2a02, 0x2a03, 0x2a0a, 0x2001, 0x2600, 0x2604,
                          0x2607, 0x2800, 0x2c0f, 0x2400, 0x2403, 0x2001])
        net = (top << 112) | (self.rb(16) << 96) | (self.rb(16) << 80) | (self.rb(16) << 64)
        host = (1 + self.rb(6)) if server else (self.rb(64) | 1)
        return str(ipaddress.IPv6Address(net | host))

    def word(self):
        rng = self.rng
        return "".join(rng.choice(SYLL) for _ in range(rng.choice((2, 2, 3))))

    def rnd(self, n=6):
        return "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(n))

    def build_pools(self):
        rng = self.rng
        # Local domains: the ISP's own and its customers', a few much busier than the rest.
        self.local_domains = ["example.org"] + ["%s.example" % self.word() for _ in range(24)]
        self.virtual = {d: (d != "example.org") for d in self.local_domains}
        ldz = Zipf(rng, self.local_domains, 1.2, bits=12)
        users = set()
        while len(users) < 2500:
            d = ldz.pick()
            r = self.rand()
            if r < 0.55:
                name = rng.choice(FIRST)
            elif r < 0.8:
                name = "%s.%s" % (rng.choice(FIRST), rng.choice(LAST))
            elif r < 0.92:
                name = rng.choice(ROLE)
            else:
                name = "%s%d" % (rng.choice(FIRST), rng.randrange(100))
            users.add("%s@%s" % (name, d))
        users = sorted(users)
        rng.shuffle(users)
        self.local_users = users
        self.user_z = Zipf(rng, users, 0.9)
        # Remote domains with their MX address and how they behave.
        names = list(BIG_PROVIDERS)
        seen = set(names)
        while len(names) < 6000:
            n = "%s.%s" % (self.word(), rng.choice(TLDS))
            if n not in seen:
                seen.add(n)
                names.append(n)
        self.remote_domains = names
        self.dom_mx = {n: self.rand_ip4() for n in names}
        # Behaviour: 'dead' never answers (deferral until the queue lifetime ends), 'nxdomain'
        # does not exist, 'grey' greylists the first attempt; the rest mostly accept.
        self.dom_kind = {}
        for i, n in enumerate(names):
            r = self.rand()
            if i < len(BIG_PROVIDERS):
                self.dom_kind[n] = "big"
            elif r < 0.015:
                self.dom_kind[n] = "dead"
            elif r < 0.025:
                self.dom_kind[n] = "nxdomain"
            elif r < 0.08:
                self.dom_kind[n] = "grey"
            else:
                self.dom_kind[n] = "normal"
        # The dead ones get traffic: put two of them near the top of the ranking.
        dead = [n for n in names if self.dom_kind[n] == "dead"]
        order = list(names)
        for k, d in enumerate(dead[:2]):
            order.remove(d)
            order.insert(len(BIG_PROVIDERS) + 3 + 5 * k, d)
        self.rdom_z = Zipf(rng, order, 1.0)
        senders = []
        for _ in range(20000):
            d = self.rdom_z.pick()
            r = self.rand()
            if r < 0.5:
                lp = "%s.%s" % (rng.choice(FIRST), rng.choice(LAST))
            elif r < 0.7:
                lp = rng.choice(ROLE)
            elif r < 0.85:
                lp = "newsletter" if self.rand() < 0.5 else "noreply"
            else:
                lp = "bounce-%d-%s" % (rng.randrange(10 ** 6), self.rnd(8).lower())
            senders.append("%s@%s" % (lp, d))
        self.rsender_z = Zipf(rng, senders, 1.0)
        rcpts = ["%s.%s@%s" % (rng.choice(FIRST), rng.choice(LAST), self.rdom_z.pick())
                 for _ in range(20000)]
        self.rrcpt_z = Zipf(rng, rcpts, 0.9)
        # Legitimate MTAs that send to us: host name, HELO = host name, some IPv6.
        mtas = []
        for i in range(3000):
            d = self.rdom_z.pick() if i % 3 else "%s.%s" % (self.word(), rng.choice(TLDS))
            host = "%s%d.%s" % (rng.choice(("mail", "mx", "smtp", "out", "mta", "relay")),
                                rng.randrange(1, 40), d)
            if self.rand() < 0.12:
                mtas.append((self.rand_ip6(True), host, host, True))
            else:
                mtas.append((self.rand_ip4(), host, host, False))
        self.mta_z = Zipf(rng, mtas, 1.1)
        # Spam bots and other hostile clients: skewed, so "top IPs" has a clear head.
        bots = []
        for i in range(60000):
            v6 = self.rand() < 0.04
            ip = self.rand_ip6(False) if v6 else self.rand_ip4()
            r = self.rand()
            if r < 0.45:
                host = ""
            elif v6:
                host = "%s.dyn.%s.%s" % (self.rnd(8).lower(), self.word(), rng.choice(TLDS))
            else:
                host = "%s.%s.%s" % (ip.replace(".", "-"), rng.choice(("dyn", "dsl", "pool",
                                     "static", "cable", "ppp", "client")), rng.choice(names[20:400]))
            tmpl = rng.choice(BOT_HELOS)
            helo = tmpl.format(rnd=self.rnd(), ip=ip, word=self.word(), tld=rng.choice(TLDS))
            bots.append((ip, host, helo, v6))
        self.bot_z = Zipf(rng, bots, 0.95, bits=20)
        # The ISP's customers (submission and POP3) from dial-up pools, some over IPv6.
        clients = []
        for i in range(1500):
            v6 = self.rand() < 0.2
            ip = self.rand_ip6(False) if v6 else self.rand_ip4()
            host = "" if self.rand() < 0.3 else "p%s.dip.%s" % (self.rnd(8).lower(),
                                                                    rng.choice(names[20:200]))
            helo = rng.choice(("[%s]" % ip if not v6 else "[IPv6:%s]" % ip,
                               "DESKTOP-%s" % self.rnd(7), "%s-laptop" % rng.choice(FIRST),
                               "MacBook-Pro.local", "android-%s" % self.rnd(10).lower()))
            clients.append((ip, host, helo, v6, self.user_z.pick()))
        self.client_z = Zipf(rng, clients, 0.8)
        # Hosts on the ISP's LAN allowed to relay (webmail, monitoring, a web server).
        self.lan = [("10.0.0.%d" % i, "%s.lan" % n, n, False)
                    for i, n in ((5, "webmail"), (6, "web1"), (7, "nagios"), (8, "crm"))]
        self.lan_z = Zipf(rng, self.lan, 1.5, bits=10)

    # --- allocation ---------------------------------------------------------------------------

    def alloc_pid(self):
        live = self.live_pids
        while True:
            p = self.next_pid + 1 + self.rb(3)
            if p >= PID_MAX:
                p = 300 + self.rb(4)
            self.next_pid = p
            if p not in live:
                return p

    def alloc_inode(self):
        if self.free_inodes and self.rand() < 0.6:
            return self.free_inodes.pop()
        self.next_inode += 1 + self.rb(6)
        return self.next_inode

    def push(self, t, fn, arg):
        heapq.heappush(self.heap, (t, next(self.seq), fn, arg))

    def count(self, kind):
        k = self.kinds
        k[kind] = k.get(kind, 0) + 1

    # --- line producers (run when the line is written; each returns one line or None) ---------

    def ev_line(self, arg):
        kind, text = arg
        k = self.kinds
        k[kind] = k.get(kind, 0) + 1
        return text

    def ev_smtpd(self, arg):
        verdict, ip, text = arg
        k = self.kinds
        k["qmail_smtpd"] = k.get("qmail_smtpd", 0) + 1
        v = self.verdicts
        v[verdict] = v.get(verdict, 0) + 1
        b = self.by_ip
        b[ip] = b.get(ip, 0) + 1
        return text

    def ev_popup(self, arg):
        verdict, text = arg
        self.count("qmail_popup")
        v = self.popup_verdicts
        v[verdict] = v.get(verdict, 0) + 1
        return text

    def ev_noise(self, arg):
        kind, text = arg
        self.count("noise")
        self.noise[kind] = self.noise.get(kind, 0) + 1
        return text

    def ev_status_open(self, inst):
        inst.n += 1
        self.count("tcpserver_status")
        return "tcpserver: status: %d/%d" % (inst.n, inst.limit)

    def ev_status_close(self, inst):
        inst.n -= 1
        self.count("tcpserver_status")
        return "tcpserver: status: %d/%d" % (inst.n, inst.limit)

    def ev_end(self, arg):
        pid, status = arg
        self.live_pids.discard(pid)
        self.count("tcpserver_end")
        self.end_status[status] = self.end_status.get(status, 0) + 1
        return "tcpserver: end %d status %d" % (pid, status)

    def ev_rbl(self, arg):
        code, text = arg
        self.count("rblsmtpd")
        self.rbl_codes[code] = self.rbl_codes.get(code, 0) + 1
        return text

    def ev_new_msg(self, m):
        if not m.mid:
            m.mid = self.alloc_inode()
        self.count("send_new_msg")
        self.origins[m.origin] = self.origins.get(m.origin, 0) + 1
        return "new msg %d" % m.mid

    def ev_info_msg(self, m):
        self.count("send_info_msg")
        return "info msg %d: bytes %d from <%s> qp %d uid %d" % (m.mid, m.nbytes, m.sender,
                                                                   m.qp, m.uid)

    def ev_start(self, dl):
        self.delivery_no += 1
        dl.d = self.delivery_no
        if dl.chan == "local":
            self.local_busy += 1
        else:
            self.remote_busy += 1
        self.count("send_starting_delivery")
        return "starting delivery %d: msg %d to %s %s" % (dl.d, dl.msg.mid, dl.chan, dl.rcpt)

    def ev_result(self, dl):
        if dl.chan == "local":
            self.local_busy -= 1
        else:
            self.remote_busy -= 1
        self.count("send_delivery")
        self.deliv[dl.chan][dl.result] += 1
        return "delivery %d: %s: %s" % (dl.d, dl.result, dl.report)

    def ev_send_status(self, _):
        self.count("send_status")
        return "status: local %d/%d remote %d/%d" % (self.local_busy, LOCAL_LIMIT,
                                                     self.remote_busy, REMOTE_LIMIT)

    def ev_bounce(self, arg):
        m, b = arg
        b.qp = self.alloc_pid()
        b.mid = self.alloc_inode()   # qmail-queue writes the bounce while M still exists
        self.count("send_bounce")
        return "bounce msg %d qp %d" % (m.mid, b.qp)

    def ev_end_msg(self, m):
        self.count("send_end_msg")
        self.free_inodes.append(m.mid)
        return "end msg %d" % m.mid

    def ev_spawn(self, arg):
        fn, t, a = arg
        fn(t, *a)
        return None

    # --- the queue ----------------------------------------------------------------------------

    def remote_plan(self, rcpt, bounce):
        """The attempts for one remote recipient: [(result, report, seconds)]."""
        rng, r = self.rng, self.rand()
        dom = rcpt.rsplit("@", 1)[1]
        kind = self.dom_kind.get(dom, "normal")
        ip = self.dom_mx.get(dom) or self.rand_ip4()
        if kind == "dead":
            reason = rng.choice((
                "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
                "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
                "Connected to %s but greeting failed.\nRemote host said: 421 Service not "
                "available, closing transmission channel\n" % ip))
            return [("deferral", reason, 20 + 40 * self.rand())] * 60
        if kind == "nxdomain":
            return [("failure", "Sorry, I couldn't find any host named %s. (#5.1.2)\n" % dom,
                     0.05 + self.rand() * 0.3)]
        plan = []
        if kind == "grey" and r < 0.9:
            plan.append(("deferral", "%s does not like recipient.\nRemote host said: 450 4.2.0 "
                         "<%s>: Recipient address rejected: Greylisted, see "
                         "http://postgrey.schweikert.ch/help/%s.html\nGiving up on %s.\n"
                         % (ip, rcpt, dom, ip), 0.3 + self.rand()))
        elif r < 0.035:
            for _ in range(1 + self.rb(2)):
                plan.append(("deferral", rng.choice((
                    "Connected to %s but connection died. (#4.4.2)\n" % ip,
                    "%s does not like recipient.\nRemote host said: 452 4.2.2 The email account "
                    "that you tried to reach is over quota.\nGiving up on %s.\n" % (ip, ip),
                    "CNAME lookup failed temporarily. (#4.4.3)\n",
                    "Connected to %s but greeting failed.\nRemote host said: 421 4.7.0 Try "
                    "again later, closing connection.\n" % ip)), 0.5 + 30 * self.rand()))
        elif r < 0.06 or (bounce and r < 0.25):
            return [("failure", rng.choice((
                "%s does not like recipient.\nRemote host said: 550 5.1.1 <%s>: Recipient "
                "address rejected: User unknown in virtual mailbox table\nGiving up on %s.\n"
                % (ip, rcpt, ip),
                "%s does not like recipient.\nRemote host said: 550 5.1.1 The email account "
                "that you tried to reach does not exist.\nGiving up on %s.\n" % (ip, ip),
                "%s failed after I sent the message.\nRemote host said: 554 5.7.1 This message "
                "has been blocked because it contains spam\n" % ip,
                "%s does not like recipient.\nRemote host said: 552 5.2.2 Mailbox full\n"
                "Giving up on %s.\n" % (ip, ip))), 0.3 + self.rand() * 2)]
        qid = self.rnd(10)
        ok = rng.choice((
            "%s accepted message.\nRemote host said: 250 2.0.0 Ok: queued as %s\n" % (ip, qid),
            "%s TLS transmitted message accepted.\nRemote host said: 250 2.0.0 Ok: queued "
            "as %s\n" % (ip, qid),
            "%s TLS transmitted message accepted.\nRemote host said: 250 2.0.0 OK  %d %s - "
            "gsmtp\n" % (ip, self.t // NS, qid.lower()),
            "%s accepted message.\nRemote host said: 250 OK id=1r%s-000%s-%s\n"
            % (ip, self.rnd(4), self.rnd(3), self.rnd(2)),
            "%s TLS transmitted message accepted.\nRemote host said: 250 Requested mail "
            "action okay, completed: id=%s\n" % (ip, qid)))
        plan.append(("success", ok, 0.4 + 3 * self.rand()))
        return plan

    def local_plan(self, rcpt):
        r = self.rand()
        if r < 0.004:
            return [("failure", "Sorry, no mailbox here by that name. (#5.1.1)\n", 0.01)]
        plan = []
        if r < 0.012:
            plan.append(("deferral", self.rng.choice((
                "Unable to chdir to maildir. (#4.2.1)\n",
                "Temporary error on maildir delivery. (#4.3.0)\n",
                "vdelivermail: user is over quota\n")), 0.02))
        dom = rcpt.rsplit("@", 1)[1]
        if self.virtual.get(dom) and self.rand() < 0.5:
            ok = "vdelivermail: valiases processed\ndid 0+0+1\n"
        else:
            ok = "did 1+0+0\n"
        plan.append(("success", ok, 0.005 + 0.05 * self.rand()))
        return plan

    def local_name(self, rcpt):
        dom = rcpt.rsplit("@", 1)[1]
        return "%s-%s" % (dom, rcpt) if self.virtual.get(dom) else rcpt

    def queue(self, t, origin, sender, nbytes, qp, uid, rcpts, mid=0):
        """A message enters the queue at t: schedule its whole life.
        rcpts: [(chan, address)]; mid: its queue id if already known (bounces)."""
        m = Msg(origin, sender, nbytes, qp, uid)
        m.mid = mid
        push = self.push
        push(t, self.ev_new_msg, m)
        push(t + 150_000, self.ev_info_msg, m)
        birth = t
        last = t + 200_000
        bounce = sender == "" or sender.startswith("#@")
        for chan, addr in rcpts:
            if chan == "local":
                plan, skip, shown = self.local_plan(addr), 10, self.local_name(addr)
            else:
                plan, skip, shown = self.remote_plan(addr, bounce), 20, addr
            n = 0
            for result, report, secs in plan:
                start = birth + (skip * n) ** 2 * NS + 500_000 + self.rb(22)
                if result == "deferral" and (start - birth) // NS >= QUEUE_LIFETIME:
                    result = "failure"
                    report += "I'm not going to try again; this message has been in the queue " \
                              "too long.\n"
                dl = Delivery(m, chan, shown, result, logsafe(report))
                done = start + int(secs * NS)
                push(start, self.ev_start, dl)
                push(start + 40_000, self.ev_send_status, None)
                push(done, self.ev_result, dl)
                push(done + 40_000, self.ev_send_status, None)
                n += 1
                if done > last:
                    last = done
                if result == "failure":
                    m.failed.append(addr)
                    break
                if result == "success":
                    break
        end = last + 100_000
        if m.failed and not sender.startswith("#@"):
            b = Msg("bounce", "" if sender else "#@[]", nbytes + 1500 + self.rb(10), 0,
                    QMAILS_UID)
            push(end, self.ev_bounce, (m, b))
            push(end + 200_000, self.ev_end_msg, m)
            push(end + 400_000, self.ev_spawn, (self.queue_bounce, end + 400_000, (b, sender)))
        else:
            push(end, self.ev_end_msg, m)

    def queue_bounce(self, t, b, orig_sender):
        if orig_sender:
            dom = orig_sender.rsplit("@", 1)[1]
            chan = "local" if dom in self.virtual else "remote"
            to = orig_sender
        else:
            chan, to = "local", "postmaster@example.org"
        self.queue(t, "bounce", b.sender, b.nbytes, b.qp, QMAILS_UID, [(chan, to)], b.mid)

    # --- connections --------------------------------------------------------------------------

    def open_conn(self, t, inst, peer):
        """status/pid/ok lines; returns (pid, time after the ok line)."""
        pid = self.alloc_pid()
        self.live_pids.add(pid)
        ip, host, _, v6 = peer[0], peer[1], peer[2], peer[3]
        push = self.push
        push(t, self.ev_status_open, inst)
        push(t + 60_000 + self.rb(16), self.ev_line, ("tcpserver_pid",
                                                      "tcpserver: pid %d from %s" % (pid, ip)))
        t2 = t + 300_000 + self.rb(25)  # up to ~33 ms of PTR lookup
        push(t2, self.ev_line, ("tcpserver_ok", "tcpserver: ok %d %s:%s:%d %s:%s::%d" % (
            pid, inst.host, inst.ip6 if v6 else inst.ip4, inst.port, host, ip,
            32768 + self.rb(15))))
        return pid, t2

    def close_conn(self, t, inst, pid, status):
        self.push(t, self.ev_end, (pid, status))
        self.push(t + 30_000 + self.rb(14), self.ev_status_close, inst)

    def smtpd(self, t, pid, verdict, proto, peer, f=None, to=None, info=None, helo=True):
        s = "qmail-smtpd: pid %d %s P:%s S:%s:%s" % (pid, verdict, proto, peer[0],
                                                       peer[1] or "unknown")
        if helo:
            s += " H:" + peer[2]
        if f is not None:
            s += " F:%s T:%s" % (f, to)
        if info:
            s += " " + info
        self.push(t, self.ev_smtpd, (verdict, peer[0], s))

    def secs(self, lo, hi):
        return int((lo + (hi - lo) * self.rand()) * NS)

    def spam_from(self):
        r = self.rand()
        if r < 0.4:
            return "%s@%s" % (self.rnd(self.rng.randrange(5, 12)).lower(), self.rdom_z.pick())
        if r < 0.6:
            return "%s@%s" % (self.rng.choice(FIRST), self.rng.choice(self.remote_domains))
        if r < 0.75:
            return self.user_z.pick()          # forged local sender
        if r < 0.85:
            return ""
        return self.rsender_z.pick()

    def status_after_reject(self):
        r = self.rand()
        return 0 if r < 0.8 else (256 if r < 0.97 else 14)

    def s_rbl(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        code, reason = "451", ""
        r = self.rand() * 100
        acc = 0
        for c, text, w in RBL_REASONS:
            acc += w
            if r < acc:
                code, reason = c, text.format(ip=peer[0])
                break
        else:
            code, reason = "451", RBL_REASONS[0][1].format(ip=peer[0])
        t += self.secs(0.002, 0.4)
        self.push(t, self.ev_rbl, (code, "rblsmtpd: %s pid %d: %s %s" % (peer[0], pid, code,
                                                                           reason)))
        t += self.secs(0.5, 30) if self.rand() < 0.85 else 60 * NS
        self.close_conn(t, self.smtp, pid, 0)

    def s_deny(self, t):
        peer = self.bot_z.pick()
        pid = self.alloc_pid()
        self.live_pids.add(pid)
        push = self.push
        push(t, self.ev_status_open, self.smtp)
        push(t + 60_000, self.ev_line, ("tcpserver_pid", "tcpserver: pid %d from %s"
                                        % (pid, peer[0])))
        t += 300_000 + self.rb(24)
        push(t, self.ev_line, ("tcpserver_deny", "tcpserver: deny %d %s:%s:25 %s:%s::%d" % (
            pid, MX_NAME, MX_IP6 if peer[3] else MX_IP4, peer[1], peer[0],
            32768 + self.rb(15))))
        self.close_conn(t + 200_000, self.smtp, pid, 25600)

    def s_drop(self, t):
        peer = self.bot_z.pick() if self.rand() < 0.8 else self.mta_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        r = self.rand()
        status = 0 if r < 0.55 else (256 if r < 0.85 else (14 if r < 0.95 else 25600))
        t += self.secs(0.05, 20) if status != 14 else 1200 * NS
        self.close_conn(t, self.smtp, pid, status)

    def s_helo(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        t += self.secs(1, 8)
        f, to = self.spam_from(), self.user_z.pick()
        if self.rand() < 0.6:
            self.smtpd(t, pid, "Reject::SNDR::Bad_Helo", "ESMTP" if self.rb(2) else "SMTP",
                       peer, f, to, "'%s'" % self.rng.choice(BAD_HELO_CLASS))
        else:
            self.smtpd(t, pid, "Reject::SNDR::DNS_Helo", "ESMTP", peer, f, to, "'A'")
        self.close_conn(t + self.secs(0.1, 3), self.smtp, pid, self.status_after_reject())

    def s_relay(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        f = self.spam_from()
        for _ in range(1 + (self.rb(2) if self.rand() < 0.3 else 0)):
            t += self.secs(0.5, 5)
            self.smtpd(t, pid, "Reject::SNDR::Invalid_Relay", "ESMTP", peer, f,
                       self.rrcpt_z.pick())
        self.close_conn(t + self.secs(0.1, 3), self.smtp, pid, self.status_after_reject())

    def s_orig(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        t += self.secs(1, 6)
        to = self.user_z.pick()
        r = self.rand()
        if r < 0.4:
            f = "%s@%s" % (self.rnd(8).lower(), self.rng.choice(self.remote_domains))
            self.smtpd(t, pid, "Reject::ORIG::Bad_Mailfrom", "ESMTP", peer, f, to,
                       "'%s'" % self.rng.choice(BAD_MAILFROM_CLASS))
        elif r < 0.8:
            f = "%s@%s.%s" % (self.rnd(6).lower(), self.word(), self.rng.choice(TLDS))
            self.smtpd(t, pid, "Reject::ORIG::DNS_MF", "ESMTP", peer, f, to)
        elif r < 0.9:
            self.smtpd(t, pid, "Reject::ORIG::Invalid_Sender", "ESMTP", peer, self.spam_from(),
                       to)
        else:
            self.smtpd(t, pid, "Reject::ORIG::SPF", "ESMTP", peer, self.user_z.pick(), to)
        self.close_conn(t + self.secs(0.1, 3), self.smtp, pid, self.status_after_reject())

    def s_spf(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        t += self.secs(1, 6)
        f = self.rng.choice(BIG_PROVIDERS[:8]) if self.rand() < 0.5 else None
        f = ("%s@%s" % (self.rng.choice(FIRST), f)) if f else self.user_z.pick()
        self.smtpd(t, pid, "Reject::SPF::Fail", "ESMTP", peer, f, self.user_z.pick())
        self.close_conn(t + self.secs(0.1, 3), self.smtp, pid, self.status_after_reject())

    def s_grey(self, t):
        legit = self.rand() < 0.5
        peer = self.mta_z.pick() if legit else self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        f = self.rsender_z.pick() if legit else self.spam_from()
        rcpts = [self.user_z.pick() for _ in range(1 + (self.rb(1) if self.rand() < 0.2 else 0))]
        proto = "ESMTPS" if legit and self.rand() < 0.8 else "ESMTP"
        for to in rcpts:
            t += self.secs(0.2, 3)
            self.smtpd(t, pid, "Deferred::GREY::Grey_Listed", proto, peer, f, to)
        self.close_conn(t + self.secs(0.1, 1), self.smtp, pid, 0)
        if legit and self.rand() < 0.85:
            tr = t + self.secs(300, 1800)
            self.push(tr, self.ev_spawn, (self.s_inbound, tr, (peer, f, rcpts, proto)))

    def s_dict(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        f = self.spam_from()
        rng = self.rng
        n = 1 + int(self.rng.expovariate(0.25))
        dom = self.rng.choice(self.local_domains[:6])
        status = self.status_after_reject()
        for i in range(min(n, 60)):
            t += self.secs(0.1, 2)
            if i >= 50:
                self.smtpd(t, pid, "Reject::RCPT::Toomany_Rcptto", "ESMTP", peer, f,
                           "%s@%s" % (rng.choice(GUESS), dom))
                status = 0
                break
            r = self.rand()
            if r < 0.06:
                to = rng.choice(("postmaster", "abuse", "spamtrap", "old-list")) + "@" + dom
                self.smtpd(t, pid, "Reject::RCPT::Bad_Rcptto", "ESMTP", peer, f, to)
            elif r < 0.1:
                self.smtpd(t, pid, "Accept::RCPT::Recipients_Cdb", "ESMTP", peer, f,
                           self.user_z.pick())
            else:
                lp = rng.choice(GUESS) if r < 0.4 else "%s.%s" % (rng.choice(FIRST),
                                                                    rng.choice(LAST))
                self.smtpd(t, pid, "Reject::RCPT::Failed_Rcptto", "ESMTP", peer, f,
                           "%s@%s" % (lp, dom))
        self.close_conn(t + self.secs(0.1, 3), self.smtp, pid, status)

    def s_data(self, t):
        peer = self.bot_z.pick() if self.rand() < 0.7 else self.mta_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        f = self.spam_from()
        proto = "ESMTPS" if self.rand() < 0.3 else "ESMTP"
        rcpts = [self.user_z.pick() for _ in range(1 + (self.rb(2) if self.rand() < 0.3 else 0))]
        cond = self.rng.choice(("Recipients_Cdb", "Recipients_Cdb", "Rcpthosts_Rcptto"))
        for to in rcpts:
            t += self.secs(0.2, 2)
            self.smtpd(t, pid, "Accept::RCPT::" + cond, proto, peer, f, to)
        t += self.secs(1, 15)
        r = self.rand()
        if r < 0.55:
            v, info = "Spam_Message", "'spam'"
        elif r < 0.7:
            v, info = "Virus_Infected", "'%s'" % self.rng.choice(VIRUS_SCANNERS)
        elif r < 0.78:
            v, info = "Bad_MIME", "'%s'" % self.rng.choice(BAD_MIME)
        elif r < 0.83:
            v, info = "Bad_Loader", "'%s'" % self.rng.choice(BAD_LOADER)
        elif r < 0.95:
            v, info = "Invalid_Size", None
        else:
            v, info = "MIME_Attach", "'MIME'"
        self.smtpd(t, pid, "Reject::DATA::" + v, proto, peer, f, rcpts[0], info)
        self.close_conn(t + self.secs(0.05, 1), self.smtp, pid, self.status_after_reject())

    def s_dkim(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        f = "%s@%s" % (self.rng.choice(ROLE), self.rng.choice(BIG_PROVIDERS[:6]))
        to = self.user_z.pick()
        t += self.secs(0.5, 2)
        self.smtpd(t, pid, "Accept::RCPT::Recipients_Cdb", "ESMTP", peer, f, to)
        t += self.secs(1, 5)
        self.smtpd(t, pid, "Reject::DKIM::Signature", "ESMTP", peer, f, to)
        self.close_conn(t + self.secs(0.05, 1), self.smtp, pid, 0)

    def s_tls25(self, t):
        peer = self.mta_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        t += self.secs(0.5, 3)
        self.smtpd(t, pid, "Reject::TLS::missing", "ESMTP", peer)
        self.close_conn(t + self.secs(0.05, 1), self.smtp, pid, 0)

    def s_inbound(self, t, peer=None, f=None, rcpts=None, proto=None):
        """Inbound mail that is accepted: one Accept line per recipient, then the queue."""
        if peer is None:
            peer = self.mta_z.pick()
            f = self.rsender_z.pick() if self.rand() < 0.97 else ""
            k = 1 if self.rand() < 0.8 else 2 + self.rb(2)
            rcpts = [self.user_z.pick() for _ in range(k)]
            proto = "ESMTPS" if self.rand() < 0.75 else ("ESMTP" if self.rand() < 0.9 else "SMTP")
        pid, t = self.open_conn(t, self.smtp, peer)
        qp = self.alloc_pid()
        spf = self.rand() < 0.4
        r = self.rand()
        cond = "Recipients_Cdb" if r < 0.8 else ("Rcpthosts_Rcptto" if r < 0.9 else
                                                 ("Recipients_Wild" if r < 0.96 else
                                                  "Recipients_Pam"))
        verdict = ("Accept::SPF::" if spf else "Accept::RCPT::") + cond
        t += self.secs(0.2, 2)
        for to in rcpts:
            t += self.secs(0.02, 0.5)
            self.smtpd(t, pid, verdict, proto, peer, f, to)
        if self.rand() < 0.15:
            t += self.secs(0.02, 0.5)
            self.smtpd(t, pid, "Reject::RCPT::Failed_Rcptto", proto, peer, f,
                       "%s.%s@%s" % (self.rng.choice(FIRST), self.rng.choice(LAST),
                                     rcpts[0].rsplit("@", 1)[1]))
        t += self.secs(0.3, 4)
        nbytes = int(min(self.rng.lognormvariate(9.0, 1.3), 30_000_000)) + 400
        if self.rand() < 0.01:
            self.push(t + 1000, self.ev_noise, ("simscan",
                      "simscan:[%d]:CLEAN (%.2f/5.00):%.4fs:%s:%s:%s:%s" % (
                          pid, self.rand() * 3, self.rand(), "subject", peer[0], f or "<>",
                          rcpts[0])))
        self.queue(t, "smtp", f, nbytes, qp, QMAILD_UID, [("local", to) for to in rcpts])
        self.close_conn(t + self.secs(0.05, 1), self.smtp, pid, 0)

    def s_lan(self, t):
        peer = self.lan_z.pick()
        pid, t = self.open_conn(t, self.smtp, peer)
        qp = self.alloc_pid()
        f = self.user_z.pick()
        rcpts = []
        for _ in range(1 if self.rand() < 0.7 else 2 + self.rb(2)):
            if self.rand() < 0.7:
                rcpts.append(("remote", self.rrcpt_z.pick()))
            else:
                rcpts.append(("local", self.user_z.pick()))
        r = self.rand()
        if r < 0.6:
            verdict, proto = "Accept::SNDR::Relay_Client", "ESMTPS"
        elif r < 0.9:
            verdict, proto = "Accept::ORIG::Local_Sender", "ESMTPSM"
        else:
            verdict, proto = "Accept::ORIG::Relay_Mailfrom", "ESMTPS"
        for _, to in rcpts:
            t += self.secs(0.005, 0.05)
            self.smtpd(t, pid, verdict, proto, peer, f, to)
        t += self.secs(0.05, 0.5)
        self.queue(t, "relay", f, int(self.rng.lognormvariate(8.5, 1.0)) + 400, qp, QMAILD_UID,
                   rcpts)
        self.close_conn(t + self.secs(0.01, 0.1), self.smtp, pid, 0)

    def s_authfail(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.subm, peer)
        rng = self.rng
        meth = "login" if self.rand() < 0.7 else "plain"
        proto = "ESMTPSA" if self.rand() < 0.6 else "ESMTPA"
        for _ in range(1 + (self.rb(2) if self.rand() < 0.4 else 0)):
            t += self.secs(0.3, 2) + 5 * NS    # qmail-smtpd sleeps 5 s before the reply
            r = self.rand()
            user = rng.choice(GUESS) if r < 0.4 else (
                self.user_z.pick() if r < 0.85 else "%s@%s" % (rng.choice(GUESS),
                                                              rng.choice(self.local_domains)))
            self.smtpd(t, pid, "Reject::AUTH::" + meth, proto, peer, info="?~ '%s'" % user)
        self.close_conn(t + self.secs(0.05, 2), self.subm, pid, 0 if self.rb(1) else 256)

    def s_authmissing(self, t):
        peer = self.bot_z.pick() if self.rand() < 0.6 else self.client_z.pick()
        pid, t = self.open_conn(t, self.subm, peer)
        t += self.secs(0.5, 4)
        self.smtpd(t, pid, "Reject::AUTH::Missing", "ESMTPS" if self.rb(1) else "ESMTP", peer)
        self.close_conn(t + self.secs(0.05, 1), self.subm, pid, 0)

    def s_origauth(self, t):
        peer = self.client_z.pick() if self.rand() < 0.5 else self.bot_z.pick()
        pid, t = self.open_conn(t, self.subm, peer)
        t += self.secs(0.5, 4)
        v = self.rng.choice(("Require_Auth", "Missing_Auth", "Failed_Auth"))
        self.smtpd(t, pid, "Reject::ORIG::" + v, "ESMTPS", peer, self.user_z.pick(),
                   self.rrcpt_z.pick())
        self.close_conn(t + self.secs(0.05, 1), self.subm, pid, 0)

    def s_submit(self, t):
        """An authenticated customer sends mail: Accept::AUTH per recipient, then the queue."""
        c = self.client_z.pick()
        peer, user = c[:4], c[4]
        pid, t = self.open_conn(t, self.subm, peer)
        qp = self.alloc_pid()
        meth = "plain" if self.rand() < 0.6 else "login"
        rcpts = []
        for _ in range(1 if self.rand() < 0.75 else 2 + int(self.rng.expovariate(0.4))):
            if self.rand() < 0.8:
                rcpts.append(("remote", self.rrcpt_z.pick()))
            else:
                rcpts.append(("local", self.user_z.pick()))
        shown = user if self.rand() < 0.9 else user.split("@")[0]
        t += self.secs(0.3, 3)
        for _, to in rcpts[:100]:
            t += self.secs(0.01, 0.2)
            self.smtpd(t, pid, "Accept::AUTH::" + meth, "ESMTPSA", peer, user, to,
                       "?~ '%s'" % shown)
        t += self.secs(0.3, 8)
        nbytes = int(min(self.rng.lognormvariate(9.5, 1.4), 25_000_000)) + 500
        self.queue(t, "submission", user, nbytes, qp, QMAILD_UID, rcpts[:100])
        self.close_conn(t + self.secs(0.05, 1), self.subm, pid, 0)

    def s_tlsreq(self, t):
        peer = self.client_z.pick()
        pid, t = self.open_conn(t, self.subm, peer)
        t += self.secs(0.3, 3)
        v = "Reject::TLS::required" if self.rb(1) else "Reject::TLS::missing"
        self.smtpd(t, pid, v, "ESMTP", peer)
        self.close_conn(t + self.secs(0.05, 1), self.subm, pid, 0)

    def s_authodd(self, t):
        peer = self.bot_z.pick()
        pid, t = self.open_conn(t, self.subm, peer)
        t += self.secs(0.5, 3)
        if self.rand() < 0.7:
            self.smtpd(t, pid, "Reject::AUTH::Method", "ESMTPA", peer, info="?~ 'none'")
        elif self.rb(1):
            self.smtpd(t, pid, "Reject::AUTH::setup", "ESMTPSA", peer,
                       info="?~ '%s'" % self.rng.choice(GUESS))
        else:
            self.smtpd(t, pid, "Reject::AUTH::cram-md5", "ESMTPSA", peer,
                       info="?~ '%s'" % self.user_z.pick())
        self.close_conn(t + self.secs(0.05, 1), self.subm, pid, 0)

    def s_pop_ok(self, t):
        c = self.client_z.pick()
        peer, user = c[:4], c[4]
        pid, t = self.open_conn(t, self.pop3, peer)
        t += self.secs(0.05, 1.5)
        proto = "POP3S" if self.rand() < 0.6 else "POP3"
        self.push(t, self.ev_popup, ("Accept::AUTH::User", "qmail-popup: pid %d "
                  "Accept::AUTH::User P:%s S:%s:%s ?~ '%s'" % (pid, proto, peer[0],
                                                               peer[1] or "unknown", user)))
        self.close_conn(t + self.secs(0.2, 20), self.pop3, pid, 0)

    def s_pop_fail(self, t):
        peer = self.bot_z.pick() if self.rand() < 0.85 else self.client_z.pick()[:4]
        pid, t = self.open_conn(t, self.pop3, peer)
        t += self.secs(0.5, 3)
        r = self.rand()
        if r < 0.93:
            v = "Reject::AUTH::User"
            user = self.rng.choice(GUESS) if r < 0.5 else self.user_z.pick()
        else:
            v, user = "Reject::AUTH::Apop", self.rng.choice(FIRST)
        self.push(t, self.ev_popup, (v, "qmail-popup: pid %d %s P:POP3 S:%s:%s ?~ '%s'" % (
            pid, v, peer[0], peer[1] or "unknown", user)))
        self.close_conn(t + self.secs(0.05, 2), self.pop3, pid, 0 if self.rand() < 0.8 else 256)

    def s_pop_stls(self, t):
        peer = self.client_z.pick()[:4]
        pid, t = self.open_conn(t, self.pop3, peer)
        t += self.secs(0.1, 1)
        self.push(t, self.ev_popup, ("Reject::STLS::Any", "qmail-popup: pid %d Reject::STLS::Any "
                  "P:POP3 S:%s:%s ?~ 'unknown'" % (pid, peer[0], peer[1] or "unknown")))
        self.close_conn(t + self.secs(0.05, 1), self.pop3, pid, 256)

    def s_local_inject(self, t):
        """Mail made on the host itself: cron output, web forms."""
        qp = self.alloc_pid()
        if self.rand() < 0.5:
            self.queue(t, "local", "root@%s" % MX_NAME, 800 + self.rb(11), qp, 0,
                       [("local", "postmaster@example.org")])
        else:
            self.queue(t, "local", "www-data@%s" % MX_NAME, 1500 + self.rb(12), qp, 33,
                       [("remote", self.rrcpt_z.pick())])

    def s_noise(self, t):
        """Lines of other dialects, not s/qmail: a parser should count them as unparsed."""
        rng = self.rng
        peer = self.mta_z.pick()
        f, to = self.rsender_z.pick(), self.user_z.pick()
        r = self.rand()
        pid = 1 + self.rb(15)
        if r < 0.4:
            kind = "indimail"
            text = ("qmail-smtpd: pid %d from %s HELO <%s> MAIL from: <%s> RCPT <%s> AUTH "
                    "<local-rcpt> Size: %d" % (pid, peer[0], peer[2], f, to, 1000 + self.rb(16)))
        elif r < 0.7:
            kind = "simscan"
            text = "simscan:[%d]:CLEAN (0.00/0.00):0.%04ds:%s:%s:%s:%s" % (
                pid, self.rb(13) % 10000, rng.choice(("Re: invoice", "meeting", "hello")),
                peer[0], f, to)
        else:
            kind = "chkuser"
            text = ("CHKUSER accepted rcpt: from <%s::> remote <%s:%s:%s> rcpt <%s> : found "
                    "existing recipient" % (f, peer[2], peer[1] or "unknown", peer[0], to))
        self.push(t, self.ev_noise, (kind, text))

    # --- time ---------------------------------------------------------------------------------

    def rate(self, t):
        """Connections per second at time t: a day/night rhythm, quieter weekends, and
        occasional spam waves."""
        s = t // NS
        hour = (s % 86400) / 3600.0
        day = (s // 86400 + 4) % 7         # 1970-01-01 was a Thursday; 5, 6 = Sat, Sun
        base = 1.25 * (0.6 + 0.4 * math.sin((hour - 8.0) / 24.0 * 2 * math.pi))
        if day >= 5:
            base *= 0.75
        if t < self.wave_until:
            base *= 2.5
        return base

    # --- output -------------------------------------------------------------------------------

    def run(self, out, max_lines, max_bytes):
        heap = self.heap
        pop = heapq.heappop
        rand = self.rand
        expo = self.rng.expovariate
        kind = self.prefix_kind
        next_arr = self.t
        last = 0
        lines = 0
        nbytes = 0
        buf = []
        buflen = 0
        cache_sec = -1
        cache = ""
        first_t = None
        while lines < max_lines and nbytes < max_bytes:
            if not heap or heap[0][0] > next_arr:
                if next_arr >= self.wave_until and rand() < 0.00002:
                    self.wave_until = next_arr + int((300 + 900 * rand()) * NS)
                picker = self.kinds_wave if next_arr < self.wave_until else self.kinds_normal
                picker.pick()(next_arr)
                next_arr += int(expo(self.rate(next_arr)) * NS) + 1
                continue
            t, _, fn, arg = pop(heap)
            self.t = t
            text = fn(arg)
            if text is None:
                continue
            if t <= last:
                t = last + 1 + (rand() < 0.5)
            last = t
            sec = t // NS
            frac = t - sec * NS
            if kind == "tai64n":
                if sec != cache_sec:
                    cache_sec, cache = sec, "@%016x" % (sec + TAI_OFFSET)
                line = "%s%08x %s\n" % (cache, frac, text)
            elif kind == "s6":
                if sec != cache_sec:
                    cache_sec, cache = sec, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))
                line = "%s.%09d  %s\n" % (cache, frac, text)
            elif kind == "syslog":
                if sec != cache_sec:
                    g = time.gmtime(sec)
                    cache_sec = sec
                    cache = "%s %2d %02d:%02d:%02d %s qmail: %d" % (
                        MONTHS[g.tm_mon - 1], g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec,
                        SYSLOG_HOST, sec)
                line = "%s.%06d %s\n" % (cache, frac // 1000, text)
            elif kind == "accustamp":
                line = "%d.%06d %s\n" % (sec, frac // 1000, text)
            else:
                line = text + "\n"
            if first_t is None:
                first_t = t
            buf.append(line)
            n = len(line)
            buflen += n
            nbytes += n
            lines += 1
            if buflen >= 1 << 20:
                out.write("".join(buf).encode("ascii"))
                buf = []
                buflen = 0
        if buf:
            out.write("".join(buf).encode("ascii"))
        self.lines, self.nbytes = lines, nbytes
        self.first_t, self.last_t = first_t or 0, last

    def truth(self, seed, args):
        rej = sum(n for v, n in self.verdicts.items() if v.startswith("Reject::"))
        by_action = {}
        for v, n in self.verdicts.items():
            a = v.split("::", 1)[0]
            by_action[a] = by_action.get(a, 0) + n
        top = sorted(self.by_ip.items(), key=lambda kv: (-kv[1], kv[0]))
        deliv = {r: self.deliv["local"][r] + self.deliv["remote"][r]
                 for r in ("success", "deferral", "failure")}
        return {
            "generator": "bench/gen_qmail_log.py",
            "seed": seed,
            "start": args.start,
            "prefix": args.prefix,
            "lines": self.lines,
            "bytes": self.nbytes,
            "first_unix": self.first_t / NS,
            "last_unix": self.last_t / NS,
            "lines_by_kind": dict(sorted(self.kinds.items())),
            "smtpd_verdicts": dict(sorted(self.verdicts.items())),
            "smtpd_by_action": dict(sorted(by_action.items())),
            "smtpd_rejected_lines": rej,
            "smtpd_distinct_ips": len(self.by_ip),
            "smtpd_lines_by_ip_top": [[ip, n] for ip, n in top[:20]],
            "popup_verdicts": dict(sorted(self.popup_verdicts.items())),
            "tcpserver_connections": self.kinds.get("tcpserver_pid", 0),
            "tcpserver_end_status": {str(k): v for k, v in sorted(self.end_status.items())},
            "rblsmtpd_by_code": dict(sorted(self.rbl_codes.items())),
            "messages_received": self.kinds.get("send_new_msg", 0),
            "messages_by_origin": dict(sorted(self.origins.items())),
            "messages_ended": self.kinds.get("send_end_msg", 0),
            "bounces": self.kinds.get("send_bounce", 0),
            "deliveries_started": self.kinds.get("send_starting_delivery", 0),
            "deliveries": deliv,
            "deliveries_by_channel": self.deliv,
            "unparsed_noise_lines": self.kinds.get("noise", 0),
            "noise_by_kind": dict(sorted(self.noise.items())),
        }


def size_arg(s):
    s = s.strip()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if s and s[-1].lower() in mult:
        return int(float(s[:-1]) * mult[s[-1].lower()])
    return int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--lines", type=int, help="write exactly N lines")
    size.add_argument("--bytes", type=size_arg,
                      help="write until at least N bytes (suffix k, m, g), ending at a line end")
    ap.add_argument("--seed", type=int, default=20240108, help="random seed (default 20240108)")
    ap.add_argument("--start", type=int, default=1704672000,
                    help="unix time of the first line (default 1704672000, 2024-01-08 UTC)")
    ap.add_argument("--prefix", choices=("tai64n", "s6", "syslog", "accustamp", "none"),
                    default="tai64n", help="timestamp prefix of each line (default tai64n)")
    ap.add_argument("-o", "--output", help="output file (default stdout)")
    ap.add_argument("--truth", help="write the counts of what was written as JSON to this file")
    args = ap.parse_args()

    t0 = time.monotonic()
    gen = Gen(args.seed, args.start, args.prefix)
    max_lines = args.lines if args.lines is not None else float("inf")
    max_bytes = args.bytes if args.bytes is not None else float("inf")
    if args.output:
        with open(args.output, "wb") as out:
            gen.run(out, max_lines, max_bytes)
    else:
        gen.run(sys.stdout.buffer, max_lines, max_bytes)
        sys.stdout.buffer.flush()
    if args.truth:
        with open(args.truth, "w") as f:
            json.dump(gen.truth(args.seed, args), f, indent=1)
            f.write("\n")
    took = time.monotonic() - t0
    span = (gen.last_t - gen.first_t) / NS / 86400
    print("gen_qmail_log: %d lines, %d bytes, %.2f days of log, seed %d, %.1f s"
          % (gen.lines, gen.nbytes, span, args.seed, took), file=sys.stderr)


if __name__ == "__main__":
    main()
