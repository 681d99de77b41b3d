"""sockit fetch keeps an HTTP/1.1 connection and reuses it for the next URL
or redirect to the same origin (issue 11); most tests here run the URLs one
at a time (--parallel 1), since their subject is what one kept connection
does from one URL to the next: counted in a real nginx's access
log ($connection, $connection_requests), through a real tinyproxy, and
against scripted Python servers that close a kept connection (FIN or RST,
while idle or on the next request), answer "Connection: close", or stall
while a kept connection waits (SIGINT). --no-reuse turns it off."""
import os
import resource
import socket
import struct
import subprocess
import threading

import pytest

from conftest import SOCKIT, signal_when
from fswait import wait_in_folder
from hostile_http import HostileServer, Mark
from nginx_util import Nginx, make_certs
from test_fetch_proxy import Tinyproxy

OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx"))
    certs = make_certs(os.path.join(d, "certs"))
    srv = Nginx(d, certs, access_log=True)
    for i in range(20):
        srv.put(f"f{i}", b"file %d\n" % i)
    srv.put("small.bin", b"small\n")
    for i in range(3):
        srv.put(f"gz/t{i}.txt", b"text %d " % i * 500)
    yield srv
    srv.stop()


def fetch(*args, cwd, timeout=60, **kw):
    return subprocess.run([SOCKIT, "fetch", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, cwd=cwd, timeout=timeout, **kw)


def new_log_lines(ng, before, count):
    """The access log's lines after the first `before`, once there are
    `count` of them (nginx writes a line as each request ends)."""
    wait_in_folder(ng.dir, lambda: len(ng.log()) >= before + count, 10,
                   f"{count} access log lines")
    return ng.log()[before:]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_twenty_urls_one_connection(ng, tmp_path, tls):
    before = len(ng.log())
    urls = [ng.url(f"/f{i}", tls=tls) for i in range(20)]
    # one at a time: the subject is one kept connection serving all 20 in turn
    # (several at once: test_fetch_parallel.py's test_each_slot_reuses_its_connection)
    r = fetch("-s", "--parallel", "1", "--cacert", ng.certs["ca"], *urls, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(f"f{i}" for i in range(20))
    assert (tmp_path / "f7").read_bytes() == b"file 7\n"
    log = new_log_lines(ng, before, 20)
    assert len({c for c, _, _ in log}) == 1, log
    assert [n for _, n, _ in log] == [str(i) for i in range(1, 21)], log


def test_no_reuse_opens_one_connection_per_url(ng, tmp_path):
    before = len(ng.log())
    urls = [ng.url(f"/f{i}") for i in range(5)]
    r = fetch("-s", "--no-reuse", *urls, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    log = new_log_lines(ng, before, 5)
    assert len({c for c, _, _ in log}) == 5, log


def test_verbose_says_reusing(ng, tmp_path):
    # one at a time: the second URL waits for the first's connection to be free
    r = fetch("-v", "--parallel", "1", ng.url("/f1", tls=True), ng.url("/f2", tls=True),
              "--cacert", ng.certs["ca"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert err.count("connected to ") == 1, err
    assert err.count("TLS TLSv1") == 1, err
    assert "reusing the connection to 127.0.0.1:%d" % ng.https in err, err


def test_redirect_chain_to_the_same_origin_reuses(ng, tmp_path):
    before = len(ng.log())
    r = fetch("-s", "-o", "out", ng.url("/redir/a"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == b"small\n"
    log = new_log_lines(ng, before, 4)
    assert [u for _, _, u in log] == ["/redir/a", "/redir/b", "/redir/b2", "/small.bin"], log
    assert len({c for c, _, _ in log}) == 1, log


def test_another_origin_in_the_middle_gets_its_own_connection(ng, tmp_path):
    """http 127.0.0.1, https 127.0.0.1, http 127.0.0.1: three routes."""
    before = len(ng.log())
    # one at a time: the subject is what the kept connection does between them
    r = fetch("-s", "--parallel", "1", "--cacert", ng.certs["ca"], ng.url("/f1"),
              ng.url("/f2"), ng.url("/f3", tls=True), ng.url("/f4"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    log = new_log_lines(ng, before, 4)
    conns = [c for c, _, _ in log]
    assert conns[0] == conns[1] and len(set(conns)) == 3, log


def test_head_requests_reuse(ng, tmp_path):
    before = len(ng.log())
    # one at a time: one kept connection for the three, in turn
    r = fetch("-s", "--parallel", "1", "-I", ng.url("/f1"), ng.url("/f2"), ng.url("/f3"),
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    log = new_log_lines(ng, before, 3)
    assert len({c for c, _, _ in log}) == 1, log


def test_chunked_gzip_bodies_reuse(ng, tmp_path):
    """nginx's gzip answers are chunked: the last chunk ends each one."""
    before = len(ng.log())
    # one at a time: each next request goes on the connection the last chunk freed
    r = fetch("-s", "--parallel", "1", "--compressed",
              *[ng.url(f"/gz/t{i}.txt") for i in range(3)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t2.txt").read_bytes() == b"text 2 " * 500
    log = new_log_lines(ng, before, 3)
    assert len({c for c, _, _ in log}) == 1, log


def test_resume_and_sha256_on_a_kept_connection(ng, tmp_path):
    import hashlib
    before = len(ng.log())
    (tmp_path / "f2.part").write_bytes(b"file")  # no validator on record: fetched whole
    # one at a time (both runs): the second URL of each goes on the first's connection
    r = fetch("-s", "--parallel", "1", "-C", ng.url("/f1"), ng.url("/f2"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f2").read_bytes() == b"file 2\n"
    assert not (tmp_path / "f2.part").exists()
    digest = hashlib.sha256(b"file 3\n").hexdigest()
    r = fetch("-s", "--parallel", "1", "--sha256", digest, ng.url("/f3"), ng.url("/f4"),
              cwd=tmp_path)
    assert r.returncode == 11, r.stderr  # f4 does not match: only f3 saved
    assert (tmp_path / "f3").exists() and not (tmp_path / "f4").exists()
    log = new_log_lines(ng, before, 4)
    assert log[0][0] == log[1][0] and log[2][0] == log[3][0], log


# ---- a keep-alive Python server, for the cases nginx does not do ----

class KeepServer(HostileServer):
    """Serves requests one after another on each connection (HTTP/1.1
    keep-alive). mode: "keep"; "fin-idle" / "rst-idle" close each connection
    (FIN / RST) right after its first response; "rst-next" / "fin-next" answer
    the first request and close on the next without a byte of response;
    "close" answers with Connection: close. Records (connection, path)."""

    def __init__(self, mode="keep", routes=None):
        super().__init__()
        self.mode = mode
        self.keep_routes = routes or {}
        self.requests = []
        self.conns = 0
        self.closed = threading.Event()  # a connection saw the client's end

    @staticmethod
    def _reset(conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _serve(self, conn):
        with self.lock:
            self.conns += 1
            n = self.conns
        conn.settimeout(10)
        buf = b""
        served = 0
        try:
            while not self.stopping:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        self.closed.set()
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1].decode()
                if served and self.mode in ("rst-next", "fin-next"):
                    if self.mode == "rst-next":
                        self._reset(conn)
                    return  # fin-next: finally closes
                with self.lock:
                    self.requests.append((n, path))
                fn = self.keep_routes.get(path)
                if fn:
                    for piece in fn():
                        if isinstance(piece, Mark):
                            piece.event.set()
                        else:
                            conn.sendall(piece)
                    continue
                body = path.encode()
                extra = b"Connection: close\r\n" if self.mode == "close" else b""
                conn.sendall(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" %
                             (extra, len(body), body))
                served += 1
                if self.mode == "rst-idle":
                    self._reset(conn)
                    return
                if self.mode in ("fin-idle", "close"):
                    return
        except OSError:
            self.closed.set()  # the client's end (a reset, EPIPE)
        finally:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def keep():
    made = []

    def make(mode="keep", routes=None):
        s = KeepServer(mode, routes)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


def test_the_first_origin_is_closed_before_the_next(keep, tmp_path):
    a = keep()
    saw_close = []

    def b_route():
        saw_close.append(a.closed.wait(10))  # the client let go of a's connection first
        yield OK % (1, b"b")

    b = keep(routes={"/b": b_route})
    # one at a time: the subject is the order of closing and connecting between URLs
    r = fetch("-s", "--parallel", "1", a.url("/a1"), a.url("/a2"), b.url("/b"), a.url("/a3"),
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert saw_close == [True]
    assert a.requests == [(1, "/a1"), (1, "/a2"), (2, "/a3")]
    assert sorted(os.listdir(tmp_path)) == ["a1", "a2", "a3", "b"]


@pytest.mark.parametrize("mode", ["fin-idle", "rst-idle", "fin-next", "rst-next"])
def test_a_kept_connection_the_server_closed_is_replaced(keep, tmp_path, mode):
    s = keep(mode)
    urls = [s.url(f"/u{i}") for i in range(6)]
    # one at a time: each URL finds the connection the one before it kept
    r = fetch("-v", "--parallel", "1", "--retry", "0", *urls, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "retrying" not in err and "failed" not in err.replace("0 failed", ""), err
    if mode.endswith("-next"):  # each request tried on the kept one, then on a new one
        assert err.count("reusing the connection") == 5, err
        assert err.count("connected to ") == 6, err
    assert sorted(os.listdir(tmp_path)) == sorted(f"u{i}" for i in range(6))
    assert [p for _, p in s.requests] == [f"/u{i}" for i in range(6)]
    assert (tmp_path / "u3").read_bytes() == b"/u3"


def test_hostile_server_closing_after_each_response(tmp_path):
    """hostile_http closes after each response without saying so."""
    srv = HostileServer()
    try:
        for i in range(8):
            body = b"%d" % i
            srv.route(f"/h{i}", lambda req, body=body: OK % (len(body), body))
        # one at a time: each URL finds the connection the one before kept, closed
        r = fetch("-s", "--parallel", "1", *[srv.url(f"/h{i}") for i in range(8)],
                  cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(tmp_path)) == sorted(f"h{i}" for i in range(8))
        assert [q.path for q in srv.requests] == [f"/h{i}" for i in range(8)]
    finally:
        srv.stop()


def test_connection_close_answer_is_not_reused(keep, tmp_path):
    s = keep("close")
    # one at a time: each URL comes after the close the one before was told of
    r = fetch("-v", "--parallel", "1", s.url("/c1"), s.url("/c2"), s.url("/c3"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "reusing" not in err, err
    assert err.count("connected to ") == 3, err
    assert s.requests == [(1, "/c1"), (2, "/c2"), (3, "/c3")]


def test_sigint_while_a_connection_is_kept(keep, tmp_path):
    flowing = threading.Event()

    def endless():
        yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 65536
        yield Mark(flowing)
        for _ in range(2000):
            yield b"x" * 65536

    s = keep(routes={"/big": endless})
    # one at a time: /big runs on the connection /a kept, and /c is never begun
    rc, err = signal_when([SOCKIT, "fetch", "-s", "--parallel", "1", s.url("/a"), s.url("/big"),
                           s.url("/c")], flowing, cwd=tmp_path)
    assert rc == 1, err
    assert "interrupted" in err, err
    assert os.listdir(tmp_path) == ["a"], "no partial file"
    assert s.requests == [(1, "/a"), (1, "/big")]
    assert s.closed.wait(10)


def test_many_urls_under_a_low_descriptor_limit(keep, tmp_path):
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (20, 20))

    s = keep()
    lst = tmp_path / "list"
    d = tmp_path / "d"
    d.mkdir()
    lst.write_text("".join(s.url(f"/n{i}") + "\n" for i in range(120)))
    # one at a time: the subject is one connection for the 120 (several at once under
    # such a limit: test_fetch_parallel.py)
    r = subprocess.run([SOCKIT, "fetch", "-s", "--parallel", "1", "-i", str(lst)],
                       capture_output=True, cwd=d, timeout=60, preexec_fn=low_limit)
    assert r.returncode == 0, r.stderr[-500:]
    assert len(os.listdir(d)) == 120
    assert {n for n, _ in s.requests} == {1}


def test_through_tinyproxy_each_url_succeeds(ng, tmp_path):
    """tinyproxy ends each client connection after its response (without
    Connection: close): each kept one is found closed and replaced."""
    tp = Tinyproxy(str(tmp_path / "tp"))
    try:
        before = len(ng.log())
        out = tmp_path / "out"
        out.mkdir()
        urls = [ng.url(f"/f{i}") for i in range(5)]
        # one at a time: each URL finds the connection the proxy closed after the last
        r = fetch("-s", "--parallel", "1", "-x", tp.url, *urls, cwd=out, env=no_proxy_env())
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(out)) == sorted(f"f{i}" for i in range(5))
        assert [u for _, _, u in new_log_lines(ng, before, 5)] == [f"/f{i}" for i in range(5)]
        assert len(tp.requests()) == 5
    finally:
        tp.stop()


def no_proxy_env():
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def test_a_plain_http_proxy_connection_serves_every_origin(keep, tmp_path):
    """A keep-alive proxy (absolute-form requests): one connection for the
    URLs of two origins."""
    px = keep()
    # one at a time: the three in turn on the one connection to the proxy
    r = fetch("-v", "--parallel", "1", "-x", px.url(""), "http://a.example/one",
              "http://b.example:8080/two", "http://a.example/three", cwd=tmp_path,
              env=no_proxy_env())
    assert r.returncode == 0, r.stderr
    assert px.requests == [(1, "http://a.example/one"), (1, "http://b.example:8080/two"),
                           (1, "http://a.example/three")]
    err = r.stderr.decode()
    assert err.count("reusing the connection to 127.0.0.1:%d" % px.port) == 2, err
    assert sorted(os.listdir(tmp_path)) == ["one", "three", "two"]


def test_a_connect_tunnel_serves_its_origin_only(ng, tmp_path):
    """Through tinyproxy's CONNECT: the tunnel to 127.0.0.1 serves both of
    its URLs; localhost (the same server, another origin) gets its own."""
    tp = Tinyproxy(str(tmp_path / "tp"))
    try:
        before = len(ng.log())
        out = tmp_path / "out"
        out.mkdir()
        # one at a time: f2 goes through the tunnel f1 kept, f3 needs its own
        r = fetch("-s", "--parallel", "1", "-x", tp.url, "--cacert", ng.certs["ca"],
                  ng.url("/f1", tls=True), ng.url("/f2", tls=True),
                  ng.url("/f3", tls=True, host="localhost"), cwd=out, env=no_proxy_env())
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(out)) == ["f1", "f2", "f3"]
        log = new_log_lines(ng, before, 3)
        conns = [c for c, _, _ in log]
        assert conns[0] == conns[1] != conns[2], log
        assert [q.split(": ", 1)[1].split()[:2] for q in tp.requests()] == [
            ["CONNECT", f"127.0.0.1:{ng.https}"], ["CONNECT", f"localhost:{ng.https}"]]
    finally:
        tp.stop()


def test_an_error_response_keeps_its_connection(ng, tmp_path):
    """nginx's 404 page (a Content-Length), a 418 with a body and a gzip-coded
    404 (chunked): each error body is read and dropped, so one kept
    connection serves all six URLs (one at a time: the subject is the
    connection from one URL to the next)."""
    before = len(ng.log())
    urls = [ng.url("/f1"), ng.url("/missing"), ng.url("/f2"), ng.url("/teapot"),
            ng.url("/gz/nope"), ng.url("/f3")]
    r = fetch("--parallel", "1", "--compressed", *urls, cwd=tmp_path)
    assert r.returncode == 6, r.stderr  # the 404, first failure given
    err = r.stderr.decode()
    assert "/missing: HTTP 404 Not Found (body not saved)" in err, err
    assert "/teapot: HTTP 418 (body not saved)" in err, err
    assert err.strip().splitlines()[-1] == "sockit: fetch: 3 succeeded, 3 failed", err
    assert sorted(os.listdir(tmp_path)) == ["f1", "f2", "f3"]
    log = new_log_lines(ng, before, 6)
    assert [u for _, _, u in log] == ["/f1", "/missing", "/f2", "/teapot", "/gz/nope", "/f3"]
    assert len({c for c, _, _ in log}) == 1, log
    assert [n for _, n, _ in log] == [str(i) for i in range(1, 7)], log


def error_body(kind, size, name, seen):
    """A 500 ("Oops-NAME") whose body of `size` bytes comes only once the
    client has shown its head (seen[name] set: the body is read after it,
    not with it), with a Content-Length or in 10000-byte chunks."""
    def route():
        body = b"e" * size
        head = b"HTTP/1.1 500 Oops-%s\r\n" % name.encode()
        if kind == "length":
            yield head + b"Content-Length: %d\r\n\r\n" % size
        else:
            yield head + b"Transfer-Encoding: chunked\r\n\r\n"
        seen[name].wait(10)
        if kind == "length":
            yield body
            return
        for off in range(0, size, 10000):
            piece = body[off:off + 10000]
            yield b"%x\r\n%s\r\n" % (len(piece), piece)
        yield b"0\r\n\r\n"
    return route


@pytest.mark.parametrize("kind", ["length", "chunked"])
def test_an_error_body_is_dropped_only_up_to_64_kib(keep, tmp_path, kind):
    """A 500 whose body (after the head) is 64 KiB keeps its connection for
    the next URL; one of 64 KiB + 1 is not read (a Content-Length over it)
    or not past 64 KiB (chunked): the next URL gets a new connection."""
    seen = {"ok64": threading.Event(), "big": threading.Event()}
    s = keep(routes={"/ok64": error_body(kind, 64 * 1024, "ok64", seen),
                     "/big": error_body(kind, 64 * 1024 + 1, "big", seen)})
    urls = [s.url("/a"), s.url("/ok64"), s.url("/b"), s.url("/big"), s.url("/c")]
    p = subprocess.Popen([SOCKIT, "fetch", "-v", "--parallel", "1", *urls],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    err = []
    for line in p.stderr:  # -v shows each head before its body is read
        err.append(line.decode())
        for name, ev in seen.items():
            if line.startswith(b"< HTTP/1.1 500 Oops-" + name.encode()):
                ev.set()
    assert p.wait(30) == 6, err
    assert all(ev.is_set() for ev in seen.values()), err
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]
    assert (tmp_path / "c").read_bytes() == b"/c"
    assert s.requests == [(1, "/a"), (1, "/ok64"), (1, "/b"), (1, "/big"), (2, "/c")], err


def test_an_error_body_that_never_ends_is_bounded_by_the_idle_timeout(keep, tmp_path):
    """A 503 that promises 100 bytes and sends 10: the run goes on after
    --idle-timeout, the connection replaced, the verdict the 503's."""
    s = keep(routes={"/stall": lambda: iter([b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\n"
                                              b"0123456789"])})
    r = fetch("--parallel", "1", "--idle-timeout", "0.5", s.url("/stall"), s.url("/a"),
              cwd=tmp_path, timeout=20)
    assert r.returncode == 6, r.stderr
    assert "/stall: HTTP 503 Busy (body not saved)" in r.stderr.decode(), r.stderr
    assert os.listdir(tmp_path) == ["a"]
    assert s.requests == [(1, "/stall"), (2, "/a")]


def test_write_out_ends_of_a_kept_connection(ng, tmp_path):
    # Every URL on the kept connection reports its two ends (looked up once,
    # when it was opened): the same local port each time.
    r = subprocess.run([SOCKIT, "fetch", "-s", "--parallel", "1", "-w",
                        "%{num_connects} %{local_ip}:%{local_port} %{remote_ip}:%{remote_port}\\n",
                        *[ng.url(f"/f{i}") for i in range(4)]],
                       capture_output=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == ["1", "0", "0", "0"], lines
    assert len({tuple(line.split()[1:]) for line in lines}) == 1, lines
    local, remote = lines[0].split()[1:]
    assert remote == f"127.0.0.1:{ng.http}" and local != "127.0.0.1:0", lines
