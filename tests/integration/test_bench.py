"""sockit bench against `sockit serve` and against small servers written here.

Counts are asserted exactly; the only timing assertion is --rate holding a
light rate within a few percent. Every run is bounded by -n or -d and a
subprocess timeout; every server is stopped by PID (the serve fixture, or
the context managers below)."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SOCKIT, run_sockit, wait_until

PCT_KEYS = {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "p99_99", "max", "histogram"}


def bench(*args, timeout=60):
    return run_sockit("bench", *args, timeout=timeout)


def bench_json(*args, timeout=60):
    out = bench(*args, "--json", timeout=timeout)
    assert out.stdout.count(b"\n") == 1, out.stdout  # exactly one object, one line
    return out, json.loads(out.stdout)


def summary_messages(srv):
    assert srv.stop() == 0
    line = [x for x in srv.lines if "summary:" in x][-1]
    return int(re.search(r"messages=(\d+)", line).group(1))


class ThreadServer:
    """A tiny TCP server for raw mode: answers every `req` it reads with
    `reply`, counting requests. Stopped (joined) by close()."""

    def __init__(self, req=b"PING\r\n", reply=b"+PONG\r\n", greeting=b"", dribble=False):
        self.req, self.reply, self.greeting = req, reply, greeting
        self.dribble = dribble  # send replies one byte per send()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.count = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        conn.settimeout(0.2)
        buf = b""
        with conn:
            if self.greeting:
                conn.sendall(self.greeting)
            while not self.stopping:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                n = buf.count(self.req)
                buf = buf[buf.rfind(self.req) + len(self.req):] if n else buf
                with self.lock:
                    self.count += n
                if self.dribble:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for b in self.reply * n:
                        conn.sendall(bytes([b]))
                else:
                    conn.sendall(self.reply * n)

    def close(self):
        self.stopping = True
        self.lsock.close()
        for t in self.threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class UdpServer:
    """Answers each datagram M with `Hello, M!` from a thread."""

    def __init__(self, drop_every=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.drop_every = drop_every
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.count += 1
            if self.drop_every and self.count % self.drop_every == 0:
                continue
            self.sock.sendto(b"Hello, " + data + b"!", peer)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def test_n_gives_exact_replies_and_server_agrees(serve):
    srv = serve("--quiet")
    out = bench(f"127.0.0.1:{srv.port}", "-n", "10000", "-c", "50")
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert re.search(r"replies\s+10000 of 10000 sent", text), text
    assert re.search(r"errors\s+0\n", text), text
    assert "closed loop" in text
    assert summary_messages(srv) == 10000


def test_json_has_every_field(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "-n", "3000", "-c", "7")
    assert out.returncode == 0, out.stderr
    assert d["tool"] == "sockit bench" and d["version"] == 1
    s = d["settings"]
    assert s["target"] == f"127.0.0.1:{srv.port}"
    assert (s["mode"], s["protocol"], s["framing"], s["loop"]) == \
        ("request", "greeting", "chunk", "closed")
    assert (s["connections"], s["threads"], s["pipeline"], s["requests"]) == (7, 1, 1, 3000)
    assert s["duration_s"] is None and s["rate"] is None and s["message"] == "bench"
    assert {"warmup_s", "timeout_s", "request"} <= s.keys()
    assert d["sent"] == d["replies"] == 3000 and d["errors"] == 0
    assert set(d["error_classes"]) == {"connect", "reset", "timeout", "protocol", "lost"}
    assert set(d["latency_us"]) == PCT_KEYS and d["latency_us"]["count"] == 3000
    lat = d["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] \
        <= lat["p99_99"] <= lat["max"]
    assert d["throughput"] > 0 and d["elapsed_s"] > 0 and d["connects"] == 7
    assert d["bytes_sent"] == 3000 * len(b"bench")
    assert d["bytes_received"] == 7 * len(b"Welcome!") + 3000 * len(b"Hello, bench!")
    assert d["interrupted"] is False


def test_pipelined_line_framing_threads_exact(serve):
    srv = serve("--quiet", "--framing", "line")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "--framing", "line", "-P", "16", "-c", "6",
                        "--threads", "2", "-n", "20001", "--message", "a b\tc")
    assert out.returncode == 0, out.stderr
    assert d["replies"] == 20001 and d["errors"] == 0
    assert d["settings"]["threads"] == 2 and d["settings"]["pipeline"] == 16
    assert summary_messages(srv) == 20001


def test_fewer_requests_than_threads(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "-n", "1", "-c", "4", "--threads", "3",
                        timeout=20)
    assert out.returncode == 0, out.stderr
    assert d["replies"] == 1 and d["errors"] == 0


def test_warmup_is_excluded_from_the_count(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "-n", "2000", "-c", "4", "--warmup", "0.3")
    assert out.returncode == 0, out.stderr
    assert d["replies"] == 2000 and d["latency_us"]["count"] == 2000
    assert summary_messages(srv) > 2000  # the warm-up's messages came on top


def test_duration_mode_counts_consistently(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "-d", "0.5", "-c", "5")
    assert out.returncode == 0, out.stderr
    assert d["settings"]["duration_s"] == 0.5 and d["settings"]["requests"] is None
    assert d["replies"] > 0 and d["errors"] == 0
    assert d["latency_us"]["count"] == d["replies"]
    assert 0.45 < d["elapsed_s"] <= 0.5


def test_rate_holds_on_light_load(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "--rate", "400", "-d", "2", "-c", "4")
    assert out.returncode == 0, out.stderr
    assert d["settings"]["loop"] == "open" and d["settings"]["rate"] == 400
    assert abs(d["throughput"] - 400) / 400 < 0.03, d["throughput"]
    assert abs(d["replies"] - 800) <= 16, d["replies"]
    assert d["rate_achieved"] is True
    assert set(d["service_time_us"]) == PCT_KEYS
    # Latency from the intended send time is never below the service time.
    assert d["latency_us"]["p50"] >= d["service_time_us"]["p50"] * 0.999


def test_rate_with_n_is_exact(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "--rate", "2000", "-n", "500", "-c", "3")
    assert out.returncode == 0, out.stderr
    assert d["replies"] == 500 and d["errors"] == 0


def test_raw_mode_against_a_ping_server():
    with ThreadServer() as ts:
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", r"PING\r\n", "--expect",
                            r"+PONG\r\n", "-c", "4", "-P", "8", "-n", "4000")
        assert out.returncode == 0, out.stderr
        assert d["replies"] == 4000 and d["settings"]["protocol"] == "raw"
        assert d["settings"]["request"] == "PING\r\n"
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", r"PING\r\n", "--reply-until",
                            r"\r\n", "-c", "2", "-P", "3", "-n", "999")
        assert out.returncode == 0 and d["replies"] == 999
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", r"PING\r\n", "--reply-bytes",
                            "7", "-c", "1", "-n", "100")
        assert out.returncode == 0 and d["replies"] == 100
        wait_until(lambda: ts.count == 4000 + 999 + 100, 10, "the server's count")
        assert ts.count == 4000 + 999 + 100


def test_raw_terminator_split_byte_by_byte():
    # "aab" inside "aaab": a matcher that restarts from scratch on a mismatch
    # misses it; the streaming matcher must not, even one byte per read.
    with ThreadServer(req=b"q", reply=b"aaab", dribble=True) as ts:
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", "q", "--reply-until", "aab",
                            "-c", "2", "-P", "2", "-n", "200", "--timeout", "5")
        assert out.returncode == 0, out.stderr
        assert d["replies"] == 200 and d["errors"] == 0
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", "q", "--expect", "aaab",
                            "-c", "2", "-n", "100", "--timeout", "5")
        assert out.returncode == 0 and d["replies"] == 100


def test_connect_mode_raw_does_one_request_per_connection():
    with ThreadServer() as ts:
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--connect", "--raw", r"PING\r\n",
                            "--expect", r"+PONG\r\n", "-n", "60", "-c", "3")
        assert out.returncode == 0, out.stderr
        assert d["replies"] == 60 and d["connects"] == 60 and d["errors"] == 0
        wait_until(lambda: ts.count == 60, 10, "the server's count")
        assert ts.count == 60


def test_raw_mode_greeting_and_wrong_reply():
    with ThreadServer(req=b"x", reply=b"-ERR\r\n", greeting=b"HI\n") as ts:
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", "x", "--greeting", r"HI\n",
                            "--reply-bytes", "6", "-n", "50", "-c", "2")
        assert out.returncode == 0 and d["replies"] == 50
        out, d = bench_json(f"127.0.0.1:{ts.port}", "--raw", "x", "--greeting", r"HI\n",
                            "--expect", r"+OK\r\n", "-n", "50", "-c", "2", "--timeout", "2")
        assert out.returncode == 7
        assert d["error_classes"]["protocol"] > 0 and d["replies"] == 0


def test_connect_mode_counts_connections(serve):
    srv = serve("--quiet")
    out, d = bench_json(f"127.0.0.1:{srv.port}", "--connect", "-n", "300", "-c", "8")
    assert out.returncode == 0, out.stderr
    assert d["settings"]["mode"] == "connect"
    assert d["replies"] == 300 and d["connects"] == 300 and d["errors"] == 0
    assert d["latency_us"]["count"] == 300
    srv.stop()
    line = [x for x in srv.lines if "summary:" in x][-1]
    assert int(re.search(r"connections=(\d+)", line).group(1)) == 300


def test_idle_mode_holds_connections(serve):
    srv = serve("--quiet")
    p = subprocess.Popen([SOCKIT, "bench", f"127.0.0.1:{srv.port}", "--idle", "1.5", "-c",
                          "200", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = []
        for _ in range(5):  # a pre-flight note may come first
            lines.append(p.stderr.readline().decode())
            if "holding" in lines[-1] or not lines[-1]:
                break
        assert "holding" in lines[-1], lines
        assert srv.fd_count() >= 200  # every connection is open at the server now
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    d = json.loads(out)
    assert d["idle"]["open"] == 200 and d["errors"] == 0
    assert d["idle"]["held_s"] >= 1.4


def test_udp_mode_exact_counts():
    with UdpServer() as us:
        out, d = bench_json(f"127.0.0.1:{us.port}", "--udp", "-n", "3000", "-c", "3",
                            "-P", "8")
        assert out.returncode == 0, out.stderr
        assert d["settings"]["mode"] == "udp"
        assert d["replies"] == 3000 and d["errors"] == 0 and us.count == 3000


def test_udp_mode_counts_lost_datagrams():
    with UdpServer(drop_every=10) as us:
        out, d = bench_json(f"127.0.0.1:{us.port}", "--udp", "-n", "200", "-c", "1",
                            "--timeout", "0.2")
        assert out.returncode == 1
        assert d["replies"] + d["error_classes"]["lost"] == 200
        assert d["error_classes"]["lost"] == 20


def test_udp_against_sockit_serve(serve):
    srv = serve("--quiet", "--udp")
    srv.wait_log(r"listening on \S+ \(udp")  # the tcp line may come first
    out, d = bench_json(f"127.0.0.1:{srv.port}", "--udp", "-n", "5000", "-c", "4", "-P", "16")
    assert out.returncode == 0, out.stderr
    assert d["replies"] == 5000 and d["errors"] == 0
    assert srv.stop() == 0
    line = [x for x in srv.lines if "summary:" in x][-1]
    assert int(re.search(r"datagrams=(\d+)", line).group(1)) == 5000


def test_unreachable_target_fails_clearly():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    out = bench(f"127.0.0.1:{port}", "-n", "10", timeout=20)
    assert out.returncode == 4
    assert re.search(rb"connect to 127\.0\.0\.1:\d+: .*refused", out.stderr, re.I), out.stderr


@pytest.mark.parametrize("server,ours,theirs", [("chunk", "line", "chunk"),
                                                 ("line", "chunk", "line")])
def test_wrong_framing_is_named_at_once(serve, server, ours, theirs):
    # A line server's greeting is "Welcome!\n", a chunk server's "Welcome!"
    # with no newline: the run ends with one line naming the mismatch and
    # exit 7, not with --timeout's errors (the timeout here is far away).
    srv = serve("--quiet", "--framing", server)
    out = bench(f"127.0.0.1:{srv.port}", "--framing", ours, "-n", "20", "-c", "2",
                "--timeout", "60", timeout=30)
    assert out.returncode == 7, out.stderr
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("sockit: bench: ") and \
        f"the server uses {theirs} framing" in lines[0] and f"--framing {theirs}" in lines[0], lines


@pytest.mark.parametrize("args,msg", [
    (["-P", "4"], b"needs --framing line"),
    (["-n", "5", "-d", "1"], b"exclude each other"),
    (["-c", "0"], b"-c is too small"),
    (["--threads", "9", "-c", "4"], b"more than the 4 connections"),
    (["--reply-bytes", "3"], b"need --raw"),
    (["--raw", "x"], b"exactly one of"),
    (["--raw", r"\q", "--reply-bytes", "1"], b"unknown escape"),
    (["--message", "exit"], b"must not be \"exit\""),
    (["--udp", "--rate", "10"], b"not supported with --udp"),
    (["--idle", "1", "-n", "3"], b"drop -n"),
])
def test_usage_errors(args, msg):
    out = bench("127.0.0.1:9", *args)
    assert out.returncode == 2
    assert msg in out.stderr, out.stderr


def test_usage_target_and_help():
    assert bench().returncode == 2
    assert bench("nonsense").returncode == 2
    out = bench("--help")
    assert out.returncode == 0
    for word in (b"usage: sockit bench", b"--rate", b"--raw", b"--idle", b"--connect",
                 b"--json", b"coordinated omission", b"Exit status"):
        assert word in out.stdout


def test_nofile_limit_checked_before_start():
    # A hard limit of 64 open files cannot hold 500 connections: say so first.
    out = subprocess.run(["sh", "-c", f"ulimit -n 64 && exec {SOCKIT} bench 127.0.0.1:9 -c 500"],
                         capture_output=True, timeout=20)
    assert out.returncode == 1
    assert b"needs" in out.stderr and b"open files" in out.stderr, out.stderr


def test_sigint_reports_what_was_measured(serve):
    srv = serve("--quiet")
    base = srv.fd_count()
    p = subprocess.Popen([SOCKIT, "bench", f"127.0.0.1:{srv.port}", "-d", "30", "-c", "4",
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Running: its 4 connections are accepted (--quiet logs nothing, so
        # watch the server's open files).
        wait_until(lambda: srv.fd_count() >= base + 4, 10, "4 connections")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    d = json.loads(out)
    assert d["interrupted"] is True and d["replies"] > 0
    assert d["elapsed_s"] < 5
    assert p.returncode == 1  # an interrupted run is not a clean run


def test_live_line_on_a_terminal(serve):
    import pty
    srv = serve("--quiet")
    master, slave = pty.openpty()
    p = subprocess.Popen([SOCKIT, "bench", f"127.0.0.1:{srv.port}", "-d", "2.5", "-c", "2"],
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    live = b""
    try:
        out, _ = p.communicate(timeout=20)
        while True:  # the pty holds what bench wrote to stderr
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            live += chunk
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert p.returncode == 0
    lines = re.findall(rb"\[ +\d+\.\ds\] +[\d.]+/s  total \d+  errors 0", live)
    assert len(lines) >= 2, live
    assert b"throughput" in out and b"[" not in out  # the live line stays off stdout
