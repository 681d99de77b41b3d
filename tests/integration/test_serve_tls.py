"""`sockit serve --tls-cert/--tls-key [--tls-client-ca] [--handshake-timeout]`: the greeting
protocol inside TLS, against Python's ssl module (the seed's own client wrapped in an
SSLContext), `openssl s_client`, and hostile peers (plain text, garbage, stalled and
byte-by-byte ClientHellos, resets mid-handshake); client certificates; SIGHUP rotation;
start-up errors; the plain server's limits inside TLS; close_notify on clean ends.

Certificates are made at test time with the openssl CLI (RSA and ECDSA P-256 leaves under
an intermediate, an expired one, client certificates from two CAs). Every wait is on a log
line or a byte, with a deadline."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

from conftest import SANITIZED, SEED_DIR, raise_nofile, read_to_end, recv_until, run_sockit, wait_until
from nginx_util import free_port

from tls_pki import OPENSSL, pki  # noqa: F401 (pki: the fixture)


def tls_connect(srv, ctx, timeout=5.0, **kw):
    raw = socket.create_connection(srv.addr, timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost", **kw)
    except BaseException:
        raw.close()
        raise


def greet(srv, ctx, line=False, **kw):
    """A TLS session that has its greeting."""
    s = tls_connect(srv, ctx, **kw)
    want = b"Welcome!\n" if line else b"Welcome!"
    assert recv_until(s, want) == want
    return s


def peer_of(sock):
    host, port = sock.getsockname()[:2]
    return re.escape(f"{host}:{port}")


def client_hello():
    """The bytes of a real ClientHello (from Python's ssl on memory BIOs)."""
    ctx = ssl.create_default_context()
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outg.read()


# ---- the protocol inside TLS ----

SEED_RUNNER = r"""
import runpy, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv.pop(1))
real = socket.socket

class TLSSocket:
    # The seed's socket, wrapped in the SSLContext once connected.
    def __init__(self, *a):
        self._raw, self._s = real(*a), None
    def connect(self, addr):
        self._raw.connect(addr)
        self._s = ctx.wrap_socket(self._raw, server_hostname="localhost")
    def __getattr__(self, name):
        return getattr(self._s, name)

socket.socket = TLSSocket
sys.argv = sys.argv[1:]  # the seed sees its own path and the port
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_seed_client_wrapped_in_ssl_context_passes(serve, pki, tmp_path, kind):
    srv = serve(*pki.args(kind))
    runner = tmp_path / "seed_tls.py"
    runner.write_text(SEED_RUNNER)
    out = subprocess.run([sys.executable, str(runner), pki.path("root.pem"),
                          os.path.join(SEED_DIR, "seed_client.py"), str(srv.port)],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split("\n") == [
        "Welcome!", "Hello, Michael!", "Hello, Tracy!", "Hello, Sarah!", ""]
    srv.wait_log(r"open 127\.0\.0\.1:\d+ tls=TLSv1\.3 cipher=TLS_AES_\w+")
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=3 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+ tls_end=")


def test_listening_line_says_tls(serve, pki):
    srv = serve(*pki.args(), "--udp")
    assert srv.log_count(r"listening on \S+ \(tcp, framing chunk, tls\)") == 1
    # UDP is unaffected: a datagram gets its plain reply.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"M", srv.addr)
    assert u.recvfrom(100)[0] == b"Hello, M!"
    u.close()


def test_openssl_s_client_round_trip(serve, pki):
    srv = serve(*pki.args("ecdsa"), "--framing", "line")
    p = subprocess.Popen([OPENSSL, "s_client", "-quiet", "-connect", f"127.0.0.1:{srv.port}",
                          "-CAfile", pki.path("root.pem"), "-verify_return_error",
                          "-servername", "localhost"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"Welcome!\n"
        p.stdin.write(b"Mike\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"Hello, Mike!\n"
        p.stdin.write(b"exit\n")
        p.stdin.flush()
        assert p.stdout.read() == b""  # the server ended it
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    srv.wait_log(r"open 127\.0\.0\.1:\d+ tls=TLSv1\.3 cipher=TLS_AES_256_GCM_SHA384$")
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=1 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+ tls_end=")


def test_ncat_ssl_round_trip(serve, pki):
    """Nmap's ncat --ssl (a client users already have), verifying the chain and the name."""
    srv = serve(*pki.args("rsa"), "--framing", "line")
    p = subprocess.Popen(["ncat", "--ssl", "--ssl-verify", "--ssl-trustfile", pki.path("root.pem"),
                          "localhost", str(srv.port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:  # stdin stays open until the server ends the session: ncat quits at its EOF
        assert p.stdout.readline() == b"Welcome!\n"
        p.stdin.write(b"Nmap\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"Hello, Nmap!\n"
        p.stdin.write(b"exit\n")
        p.stdin.flush()
        assert p.stdout.read() == b""  # the server ended it
        p.stdin.close()
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=1 bytes_in=\d+ bytes_out=\d+ "
                 r"duration_ms=\d+ tls_end=")


def test_tls12_forced_by_the_client_works(serve, pki):
    srv = serve(*pki.args("rsa"))
    s = greet(srv, pki.client_ctx(max_version=ssl.TLSVersion.TLSv1_2))
    assert s.version() == "TLSv1.2"
    s.sendall(b"M")
    assert recv_until(s, b"!") == b"Hello, M!"
    srv.wait_log(peer_of(s) + r" tls=TLSv1\.2 cipher=ECDHE-RSA-AES256-GCM-SHA384$")
    s.close()


def test_exit_sends_close_notify_and_the_peers_close_notify_is_logged(serve, pki):
    srv = serve(*pki.args())
    s = greet(srv, pki.client_ctx(), suppress_ragged_eofs=False)
    peer = peer_of(s)
    s.sendall(b"exit")
    assert read_to_end(s) == b""  # close_notify: an unexpected EOF would raise here
    s.unwrap()  # ours back
    s.close()
    srv.wait_log(f"close {peer} reason=exit messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_end=close_notify$")
    # A client that just closes its socket: a truncation.
    s = greet(srv, pki.client_ctx())
    peer = peer_of(s)
    s.close()
    srv.wait_log(f"close {peer} reason=eof messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_end=truncated$")


def test_a_reset_after_the_handshake_is_logged_as_such(serve, pki):
    srv = serve(*pki.args())
    s = greet(srv, pki.client_ctx())
    peer = peer_of(s)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # an RST, no close_notify
    srv.wait_log(f"close {peer} reason=reset messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_end=reset$")


def test_sessions_resume_with_tickets(serve, pki):
    srv = serve(*pki.args())
    ctx = pki.client_ctx()
    first = greet(srv, ctx)  # TLS 1.3 tickets come after the handshake: with the greeting
    session = first.session
    first.close()
    again = greet(srv, ctx, session=session)
    assert again.session_reused
    again.close()


def test_a_handshake_is_not_held_by_nagle(serve, pki):
    """Regression: the server's flight is several records, one send() each; with Nagle on,
    every handshake waited for the client's delayed ACK (40 ms at least, on Linux)."""
    srv = serve(*pki.args())
    ctx = pki.client_ctx()
    best = 1.0
    for _ in range(20):
        t0 = time.monotonic()
        s = greet(srv, ctx)
        best = min(best, time.monotonic() - t0)
        s.close()
    assert best < 0.035, best


def test_expired_certificate_is_served_and_refused_by_a_verifying_client(serve, pki):
    srv = serve(*pki.args("expired"))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        tls_connect(srv, pki.client_ctx())
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=tls-error messages=0 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+ tls_error=\".+\"")
    assert srv.log_count(r"^\S+ open ") == 0


# ---- hostile peers ----

def test_plain_client_is_closed_and_others_are_unaffected(serve, pki):
    srv = serve(*pki.args())
    good = greet(srv, pki.client_ctx())
    plain = srv.connect()
    peer = peer_of(plain)
    plain.sendall(b"hello\n")
    try:
        data = read_to_end(plain)
    except ConnectionResetError:
        data = b""
    assert b"Welcome" not in data  # an alert at most, never the greeting in clear
    srv.wait_log(f"close {peer} reason=tls-error messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_error=\"TLS handshake: .+\"$")
    good.sendall(b"M")
    assert recv_until(good, b"!") == b"Hello, M!"
    good.close()


def test_garbage_bytes_are_a_tls_error(serve, pki):
    srv = serve(*pki.args())
    c = srv.connect()
    peer = peer_of(c)
    c.sendall(bytes(range(256)) * 8)
    srv.wait_log(f"close {peer} reason=tls-error ")
    c.close()


def test_reset_mid_handshake_is_logged_and_harmless(serve, pki):
    srv = serve(*pki.args())
    hello = client_hello()
    c = srv.connect()
    peer = peer_of(c)
    c.sendall(hello[: len(hello) // 2])
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # an RST
    srv.wait_log(f"close {peer} reason=(reset|tls-error) messages=0")
    s = greet(srv, pki.client_ctx())
    s.close()


def test_stalled_handshakes_close_at_the_deadline_while_others_are_served(serve, pki):
    srv = serve(*pki.args(), "--handshake-timeout", "1s", "--workers", "1")
    silent = srv.connect()
    t0 = time.monotonic()
    trickle = srv.connect()
    hello = client_hello()
    served = 0
    gone = False
    # One byte of a ClientHello every 100 ms on one connection; meanwhile
    # whole sessions on others, on the same (single) worker.
    for i in range(len(hello)):
        try:
            trickle.send(hello[i:i + 1])
        except OSError:
            gone = True
            break
        s = greet(srv, pki.client_ctx())
        s.sendall(b"M")
        assert recv_until(s, b"!") == b"Hello, M!"
        s.close()
        served += 1
        if srv.log_count(r"reason=handshake-timeout") >= 2:
            break
        time.sleep(0.1)  # the pace of the trickle, not a synchronisation
    srv.wait_log(f"close {peer_of(silent)} reason=handshake-timeout messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+$", timeout=5)
    srv.wait_log(f"close {peer_of(trickle)} reason=handshake-timeout messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+$", timeout=5)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 5, elapsed
    assert served >= 3 or gone
    assert read_to_end(silent) == b""
    silent.close()
    trickle.close()


def test_max_conns_counts_handshaking_connections(serve, pki):
    srv = serve(*pki.args(), "--max-conns", "1", "--handshake-timeout", "1s", "--workers", "1")
    stalled = srv.connect()
    second = srv.connect()  # accepted after the first: over the limit
    assert b"server busy" in recv_until(second, b"\n")
    srv.wait_log(f"refuse {peer_of(second)} reason=max-conns limit=1")
    second.close()
    srv.wait_log(f"close {peer_of(stalled)} reason=handshake-timeout")
    stalled.close()
    s = greet(srv, pki.client_ctx())  # the slot is free again
    s.close()


# ---- client certificates ----

def test_client_ca_requires_a_certificate_that_chains_to_it(serve, pki):
    srv = serve(*pki.args(), "--tls-client-ca", pki.path("clientca.pem"))

    def refused(cert):
        # TLS 1.3: the client's handshake may end before the server's verdict,
        # which then comes as an alert on the first read.
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            s = tls_connect(srv, pki.client_ctx(cert))
            try:
                s.settimeout(5)
                if s.recv(100) == b"":
                    raise ssl.SSLError("closed")
            finally:
                s.close()

    refused(None)
    srv.wait_log(r"reason=tls-error messages=0 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+ tls_error=\".*certificate.*\"")
    refused("stranger")
    srv.wait_log(r"reason=tls-error messages=0 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+ tls_error=\".*certificate.*\"", count=2)
    assert srv.log_count(r"^\S+ open ") == 0
    s = greet(srv, pki.client_ctx("client"))
    s.sendall(b"M")
    assert recv_until(s, b"!") == b"Hello, M!"
    s.close()


# ---- rotation ----

def test_sighup_rotates_the_pair_without_dropping_sessions(serve, pki, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki.path("ecdsa.chain"), cert)
    shutil.copy(pki.path("ecdsa.key"), key)
    srv = serve("--tls-cert", str(cert), "--tls-key", str(key))
    ctx = pki.client_ctx()
    old = greet(srv, ctx)
    assert old.getpeercert()["serialNumber"] == "1002"  # 4098
    shutil.copy(pki.path("rotated.chain"), cert)
    shutil.copy(pki.path("rotated.key"), key)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"received SIGHUP: reloaded certificate ")
    new = greet(srv, ctx)
    assert new.getpeercert()["serialNumber"] == "1003"
    assert dict(x[0] for x in new.getpeercert()["subject"])["commonName"] == "rotated.localhost"
    old.sendall(b"M")  # the session of the old pair goes on
    assert recv_until(old, b"!") == b"Hello, M!"
    # A bad pair: logged, the current one kept.
    shutil.copy(pki.path("rsa.key"), key)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"received SIGHUP: reload failed, keeping the old certificate: .*does not match")
    again = greet(srv, ctx)
    assert again.getpeercert()["serialNumber"] == "1003"
    for s in (old, new, again):
        s.close()


# ---- behind a PROXY protocol balancer: the header in clear, then TLS ----

PROXY_V1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 4321 443\r\n"


def test_proxy_header_then_tls(serve, pki):
    srv = serve(*pki.args(), "--proxy-protocol")
    raw = socket.create_connection(srv.addr, timeout=5)
    raw.sendall(PROXY_V1)
    s = pki.client_ctx().wrap_socket(raw, server_hostname="localhost")
    assert recv_until(s, b"Welcome!") == b"Welcome!"
    s.sendall(b"M")
    assert recv_until(s, b"!") == b"Hello, M!"
    srv.wait_log(r"open 192\.0\.2\.7:4321 proxied_from=127\.0\.0\.1:\d+ tls=TLSv1\.3 cipher=")
    s.close()


def test_proxy_header_and_client_hello_in_one_segment(serve, pki):
    """HAProxy writes its header and the ClientHello back to back: the server reads both in
    one read, and the TLS bytes after the header must reach OpenSSL."""
    srv = serve(*pki.args(), "--proxy-protocol")
    raw = socket.create_connection(srv.addr, timeout=5)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = pki.client_ctx().wrap_bio(inc, out, server_hostname="localhost")
    prefix = PROXY_V1
    for _ in range(20):  # a handshake is a few flights
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(prefix + out.read())
            prefix = b""
            data = raw.recv(65536)
            assert data, "closed during the handshake"
            inc.write(data)
    raw.sendall(out.read())  # the client's Finished
    got = b""
    while got != b"Welcome!":
        try:
            got += obj.read(100)
        except ssl.SSLWantReadError:
            inc.write(raw.recv(65536))
    srv.wait_log(r"open 192\.0\.2\.7:4321 proxied_from=127\.0\.0\.1:\d+ tls=TLSv1\.3 ")
    raw.close()


def test_a_bad_proxy_header_before_tls_is_a_proxy_error(serve, pki):
    srv = serve(*pki.args(), "--proxy-protocol")
    raw = socket.create_connection(srv.addr, timeout=5)
    peer = peer_of(raw)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        pki.client_ctx().wrap_socket(raw, server_hostname="localhost")  # a ClientHello, no header
    srv.wait_log(f"proxy-error {peer} reason=missing")
    raw.close()


HAPROXY_CONF = """
global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{sport} send-proxy-v2 ssl verify required ca-file {ca} verifyhost localhost sni str(localhost)
"""


@pytest.mark.skipif(not os.path.exists("/usr/sbin/haproxy"), reason="haproxy not installed")
def test_behind_haproxy_send_proxy_v2_with_ssl(serve, pki, tmp_path):
    srv = serve(*pki.args(), "--proxy-protocol")
    port = free_port("127.0.0.1")
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(port=port, sport=srv.port, ca=pki.path("root.pem")))
    log = open(tmp_path / "haproxy.log", "wb")
    hap = subprocess.Popen(["/usr/sbin/haproxy", "-db", "-f", str(conf)], stdin=subprocess.DEVNULL,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        got = []  # the first connection that HAProxy accepts is the client

        def connected():
            try:
                got.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                pass
            return hap.poll() is not None or bool(got)
        wait_until(connected, 10, "haproxy listening")
        assert got, (tmp_path / "haproxy.log").read_text()
        c = got[0]
        assert recv_until(c, b"Welcome!") == b"Welcome!"
        c.sendall(b"M")
        assert recv_until(c, b"!") == b"Hello, M!"
        srv.wait_log(f"open {peer_of(c)} proxied_from=127\\.0\\.0\\.1:\\d+ tls=TLSv1\\.[23] ")
        c.close()
    finally:
        hap.terminate()
        hap.wait(10)
        log.close()


# ---- start-up errors ----

@pytest.mark.parametrize("case,status,message", [
    ("mismatch", 1, r"the key \S+ does not match the certificate"),
    ("missing", 1, r"cannot read \S+: No such file or directory"),
    ("badpem", 1, r"cannot load certificate \S+"),
    ("key-only", 2, r"--tls-key needs --tls-cert"),
    ("cert-only", 2, r"--tls-cert needs --tls-key"),
    ("ca-only", 2, r"--tls-client-ca needs --tls-cert and --tls-key"),
])
def test_start_up_errors(pki, tmp_path, case, status, message):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    cert, key = pki.path("ecdsa.chain"), pki.path("ecdsa.key")
    args = {
        "mismatch": ["--tls-cert", cert, "--tls-key", pki.path("rsa.key")],
        "missing": ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", key],
        "badpem": ["--tls-cert", str(bad), "--tls-key", key],
        "key-only": ["--tls-key", key],
        "cert-only": ["--tls-cert", cert],
        "ca-only": ["--tls-client-ca", pki.path("clientca.pem")],
    }[case]
    out = run_sockit("serve", "--listen", "127.0.0.1:0", *args, timeout=20)
    err = out.stderr.decode()
    assert out.returncode == status, err
    assert len(err.splitlines()) == 1 and err.startswith("sockit: serve: "), err
    assert re.search(message, err), err


# ---- the plain server's limits inside TLS ----

def test_max_line_inside_tls(serve, pki):
    srv = serve(*pki.args(), "--framing", "line", "--max-line", "16")
    s = greet(srv, pki.client_ctx(), line=True, suppress_ragged_eofs=False)
    s.sendall(b"short\n" + b"x" * 40 + b"\n")
    assert read_to_end(s) == b"Hello, short!\nError: message too long\n"  # then close_notify
    peer = peer_of(s)
    s.close()  # the server's linger ends with our FIN
    srv.wait_log(f"close {peer} reason=message-too-long messages=1 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_end=truncated$")


def test_idle_timeout_inside_tls(serve, pki):
    """The idle close is a clean end: close_notify, not a truncation."""
    srv = serve(*pki.args(), "--idle-timeout", "1")
    s = greet(srv, pki.client_ctx(), suppress_ragged_eofs=False)
    srv.wait_log(f"close {peer_of(s)} reason=idle-timeout messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_end=none$", timeout=5)
    assert read_to_end(s) == b""  # close_notify, or SSLEOFError here
    s.close()


def test_sigterm_drain_sends_close_notify(serve, pki):
    srv = serve(*pki.args())
    s = greet(srv, pki.client_ctx(), suppress_ragged_eofs=False)
    peer = peer_of(s)
    assert srv.stop(signal.SIGTERM) == 0
    # The drain's line, then close_notify (or SSLEOFError here).
    assert read_to_end(s) == b"Error: server shutting down\n"
    s.close()
    assert srv.log_count(f"close {peer} reason=shutdown messages=0 bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ tls_end=") == 1


@pytest.mark.skipif(SANITIZED, reason="the sanitizer's allocator says nothing about RSS")
def test_idle_tls_sessions_hold_no_record_buffers(serve, pki):
    """500 idle sessions: OpenSSL's own state per session (about 14 KiB with 3.0), no 16 KiB
    read or write buffer (SSL_MODE_RELEASE_BUFFERS): with them it would be 30 KiB or more."""
    n = 500
    raise_nofile(n + 100)
    srv = serve(*pki.args(), "--workers", "1", "--quiet")
    ctx = pki.client_ctx()
    warm = [greet(srv, ctx) for _ in range(20)]  # OpenSSL's first-use allocations
    for s in warm:
        s.close()
    before = srv.rss_kib()
    socks = []
    try:
        for _ in range(n):
            socks.append(greet(srv, ctx))
        per_session = (srv.rss_kib() - before) * 1024 / n
    finally:
        for s in socks:
            s.close()
    assert per_session < 24 * 1024, per_session
