"""sockit fetch --http2-prior-knowledge: HTTP/2 over plain http:// from the
first byte (h2c, RFC 9113 section 3.3, no Upgrade). Against a real nginx
with a plain "listen ... http2" port (its access log saying
$server_protocol and $connection): byte-exact files, -v and -w, several
URLs on one connection, --no-reuse, redirects to https (ALPN there) and
back, through SOCKS5 (microsocks) as direct, through an HTTP proxy
(tinyproxy) HTTP/1.1 as curl's; against hostile plain servers (an HTTP/1.1
reply to the preface, a close at once, bad frames): one line, its exit
status, nothing saved."""
import os

import pytest

from fetch_cli import assert_clean, fetch
from fswait import wait_in_folder
from h2_hostile import H2Server, send_body
from nginx_util import Nginx, make_certs
from test_fetch_proxy import Tinyproxy, clean_env
from test_fetch_socks import Microsocks

PK = "--http2-prior-knowledge"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("h2ccerts")))


@pytest.fixture(scope="module")
def ng(tmp_path_factory, certs):
    d = str(tmp_path_factory.mktemp("nginx_h2c"))
    srv = Nginx(d, certs, access_log=True, http2=True, h2c=True)
    srv.small = os.urandom(1000)
    srv.put("small.bin", srv.small)
    srv.put("a.txt", b"file a\n")
    srv.put("b.txt", b"file b\n")
    srv.mid = os.urandom(300000)  # several DATA frames and window updates
    srv.put("mid.bin", srv.mid)
    yield srv
    srv.stop()


def lines_of(ng, uri, n):
    """nginx's access-log lines of uri (connection, requests on it, URI,
    protocol), once there are n (an HTTP/2 request is logged as its stream
    closes, which may be after sockit exited)."""
    wait_in_folder(ng.dir, lambda: len([x for x in ng.log() if x[2] == uri]) >= n, 10,
                   f"nginx's {n} log lines of {uri}")
    return [line for line in ng.log() if line[2] == uri]


def test_file_over_h2c_byte_exact(ng, tmp_path):
    out = tmp_path / "small.bin"
    r = fetch(ng.url("/small.bin?one", h2c=True), PK, "-o", str(out), "-v")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ng.small
    assert b"* using HTTP/2" in r.stderr
    assert b"> GET /small.bin?one HTTP/2\n" in r.stderr
    assert b"TLS" not in r.stderr  # no handshake, no ALPN
    assert r.stdout.startswith(b"HTTP/2 200\r\n")
    assert [x[3] for x in lines_of(ng, "/small.bin?one", 1)] == ["HTTP/2.0"]


def test_write_out_http_version_is_2(ng, tmp_path):
    out = tmp_path / "mid.bin"
    r = fetch(ng.url("/mid.bin?w", h2c=True), PK, "-s", "-o", str(out), "-w",
              "%{http_version} %{response_code} %{scheme}\n")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ng.mid
    assert r.stdout.endswith(b"2 200 HTTP\n"), r.stdout[-100:]
    assert [x[3] for x in lines_of(ng, "/mid.bin?w", 1)] == ["HTTP/2.0"]


@pytest.mark.parametrize("par", ["1", "3"])
def test_several_urls_share_one_h2c_connection(ng, tmp_path, par):
    names = ("a.txt", "b.txt", "small.bin")
    uris = [f"/{n}?j{par}" for n in names]
    r = fetch(*[ng.url(u, h2c=True) for u in uris], PK, "-s", "-j", par, "--output-dir",
              str(tmp_path))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"file a\n"
    assert (tmp_path / "b.txt").read_bytes() == b"file b\n"
    assert (tmp_path / "small.bin").read_bytes() == ng.small
    log = [lines_of(ng, u, 1)[0] for u in uris]
    assert {x[3] for x in log} == {"HTTP/2.0"}
    assert len({x[0] for x in log}) == 1, log  # one connection, three streams


def test_no_reuse_opens_one_connection_per_url(ng, tmp_path):
    uris = ["/a.txt?nr", "/b.txt?nr"]
    r = fetch(*[ng.url(u, h2c=True) for u in uris], PK, "-s", "--no-reuse", "--output-dir",
              str(tmp_path))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    log = [lines_of(ng, u, 1)[0] for u in uris]
    assert {x[3] for x in log} == {"HTTP/2.0"}
    assert len({x[0] for x in log}) == 2, log


def test_the_last_of_http11_and_prior_knowledge_wins(ng, tmp_path):
    """As curl's (they are "mutexed" there): the last one counts."""
    r = fetch(ng.url("/a.txt?last", h2c=True), PK, "--http1.1", "-s", "-o",
              str(tmp_path / "x"))
    assert_clean(r)
    assert r.returncode == 7, r.stderr  # HTTP/1.1 to an h2c-only port: nginx's is no reply
    r = fetch(ng.url("/a.txt?last2"), "--http1.1", PK, "-s", "-o", str(tmp_path / "y"))
    assert_clean(r)
    assert r.returncode == 7, r.stderr  # prior knowledge last: h2 to an HTTP/1.1 port
    assert b"replied in HTTP/1.x to the HTTP/2 connection preface" in r.stderr, r.stderr


def test_h2c_to_an_http11_server_is_a_one_line_error(ng, tmp_path):
    out = tmp_path / "o"
    r = fetch(ng.url("/small.bin?h1"), PK, "-s", "-o", str(out))
    assert_clean(r)
    assert r.returncode == 7, r.stderr
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "replied in HTTP/1.x to the HTTP/2 connection preface" in err[0]
    assert not out.exists()


def test_redirect_h2c_to_https_negotiates_alpn_and_back(ng, certs, tmp_path):
    out = tmp_path / "o"
    r = fetch(ng.url("/redir/to-https", h2c=True), PK, "-L", "--cacert", certs["ca"], "-v",
              "-o", str(out))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ng.small
    assert b"certificate subject: CN=server" in r.stderr  # the https hop: TLS, h2 by ALPN
    assert r.stderr.count(b"* using HTTP/2") == 2, r.stderr
    log = lines_of(ng, "/redir/to-https", 1)
    assert log[-1][3] == "HTTP/2.0"
    # and back: https (h2 by ALPN) to the h2c port
    out2 = tmp_path / "o2"
    r = fetch(ng.url("/redir/to-h2c", tls=True, host="localhost"), PK, "-L",
              "--allow-downgrade", "--cacert", certs["ca"], "-v", "-o", str(out2))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out2.read_bytes() == ng.small
    assert r.stderr.count(b"* using HTTP/2") == 2, r.stderr
    assert [x[3] for x in lines_of(ng, "/redir/to-h2c", 1)] == ["HTTP/2.0"]


def test_https_with_prior_knowledge_offers_alpn_as_the_default(ng, certs, tmp_path):
    r = fetch(ng.url("/a.txt?pk-tls", tls=True, host="localhost"), PK, "--cacert", certs["ca"],
              "-s", "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert [x[3] for x in lines_of(ng, "/a.txt?pk-tls", 1)] == ["HTTP/2.0"]


def test_h2c_through_socks5_as_direct(ng, tmp_path):
    ms = Microsocks()
    try:
        out = tmp_path / "o"
        r = fetch(ng.url("/small.bin?socks", h2c=True), PK, "--socks5-hostname",
                  f"127.0.0.1:{ms.port}", "-s", "-o", str(out), env=clean_env())
        assert_clean(r)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == ng.small
        assert [x[3] for x in lines_of(ng, "/small.bin?socks", 1)] == ["HTTP/2.0"]
    finally:
        ms.stop()


def test_http_proxy_gets_http11_as_curl(ng, tmp_path):
    """Through a plain HTTP proxy (absolute form) prior knowledge does not
    apply: the request goes in HTTP/1.1 to the proxy, as curl's does."""
    tp = Tinyproxy(str(tmp_path / "tp"))
    try:
        out = tmp_path / "o"
        url = ng.url("/small.bin?px")
        r = fetch(url, PK, "-x", tp.url, "-v", "-o", str(out), env=clean_env())
        assert_clean(r)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == ng.small
        assert b"* using HTTP/1.1" in r.stderr
        tp.wait_log(f"GET {url} HTTP/1.1")
    finally:
        tp.stop()


# ---- hostile plain servers ----

def run_hostile(tmp_path, code, words, script=None, raw=None, close=False):
    srv = H2Server(None, script=script, raw=raw, close=close)
    out = tmp_path / "f.out"
    out.write_bytes(b"untouched")
    try:
        r = fetch(srv.url("/f"), PK, "-s", "-o", str(out), timeout=30)
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit: "), lines
    assert words in lines[0], lines[0]
    assert out.read_bytes() == b"untouched"
    return srv


def test_hostile_plain_good_server_works(tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, [(":status", "200"), ("content-length", "5")])
        send_body(conn, sid, b"hello", send)
    srv = H2Server(None, script=script)
    try:
        r = fetch(srv.url("/f"), PK, "-s", "-o", str(tmp_path / "o"))
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"hello"
    assert srv.requests[0][":scheme"] == "http"


def test_hostile_http11_reply_to_the_preface(tmp_path):
    run_hostile(tmp_path, 7, "replied in HTTP/1.x to the HTTP/2 connection preface",
                raw=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_hostile_http11_reply_in_pieces(tmp_path):
    """"HTTP/1." in pieces (read apart or together: the same verdict) is told
    from frames as it comes: three bytes are no frame header yet."""
    run_hostile(tmp_path, 7, "replied in HTTP/1.x to the HTTP/2 connection preface",
                raw=[b"HTT", b"P/", b"1.1 505 HTTP Version Not Supported\r\n\r\n"])


def test_hostile_close_at_once(tmp_path):
    """The preface read, a FIN at once, nothing sent: as the empty reply of
    HTTP/1.1 and HTTP/2 over TLS, a protocol error (7)."""
    run_hostile(tmp_path, 7, "connection closed before the response head", raw=b"", close=True)


def test_hostile_garbage_frames(tmp_path):
    run_hostile(tmp_path, 7, "HTTP/2", raw=b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5)
