"""sockit fetch through SOCKS5 proxies: a real microsocks (Debian's, started
on a port the test picks, with and without -u/-P authentication; its log
says which host it was asked to connect to) in front of the real nginx of
nginx_util.py, for http and https (TLS inside the tunnel, the origin
verified), socks5:// (the client resolves) against socks5h:// (the proxy
does), --socks5 and --socks5-hostname, the environment variables,
--noproxy; and hostile SOCKS5 servers scripted here (SocksServer): a wrong
version, no acceptable method, refused credentials, each REP code, a cut
reply, garbage, bytes past the reply, a silent proxy. Every failure is one
line with its exit status (12 for the proxy's); nothing is saved."""
import ipaddress
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SOCKIT
from hostile_http import HostileServer
from nginx_util import Nginx, free_port, make_certs
from peer_proc import stop_process
from test_fetch_proxy import (EXIT_CONNECT, EXIT_PROXY, EXIT_RESOLVE, EXIT_TIMEOUT, EXIT_TLS,
                              assert_clean, clean_env, failed, fetch, ok)

MICROSOCKS = "/usr/bin/microsocks"  # Debian's microsocks (scripts/deps.sh test)
EXIT_USAGE = 2


class LoggedProxy:
    """A proxy program (argv) listening on 127.0.0.1:port, its log lines
    (stdout and stderr) collected; ready once the port accepts; stopped by
    PID. Microsocks here, dante in test_fetch_socks4.py."""

    def __init__(self, argv, port, timeout=10.0):
        self.port = port
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + timeout
        while True:  # it says nothing when it listens: its port accepting is the sign
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{argv[0]} did not start: {self.lines}")
                time.sleep(0.02)

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()

    def wait_log(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"proxy log: no {text!r} in {self.lines[-10:]}")
                self.cond.wait(min(left, 0.1))

    def url(self, scheme="socks5h", cred=""):
        return f"{scheme}://{cred}127.0.0.1:{self.port}"

    def stop(self):
        stop_process(self.proc, signal.SIGTERM)
        self.reader.join(5)
        self.proc.stdout.close()


class Microsocks(LoggedProxy):
    """microsocks on 127.0.0.1 at a free port (with -u/-P when auth)."""

    def __init__(self, auth=None, timeout=10.0):
        port = free_port()
        argv = [MICROSOCKS, "-i", "127.0.0.1", "-p", str(port)]
        if auth:
            argv += ["-u", auth[0], "-P", auth[1]]
        super().__init__(argv, port, timeout)

    def connects(self):
        with self.cond:
            return [line.split("connected to ", 1)[1] for line in self.lines
                    if "connected to " in line]


# ---- a scripted SOCKS5 server ----

def recv_n(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class SocksServer:
    """Each connection: the greeting read (recorded), then script(conn, srv,
    greeting) says the rest with the helpers below. Records the greetings,
    the authentication requests and the CONNECT requests (atyp, host, port)."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.greetings, self.auths, self.connects = [], [], []
        self.accepted = 0
        self.stopping = threading.Event()
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    @property
    def url(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        c.settimeout(10)
        try:
            head = recv_n(c, 2)
            greeting = head + recv_n(c, head[1])
            self.greetings.append(greeting)
            self.script(c, self, greeting)
        except (OSError, EOFError):
            pass
        finally:
            c.close()

    def read_auth(self, c):
        ver, ulen = recv_n(c, 2)
        user = recv_n(c, ulen)
        plen = recv_n(c, 1)[0]
        self.auths.append((ver, user, recv_n(c, plen)))

    def read_connect(self, c):
        ver, cmd, rsv, atyp = recv_n(c, 4)
        if atyp == 1:
            host = str(ipaddress.IPv4Address(recv_n(c, 4)))
        elif atyp == 4:
            host = str(ipaddress.IPv6Address(recv_n(c, 16)))
        else:
            host = recv_n(c, recv_n(c, 1)[0]).decode("latin-1")
        port = int.from_bytes(recv_n(c, 2), "big")
        self.connects.append((ver, cmd, atyp, host, port))
        return host, port

    def stop(self):
        self.stopping.set()
        self.sock.close()
        for t in self.threads:
            t.join(15)


OK_REPLY = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50"


def answering(body=b"socks"):
    """A script: no authentication, CONNECT succeeds, then the proxy itself
    answers one HTTP request with body (it stands for the origin)."""
    def script(c, srv, greeting):
        c.sendall(b"\x05\x00")
        srv.read_connect(c)
        c.sendall(OK_REPLY)
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = c.recv(4096)
            if not chunk:
                return
            req += chunk
        srv.request = req
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                  % (len(body), body))
    return script


@pytest.fixture
def socks():
    started = []

    def make(script, cls=SocksServer):  # cls: a subclass (test_fetch_socks4.py)
        s = cls(script)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx"))
    certs = make_certs(os.path.join(d, "certs"))
    srv = Nginx(d, certs)
    srv.body = os.urandom(5000)
    srv.put("small.bin", srv.body)
    srv.put("other.bin", b"other")
    srv.other_ca = make_certs(os.path.join(d, "other"))["ca"]
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ms():
    p = Microsocks()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def ms_auth():
    p = Microsocks(auth=("alice", "s3cr3t"))
    yield p
    p.stop()


def dead_socks(scheme="socks5h"):
    return f"{scheme}://127.0.0.1:{free_port()}"


# ---- microsocks ----

@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks5h_sends_the_name(ng, ms, tmp_path, tls):
    out = tmp_path / "o"
    r = fetch("-x", ms.url("socks5h"), ng.url("/small.bin", tls=tls, host="localhost"), "-o",
              str(out), "--cacert", ng.certs["ca"])
    ok(r, out, ng.body)
    ms.wait_log(f"connected to localhost:{ng.https if tls else ng.http}")


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks5_sends_the_address_it_resolved(ng, ms, tmp_path, tls):
    out = tmp_path / "o"
    port = ng.https if tls else ng.http
    before = ms.connects()
    r = fetch("-x", ms.url("socks5"), ng.url("/small.bin", tls=tls, host="localhost"), "-o",
              str(out), "--cacert", ng.certs["ca"])
    ok(r, out, ng.body)
    ms.wait_log(f"connected to 127.0.0.1:{port}")
    assert f"localhost:{port}" not in ms.connects()[len(before):]


def test_https_through_socks_verifies_the_origin(ng, ms, tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", ms.url(), ng.url("/small.bin", tls=True), "-o", str(out), "--cacert",
              ng.other_ca)
    failed(r, EXIT_TLS, "certificate")
    r = fetch("-x", ms.url(), f"https://127.0.0.1:{ng.wrong}/small.bin", "-o", str(out),
              "--cacert", ng.certs["ca"])
    failed(r, EXIT_TLS)
    assert not out.exists()


@pytest.mark.parametrize("opt,scheme", [("--socks5", "socks5"),
                                        ("--socks5-hostname", "socks5h")])
def test_curls_socks_options(ng, ms, tmp_path, opt, scheme):
    out = tmp_path / "o"
    url = ng.url("/small.bin", host="localhost")
    r = fetch(opt, f"127.0.0.1:{ms.port}", url, "-o", str(out))
    ok(r, out, ng.body)
    ms.wait_log(f"connected to {'localhost' if scheme == 'socks5h' else '127.0.0.1'}:{ng.http}")
    out.unlink()
    # the last of -x and these wins
    r = fetch("-x", "http://127.0.0.1:1", opt, f"127.0.0.1:{ms.port}", url, "-o", str(out))
    ok(r, out, ng.body)
    out.unlink()
    r = fetch(opt, "127.0.0.1:1", "-x", ms.url(), url, "-o", str(out))
    ok(r, out, ng.body)


@pytest.mark.parametrize("arg", ["socks5h://127.0.0.1:1080", ""])
def test_socks_option_takes_host_and_port_only(arg, tmp_path):
    r = fetch("--socks5-hostname", arg, "http://127.0.0.1:1/x", "-o", str(tmp_path / "o"))
    failed(r, EXIT_USAGE, "--socks5-hostname takes HOST[:PORT]")


def test_socks_default_port_is_1080(tmp_path):
    # nothing listens on 1080 here (or it is not ours): the message names it
    r = fetch("--socks5", "127.0.0.2", "http://127.0.0.1:1/x", "-o", str(tmp_path / "o"),
              "--connect-timeout", "2")
    assert_clean(r)
    assert "127.0.0.2:1080" in r.stderr.decode(), r.stderr


@pytest.mark.parametrize("var", ["all_proxy", "ALL_PROXY", "http_proxy", "https_proxy"])
def test_socks5h_from_the_environment(ng, ms, tmp_path, var):
    out = tmp_path / "o"
    tls = var == "https_proxy"
    r = fetch(ng.url("/small.bin", tls=tls, host="localhost"), "-o", str(out), "--cacert",
              ng.certs["ca"], env=clean_env(**{var: ms.url()}))
    ok(r, out, ng.body)
    ms.wait_log(f"connected to localhost:{ng.https if tls else ng.http}")


@pytest.mark.parametrize("how", ["option", "env"])
def test_noproxy_bypasses_a_socks_proxy(ng, tmp_path, how):
    out = tmp_path / "o"
    env = clean_env(all_proxy=dead_socks())
    args = ["--noproxy", "127.0.0.1"] if how == "option" else []
    if how == "env":
        env["no_proxy"] = "127.0.0.1"
    r = fetch(*args, ng.url("/small.bin"), "-o", str(out), env=env)
    ok(r, out, ng.body)


def test_a_kept_connection_through_socks_serves_the_next_url(ng, ms, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    before = len(ms.connects())
    r = fetch("-x", ms.url(), ng.url("/small.bin", host="localhost"),
              ng.url("/other.bin", host="localhost"), "--output-dir", str(d), "--parallel", "1")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (d / "small.bin").read_bytes() == ng.body and (d / "other.bin").read_bytes() == b"other"
    assert ms.connects()[before:] == [f"localhost:{ng.http}"]


def test_redirect_to_https_without_an_https_proxy_goes_direct(ng, ms, tmp_path):
    out = tmp_path / "o"
    before = len(ms.connects())
    r = fetch(ng.url("/redir/to-https"), "-o", str(out), "--cacert", ng.certs["ca"],
              env=clean_env(http_proxy=ms.url()))
    ok(r, out, ng.body)
    assert ms.connects()[before:] == [f"127.0.0.1:{ng.http}"]


def test_unreachable_socks_proxy(tmp_path):
    port = free_port()
    for url in ("http://origin.test/x", "https://origin.test/x"):
        r = fetch("-x", f"socks5h://127.0.0.1:{port}", url, "-o", str(tmp_path / "o"))
        failed(r, EXIT_CONNECT, f"cannot connect to proxy 127.0.0.1:{port}")


def test_socks5_origin_that_does_not_resolve_is_the_origins_failure(tmp_path, socks):
    px = socks(answering())
    r = fetch("-x", f"socks5://{px.url}", "http://nosuch.invalid/x", "-o", str(tmp_path / "o"))
    failed(r, EXIT_RESOLVE, "could not resolve host nosuch.invalid")
    assert "proxy host" not in r.stderr.decode()
    assert px.accepted == 0  # resolved before the proxy is asked


# ---- authentication (RFC 1929) ----

@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks_auth_good_credentials(ng, ms_auth, tmp_path, tls):
    out = tmp_path / "o"
    # percent-encoded in the URL: s3cr%33t is s3cr3t
    r = fetch("-x", ms_auth.url("socks5h", "alice:s3cr%33t@"), ng.url("/small.bin", tls=tls),
              "-o", str(out), "--cacert", ng.certs["ca"])
    ok(r, out, ng.body)


def test_socks_auth_wrong_credentials(ng, ms_auth, tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", ms_auth.url("socks5h", "alice:wrong@"), ng.url("/small.bin"), "-o",
              str(out))
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{ms_auth.port} rejected the credentials (SOCKS5")
    assert "wrong" not in r.stderr.decode()
    assert not out.exists()


def test_socks_auth_missing(ng, ms_auth, tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", ms_auth.url(), ng.url("/small.bin"), "-o", str(out))
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{ms_auth.port} accepts no offered SOCKS5 method",
           "may require authentication")
    assert not out.exists()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks_credentials_never_reach_the_origin_nor_the_verbose_output(ms_auth, tmp_path,
                                                                         tls):
    import ssl
    certs = make_certs(str(tmp_path / "certs"))
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["cert"], certs["key"])
    origin = HostileServer(tls=ctx)
    origin.route("/who", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        out = tmp_path / "o"
        r = subprocess.run([SOCKIT, "fetch", "-v", "-x", ms_auth.url("socks5h", "alice:s3cr3t@"),
                            origin.url("/who"), "-o", str(out), "--cacert", certs["ca"]],
                           capture_output=True, env=clean_env(), timeout=60)
        ok(r, out, b"ok")
        (req,) = origin.requests
        assert b"s3cr3t" not in req.raw and b"alice" not in req.raw, req.raw
        assert "proxy-authorization" not in req.headers
        assert b"s3cr3t" not in r.stderr + r.stdout, r.stderr
        assert b"> GET /who HTTP/1.1" in r.stderr, r.stderr  # -v did show the request
    finally:
        origin.stop()


# ---- what is sent (a recording SOCKS server) ----

def test_greeting_and_connect_bytes(socks, tmp_path):
    px = socks(answering())
    out = tmp_path / "o"
    r = fetch("-x", f"socks5h://{px.url}", "http://origin.test:8080/a", "-o", str(out))
    ok(r, out, b"socks")
    assert px.greetings == [b"\x05\x01\x00"]  # no credentials: method 0 alone
    assert px.connects == [(5, 1, 3, "origin.test", 8080)]
    assert px.request.startswith(b"GET /a HTTP/1.1\r\nHost: origin.test:8080\r\n")


def test_a_proxy_authorization_header_never_goes_through_the_tunnel(socks, tmp_path):
    px = socks(answering())
    r = fetch("-x", f"socks5h://{px.url}", "-H", "Proxy-Authorization: Basic aGVhZGVy", "-H",
              "X-Test: 1", "http://origin.test/a", "-o", str(tmp_path / "o"))
    ok(r, tmp_path / "o", b"socks")
    assert b"X-Test: 1" in px.request
    assert b"proxy-authorization" not in px.request.lower(), px.request


@pytest.mark.parametrize("host,atyp,want", [("127.0.0.1", 1, "127.0.0.1"),
                                            ("[::1]", 4, "::1"),
                                            ("localhost", 1, "127.0.0.1")])
def test_socks5_sends_addresses(socks, tmp_path, host, atyp, want):
    px = socks(answering())
    out = tmp_path / "o"
    r = fetch("-x", f"socks5://{px.url}", f"http://{host}:81/", "-o", str(out))
    ok(r, out, b"socks")
    assert px.connects == [(5, 1, atyp, want, 81)]


def test_socks5h_sends_an_address_literal_as_an_address(socks, tmp_path):
    px = socks(answering())
    r = fetch("-x", f"socks5h://{px.url}", "http://[::1]:82/", "-o", str(tmp_path / "o"))
    ok(r, tmp_path / "o", b"socks")
    assert px.connects == [(5, 1, 4, "::1", 82)]


def test_credentials_offer_method_2_and_are_sent_decoded(socks, tmp_path):
    def script(c, srv, greeting):
        c.sendall(b"\x05\x02")
        srv.read_auth(c)
        c.sendall(b"\x01\x00")
        srv.read_connect(c)
        c.sendall(OK_REPLY)
        c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
    px = socks(script)
    out = tmp_path / "o"
    r = fetch("-x", f"socks5h://al%20ice:p%40ss%3Aw@{px.url}", "http://origin.test/", "-o",
              str(out))
    ok(r, out, b"hi")
    assert px.greetings == [b"\x05\x02\x00\x02"]
    assert px.auths == [(1, b"al ice", b"p@ss:w")]


@pytest.mark.parametrize("cred,what", [("u" * 256 + ":p@", "user name"),
                                       ("u:" + "p" * 256 + "@", "password"),
                                       ("u:" + "%70" * 256 + "@", "password"),
                                       ("u" * 2000 + ":p@", "user name")])
def test_credentials_over_255_bytes_are_refused_before_connecting(socks, tmp_path, cred, what):
    px = socks(answering())
    r = fetch("-x", f"socks5h://{cred}{px.url}", "http://origin.test/", "-o",
              str(tmp_path / "o"))
    failed(r, EXIT_USAGE, f"proxy {what} too long (over 255 bytes)")
    assert px.accepted == 0


def test_credentials_of_255_bytes_are_sent(socks, tmp_path):
    def script(c, srv, greeting):
        c.sendall(b"\x05\x02")
        srv.read_auth(c)
        c.sendall(b"\x01\x01")
    px = socks(script)
    r = fetch("-x", f"socks5h://{'u' * 255}:{'p' * 255}@{px.url}", "http://origin.test/", "-o",
              str(tmp_path / "o"))
    failed(r, EXIT_PROXY, "rejected the credentials (SOCKS5 status 1)")
    assert px.auths == [(1, b"u" * 255, b"p" * 255)]


def test_a_host_name_over_255_bytes_is_refused_before_connecting(socks, tmp_path):
    px = socks(answering())
    host = ".".join(["a" * 60] * 5)  # 304 bytes
    r = fetch("-x", f"socks5h://{px.url}", f"http://{host}/", "-o", str(tmp_path / "o"))
    failed(r, EXIT_USAGE)
    assert px.accepted == 0


def test_socks_user_name_must_not_be_empty(socks, tmp_path):
    px = socks(answering())
    r = fetch("-x", f"socks5h://:pw@{px.url}", "http://origin.test/", "-o", str(tmp_path / "o"))
    failed(r, EXIT_USAGE, "SOCKS5 proxy credentials without a user name")
    assert px.accepted == 0


# ---- hostile SOCKS servers ----

def replies(*pieces, auth=False):
    """A script that sends each piece in turn (None: read our next request
    first: the authentication with auth, else the CONNECT)."""
    def script(c, srv, greeting):
        for p in pieces:
            if p is None:
                (srv.read_auth if auth else srv.read_connect)(c)
                continue
            if p == "wait":
                srv.stopping.wait(30)
                continue
            c.sendall(p)
        srv.stopping.wait(0.5)  # then close
    return script


HOSTILE = {
    "wrong-version": ([b"\x04\x00"], "not a SOCKS5 reply (version 4)"),
    "http-answer": ([b"HTTP/1.1 400 Bad Request\r\n\r\n"], "not a SOCKS5 reply (version 72)"),
    "no-acceptable-method": ([b"\x05\xff"], "accepts no offered SOCKS5 method"),
    "method-not-offered": ([b"\x05\x02"], "chose a SOCKS5 method not offered (2)"),
    "gssapi": ([b"\x05\x01"], "chose a SOCKS5 method not offered (1)"),
    "connect-version": ([b"\x05\x00", None, b"\x04\x00\x00\x01" + b"\0" * 6],
                        "not a SOCKS5 reply (version 4)"),
    "reserved-byte": ([b"\x05\x00", None, b"\x05\x00\x01\x01" + b"\0" * 6],
                      "malformed SOCKS5 reply"),
    "unknown-atyp": ([b"\x05\x00", None, b"\x05\x00\x00\x07" + b"\0" * 6],
                     "malformed SOCKS5 reply"),
    "empty-name": ([b"\x05\x00", None, b"\x05\x00\x00\x03\x00\x00\x50"],
                   "malformed SOCKS5 reply"),
    "cut-connect-reply": ([b"\x05\x00", None, b"\x05\x00\x00\x01\x7f"],
                          "closed the connection inside its SOCKS5 reply"),
    "cut-method-reply": ([b"\x05"], "closed the connection inside its SOCKS5 reply"),
    "no-reply": ([], "closed the connection before its SOCKS5 reply"),
    "closed-after-method": ([b"\x05\x00", None],
                            "closed the connection before its SOCKS5 reply"),
    "ahead-of-the-client": ([b"\x05\x00" + OK_REPLY], "sent 10 bytes beyond its SOCKS5 reply"),
    "bytes-after-the-reply": ([b"\x05\x00", None, OK_REPLY + b"HTTP/1.1 200 OK\r\n\r\n"],
                              "sent 19 bytes beyond its SOCKS5 reply"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_hostile_socks_reply(socks, tmp_path, case, tls):
    pieces, text = HOSTILE[case]
    px = socks(replies(*pieces))
    out = tmp_path / "o"
    r = fetch("-x", f"socks5h://{px.url}", f"http{'s' if tls else ''}://origin.test/x", "-o",
              str(out), timeout=30)
    failed(r, EXIT_PROXY, f"proxy {px.url}", text)
    assert os.listdir(tmp_path) == []


AUTH_HOSTILE = {
    "refused": ([b"\x05\x02", None, b"\x01\x01"], "rejected the credentials (SOCKS5 status 1)"),
    "refused-255": ([b"\x05\x02", None, b"\x01\xff"],
                    "rejected the credentials (SOCKS5 status 255)"),
    "auth-version": ([b"\x05\x02", None, b"\x05\x00"],
                     "malformed SOCKS5 authentication reply (version 5)"),
    "cut-auth-reply": ([b"\x05\x02", None, b"\x01"],
                       "closed the connection inside its SOCKS5 reply"),
    "no-acceptable-method": ([b"\x05\xff"], "accepts no offered SOCKS5 method (none, "
                             "username/password)"),
}


@pytest.mark.parametrize("case", sorted(AUTH_HOSTILE))
def test_hostile_socks_auth_reply(socks, tmp_path, case):
    pieces, text = AUTH_HOSTILE[case]
    px = socks(replies(*pieces, auth=True))
    r = fetch("-x", f"socks5h://u:secret@{px.url}", "http://origin.test/x", "-o",
              str(tmp_path / "o"), timeout=30)
    err = failed(r, EXIT_PROXY, f"proxy {px.url}", text)
    assert "secret" not in err


REPS = {1: "general SOCKS server failure", 2: "connection not allowed by ruleset",
        3: "network unreachable", 4: "host unreachable",
        5: "connection refused by the destination", 6: "TTL expired",
        7: "command not supported", 8: "address type not supported",
        9: "unknown reply code", 255: "unknown reply code"}


@pytest.mark.parametrize("rep", sorted(REPS))
def test_each_rep_code_is_a_clear_message(socks, tmp_path, rep):
    px = socks(replies(b"\x05\x00", None, bytes([5, rep, 0, 1, 0, 0, 0, 0, 0, 0])))
    r = fetch("-x", f"socks5h://{px.url}", "https://origin.test:8443/x", "-o",
              str(tmp_path / "o"))
    failed(r, EXIT_PROXY,
           f"proxy {px.url}: SOCKS5 CONNECT to origin.test:8443 failed: {REPS[rep]} ({rep})")


def test_slow_socks_reply_hits_the_connect_timeout(socks, tmp_path):
    px = socks(replies(b"\x05\x00", None, "wait"))
    t0 = time.monotonic()
    r = fetch("-x", f"socks5h://{px.url}", "--connect-timeout", "0.5", "http://origin.test/x",
              "-o", str(tmp_path / "o"))
    failed(r, EXIT_TIMEOUT, f"SOCKS5 CONNECT to origin.test:80 through proxy {px.url}",
           "(--connect-timeout)")
    assert time.monotonic() - t0 < 10
    assert px.connects == [(5, 1, 3, "origin.test", 80)]


def test_tls_garbage_after_a_good_socks_reply_is_a_tls_error(socks, tmp_path):
    def script(c, srv, greeting):
        c.sendall(b"\x05\x00")
        srv.read_connect(c)
        c.sendall(OK_REPLY)
        c.recv(4096)  # the ClientHello
        c.sendall(b"HTTP/1.1 200 OK\r\n\r\nplain")
    px = socks(script)
    r = fetch("-x", f"socks5h://{px.url}", "https://origin.test/x", "-o", str(tmp_path / "o"),
              timeout=30)
    failed(r, EXIT_TLS)
