"""sockit fetch against a real lighttpd (a second web server beside nginx):
plain and TLS (HTTP/2 by ALPN, or HTTP/1.1 with --http1.1), Range for
resume, its redirects, mod_deflate's gzip, deflate and br, keep-alive and
HTTP/2 streams across several URLs. Each test starts its own lighttpd
and reads its access log when it stops."""
import hashlib
import os
import select
import socket
import threading

import pytest

from fetch_cli import assert_clean, assert_sums, fetch, put_files
from lighttpd_util import Lighttpd
from nginx_util import make_certs

TEXT = b"".join(b"line %06d of a text that compresses well\n" % i for i in range(20000))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def lt(tmp_path_factory, certs):
    srv = Lighttpd(str(tmp_path_factory.mktemp("lighttpd")), certs)
    srv.small = os.urandom(1000)
    srv.put("small.bin", srv.small)
    srv.big = os.urandom(3 << 20)
    srv.put("big.bin", srv.big)
    srv.put("t.txt", TEXT)
    yield srv
    srv.stop()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_file_identical(lt, tmp_path, tls):
    r = fetch("-s", "--cacert", lt.certs["ca"], "-o", str(tmp_path / "out"),
              lt.url("/big.bin", tls=tls, host="localhost"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == lt.big
    log = lt.stop()
    # Over TLS HTTP/2 is negotiated (lighttpd offers h2 by ALPN).
    proto = "HTTP/2.0" if tls else "HTTP/1.1"
    assert [(line[0], line[1], line[3]) for line in log] == [(proto, "200", "/big.bin")], log


class Cutter:
    """A TCP relay in front of lighttpd that cuts its first connection after
    `cut` bytes from the server, and relays every later one whole: the URL
    stays the same (the relay's), the server that answers Range is lighttpd."""

    def __init__(self, target_port, cut):
        self.target, self.cut = target_port, cut
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.conns = 0
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns += 1
            budget = self.cut if self.conns == 1 else None
            threading.Thread(target=self._relay, args=(c, budget), daemon=True).start()

    def _relay(self, c, budget):
        with c, socket.create_connection(("127.0.0.1", self.target)) as s:
            socks = [c, s]
            while True:
                ready, _, _ = select.select(socks, [], [], 10)
                if not ready:
                    return
                for r in ready:
                    data = r.recv(65536)
                    if not data:
                        return
                    if r is s and budget is not None:
                        data = data[:budget]
                        budget -= len(data)
                    (c if r is s else s).sendall(data)
                    if budget == 0:
                        return

    def close(self):
        self.lsock.close()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_resume_asks_for_the_rest_and_gets_206(lt, tmp_path, tls):
    relay = Cutter(lt.https if tls else lt.http, 400000)
    try:
        url = f"{'https' if tls else 'http'}://localhost:{relay.port}/big.bin"
        r = fetch("-s", "-C", "-", "--cacert", lt.certs["ca"], url, cwd=tmp_path)
        assert_clean(r)
        assert r.returncode == 8, r.stderr  # cut: the part is kept for -C
        part = (tmp_path / "big.bin.part").read_bytes()
        assert 0 < len(part) < len(lt.big) and lt.big.startswith(part)
        r = fetch("-s", "-C", "-", "--cacert", lt.certs["ca"], url, cwd=tmp_path)
        assert_clean(r)
        assert r.returncode == 0, r.stderr
    finally:
        relay.close()
    assert os.listdir(tmp_path) == ["big.bin"]
    assert (tmp_path / "big.bin").read_bytes() == lt.big
    log = lt.stop()
    # The cut first transfer is logged as sent in full (lighttpd wrote it to
    # the relay); the second asked only for the rest.
    assert [(line[1], line[3]) for line in log] == [("200", "/big.bin"), ("206", "/big.bin")], log
    assert all(line[0] == ("HTTP/2.0" if tls else "HTTP/1.1") for line in log), log


def test_redirects_followed_to_the_file(lt, tmp_path):
    r = fetch("-s", "-L", "-o", str(tmp_path / "out"), "-w", "%{num_redirects} %{http_code}",
              lt.url("/r/a"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"2 200"
    assert (tmp_path / "out").read_bytes() == lt.small
    log = lt.stop()
    assert [(line[1], line[3]) for line in log] == [
        ("301", "/r/a"), ("301", "/r/b"), ("200", "/small.bin")], log


def test_404_with_fail_saves_nothing(lt, tmp_path):
    r = fetch("-f", "-o", str(tmp_path / "out"), lt.url("/missing"))
    assert_clean(r)
    assert r.returncode == 6, r.stderr
    assert b"HTTP 404" in r.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
def test_compressed_decoded_byte_exact(lt, tmp_path, coding):
    # Accept-Encoding lists all three; lighttpd picks by its own preference,
    # so -H narrows the offer to one coding per test.
    r = fetch("-s", "--compressed", "-H", f"Accept-Encoding: {coding}", "-D",
              str(tmp_path / "head"), "-o", str(tmp_path / "out"), lt.url("/t.txt"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    head = (tmp_path / "head").read_bytes().lower()
    assert b"\r\ncontent-encoding: " + coding.encode() + b"\r\n" in head, head
    assert (tmp_path / "out").read_bytes() == TEXT


def test_sha256_of_the_file(lt, tmp_path):
    good = hashlib.sha256(lt.big).hexdigest()
    r = fetch("-s", "--sha256", good, "-o", str(tmp_path / "out"), lt.url("/big.bin"))
    assert r.returncode == 0, r.stderr
    r = fetch("-s", "--sha256", "0" * 64, "-o", str(tmp_path / "bad"), lt.url("/big.bin"))
    assert r.returncode == 11, r.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("tls,version,proto", [
    (False, [], "HTTP/1.1"), (True, ["--http1.1"], "HTTP/1.1"), (True, [], "HTTP/2.0"),
], ids=["http", "https-http1.1", "https-h2"])
def test_several_urls_share_one_kept_connection(lt, tmp_path, tls, version, proto):
    names = [f"f{i}.bin" for i in range(6)]
    for n in names:
        lt.put(n, n.encode() * 100)
    # One at a time: the subject is one connection serving each URL in turn.
    r = fetch("-s", "--parallel", "1", *version, "--cacert", lt.certs["ca"],
              *[lt.url("/" + n, tls=tls, host="localhost") for n in names], cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    for n in names:
        assert (tmp_path / n).read_bytes() == n.encode() * 100
    log = lt.stop()
    # %k counts the requests of the connection: before this one (0, 1, ... 5)
    # over HTTP/1.1, with it (1, 2, ... 6) over HTTP/2. One connection: no
    # count starts again.
    first = 1 if proto == "HTTP/2.0" else 0
    assert [(line[0], line[2]) for line in log] == [(proto, str(first + i)) for i in range(6)], log


def test_parallel_urls_are_streams_of_one_h2_connection(lt, tmp_path):
    """Six URLs, three at once, to lighttpd over TLS (a second real HTTP/2
    server beside nginx): streams multiplexed on one connection."""
    names = [f"m{i}.bin" for i in range(6)]
    for n in names:
        lt.put(n, os.urandom(200000))
    r = fetch("-s", "--parallel", "3", "--cacert", lt.certs["ca"],
              *[lt.url("/" + n, tls=True, host="localhost") for n in names], cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    for n in names:
        assert (tmp_path / n).read_bytes() == open(os.path.join(lt.www, n), "rb").read()
    log = lt.stop()
    assert sorted(line[3] for line in log) == ["/" + n for n in names], log
    assert all(line[0] == "HTTP/2.0" for line in log), log
    conn = {line[3]: line[4] for line in log}
    # The first three start together: the second and third wait for the
    # first one's handshake and open their streams on its connection. Later
    # ones join it too (the run's pool), whatever its first transfer does.
    assert len(set(conn.values())) == 1, log


def test_parallel_20_urls_8_at_once_one_h2_connection(lt, tmp_path):
    """20 URLs, 8 at once, to lighttpd over TLS: every transfer is a stream
    of the run's one connection; each file byte-exact (sha256)."""
    sums = put_files(lt, "n", 20, 7919)
    urls = [lt.url("/" + n, tls=True, host="localhost") for n in sums]
    r = fetch("-s", "--parallel", "8", "--cacert", lt.certs["ca"], *urls, cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert_sums(tmp_path, sums)
    log = lt.stop()
    assert len(log) == 20 and all(line[0] == "HTTP/2.0" for line in log), log
    assert len({line[4] for line in log}) == 1, log
