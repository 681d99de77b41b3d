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
# The messages the tests read are the English ones, whatever the locale of
# the person running them (test_i18n.py asks for Chinese explicitly).
os.environ["LC_ALL"] = "C.UTF-8"
os.environ.pop("LANGUAGE", None)


class Server:
    """A running `sockit serve`; stderr is collected line by line."""

    # Text, or --log-format json: {"ts":...,"event":"listening","addr":"ADDR","proto":"tcp",...}
    LISTEN_RE = re.compile(r'listening on (\S+) \((tcp|udp)'
                           r'|"event":"listening","addr":"([^"]+)","proto":"(tcp|udp)"')

    def __init__(self, args, timeout=10.0, command=None, **popen_kw):
        """command: another program with the same log lines (an example)."""
        self.args = (command or [SOCKIT, "serve"]) + list(args)
        if command is None and not any(a in ("--listen", "-l") for a in args):
            self.args += ["--listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     **popen_kw)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.addrs = []
        self.wait_for(lambda: self._listening(), timeout, "listening line")
        self.host, self.port = self._split(self.addrs[0][0])

    def _listening(self):
        self.addrs = [(m.group(1) or m.group(3), m.group(2) or m.group(4)) for line in self.lines
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
                # An exited server is given up on once its stderr is read
                # to the end: lines it wrote last may still be in the pipe.
                ended = self.proc.poll() is not None and not self.reader.is_alive()
                if left <= 0 or (ended and not pred()):
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

    def start(*args, timeout=10.0, **popen_kw):
        srv = Server(args, timeout, **popen_kw)
        started.append(srv)
        return srv

    yield start
    # Every server still running is stopped the way a user would (SIGTERM)
    # and must exit 0 with a summary; under the sanitizer build that is also
    # where leaks are reported. A server must never have crashed.
    problems = []
    for srv in started:
        if srv.proc.poll() is None:
            try:
                rc = srv.stop(signal.SIGTERM, timeout=10)
                if rc != 0:
                    problems.append(f"pid {srv.proc.pid}: exit {rc} after SIGTERM")
            except AssertionError as e:
                problems.append(f"pid {srv.proc.pid}: {e}")
        else:
            srv.reader.join(5)
        with srv.cond:
            bad = [l for l in srv.lines
                   if "Sanitizer" in l or "runtime error:" in l or "LeakSanitizer" in l]
        if bad:
            problems.append(f"pid {srv.proc.pid}: " + " | ".join(bad[:5]))
    assert not problems, problems


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


def read_to_end(sock, timeout=5.0):
    """Everything the peer sends until its end (its FIN; with TLS its close_notify)."""
    sock.settimeout(timeout)
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def stderr_on_a_terminal(args, timeout=10.0, cwd=None, stdout_too=False):
    """Runs args with standard error on a pseudo-terminal (stdin not one, stdout only if
    stdout_too); returns (exit status, every byte written to the terminal)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                             stdout=slave if stdout_too else subprocess.DEVNULL,
                             stderr=slave, cwd=cwd)
        os.close(slave)
        slave = None
        seen = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    return rc, seen


def terminal_screen(data):
    """The lines a terminal shows after data (bytes written to it, the pty's \\r\\n for
    \\n): text, \\r, \\n, cursor up (ESC [ 1 A), clear the line (ESC [ 2 K) and clear to
    its end (ESC [ K); any other escape sequence fails. Nothing scrolls off."""
    lines, row, col = [[]], 0, 0
    text = data.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\033":
            m = re.match(r"\033\[(\d*)([A-Za-z])", text[i:])
            assert m and m.group(2) in "AK", repr(text[i:i + 10])
            if m.group(2) == "A":
                row = max(0, row - int(m.group(1) or 1))
            elif m.group(1) == "2":
                lines[row] = []
            else:
                del lines[row][col:]
            i += m.end()
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            row += 1
            if row == len(lines):
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in lines]


def run_sockit(*args, input=None, timeout=30.0):
    return subprocess.run([SOCKIT] + list(args), input=input, capture_output=True,
                          timeout=timeout)


def signal_when(argv, event, sig=signal.SIGINT, timeout=10.0, **popen_kw):
    """Runs argv, sends sig once event (a threading.Event) is set; returns
    the exit status and standard error (text). Killed if it outlives timeout."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen_kw)
    try:
        assert event.wait(timeout), f"never got to the point of the signal: {argv}"
        p.send_signal(sig)
        p.wait(timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err = p.stderr.read().decode()
        p.stderr.close()
    return p.returncode, err


# ---- helpers for the serve/client suites ----

SANITIZED = "/san/" in SOCKIT


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE soft limit to at least `want`
    (bounded by the hard limit); returns the new soft limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def wait_until(pred, timeout=10.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _server_socket(srv, sock):
    """The server's end of the connection `sock` as the kernel reports it in
    /proc/net/tcp{,6}: (state, unsent bytes, unread bytes), or None."""
    peer_port = sock.getsockname()[1]
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (int(local.rsplit(":", 1)[1], 16) == srv.port
                        and int(remote.rsplit(":", 1)[1], 16) == peer_port):
                    tx, rx = fields[4].split(":")
                    return int(fields[3], 16), int(tx, 16), int(rx, 16)
    return None


TCP_CLOSE_WAIT = 8


def wait_read_by_server(srv, socks, timeout=10.0):
    """Waits until the server has read everything sent on each of socks
    (its socket's receive queue is empty)."""
    def done():
        return all((_server_socket(srv, s) or (0, 0, 0))[2] == 0 for s in socks)
    wait_until(done, timeout, "the server to read what was sent")


def wait_fin_seen(srv, socks, timeout=10.0):
    """Waits until the server's end of each of socks has our FIN (CLOSE_WAIT)."""
    def done():
        return all((_server_socket(srv, s) or (0, 0, 0))[0] == TCP_CLOSE_WAIT for s in socks)
    wait_until(done, timeout, "the server's socket to see our FIN")


def wait_paused(srv, sock, timeout=10.0, polls=5, input_waiting=True):
    """Waits until the server can do no more for sock without our reading:
    its socket's queues have not moved for `polls` polls in a row, with
    input left unread on its side (the server stopped reading) unless
    input_waiting is False (it may also have read everything)."""
    seen = []

    def stalled():
        st = _server_socket(srv, sock)
        seen.append(st[1:] if st else None)
        tail = seen[-polls:]
        return (len(tail) == polls and len(set(tail)) == 1 and tail[0] is not None
                and (tail[0][1] > 0 or not input_waiting))
    wait_until(stalled, timeout, "the server to stop reading (paused)")


def wait_writable(sock, timeout=1.0):
    """Waits until sock can take more bytes (or timeout); True if it can."""
    import select
    return bool(select.select([], [sock], [], timeout)[1])


def wait_fds(srv, baseline, timeout=10.0):
    """Waits until the server's open fd count is back to `baseline`."""
    last = []

    def back():
        last[:] = [srv.fd_count()]
        return last[0] == baseline
    try:
        wait_until(back, timeout, f"fd count back to {baseline}")
    except AssertionError:
        raise AssertionError(f"server fds: {last[0]} open, baseline {baseline}")


class GoodClient:
    """A well-behaved client in a thread: request/reply in a loop, every
    reply checked. `stop()` ends it and returns the number of exchanges;
    `errors` lists what went wrong (it must stay empty)."""

    def __init__(self, srv, framing="line", pause=0.005, reply_timeout=5.0):
        self.srv = srv
        self.line = framing == "line"
        self.pause = pause
        self.reply_timeout = reply_timeout
        self.errors = []
        self.count = 0
        self.max_latency = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_until(lambda: self.count > 0 or self.errors, 10, "good client's first reply")
        assert not self.errors, self.errors

    def _run(self):
        try:
            s = self.srv.connect(timeout=self.reply_timeout)
        except OSError as e:
            self.errors.append(f"connect: {e!r}")
            return
        with s:
            try:
                greet = b"Welcome!\n" if self.line else b"Welcome!"
                got = recv_exact(s, len(greet), self.reply_timeout)
                if got != greet:
                    self.errors.append(f"greeting {got!r}")
                    return
                i = 0
                while not self._stop.is_set():
                    msg = b"good %d" % i
                    want = b"Hello, " + msg + b"!" + (b"\n" if self.line else b"")
                    t0 = time.monotonic()
                    s.sendall(msg + (b"\n" if self.line else b""))
                    got = recv_exact(s, len(want), self.reply_timeout)
                    self.max_latency = max(self.max_latency, time.monotonic() - t0)
                    if got != want:
                        self.errors.append(f"exchange {i}: sent {msg!r}, got {got!r}")
                        return
                    self.count += 1
                    i += 1
                    self._stop.wait(self.pause)
                s.sendall(b"exit\n" if self.line else b"exit")
                if s.recv(100) != b"":
                    self.errors.append("no close after exit")
            except OSError as e:
                self.errors.append(f"after {self.count} exchanges: {e!r}")

    def stop(self, timeout=10.0):
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "good client thread hung"
        return self.count


def cpu_seconds(pid):
    """User + system CPU time used so far by process pid."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
