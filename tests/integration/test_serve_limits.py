"""Resource limits: out of fds, a log nobody reads, output backpressure,
memory per idle connection."""
import os
import resource
import select
import signal
import socket
import subprocess
import threading
import time

from conftest import (SANITIZED, SOCKIT, GoodClient, cpu_seconds, raise_nofile, recv_exact,
                      recv_until, wait_fds, wait_paused, wait_read_by_server, wait_until,
                      wait_writable)


def low_nofile(n):
    def pre():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return pre


def test_out_of_fds_does_not_spin_and_recovers(serve):
    srv = serve("--workers", "2", preexec_fn=low_nofile(48))
    base = srv.fd_count()
    room = 48 - base
    socks = []
    try:
        for _ in range(room + 20):  # 20 more than it can hold
            s = socket.socket()
            s.settimeout(5)
            s.connect(srv.addr)  # completes in the backlog
            socks.append(s)
        # The server greets each connection as it accepts it, and takes
        # them until accept fails (logged): wait for that and for the
        # greetings, not 50 ms each (a server starved of CPU is late).
        srv.wait_log(r"accept: Too many open files")
        wait_until(lambda: len(select.select(socks, [], [], 0)[0]) >= room - 2, 10,
                   "the greetings of the connections taken in")
        greeted = []
        for s in socks:
            s.settimeout(0.05)
            try:
                if s.recv(8) == b"Welcome!":
                    greeted.append(s)
            except socket.timeout:
                pass
        assert room - 2 <= len(greeted) <= room, (len(greeted), room)
        # Waiting connections must not make the server spin.
        c0 = cpu_seconds(srv.proc.pid)
        time.sleep(1.0)  # a measurement window, not a synchronisation
        used = cpu_seconds(srv.proc.pid) - c0
        assert used < 0.3, f"server used {used:.2f}s of CPU in 1s while out of fds"
        # Pausing is logged, but not once per retry.
        assert srv.log_count(r"accept: Too many open files") <= 4
        # Free some fds: the waiting connections are taken in.
        waiting = [s for s in socks if s not in greeted]
        for s in greeted[:25]:
            s.close()
        for s in waiting:
            assert recv_exact(s, 8, timeout=5) == b"Welcome!"
        for s in waiting:
            s.sendall(b"late")
            assert recv_exact(s, 12) == b"Hello, late!"
    finally:
        for s in socks:
            s.close()
    wait_fds(srv, base)


def serve_with_stderr_pipe():
    """Starts `sockit serve` on a free port with stderr a pipe this test
    holds; returns (proc, port, read end of the pipe)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r, w = os.pipe()
    proc = subprocess.Popen([SOCKIT, "serve", "--listen", f"127.0.0.1:{port}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    return proc, port, r


def test_log_nobody_reads_never_blocks_serving():
    # stderr is a pipe that is never read: once it is full, log lines are
    # dropped, never waited for.
    proc, port, r = serve_with_stderr_pipe()
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, "server up")
        t0 = time.monotonic()
        for i in range(3000):  # ~6000 log lines: far more than a pipe holds
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                assert recv_exact(s, 8) == b"Welcome!"
                s.sendall(b"x")
                assert recv_exact(s, 9) == b"Hello, x!"
        took = time.monotonic() - t0
        assert took < 30, took
        assert proc.poll() is None
        # And it still shuts down cleanly: the logger gives up on the stuck
        # pipe instead of waiting for a reader that never comes.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)


def test_closed_stderr_does_not_kill_the_server():
    proc, port, r = serve_with_stderr_pipe()
    try:
        os.read(r, 4096)  # the listening line: it is up
        os.close(r)       # from now on every log write gets EPIPE
        r = None
        for i in range(50):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                assert recv_exact(s, 8) == b"Welcome!"
                s.sendall(b"p")
                assert recv_exact(s, 9) == b"Hello, p!"
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if r is not None:
            os.close(r)


def test_paused_reader_resumes_and_gets_every_reply_in_order(serve):
    srv = serve("--framing", "line")
    n = 200000  # 200 KB of requests, 2.6 MB of replies: well over the pause mark
    payload = b"".join(b"%d\n" % (i % 10) for i in range(n))
    want = b"".join(b"Hello, %d!\n" % (i % 10) for i in range(n))
    with srv.connect(timeout=20) as s:
        assert recv_exact(s, 9) == b"Welcome!\n"
        t = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
        t.start()
        wait_paused(srv, s, timeout=20, input_waiting=False)  # not reading: the server has to pause us
        got = recv_exact(s, len(want), timeout=20)
        t.join(10)
        assert got == want
        s.sendall(b"exit\n")
        assert s.recv(10) == b""
    srv.wait_log(rf"close 127\.0\.0\.1:\d+ reason=exit messages={n} bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")


def test_paused_never_reader_closed_by_idle_timeout(serve):
    srv = serve("--framing", "line", "--idle-timeout", "1")
    base = srv.fd_count()
    good = GoodClient(srv)
    s = srv.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert recv_exact(s, 9) == b"Welcome!\n"
        s.setblocking(False)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:
            try:
                s.send(b"\n" * 65536)
            except BlockingIOError:
                wait_writable(s, 0.05)
        srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=idle-timeout", timeout=5)
    finally:
        s.close()
    assert good.stop() > 0 and not good.errors, good.errors
    wait_fds(srv, base)


def test_idle_connections_cost_little_memory(serve):
    raise_nofile(3000 + 200)
    srv = serve("--quiet", "--workers", "2")
    socks = []
    try:
        # Warm up allocator and loop structures, then measure 3,000 more.
        for _ in range(100):
            socks.append(srv.connect())
        for s in socks:
            recv_exact(s, 8)  # greeted: the session exists
        base = srv.fd_count()
        rss0 = srv.rss_kib()
        more = []
        for _ in range(3000):
            more.append(srv.connect())
        for s in more:
            assert recv_exact(s, 8) == b"Welcome!"
        socks += more
        wait_fds(srv, base + len(more))
        per_conn = (srv.rss_kib() - rss0) * 1024 / 3000
    finally:
        for s in socks:
            s.close()
    limit = 4096 if SANITIZED else 1024
    print(f"per idle connection: {per_conn:.0f} bytes")
    assert per_conn < limit, f"{per_conn:.0f} bytes of RSS per idle connection"


def test_short_partial_line_does_not_keep_a_read_sized_buffer(serve):
    # Each connection sends a 60 KB line followed by one byte of the next:
    # what stays pending is one byte, and it must not keep the 64 KiB the
    # read needed. (ASan's quarantine would hide freed memory from RSS: off.)
    env = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    srv = serve("--framing", "line", "--quiet", "--workers", "1", env=env)
    socks = [srv.connect() for _ in range(300)]
    try:
        for s in socks:
            assert recv_exact(s, 9) == b"Welcome!\n"
        rss0 = srv.rss_kib()
        for s in socks:
            s.sendall(b"x")
        wait_read_by_server(srv, socks)
        for s in socks:
            s.sendall(b"a" * 60000 + b"\n" + b"y")
        want = b"Hello, x" + b"a" * 60000 + b"!\n"
        for s in socks:
            assert recv_exact(s, len(want), timeout=10) == want
        wait_read_by_server(srv, socks)  # the "y" after each line too
        per_conn = (srv.rss_kib() - rss0) * 1024 / len(socks)
        # And the pending byte is still there: it starts the next message.
        socks[0].sendall(b"z\n")
        assert recv_exact(socks[0], 11) == b"Hello, yz!\n"
    finally:
        for s in socks:
            s.close()
    assert per_conn < 8192, f"{per_conn:.0f} bytes of RSS per connection holding one byte"
