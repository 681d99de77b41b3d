#!/usr/bin/python3
"""Red-team pass on `sockit client` and `sockit bench` as clients of hostile
servers, and on their command lines (issue 7).

Each attack starts a small scripted hostile server on loopback (or none),
runs the sanitizer build against it and asserts: the documented exit
status, every stderr line a one-line "sockit: ..." message, no sanitizer
report, no hang past the documented bound, no fd growth (bench), and for
bench that the counts add up (replies + errors covers sent, replies <= sent).

    /usr/bin/python3 tests/redteam/client_attacks.py --bin build/san/sockit [-k SUBSTR] [-v]

Prints one line per failed attack and a summary: attacks run, passed, failed.
"""
import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

SAN_MARKERS = (b"AddressSanitizer", b"LeakSanitizer", b"runtime error:", b"UndefinedBehavior")

BIN = None
ATTACKS = []

# The exit table of src/cli.h (`sockit --help`, man/sockit.1): the same
# failure, the same status, in client and bench (and fetch).
FAIL, RESOLVE, CONNECT, PROTO, TIMEOUT = 1, 3, 4, 7, 9


def attack(category):
    def reg(fn):
        ATTACKS.append((category, fn))  # named at run time: callers may rename
        return fn
    return reg


class Fail(Exception):
    pass


# ---------------------------------------------------------------- servers

class TCP:
    """A loopback listener; behave(conn, index) runs in a thread per
    accepted connection. stop() wakes and closes everything."""

    def __init__(self, behave, backlog=64, accept=True):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.behave = behave
        self.done = threading.Event()
        self.conns = []
        self.received = bytearray()
        self.count = 0
        self.lock = threading.Lock()
        self.threads = []
        if accept:
            t = threading.Thread(target=self._accept, daemon=True)
            t.start()
            self.threads.append(t)

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.done.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
                i = self.count
                self.count += 1
            t = threading.Thread(target=self._one, args=(c, i), daemon=True)
            t.start()

    def _one(self, c, i):
        try:
            self.behave(self, c, i)
        except (OSError, ValueError):
            pass

    def recv_some(self, c, n=65536, timeout=5):
        c.settimeout(timeout)
        d = c.recv(n)
        with self.lock:
            self.received += d
        return d

    def stop(self):
        self.done.set()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def rst(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def fin(c):
    c.shutdown(socket.SHUT_WR)


def drip(srv, c, data, gap):
    for b in data:
        if srv.done.is_set():
            return
        c.sendall(bytes([b]))
        time.sleep(gap)  # the hostile pacing


def hold(srv, secs=30):
    srv.done.wait(secs)


def greeting_server(framing, on_msg):
    """A server that greets correctly, then for each message received calls
    on_msg(srv, c, msg_bytes, i) -> bytes to send (or raises to stop)."""
    nl = b"\n" if framing == "line" else b""

    def behave(srv, c, i):
        c.sendall(b"Welcome!" + nl)
        buf = b""
        k = 0
        while not srv.done.is_set():
            d = srv.recv_some(c, timeout=10)
            if not d:
                return
            if framing == "line":
                buf += d
                while b"\n" in buf:
                    m, buf = buf.split(b"\n", 1)
                    out = on_msg(srv, c, m, k)
                    k += 1
                    if isinstance(out, bytes) and out:
                        c.sendall(out)
            else:
                out = on_msg(srv, c, d, k)
                k += 1
                if isinstance(out, bytes) and out:
                    c.sendall(out)
    return behave


class UDP:
    def __init__(self, behave):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.done = threading.Event()
        self.behave = behave
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.done.is_set():
            try:
                d, peer = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.behave(self, d, peer)
            except OSError:
                pass

    def stop(self):
        self.done.set()
        self.t.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


# ---------------------------------------------------------------- running

class Result:
    pass


def run(args, stdin=None, timeout=30, stdin_closed=False, stdout_closed=False, fd_watch=False,
        env=None):
    """Runs the binary; with fd_watch samples /proc/PID/fd while it runs."""
    r = Result()
    t0 = time.monotonic()
    kw = {}
    if stdin_closed or stdout_closed:
        kw["preexec_fn"] = lambda: os.close(0 if stdin_closed else 1)
        kw["stdin"] = None if stdin_closed else subprocess.DEVNULL
    else:
        kw["stdin"] = subprocess.PIPE if stdin is not None else subprocess.DEVNULL
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:allocator_may_return_null=1")
    if env:
        e.update(env)
    p = subprocess.Popen([BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, **kw)
    r.maxfds = 0
    if fd_watch:
        stopw = threading.Event()

        def watch():
            while not stopw.is_set():
                try:
                    r.maxfds = max(r.maxfds, len(os.listdir(f"/proc/{p.pid}/fd")))
                except OSError:
                    return
                time.sleep(0.05)
        wt = threading.Thread(target=watch, daemon=True)
        wt.start()
    try:
        r.out, r.err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        r.out, r.err = p.communicate()
        r.hung = True
    else:
        r.hung = False
    if fd_watch:
        stopw.set()
    r.rc = p.returncode
    r.took = time.monotonic() - t0
    return r


def check(r, rc, contains=None, max_time=None, stdout=None, lines=1, silent_ok=False):
    """The common bar: status, one "sockit: " line (or `lines` of them),
    no sanitizer report, bounded time."""
    problems = []
    if r.hung:
        problems.append("hung (killed)")
    for m in SAN_MARKERS:
        if m in r.err:
            problems.append("sanitizer report: " + r.err.decode(errors="replace")[:600])
            break
    want = rc if isinstance(rc, (list, tuple, set)) else (rc,)
    if r.rc not in want:
        problems.append(f"exit {r.rc}, wanted {rc}")
    errlines = r.err.splitlines()
    bad = [x for x in errlines if not x.startswith(b"sockit: ")]
    if bad:
        problems.append(f"stderr lines not 'sockit: ...': {bad[:3]!r}")
    if r.rc != 0 and lines is not None and len(errlines) > lines:
        problems.append(f"{len(errlines)} stderr lines, wanted at most {lines}: "
                        f"{errlines[:4]!r}")
    if r.rc != 0 and not errlines and not silent_ok:
        problems.append("failed without a message")
    if contains is not None:
        cs = contains if isinstance(contains, (list, tuple)) else [contains]
        for s in cs:
            if s.encode() not in r.err:
                problems.append(f"message lacks {s!r}: {r.err[-300:]!r}")
    if max_time is not None and r.took > max_time:
        problems.append(f"took {r.took:.2f}s > {max_time}s")
    if stdout is not None and r.out != stdout:
        problems.append(f"stdout {r.out[:200]!r}, wanted {stdout[:200]!r}")
    if problems:
        raise Fail("; ".join(problems))


def bench_json(r):
    try:
        return json.loads(r.out)
    except ValueError:
        raise Fail(f"no JSON report: rc={r.rc} out={r.out[:200]!r} err={r.err[-300:]!r}")


def check_counts(j, exact_replies=None):
    """replies <= sent; replies + request errors covers sent."""
    sent, replies = j.get("sent"), j.get("replies")
    errs = j.get("errors", {})
    tot = sum(errs.values()) if isinstance(errs, dict) else errs
    if sent is None or replies is None:
        raise Fail(f"report lacks sent/replies: {j}")
    if replies > sent:
        raise Fail(f"replies {replies} > sent {sent}")
    if replies + tot < sent:
        raise Fail(f"replies {replies} + errors {tot} < sent {sent}: requests unaccounted")
    if exact_replies is not None and replies != exact_replies:
        raise Fail(f"replies {replies}, wanted {exact_replies}")


# ------------------------------------------------------ client: greetings

FRAMINGS = ("chunk", "line")


def client(addr, framing, *msgs, t=1, stdin=None, **kw):
    return run(["client", "-f", framing, "--timeout", t, addr] + list(msgs), stdin=stdin, **kw)


def greet_then(payload, after=None):
    def behave(srv, c, i):
        c.sendall(payload)
        if after:
            after(srv, c)
        else:
            hold(srv, 10)
    return behave


for fr in FRAMINGS:
    nl = b"\n" if fr == "line" else b""

    def mk(fr=fr, nl=nl):
        @attack("greeting")
        def greeting_huge_junk(fr=fr):
            with TCP(greet_then(b"X" * (1 << 20))) as s:
                check(client(s.addr, fr, "hi", t=3), PROTO, "unexpected greeting", max_time=5)

        greeting_huge_junk.__name__ = f"greeting_huge_junk_{fr}"

        @attack("greeting")
        def greeting_huge_prefix(fr=fr):
            # "Welcome!" then 4 MB more, no newline
            with TCP(greet_then(b"Welcome!" + b"Y" * (4 << 20))) as s:
                check(client(s.addr, fr, "hi", t=3), PROTO, "greeting", max_time=5)

        @attack("greeting")
        def greeting_never_ends(fr=fr):
            def behave(srv, c, i):
                while not srv.done.is_set():
                    c.sendall(b"Z" * 65536)
            with TCP(behave) as s:
                check(client(s.addr, fr, "hi", t=2), PROTO, "greeting", max_time=5)

        @attack("greeting")
        def greeting_drips(fr=fr):
            with TCP(lambda srv, c, i: drip(srv, c, b"Welcome" + b"!" * 50, 0.2)) as s:
                check(client(s.addr, fr, "hi", t=1), TIMEOUT, "greeting", max_time=3)

        @attack("greeting")
        def greeting_nul(fr=fr):
            with TCP(greet_then(b"Wel\0come!" + nl)) as s:
                check(client(s.addr, fr, "hi", t=2), PROTO, ["unexpected greeting", "\\0"],
                      max_time=4)

        @attack("greeting")
        def greeting_cr(fr=fr):
            with TCP(greet_then(b"Welcome!\r" + nl)) as s:
                r = client(s.addr, fr, "hi", t=2)
                # chunk: "\r" is part of the greeting (wrong); line: "\r\n" is fine,
                # then no reply comes (the server holds): a timeout.
                check(r, PROTO if fr == "chunk" else TIMEOUT,
                      "unexpected greeting" if fr == "chunk" else "no reply",
                      max_time=4)

        @attack("greeting")
        def greeting_byte_split(fr=fr):
            def on_msg(srv, c, m, k):
                out = b"Hello, " + m + b"!" + nl
                if fr == "chunk":
                    return out  # one write per reply: chunk framing
                for b in out:
                    c.sendall(bytes([b]))
                    time.sleep(0.002)
                return b""

            # the greeting split per byte must still be accepted
            g = b"Welcome!" + nl

            def b2(srv, c, i):
                for b in g:
                    c.sendall(bytes([b]))
                    time.sleep(0.01)
                buf = b""
                while True:
                    d = srv.recv_some(c)
                    if not d:
                        return
                    buf += d
                    if fr == "chunk" or b"\n" in buf:
                        m = buf.split(b"\n")[0] if fr == "line" else buf
                        if m == b"exit":
                            return
                        c.sendall(on_msg(srv, c, m, 0) or b"")
                        buf = b""
            with TCP(b2) as s:
                check(client(s.addr, fr, "hi", t=5), 0, max_time=6,
                      stdout=b"Welcome!\nHello, hi!\n")

        for f in (greeting_huge_prefix, greeting_never_ends, greeting_drips, greeting_nul,
                  greeting_cr, greeting_byte_split):
            f.__name__ = f"{f.__name__}_{fr}"

        @attack("greeting-end")
        def greeting_rst_before(fr=fr):
            with TCP(lambda srv, c, i: rst(c)) as s:
                check(client(s.addr, fr, "hi", t=2), 1, max_time=4)

        @attack("greeting-end")
        def greeting_fin_before(fr=fr):
            with TCP(lambda srv, c, i: (fin(c), hold(srv, 5))) as s:
                check(client(s.addr, fr, "hi", t=2), 1, "closed", max_time=4)

        @attack("greeting-end")
        def greeting_rst_mid(fr=fr):
            with TCP(lambda srv, c, i: (c.sendall(b"Welc"), time.sleep(0.1), rst(c))) as s:
                check(client(s.addr, fr, "hi", t=2), 1, "reset", max_time=4)

        @attack("greeting-end")
        def greeting_fin_mid(fr=fr):
            with TCP(lambda srv, c, i: (c.sendall(b"Welc"), fin(c), hold(srv, 5))) as s:
                check(client(s.addr, fr, "hi", t=2), 1, "closed", max_time=4)

        @attack("greeting-end")
        def greeting_then_rst(fr=fr):
            with TCP(lambda srv, c, i: (c.sendall(b"Welcome!" + nl), time.sleep(0.1),
                                        rst(c))) as s:
                check(client(s.addr, fr, "hi", t=2), 1, max_time=4)

        for f in (greeting_rst_before, greeting_fin_before, greeting_rst_mid, greeting_fin_mid,
                  greeting_then_rst):
            f.__name__ = f"{f.__name__}_{fr}"

        # ---- replies
        def reply_attack(name, on_msg, msgs, rc, contains=None, stdout=None, t=2, max_time=4,
                         stdin=None):
            def fn(fr=fr):
                with TCP(greeting_server(fr, on_msg)) as s:
                    check(client(s.addr, fr, *msgs, t=t, stdin=stdin), rc, contains,
                          max_time=max_time, stdout=stdout)
            fn.__name__ = f"reply_{name}_{fr}"
            attack("reply")(fn)

        def hello(m):
            return b"Hello, " + m + b"!" + nl

        reply_attack("wrong", lambda s, c, m, k: b"Hi there" + nl, ["a"], PROTO, "unexpected reply")
        reply_attack("too_long", lambda s, c, m, k: b"Hello, a!" + b"x" * (1 << 20) + nl, ["a"],
                     PROTO, "unexpected reply", t=3, max_time=5)
        reply_attack("huge_no_end", lambda s, c, m, k: b"Hello, " + b"x" * (20 << 20), ["a"], PROTO,
                     "message 1", t=4, max_time=7)
        # chunk: the extra bytes come in the reply's own write, so reply 1 is wrong
        which = "unexpected reply to message " + ("2" if fr == "line" else "1")
        reply_attack("extra_after", lambda s, c, m, k: hello(m) + b"junk" + nl, ["a", "b"], PROTO,
                     which)
        reply_attack("duplicated", lambda s, c, m, k: hello(m) * 2, ["a", "b"], PROTO, which)
        reply_attack("nul_inside", lambda s, c, m, k: b"Hello, \0a!" + nl, ["a"], PROTO,
                     "\\0a!")
        reply_attack("error_line", lambda s, c, m, k: b"Error: message too long" + nl, ["a"], FAIL,
                     "Error: message too long")
        reply_attack("silent", lambda s, c, m, k: b"", ["a"], TIMEOUT, "timed out")
        reply_attack("binary", lambda s, c, m, k: bytes(range(256)) + nl, ["a"], PROTO,
                     "unexpected reply")

        def rst_after_partial(s, c, m, k):
            c.sendall(b"Hello, ")
            time.sleep(0.05)
            rst(c)
        reply_attack("rst_mid", rst_after_partial, ["a"], 1, "reset")

        def fin_after_partial(s, c, m, k):
            c.sendall(b"Hello, ")
            fin(c)
            return b""
        reply_attack("fin_mid", fin_after_partial, ["a"], 1, "closed")

        def fin_after_reply(s, c, m, k):
            c.sendall(hello(m))
            fin(c)
        reply_attack("fin_after_first", fin_after_reply, ["a", "b"], 1, "message 2")

        def rst_before_reply(s, c, m, k):
            rst(c)
        reply_attack("rst_before", rst_before_reply, ["a"], 1, "message 1")

        def split_random(s, c, m, k):
            out = hello(m)
            if fr == "chunk":
                return out
            rnd = random.Random(k)
            i = 0
            while i < len(out):
                j = i + rnd.randint(1, 3)
                c.sendall(out[i:j])
                time.sleep(0.003)
                i = j
            return b""
        reply_attack("split_random", split_random, ["alpha", "beta", "gamma"], 0,
                     stdout=b"Welcome!\nHello, alpha!\nHello, beta!\nHello, gamma!\n")
        reply_attack("stdin_binary_nul", lambda s, c, m, k: hello(m), [], 0,
                     stdin=b"a\0b\n\xff\xfe\n",
                     stdout=b"Welcome!\nHello, a\0b!\nHello, \xff\xfe!\n")
        reply_attack("stdin_no_trailing_newline", lambda s, c, m, k: hello(m), [], 0,
                     stdin=b"one\ntwo", stdout=b"Welcome!\nHello, one!\nHello, two!\n")
    mk()


@attack("reply")
def reply_early_in_chunk_with_greeting():
    # "Welcome!Hello, a!" in one write: not the greeting (chunk framing)
    with TCP(greet_then(b"Welcome!Hello, a!")) as s:
        check(client(s.addr, "chunk", "a", t=2), PROTO, "unexpected greeting", max_time=4)


@attack("backpressure")
def server_never_reads_big_stdin_line():
    # A 32 MB line while the server never reads: the send deadline ends it.
    with TCP(lambda srv, c, i: (c.sendall(b"Welcome!\n"), hold(srv, 20))) as s:
        r = client(s.addr, "line", t=2, stdin=b"x" * (32 << 20) + b"\n", timeout=30)
        check(r, TIMEOUT, ["sending message 1", "timed out"], max_time=6)


@attack("backpressure")
def server_never_reads_many_messages():
    with TCP(lambda srv, c, i: (c.sendall(b"Welcome!"), hold(srv, 20))) as s:
        r = client(s.addr, "chunk", t=1, stdin=b"m\n" * 100000, timeout=30)
        check(r, TIMEOUT, "message 1", max_time=4)


@attack("connect")
def full_backlog():
    # A listener that never accepts, its backlog filled by us.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.2)  # let the handshakes land in the queue
        r = client(f"127.0.0.1:{port}", "line", "hi", t=1)
        check(r, TIMEOUT, max_time=3)
    finally:
        for f in fillers:
            f.close()
        s.close()


@attack("connect")
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    check(client(f"127.0.0.1:{port}", "line", "hi", t=1), CONNECT, "cannot connect", max_time=3)


@attack("stdin")
def stdin_closed_fd():
    # fd 0 closed: the socket must not become "standard input"
    with TCP(greeting_server("line", lambda s, c, m, k: b"Hello, " + m + b"!\n")) as s:
        r = client(s.addr, "line", t=2, stdin_closed=True)
        # the connection must not be read as our own input
        if b"Hello, Welcome!" in r.out or b"Hello, Hello" in s.received:
            raise Fail(f"the socket was read as stdin: out={r.out[:100]!r}")
        check(r, 1, "reading standard input", max_time=4)


@attack("stdin")
def stdout_closed_fd():
    # fd 1 closed: our output must not go to the server
    with TCP(greeting_server("line", lambda s, c, m, k: b"Hello, " + m + b"!\n")) as s:
        r = run(["client", "-f", "line", "--timeout", "2", s.addr, "hi"],
                stdout_closed=True)
        if b"Welcome" in s.received:
            raise Fail(f"our output went to the server: {bytes(s.received[:100])!r}")
        check(r, 1, "standard output", max_time=4)


@attack("stdin")
def stdin_huge_line_to_real_limits():
    # 20 MB line to a server that answers "Error: message too long" and closes.
    def behave(srv, c, i):
        c.sendall(b"Welcome!\n")
        srv.recv_some(c)
        c.sendall(b"Error: message too long\n")
        time.sleep(0.05)
        c.close()
    with TCP(behave) as s:
        r = client(s.addr, "line", t=3, stdin=b"y" * (20 << 20) + b"\n", timeout=30)
        check(r, 1, max_time=8)


# ------------------------------------------------------------ client UDP

def cudp(addr, *msgs, t=1, stdin=None):
    return run(["client", "--udp", "--timeout", t, addr] + list(msgs), stdin=stdin)


def udp_attack(name, behave, msgs, rc, contains=None, t=1, max_time=3, stdout=None, stdin=None):
    def fn():
        with UDP(behave) as u:
            check(cudp(u.addr, *msgs, t=t, stdin=stdin), rc, contains, max_time=max_time,
                  stdout=stdout, lines=3)
    fn.__name__ = "udp_" + name
    attack("udp")(fn)


def ok(u, d, p):
    u.sock.sendto(b"Hello, " + d + b"!", p)


udp_attack("flood_junk", lambda u, d, p: [u.sock.sendto(b"junk%d" % i, p) for i in range(2000)],
           ["a"], PROTO, "not its reply", t=1)
udp_attack("truncated", lambda u, d, p: u.sock.sendto(b"Hello, ", p), ["abc"], PROTO,
           "not its reply")
udp_attack("oversize", lambda u, d, p: u.sock.sendto(b"Q" * 65507, p), ["a"], PROTO,
           "not its reply")
udp_attack("empty_datagram", lambda u, d, p: u.sock.sendto(b"", p), ["a"], PROTO, "not its reply")
udp_attack("duplicated", lambda u, d, p: (ok(u, d, p), ok(u, d, p)), ["a", "b", "c"], 0,
           stdout=b"Hello, a!\nHello, b!\nHello, c!\n")
udp_attack("error_reply", lambda u, d, p: u.sock.sendto(b"Error: nope\x1b[2J", p), ["a"], 1,
           "server answered")
udp_attack("nul_reply", lambda u, d, p: u.sock.sendto(b"Hello, \0!", p), ["a"], PROTO, "\\0")
udp_attack("stdin_binary", ok, [], 0, stdin=b"\0\xff\n\n", stdout=b"Hello, \0\xff!\nHello, !\n")


class Reorder:
    """Holds the reply to the first datagram and sends it after the second's."""

    def __init__(self):
        self.held = None

    def __call__(self, u, d, p):
        if self.held is None:
            self.held = (d, p)
            return
        ok(u, d, p)
        ok(u, *self.held)


udp_attack("out_of_order", Reorder(), ["a", "b"], 0, t=2,
           stdout=b"Hello, a!\nHello, b!\n", max_time=4)


@attack("udp")
def udp_foreign_source():
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))

    def behave(u, d, p):
        other.sendto(b"Hello, " + d + b"!", p)  # right bytes, wrong source
    with UDP(behave) as u:
        check(cudp(u.addr, "a", t=1), TIMEOUT, "no reply", max_time=3, lines=3)
    other.close()


@attack("udp")
def udp_no_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    check(cudp(f"127.0.0.1:{port}", "a", t=1), CONNECT, max_time=3)


@attack("udp")
def udp_message_too_big():
    with UDP(ok) as u:
        check(cudp(u.addr, t=1, stdin=b"x" * 70000 + b"\n"), 1, max_time=3)


# ------------------------------------------------------------ command line

def usage(args, contains=None, rc=2, stdin=None):
    r = run(args, stdin=stdin, timeout=10)
    check(r, rc, contains, max_time=5)


HOSTILE_VALUES = ["", "-1", "0", "99999999999999999999999", "0x10", "1e3", " 5", "5 ", "+5",
                  "1.", ".", "-", "nan", "inf", "\xff\xfe", "1\n2", "\x1b[2J", "9" * 5000,
                  "1.5.5", "--"]


def cli_attack(cmd, opt, values, base):
    for v in values:
        def fn(v=v):
            usage([cmd] + base[:1] + [opt, v] + base[1:], rc=(1, 2, CONNECT))
            r = run([cmd] + base[:1] + [opt, v] + base[1:], timeout=10)
            if r.rc == 2:
                line = r.err.splitlines()
                if len(line) != 1:
                    raise Fail(f"not one line: {r.err[:300]!r}")
                if any(b < 0x20 or b == 0x7f for b in line[0]):
                    raise Fail(f"control byte in the message: {line[0][:200]!r}")
        fn.__name__ = f"cli_{cmd}_{opt}_{v[:12]!r}"
        attack("cmdline")(fn)


# Values that would start work get a closed port as target and short bounds.
cli_attack("client", "--timeout", HOSTILE_VALUES, ["127.0.0.1:1", "x"])
cli_attack("client", "--framing", ["", "LINE", "\x1b", "chunk\n"], ["127.0.0.1:1", "x"])
for opt in ("-c", "-n", "-d", "-P", "--rate", "--warmup", "--threads", "--timeout",
            "--connect-concurrency", "--idle"):
    cli_attack("bench", opt, HOSTILE_VALUES, ["127.0.0.1:1", "--timeout", "0.2"]
               if opt != "--timeout" else ["127.0.0.1:1"])
for opt in ("--raw", "--expect", "--reply-until", "--greeting"):
    cli_attack("bench", opt, ["", "\\", "\\x", "\\xg1", "\\q", "\x1b\n"],
               ["127.0.0.1:1", "--raw", "x", "--expect", "y"])

HOSTS = ["", ":", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0", "127.0.0.1:65536",
         "127.0.0.1:-1", "127.0.0.1:0x50", "127.0.0.1:08", "[::1]", "[::1]:", "[::1]:x", "[::1",
         "::1:80", "[]:80", "[127.0.0.1]:80", "h" * 300 + ":80", "a." * 200 + ":80",
         "nonexistent.invalid:80", "\xff\xfe:80", "host\nname:80", "127.0.0.1:80:80",
         "127.0.0.1: 80", "127.0.0.1:99999999999999999999"]
for h in HOSTS:
    def fnc(h=h):
        r = run(["client", "--timeout", "1", h, "x"], timeout=15)
        check(r, (1, 2, RESOLVE, CONNECT), max_time=8)
        if any(b < 0x20 for ln in r.err.splitlines() for b in ln):
            raise Fail(f"control byte in the message: {r.err[:200]!r}")

    def fnb(h=h):
        r = run(["bench", h, "-n", "1", "-c", "1", "--timeout", "1"], timeout=15)
        check(r, (1, 2, RESOLVE, CONNECT), max_time=8)
        if any(b < 0x20 for ln in r.err.splitlines() for b in ln):
            raise Fail(f"control byte in the message: {r.err[:200]!r}")
    fnc.__name__ = f"hostport_client_{h[:20]!r}"
    fnb.__name__ = f"hostport_bench_{h[:20]!r}"
    attack("hostport")(fnc)
    attack("hostport")(fnb)


@attack("cmdline")
def cli_getopt_unknown_option():
    usage(["client", "--bogus", "127.0.0.1:1"], "bogus")
    usage(["bench", "--bogus", "127.0.0.1:1"], "bogus")


@attack("cmdline")
def cli_getopt_missing_value():
    usage(["client", "127.0.0.1:1", "-t"], "-t")
    usage(["bench", "127.0.0.1:1", "--rate"], "rate")


@attack("cmdline")
def cli_client_empty_and_newline_msgs():
    usage(["client", "127.0.0.1:1", ""], "empty")
    usage(["client", "-f", "line", "127.0.0.1:1", "a\nb"], "newline")


@attack("cmdline")
def cli_bench_huge_pipeline_burst():
    # -P 65536 x a 100 KB message: 6.5 GB per connection burst
    r = run(["bench", "127.0.0.1:1", "-P", "65536", "-f", "line", "-m", "m" * 100000, "-n", "1",
             "-c", "4", "--timeout", "0.5"], timeout=30)
    check(r, (1, 2), max_time=20)


@attack("cmdline")
def cli_bench_huge_slots():
    r = run(["bench", "127.0.0.1:1", "-P", "65536", "-f", "line", "-c", "20000", "-n", "1",
             "--timeout", "0.5", "-q"], timeout=60)
    check(r, (1, 2), max_time=40)


# ----------------------------------------------------------------- bench

def bench(addr, *args, timeout=30):
    return run(["bench", addr, "--json", "-q"] + [str(a) for a in args], timeout=timeout,
               fd_watch=True)


def b_attack(name, behave, args, rc, contains=None, max_time=10, exact=None, maxfds=None,
             counts=True, lines=2):
    def fn():
        with TCP(behave, backlog=256) as s:
            r = bench(s.addr, *args)
            # bench: errors counted in the report are the message
            check(r, rc, contains, max_time=max_time, lines=lines, silent_ok=bool(r.out))
            if counts and r.out:
                check_counts(bench_json(r), exact)
            lim = maxfds if maxfds is not None else 64
            if r.maxfds > lim:
                raise Fail(f"{r.maxfds} fds open at once (bound {lim})")
    fn.__name__ = "bench_" + name
    attack("bench")(fn)


def echo_line(s, c, m, k):
    return b"Hello, " + m + b"!\n"


def echo_chunk(s, c, m, k):
    return b"Hello, " + m + b"!"


MODES = {
    "closed": ["-n", "200", "-c", "4"],
    "pipe": ["-n", "400", "-c", "2", "-P", "16", "-f", "line"],
    "rate": ["-d", "1", "-c", "4", "--rate", "500"],
    "threads": ["-n", "300", "-c", "4", "--threads", "2"],
    "dur": ["-d", "1", "-c", "4"],
}


def with_line(args):
    return args if "line" in args else args + ["-f", "line"]


for mode, margs in MODES.items():
    a = with_line(margs) + ["--timeout", "1"]
    # With -n every connection keeps failing until bench gives up: the exit
    # status is then that of the one cause (all timeouts 9, all wrong 7);
    # a -d run may end before it gives up on timeouts (1).
    gave_up_timeout = TIMEOUT if "-n" in margs else FAIL
    b_attack(f"{mode}_good", greeting_server("line", echo_line), a, 0, max_time=10)
    b_attack(f"{mode}_wrong_reply", greeting_server("line", lambda s, c, m, k: b"nope\n"), a,
             PROTO, max_time=15)
    b_attack(f"{mode}_duplicated_reply",
             greeting_server("line", lambda s, c, m, k: echo_line(s, c, m, k) * 2), a,
             FAIL if mode == "pipe" else PROTO, max_time=15)
    b_attack(f"{mode}_silent", greeting_server("line", lambda s, c, m, k: b""), a,
             gave_up_timeout, max_time=15)
    b_attack(f"{mode}_rst_on_first",
             greeting_server("line", lambda s, c, m, k: rst(c)), a, 1, max_time=15)
    b_attack(f"{mode}_fin_after_partial",
             greeting_server("line", lambda s, c, m, k: (c.sendall(b"Hel"), fin(c))), a, 1,
             max_time=15)
    b_attack(f"{mode}_bad_greeting", greet_then(b"Welcome?\n"), a, PROTO, max_time=15)
    b_attack(f"{mode}_no_greeting", lambda srv, c, i: hold(srv, 20), a, gave_up_timeout,
             max_time=15)
    b_attack(f"{mode}_rst_before_greeting", lambda srv, c, i: rst(c), a, 1, max_time=15)
    b_attack(f"{mode}_early_reply_with_greeting",
             greet_then(b"Welcome!\nHello, bench!\n" * 1, lambda srv, c: hold(srv, 10)), a,
             PROTO, max_time=15)

    def split(s, c, m, k):
        out = b"Hello, " + m + b"!\n"
        for i in range(len(out)):
            c.sendall(out[i:i + 1])
        return b""
    b_attack(f"{mode}_split_bytes", greeting_server("line", split), a, 0, max_time=15)


b_attack("connect_good", greet_then(b"Welcome!"), ["--connect", "-n", "200", "-c", "4"], 0,
         maxfds=40)
b_attack("connect_rst_every", lambda srv, c, i: rst(c), ["--connect", "-n", "100", "-c", "4",
                                                        "--timeout", "1"], 1, maxfds=40)
b_attack("connect_greeting_plus", greet_then(b"Welcome!x"), ["--connect", "-n", "50", "-c", "2"],
         PROTO, maxfds=40)
b_attack("connect_drip", lambda srv, c, i: drip(srv, c, b"Welcome!", 0.3),
         ["--connect", "-n", "4", "-c", "2", "--timeout", "1"], 1, maxfds=40, max_time=10)
b_attack("connect_never_greets", lambda srv, c, i: hold(srv, 20),
         ["--connect", "-d", "1", "-c", "8", "--timeout", "0.5"], 1, maxfds=40, max_time=10)
b_attack("idle_good", greet_then(b"Welcome!"), ["--idle", "0.5", "-c", "8"], 0, counts=False)
b_attack("idle_server_talks", greet_then(b"Welcome!", lambda srv, c: (time.sleep(0.1),
                                                                       c.sendall(b"x"),
                                                                       hold(srv, 10))),
         ["--idle", "1", "-c", "4"], 1, counts=False)
b_attack("idle_rst", greet_then(b"Welcome!", lambda srv, c: (time.sleep(0.1), rst(c))),
         ["--idle", "1", "-c", "4"], 1, counts=False)
b_attack("raw_len_split", greeting_server("chunk", lambda s, c, m, k: b"+PONG\r\n"),
         ["--raw", "PING", "--greeting", "Welcome!", "--reply-bytes", "7", "-n", "100", "-c", "2"],
         0)
b_attack("raw_until_never", greeting_server("chunk", lambda s, c, m, k: b"zzz" * 1000),
         ["--raw", "PING", "--greeting", "Welcome!", "--reply-until", "\\r\\n", "-n", "10", "-c",
          "2", "--timeout", "1"], TIMEOUT, max_time=10)
b_attack("raw_expect_extra", greeting_server("chunk", lambda s, c, m, k: b"+PONG\r\n+PONG\r\n"),
         ["--raw", "PING", "--greeting", "Welcome!", "--expect", "+PONG\\r\\n", "-n", "20", "-c",
          "1", "--timeout", "1"], PROTO)
b_attack("raw_connect_nogreeting", greeting_server("chunk", lambda s, c, m, k: b"+PONG\r\n"),
         ["--connect", "--raw", "PING", "--reply-bytes", "7", "-n", "30", "-c", "2"], 1,
         counts=True)


def never_reads(srv, c, i):
    c.sendall(b"Welcome!\n")
    hold(srv, 20)


b_attack("backpressure_pipe", never_reads,
         ["-f", "line", "-P", "4096", "-m", "m" * 1000, "-c", "2", "-d", "1", "--timeout", "1"], 1,
         max_time=10)
b_attack("backpressure_rate", never_reads,
         ["-f", "line", "--rate", "100000", "-m", "m" * 1000, "-c", "2", "-d", "1", "--timeout",
          "1", "-P", "64"], 1, max_time=10)


@attack("bench")
def bench_full_backlog():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.2)  # the handshakes land in the queue
        for extra in (["-n", "10"], ["--connect", "-n", "10"], ["--idle", "1"]):
            r = bench(f"127.0.0.1:{port}", "-c", "4", "--timeout", "0.5", *extra)
            check(r, TIMEOUT, max_time=5, lines=2, silent_ok=bool(r.out))
            if r.out:
                check_counts(bench_json(r))
    finally:
        for f in fillers:
            f.close()
        s.close()


b_attack("idle_never_greets", lambda srv, c, i: hold(srv, 20),
         ["--idle", "1", "-c", "4", "--timeout", "0.5"], 1, counts=False, max_time=6)
b_attack("warmup_wrong", greeting_server("line", lambda s, c, m, k: b"nope\n"),
         ["-f", "line", "--warmup", "0.3", "-d", "0.5", "-c", "2", "--timeout", "0.5"], PROTO)
b_attack("warmup_rst_later", greeting_server("line", lambda s, c, m, k: (
    rst(c) if k > 50 else c.sendall(echo_line(s, c, m, k)))),
    ["-f", "line", "--warmup", "0.2", "-d", "1", "-c", "2", "--timeout", "0.5"], 1)
b_attack("raw_connect_greeting", greet_then(b"+OK\r\n"),
         ["--connect", "--raw", "PING", "--greeting", "+OK\\r\\n", "--reply-bytes", "3", "-n",
          "30", "-c", "2"], 0)
b_attack("pipe_reorder_split", greeting_server("line", lambda s, c, m, k: echo_line(s, c, m, k)),
         ["-f", "line", "-P", "64", "-n", "5000", "-c", "3", "--threads", "3"], 0, exact=5000)
b_attack("rate_threads_silent", greeting_server("line", lambda s, c, m, k: b""),
         ["-f", "line", "--rate", "2000", "-P", "8", "-d", "0.5", "-c", "4", "--threads", "2",
          "--timeout", "0.5"], 1)


@attack("bench")
def bench_sigint_mid_run():
    with TCP(greeting_server("line", echo_line)) as s:
        p = subprocess.Popen([BIN, "bench", s.addr, "-f", "line", "-d", "30", "-c", "4", "--json",
                              "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)
        t0 = time.monotonic()
        p.send_signal(2)
        out, err = p.communicate(timeout=10)
        took = time.monotonic() - t0
    r = Result()
    r.out, r.err, r.rc, r.took, r.hung = out, err, p.returncode, took, False
    check(r, 1, max_time=2, silent_ok=True)
    j = bench_json(r)
    if not j.get("interrupted"):
        raise Fail(f"not marked interrupted: {j}")
    if j["replies"] > j["sent"]:
        raise Fail(f"replies > sent: {j}")


@attack("client")
def client_ipv6_and_exit():
    with TCP(greeting_server("line", lambda s, c, m, k: b"Hello, " + m + b"!\n")) as s:
        r = run(["client", "-f", "line", "-t", "2", s.addr, "a", "exit", "b"])
        check(r, 0, stdout=b"Welcome!\nHello, a!\n", max_time=3)
    r = run(["client", "-t", "1", "[::1]:1", "x"])
    check(r, CONNECT, max_time=3)


@attack("client")
def client_many_args():
    with TCP(greeting_server("line", lambda s, c, m, k: b"Hello, " + m + b"!\n")) as s:
        msgs = [f"m{i}" for i in range(20000)]
        r = run(["client", "-f", "line", "-t", "5", s.addr] + msgs, timeout=60)
        want = b"Welcome!\n" + b"".join(b"Hello, %s!\n" % m.encode() for m in msgs)
        check(r, 0, stdout=want, max_time=60)


@attack("udp")
def udp_late_reply_to_previous():
    # the reply to message 1 comes only after its timeout, while 2 is awaited
    def behave(u, d, p):
        if d == b"a":
            return
        ok(u, b"a", p)
        ok(u, d, p)
    with UDP(behave) as u:
        r = cudp(u.addr, "a", "b", t=0.6)
        check(r, TIMEOUT, "message 1", max_time=3, lines=3)


# ---- bench UDP

def bu(addr, *args, timeout=30):
    return run(["bench", addr, "--udp", "--json", "-q"] + [str(a) for a in args],
               timeout=timeout, fd_watch=True)


def bu_attack(name, behave, args, rc, contains=None, max_time=20, exact=None):
    # bound: every datagram unanswered holds its slot --timeout, in order:
    # -n / (-c x -P) x (--timeout + a 0.1 s tick), here 300 / 16 x 0.6 s = 11 s
    def fn():
        with UDP(behave) as u:
            r = bu(u.addr, *args)
            check(r, rc, contains, max_time=max_time, lines=2, silent_ok=bool(r.out))
            if r.out:
                check_counts(bench_json(r), exact)
            if r.maxfds > 64:
                raise Fail(f"{r.maxfds} fds")
    fn.__name__ = "bench_udp_" + name
    attack("bench-udp")(fn)


UA = ["-n", "300", "-c", "2", "-P", "8", "--timeout", "0.5"]
bu_attack("good", ok, UA, 0, exact=300)
bu_attack("dup", lambda u, d, p: (ok(u, d, p), ok(u, d, p)), UA, 0, exact=300)
bu_attack("junk_flood", lambda u, d, p: [u.sock.sendto(b"junk", p) for _ in range(5)], UA, 1)
bu_attack("truncated", lambda u, d, p: u.sock.sendto(b"Hello, " + d[:-3], p), UA, 1)
bu_attack("oversize", lambda u, d, p: u.sock.sendto(b"Hello, " + d + b"!" + b"x" * 65000, p), UA,
          1)
bu_attack("wrong_seq", lambda u, d, p: u.sock.sendto(b"Hello, bench#ffffffffffffffff!", p), UA,
          1)


class DropHalf:
    def __init__(self):
        self.n = 0

    def __call__(self, u, d, p):
        self.n += 1
        if self.n % 2:
            ok(u, d, p)


bu_attack("drop_half", DropHalf(), UA, 1, max_time=25)  # each lost one holds its slot 0.5 s


class ReorderU:
    def __init__(self):
        self.held = []

    def __call__(self, u, d, p):
        self.held.append((d, p))
        if len(self.held) >= 4:
            for x in reversed(self.held):
                ok(u, *x)
            self.held = []


bu_attack("reorder", ReorderU(), ["-n", "400", "-c", "1", "-P", "4", "--timeout", "1"], 0,
          exact=400)
bu_attack("raw_len_big", lambda u, d, p: u.sock.sendto(b"r" * 3000, p),
          ["--raw", "PING", "--reply-bytes", "3000", "-n", "50", "-c", "1", "--timeout", "0.5"], 0,
          exact=50)
bu_attack("raw_dup", lambda u, d, p: (u.sock.sendto(b"PONG", p), u.sock.sendto(b"PONG", p)),
          ["--raw", "PING", "--expect", "PONG", "-n", "50", "-c", "1", "--timeout", "0.5"], 0)


@attack("bench-udp")
def bench_udp_no_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = bu(f"127.0.0.1:{port}", "-n", "10", "-c", "1", "--timeout", "0.5")
    check(r, CONNECT, max_time=5)


@attack("bench-udp")
def bench_udp_silent():
    with UDP(lambda u, d, p: None) as u:
        r = bu(u.addr, "-d", "0.5", "-c", "2", "--timeout", "0.5")
        check(r, TIMEOUT, max_time=5, lines=2)


# ------------------------------------------------------------------ main

def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/san/sockit")
    ap.add_argument("-k", default="")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("-j", type=int, default=3, help="attacks run at once")
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    todo = [(c, f.__name__, f) for c, f in ATTACKS if a.k in f.__name__ or a.k in c]
    results = {}
    lock = threading.Lock()
    it = iter(todo)

    def worker():
        while True:
            with lock:
                try:
                    cat, name, fn = next(it)
                except StopIteration:
                    return
            try:
                fn()
                res = None
            except Fail as e:
                res = str(e)
            except Exception as e:  # a bug in the harness is a failure too
                res = f"harness: {type(e).__name__}: {e}"
            with lock:
                results[name] = (cat, res)
                if res:
                    print(f"FAIL [{cat}] {name}: {res}", flush=True)
                elif a.v:
                    print(f"ok   [{cat}] {name}", flush=True)
    ts = [threading.Thread(target=worker) for _ in range(a.j)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    cats = {}
    for name, (cat, res) in results.items():
        c = cats.setdefault(cat, [0, 0])
        c[0] += 1
        c[1] += res is None
    for cat, (n, p) in sorted(cats.items()):
        print(f"  {cat:14s} {n:4d} run {p:4d} passed {n - p:4d} failed")
    npass = sum(1 for _, r in results.values() if r is None)
    print(f"attacks run {len(results)}, passed {npass}, failed {len(results) - npass}")
    return 0 if npass == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
