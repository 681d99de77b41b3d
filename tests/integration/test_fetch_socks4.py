"""sockit fetch through SOCKS4 and SOCKS4a proxies: a real dante
(Debian's danted, started on a port the test picks with a configuration
the test writes, stopped by PID; its log names what it connected to) for
socks4:// to the nginx of nginx_util.py, http and https; dante has no
SOCKS4a (it refuses 0.0.0.1: CD 91, a clear exit 12). Debian's microsocks
speaks SOCKS5 only, so SOCKS4a and the failures are scripted (Socks4Server,
SocksServer of test_fetch_socks.py reading a SOCKS4 request instead of a
SOCKS5 greeting): for the success paths it really relays to the origin
(the origin verified through the tunnel); hostile scripts send each CD
code, another version, a cut reply, bytes past the reply, nothing in
time. What was asked is recorded: socks4:// sends the address sockit
resolved (IPv4 only), socks4a:// DSTIP 0.0.0.1 and the name; the user id
is the proxy URL's user name, the password is never sent (as curl)."""
import ipaddress
import os
import socket
import threading
import time

import pytest

from nginx_util import free_port
from test_fetch_parallel import slow_env, slow_resolver  # noqa: F401 (a fixture)
from test_fetch_proxy import (EXIT_PROXY, EXIT_RESOLVE, EXIT_TIMEOUT, clean_env, failed, fetch,
                              ok)
from test_fetch_socks import (EXIT_USAGE, LoggedProxy, SocksServer, ng, recv_n,  # noqa: F401
                              socks)  # ng, socks: fixtures

DANTED = "/usr/sbin/danted"  # Debian's dante-server (scripts/deps.sh test)

GRANTED = b"\x00\x5a\x00\x00\x00\x00\x00\x00"

DANTE_CONF = """logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
{user}client pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
}}
socks pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
    protocol: tcp
    log: connect error
}}
"""


class Dante(LoggedProxy):
    """danted on 127.0.0.1 at a free port, one process set (-N 1), in the
    foreground, its configuration written in d; stopped by PID (SIGTERM to
    the mother, which ends its children)."""

    def __init__(self, d):
        port = free_port()
        conf = os.path.join(d, "danted.conf")
        with open(conf, "w") as f:
            f.write(DANTE_CONF.format(port=port, user="user.unprivileged: nobody\n"
                                      if os.geteuid() == 0 else ""))
        super().__init__([DANTED, "-f", conf, "-N", "1", "-p", os.path.join(d, "danted.pid")],
                         port)


def recv_z(c, limit=1024):
    """Bytes up to a NUL (not included)."""
    data = b""
    while (b := recv_n(c, 1)) != b"\0":
        data += b
        if len(data) > limit:
            raise EOFError
    return data


class Socks4Server(SocksServer):
    """Each connection: the SOCKS4 request read and recorded in connects as
    (vn, cd, port, ip, userid, host: None for SOCKS4), then script(conn,
    srv, request) answers."""

    def _serve(self, c):
        c.settimeout(10)
        try:
            vn, cd = recv_n(c, 2)
            port = int.from_bytes(recv_n(c, 2), "big")
            ip = str(ipaddress.IPv4Address(recv_n(c, 4)))
            user = recv_z(c)
            host = recv_z(c).decode("latin-1") if ip.startswith("0.0.0.") else None
            req = (vn, cd, port, ip, user, host)
            self.connects.append(req)
            self.script(c, self, req)
        except (OSError, EOFError):
            pass
        finally:
            c.close()


def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def relaying(c, srv, req):
    """A script: connects to what was asked, grants, then relays both ways."""
    _, _, port, ip, _, host = req
    up = socket.create_connection((host or ip, port), timeout=10)
    try:
        c.sendall(GRANTED)
        t = threading.Thread(target=pump, args=(up, c), daemon=True)
        t.start()
        pump(c, up)
        t.join(10)
    finally:
        up.close()


def replies(*pieces):
    """A script: sends each piece ("wait": until the server stops), then closes."""
    def script(c, srv, req):
        for p in pieces:
            if p == "wait":
                srv.stopping.wait(30)
            else:
                c.sendall(p)
        srv.stopping.wait(0.5)
    return script


@pytest.fixture
def s4(socks):
    """Makes a Socks4Server (relaying by default), stopped after the test."""
    return lambda script=relaying: socks(script, Socks4Server)


@pytest.fixture(scope="module")
def dante(tmp_path_factory):
    p = Dante(str(tmp_path_factory.mktemp("dante")))
    yield p
    p.stop()


# ---- dante, to nginx ----

@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks4_through_dante(ng, dante, tmp_path, tls):
    out = tmp_path / "o"
    port = ng.https if tls else ng.http
    r = fetch("-x", f"socks4://tester@127.0.0.1:{dante.port}",
              ng.url("/small.bin", tls=tls, host="localhost"), "-o", str(out), "--cacert",
              ng.certs["ca"])
    ok(r, out, ng.body)
    # "tcp/connect [: CLIENT PROXY -> EXTERNAL TARGET": the address sockit resolved
    dante.wait_log(f" 127.0.0.1.{port}")
    assert any(line.endswith(f" 127.0.0.1.{port}") for line in dante.lines
               if "tcp/connect [" in line), dante.lines


def test_curls_socks4_option_through_dante(ng, dante, tmp_path):
    out = tmp_path / "o"
    r = fetch("--socks4", f"127.0.0.1:{dante.port}", ng.url("/other.bin", host="localhost"),
              "-o", str(out))
    ok(r, out, b"other")


def test_dante_refuses_socks4a_with_cd_91(ng, dante, tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", f"socks4a://127.0.0.1:{dante.port}", ng.url("/small.bin", host="localhost"),
              "-o", str(out))
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{dante.port}: SOCKS4 CONNECT to localhost:{ng.http}"
           " failed: request rejected or failed (91)")
    assert not out.exists()


# ---- through a relaying proxy, to nginx ----

@pytest.mark.parametrize("scheme,ip,host", [("socks4", "127.0.0.1", None),
                                            ("socks4a", "0.0.0.1", "localhost")])
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks4_sends_the_address_and_socks4a_the_name(ng, s4, tmp_path, tls, scheme, ip, host):
    px = s4()
    out = tmp_path / "o"
    port = ng.https if tls else ng.http
    r = fetch("-x", f"{scheme}://{px.url}", ng.url("/small.bin", tls=tls, host="localhost"),
              "-o", str(out), "--cacert", ng.certs["ca"])
    ok(r, out, ng.body)
    assert px.connects == [(4, 1, port, ip, b"", host)]


def test_socks4a_sends_an_ipv4_literal_as_an_address(ng, s4, tmp_path):
    px = s4()
    out = tmp_path / "o"
    r = fetch("-x", f"socks4a://{px.url}", ng.url("/small.bin"), "-o", str(out))
    ok(r, out, ng.body)
    assert px.connects == [(4, 1, ng.http, "127.0.0.1", b"", None)]


@pytest.mark.parametrize("opt,host", [("--socks4", None), ("--socks4a", "localhost")])
def test_curls_socks4_options(ng, s4, tmp_path, opt, host):
    px = s4()
    out = tmp_path / "o"
    r = fetch("-x", "http://127.0.0.1:1", opt, px.url, ng.url("/small.bin", host="localhost"),
              "-o", str(out))
    ok(r, out, ng.body)
    assert px.connects == [(4, 1, ng.http, "0.0.0.1" if host else "127.0.0.1", b"", host)]


def test_socks4_option_takes_host_and_port_only(tmp_path):
    r = fetch("--socks4a", "socks4a://127.0.0.1:1080", "http://127.0.0.1:1/x", "-o",
              str(tmp_path / "o"))
    failed(r, EXIT_USAGE, "--socks4a takes HOST[:PORT]")


def test_socks4_default_port_is_1080(tmp_path):
    r = fetch("--socks4", "127.0.0.2", "http://127.0.0.1:1/x", "-o", str(tmp_path / "o"),
              "--connect-timeout", "2")
    assert "127.0.0.2:1080" in r.stderr.decode(), r.stderr


@pytest.mark.parametrize("var,tls", [("all_proxy", False), ("http_proxy", False),
                                     ("https_proxy", True)])
def test_socks4a_from_the_environment(ng, s4, tmp_path, var, tls):
    px = s4()
    out = tmp_path / "o"
    r = fetch(ng.url("/small.bin", tls=tls, host="localhost"), "-o", str(out), "--cacert",
              ng.certs["ca"], env=clean_env(**{var: f"socks4a://{px.url}"}))
    ok(r, out, ng.body)
    assert [c[5] for c in px.connects] == ["localhost"]


def test_the_user_id_is_the_user_name_and_the_password_is_not_sent(ng, s4, tmp_path):
    px = s4()
    out = tmp_path / "o"
    r = fetch("-v", "-x", f"socks4a://al%20ice:s3cr3t@{px.url}",
              ng.url("/small.bin", host="localhost"), "-o", str(out))
    ok(r, out, ng.body)
    assert px.connects == [(4, 1, ng.http, "0.0.0.1", b"al ice", "localhost")]
    assert b"s3cr3t" not in r.stderr + r.stdout


def test_a_kept_connection_through_socks4_serves_the_next_url(ng, s4, tmp_path):
    px = s4()
    d = tmp_path / "d"
    d.mkdir()
    r = fetch("-x", f"socks4://{px.url}", ng.url("/small.bin"), ng.url("/other.bin"),
              "--output-dir", str(d), "--parallel", "1")
    assert r.returncode == 0, r.stderr
    assert (d / "small.bin").read_bytes() == ng.body and (d / "other.bin").read_bytes() == b"other"
    assert len(px.connects) == 1


# ---- refused before the proxy is asked ----

@pytest.mark.parametrize("scheme", ["socks4", "socks4a"])
def test_an_ipv6_literal_is_refused_before_connecting(s4, tmp_path, scheme):
    px = s4()
    r = fetch("-x", f"{scheme}://{px.url}", "http://[::1]:81/", "-o", str(tmp_path / "o"))
    failed(r, EXIT_USAGE, "a SOCKS4 proxy cannot reach an IPv6 address (::1)")
    assert px.accepted == 0


def test_a_name_with_ipv6_addresses_only_is_refused_before_connecting(s4, tmp_path,
                                                                      slow_resolver):  # noqa: F811
    px = s4()
    env = clean_env(**{k: v for k, v in slow_env(slow_resolver, tmp_path / "fifo").items()
                       if k in ("LD_PRELOAD", "ASAN_OPTIONS")})
    r = fetch("-x", f"socks4://{px.url}", "http://origin.v6only.test/x", "-o",
              str(tmp_path / "o"), env=env)
    failed(r, EXIT_RESOLVE,
           "host origin.v6only.test has no IPv4 address (a SOCKS4 proxy takes IPv4 only)")
    assert px.accepted == 0


def test_socks4_origin_that_does_not_resolve_is_the_origins_failure(s4, tmp_path):
    px = s4()
    r = fetch("-x", f"socks4://{px.url}", "http://nosuch.invalid/x", "-o", str(tmp_path / "o"))
    failed(r, EXIT_RESOLVE, "could not resolve host nosuch.invalid")
    assert px.accepted == 0


def test_socks4a_host_name_over_255_bytes_is_refused_before_connecting(s4, tmp_path):
    px = s4()
    host = ".".join(["a" * 60] * 5)  # 304 bytes: the URL's limit (255) refuses it first
    r = fetch("-x", f"socks4a://{px.url}", f"http://{host}/", "-o", str(tmp_path / "o"))
    failed(r, EXIT_USAGE)
    assert px.accepted == 0


def test_a_user_id_over_255_bytes_is_refused_before_connecting(s4, tmp_path):
    px = s4()
    r = fetch("-x", f"socks4://{'u' * 256}@{px.url}", "http://127.0.0.1/", "-o",
              str(tmp_path / "o"))
    failed(r, EXIT_USAGE, "proxy user name too long (over 255 bytes)")
    assert px.accepted == 0


def test_unsupported_scheme_names_the_socks4_ones(tmp_path):
    r = fetch("-x", "socks6://127.0.0.1:1", "http://127.0.0.1:1/", "-o", str(tmp_path / "o"))
    failed(r, EXIT_USAGE, "socks4://, socks4a://")


# ---- hostile SOCKS4 servers ----

HOSTILE = {
    "cd-91": ([b"\x00\x5b" + b"\0" * 6],
              "SOCKS4 CONNECT to origin.test:80 failed: request rejected or failed (91)"),
    "cd-92": ([b"\x00\x5c" + b"\0" * 6],
              "SOCKS4 CONNECT to origin.test:80 failed: identd not reachable (92)"),
    "cd-93": ([b"\x00\x5d" + b"\0" * 6],
              "SOCKS4 CONNECT to origin.test:80 failed: user id mismatch (93)"),
    "cd-0": ([b"\x00\x00" + b"\0" * 6],
             "SOCKS4 CONNECT to origin.test:80 failed: unknown reply code (0)"),
    "cd-255": ([b"\x00\xff" + b"\0" * 6],
               "SOCKS4 CONNECT to origin.test:80 failed: unknown reply code (255)"),
    "version-4": ([b"\x04\x5a" + b"\0" * 6], "not a SOCKS4 reply (version 4)"),
    "socks5-answer": ([b"\x05\x00"], "not a SOCKS4 reply (version 5)"),
    "http-answer": ([b"HTTP/1.1 400 Bad Request\r\n\r\n"], "not a SOCKS4 reply (version 72)"),
    "cut-reply": ([GRANTED[:5]], "closed the connection inside its SOCKS4 reply"),
    "cut-after-1": ([b"\x00"], "closed the connection inside its SOCKS4 reply"),
    "no-reply": ([], "closed the connection before its SOCKS4 reply"),
    "bytes-after-the-reply": ([GRANTED + b"HTTP/1.1 200 OK\r\n\r\n"],
                              "sent 19 bytes beyond its SOCKS4 reply"),
    "split-then-extra": ([GRANTED[:3], GRANTED[3:] + b"x"],
                         "sent 1 bytes beyond its SOCKS4 reply"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_hostile_socks4_reply(s4, tmp_path, case, tls):
    pieces, text = HOSTILE[case]
    px = s4(replies(*pieces))
    out = tmp_path / "o"
    url = f"http{'s' if tls else ''}://origin.test{':80' if tls else ''}/x"
    r = fetch("-x", f"socks4a://u:secret@{px.url}", url, "-o", str(out), timeout=30)
    err = failed(r, EXIT_PROXY, f"proxy {px.url}", text)
    assert "secret" not in err
    assert os.listdir(tmp_path) == []
    assert px.connects == [(4, 1, 80, "0.0.0.1", b"u", "origin.test")]


def test_slow_socks4_reply_hits_the_connect_timeout(s4, tmp_path):
    px = s4(replies("wait"))
    t0 = time.monotonic()
    r = fetch("-x", f"socks4a://{px.url}", "--connect-timeout", "0.5", "http://origin.test/x",
              "-o", str(tmp_path / "o"))
    failed(r, EXIT_TIMEOUT, f"SOCKS4 CONNECT to origin.test:80 through proxy {px.url}",
           "(--connect-timeout)")
    assert time.monotonic() - t0 < 10
    assert px.connects == [(4, 1, 80, "0.0.0.1", b"", "origin.test")]
