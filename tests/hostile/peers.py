#!/usr/bin/python3
"""Seeded hostile-peer generator for `sockit serve` (run it on the ASan+UBSan build).

Many concurrent random sessions attack one server while a well-behaved client
talks to it; at the end: no sanitizer report, the server alive, its fd count
back to the baseline, every reply to the good client exact, exit 0 on SIGTERM.

The seed fixes every session's script (what is sent, how it is split, whether
the peer reads, how it ends); thread timing is not reproducible, so a replay
reaches the same inputs, usually the same failure.

    peers.py --sockit build/san/sockit [--config NAME|all] [--seconds S] [--seed N]
"""
import argparse
import collections
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

TLS_ARGS = "@tls"  # in a configuration's options: --tls-cert/--tls-key of a fresh P-256 pair

# Each configuration: extra `serve` options, framing, the --max-line in force.
CONFIGS = {
    "line": (["--framing", "line"], "line", 65536),
    "line-maxline": (["--framing", "line", "--max-line", "1000"], "line", 1000),
    "chunk": ([], "chunk", 65536),
    "line-delay": (["--framing", "line", "--max-line", "1000", "--delay", "50"], "line", 1000),
    "chunk-delay": (["--delay", "50"], "chunk", 65536),
    "line-idle": (["--framing", "line", "--max-line", "1000", "--idle-timeout", "1"], "line", 1000),
    "max-conns": (["--framing", "line", "--max-line", "1000", "--max-conns", "6"], "line", 1000),
    "workers2": (["--framing", "line", "--max-line", "1000", "--workers", "2"], "line", 1000),
    "udp": (["--udp", "--framing", "line", "--max-line", "1000"], "line", 1000),
    # TLS (TLS_ARGS stands for the certificate options): garbage and cut
    # handshakes, one-byte ClientHellos, truncated and corrupted records,
    # resets mid-handshake, and the plain scripts inside real sessions.
    "tls-line": ([TLS_ARGS, "--framing", "line", "--max-line", "1000", "--handshake-timeout",
                  "1"], "line", 1000),
    "tls-chunk-workers2": ([TLS_ARGS, "--workers", "2", "--handshake-timeout", "1"],
                           "chunk", 65536),
}

SAN_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Sanitizer")
LOG_RE = re.compile(r"\d{4}-\d\d-\d\dT")
LISTEN_RE = re.compile(r"listening on (\S+) \((tcp|udp)")
EXITS = [b"exit", b"exit\n", b"exit\r\n", b"EXIT\n", b"exit \n", b"exi", b"exit\x00\n",
         b"\nexit\n", b"exitexit\n", b"exit\r"]
ENDINGS = ["rst", "fin", "halfclose-rst", "abandon", "close"]
UDP_MAX = 65507


class Failure(Exception):
    pass


class Server:
    """`sockit serve` on 127.0.0.1:0; stderr is read in a thread, keeping the
    sanitizer lines whole and only the tail of the rest."""

    def __init__(self, sockit, args, pki=None):
        if TLS_ARGS in args:
            i = args.index(TLS_ARGS)
            args = args[:i] + ["--tls-cert", pki.cert, "--tls-key", pki.key] + args[i + 1:]
        self.proc = subprocess.Popen([sockit, "serve", "--listen", "127.0.0.1:0"] + args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.tail = collections.deque(maxlen=40)
        self.san = []  # a sanitizer report, from its first line on
        self.addrs = {}
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 15
        with self.cond:
            while "tcp" not in self.addrs or ("--udp" in args and "udp" not in self.addrs):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise Failure(f"server did not start: {list(self.tail)}")
                self.cond.wait(0.1)
        self.host, port = self.addrs["tcp"].rsplit(":", 1)
        self.port = int(port)

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                # The report, without the log lines the logger thread mixes in.
                if (self.san and not LOG_RE.match(line)) or SAN_RE.search(line):
                    if len(self.san) < 200:
                        self.san.append(line)
                self.tail.append(line)
                m = LISTEN_RE.search(line)
                if m:
                    self.addrs[m.group(2)] = m.group(1)
                self.cond.notify_all()

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hang after SIGTERM"
        self.reader.join(5)
        return rc


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


class Pki:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1, made with the
    openssl CLI in a temporary directory (removed by close())."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="sockit-hostile-tls.")
        self.cert = os.path.join(self.dir.name, "cert.pem")
        self.key = os.path.join(self.dir.name, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=sockit",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", self.key,
                        "-out", self.cert], check=True, capture_output=True)
        self.ctx = ssl.create_default_context(cafile=self.cert)

    def close(self):
        self.dir.cleanup()


class TlsPeer:
    """TLS driven by hand over a plain socket (ssl.SSLObject on memory BIOs),
    so that a peer can also cut, corrupt or withhold the records it sends."""

    def __init__(self, ctx):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")

    def client_hello(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def handshake(self, s):
        """The whole handshake over s: True once done."""
        while True:
            try:
                self.obj.do_handshake()
                s.sendall(self.out.read())
                return True
            except ssl.SSLWantReadError:
                s.sendall(self.out.read())
                data = s.recv(65536)
                if not data:
                    return False
                self.inc.write(data)

    def records(self, data):
        """data as the TLS records that carry it."""
        self.obj.write(data)
        return self.out.read()

    def read(self, s, want, deadline):
        """Plain text from s until want bytes or the deadline (or the end)."""
        got = b""
        while len(got) < want and time.monotonic() < deadline:
            try:
                got += self.obj.read(want - len(got))
                continue
            except ssl.SSLWantReadError:
                pass
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            data = s.recv(65536)
            if not data:
                break
            self.inc.write(data)
        return got

    def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        return self.out.read()


class GoodClient(threading.Thread):
    """Request/reply in a loop with exact checks; over UDP, a lost datagram
    is re-sent (at most 3 tries per message, as `sockit client --udp`)."""

    def __init__(self, srv, framing, udp, pki=None):
        super().__init__(daemon=True)
        self.srv, self.line, self.udp, self.pki = srv, framing == "line", udp, pki
        self.count = 0
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        try:
            self._udp() if self.udp else self._tcp()
        except Exception as e:  # noqa: BLE001 - any exception is a failure
            self.errors.append(f"after {self.count} exchanges: {e!r}")

    def _tcp(self):
        nl = b"\n" if self.line else b""
        raw = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        if self.pki:  # the seed's client in an SSLContext, as users run it
            raw = self.pki.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        with raw as s:
            got = recv_exact(s, len(b"Welcome!" + nl))
            if got != b"Welcome!" + nl:
                raise Failure(f"greeting {got!r}")
            while not self.halt.is_set():
                msg = b"good %d" % self.count
                want = b"Hello, " + msg + b"!" + nl
                s.sendall(msg + nl)
                got = recv_exact(s, len(want))
                if got != want:
                    raise Failure(f"sent {msg!r}, got {got!r}")
                self.count += 1
                self.halt.wait(0.005)
            s.sendall(b"exit" + nl)
            rest = s.recv(100)
            if rest != b"":
                raise Failure(f"after exit: {rest!r}")

    def _udp(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            while not self.halt.is_set():
                msg = b"good %d" % self.count
                want = b"Hello, " + msg + b"!"
                for _ in range(3):
                    s.sendto(msg, (self.srv.host, self.srv.port))
                    got = self._udp_reply(s, want)
                    if got:
                        break
                else:
                    raise Failure(f"no reply to {msg!r} in 3 tries")
                self.count += 1
                self.halt.wait(0.005)

    @staticmethod
    def _udp_reply(s, want):
        # Replies to earlier tries of earlier messages may still arrive.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                got = s.recv(70000)
            except socket.timeout:
                return False
            if got == want:
                return True
            if not re.fullmatch(rb"Hello, good \d+!", got):
                raise Failure(f"wanted {want!r}, got {got[:80]!r}")
        return False


# ---- what a hostile TCP peer sends ----

def text(rng, n, nl_free=True):
    alphabet = b"abcxyz \r\x00\xff\t" if nl_free else b"ab\n\r\x00 "
    return bytes(rng.choice(alphabet) for _ in range(n))


def piece(rng, max_line):
    """One random element of a hostile stream."""
    k = rng.randrange(14)
    if k == 0:
        return rng.randbytes(rng.randrange(1, 4096))
    if k == 1:
        return b"".join(text(rng, rng.randrange(0, 40)) + b"\n" for _ in range(rng.randrange(1, 20)))
    if k == 2:
        return text(rng, rng.randrange(1, 200))  # a partial line
    if k == 3:
        return b"y" * (max_line - 1) + b"\n"
    if k == 4:
        return b"z" * max_line + b"\n"  # at the limit: a message, or too long?
    if k == 5:
        return b"o" * (max_line + 1) + b"\n"
    if k == 6:
        return b"F" * (max_line * rng.randrange(2, 4) + rng.randrange(1000))  # far over
    if k == 7:
        return b"\n" * rng.randrange(1, 6000)
    if k == 8:
        return rng.choice(EXITS)
    if k == 9:
        return b"\x00" * rng.randrange(1, 50) + b"\n"
    if k == 10:
        return b"\r" * rng.randrange(1, 5) + b"\r\n"
    if k == 11:
        # The known crash: complete lines + an over-long line, in one segment.
        return b"a\nb\nc\n" + b"L" * (max_line + 10)
    if k == 12:
        return b"msg\r\n" * rng.randrange(1, 100)
    return text(rng, rng.randrange(1, 100), nl_free=False)


def splits(rng, data):
    """Cuts data at random points (writes split anywhere, one byte apart too)."""
    if len(data) < 2 or rng.random() < 0.4:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(1, 8))))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def tcp_script(rng, max_line):
    stream = b"".join(piece(rng, max_line) for _ in range(rng.randrange(1, 6)))
    return {
        "writes": splits(rng, stream),
        "pace": rng.random() < 0.3,      # a pause between writes
        "reads": rng.choice(["never", "some", "all"]),
        "ending": rng.choice(ENDINGS),
    }


def describe(script):
    w = script["writes"]
    return (f"{len(w)} writes, {sum(map(len, w))} bytes, first {w[0][:40]!r}, "
            f"reads={script['reads']} ending={script['ending']}")


def set_linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def end_session(s, rng, end, abandoned):
    """Ends a hostile session as its script says; True when it is left open
    (abandoned: silent until the run ends), so the caller must not close it."""
    if end == "rst":
        set_linger0(s)
    elif end == "fin":
        s.shutdown(socket.SHUT_WR)
        drain(s, 2.5, until_eof=True)
    elif end == "halfclose-rst":
        s.shutdown(socket.SHUT_WR)
        drain(s, rng.random() * 0.02)
        set_linger0(s)
    elif end == "abandon":
        abandoned.append(s)
        return True
    return False


def run_tcp(srv, rng, script, abandoned):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect((srv.host, srv.port))
        for w in script["writes"]:
            s.sendall(w)
            if script["reads"] == "all":
                drain(s, 0.0)
            if script["pace"]:
                time.sleep(rng.random() * 0.005)  # pacing, not synchronisation
        if script["reads"] == "some":
            drain(s, 0.05)
        if end_session(s, rng, script["ending"], abandoned):
            return
    except OSError:
        pass  # a hostile peer may be refused, reset or timed out: fine
    s.close()


TLS_KINDS = ["garbage", "hello-cut", "hello-bytewise", "hello-corrupt", "handshake-rst",
             "session", "session-cut-record", "session-corrupt-record"]


def tls_script(rng, max_line):
    script = tcp_script(rng, max_line)
    script["kind"] = rng.choice(TLS_KINDS)
    return script


def run_tls(srv, rng, script, abandoned, pki):
    """One hostile TLS peer: what it does before, in and after the handshake."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    kind, end = script["kind"], script["ending"]
    try:
        s.connect((srv.host, srv.port))
        tls = TlsPeer(pki.ctx)
        if kind == "garbage":  # a plain-text client, or noise, at a TLS port
            for w in script["writes"]:
                s.sendall(w)
        elif kind.startswith("hello"):
            hello = tls.client_hello()
            if kind == "hello-cut":
                s.sendall(hello[:rng.randrange(1, len(hello))])
            elif kind == "hello-bytewise":  # a ClientHello a byte at a time, then stalled
                for b in hello[:rng.randrange(1, 40)]:
                    s.sendall(bytes([b]))
                    time.sleep(0.002)  # pacing, not synchronisation
            else:
                bad = bytearray(hello)
                for _ in range(rng.randrange(1, 4)):
                    bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
                s.sendall(bytes(bad))
        elif kind == "handshake-rst":  # gone in the middle of the handshake
            s.sendall(tls.client_hello())
            drain(s, rng.random() * 0.01)
            end = "rst"
        else:
            if not tls.handshake(s):
                s.close()
                return
            tls.read(s, 9, time.monotonic() + 1.0)  # the greeting
            records = b"".join(tls.records(w) for w in script["writes"])
            if kind == "session-cut-record":  # a record's header promises more
                records = records[:rng.randrange(1, len(records))]
            elif kind == "session-corrupt-record":  # a bad record MAC
                bad = bytearray(records)
                bad[rng.randrange(len(bad))] ^= 0x40
                records = bytes(bad)
            for part in splits(rng, records):
                s.sendall(part)
            if script["reads"] != "never":
                tls.read(s, 1 << 20, time.monotonic() + 0.05)
            if end == "close":
                s.sendall(tls.close_notify())
        if end_session(s, rng, end, abandoned):
            return
    except (OSError, ssl.SSLError):
        pass  # refused, reset, timed out, or the server's alert: fine
    s.close()


def drain(s, seconds, until_eof=False):
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        s.settimeout(max(left, 0.0) or 0.0001)
        try:
            if not s.recv(65536) and until_eof:
                break
        except (socket.timeout, BlockingIOError):
            if left <= 0:
                break
        if left <= 0 and not until_eof:
            break
    s.settimeout(1.0)


def udp_size(rng):
    return rng.choice([0, 1, 65499, 65500, UDP_MAX, rng.randrange(UDP_MAX + 1),
                       rng.randrange(2000)])


def run_udp(srv, rng, abandoned):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(rng.randrange(1, 6)):
            n = udp_size(rng)
            data = rng.choice([b"exit", b"\n", b""]) if rng.random() < 0.2 else rng.randbytes(n)
            s.sendto(data, (srv.host, srv.port))
            time.sleep(rng.random() * 0.01)  # pacing: keep the good client's datagrams room
        if rng.random() < 0.5:
            drain(s, 0.02)
    except OSError:
        pass
    s.close()


# ---- one run ----

def run(sockit, config, seconds, seed, peers=12, out=sys.stdout):
    """Runs one configuration for `seconds`; raises Failure with the details."""
    args, framing, max_line = CONFIGS[config]
    udp = "--udp" in args
    pki = Pki() if TLS_ARGS in args else None
    try:
        return run_with(sockit, config, seconds, seed, peers, out, pki)
    finally:
        if pki:
            pki.close()


def run_with(sockit, config, seconds, seed, peers, out, pki):
    args, framing, max_line = CONFIGS[config]
    udp = "--udp" in args
    print(f"hostile peers: config={config} seed={seed} seconds={seconds} "
          f"(replay: tests/hostile/peers.py --config {config} --seed {seed})", file=out, flush=True)
    srv = Server(sockit, args, pki)
    recent = collections.deque(maxlen=32)  # the last sessions' scripts, for the report
    abandoned = []
    lock = threading.Lock()
    sessions = [0]
    problems = []
    good = GoodClient(srv, framing, udp, pki)
    try:
        base = srv.fd_count()
        good.start()
        # The good client is in (and holds its --max-conns slot) before the peers come.
        limit = time.monotonic() + 15
        while good.count == 0 and not good.errors and time.monotonic() < limit:
            time.sleep(0.01)  # polling a condition with a deadline
        if good.count == 0:
            raise Failure(f"config={config} seed={seed}: good client never answered: "
                          f"{good.errors} {list(srv.tail)[-5:]}")
        deadline = time.monotonic() + seconds

        def worker(k):
            i = 0
            while time.monotonic() < deadline and srv.alive():
                sid = seed * 1_000_003 + k * 100_000 + i
                i += 1
                rng = random.Random(sid)
                if udp and rng.random() < 0.5:
                    with lock:
                        recent.append(f"session {sid}: udp")
                    run_udp(srv, rng, abandoned)
                elif pki:
                    script = tls_script(rng, max_line)
                    with lock:
                        recent.append(f"session {sid}: tls {script['kind']}, {describe(script)}")
                    run_tls(srv, rng, script, abandoned, pki)
                else:
                    script = tcp_script(rng, max_line)
                    with lock:
                        recent.append(f"session {sid}: {describe(script)}")
                    run_tcp(srv, rng, script, abandoned)
                with lock:
                    sessions[0] += 1
                    if len(abandoned) > 4:  # bounded: at most a few held at once
                        abandoned.pop(0).close()

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(peers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 30)
        for s in abandoned:
            s.close()
        good.halt.set()
        good.join(15)
        if good.is_alive():
            problems.append("good client hung")
        problems += [f"good client: {e}" for e in good.errors]
        if not srv.alive():
            problems.append(f"server died: exit {srv.proc.returncode}")
        else:
            # fds back to the baseline (lingering sessions end within 2 s)
            limit = time.monotonic() + 20
            while srv.fd_count() != base and time.monotonic() < limit:
                time.sleep(0.05)  # polling a condition with a deadline
            if srv.fd_count() != base:
                problems.append(f"server fds: {srv.fd_count()} open, baseline {base}")
    finally:
        rc = srv.stop()
    if rc != 0:
        problems.append(f"exit status {rc} after SIGTERM (0 expected)")
    if srv.san:
        problems.append("sanitizer report:\n    " + "\n    ".join(srv.san[:40]))
    print(f"hostile peers: config={config} seed={seed}: {sessions[0]} sessions, "
          f"good client {good.count} exchanges", file=out, flush=True)
    if problems:
        raise Failure(f"config={config} seed={seed}: " + "\n".join(problems) +
                      "\nlast sessions:\n    " + "\n    ".join(recent))
    return sessions[0], good.count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--sockit", default=os.environ.get(
        "SOCKIT_BIN", os.path.join(here, "..", "..", "build", "san", "sockit")))
    ap.add_argument("--config", default="all", choices=["all"] + list(CONFIGS))
    ap.add_argument("--seconds", type=float, default=15.0, help="per configuration")
    ap.add_argument("--minutes", type=float,
                    help="run rounds of every configuration (a new seed each) for this long")
    ap.add_argument("--seed", type=int, help="default: random (printed)")
    ap.add_argument("--peers", type=int, default=12, help="concurrent hostile peers")
    a = ap.parse_args()
    configs = list(CONFIGS) if a.config == "all" else [a.config]
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    if a.minutes:  # a round of every configuration fits in the time asked for
        a.seconds = min(a.seconds, max(5.0, a.minutes * 60 / len(configs)))
    failed = runs = 0
    end = time.monotonic() + (a.minutes or 0) * 60
    while True:
        for c in configs:
            try:
                run(a.sockit, c, a.seconds, seed, a.peers)
            except Failure as e:
                failed += 1
                print(f"FAIL {e}", flush=True)
            runs += 1
            if a.minutes and time.monotonic() >= end:
                break
        if not a.minutes or time.monotonic() >= end:
            break
        seed += 1  # --minutes: new scripts every round
    print(f"hostile peers: {runs} runs ({len(configs)} configurations), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
