"""--max-conns with --proxy-protocol: a connection holds its slot from the accept on, also while
its PROXY header is awaited, so a flood of connections that never send one is bounded by the
limit. (They used to be counted only once the header named the client: 20 silent connections
against --max-conns 5 were all accepted, and any number more.) The slot comes back when the
header fails or times out."""
import socket

from conftest import recv_exact
from test_proxy_protocol import read_all

BUSY = b"Error: server busy, too many connections\n"
HEADER = b"PROXY TCP4 192.0.2.1 192.0.2.100 1111 80\r\n"


def test_connections_waiting_for_their_header_hold_slots(serve):
    # The header's deadline (3 s) leaves time for the checks made while the five wait.
    srv = serve("--proxy-protocol", "--max-conns", "5", "--idle-timeout", "3s")
    socks = [srv.connect() for _ in range(20)]
    try:
        srv.wait_log(r"refuse 127\.0\.0\.1:\d+ reason=max-conns limit=5$", count=15)
        with srv.connect() as late:  # the five still hold their slots
            assert read_all(late) == BUSY
        assert srv.log_count(r"proxy-error") == 0, "the five were to be still waiting"
        srv.wait_log(r"proxy-error 127\.0\.0\.1:\d+ reason=timeout$", count=5)
        got = [read_all(s) for s in socks]
        assert got.count(BUSY) == 15 and got.count(b"") == 5, got
    finally:
        for s in socks:
            s.close()
    # Their slots are back: a connection with a header is served.
    with srv.connect() as s:
        s.sendall(HEADER)
        assert recv_exact(s, 8) == b"Welcome!"
    srv.wait_log(r"open 192\.0\.2\.1:1111 proxied_from=127\.0\.0\.1:\d+$")
    assert srv.stop() == 0
    summary = [l for l in srv.lines if "summary:" in l][-1]
    assert " refused=16 " in summary and summary.endswith(" proxy_errors=5"), summary


def test_a_failed_header_gives_its_slot_back_at_once(serve):
    srv = serve("--proxy-protocol", "--max-conns", "1", "--idle-timeout", "30s")
    with srv.connect() as a:
        a.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert read_all(a) == b""
    srv.wait_log(r"proxy-error 127\.0\.0\.1:\d+ reason=missing$")
    with srv.connect() as b:
        b.sendall(HEADER)
        assert recv_exact(b, 8) == b"Welcome!"
        # b holds the one slot now: a silent connection is refused.
        with srv.connect() as c:
            assert read_all(c) == BUSY


def test_a_peer_that_closes_before_its_header_gives_its_slot_back(serve):
    srv = serve("--proxy-protocol", "--max-conns", "1", "--idle-timeout", "30s")
    with srv.connect() as a:
        a.sendall(b"PROXY TCP4 ")
        a.shutdown(socket.SHUT_WR)
        assert read_all(a) == b""
    srv.wait_log(r"proxy-error 127\.0\.0\.1:\d+ reason=truncated$")
    with srv.connect() as b:
        b.sendall(HEADER)
        assert recv_exact(b, 8) == b"Welcome!"
