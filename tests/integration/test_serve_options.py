"""Every `sockit serve` option, through the real binary on loopback."""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import SOCKIT, recv_exact, recv_until, run_sockit, wait_read_by_server, wait_until


def greet(s, line=False):
    want = b"Welcome!\n" if line else b"Welcome!"
    assert recv_exact(s, len(want)) == want


def ask(s, msg, line=False):
    nl = b"\n" if line else b""
    s.sendall(msg + nl)
    want = b"Hello, " + msg + b"!" + nl
    assert recv_exact(s, len(want)) == want


# ---- --listen ----

def test_port_zero_real_port_in_first_log_line(serve):
    srv = serve()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(tcp", srv.lines[0])
    assert m, srv.lines[0]
    assert int(m.group(1)) == srv.port != 0
    with srv.connect() as s:
        greet(s)


def test_listen_ipv6_loopback(serve):
    srv = serve("--listen", "[::1]:0")
    assert re.search(r"listening on \[::1\]:\d+ \(tcp", srv.lines[0]), srv.lines[0]
    assert srv.host == "::1" and srv.port != 0
    with srv.connect() as s:
        greet(s)
        ask(s, b"six")
        s.sendall(b"exit")
        assert s.recv(10) == b""
    srv.wait_log(r"open \[::1\]:\d+$")
    srv.wait_log(r"close \[::1\]:\d+ reason=exit messages=1")


def test_listen_repeatable_v4_and_v6(serve):
    srv = serve("--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--listen", "127.0.0.1:0")
    srv.wait_log(r"listening on", count=3)
    with srv.cond:
        found = [(m.group(1), m.group(2)) for line in srv.lines
                 for m in [srv.LISTEN_RE.search(line)] if m]
    addrs = [a for a, proto in found]
    assert len(addrs) == 3 and all(p == "tcp" for _, p in found)
    assert addrs[1].startswith("[::1]:")
    ports = set()
    for a in addrs:
        host, _, port = a.rpartition(":")
        host = host.strip("[]")
        ports.add(int(port))
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect((host, int(port)))
            greet(s)
            ask(s, b"via " + a.encode())
    assert 0 not in ports and len(ports) >= 2  # two v4 sockets cannot share a port
    srv.wait_log(r"close .* reason=eof messages=1", count=3)


def test_bind_failure_address_in_use(serve):
    with socket.socket() as hold:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        port = hold.getsockname()[1]
        t0 = time.monotonic()
        r = run_sockit("serve", "--listen", f"127.0.0.1:{port}", timeout=10)
        assert time.monotonic() - t0 < 5
        assert r.returncode == 1
        err = r.stderr.decode()
        assert err.count("\n") == 1, err
        assert f"127.0.0.1:{port}" in err and "in use" in err, err


def test_bind_failure_address_not_on_this_host():
    r = run_sockit("serve", "--listen", "192.0.2.1:0", timeout=10)  # TEST-NET-1
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "192.0.2.1:0" in err, err


def test_bind_failure_of_the_second_listener(serve):
    with socket.socket() as hold:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        port = hold.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        r = run_sockit("serve", "--listen", f"127.0.0.1:{free}", "--listen",
                       f"127.0.0.1:{port}", timeout=10)
        assert r.returncode == 1
        assert r.stderr.decode().count("\n") == 1, r.stderr
        assert f":{port}" in r.stderr.decode()


# ---- --framing ----

def test_framing_line_greeting_and_crlf(serve):
    srv = serve("--framing", "line")
    assert "framing line" in srv.lines[0]
    with srv.connect() as s:
        greet(s, line=True)
        s.sendall(b"a b\r\n\nc\x00d\n")
        want = b"Hello, a b!\nHello, !\nHello, c\x00d!\n"
        assert recv_exact(s, len(want)) == want
        s.sendall(b"exit\r\n")
        assert s.recv(10) == b""
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=3")


def test_line_framing_crlf_split_across_reads_and_lone_cr_kept(serve):
    srv = serve("--framing", "line", "--max-line", "10")
    with srv.connect() as s:
        greet(s, line=True)
        for part in (b"0123456789", b"\r", b"\n"):  # the limit, its \r\n split up
            s.sendall(part)
            wait_read_by_server(srv, [s])  # each part in a read of its own
        assert recv_exact(s, 19) == b"Hello, 0123456789!\n"
        s.sendall(b"a\rb\n")  # a \r inside a message is data
        assert recv_exact(s, 12) == b"Hello, a\rb!\n"
        s.sendall(b"exit\r")
        wait_read_by_server(srv, [s])
        s.sendall(b"\n")
        assert recv_until(s, b"\x00never") == b""
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=2")


def test_framing_chunk_is_default(serve):
    srv = serve()
    assert "framing chunk" in srv.lines[0]
    with srv.connect() as s:
        greet(s)
        ask(s, b"one\n")  # a newline is just another byte in chunk framing
        s.sendall(b"exit")
        assert s.recv(10) == b""


def test_line_framing_exit_after_pipelined_messages(serve):
    srv = serve("--framing", "line")
    with srv.connect() as s:
        greet(s, line=True)
        s.sendall(b"1\n2\nexit\nignored\n")
        want = b"Hello, 1!\nHello, 2!\n"
        assert recv_until(s, b"\x00never") == want  # replies, then the close
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=2")


# ---- --delay ----

def test_delay_100_concurrent_clients_answered_in_about_one_second(serve):
    srv = serve("--delay", "1000", "--quiet")
    socks = [srv.connect(timeout=10) for _ in range(100)]
    try:
        for s in socks:
            greet(s)  # the greeting is not delayed
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            s.sendall(b"c%d" % i)
        first = None
        for i, s in enumerate(socks):
            want = b"Hello, c%d!" % i
            assert recv_exact(s, len(want), timeout=10) == want
            if first is None:
                first = time.monotonic() - t0
        total = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    assert first >= 0.9, f"first reply after {first:.3f}s: not delayed"
    assert total < 3.0, f"100 delayed replies took {total:.2f}s: delays are serialised"


def test_delay_keeps_order_and_exit_waits_for_delayed_replies(serve):
    srv = serve("--delay", "300", "--framing", "line")
    with srv.connect() as s:
        greet(s, line=True)
        t0 = time.monotonic()
        s.sendall(b"a\nb\nc\nexit\n")
        want = b"Hello, a!\nHello, b!\nHello, c!\n"
        got = recv_until(s, b"\x00never", timeout=5)
        assert got == want
        assert time.monotonic() - t0 >= 0.25
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=3")


# ---- --max-conns ----

def test_max_conns_extra_gets_one_error_line_then_close(serve):
    srv = serve("--max-conns", "3")
    held = [srv.connect() for _ in range(3)]
    try:
        for s in held:
            greet(s)
        with srv.connect() as extra:
            got = recv_until(extra, b"\x00never", timeout=5)
            assert got == b"Error: server busy, too many connections\n"
        srv.wait_log(r"refuse 127\.0\.0\.1:\d+ reason=max-conns limit=3")
        for i, s in enumerate(held):  # the others are unaffected
            ask(s, b"still %d" % i)
        # A slot that frees up can be taken again.
        held.pop().close()
        srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=eof", count=1)
        with srv.connect() as again:
            greet(again)
            ask(again, b"back")
    finally:
        for s in held:
            s.close()
    assert srv.stop() == 0  # the log is complete once the server has exited
    assert srv.log_count(r" open ") == 4
    assert srv.log_count(r"summary: connections=4 refused=1 ") == 1


def test_max_conns_busy_line_survives_a_peer_that_already_sent(serve):
    # The refused peer sent data before reading: closing with unread input
    # must not reset the busy line away.
    srv = serve("--max-conns", "1", "--framing", "line")
    with srv.connect() as held:
        assert recv_exact(held, 9) == b"Welcome!\n"
        for i in range(20):
            with srv.connect() as extra:
                extra.sendall(b"hello\n" * 100)
                srv.wait_log(r"refuse .* reason=max-conns", count=i + 1)
                got = recv_until(extra, b"\x00never", timeout=5)
                assert got == b"Error: server busy, too many connections\n"
        ask(held, b"fine", line=True)
    srv.wait_log(r"refuse .* reason=max-conns", count=20)


# ---- --idle-timeout ----

def test_idle_timeout_closes_idle_keeps_active(serve):
    srv = serve("--idle-timeout", "1")
    with srv.connect() as idle, srv.connect() as busy:
        greet(idle)
        greet(busy)
        t0 = time.monotonic()
        closed_at = None
        while time.monotonic() - t0 < 2.6:
            ask(busy, b"tick")
            idle.settimeout(0.3)
            try:
                if idle.recv(10) == b"" and closed_at is None:
                    closed_at = time.monotonic() - t0
            except socket.timeout:
                pass
        assert closed_at is not None, "idle session not closed"
        assert 0.8 <= closed_at <= 2.3, closed_at
        ask(busy, b"alive")
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=idle-timeout messages=0")
    assert srv.log_count(r"reason=idle-timeout") == 1


def test_idle_timeout_applies_to_a_partial_line(serve):
    srv = serve("--idle-timeout", "1", "--framing", "line")
    with srv.connect() as s:
        greet(s, line=True)
        s.sendall(b"no newline yet")
        assert recv_until(s, b"\x00never", timeout=4) == b""
    srv.wait_log(r"reason=idle-timeout messages=0")


def test_idle_timeout_does_not_cut_a_session_waiting_for_our_delayed_reply(serve):
    # The client waits for us, not the other way round: that is not idle.
    srv = serve("--idle-timeout", "1", "--delay", "1800")
    with srv.connect() as s:
        greet(s)
        s.sendall(b"patient")
        assert recv_exact(s, 15, timeout=5) == b"Hello, patient!"
        # After the reply the idle clock runs again: no message, closed.
        t0 = time.monotonic()
        assert recv_until(s, b"\x00never", timeout=5) == b""
        assert 0.8 <= time.monotonic() - t0 <= 2.5
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=idle-timeout messages=1")


# ---- --workers ----

def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_workers_count_threads_and_all_serve(serve):
    one = serve("--workers", "1")
    four = serve("--workers", "4")
    assert threads_of(four.proc.pid) - threads_of(one.proc.pid) == 3
    socks = [four.connect() for _ in range(40)]
    try:
        for s in socks:
            greet(s)
        for i, s in enumerate(socks):
            ask(s, b"w%d" % i)
    finally:
        for s in socks:
            s.close()
    four.wait_log(r"reason=eof messages=1", count=40)


# ---- --backlog ----

def listen_backlog(port):
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                         timeout=10).stdout.decode().split()
    assert out and out[0] == "LISTEN", out
    return int(out[2])  # Send-Q of a listening socket: its backlog


def test_backlog_option_and_default(serve):
    srv = serve("--backlog", "7")
    assert listen_backlog(srv.port) == 7
    with srv.connect() as s:
        greet(s)
    dflt = serve()
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    assert listen_backlog(dflt.port) == somaxconn


# ---- --max-line ----

def test_max_line_limit_exact_and_over(serve):
    srv = serve("--framing", "line", "--max-line", "10")
    with srv.connect() as s:
        greet(s, line=True)
        ask(s, b"0123456789", line=True)          # exactly the limit
        s.sendall(b"0123456789\r\n")              # the limit plus \r\n
        assert recv_exact(s, 19) == b"Hello, 0123456789!\n"
        s.sendall(b"0123456789A\n")               # one over
        assert recv_until(s, b"\x00never") == b"Error: message too long\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=message-too-long messages=2")


def test_max_line_over_without_newline(serve):
    srv = serve("--framing", "line", "--max-line", "100")
    with srv.connect() as s:
        greet(s, line=True)
        s.sendall(b"x" * 50)
        s.sendall(b"x" * 60)   # 110 bytes, no newline: can never fit
        assert recv_until(s, b"\x00never") == b"Error: message too long\n"
    srv.wait_log(r"reason=message-too-long messages=0")


# ---- --quiet ----

def test_quiet_no_per_connection_lines(serve):
    srv = serve("--quiet")
    for _ in range(3):
        with srv.connect() as s:
            greet(s)
            ask(s, b"q")
    assert srv.stop() == 0
    text = "\n".join(srv.lines)
    assert not re.search(r" (open|close) \d", text), text
    assert srv.log_count(r"listening on") == 1
    assert srv.log_count(r"summary: connections=3 refused=0 messages=3 ") == 1


# ---- command line ----

BAD = [
    ["--framing", "xml"],
    ["--delay", "-1"], ["--delay", "soon"], ["--delay", "3600001"],
    ["--max-conns", "0"], ["--max-conns", "many"], ["--max-conns", "-3"],
    ["--idle-timeout", "-1"], ["--idle-timeout", "1.5x"], ["--idle-timeout", "2d"],
    ["--workers", "0"], ["--workers", "100000"],
    ["--backlog", "0"], ["--backlog", "x"],
    ["--max-line", "0"], ["--max-line", "99999999999999999999"],
    ["--listen", "nohostport"], ["--listen", "127.0.0.1:65536"], ["--listen", "::1:80"],
    ["--listen", "[::1]"], ["--listen", "127.0.0.1:"], ["--listen", ":80"],
    ["--listen", "127.0.0.1:0", "extra-argument"],
]


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(a))
def test_bad_values_one_line_exit_2(args):
    r = run_sockit("serve", *args, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("sockit: "), err
    assert r.stdout == b""


@pytest.mark.parametrize("args", [["--bogus"], ["--delay"], ["-x"]])
def test_bad_options_exit_2(args):
    r = run_sockit("serve", *args, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr and r.stdout == b""


def test_help_exit_0():
    r = run_sockit("serve", "--help", timeout=10)
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.startswith("usage: sockit serve")
    for opt in ("--listen", "--udp", "--framing", "--delay", "--max-conns", "--idle-timeout",
                "--workers", "--backlog", "--max-line", "--quiet", "--help"):
        assert opt in out, opt
    assert r.stderr == b""
