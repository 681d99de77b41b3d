#!/usr/bin/python3
"""Soak: N minutes of mixed load on one `sockit serve`; its memory and fds must end flat.

Load, all at once, on loopback:
  - good TCP clients (line framing): greeting, a few messages, "exit"; every reply checked
  - hostile TCP peers, in turn: random bytes and over-long lines, a peer that sends
    and never reads (the server must pause it, not buffer), a reset mid-message,
    a silent peer (ended by --idle-timeout)
  - UDP datagrams to the same server, every reply checked
  - `sockit fetch` of a file from a local nginx (http and https), every body checked
    (the fetches exercise the client; the server under watch is the `sockit serve`)

Each second the server's VmRSS (/proc/PID/status) and open fds are written to a CSV.
Flat means (after a warm-up of the first 10% of the run):
  RSS: max of the last 20% <= max of the first 20% after warm-up * 1.10 + 1024 KiB
  fds: max of the last 20% <= max of the first 20% after warm-up + 8
and, once the load stops, the server's fd count returns to what it was before any
client (within 5 s). Any wrong reply to a good client or UDP datagram, any failed
fetch, or a sanitizer report on the server's stderr fails the soak.

usage: soak.py --minutes N [--csv FILE] [--plot FILE]   (SOCKIT_BIN: the binary)
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import conftest  # noqa: E402  (Server: starts sockit serve, reads its log)
import nginx_util  # noqa: E402

SAN_RE = re.compile(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer")
IDLE_S = 3
MAX_LINE = 4096


class SoakServer(conftest.Server):
    """conftest's Server, keeping only the recent log lines (a long soak logs millions)."""

    def __init__(self, *a, **kw):
        self.sanitizer = []
        super().__init__(*a, **kw)

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                if SAN_RE.search(line):
                    self.sanitizer.append(line)
                self.lines.append(line)
                if len(self.lines) > 4000:
                    del self.lines[:2000]
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()


class Stats:
    def __init__(self):
        self.mu = threading.Lock()
        self.count = {}
        self.failures = []

    def ok(self, what):
        with self.mu:
            self.count[what] = self.count.get(what, 0) + 1

    def fail(self, what, why):
        with self.mu:
            self.count[what + "_failed"] = self.count.get(what + "_failed", 0) + 1
            if len(self.failures) < 20:
                self.failures.append(f"{what}: {why}")


def recv_exact_line(s, buf):
    """Reads up to and including the next \\n; returns (line, rest)."""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"EOF with {buf[:60]!r} pending")
        buf += chunk
    i = buf.index(b"\n") + 1
    return buf[:i], buf[i:]


def good_client(addr, stop, st, rnd):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=10) as s:
                line, buf = recv_exact_line(s, b"")
                if line != b"Welcome!\n":
                    raise AssertionError(f"greeting {line!r}")
                msgs = [("m%d-" % rnd.randrange(1 << 30)).encode() + b"x" * rnd.randrange(200)
                        for _ in range(rnd.randrange(1, 20))]
                s.sendall(b"".join(m + b"\n" for m in msgs))
                for m in msgs:
                    line, buf = recv_exact_line(s, buf)
                    if line != b"Hello, " + m + b"!\n":
                        raise AssertionError(f"reply {line[:80]!r} to {m[:40]!r}")
                s.sendall(b"exit\n")
                while True:  # the server ends the session: EOF, nothing else
                    more = s.recv(65536)
                    if not more:
                        break
                    buf += more
                if buf:
                    raise AssertionError(f"after exit: {buf[:80]!r}")
            st.ok("good")
        except (OSError, EOFError, AssertionError) as e:
            st.fail("good", repr(e))


def hostile_peer(addr, stop, st, rnd):
    kinds = ["garbage", "longline", "never_read", "reset", "silent"]
    silent = []  # held open until the idle timeout closes them
    while not stop.is_set():
        kind = rnd.choice(kinds)
        try:
            s = socket.create_connection(addr, timeout=10)
        except OSError as e:
            st.fail("hostile_connect", repr(e))
            continue
        try:
            if kind == "garbage":
                s.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000))))
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                while s.recv(65536):
                    pass
            elif kind == "longline":
                s.sendall(b"y" * (MAX_LINE + 100))
                s.settimeout(5)
                while s.recv(65536):  # an error line, then the server's FIN
                    pass
            elif kind == "never_read":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(0.2)
                msg = b"z" * 1000 + b"\n"
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        s.send(msg * 64)
                    except socket.timeout:
                        continue
                    except OSError:
                        break  # the server may drop us (output limit): fine
            elif kind == "reset":
                s.sendall(b"half a mess")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif kind == "silent":
                silent.append((time.monotonic(), s))
                s = None
            st.ok("hostile_" + kind)
        except OSError:
            st.ok("hostile_" + kind)  # a hostile peer may well be cut off
        finally:
            if s is not None:
                s.close()
        now = time.monotonic()
        while silent and now - silent[0][0] > IDLE_S + 2:
            silent.pop(0)[1].close()
        while len(silent) > 20:
            silent.pop(0)[1].close()
    for _, s in silent:
        s.close()


def udp_client(addr, stop, st, rnd):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        while not stop.is_set():
            m = ("u%d" % rnd.randrange(1 << 30)).encode() + b"q" * rnd.randrange(500)
            try:
                s.sendto(m, addr)
                while True:  # skip a late reply to an earlier datagram
                    data, _ = s.recvfrom(65536)
                    if data == b"Hello, " + m + b"!":
                        break
                    if not data.startswith(b"Hello, u"):
                        raise AssertionError(f"udp reply {data[:60]!r}")
                st.ok("udp")
            except socket.timeout:
                st.ok("udp_lost")  # UDP may drop under load; counted, not failed
            except (OSError, AssertionError) as e:
                st.fail("udp", repr(e))
            time.sleep(0.005)


def fetcher(ng, ca, work, stop, st, rnd):
    want = hashlib.sha256(open(os.path.join(ng.www, "soak.bin"), "rb").read()).hexdigest()
    out = os.path.join(work, "fetched.bin")
    while not stop.is_set():
        tls = rnd.random() < 0.5
        cmd = [conftest.SOCKIT, "fetch", "-s", "-o", out, "--max-time", "30"]
        if tls:
            cmd += ["--cacert", ca]
        cmd.append(ng.url("/soak.bin", tls=tls))
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            if p.returncode != 0:
                raise AssertionError(f"exit {p.returncode}: {p.stderr[-300:]!r}")
            if SAN_RE.search(p.stderr.decode("utf-8", "replace")):
                raise AssertionError(f"sanitizer: {p.stderr[-300:]!r}")
            with open(out, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != want:
                    raise AssertionError("body differs")
            st.ok("fetch_https" if tls else "fetch_http")
        except (OSError, AssertionError, subprocess.TimeoutExpired) as e:
            st.fail("fetch", repr(e))
        time.sleep(0.2)


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def flat(values, warm, win):
    """(first-window max, last-window max) after the warm-up."""
    first = values[warm:warm + win]
    last = values[-win:]
    return max(first), max(last)


def plot(csv, png, minutes):
    if not shutil.which("gnuplot"):
        print("soak: gnuplot not found (scripts/deps.sh soak): no plot", file=sys.stderr)
        return
    script = f"""set terminal pngcairo size 720,360 font ",9" noenhanced
set output "{png}"
set datafile separator ","
set key bottom right
set xlabel "seconds"
set ylabel "RSS (MiB)"
set y2label "open fds"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set title "sockit serve under a {minutes:g}-minute soak"
plot "{csv}" every ::1 using 1:($2/1024) with lines lw 2 title "RSS (MiB)", \\
     "{csv}" every ::1 using 1:3 axes x1y2 with lines title "open fds"
"""
    r = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
    if r.returncode != 0:  # pngcairo missing in some builds: plain png
        r = subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png").encode(),
                           capture_output=True)
    if r.returncode != 0:
        print("soak: gnuplot failed: " + r.stderr.decode()[-300:], file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2)
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    ap.add_argument("--csv", default=os.path.join(root, "build", "soak", "soak.csv"))
    ap.add_argument("--plot", default=os.path.join(root, "docs", "soak.png"))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    seconds = a.minutes * 60
    if seconds < 30:
        ap.error("--minutes: at least 0.5 (the flatness check needs windows)")
    os.makedirs(os.path.dirname(a.csv), exist_ok=True)
    # On the sanitizer build: ASan's quarantine keeps up to 256 MiB of freed
    # memory by default, which reads as growth; a small one keeps RSS honest.
    opts = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in opts:
        os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=8"
    work = tempfile.mkdtemp(prefix="sockit-soak-")
    srv = ng = None
    threads = []
    stop = threading.Event()
    st = Stats()
    try:
        certs = nginx_util.make_certs(os.path.join(work, "certs"))
        ng = nginx_util.Nginx(os.path.join(work, "nginx"), certs)
        ng.put("soak.bin", random.Random(a.seed).randbytes(256 * 1024))
        srv = SoakServer(["--udp", "--framing", "line", "--idle-timeout", str(IDLE_S),
                          "--max-line", str(MAX_LINE), "--workers", "2"])
        addr = srv.addr
        time.sleep(0.5)  # let the workers settle before the baseline; not a sync point
        base_rss, base_fds = proc_sample(srv.proc.pid)
        jobs = [(good_client, (addr,))] * 4 + [(hostile_peer, (addr,))] * 2 + \
               [(udp_client, (addr,)), (fetcher, (ng, certs["ca"], work))]
        for i, (fn, args) in enumerate(jobs):
            t = threading.Thread(target=fn, args=(*args, stop, st, random.Random(a.seed + i)),
                                 daemon=True)
            t.start()
            threads.append(t)
        samples = []
        t0 = time.monotonic()
        with open(a.csv, "w") as csv:
            csv.write("seconds,rss_kib,fds\n")
            next_t = t0
            while True:
                now = time.monotonic()
                if now - t0 >= seconds:
                    break
                if srv.proc.poll() is not None:
                    raise AssertionError(f"server exited {srv.proc.returncode}: {srv.lines[-10:]}")
                rss, fds = proc_sample(srv.proc.pid)
                samples.append((now - t0, rss, fds))
                csv.write(f"{now - t0:.1f},{rss},{fds}\n")
                csv.flush()
                next_t += 1.0
                time.sleep(max(0.0, next_t - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(30)
        # Every client is gone: the server must be back to its own fds.
        deadline = time.monotonic() + 5
        while proc_sample(srv.proc.pid)[1] > base_fds and time.monotonic() < deadline:
            time.sleep(0.05)
        end_rss, end_fds = proc_sample(srv.proc.pid)
        rc = srv.stop()
    finally:
        stop.set()
        if srv is not None and srv.proc.poll() is None:
            srv.stop()
        if ng is not None:
            ng.stop()
        shutil.rmtree(work, ignore_errors=True)

    n = len(samples)
    warm, win = max(1, n // 10), max(1, n // 5)
    rss_first, rss_last = flat([s[1] for s in samples], warm, win)
    fd_first, fd_last = flat([s[2] for s in samples], warm, win)
    plot(a.csv, a.plot, a.minutes)
    c = st.count
    print(f"soak: {a.minutes:g} min, {n} samples ({a.csv}); plot {a.plot}")
    print(f"soak: RSS KiB: start {base_rss}, max first 20% after warm-up {rss_first}, "
          f"max last 20% {rss_last}, after load {end_rss}")
    print(f"soak: fds: start {base_fds}, max first 20% after warm-up {fd_first}, "
          f"max last 20% {fd_last}, after load {end_fds}")
    print("soak: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    problems = list(st.failures)
    if rss_last > rss_first * 1.10 + 1024:
        problems.append(f"RSS grew: {rss_first} -> {rss_last} KiB")
    if fd_last > fd_first + 8:
        problems.append(f"fds grew: {fd_first} -> {fd_last}")
    if end_fds != base_fds:
        problems.append(f"fds after load {end_fds} != {base_fds} before")
    if rc != 0:
        problems.append(f"server exit status {rc}")
    if srv.sanitizer:
        problems.append("sanitizer: " + " | ".join(srv.sanitizer[:5]))
    for k in ("good", "udp", "fetch_http", "fetch_https"):
        if c.get(k, 0) == 0:
            problems.append(f"no successful {k}")
    if problems:
        print("soak: FAILED\n  " + "\n  ".join(problems))
        return 1
    print("soak: passed (RSS and fds flat, every good client, datagram and fetch correct)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
