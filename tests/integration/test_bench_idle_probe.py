"""sockit bench --idle --probe N: one round trip on N of the held connections,
on SIGUSR1 (the hold goes on) or when the hold ends; replies checked
(bench/million.sh uses it on a server holding a million connections).

Every process is stopped by PID; every wait has a deadline and synchronises
on a line bench prints or a count the server shows."""
import json
import re
import signal
import socket
import subprocess
import threading

import pytest

from conftest import SOCKIT, run_sockit, wait_until


class Bench:
    """A running `sockit bench`; stderr is collected line by line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([SOCKIT, "bench", *args, "--json"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines, self.out = [], []
        # One reader per pipe (communicate() would take stderr's last lines).
        self.readers = [threading.Thread(target=self._read, args=a, daemon=True)
                        for a in ((self.proc.stderr, self.lines), (self.proc.stdout, self.out))]
        for r in self.readers:
            r.start()

    @staticmethod
    def _read(pipe, into):
        for raw in pipe:
            into.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_line(self, pattern, timeout=20.0):
        rx = re.compile(pattern)
        wait_until(lambda: any(rx.search(l) for l in self.lines) or self.proc.poll() is not None,
                   timeout, f"bench line /{pattern}/")
        assert any(rx.search(l) for l in self.lines), (self.proc.poll(), self.lines)

    def finish(self, sig=None, timeout=30.0):
        """Optionally signals bench; returns (exit status, the JSON report)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for r in self.readers:
            r.join(5)
        assert len(self.out) == 1, self.out  # one JSON object, one line
        return self.proc.returncode, json.loads(self.out[0])


def summary_messages(srv):
    assert srv.stop() == 0
    line = [x for x in srv.lines if "summary:" in x][-1]
    return int(re.search(r"messages=(\d+)", line).group(1))


class GreetOnly:
    """Greets every connection with "Welcome!" (gated: once gate is set),
    then answers every read with `reply` (None: never answers). Closed by
    close(); its threads end within 0.2 s of it."""

    def __init__(self, reply=None, gated=False):
        self.reply = reply
        self.gate = threading.Event()  # gated: greetings wait for it
        if not gated:
            self.gate.set()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        while not self.gate.wait(0.2):
            if self.stopping:
                return
        try:
            conn.sendall(b"Welcome!")
            conn.settimeout(0.2)
            while self.reply is not None and not self.stopping:
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    return
                conn.sendall(self.reply)
        except OSError:
            return  # bench closed it

    def close(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.lsock.close()


def test_probe_when_the_hold_ends(serve):
    srv = serve("--quiet")
    b = Bench(f"127.0.0.1:{srv.port}", "--idle", "0.5", "-c", "50", "--probe", "10")
    rc, d = b.finish()
    assert rc == 0, b.lines
    assert d["idle"]["open"] == 50 and d["errors"] == 0
    assert d["sent"] == 10 and d["replies"] == 10 and d["latency_us"]["count"] == 10
    assert any("probe: 10 of 10 answered" in l for l in b.lines), b.lines
    assert summary_messages(srv) == 10  # one message on each probed connection, no more


def test_probe_on_sigusr1_while_the_hold_goes_on(serve):
    srv = serve("--quiet", "--workers", "2")
    # Two threads: the probe is split between them (4 + 4), each share
    # spread over its own connections.
    b = Bench(f"127.0.0.1:{srv.port}", "--idle", "60", "-c", "40", "--threads", "2",
              "--probe", "8")
    b.wait_line(r"holding connections")
    b.proc.send_signal(signal.SIGUSR1)
    b.wait_line(r"probe: 8 of 8 answered")
    # The hold goes on: every connection is still open at the server, and
    # a second SIGUSR1 sends nothing more.
    assert srv.fd_count() >= 40
    b.proc.send_signal(signal.SIGUSR1)
    rc, d = b.finish(signal.SIGINT)
    assert rc == 1 and d["interrupted"], b.lines  # SIGINT ended the hold early
    assert d["idle"]["open"] == 40 and d["errors"] == 0
    assert d["sent"] == 8 and d["replies"] == 8
    assert summary_messages(srv) == 8


def test_sigusr1_before_the_hold_is_kept():
    """A SIGUSR1 that comes while connections are still opening is not lost:
    the probe runs as soon as the hold begins."""
    gs = GreetOnly(reply=b"Hello, bench!", gated=True)
    try:
        b = Bench(f"127.0.0.1:{gs.port}", "--idle", "60", "-c", "5", "--probe", "5")
        # A connection reached the server: bench installed its handlers
        # before it started connecting. No greeting yet, so no hold.
        wait_until(lambda: len(gs.conns) >= 1, 10, "a connection")
        b.proc.send_signal(signal.SIGUSR1)
        assert not any("holding" in l for l in b.lines)
        gs.gate.set()
        b.wait_line(r"probe: 5 of 5 answered")
        rc, d = b.finish(signal.SIGTERM)
    finally:
        gs.close()
    assert rc == 1 and d["interrupted"], b.lines
    assert d["sent"] == 5 and d["replies"] == 5 and d["errors"] == 0


def test_unanswered_probe_is_a_timeout():
    gs = GreetOnly(reply=None)
    try:
        b = Bench(f"127.0.0.1:{gs.port}", "--idle", "0.2", "-c", "6", "--probe", "3",
                  "--timeout", "2")  # also the connects' bound: room for a loaded machine
        rc, d = b.finish()
    finally:
        gs.close()
    assert rc == 1, b.lines
    assert d["sent"] == 3 and d["replies"] == 0
    assert d["error_classes"]["timeout"] == 3 and d["errors"] == 3
    assert d["idle"]["open"] == 3  # the probed connections failed
    assert any("probe: 0 of 3 answered" in l for l in b.lines), b.lines


def test_wrong_probe_reply_is_a_protocol_error():
    gs = GreetOnly(reply=b"Hello, someone else!")
    try:
        b = Bench(f"127.0.0.1:{gs.port}", "--idle", "0.2", "-c", "4", "--probe", "2")
        rc, d = b.finish()
    finally:
        gs.close()
    assert rc == 1, b.lines
    assert d["sent"] == 2 and d["replies"] == 0
    assert d["error_classes"]["protocol"] == 2


@pytest.mark.parametrize("args,msg", [
    (["--probe", "3", "-n", "5"], b"--probe needs --idle"),
    (["--idle", "1", "-c", "2", "--probe", "3"], b"--probe 3 is more than the 2 connections"),
    (["--idle", "1", "--probe", "0"], b"--probe"),
    (["--idle", "1", "--probe", "x"], b"--probe"),
])
def test_probe_usage_errors(args, msg):
    r = run_sockit("bench", "127.0.0.1:9", *args, timeout=10)
    assert r.returncode == 2, r
    assert msg in r.stderr and r.stderr.count(b"\n") == 1, r.stderr


def test_help_names_probe():
    r = run_sockit("bench", "--help", timeout=10)
    assert r.returncode == 0 and b"--probe N" in r.stdout
