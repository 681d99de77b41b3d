#!/usr/bin/python3
"""Targeted red-team attacks on `sockit serve` (issue 7), for the ASan+UBSan
build: each attack starts a server, plays a hostile client or local user,
then asserts the documented behaviour, no sanitizer report, a good client
still answered exactly, fds back to the baseline, bounded RSS, and SIGTERM
-> exit 0 within 2.5 s.

    /usr/bin/python3 tests/redteam/serve_attacks.py --bin build/san/sockit [-k NAME]

Prints one line per attack and a summary (attacks run, passed, failed);
exit status 1 if any failed."""
import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

ATTACKS = []


def attack(category):
    def deco(fn):
        ATTACKS.append((category, fn))
        return fn
    return deco


class Fail(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def recv_exact(s, n, timeout=5.0):
    s.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        c = s.recv(min(n - len(buf), 1 << 20))
        if not c:
            break
        buf += c
    return bytes(buf)


def recv_all(s, timeout=5.0, limit=64 << 20):
    s.settimeout(timeout)
    buf = bytearray()
    while len(buf) < limit:
        try:
            c = s.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            break
        if not c:
            break
        buf += c
    return bytes(buf)


def good_client(srv, line):
    """A well-behaved client: greeting, three messages, exit, exact replies."""
    with srv.connect(timeout=5) as s:
        g = b"Welcome!\n" if line else b"Welcome!"
        check(recv_exact(s, len(g)) == g, "good client: greeting")
        for m in (b"alpha", b"", b"x" * 100) if line else (b"alpha", b"x" * 100):
            s.sendall(m + b"\n" if line else m)
            want = b"Hello, " + m + b"!" + (b"\n" if line else b"")
            got = recv_exact(s, len(want))
            check(got == want, f"good client: reply {got[:40]!r} != {want[:40]!r}")
        s.sendall(b"exit\n" if line else b"exit")
        check(recv_all(s) == b"", "good client: FIN after exit")


def sanitizer_lines(srv):
    with srv.cond:
        return [l for l in srv.lines if "Sanitizer" in l or "runtime error" in l
                or "AddressSanitizer" in l]


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise Fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class Ctx:
    """One attack's servers; finish() runs the common checks."""

    def __init__(self):
        self.servers = []
        self.done = False

    def serve(self, *args, **kw):
        from conftest import Server
        srv = Server(list(args), 15.0, **kw)
        srv.base_fds = srv.fd_count()
        srv.line = "line" in args
        self.servers.append(srv)
        return srv

    def finish(self, fds=True, good=True):
        if self.done:
            return
        self.done = True
        problems = []
        for srv in self.servers:
            try:
                if srv.proc.poll() is not None:
                    problems.append(f"server died: exit {srv.proc.returncode}")
                    continue
                if good and getattr(srv, "good", True):
                    good_client(srv, srv.line)
                if fds:
                    try:
                        wait_until(lambda: srv.fd_count() <= srv.base_fds, 8,
                                   "fds back to baseline")
                    except Fail:
                        problems.append(f"fds {srv.fd_count()} > baseline {srv.base_fds}")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{type(e).__name__}: {e}")
            finally:
                t0 = time.monotonic()
                if srv.proc.poll() is None:
                    srv.proc.send_signal(signal.SIGTERM)
                try:
                    rc = srv.proc.wait(10)
                except subprocess.TimeoutExpired:
                    srv.proc.kill()
                    srv.proc.wait()
                    rc = "hang"
                took = time.monotonic() - t0
                srv.reader.join(5)
                if rc != 0:
                    problems.append(f"exit {rc} after SIGTERM")
                elif took > 2.5:
                    problems.append(f"SIGTERM exit took {took:.2f} s")
                bad = sanitizer_lines(srv)
                if bad:
                    problems.append("sanitizer: " + " | ".join(bad[:4]))
        check(not problems, "; ".join(problems))


# ---------------- command line ----------------

BAD_NUMBERS = ["", "-1", "+5", " 5", "5 ", "0x10", "1e3", "1.5", "99999999999999999999999",
               "9223372036854775808", "-0", "5abc", "\u0663", "1_000"]
NUM_OPTS = {  # option: (min, max)
    "--delay": (0, 3600000), "--max-conns": (1, 100000000),
    "--idle-timeout": (0, 86400 * 365), "--workers": (1, 1024),
    "--backlog": (1, 1 << 20), "--max-line": (1, 16 << 20), "--max-memory": (0, 1 << 50),
}


def run_cli(args, timeout=10):
    from conftest import SOCKIT
    return subprocess.run([SOCKIT, "serve"] + args, capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def usage_error(args, what):
    r = run_cli(args)
    err = r.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l]
    check(r.returncode == 2, f"{what}: exit {r.returncode} (want 2) {err[:200]!r}")
    check(lines and lines[0].startswith("sockit: "), f"{what}: no 'sockit:' line: {err!r}")
    check("Sanitizer" not in err and "runtime error" not in err, f"{what}: sanitizer {err!r}")
    return lines[0]


@attack("cli")
def cli_bad_numbers(ctx):
    for opt, (lo, hi) in NUM_OPTS.items():
        for v in BAD_NUMBERS + [str(hi + 1)] + ([str(lo - 1)] if lo > 0 else []):
            line = usage_error(["--listen", "127.0.0.1:0", opt, v], f"{opt} {v!r}")
            if v in (str(hi + 1), "99999999999999999999999", "9223372036854775808"):
                check("too large" in line, f"{opt} {v!r}: {line!r}")
            if lo > 0 and v == str(lo - 1):
                check("too small" in line, f"{opt} {v!r}: {line!r}")


@attack("cli")
def cli_bad_listen(ctx):
    for v in ["127.0.0.1", ":80", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
              "127.0.0.1:0x10", "[::1", "[::1]", "::1:80", "[]:0", "a" * 300 + ":0", "127.0.0.1: 80", "127.0.0.1:80 ", "[::1]x:0",
              "127.0.0.1:99999999999999999999", ""]:
        usage_error(["--listen", v], f"--listen {v!r}")
    usage_error(["--framing", "lines"], "--framing lines")
    usage_error(["extra"], "extra argument")
    usage_error(["--listen"], "missing value")
    usage_error(["--listen", "127.0.0.1:0"] * 17, "17 listens")


@attack("cli")
def cli_listen_runtime_failures(ctx):
    from conftest import SOCKIT
    # a host that is not an address; an address not on this machine; the same
    # fixed port twice (address in use): exit 1, one line, no leak report.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for args in (["--listen", "nosuchhost.invalid:0"], ["--listen", "192.0.2.1:0"],
                 ["--listen", f"127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}"],
                 ["--listen", f"127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}", "--udp"],
                 ["--listen", f"127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}", "--reuseport"],
                 ["--listen", "256.1.1.1:0"], ["--listen", "1.2.3:0"],
                 ["--listen", "[::ffff:127.0.0.1]:0"]):
        r = run_cli(args)
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode == 0:
            raise Fail(f"{args}: exit 0")
        if r.returncode in (1, 2):
            check(err.splitlines()[0].startswith("sockit: "), f"{args}: {err!r}")
            check("Sanitizer" not in err, f"{args}: {err[:300]!r}")
            continue
        raise Fail(f"{args}: exit {r.returncode} {err[:300]!r}")


@attack("cli")
def cli_bound_values_start(ctx):
    # Every numeric option at its bounds must start, serve and stop.
    srv = ctx.serve("--framing", "line", "--delay", "0", "--max-conns", "100000000",
                    "--idle-timeout", str(86400 * 365), "--backlog", str(1 << 20),
                    "--max-line", str(16 << 20), "--max-memory", str(1 << 50), "--workers", "2")
    srv2 = ctx.serve("--framing", "line", "--max-conns", "1", "--idle-timeout", "0",
                     "--backlog", "1", "--max-line", "1", "--max-memory", "1", "--workers", "1")
    with srv2.connect() as s:
        check(recv_exact(s, 9) == b"Welcome!\n", "max-line 1 greeting")
        s.sendall(b"a\n\nab\n")
        got = recv_all(s)
        check(got == b"Hello, a!\nHello, !\nError: message too long\n", f"max-line 1: {got!r}")
    srv2.good = False  # --max-line 1: the good client's lines are too long
    ctx.finish()


@attack("cli")
def cli_workers_1024(ctx):
    srv = ctx.serve("--workers", "1024", "--framing", "line")
    ctx.finish()


@attack("cli")
def cli_ipv6_and_many_listens(ctx):
    ctx.serve("--listen", "[::1]:0", "--framing", "line")
    ctx.serve(*(["--listen", "127.0.0.1:0"] * 16), "--udp", "--framing", "line")
    ctx.finish()


# ---------------- session state machine ----------------

@attack("reset")
def reset_after_lines_and_too_long(ctx):
    srv = ctx.serve("--framing", "line", "--workers", "1", "--max-line", "100")
    for _ in range(300):
        s = srv.connect()
        s.sendall(b"a\nb\n" + b"x" * 200 + b"\n")
        rst_close(s)
    ctx.finish()


@attack("reset")
def reset_while_paused_with_backlog(ctx):
    # Pipelined lines past the pause mark, never read, then a reset.
    srv = ctx.serve("--framing", "line", "--workers", "1")
    for _ in range(20):
        s = srv.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        data = b"m\n" * 2000000
        sent = 0
        end = time.monotonic() + 1
        while sent < len(data) and time.monotonic() < end:
            try:
                sent += s.send(data[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.005)
        rst_close(s)
    ctx.finish()


@attack("reset")
def reset_while_delayed_and_lingering(ctx):
    srv = ctx.serve("--framing", "line", "--delay", "300", "--max-line", "150")
    for i in range(100):
        s = srv.connect()
        s.sendall(b"a\n" * 50 + (b"y" * 180 + b"\n" if i % 2 else b"exit\n") + b"junk" * 100)
        if i % 3 == 0:
            time.sleep(0.001)
        rst_close(s)
    ctx.finish()


@attack("delay")
def memory_shed_while_delay_armed(ctx):
    # A tiny budget: sessions holding delayed replies are shed (reason=memory)
    # while the delay timer is armed; the good client's small replies still
    # come back.
    srv = ctx.serve("--framing", "line", "--delay", "500", "--max-memory", "16384",
                    "--workers", "1")
    socks = []
    for _ in range(30):
        s = srv.connect()
        s.sendall(b"z" * 1000 + b"\n" + b"w\n" * 4000)
        socks.append(s)
    srv.wait_log(r"reason=memory", 1, timeout=10)
    for s in socks:
        rst_close(s)
    ctx.finish()


@attack("delay")
def exit_in_backlog_slow_reader(ctx):
    # Pipelined lines far past the pause mark, then exit; read slowly:
    # every reply, in order, then the FIN.
    srv = ctx.serve("--framing", "line", "--workers", "1")
    n = 200000
    with srv.connect(timeout=20) as s:
        check(recv_exact(s, 9) == b"Welcome!\n", "greeting")
        t = threading.Thread(target=lambda: s.sendall(b"q\n" * n + b"exit\n" + b"after\n" * 10))
        t.start()
        got = bytearray()
        s.settimeout(20)
        while True:
            c = s.recv(8192)
            if not c:
                break
            got += c
            if len(got) % (1 << 20) < 8192:
                time.sleep(0.01)
        t.join()
        check(bytes(got) == b"Hello, q!\n" * n, f"exit in backlog: {len(got)} bytes")
    srv.wait_log(r"reason=exit messages=200000")
    ctx.finish()


@attack("delay")
def delay_exit_then_more_then_fin(ctx):
    srv = ctx.serve("--framing", "line", "--delay", "200")
    socks = []
    for _ in range(50):
        s = srv.connect(timeout=10)
        s.sendall(b"a\nb\nexit\nc\n")
        socks.append(s)
    for s in socks:
        got = recv_all(s, timeout=10)
        check(got == b"Welcome!\nHello, a!\nHello, b!\n", f"delay exit: {got!r}")
        s.close()
    ctx.finish()


@attack("shutdown")
def sigterm_mid_12mb_reply(ctx):
    srv = ctx.serve("--framing", "line", "--max-line", str(16 << 20))
    s = srv.connect(timeout=10)
    recv_exact(s, 9)
    s.sendall(b"L" * (12 << 20) + b"\n")
    got = recv_exact(s, 1 << 20, timeout=10)
    check(len(got) == 1 << 20, "first MiB of the reply")
    srv.good = False
    ctx.finish(good=False, fds=False)
    s.close()


@attack("shutdown")
def sigterm_with_everything_pending(ctx):
    # lingering, delayed, paused, backlog and half-read sessions at once.
    srv = ctx.serve("--framing", "line", "--delay", "1000", "--workers", "2",
                    "--max-line", "100")
    socks = []
    for i in range(40):
        s = srv.connect()
        kind = i % 4
        if kind == 0:
            s.sendall(b"x" * 200 + b"\n")        # lingering
        elif kind == 1:
            s.sendall(b"d\n" * 100)               # delayed
        elif kind == 2:
            s.sendall(b"e\n" * 300000)            # backlog (blocks? no: kernel buffers)
        else:
            s.sendall(b"partial")
        socks.append(s)
    srv.good = False
    ctx.finish(good=False, fds=False)
    for s in socks:
        s.close()


@attack("limits")
def max_conns_half_never_read(ctx):
    from conftest import raise_nofile
    raise_nofile(4096)
    srv = ctx.serve("--framing", "line", "--max-conns", "50", "--workers", "2")
    socks = []
    for i in range(50):
        s = srv.connect()
        recv_exact(s, 9)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            try:
                for _ in range(200):
                    s.send(b"n" * 30000 + b"\n")
            except BlockingIOError:
                pass
        socks.append(s)
    # the 51st is refused with one line
    r = srv.connect()
    got = recv_all(r)
    check(got == b"Error: server busy, too many connections\n", f"refusal: {got!r}")
    r.close()
    for _ in range(100):
        r = srv.connect()
        rst_close(r)
    # free one slot: the good client fits
    socks.pop(0).close()
    srv.wait_log(r"close .* reason=eof")
    ctx.finish(good=True, fds=False)
    for s in socks:
        s.close()


@attack("limits")
def max_memory_one(ctx):
    srv = ctx.serve("--framing", "line", "--max-memory", "1", "--workers", "1")
    socks = []
    for _ in range(20):
        s = srv.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            for _ in range(100):
                s.send(b"k" * 60000 + b"\n")
        except (BlockingIOError, ConnectionResetError, BrokenPipeError):
            pass  # shed already (reason=memory): a reset of our unread input
        socks.append(s)
    srv.wait_log(r"reason=memory", 1, timeout=10)
    good_client(srv, True)
    for s in socks:
        s.close()
    ctx.finish()


@attack("limits")
def idle_timeout_paused_peer(ctx):
    srv = ctx.serve("--framing", "line", "--idle-timeout", "1", "--workers", "1")
    s = srv.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"p" * 60000 + b"\n")
    s.sendall(b"p\n" * 200000)
    srv.wait_log(r"reason=idle-timeout", 1, timeout=8)
    s.close()
    ctx.finish()


@attack("limits")
def max_line_exact_bounds(ctx):
    srv = ctx.serve("--framing", "line", "--max-line", "1000")
    for n, ok in ((1000, True), (1001, False), (999, True)):
        with srv.connect() as s:
            recv_exact(s, 9)
            s.sendall(b"b" * n + b"\r\n")
            if ok:
                want = b"Hello, " + b"b" * n + b"!\n"
                check(recv_exact(s, len(want)) == want, f"max-line {n}")
            else:
                got = recv_all(s)
                check(got == b"Error: message too long\n", f"max-line {n}: {got[:60]!r}")
    # at FIN, without newline
    with srv.connect() as s:
        recv_exact(s, 9)
        s.sendall(b"c" * 1000)
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
        check(got == b"Hello, " + b"c" * 1000 + b"!\n", f"tail at fin {len(got)}")
    with srv.connect() as s:
        recv_exact(s, 9)
        s.sendall(b"c" * 1001)
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
        check(got == b"Error: message too long\n", f"long tail at fin {got[:50]!r}")
    ctx.finish()


@attack("limits")
def half_close_then_reset_pending(ctx):
    srv = ctx.serve("--framing", "line", "--workers", "1")
    for _ in range(50):
        s = srv.connect()
        s.sendall(b"h\n" * 100000)
        s.shutdown(socket.SHUT_WR)
        rst_close(s)
    ctx.finish()


@attack("accept")
def emfile_backoff(ctx):
    # A hostile local user: the server's open-file limit is tiny.
    import resource
    def lim():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    srv = ctx.serve("--framing", "line", "--workers", "1", preexec_fn=lim)
    socks = []
    for _ in range(60):
        try:
            socks.append(srv.connect(timeout=2))
        except OSError:
            break
    srv.wait_log(r"accept: .*pausing accepts", 1, timeout=5)
    for s in socks:
        s.close()
    srv.wait_log(r"accepting again", 1, timeout=10) if False else None
    ctx.finish()


# ---------------- UDP ----------------

def udp_sock(srv):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.connect(srv.addr)
    return u


@attack("udp")
def udp_sizes(ctx):
    srv = ctx.serve("--udp", "--workers", "1")
    u = udp_sock(srv)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for n in (0, 1, 65499, 65500, 65507):
        u.send(b"u" * n)
        got = u.recv(70000)
        if n <= 65499:
            check(got == b"Hello, " + b"u" * n + b"!", f"udp {n}: {len(got)}")
        else:
            check(got == b"Error: datagram too long to answer (max 65499 bytes)", f"udp {n}: {got[:60]!r}")
    ctx.finish()


@attack("udp")
def udp_flood_and_unreachable(ctx):
    srv = ctx.serve("--udp", "--workers", "2")
    # peers that vanish: replies get ICMP port unreachable
    for _ in range(200):
        v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v.sendto(b"gone" * 100, srv.addr)
        v.close()
    f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.monotonic() + 1.5
    n = 0
    while time.monotonic() < end:
        for size in (0, 65507, 1, 1400):
            try:
                f.sendto(b"f" * size, srv.addr)
                n += 1
            except OSError:
                pass
    f.close()
    u = udp_sock(srv)
    for _ in range(5):
        u.send(b"ping")
        try:
            if u.recv(100) == b"Hello, ping!":
                break
        except socket.timeout:
            continue
    else:
        raise Fail("udp good client got no reply after flood")
    ctx.finish()


@attack("limits")
def budget_many_small_partial_lines(ctx):
    # Sessions each under the 16 KiB shed floor, together over the budget.
    srv = ctx.serve("--framing", "line", "--max-memory", str(1 << 20), "--workers", "1")
    socks = []
    for _ in range(300):
        s = srv.connect()
        s.sendall(b"p" * 8000)
        socks.append(s)
    srv.wait_log(r"reason=memory", 150, timeout=15)
    for s in socks:
        s.close()
    ctx.finish()


@attack("limits")
def long_line_cpu_amplification(ctx):
    srv = ctx.serve("--framing", "line", "--max-line", str(16 << 20), "--delay", "1",
                    "--workers", "1")
    def cpu():
        with open(f"/proc/{srv.proc.pid}/stat") as f:
            x = f.read().rsplit(")", 1)[1].split()
        return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")
    c0 = cpu()
    with srv.connect(timeout=60) as s:
        recv_exact(s, 9)
        s.settimeout(60)
        s.sendall(b"L" * (16 << 20) + b"\n")
        want = (16 << 20) + 9
        check(len(recv_exact(s, want, timeout=60)) == want, "16 MiB reply")
    used = cpu() - c0
    check(used < 1.0, f"{used:.2f} s CPU for one 16 MiB line")
    ctx.finish()


@attack("udp")
def udp_idle_workers_rss(ctx):
    a = ctx.serve("--workers", "128")
    b = ctx.serve("--workers", "128", "--udp")
    extra = b.rss_kib() - a.rss_kib()
    check(extra < 8192, f"--udp: {extra} KiB resident for idle workers")
    ctx.finish()


@attack("delay")
def idle_timeout_with_delay_and_backlog(ctx):
    # A client waiting on delayed replies of a backlog is not idle; one that
    # stops reading is closed as idle.
    srv = ctx.serve("--framing", "line", "--delay", "1500", "--idle-timeout", "1")
    with srv.connect(timeout=10) as s:
        recv_exact(s, 9)
        s.sendall(b"w\n" * 3 + b"exit\n")
        got = recv_all(s, timeout=10)
        check(got == b"Hello, w!\n" * 3, f"delayed replies: {got!r}")
    ctx.finish()


def alongside(srv, stop, errors, line=True):
    """A good client that runs while an attack goes on: every reply exact."""
    while not stop.is_set():
        try:
            good_client(srv, line)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            return


@attack("mixed")
def good_client_alongside_hostile_mix(ctx):
    srv = ctx.serve("--framing", "line", "--delay", "50", "--max-memory", str(4 << 20),
                    "--workers", "2", "--max-line", "2000", "--idle-timeout", "2")
    stop, errors = threading.Event(), []
    t = threading.Thread(target=alongside, args=(srv, stop, errors))
    t.start()
    try:
        end = time.monotonic() + 4
        held = []
        i = 0
        while time.monotonic() < end and not errors:
            i += 1
            s = srv.connect()
            k = i % 6
            if k == 0:
                s.sendall(b"a\n" * 20 + b"x" * 3000 + b"\n")
                rst_close(s)
            elif k == 1:
                s.sendall(b"p" * 1900)  # partial, held
                held.append(s)
            elif k == 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setblocking(False)
                try:
                    for _ in range(50):
                        s.send(b"n" * 1999 + b"\n")
                except BlockingIOError:
                    pass
                held.append(s)
            elif k == 3:
                s.sendall(b"e\n" * 10 + b"exit\n" + b"z" * 5000)
                s.close()
            elif k == 4:
                s.sendall(b"h\n" * 100)
                s.shutdown(socket.SHUT_WR)
                held.append(s)
            else:
                rst_close(s)
            if len(held) > 200:
                for h in held[:100]:
                    rst_close(h)
                del held[:100]
    finally:
        stop.set()
        t.join(20)
    check(not errors, f"good client failed alongside: {errors[:2]}")
    for h in held:
        h.close()
    ctx.finish()


@attack("shutdown")
def sigterm_while_shedding(ctx):
    srv = ctx.serve("--framing", "line", "--max-memory", str(1 << 20), "--workers", "2",
                    "--delay", "2000")
    socks = []
    for _ in range(200):
        s = srv.connect()
        s.sendall(b"p" * 8000 + b"\n" + b"q" * 8000)
        socks.append(s)
    srv.good = False
    ctx.finish(good=False, fds=False)
    for s in socks:
        s.close()


@attack("udp")
def udp_ipv6_sizes(ctx):
    srv = ctx.serve("--udp", "--listen", "[::1]:0", "--workers", "1")
    srv.good = True
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for n in (0, 65499, 65500, 65527):
        u.sendto(b"v" * n, srv.addr)
        got = u.recvfrom(70000)[0]
        want = (b"Hello, " + b"v" * n + b"!" if n <= 65499
                else b"Error: datagram too long to answer (max 65499 bytes)")
        check(got == want, f"udp6 {n}: {len(got)}")
    u.close()
    ctx.finish()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "san", "sockit"))
    ap.add_argument("-k", default="")
    a = ap.parse_args()
    os.environ["SOCKIT_BIN"] = os.path.abspath(a.bin)
    passed = failed = 0
    for cat, fn in ATTACKS:
        if a.k and a.k not in fn.__name__ and a.k != cat:
            continue
        ctx = Ctx()
        t0 = time.monotonic()
        try:
            fn(ctx)
            ctx.finish()
            passed += 1
            print(f"PASS {cat}/{fn.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {cat}/{fn.__name__}: {type(e).__name__}: {e}", flush=True)
            if not isinstance(e, Fail):
                traceback.print_exc()
            for srv in ctx.servers:
                if srv.proc.poll() is None:
                    srv.proc.kill()
                    srv.proc.wait()
    print(f"summary: attacks run {passed + failed}, passed {passed}, failed {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
