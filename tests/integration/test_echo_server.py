"""examples/echo_server: a line echo protocol on the library's server engine
(built by `make` into build/examples/)."""
import os
import signal
import subprocess

from conftest import Server, recv_until

BUILD = os.environ.get("SOCKIT_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
ECHO = os.path.abspath(os.path.join(BUILD, "examples", "echo_server"))


class EchoServer(Server):
    """build/examples/echo_server on a free loopback port (Server's log
    reading and waits, another program)."""

    def __init__(self, timeout=10.0):
        super().__init__(["127.0.0.1:0"], timeout, command=[ECHO])


def test_lines_come_back_unchanged_without_greeting():
    srv = EchoServer()
    try:
        with srv.connect() as c:
            c.sendall(b"hello\nsecond line\r\n\n")
            assert recv_until(c, b"\n\n") == b"hello\nsecond line\n\n"
            c.sendall(b"x" * 60000 + b"\n")
            assert recv_until(c, b"\n") == b"x" * 60000 + b"\n"
    finally:
        assert srv.stop() == 0


def test_sigterm_drains_and_exits_0():
    srv = EchoServer()
    c = srv.connect()
    c.sendall(b"before stop\n")
    assert recv_until(c, b"\n") == b"before stop\n"
    srv.proc.send_signal(signal.SIGTERM)
    # The idle session is closed by the drain: the client sees the end.
    c.settimeout(5)
    assert c.recv(1) == b""
    c.close()
    assert srv.stop() == 0
    assert any(l.startswith("stopped: connections=1 lines=1") for l in srv.lines)


def test_an_overlong_line_closes_only_that_client():
    srv = EchoServer()
    try:
        good = srv.connect()
        bad = srv.connect()
        bad.sendall(b"y" * 70000)  # over the 64 KiB line limit, no newline
        assert recv_until(bad, b"\n") == b"error: line too long\n"
        bad.settimeout(5)
        assert bad.recv(1) == b""  # then the server's FIN
        bad.close()
        srv.wait_log(r"^close 127\.0\.0\.1:\d+ message-too-long messages=0 bytes_in=\d+ "
                     r"bytes_out=\d+ duration_ms=\d+$")
        good.sendall(b"still here\n")
        assert recv_until(good, b"\n") == b"still here\n"
        good.close()
    finally:
        assert srv.stop() == 0


def test_bad_usage_exits_2():
    r = subprocess.run([ECHO, "no-port"], capture_output=True, timeout=10)
    assert r.returncode == 2
    assert r.stderr == b"usage: echo_server HOST:PORT\n"
