"""`sockit client` on the library's loop and stream: back-pressure while a
large message goes out, replies that come while it does, and deadlines that
hold after the client waited on its standard input."""
import fcntl
import socket
import struct
import subprocess
import termios
import threading
import time

import pytest

from conftest import SANITIZED, SOCKIT, run_sockit, wait_until
from test_client import FakeServer, one_line_error, read_line_within


def unread(c):
    """Bytes in the receive queue of socket c (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(c, termios.FIONREAD, b"\0\0\0\0"))[0]


def wait_stalled(c, polls=5, timeout=20):
    """Waits until the peer can send no more on c: its receive queue holds
    bytes and has not grown for `polls` polls in a row."""
    seen = []

    def stalled():
        seen.append(unread(c))
        tail = seen[-polls:]
        return len(tail) == polls and len(set(tail)) == 1 and tail[0] > 0
    wait_until(stalled, timeout, "the client to stop sending (back-pressure)")


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def line_server(c, answer, pace=0):
    """A line server on c: the greeting, then answer(line) for each line
    (until "exit" or the client's FIN), reading every `pace` seconds."""
    c.sendall(b"Welcome!\n")
    c.settimeout(10)
    buf = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            m, buf = buf.split(b"\n", 1)
            if m == b"exit":
                return
            c.sendall(answer(m))
        time.sleep(pace)  # the slow reader's pace, not a synchronisation


def test_large_message_waits_for_a_server_that_stops_reading():
    # The server takes nothing until the client can send no more, then
    # reads it all and answers: the client waits (within --timeout), sends
    # the rest in order, the "\n" last, and gets its reply. Meanwhile it
    # holds the line and little more: the stream takes the message in
    # slices under its high water mark, never a copy of all of it.
    msg = b"".join(b"%07d," % i for i in range(2 << 20))  # 16 MiB
    got = {}

    def behave(fs, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.sendall(b"Welcome!\n")
        wait_stalled(c)
        got["rss"] = vm_rss_kib(fs.client_pid)
        c.settimeout(10)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        got["data"] = data
        c.sendall(b"Hello, " + data[:-1] + b"!\n")
        while c.recv(65536):
            pass  # "exit", then our FIN

    with FakeServer(behave) as fs:
        p = subprocess.Popen([SOCKIT, "client", "-f", "line", "--timeout", "20",
                              f"127.0.0.1:{fs.port}"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        fs.client_pid = p.pid
        try:
            out, err = p.communicate(input=msg + b"\n", timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert p.returncode == 0, err
    assert got["data"] == msg + b"\n"
    assert out == b"Welcome!\nHello, " + msg + b"!\n"
    if not SANITIZED:  # ASan's shadow and quarantine say nothing of ours
        # The line, as getline holds it, and the program (about 20 MiB); a
        # copy in the stream's queue of what the socket did not take would
        # add some 12 MiB.
        assert got["rss"] < (16 + 8) * 1024, got["rss"]


def test_send_deadline_is_per_message():
    # Three 1 MiB messages to a server that reads each slowly (about 0.5 s
    # apiece): each send fits in --timeout 2, all three together would not.
    msgs = [bytes([ord("a") + i]) * (1 << 20) for i in range(3)]

    def behave(fs, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        line_server(c, lambda m: b"Hello, " + m + b"!\n", pace=0.03)  # about 2 MiB/s

    with FakeServer(behave) as fs:
        t0 = time.monotonic()
        r = run_sockit("client", "-f", "line", "--timeout", "2", f"127.0.0.1:{fs.port}",
                       input=b"\n".join(msgs) + b"\n", timeout=60)
        took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\n" + b"".join(b"Hello, " + m + b"!\n" for m in msgs)
    assert took > 1.0, took  # it was slow: the deadline is not for the whole run


def test_error_reply_while_a_large_message_is_sent(serve):
    # The server answers "Error: message too long" at its --max-line while
    # the client is still sending, then closes: the run fails with that
    # reply (or, if the close came first, the reset), exit 1 either way.
    srv = serve("--framing", "line", "--max-line", "1000")
    r = run_sockit("client", "-f", "line", "--timeout", "10", f"127.0.0.1:{srv.port}",
                   input=b"x" * (4 << 20) + b"\n", timeout=30)
    assert r.returncode == 1, r.stderr
    assert r.stdout == b"Welcome!\n"
    err = one_line_error(r)
    assert ("unexpected reply to message 1" in err and "Error: message too long" in err
            or "sending message 1" in err), err


def pause_between(args, lines, pause):
    """Runs sockit ARGS with "first" then, once `lines` of output came and
    `pause` seconds (the slow user: what is tested) passed, "second" on its
    stdin; returns (exit status, stderr, seconds from "second" to the exit)."""
    p = subprocess.Popen([SOCKIT] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"first\n")
        p.stdin.flush()
        for want in lines:
            assert read_line_within(p.stdout, 10) == want
        time.sleep(pause)
        t0 = time.monotonic()
        _, err = p.communicate(input=b"second\n", timeout=20)
        return p.returncode, err, time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("partial", [b"", b"Hello, sec"], ids=["silent", "partial"])
def test_reply_deadline_holds_after_a_pause_on_stdin(partial):
    # The loop's clock stands still while the client waits for its input:
    # the next reply's --timeout still starts when the message is sent and
    # ends on time, neither --timeout plus the pause later (silent) nor at
    # once (a partial reply wakes the loop).
    def behave(fs, c):  # and never the rest of the second reply
        line_server(c, lambda m: b"Hello, first!\n" if m == b"first" else partial)

    with FakeServer(behave) as fs:
        rc, err, took = pause_between(["client", "-f", "line", "--timeout", "1",
                                       f"127.0.0.1:{fs.port}"],
                                      [b"Welcome!\n", b"Hello, first!\n"], 2)
    assert rc == 9, err
    assert 0.9 <= took < 1.9, took
    assert b"no reply to message 2" in err and b"timed out" in err.lower(), err


@pytest.mark.parametrize("answer", [None, b"not the reply"], ids=["silent", "wrong"])
def test_udp_deadline_holds_after_a_pause_on_stdin(answer):
    # As over TCP: the attempts of message 2 are 300 ms apart and take
    # --timeout from its first send, whether nothing wakes the loop or
    # wrong datagrams do.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(0.1)
    stop = threading.Event()
    sent = []  # when each attempt of message 2 came

    def serve():
        while not stop.is_set():
            try:
                data, peer = u.recvfrom(65536)
            except socket.timeout:
                continue
            if data == b"second":
                sent.append(time.monotonic())
            reply = b"Hello, first!" if data == b"first" else answer
            if reply:
                u.sendto(reply, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        rc, err, took = pause_between(["client", "--udp", "--timeout", "900ms",
                                       f"127.0.0.1:{u.getsockname()[1]}"],
                                      [b"Hello, first!\n"], 1.5)
    finally:
        stop.set()
        t.join(5)
        u.close()
    assert rc == (7 if answer else 9), err
    assert 0.8 <= took < 1.7, took
    assert len(sent) == 3 and all(b - a > 0.2 for a, b in zip(sent, sent[1:])), sent
    last = err.decode().strip().splitlines()[-1]
    if answer:
        assert "no reply to message 2 within 900 ms: 3 datagrams" in last, last
    else:
        assert "no reply to message 2 after 3 attempts in 900 ms" in last, last


def test_line_exit_with_cr_ends_the_session(serve):
    # The server drops a "\r" before the "\n": "exit\r" is its "exit", so
    # no reply comes and later messages are not sent (it used to wait for
    # a reply, then fail with "connection closed by server").
    srv = serve("--framing", "line")
    r = run_sockit("client", "-f", "line", "--timeout", "5", f"127.0.0.1:{srv.port}", "a",
                   "exit\r", "b", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, a!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=1")
