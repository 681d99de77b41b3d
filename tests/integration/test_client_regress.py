"""Regressions of `sockit client` as the client of a hostile server (issue 7):
every --timeout is a deadline, replies and greetings are checked exactly,
errors are one clear line."""
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import SOCKIT, run_sockit
from test_client import FakeServer, one_line_error


def drip(c, data, gap=0.5, done=None):
    """Sends data one byte every `gap` seconds until done is set."""
    for b in data:
        if done is not None and done.is_set():
            return
        c.sendall(bytes([b]))
        time.sleep(gap)  # the hostile server's pacing, not a synchronisation


def test_dripping_greeting_is_bounded_by_timeout():
    # "Wel..." one byte every 0.5 s, never complete: --timeout 1 must end it.
    stop = threading.Event()
    with FakeServer(lambda fs, c: drip(c, b"Welcom" + b"e" * 100, 0.3, stop)) as fs:
        t0 = time.monotonic()
        r = run_sockit("client", "--timeout", "1", "-f", "line", f"127.0.0.1:{fs.port}", "hi",
                       timeout=30)
        took = time.monotonic() - t0
        stop.set()
    assert r.returncode == 9
    assert took < 3, took
    err = one_line_error(r)
    assert "greeting" in err and "timed out" in err.lower(), err


def test_dripping_reply_is_bounded_by_timeout():
    stop = threading.Event()

    def behave(fs, c):
        c.sendall(b"Welcome!\n")
        c.settimeout(5)
        c.recv(100)
        drip(c, b"Hello, hi" + b"x" * 100, 0.3, stop)

    with FakeServer(behave) as fs:
        t0 = time.monotonic()
        r = run_sockit("client", "--timeout", "1", "-f", "line", f"127.0.0.1:{fs.port}", "hi",
                       timeout=30)
        took = time.monotonic() - t0
        stop.set()
    assert r.returncode == 9
    assert took < 3, took
    err = one_line_error(r)
    assert "message 1" in err and "timed out" in err.lower(), err


@pytest.mark.parametrize("framing,greeting", [
    ("chunk", b"Welcome!garbage"),
    ("line", b"Welcome!garbage\n"),
    ("line", b"Welcome!!\n"),
])
def test_greeting_must_be_exact(framing, greeting):
    def behave(fs, c):
        c.sendall(greeting)
        c.settimeout(5)
        c.recv(100)

    with FakeServer(behave) as fs:
        r = run_sockit("client", "--timeout", "2", "-f", framing, f"127.0.0.1:{fs.port}", "hi",
                       timeout=10)
    assert r.returncode == 7
    assert r.stdout == b""
    err = one_line_error(r)
    assert "unexpected greeting" in err and "garbage" in err or "!!" in err, err


def test_line_message_ending_in_cr_gets_its_reply(serve):
    srv = serve("--framing", "line")
    r = run_sockit("client", "-f", "line", "--timeout", "5", f"127.0.0.1:{srv.port}", "a\r", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, a!\nHello, b!\n"


def test_nul_in_a_wrong_reply_is_shown_escaped():
    def behave(fs, c):
        c.sendall(b"Welcome!\n")
        c.settimeout(5)
        c.recv(100)
        c.sendall(b"Hel\x00lo, after the NUL\n")
        c.recv(100)

    with FakeServer(behave) as fs:
        r = run_sockit("client", "-f", "line", "--timeout", "5", f"127.0.0.1:{fs.port}", "hi",
                       timeout=10)
    assert r.returncode == 7
    err = one_line_error(r)
    assert "unexpected reply to message 1" in err and "Hel\\0lo, after the NUL" in err, err


def test_accepted_then_reset_is_not_cannot_connect():
    # The server accepts and resets at once, many times: whichever moment the
    # reset reaches the client, it must not be told it could not connect.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    port = lst.getsockname()[1]
    stop = threading.Event()

    def rst_loop():
        lst.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = lst.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()

    t = threading.Thread(target=rst_loop, daemon=True)
    t.start()
    try:
        for _ in range(15):
            r = run_sockit("client", "--timeout", "2", f"127.0.0.1:{port}", "hi", timeout=10)
            assert r.returncode == 1
            err = one_line_error(r)
            assert "cannot connect" not in err and "reset" in err, err
    finally:
        stop.set()
        t.join(5)
        lst.close()


def udp_server(behave):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def run():
        s.settimeout(0.1)
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            behave(s, data, addr, stop)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return s, stop, t


def test_udp_timeout_is_a_deadline_despite_foreign_datagrams():
    # Every datagram gets a stream of wrong answers: --timeout 2 must still end it.
    def flood(s, data, addr, stop):
        for _ in range(100):
            if stop.is_set():
                return
            s.sendto(b"Hello, somebody else!", addr)
            time.sleep(0.05)  # the hostile server's pacing

    s, stop, t = udp_server(flood)
    try:
        t0 = time.monotonic()
        r = run_sockit("client", "--udp", "--timeout", "2", f"127.0.0.1:{s.getsockname()[1]}",
                       "hi", timeout=30)
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join(5)
        s.close()
    assert r.returncode == 7
    assert took < 4, took
    last = r.stderr.decode().strip().splitlines()[-1]
    assert "not its reply" in last and "Hello, somebody else!" in last, last
    assert "UDP may lose" not in last, last


def test_udp_wrong_reply_is_reported_as_wrong():
    s, stop, t = udp_server(lambda s, d, a, st: s.sendto(b"Hello, \x00wrong!", a))
    try:
        r = run_sockit("client", "--udp", "--timeout", "0.9", f"127.0.0.1:{s.getsockname()[1]}",
                       "hi", timeout=10)
    finally:
        stop.set()
        t.join(5)
        s.close()
    assert r.returncode == 7
    last = r.stderr.decode().strip().splitlines()[-1]
    assert "not its reply" in last and "Hello, \\0wrong!" in last, last


@pytest.mark.parametrize("value", ["0x10", "1e3", " 5", "5 ", "+5", "inf", "nan", "1.", ""])
def test_timeout_takes_a_plain_decimal_duration_only(value):
    r = run_sockit("client", "--timeout", value, "127.0.0.1:9", "x")
    assert r.returncode == 2
    assert "--timeout is not a duration" in one_line_error(r)


def test_timeout_overflow_is_too_large():
    r = run_sockit("client", "--timeout", "9" * 30, "127.0.0.1:9", "x")
    assert r.returncode == 2
    assert "--timeout is too large" in one_line_error(r)


@pytest.mark.parametrize("args,msg", [
    (["serve", "--max-conns", "99999999999999999999"], "--max-conns is too large"),
    (["serve", "--max-conns", " 5"], "--max-conns is not a decimal number"),
    (["serve", "--workers", "0x10"], "--workers is not a decimal number"),
    (["bench", "127.0.0.1:9", "-n", "18446744073709551616"], "-n is too large"),
    (["fetch", "--max-time", "1e3", "http://127.0.0.1:9/"], "--max-time is not a duration"),
    (["fetch", "--retry", "-1", "http://127.0.0.1:9/"], "--retry must not be negative"),
])
def test_one_number_syntax_in_every_command(args, msg):
    # One parser (src/cli.c) for every command: an overflow is "too large"
    # (it used to be "too small"), and no hex, exponents or leading spaces.
    r = run_sockit(*args, timeout=10)
    assert r.returncode == 2
    assert msg in one_line_error(r)


def test_send_to_a_slow_reader_is_bounded_by_timeout():
    # The server reads 64 KiB every 0.1 s: each send() makes progress, so
    # only a deadline for the whole message ends a 20 MB one in time.
    stop = threading.Event()

    def slow_reader(fs, c):
        c.sendall(b"Welcome!\n")
        c.settimeout(5)
        while not stop.is_set():
            if not c.recv(65536):
                return
            time.sleep(0.1)  # the slow reader's pace

    with FakeServer(slow_reader) as fs:
        t0 = time.monotonic()
        r = run_sockit("client", "-f", "line", "--timeout", "1", f"127.0.0.1:{fs.port}",
                       input=b"x" * (20 << 20) + b"\n", timeout=60)
        took = time.monotonic() - t0
        stop.set()
    assert r.returncode == 9
    assert took < 4, took
    err = one_line_error(r)
    assert "sending message 1" in err and "timed out" in err.lower(), err
