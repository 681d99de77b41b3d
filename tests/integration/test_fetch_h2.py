"""sockit fetch over HTTP/2: against a real nginx offering h2 ("listen ...
ssl http2", its access log saying $server_protocol and $connection), and
against a hostile HTTP/2 server (python3-h2, and raw frames): each bad
peer a one-line error with its exit status, nothing saved, no crash, no
leak (the sanitizer build runs these too)."""
import gzip
import hashlib
import os
import signal
import subprocess
import threading

import pytest

from conftest import SOCKIT
from fetch_cli import assert_clean, assert_sums, fetch, put_files
from fswait import wait_in_folder
from h2_hostile import H2Server, data_frame, goaway, send_body, window_update
from nginx_util import Nginx, make_certs

BIG = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("h2certs")))


@pytest.fixture(scope="module")
def ng(tmp_path_factory, certs):
    d = str(tmp_path_factory.mktemp("nginx_h2"))
    srv = Nginx(d, certs, access_log=True, http2=True)
    srv.small = os.urandom(1000)
    srv.put("small.bin", srv.small)
    srv.put("a.txt", b"file a\n")
    srv.put("b.txt", b"file b\n")
    srv.text = b"".join(b"line %06d of a text that gzip likes\n" % i for i in range(20000))
    srv.put("gz/text.txt", srv.text)
    srv.big = srv.put_big("big.bin", BIG)
    yield srv
    srv.stop()


def protocols(ng, uri, n=0):
    """The protocols of nginx's access-log lines of uri, once there are n
    (nginx logs a request as it ends, which may be after sockit exited)."""
    wait_in_folder(ng.dir, lambda: len([x for x in ng.log() if x[2] == uri]) >= n, 10,
                   f"nginx's {n} log lines of {uri}")
    return [line[3] for line in ng.log() if line[2] == uri]


def test_file_over_h2_byte_exact(ng, tmp_path):
    out = tmp_path / "small.bin"
    before = len(protocols(ng, "/small.bin"))
    r = fetch(ng.url("/small.bin", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(out), "-v")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ng.small
    assert b"* using HTTP/2" in r.stderr
    assert b"> GET /small.bin HTTP/2\n> Host: localhost:" in r.stderr
    assert b"< HTTP/2 200" in r.stderr
    assert r.stdout.startswith(b"HTTP/2 200\r\n")
    assert protocols(ng, "/small.bin", before + 1)[before:] == ["HTTP/2.0"]


def test_http11_flag_forces_http11(ng, tmp_path):
    out = tmp_path / "a.txt"
    r = fetch(ng.url("/a.txt?v11", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(out), "--http1.1", "-v")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"file a\n"
    assert b"* using HTTP/1.1" in r.stderr
    assert protocols(ng, "/a.txt?v11", 1) == ["HTTP/1.1"]


def test_http2_flag_and_plain_http_stays_http11(ng, tmp_path):
    r = fetch(ng.url("/a.txt?v2", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(tmp_path / "1"), "--http2", "-s")
    assert r.returncode == 0, r.stderr
    assert protocols(ng, "/a.txt?v2", 1) == ["HTTP/2.0"]
    r = fetch(ng.url("/a.txt?plain"), "-o", str(tmp_path / "2"), "--http2", "-s")
    assert r.returncode == 0, r.stderr
    assert protocols(ng, "/a.txt?plain", 1) == ["HTTP/1.1"]


def test_redirects_over_h2(ng, tmp_path):
    out = tmp_path / "out"

    hops = ("/redir/a", "/redir/b", "/redir/b2")

    def hop_lines():
        return [line for line in ng.log() if line[2] in hops]
    before = len(hop_lines())
    # /redir/a -> /redir/b -> b2 -> http://...: the last hop (a downgrade) allowed
    r = fetch(ng.url("/redir/a", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(out), "--allow-downgrade", "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ng.small
    # nginx logs an HTTP/2 request when its stream closes, which may come
    # after sockit has followed the redirect (a 302's body unread) or exited,
    # in any order: wait for the three lines.
    wait_in_folder(ng.dir, lambda: len(hop_lines()) >= before + 3, 10,
                   "nginx's log lines of the three hops")
    log = hop_lines()[before:]
    assert sorted(line[2] for line in log) == sorted(hops), log
    assert [line[3] for line in log] == ["HTTP/2.0"] * 3
    assert len({line[0] for line in log}) == 1, log  # one connection, three streams


def test_several_urls_reuse_one_h2_connection(ng, tmp_path):
    urls = [ng.url(f"/{n}?reuse", tls=True, host="localhost") for n in ("a.txt", "b.txt",
                                                                        "small.bin")]
    r = fetch(*urls, "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path), "-v")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"file a\n"
    assert (tmp_path / "small.bin").read_bytes() == ng.small
    log = logged(ng, "?reuse", 3)
    assert len(log) == 3 and len({line[0] for line in log}) == 1, log
    assert [line[1] for line in log] == ["1", "2", "3"]
    assert r.stderr.count(b"* reusing the connection") == 2
    assert r.stderr.count(b"* using HTTP/2") == 3
    assert r.stderr.count(b" HTTP/2\n> Host: ") == 3


def test_resume_over_h2(ng, tmp_path):
    """-C - continues a part (as an interrupted run leaves it: the part and
    its record of URL, validator and size) with a Range request over h2."""
    url = ng.url("/big.bin", tls=True, host="localhost")
    r = fetch(url, "--cacert", ng.certs["ca"], "-I")
    etag = [line.split(b": ", 1)[1].strip() for line in r.stdout.splitlines()
            if line.lower().startswith(b"etag:")][0].decode()
    with open(ng.big, "rb") as f:
        whole = f.read()
    out = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(whole[:3_000_000])
    (tmp_path / "big.bin.part.meta").write_text(
        f"sockit-resume 2\nurl {url}\nvalidator {etag}\nsize {len(whole)}\n")
    r = fetch(url, "--cacert", ng.certs["ca"], "-o", str(out), "-C", "-", "-v", timeout=60)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"> Range: bytes=3000000-" in r.stderr
    assert b"< HTTP/2 206" in r.stderr
    assert out.read_bytes() == whole
    assert not (tmp_path / "big.bin.part").exists()


def test_sha256_over_h2(ng, tmp_path):
    good = hashlib.sha256(ng.small).hexdigest()
    r = fetch(ng.url("/small.bin", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(tmp_path / "ok"), "--sha256", good, "-s")
    assert r.returncode == 0, r.stderr
    r = fetch(ng.url("/small.bin", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(tmp_path / "bad"), "--sha256", "0" * 64, "-s")
    assert_clean(r)
    assert r.returncode == 11, r.stderr
    assert not (tmp_path / "bad").exists()


def test_compressed_over_h2(ng, tmp_path):
    out = tmp_path / "text.txt"
    r = fetch(ng.url("/gz/text.txt", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(out), "--compressed", "-v")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"< content-encoding: gzip" in r.stderr
    assert b"> Accept-Encoding: gzip, deflate, br" in r.stderr
    assert out.read_bytes() == ng.text


def test_404_with_fail_over_h2(ng, tmp_path):
    out = tmp_path / "missing"
    r = fetch(ng.url("/missing", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-o", str(out), "-f", "-s")
    assert_clean(r)
    assert r.returncode == 6, r.stderr
    assert b"HTTP 404" in r.stderr
    assert not out.exists()


def test_large_file_over_h2_bounded_memory(ng, tmp_path):
    out = tmp_path / "big.bin"
    r = subprocess.run(["/usr/bin/time", "-f", "%M", SOCKIT, "fetch",
                        ng.url("/big.bin?large", tls=True, host="localhost"), "-o", str(out),
                        "--cacert", ng.certs["ca"], "-s"], capture_output=True, timeout=120)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    with open(ng.big, "rb") as a, open(out, "rb") as b:
        assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest()
    peak_kib = int(r.stderr.strip().splitlines()[-1])
    # streaming with bounded windows: well under the 40 MiB body (about 8 MiB
    # measured, 21 MiB under ASan)
    assert peak_kib < 32 * 1024, f"peak RSS {peak_kib} KiB"
    assert protocols(ng, "/big.bin?large", 1) == ["HTTP/2.0"]


def test_parallel_over_h2_multiplexes(ng, tmp_path):
    """--parallel to one https origin: the transfers that start together
    wait for the first one's handshake and then share its HTTP/2 connection
    as concurrent streams; every file is whole."""
    names = [f"p{i}.bin" for i in range(6)]
    bodies = {n: os.urandom(5000 + i) for i, n in enumerate(names)}
    for n, b in bodies.items():
        ng.put(n, b)
    r = fetch(*[ng.url(f"/{n}?par", tls=True, host="localhost") for n in names],
              "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path), "--parallel", "3")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    for n, b in bodies.items():
        assert (tmp_path / n).read_bytes() == b
    log = logged(ng, "?par", 6)
    assert len(log) == 6 and {line[3] for line in log} == {"HTTP/2.0"}
    first = {line[0] for line in log if line[2].split("?")[0] in ("/p0.bin", "/p1.bin",
                                                                  "/p2.bin")}
    assert len(first) == 1, log  # three streams on one connection
    # the later ones join it too (the run's pool), whether the transfer that
    # opened it is still under way or not
    assert len({line[0] for line in log}) == 1, log
    assert r.stderr.count(b"saved") == 6


def logged(ng, suffix, n):
    """nginx's access-log lines of the URIs ending with suffix, once there
    are n (an HTTP/2 request is logged when its stream closes, maybe after
    sockit exited)."""
    wait_in_folder(ng.dir, lambda: len([x for x in ng.log() if x[2].endswith(suffix)]) >= n,
                   10, f"nginx's {n} log lines of *{suffix}")
    return [line for line in ng.log() if line[2].endswith(suffix)]


def test_parallel_20_urls_8_at_once_one_h2_connection(ng, tmp_path):
    """20 URLs, 8 at once, to one https origin: every transfer is a stream
    of the one connection; every file byte-exact (sha256)."""
    sums = put_files(ng, "t", 20, 997)
    r = fetch(*[ng.url(f"/{n}?p20", tls=True, host="localhost") for n in sums],
              "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path), "--parallel", "8")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert_sums(tmp_path, sums)
    log = logged(ng, "?p20", 20)
    assert len(log) == 20 and {line[3] for line in log} == {"HTTP/2.0"}
    assert len({line[0] for line in log}) == 1, log


def test_parallel_redirect_stays_on_the_h2_connection(ng, tmp_path):
    """A redirect in a parallel run to the same origin: its next hop is a
    stream on the run's one connection too."""
    names = [f"r{i}.bin" for i in range(4)]
    for n in names:
        ng.put(n, os.urandom(20000))
    urls = [ng.url(f"/{n}", tls=True, host="localhost") for n in names]
    urls.insert(2, ng.url("/redir/to-https", tls=True, host="localhost"))
    r = fetch(*urls, "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path),
              "--parallel", "3")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "to-https").read_bytes() == ng.small
    for n in names:
        assert (tmp_path / n).read_bytes() == open(os.path.join(ng.www, n), "rb").read()
    wanted = {"/" + n for n in names} | {"/redir/to-https", "/small.bin"}
    wait_in_folder(ng.dir, lambda: wanted <= {x[2] for x in ng.log()}, 10,
                   "nginx's log lines of the run")
    log = [x for x in ng.log() if x[2] in wanted][-6:]
    assert {x[2] for x in log} == wanted, log
    assert {x[3] for x in log} == {"HTTP/2.0"} and len({x[0] for x in log}) == 1, log


def test_parallel_no_reuse_gives_each_transfer_its_connection(ng, tmp_path):
    """--no-reuse in a parallel run keeps its meaning over HTTP/2: each
    transfer its own connection, none shared with another."""
    sums = put_files(ng, "nr", 4, 100)
    r = fetch(*[ng.url(f"/{n}?nr", tls=True, host="localhost") for n in sums],
              "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path), "--parallel", "2",
              "--no-reuse")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert_sums(tmp_path, sums)
    log = logged(ng, "?nr", 4)
    assert {line[3] for line in log} == {"HTTP/2.0"} and len({line[0] for line in log}) == 4


def test_parallel_http11_flag_does_not_multiplex(ng, tmp_path):
    """--http1.1 in a parallel run: one connection per transfer under way,
    nothing waits for another's handshake."""
    names = [f"q{i}.bin" for i in range(3)]
    for n in names:
        ng.put(n, b"q" * 100)
    r = fetch(*[ng.url(f"/{n}?par11", tls=True, host="localhost") for n in names],
              "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path), "--parallel", "3",
              "--http1.1")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    log = logged(ng, "?par11", 3)
    assert {line[3] for line in log} == {"HTTP/1.1"} and len({line[0] for line in log}) == 3


def tunnelled(ng, tmp_path, *args):
    """sockit fetch -s ARGS through tinyproxy's CONNECT (a clean
    environment: no proxy variables), the run checked for a signal or a
    sanitizer report."""
    from test_fetch_proxy import Tinyproxy, clean_env
    tp = Tinyproxy(str(tmp_path / "tp"))
    try:
        r = subprocess.run([SOCKIT, "fetch", "-s", "-x", tp.url, "--cacert", ng.certs["ca"],
                            *args], capture_output=True, env=clean_env(), timeout=60)
    finally:
        tp.stop()
    assert_clean(r)
    return r


def test_h2_through_a_connect_tunnel(ng, tmp_path):
    """https through tinyproxy's CONNECT: ALPN with the origin inside the
    tunnel, h2 there."""
    out = tmp_path / "o"
    r = tunnelled(ng, tmp_path, ng.url("/small.bin?tunnel", tls=True, host="localhost"),
                  "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ng.small
    assert protocols(ng, "/small.bin?tunnel", 1) == ["HTTP/2.0"]


def test_parallel_h2_through_a_connect_tunnel_shares_it(ng, tmp_path):
    """A parallel run through tinyproxy's CONNECT: the tunnel to the origin
    is one pooled HTTP/2 connection that every transfer to it shares."""
    sums = put_files(ng, "tun", 4, 1000)
    out = tmp_path / "out"
    out.mkdir()
    r = tunnelled(ng, tmp_path, "--parallel", "2", "--output-dir", str(out),
                  *[ng.url(f"/{n}?tun", tls=True, host="localhost") for n in sums])
    assert r.returncode == 0, r.stderr
    assert_sums(out, sums)
    log = logged(ng, "?tun", 4)
    assert {line[3] for line in log} == {"HTTP/2.0"} and len({line[0] for line in log}) == 1


def test_multiplexed_large_files_bounded_memory(ng, tmp_path):
    """Three 40 MiB bodies as concurrent streams of one connection: each
    whole, peak memory bounded by the windows, not by the bodies."""
    for i in range(3):
        link = os.path.join(ng.www, f"big{i}.bin")
        if not os.path.exists(link):
            os.symlink(ng.big, link)
    r = subprocess.run(["/usr/bin/time", "-f", "%M", SOCKIT, "fetch", "-s", "--parallel", "3",
                        "--cacert", ng.certs["ca"], "--output-dir", str(tmp_path)] +
                       [ng.url(f"/big{i}.bin?mux", tls=True, host="localhost") for i in range(3)],
                       capture_output=True, timeout=120)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    with open(ng.big, "rb") as f:
        want = hashlib.sha256(f.read()).digest()
    for i in range(3):
        with open(tmp_path / f"big{i}.bin", "rb") as f:
            assert hashlib.sha256(f.read()).digest() == want
    log = logged(ng, "?mux", 3)
    assert len(log) == 3 and len({line[0] for line in log}) == 1, log
    peak_kib = int(r.stderr.strip().splitlines()[-1])
    assert peak_kib < 40 * 1024, f"peak RSS {peak_kib} KiB"


# ---- a hostile HTTP/2 server ----

def ok_head(n):
    return [(":status", "200"), ("content-length", str(n))]


def run_hostile(certs, tmp_path, code, words, script=None, raw=None, extra=(), srv_out=None):
    srv = H2Server(certs, script=script, raw=raw)
    out = tmp_path / "f.out"
    out.write_bytes(b"untouched")
    try:
        r = fetch(srv.url("/f"), "--cacert", certs["ca"], "-o", str(out), "-s", *extra,
                  timeout=30)
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit: "), lines
    assert words in lines[0], lines[0]
    assert out.read_bytes() == b"untouched"
    assert os.listdir(tmp_path) == ["f.out"], os.listdir(tmp_path)
    if srv_out is not None:
        srv_out.append(srv)
    return r


def test_hostile_good_server_works(certs, tmp_path):
    """The scripted server itself: a correct answer is saved."""
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(5))
        send_body(conn, sid, b"hello", send)
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/f"), "--cacert", certs["ca"], "-o", str(tmp_path / "o"), "-s")
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"hello"
    h = srv.requests[0]
    assert h[":method"] == "GET" and h[":path"] == "/f" and h[":scheme"] == "https"
    assert h[":authority"] == f"localhost:{srv.port}"
    assert "host" not in h and "connection" not in h and h["accept"] == "*/*"
    # -H Host: is the :authority; connection-specific fields (--no-reuse's Connection:
    # close, a Keep-Alive) are not sent; names lower case
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/f"), "--cacert", certs["ca"], "-o", str(tmp_path / "o2"), "-s",
                  "-H", "Host: other.example:8443", "--no-reuse",
                  "-H", "Keep-Alive: 5", "-H", "X-Custom: Yes")
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    h = srv.requests[0]
    assert h[":authority"] == "other.example:8443" and h["x-custom"] == "Yes"
    assert not {"host", "connection", "keep-alive"} & set(h), h


def test_rst_stream_mid_body(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 5000, send, end=False)
        conn.reset_stream(sid, error_code=2)
        send()
    run_hostile(certs, tmp_path, 8, "RST_STREAM INTERNAL_ERROR) inside the body", script)


def multiplexed(certs, tmp_path, script, paths=("/a", "/b", "/c")):
    """The paths fetched with --parallel 3: they share the server's one
    connection (the two others wait for the first's handshake)."""
    srv = H2Server(certs, script=script)
    try:
        r = fetch(*[srv.url(p) for p in paths], "--cacert", certs["ca"], "--parallel", "3",
                  "--output-dir", str(tmp_path), timeout=30)
    finally:
        srv.stop()
    assert_clean(r)
    return r, srv


@pytest.mark.parametrize("victim", ["a", "b"])  # the connection's owner, a guest
def test_multiplexed_reset_of_one_stream_spares_the_others(certs, tmp_path, victim):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(3000))
        if h[":path"] == "/" + victim:
            send_body(conn, sid, b"b" * 1000, send, end=False)
            conn.reset_stream(sid, error_code=2)
            send()
            return None
        send_body(conn, sid, h[":path"][1:].encode() * 3000, send)
    r, srv = multiplexed(certs, tmp_path, script)
    assert r.returncode == 8, r.stderr
    assert srv.connections == 1
    for name in "abc":
        if name == victim:
            assert not (tmp_path / name).exists()
        else:
            assert (tmp_path / name).read_bytes() == name.encode() * 3000
    assert f"/{victim}: server reset the HTTP/2 stream (RST_STREAM INTERNAL_ERROR)".encode() \
        in r.stderr


def test_multiplexed_stalled_stream_times_out_alone(certs, tmp_path):
    """One stream stalls: its transfer times out (and resets its stream),
    the others on the connection are saved."""
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(3000))
        if h[":path"] == "/b":
            send_body(conn, sid, b"b" * 1000, send, end=False)
            return None
        send_body(conn, sid, h[":path"][1:].encode() * 3000, send)
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/a"), srv.url("/b"), srv.url("/c"), "--cacert", certs["ca"],
                  "--parallel", "3", "--idle-timeout", "1", "--output-dir", str(tmp_path))
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == 9, r.stderr
    assert srv.connections == 1
    assert (tmp_path / "a").read_bytes() == b"a" * 3000
    assert (tmp_path / "c").read_bytes() == b"c" * 3000
    assert not (tmp_path / "b").exists()
    assert b"/b: " in r.stderr and b"reading the body" in r.stderr, r.stderr


def test_multiplexed_connection_cut_fails_every_stream(certs, tmp_path):
    seen = []

    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 1000, send, end=False)
        seen.append(sid)
        if len(seen) == 3:
            return "close"
    r, srv = multiplexed(certs, tmp_path, script)
    assert r.returncode == 8, r.stderr
    assert r.stderr.count(b"connection closed inside the body") == 3, r.stderr
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_multiplexed_goaway_refusal_retries_on_a_new_connection(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        if n == 1 and sid == 1:
            conn.send_headers(sid, ok_head(1))
            send_body(conn, sid, b"1", send)
            return None
        if n == 1:  # the streams after the first: not processed
            send(goaway(1, 0))
            return "close"
        conn.send_headers(sid, ok_head(1))
        send_body(conn, sid, b"2", send)
    r, srv = multiplexed(certs, tmp_path, script)
    assert r.returncode == 0, r.stderr
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == [b"1", b"2", b"2"]
    assert srv.connections in (2, 3), srv.connections  # the two refused: sent again


def test_rst_stream_before_head(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.reset_stream(sid, error_code=7)
        send()
    run_hostile(certs, tmp_path, 7, "RST_STREAM REFUSED_STREAM) before the response head",
                script)


def test_goaway_unprocessed_retried_on_a_new_connection(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        if n == 1:
            conn.close_connection(error_code=0, last_stream_id=0)
            send()
            return "close"
        conn.send_headers(sid, ok_head(5))
        send_body(conn, sid, b"again", send)
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/f"), "--cacert", certs["ca"], "-o", str(tmp_path / "o"), "-s")
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"again"
    assert srv.connections == 2


def test_goaway_unprocessed_twice_fails(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.close_connection(error_code=0, last_stream_id=0)
        send()
        return "close"
    got = []
    run_hostile(certs, tmp_path, 7, "GOAWAY", script, srv_out=got)
    assert got[0].connections == 2  # one retry, not more


def test_goaway_with_error_mid_body(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 5000, send, end=False)
        conn.close_connection(error_code=1, last_stream_id=sid)
        send()
        return "close"
    run_hostile(certs, tmp_path, 8, "GOAWAY (PROTOCOL_ERROR) inside the body", script)


def test_graceful_goaway_mid_body_finishes_the_stream(certs, tmp_path):
    """A GOAWAY without error that covers our stream (a server shutting down
    gracefully): the body is finished, saved, and the connection not kept."""
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(10000))
        send_body(conn, sid, b"x" * 5000, send, end=False)
        send(goaway(sid, 0))  # raw: h2 itself would send nothing after its GOAWAY
        send_body(conn, sid, b"y" * 5000, send)
        return "close"
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/f"), srv.url("/g"), "--cacert", certs["ca"], "-s",
                  "--output-dir", str(tmp_path))
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f").read_bytes() == b"x" * 5000 + b"y" * 5000
    assert srv.connections == 2  # the second URL on a new connection


def test_connection_closed_mid_body(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 5000, send, end=False)
        return "close"
    run_hostile(certs, tmp_path, 8, "connection closed inside the body", script)


def test_no_content_length_cut_is_truncation(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, [(":status", "200")])
        send_body(conn, sid, b"x" * 5000, send, end=False)
        return "close"
    run_hostile(certs, tmp_path, 8, "HTTP/2 stream not ended", script)


def test_oversized_header_list(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(5) + [(f"x-h{i}", "v" * 1000) for i in range(80)])
        send_body(conn, sid, b"hello", send)
    run_hostile(certs, tmp_path, 7, "header list too large", script)


def test_too_many_header_fields(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(5) + [(f"x-h{i}", "v") for i in range(120)])
        send_body(conn, sid, b"hello", send)
    run_hostile(certs, tmp_path, 7, "header list too large", script)


def test_content_length_lie_short(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(1000))
        send_body(conn, sid, b"x" * 500, send)
    run_hostile(certs, tmp_path, 8, "content-length", script)


def test_content_length_lie_long(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(10))
        send()
        send(data_frame(sid, b"y" * 20, end=True))
    run_hostile(certs, tmp_path, 8, "content-length", script)


def test_bad_preface(certs, tmp_path):
    run_hostile(certs, tmp_path, 7, "HTTP/2", raw=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_malformed_frame(certs, tmp_path):
    # a SETTINGS frame whose length is not a multiple of 6
    run_hostile(certs, tmp_path, 7, "HTTP/2", raw=b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5)


def test_data_on_stream_zero(certs, tmp_path):
    run_hostile(certs, tmp_path, 7, "HTTP/2",
                raw=b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # SETTINGS
                b"\x00\x00\x02\x00\x00\x00\x00\x00\x00zz")  # DATA on stream 0


def test_window_overflow(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        send(window_update(0, 0x7FFFFFFF))  # the client's send window past 2^31-1
        srv.sleep(5)
        return "close"
    run_hostile(certs, tmp_path, 7, "HTTP/2", script)


def test_uppercase_header_name_refused(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(5) + [("X-Upper", "v")])
        send_body(conn, sid, b"hello", send)
    run_hostile(certs, tmp_path, 7, "HTTP/2", script)


def test_stall_before_head_times_out(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        srv.sleep(20)
        return "close"
    run_hostile(certs, tmp_path, 9, "reading the response", script,
                extra=("--idle-timeout", "1"))


def test_stall_mid_body_times_out(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 5000, send, end=False)
        srv.sleep(20)
        return "close"
    run_hostile(certs, tmp_path, 9, "reading the body", script, extra=("--idle-timeout", "1"))


def test_interrupt_mid_body_saves_nothing(certs, tmp_path):
    got = threading.Event()

    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 5000, send, end=False)
        got.set()
        srv.sleep(20)
        return "close"
    srv = H2Server(certs, script=script)
    out = tmp_path / "f.out"
    try:
        p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "--cacert", certs["ca"], "-o",
                              str(out), "-s"], stderr=subprocess.PIPE)
        assert got.wait(20)
        # the head and the first DATA are out: the transfer is in its body
        wait_in_folder(str(tmp_path), lambda: os.listdir(tmp_path), 10, "the temporary file")
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=20)[1]
    finally:
        srv.stop()
    assert p.returncode == 1, err
    assert b"Sanitizer" not in err and b"interrupted" in err, err
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_too_many_interim_responses(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        for _ in range(20):
            conn.send_headers(sid, [(":status", "103"), ("link", "</x>")])
            send()
        conn.send_headers(sid, ok_head(5))
        send_body(conn, sid, b"hello", send)
    run_hostile(certs, tmp_path, 7, "interim", script)


def test_interim_then_final_saved(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, [(":status", "103"), ("link", "</x>")])
        conn.send_headers(sid, ok_head(5))
        send_body(conn, sid, b"hello", send)
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/f"), "--cacert", certs["ca"], "-o", str(tmp_path / "o"), "-s")
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"hello"


def test_gzip_body_over_hostile_h2(certs, tmp_path):
    """--compressed decodes a gzip DATA stream; a corrupt one is refused."""
    body = gzip.compress(b"z" * 100000)

    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(len(body)) + [("content-encoding", "gzip")])
        send_body(conn, sid, body[:-8] + b"\x00" * 8, send)
    run_hostile(certs, tmp_path, 7, "gzip", script, extra=("--compressed",))


def test_write_out_ends_of_streams_sharing_a_connection(ng, tmp_path):
    # The joined streams report the connection they ride on: its two ends
    # are looked up once, by the transfer that opened it.
    names = ["a.txt", "b.txt", "small.bin"]
    r = fetch("-s", "--cacert", ng.certs["ca"], "-j", "3", "--output-dir", str(tmp_path), "-w",
              "%{num_connects} %{local_ip}:%{local_port} %{remote_ip}:%{remote_port}\\n",
              *[ng.url(f"/{n}", tls=True, host="localhost") for n in names])
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert sorted(line.split()[0] for line in lines) == ["0", "0", "1"], lines
    ends = {tuple(line.split()[1:]) for line in lines}
    assert len(ends) == 1, lines
    (local, remote), = ends
    assert remote == f"127.0.0.1:{ng.https}" and local.startswith("127.0.0.1:"), lines
    assert local != "127.0.0.1:0"
