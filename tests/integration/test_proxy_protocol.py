"""`sockit serve --proxy-protocol` behind a real HAProxy (send-proxy, send-proxy-v2,
health checks sending LOCAL) and against hostile peers speaking to it directly.

HAProxy runs in the foreground with a config written into the test's tmp dir, on ports the
test picks, and is stopped by PID. Every wait has a deadline."""
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import recv_exact, run_sockit, wait_until
from nginx_util import free_port

HAPROXY = "/usr/sbin/haproxy"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
IDLE = "1s"  # the header's deadline in these tests (--idle-timeout)


def v2(ver_cmd, fam, body, length=None):
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body) if length is None else length) + body


def inet_body(src, sport, dst, dport):
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)


def tlv(t, v):
    return bytes([t]) + struct.pack(">H", len(v)) + v


def read_all(sock, timeout=5.0):
    """Everything the server sends until it closes (a reset counts as the close)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except ConnectionResetError:
        pass
    return out


def proxy_server(serve, *args):
    return serve("--proxy-protocol", "--idle-timeout", IDLE, *args)


# ---- HAProxy in front ----

class HAProxy:
    CONF = """
global
    maxconn 200
    stats socket {d}/admin.sock level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe_v1
    bind 127.0.0.1:{p_v1}
    default_backend be_v1
backend be_v1
    server s1 127.0.0.1:{sport} send-proxy
frontend fe_v1_6
    bind [::1]:{p_v1_6}
    default_backend be_v1
frontend fe_v2
    bind 127.0.0.1:{p_v2}
    unique-id-format sockit-%rt
    default_backend be_v2
backend be_v2
    server s1 127.0.0.1:{sport} send-proxy-v2 proxy-v2-options crc32c,unique-id
frontend fe_cap
    bind 127.0.0.1:{p_cap}
    unique-id-format sockit-%rt
    default_backend be_cap
backend be_cap
    server s1 127.0.0.1:{cport} send-proxy-v2 proxy-v2-options crc32c,unique-id
backend be_check
    option tcp-check
    tcp-check expect string Welcome!
    server s1 127.0.0.1:{sport} send-proxy-v2 check inter 300ms rise 1 fall 1
"""

    def __init__(self, d, sport, cport=None):
        """cport: where fe_cap relays (default: the server too)."""
        self.d = d
        self.ports = {k: free_port("::1" if k == "p_v1_6" else "127.0.0.1")
                      for k in ("p_v1", "p_v1_6", "p_v2", "p_cap")}
        self.conf = os.path.join(d, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(self.CONF.format(d=d, sport=sport, cport=cport or sport, **self.ports))
        self.log = open(os.path.join(d, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is not None or self._listening(), 10,
                   "haproxy listening")
        assert self.proc.poll() is None, self.output()

    def _listening(self):
        """The stats socket answers once start-up is over (the listeners are bound before
        it): probing a frontend would itself make a session to the server."""
        try:
            return "Pid:" in self.command("show info")
        except OSError:
            return False

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(self.d, "admin.sock"))
            s.sendall(cmd.encode() + b"\n")
            return read_all(s).decode()

    def output(self):
        self.log.flush()
        with open(os.path.join(self.d, "haproxy.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stat(self, backend):
        """The status column of backend/s1 on the stats socket."""
        for line in self.command("show stat").splitlines():
            cols = line.split(",")
            if len(cols) > 17 and cols[0] == backend and cols[1] == "s1":
                return cols[17]
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def haproxy(tmp_path):
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail("haproxy is not installed: scripts/deps.sh test installs it")
    started = []

    def start(sport, cport=None):
        h = HAProxy(str(tmp_path), sport, cport)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


def through(port, msg, host="127.0.0.1"):
    """One session through the balancer: returns (client address, bytes received)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.settimeout(5)
        s.connect((host, port))
        me = s.getsockname()
        greeting = recv_exact(s, 8)
        s.sendall(msg)
        reply = recv_exact(s, len(b"Hello, !") + len(msg))
        s.sendall(b"exit")
        rest = read_all(s)
    return me, greeting + reply + rest


@pytest.mark.parametrize("kind", ["p_v1", "p_v2"])
def test_haproxy_carries_client_address(serve, haproxy, kind):
    srv = proxy_server(serve)
    h = haproxy(srv.port)
    me, got = through(h.ports[kind], b"Michael")
    assert got == b"Welcome!Hello, Michael!"
    # The client's own address is the peer; the balancer's is proxied_from.
    peer = f"127.0.0.1:{me[1]}"
    srv.wait_log(rf"open {re.escape(peer)} proxied_from=127\.0\.0\.1:\d+$")
    srv.wait_log(rf"close {re.escape(peer)} reason=exit messages=1 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")
    assert srv.log_count("proxy-error") == 0, "\n".join(srv.lines)


def test_haproxy_v1_tcp6(serve, haproxy):
    srv = proxy_server(serve)
    h = haproxy(srv.port)
    me, got = through(h.ports["p_v1_6"], b"six", host="::1")
    assert got == b"Welcome!Hello, six!"
    srv.wait_log(rf"open \[::1\]:{me[1]} proxied_from=127\.0\.0\.1:\d+$")


def test_haproxy_sockit_client_end_to_end(serve, haproxy):
    srv = proxy_server(serve)
    h = haproxy(srv.port)
    for kind in ("p_v1", "p_v2"):
        r = run_sockit("client", f"127.0.0.1:{h.ports[kind]}", "Michael", "Tracy Sarah")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"Welcome!\nHello, Michael!\nHello, Tracy Sarah!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=2 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$", count=2)
    assert srv.log_count(r"open 127\.0\.0\.1:\d+ proxied_from=") == 2


def test_haproxy_v2_tlvs_replayed(serve, haproxy):
    """The header HAProxy really sends with TLVs (CRC32C, unique id), caught by a plain
    socket, then sent to the server: accepted, the checksum verified; one bit changed in
    its addresses: refused with bad-checksum."""
    srv = proxy_server(serve)
    with socket.socket() as cap:
        cap.bind(("127.0.0.1", 0))
        cap.listen(4)
        cap.settimeout(10)
        h = haproxy(srv.port, cport=cap.getsockname()[1])
        with socket.create_connection(("127.0.0.1", h.ports["p_cap"]), timeout=5) as c:
            me = c.getsockname()
            c.sendall(b"Michael")
            conn, _ = cap.accept()
            with conn:
                fixed = recv_exact(conn, 16)
                assert fixed[:12] == SIG and fixed[12] == 0x21, fixed
                hdr = fixed + recv_exact(conn, struct.unpack(">H", fixed[14:16])[0])
                first = recv_exact(conn, 7)
    assert first == b"Michael"
    types, i = [], 16 + 12
    while i < len(hdr):
        types.append(hdr[i])
        i += 3 + struct.unpack(">H", hdr[i + 1:i + 3])[0]
    assert i == len(hdr) and 0x03 in types and 0x05 in types, (types, hdr)
    with srv.connect() as s:
        s.sendall(hdr + b"Michael")
        assert recv_exact(s, 8 + 15) == b"Welcome!Hello, Michael!"
    srv.wait_log(rf"open 127\.0\.0\.1:{me[1]} proxied_from=127\.0\.0\.1:\d+$")
    bad = bytearray(hdr)
    bad[16] ^= 1
    expect_rejected(srv, bytes(bad), "bad-checksum")


def test_haproxy_health_check_sends_local(serve, haproxy):
    """HAProxy's check with send-proxy-v2 sends a LOCAL header: accepted, the socket's own
    address is the peer (no proxied_from), the greeting comes, the server is UP."""
    srv = proxy_server(serve)
    h = haproxy(srv.port)
    wait_until(lambda: h.stat("be_check") == "UP", 10, "be_check/s1 UP")
    srv.wait_log(r"open 127\.0\.0\.1:\d+$")
    assert srv.log_count("proxy-error") == 0, "\n".join(srv.lines)


def test_haproxy_many_sessions_counted(serve, haproxy):
    srv = proxy_server(serve)
    h = haproxy(srv.port)
    ports = set()
    for i in range(20):
        me, got = through(h.ports["p_v2" if i % 2 else "p_v1"], b"m%d" % i)
        assert got == b"Welcome!Hello, m%d!" % i
        ports.add(me[1])
    for p in ports:
        srv.wait_log(rf"close 127\.0\.0\.1:{p} reason=exit messages=1 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")
    assert srv.stop() == 0
    summary = [l for l in srv.lines if "summary:" in l][-1]
    assert re.search(r" proxy_errors=0$", summary), summary


# ---- hostile peers, straight to the server ----

def expect_rejected(srv, data, reason, close=False):
    """Sends data (then FIN if close): the connection ends without a greeting and the
    server logs one proxy-error line with the reason for this peer."""
    with srv.connect() as s:
        me = s.getsockname()
        if data:
            s.sendall(data)
        if close:
            s.shutdown(socket.SHUT_WR)
        got = read_all(s)
    assert got == b"", got
    srv.wait_log(rf"proxy-error 127\.0\.0\.1:{me[1]} reason={reason}$")
    assert srv.log_count(rf"open 127\.0\.0\.1:{me[1]}") == 0


@pytest.mark.parametrize("data,reason", [
    (b"Michael", "missing"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "missing"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "missing"),  # a TLS ClientHello
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "malformed"),
    (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "malformed"),
    (b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "malformed"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "malformed"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "malformed"),
    (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "malformed"),
    (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unsupported-family"),
    (b"PROXY UNKNOWN " + b"x" * 200 + b"\r\n", "too-long"),
    (b"PROXYTCP4", "bad-signature"),
    (SIG[:6] + b"X" * 10, "bad-signature"),
    (v2(0x11, 0x11, inet_body("1.2.3.4", 1, "5.6.7.8", 2)), "unsupported-version"),
    (v2(0x23, 0x11, inet_body("1.2.3.4", 1, "5.6.7.8", 2)), "unsupported-command"),
    (v2(0x21, 0x12, inet_body("1.2.3.4", 1, "5.6.7.8", 2)), "unsupported-family"),
    (v2(0x21, 0x11, b"", length=4096), "too-long"),
    (v2(0x21, 0x11, inet_body("1.2.3.4", 1, "5.6.7.8", 2) + b"\x01\x00\x09ab"), "malformed"),
    (v2(0x21, 0x11, inet_body("1.2.3.4", 1, "5.6.7.8", 2) + tlv(3, b"\0\0\0\0")),
     "bad-checksum"),
])
def test_rejected_headers(serve, data, reason):
    srv = proxy_server(serve)
    expect_rejected(srv, data, reason)


def test_no_bytes_then_close_is_missing(serve):
    srv = proxy_server(serve)
    expect_rejected(srv, b"", "missing", close=True)


def test_v2_truncated_then_close(serve):
    srv = proxy_server(serve)
    hdr = v2(0x21, 0x11, inet_body("1.2.3.4", 1, "5.6.7.8", 2))
    expect_rejected(srv, hdr[:20], "truncated", close=True)
    expect_rejected(srv, b"PROXY TCP4 1.2.3.4", "truncated", close=True)


def test_v2_truncated_then_stall_hits_deadline(serve):
    srv = proxy_server(serve)
    hdr = v2(0x21, 0x11, inet_body("1.2.3.4", 1, "5.6.7.8", 2))
    t0 = time.monotonic()
    expect_rejected(srv, hdr[:15], "timeout")
    took = time.monotonic() - t0
    assert 0.9 <= took < 4.0, took


def test_silent_client_hits_deadline_without_greeting(serve):
    srv = proxy_server(serve)
    expect_rejected(srv, b"", "timeout")


def test_header_split_byte_by_byte_then_first_message(serve):
    srv = proxy_server(serve)
    for hdr in (b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 443\r\n",
                v2(0x21, 0x11, inet_body("203.0.113.9", 40002, "198.51.100.1", 443) +
                   tlv(1, b"h2") + tlv(0x20, b"\x01\0\0\0\0" + tlv(0x21, b"TLSv1.3")))):
        with srv.connect() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in hdr:
                s.send(bytes([b]))
            assert recv_exact(s, 8) == b"Welcome!"
            s.sendall(b"Michael")
            assert recv_exact(s, 15) == b"Hello, Michael!"
            s.sendall(b"exit")
            assert read_all(s) == b""
    srv.wait_log(r"open 203\.0\.113\.9:40001 proxied_from=127\.0\.0\.1:\d+$")
    srv.wait_log(r"open 203\.0\.113\.9:40002 proxied_from=127\.0\.0\.1:\d+$")
    srv.wait_log(r"close 203\.0\.113\.9:40002 reason=exit messages=1 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")


def test_bytes_after_header_are_the_first_message(serve):
    srv = proxy_server(serve)
    with srv.connect() as s:
        s.sendall(b"PROXY TCP6 2001:db8::5 2001:db8::1 5555 443\r\nMichael")
        assert recv_exact(s, 8 + 15) == b"Welcome!Hello, Michael!"
        s.sendall(b"exit")
        assert read_all(s) == b""
    srv.wait_log(r"close \[2001:db8::5\]:5555 reason=exit messages=1 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")


def test_line_framing_pipelined_after_header(serve):
    srv = proxy_server(serve, "--framing", "line")
    with srv.connect() as s:
        s.sendall(v2(0x21, 0x11, inet_body("198.51.100.7", 7, "1.1.1.1", 1)) + b"a\nb\nexit\n")
        assert read_all(s) == b"Welcome!\nHello, a!\nHello, b!\n"
    srv.wait_log(r"close 198\.51\.100\.7:7 reason=exit messages=2 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")


def test_local_uses_socket_address(serve):
    srv = proxy_server(serve)
    with srv.connect() as s:
        me = s.getsockname()
        s.sendall(v2(0x20, 0x00, tlv(4, b"")) + b"hi")
        assert recv_exact(s, 8 + 10) == b"Welcome!Hello, hi!"
    srv.wait_log(rf"open 127\.0\.0\.1:{me[1]}$")
    with srv.connect() as s:
        me = s.getsockname()
        s.sendall(b"PROXY UNKNOWN\r\n")
        assert recv_exact(s, 8) == b"Welcome!"
    srv.wait_log(rf"open 127\.0\.0\.1:{me[1]}$")


def test_max_conns_refuses_at_accept_naming_the_balancer(serve):
    # The slot is taken at accept, before any header (test_proxy_limits.py): the refusal
    # can only name the connection's own peer.
    srv = proxy_server(serve, "--max-conns", "1")
    with srv.connect() as a:
        a.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.100 1111 80\r\n")
        assert recv_exact(a, 8) == b"Welcome!"
        with srv.connect() as b:
            me = b.getsockname()
            assert read_all(b) == b"Error: server busy, too many connections\n"
        srv.wait_log(rf"refuse 127\.0\.0\.1:{me[1]} reason=max-conns limit=1$")
    srv.wait_log(r"close 192\.0\.2\.1:1111 reason=eof")
    # The slot is free again once the first closed.
    with srv.connect() as c:
        c.sendall(b"PROXY TCP4 192.0.2.3 192.0.2.100 3333 80\r\n")
        assert recv_exact(c, 8) == b"Welcome!"


def test_shutdown_while_waiting_for_header(serve):
    srv = proxy_server(serve)
    fds = srv.fd_count()
    with srv.connect() as s:
        me = s.getsockname()
        s.sendall(b"PROXY TCP4 ")
        # Accepted (no log line before the header: its fd is the sign).
        wait_until(lambda: srv.fd_count() > fds, 10, "the connection accepted")
        srv.proc.send_signal(signal.SIGTERM)
        # Not open, not greeted, but told: the client behind the balancer may retry at once.
        assert read_all(s) == b"Error: server shutting down\n"
    assert srv.stop() == 0
    assert srv.log_count(rf"proxy-error 127\.0\.0\.1:{me[1]} reason=shutdown$") == 1, \
        "\n".join(srv.lines)


def test_errors_counted_in_summary(serve):
    srv = proxy_server(serve)
    expect_rejected(srv, b"nope", "missing")
    expect_rejected(srv, b"PROXY TCP4 x", "malformed")
    with srv.connect() as s:
        s.sendall(b"PROXY UNKNOWN\r\n")
        assert recv_exact(s, 8) == b"Welcome!"
    assert srv.stop() == 0
    summary = [l for l in srv.lines if "summary:" in l][-1]
    assert re.search(r"connections=1 refused=0 .* proxy_errors=2$", summary), summary


def test_udp_unaffected(serve):
    srv = proxy_server(serve, "--udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"Michael", (srv.host, srv.port))
        assert u.recvfrom(100)[0] == b"Hello, Michael!"


def test_without_option_a_header_is_a_message(serve):
    srv = serve()
    with srv.connect() as s:
        assert recv_exact(s, 8) == b"Welcome!"
        s.sendall(b"PROXY UNKNOWN\r\n")
        assert recv_exact(s, 23) == b"Hello, PROXY UNKNOWN\r\n!"
