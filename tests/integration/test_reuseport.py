"""--reuseport: one SO_REUSEPORT socket per worker instead of one shared socket."""
import socket
import threading

from conftest import recv_exact, run_sockit


def greet_many(port, n):
    errors = []

    def one(i):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                assert recv_exact(s, 8) == b"Welcome!"
                s.sendall(b"c%d" % i)
                want = b"Hello, c%d!" % i
                assert recv_exact(s, len(want)) == want
        except Exception as e:  # collected: asserted below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return errors


def test_reuseport_workers_share_the_port(serve):
    srv = serve("--reuseport", "--workers", "3", "--udp")
    srv.wait_log(r"listening on .* \(udp")
    # one line per address, not per worker socket
    assert srv.log_count(r"listening on 127\.0\.0\.1:\d+ \(tcp") == 1
    assert srv.log_count(r"listening on 127\.0\.0\.1:\d+ \(udp") == 1
    # three TCP and three UDP sockets bound to the same port
    tcp = [s for s in open("/proc/net/tcp").read().splitlines()[1:]
           if s.split()[1].endswith(":%04X" % srv.port) and s.split()[3] == "0A"]
    assert len(tcp) == 3
    assert greet_many(srv.port, 200) == []
    r = run_sockit("client", "--udp", f"127.0.0.1:{srv.port}", "u1", "u2")
    assert r.returncode == 0 and r.stdout == b"Hello, u1!\nHello, u2!\n"
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=200 .*messages=200 datagrams=2") == 1


def test_reuseport_fixed_port_and_ipv6(serve):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = serve("--reuseport", "--workers", "2", "--listen", f"127.0.0.1:{port}",
                "--listen", "[::1]:0")
    assert srv.port == port
    assert greet_many(port, 50) == []
    srv.wait_log(r"listening on \[::1\]")
    srv._listening()
    six = [a for a, p in srv.addrs if a.startswith("[::1]")]
    r = run_sockit("client", six[0], "v6")
    assert r.returncode == 0 and r.stdout == b"Welcome!\nHello, v6!\n"


def test_reuseport_port_taken_by_a_plain_socket_fails(serve):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_sockit("serve", "--reuseport", "--listen", f"127.0.0.1:{port}")
        assert r.returncode == 1
        assert r.stderr.decode().count("\n") == 1
        assert b"Address already in use" in r.stderr
