"""`sockit client` against the real server and against misbehaving fakes."""
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import SEED_DIR, SOCKIT, recv_exact, run_sockit, wait_until


class FakeServer:
    """A loopback listener with scripted behaviour, in a thread.
    behave(conn) runs for each accepted connection."""

    def __init__(self, behave, accept=True):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.conns = []
        self.received = b""
        self._done = threading.Event()
        self._t = None
        if accept:
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._done.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            try:
                self.behave(self, c)
            except OSError:
                pass

    def close(self):
        self._done.set()
        if self._t:
            self._t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def read_line_within(f, timeout):
    """One line from the pipe f, or b"" when none comes within timeout."""
    import select
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([f], [], [], left)[0]:
            break
        b = os.read(f.fileno(), 1)
        if not b:
            break
        line += b
    return line


def listen_queue(port):
    """Connections waiting in the accept queue of the IPv4 listener on port
    (the rx_queue column of /proc/net/tcp for a LISTEN socket)."""
    with open("/proc/net/tcp") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                return int(cols[4].split(":")[1], 16)
    return 0


def one_line_error(r):
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("sockit: "), err
    return err


# ---- against the real server ----

def test_client_messages_with_spaces(serve):
    srv = serve()
    r = run_sockit("client", f"127.0.0.1:{srv.port}", "hello world", "  two  spaces ", "x")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, hello world!\nHello,   two  spaces !\nHello, x!\n"
    assert r.stderr == b""
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=3")


def test_client_line_framing(serve):
    srv = serve("--framing", "line")
    r = run_sockit("client", "--framing", "line", f"127.0.0.1:{srv.port}", "Michael", "a b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, Michael!\nHello, a b!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=2")


def test_client_stdin_mode(serve):
    srv = serve()
    r = run_sockit("client", f"127.0.0.1:{srv.port}", input=b"Michael\nTracy Sarah\nlast")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, Michael!\nHello, Tracy Sarah!\nHello, last!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=3")


def test_client_stdin_mode_line_framing_many(serve):
    srv = serve("--framing", "line")
    lines = [b"m%d with space" % i for i in range(300)] + [b""]
    r = run_sockit("client", "-f", "line", f"127.0.0.1:{srv.port}",
                   input=b"\n".join(lines) + b"\n")
    assert r.returncode == 0, r.stderr
    want = b"Welcome!\n" + b"".join(b"Hello, " + m + b"!\n" for m in lines)
    assert r.stdout == want
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=301")


def test_client_stdin_empty_input(serve):
    srv = serve()
    r = run_sockit("client", f"127.0.0.1:{srv.port}", input=b"")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=0")


def test_client_chunk_stdin_skips_empty_lines(serve):
    # An empty write carries nothing in chunk framing: the line is skipped
    # instead of waiting for a reply that cannot come.
    srv = serve()
    t0 = time.monotonic()
    r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{srv.port}", input=b"a\n\nb\n\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, a!\nHello, b!\n"
    assert time.monotonic() - t0 < 2


def test_client_chunk_empty_msg_arg_is_a_usage_error(serve):
    srv = serve()
    r = run_sockit("client", f"127.0.0.1:{srv.port}", "a", "", "b")
    assert r.returncode == 2
    err = one_line_error(r)
    assert "empty" in err and "--framing line" in err, err
    assert r.stdout == b""


def test_client_line_framing_newline_in_msg_is_a_usage_error(serve):
    srv = serve("--framing", "line")
    r = run_sockit("client", "-f", "line", f"127.0.0.1:{srv.port}", "ok", "two\nlines")
    assert r.returncode == 2
    assert "newline" in one_line_error(r)
    assert r.stdout == b""
    # In chunk framing a newline is just a byte of the message.
    srv2 = serve()
    r = run_sockit("client", f"127.0.0.1:{srv2.port}", "two\nlines")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, two\nlines!\n"


def test_client_line_empty_msg_is_sent(serve):
    srv = serve("--framing", "line")
    r = run_sockit("client", "-f", "line", f"127.0.0.1:{srv.port}", "", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, !\nHello, b!\n"


def test_client_timeout_is_per_reply_not_for_slow_stdin(serve):
    srv = serve("--framing", "line")
    p = subprocess.Popen([SOCKIT, "client", "-f", "line", "--timeout", "0.5",
                          f"127.0.0.1:{srv.port}"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"first\n")
        p.stdin.flush()
        # Once the first reply is out, stay silent longer than --timeout:
        # we are slow, not the server (this pause is what is tested).
        assert read_line_within(p.stdout, 10) == b"Welcome!\n"
        assert read_line_within(p.stdout, 10) == b"Hello, first!\n"
        time.sleep(1.2)
        out, err = p.communicate(input=b"second\n", timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert out == b"Hello, second!\n"


def test_client_exit_message_ends_the_session(serve):
    srv = serve()
    r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{srv.port}", "a", "exit", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, a!\n"
    r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{srv.port}",
                   input=b"a\nexit\nb\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, a!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=1", count=2)


def test_client_line_framing_crlf_stdin(serve):
    srv = serve("--framing", "line")
    r = run_sockit("client", "-f", "line", "--timeout", "5", f"127.0.0.1:{srv.port}",
                   input=b"dos\r\nunix\nexit\r\nnot sent\r\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, dos!\nHello, unix!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=2")


def test_client_localhost_name(serve):
    srv = serve()
    r = run_sockit("client", "--timeout", "5", f"localhost:{srv.port}", "by name")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, by name!\n"


def test_client_ipv6(serve):
    srv = serve("--listen", "[::1]:0")
    r = run_sockit("client", f"[::1]:{srv.port}", "v6")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, v6!\n"


def test_client_against_delay_server(serve):
    srv = serve("--delay", "200")
    t0 = time.monotonic()
    r = run_sockit("client", "--timeout", "3", f"127.0.0.1:{srv.port}", "a", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, a!\nHello, b!\n"
    assert time.monotonic() - t0 >= 0.39


def test_client_server_busy(serve):
    srv = serve("--max-conns", "1")
    with srv.connect() as held:
        assert recv_exact(held, 8) == b"Welcome!"
        r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{srv.port}", "hi")
        assert r.returncode == 1
        err = one_line_error(r)
        assert "Error: server busy" in err, err
        assert r.stdout == b""
    srv.wait_log(r"refuse 127\.0\.0\.1:\d+ reason=max-conns limit=1")


def test_client_reply_that_is_an_error_line_fails(serve):
    srv = serve("--framing", "line", "--max-line", "5")
    r = run_sockit("client", "-f", "line", "--timeout", "5", f"127.0.0.1:{srv.port}",
                   "ok", "far too long", "never sent")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == b"Welcome!\nHello, ok!\n"
    err = one_line_error(r)
    assert "message 2" in err and "Error: message too long" in err, err


def test_seed_client_against_line_server_is_not_needed_but_chunk_works(serve):
    # The seed's client, unchanged apart from the port, against the default server.
    srv = serve("--workers", "1")
    out = subprocess.run([sys.executable, os.path.join(SEED_DIR, "seed_client.py"),
                          str(srv.port)], capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"


# ---- failures ----

def test_client_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connects are refused
        t0 = time.monotonic()
        r = run_sockit("client", f"127.0.0.1:{port}", "hi", timeout=10)
    assert time.monotonic() - t0 < 3
    assert r.returncode == 4
    err = one_line_error(r)
    assert "refused" in err.lower() and f"127.0.0.1:{port}" in err, err
    assert r.stdout == b""


def test_client_timeout_on_silent_server():
    with FakeServer(lambda fs, c: None) as fs:  # accepts, never speaks
        t0 = time.monotonic()
        r = run_sockit("client", "--timeout", "1", f"127.0.0.1:{fs.port}", "hi", timeout=10)
        took = time.monotonic() - t0
    assert r.returncode == 9
    assert 0.9 <= took < 3.0, took
    err = one_line_error(r)
    assert "greeting" in err and "timed out" in err.lower(), err
    assert r.stdout == b""


def test_client_timeout_on_a_reply():
    def greet_only(fs, c):
        c.sendall(b"Welcome!")

    with FakeServer(greet_only) as fs:
        t0 = time.monotonic()
        r = run_sockit("client", "--timeout", "0.5", f"127.0.0.1:{fs.port}", "hi", "more",
                       timeout=10)
        took = time.monotonic() - t0
    assert r.returncode == 9
    assert 0.45 <= took < 2.5, took
    assert r.stdout == b"Welcome!\n"
    err = one_line_error(r)
    assert "message 1" in err and "timed out" in err.lower(), err


def test_client_timeout_on_a_send_the_server_never_reads():
    def greet_never_read(fs, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(b"Welcome!")

    with FakeServer(greet_never_read) as fs:
        t0 = time.monotonic()
        r = run_sockit("client", "--timeout", "1", f"127.0.0.1:{fs.port}",
                       input=b"m" * (32 << 20) + b"\n", timeout=20)
        took = time.monotonic() - t0
    assert r.returncode == 9
    assert took < 5, took
    err = one_line_error(r)
    assert "message 1" in err and "timed out" in err.lower(), err


def test_client_connect_timeout_to_a_full_backlog():
    # A listener that never accepts, with its backlog already full: the
    # kernel drops further SYNs, so the connect itself must time out.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        # The accept queue is full once the kernel shows it holding a connection.
        wait_until(lambda: listen_queue(port) >= 1, 10, "a full accept queue")
        t0 = time.monotonic()
        r = run_sockit("client", "--timeout", "1", f"127.0.0.1:{port}", "hi", timeout=15)
        took = time.monotonic() - t0
    finally:
        for f in fillers:
            f.close()
        lst.close()
    assert r.returncode == 9
    assert took < 3.0, took
    one_line_error(r)


def test_client_server_closes_before_greeting():
    with FakeServer(lambda fs, c: c.close()) as fs:
        r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{fs.port}", "hi", timeout=10)
    assert r.returncode == 1
    err = one_line_error(r)
    assert "closed" in err, err
    assert r.stdout == b""


def test_client_server_closes_after_greeting():
    def greet_and_close(fs, c):
        c.sendall(b"Welcome!")
        c.settimeout(5)
        fs.received = c.recv(100)
        c.close()

    with FakeServer(greet_and_close) as fs:
        r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{fs.port}", "hi", "there",
                       timeout=10)
    assert r.returncode == 1
    assert r.stdout == b"Welcome!\n"
    err = one_line_error(r)
    assert "message 1" in err and "closed" in err, err


def test_client_server_closes_mid_reply_line_framing():
    def half_reply(fs, c):
        c.sendall(b"Welcome!\n")
        c.settimeout(5)
        got = b""
        while not got.endswith(b"\n"):
            got += c.recv(100)
        c.sendall(b"Hello, h")
        c.close()

    with FakeServer(half_reply) as fs:
        r = run_sockit("client", "-f", "line", "--timeout", "5", f"127.0.0.1:{fs.port}", "hi",
                       timeout=10)
    assert r.returncode == 1
    assert r.stdout == b"Welcome!\n"
    assert "closed" in one_line_error(r)


def test_client_reply_split_across_segments_chunk_framing():
    # The pauses are the server's pacing (so the reply arrives in pieces),
    # not a synchronisation.
    def slow_reply(fs, c):
        c.sendall(b"Wel")
        time.sleep(0.1)
        c.sendall(b"come!")
        c.settimeout(5)
        while True:
            m = c.recv(100)
            if not m or m == b"exit":
                break
            for part in (b"Hel", b"lo, ", m, b"!"):
                c.sendall(part)
                time.sleep(0.05)

    with FakeServer(slow_reply) as fs:
        r = run_sockit("client", "--timeout", "5", f"127.0.0.1:{fs.port}", "ab", "cd",
                       timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, ab!\nHello, cd!\n"


# ---- command line ----

@pytest.mark.parametrize("args", [
    [], ["nohostport"], ["127.0.0.1:0"], ["127.0.0.1:99999"],
    ["--framing", "xml", "127.0.0.1:1"], ["--timeout", "0", "127.0.0.1:1"],
    ["--timeout", "-1", "127.0.0.1:1"], ["--timeout", "soon", "127.0.0.1:1"],
], ids=lambda a: " ".join(a) or "no-args")
def test_client_bad_command_line_exit_2(args):
    r = run_sockit("client", *args, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    one_line_error(r)
    assert r.stdout == b""


def test_client_help():
    r = run_sockit("client", "--help", timeout=10)
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.startswith("usage: sockit client")
    for opt in ("--framing", "--timeout", "--udp", "--help"):
        assert opt in out
