"""UDP: `serve --udp` answers every sender; `client --udp` waits, retries, reports."""
import re
import socket
import time

from conftest import run_sockit


def udp_port(srv, family="127.0.0.1"):
    # the listening lines arrive one by one: wait for the UDP one
    srv.wait_log(r"listening on " + re.escape(family) + r"\S* \(udp")
    srv._listening()
    for addr, proto in srv.addrs:
        if proto == "udp" and addr.startswith(family):
            return int(addr.rpartition(":")[2])
    raise AssertionError(f"no udp listener in {srv.addrs}")


def udp_sock(family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    return s


def test_udp_same_port_as_tcp_and_exact_reply(serve):
    srv = serve("--udp")
    port = udp_port(srv)
    assert port == srv.port  # UDP listens on the same address as TCP
    with udp_sock() as s:
        s.sendto(b"Michael", ("127.0.0.1", port))
        data, peer = s.recvfrom(65536)
        assert data == b"Hello, Michael!"
        assert peer[1] == port


def test_udp_many_senders_each_answered(serve):
    """Stateless: unlike netcat, every sender gets its own reply."""
    srv = serve("--udp")
    port = udp_port(srv)
    socks = [udp_sock() for _ in range(50)]
    try:
        for i, s in enumerate(socks):
            s.sendto(b"peer%d" % i, ("127.0.0.1", port))
        for i, s in enumerate(socks):
            assert s.recvfrom(65536)[0] == b"Hello, peer%d!" % i
    finally:
        for s in socks:
            s.close()


def test_udp_empty_nul_and_exit_datagrams(serve):
    srv = serve("--udp")
    port = udp_port(srv)
    with udp_sock() as s:
        for msg in (b"", b"a\x00b\xff", b"exit"):
            s.sendto(msg, ("127.0.0.1", port))
            assert s.recvfrom(65536)[0] == b"Hello, " + msg + b"!"


def test_udp_reply_too_large_gets_error_datagram(serve):
    srv = serve("--udp")
    port = udp_port(srv)
    with udp_sock() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.sendto(b"x" * 65499, ("127.0.0.1", port))  # largest answerable
        data = s.recvfrom(65536)[0]
        assert data == b"Hello, " + b"x" * 65499 + b"!"
        s.sendto(b"x" * 65500, ("127.0.0.1", port))  # reply would not fit
        data = s.recvfrom(65536)[0]
        assert data.startswith(b"Error: datagram too long")
        s.sendto(b"still", ("127.0.0.1", port))  # and the server lives on
        assert s.recvfrom(65536)[0] == b"Hello, still!"


def test_udp_ipv6(serve):
    srv = serve("--udp", "--listen", "[::1]:0")
    port = udp_port(srv, "[::1]")
    with udp_sock(socket.AF_INET6) as s:
        s.sendto(b"six", ("::1", port))
        assert s.recvfrom(65536)[0] == b"Hello, six!"


def test_udp_and_tcp_served_together(serve):
    srv = serve("--udp")
    r = run_sockit("client", f"127.0.0.1:{srv.port}", "tcp")
    assert r.returncode == 0 and r.stdout == b"Welcome!\nHello, tcp!\n"
    r = run_sockit("client", "--udp", f"127.0.0.1:{srv.port}", "udp", "two words")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Hello, udp!\nHello, two words!\n"
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=1 .*messages=1 datagrams=2") == 1


def test_client_udp_stdin(serve):
    srv = serve("--udp")
    r = run_sockit("client", "-u", f"127.0.0.1:{srv.port}", input=b"a\nb c\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Hello, a!\nHello, b c!\n"


def test_client_udp_no_reply_retries_then_fails():
    """A socket that never answers: bounded retries, said so, non-zero exit."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        r = run_sockit("client", "--udp", "--timeout", "0.9", f"127.0.0.1:{port}", "hello")
        elapsed = time.monotonic() - t0
        assert r.returncode == 9
        err = r.stderr.decode()
        assert "resending" in err and "UDP may lose datagrams" in err
        assert "after 3 attempts" in err
        assert elapsed < 5
        # all three attempts really were sent
        silent.settimeout(1)
        got = [silent.recvfrom(100)[0] for _ in range(3)]
        assert got == [b"hello"] * 3


def test_client_udp_refused_port_fails_fast():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nobody is bound there now: the ICMP port-unreachable surfaces as an error
    r = run_sockit("client", "--udp", "--timeout", "5", f"127.0.0.1:{port}", "x")
    assert r.returncode == 4
    assert b"refused" in r.stderr.lower()
    assert len(r.stderr.decode().strip().splitlines()) == 1


def test_udp_socket_asks_for_a_larger_receive_buffer(serve):
    """A burst of small datagrams overflows the default 208 KiB queue (each
    costs about 1 KiB of it): serve asks for 2 MiB, as far as
    net.core.rmem_max allows (the kernel doubles what it grants)."""
    import subprocess
    srv = serve("--udp")
    port = udp_port(srv)
    out = subprocess.run(["ss", "-u", "-l", "-n", "-m", f"sport = :{port}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"skmem:\(r\d+,rb(\d+),", out)
    assert m, out
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    assert int(m.group(1)) == 2 * min(2 << 20, rmem_max), out
