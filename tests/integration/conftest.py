"""Shared fixtures: start the real `sockit` binary on a free loopback port.

Every process a test starts is stopped by PID at the end of the test, and
every wait has a deadline."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

SOCKIT = os.environ.get("SOCKIT_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "sockit")
SOCKIT = os.path.abspath(SOCKIT)
SEED_DIR = os.path.join(os.path.dirname(__file__), "seed")


class Server:
    """A running `sockit serve`; stderr is collected line by line."""

    LISTEN_RE = re.compile(r"listening on (\S+) \((tcp|udp)")

    def __init__(self, args, timeout=10.0):
        self.args = [SOCKIT, "serve"] + list(args)
        if not any(a in ("--listen", "-l") for a in args):
            self.args += ["--listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.addrs = []
        self.wait_for(lambda: self._listening(), timeout, "listening line")
        self.host, self.port = self._split(self.addrs[0][0])

    def _listening(self):
        self.addrs = [(m.group(1), m.group(2)) for line in self.lines
                      for m in [self.LISTEN_RE.search(line)] if m]
        return bool(self.addrs) and (self.proc.poll() is None)

    @staticmethod
    def _split(addr):
        host, _, port = addr.rpartition(":")
        return host.strip("[]"), int(port)

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not pred()):
                    raise AssertionError(
                        f"timed out waiting for {what}; exit={self.proc.poll()} "
                        f"stderr={self.lines[-20:]}")
                self.cond.wait(min(left, 0.1))

    def log_count(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for line in self.lines if rx.search(line))

    def wait_log(self, pattern, count=1, timeout=10.0):
        self.wait_for(lambda: self.log_count(pattern) >= count, timeout,
                      f"{count}x /{pattern}/")

    @property
    def addr(self):
        return (self.host, self.port)

    def connect(self, timeout=5.0):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.addr)
        return s

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the server and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit after signal")
        self.reader.join(5)
        return rc


@pytest.fixture
def serve():
    """serve(*args) starts a server; all are stopped after the test."""
    started = []

    def start(*args, timeout=10.0):
        srv = Server(args, timeout)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


def recv_exact(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def recv_until(sock, marker, timeout=5.0, limit=1 << 20):
    sock.settimeout(timeout)
    buf = b""
    while marker not in buf and len(buf) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def run_sockit(*args, input=None, timeout=30.0):
    return subprocess.run([SOCKIT] + list(args), input=input, capture_output=True,
                          timeout=timeout)
