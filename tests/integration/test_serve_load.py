"""Many connections at once: bounded in count and time."""
import selectors
import socket
import time

from conftest import raise_nofile, recv_exact, wait_fds


def open_many(srv, n, deadline_s=30.0):
    """Connects n non-blocking sockets as fast as possible (a burst); returns
    them once every connect has completed."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(srv.addr)
        assert err in (0, 115), err  # 115: EINPROGRESS
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    left = len(socks)
    deadline = time.monotonic() + deadline_s
    while left:
        assert time.monotonic() < deadline, f"{left} connects still pending"
        for key, _ in sel.select(1.0):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert err == 0, f"connect failed: {err}"
            sel.unregister(s)
            left -= 1
    sel.close()
    return socks


def read_all(socks, want, deadline_s=30.0):
    """Reads `want` (bytes, or a function of the index) from every socket
    concurrently; returns once all have it."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for i, s in enumerate(socks):
        bufs[s] = [i, b""]
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    deadline = time.monotonic() + deadline_s
    while left:
        assert time.monotonic() < deadline, f"{left} sockets still waiting"
        for key, _ in sel.select(1.0):
            s = key.fileobj
            i, have = bufs[s]
            w = want(i) if callable(want) else want
            chunk = s.recv(len(w) - len(have))
            assert chunk, f"socket {i} closed after {have!r}"
            have += chunk
            bufs[s][1] = have
            if len(have) == len(w):
                assert have == w, (i, have)
                sel.unregister(s)
                left -= 1
    sel.close()


def test_2000_concurrent_connections_greeted_and_answered(serve):
    raise_nofile(2000 + 200)
    srv = serve("--framing", "line", "--quiet", "--workers", "2")
    base = srv.fd_count()
    socks = open_many(srv, 2000)
    try:
        read_all(socks, b"Welcome!\n")
        assert srv.fd_count() >= base + 2000
        for i, s in enumerate(socks):
            s.setblocking(True)
            s.sendall(b"c%d\n" % i)
            s.setblocking(False)
        read_all(socks, lambda i: b"Hello, c%d!\n" % i)
        # Everyone is still there and still answered.
        for i, s in enumerate(socks[::97]):
            s.setblocking(True)
            s.settimeout(5)
            s.sendall(b"again\n")
            assert recv_exact(s, 14) == b"Hello, again!\n"
    finally:
        for s in socks:
            s.close()
    wait_fds(srv, base, timeout=20)
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=2000 refused=0 ") == 1


def test_burst_of_1000_connects_all_accepted_with_default_backlog(serve):
    # The seed's listen(5) left 244 of such a burst connected but never
    # accepted; the default backlog is the system's maximum.
    raise_nofile(1000 + 200)
    srv = serve("--quiet", "--workers", "1")
    base = srv.fd_count()
    socks = open_many(srv, 1000)
    try:
        read_all(socks, b"Welcome!", deadline_s=20)
    finally:
        for s in socks:
            s.close()
    wait_fds(srv, base, timeout=20)


def test_sigterm_with_2000_open_sessions(serve):
    raise_nofile(2000 + 200)
    srv = serve("--framing", "line", "--workers", "2")
    socks = open_many(srv, 2000)
    try:
        read_all(socks, b"Welcome!\n")
        srv.wait_log(r" open ", count=2000)
        t0 = time.monotonic()
        assert srv.stop(timeout=10) == 0
        took = time.monotonic() - t0
        assert took < 2.0, f"shutdown with 2,000 idle sessions took {took:.2f}s"
        # Every client hears the drain's line, then sees the close.
        bye = b"Error: server shutting down\n"
        sel_eof = 0
        for s in socks:
            s.setblocking(True)
            s.settimeout(5)
            if recv_exact(s, len(bye)) == bye and s.recv(10) == b"":
                sel_eof += 1
        assert sel_eof == 2000
    finally:
        for s in socks:
            s.close()
    assert srv.log_count(r"reason=shutdown messages=0") == 2000
    assert srv.log_count(r"summary: connections=2000 refused=0 messages=0 ") == 1


def test_max_conns_is_exact_across_workers(serve):
    raise_nofile(700 + 200)
    srv = serve("--max-conns", "500", "--workers", "4", "--quiet")
    socks = open_many(srv, 700)
    try:
        sel = selectors.DefaultSelector()
        got = {}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
            got[s] = b""
        done = 0
        deadline = time.monotonic() + 20
        while done < len(socks):
            assert time.monotonic() < deadline, f"{len(socks) - done} sockets silent"
            for key, _ in sel.select(1.0):
                s = key.fileobj
                chunk = s.recv(100)
                got[s] += chunk
                if got[s] == b"Welcome!" or not chunk:
                    sel.unregister(s)
                    done += 1
        sel.close()
        welcomed = [s for s in socks if got[s] == b"Welcome!"]
        busy = [s for s in socks if got[s] == b"Error: server busy, too many connections\n"]
        assert len(welcomed) == 500 and len(busy) == 200, (len(welcomed), len(busy))
    finally:
        for s in socks:
            s.close()
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=500 refused=200 ") == 1
