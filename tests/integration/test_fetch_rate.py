"""sockit fetch's rate controls, as curl spells them: --limit-rate caps each
transfer's body (HTTP/1.1: reads paused on the loop; HTTP/2: the stream's
window kept back), -Y/--speed-limit with -y/--speed-time fails a transfer
that stays slower (exit 9, retried by --retry). Timing is only ever
asserted as a lower bound: the least time the limit allows."""
import hashlib
import os
import time

import pytest

from fetch_cli import assert_clean, fetch, usage_error
from hostile_http import HostileServer, Sleep
from nginx_util import Nginx, make_certs

MIB = 1024 * 1024
RATE = 256 * 1024
# One read (256 KiB: SK__FETCH_READ_SIZE; over HTTP/2 the stream's window
# of the same size) may come before the first pause: the rest is paced.
BURST = 256 * 1024
LEAST = (MIB - BURST) / RATE * 0.95  # 5%: the clock's rounding, not the server's speed


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx_rate"))
    srv = Nginx(d, make_certs(str(tmp_path_factory.mktemp("rate_certs"))), access_log=True,
                http2=True)
    srv.files = {}
    for name in ("a.bin", "b.bin"):
        data = os.urandom(MIB)
        srv.put(name, data)
        srv.files[name] = hashlib.sha256(data).hexdigest()
    yield srv
    srv.stop()


@pytest.fixture
def hostile():
    srv = HostileServer()
    yield srv
    srv.stop()


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def timed_fetch(*args, **kw):
    t0 = time.monotonic()
    r = fetch(*args, **kw)
    return r, time.monotonic() - t0


def times_total(r):
    """-w '%{time_total}\\n': each transfer's own time."""
    return [float(x) for x in r.stdout.split()]


def test_limit_rate_http11_paces_the_body(ng, tmp_path):
    out = tmp_path / "a.bin"
    r, took = timed_fetch(ng.url("/a.bin"), "--limit-rate", "256k", "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert sha(out) == ng.files["a.bin"]
    assert took >= LEAST, took


def test_limit_rate_parallel_each_transfer_alone(ng, tmp_path):
    """curl's rule: the limit is each transfer's, so two at once each take
    at least the limited time (and the pair is not held to one budget)."""
    r = fetch(ng.url("/a.bin?p"), ng.url("/b.bin?p"), "-j", "2", "--limit-rate", "256k",
              "--output-dir", str(tmp_path), "-s", "-w", "%{time_total}\n")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    for name, want in ng.files.items():
        assert sha(tmp_path / name) == want, name
    times = times_total(r)
    assert len(times) == 2 and min(times) >= LEAST, times


def test_limit_rate_over_h2(ng, tmp_path):
    out = tmp_path / "a.bin"
    r, took = timed_fetch(ng.url("/a.bin?h2", tls=True, host="localhost"), "--cacert",
                          ng.certs["ca"], "--limit-rate", "256k", "-o", str(out), "-v")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"* using HTTP/2" in r.stderr
    assert sha(out) == ng.files["a.bin"]
    assert took >= LEAST, took


def test_limit_rate_h2_streams_share_a_connection(ng, tmp_path):
    """Two limited streams on one HTTP/2 connection: each paced alone by its
    own window, the connection's window given back at once (neither stalls
    the other: both complete)."""
    r = fetch(ng.url("/a.bin?m", tls=True, host="localhost"),
              ng.url("/b.bin?m", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-j", "2", "--limit-rate", "256k", "--output-dir", str(tmp_path), "-s",
              "-w", "%{time_total}\n")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    for name, want in ng.files.items():
        assert sha(tmp_path / name) == want, name
    times = times_total(r)
    assert len(times) == 2 and min(times) >= LEAST, times
    conns = {line[0] for line in ng.log() if line[2] in ("/a.bin?m", "/b.bin?m")}
    assert len(conns) == 1, ng.log()


@pytest.mark.parametrize("args, words", [
    (["--limit-rate", "0"], "--limit-rate needs a speed of at least 1 byte per second"),
    (["--limit-rate", "1q"], "--limit-rate needs a size in bytes"),
    (["--limit-rate", "-5"], "--limit-rate needs a size in bytes"),
    (["--limit-rate", "99999999999g"], "--limit-rate needs a size in bytes"),
    (["-Y", "0"], "--speed-limit needs a speed of at least 1 byte per second"),
    (["--speed-limit", "x"], "--speed-limit needs a size in bytes"),
    (["-y", "0.5"], "--speed-time needs at least 1 s"),
    (["--speed-time", "soon"], "--speed-time"),
])
def test_bad_values_are_usage_errors(args, words):
    usage_error(fetch(*args, "http://127.0.0.1:9/x"), words)


def trickle(req):
    """A 100000-byte body at about 10 bytes per second."""
    yield b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    while True:
        yield b"x"
        yield Sleep(0.1)


def stall(req):
    yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc"
    yield Sleep(60)


def no_files(folder):
    return sorted(os.listdir(folder)) == []


def test_speed_limit_aborts_a_trickle(hostile, tmp_path):
    hostile.route("/slow", trickle)
    out = tmp_path / "d" / "slow"
    out.parent.mkdir()
    r = fetch(hostile.url("/slow"), "-Y", "1000", "-y", "2", "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 9, r.stderr
    err = r.stderr.decode()
    assert len(err.strip().splitlines()) == 1, err
    assert "reading the body: transfer slower than 1000 bytes/s for 2 s (--speed-limit)" in err
    assert no_files(out.parent)  # atomic output: no file, no temporary


def test_speed_limit_is_retried_as_a_timeout(hostile, tmp_path):
    hostile.route("/slow", trickle)
    out = tmp_path / "d" / "slow"
    out.parent.mkdir()
    r = fetch(hostile.url("/slow"), "-Y", "1k", "-y", "1", "--retry", "1", "--retry-delay",
              "0.1", "-o", str(out))
    assert_clean(r)
    assert r.returncode == 9, r.stderr
    assert b"slower than 1024 bytes/s for 1 s; retrying in 0.1 s (1 of 1)" in r.stderr
    assert len([q for q in hostile.requests if q.path == "/slow"]) == 2
    assert no_files(out.parent)


def test_speed_time_alone_means_one_byte_per_second(hostile, tmp_path):
    """curl's: -y without -Y fails a transfer that stalls (under 1 byte/s)."""
    hostile.route("/stall", stall)
    out = tmp_path / "d" / "stall"
    out.parent.mkdir()
    r = fetch(hostile.url("/stall"), "-y", "2", "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 9, r.stderr
    assert b"transfer slower than 1 bytes/s for 2 s (--speed-limit)" in r.stderr
    assert no_files(out.parent)


def test_speed_limit_during_the_head(hostile, tmp_path):
    def slow_head(req):
        for b in b"HTTP/1.1 200 OK\r\n":
            yield bytes([b])
            yield Sleep(0.1)
        yield Sleep(60)
    hostile.route("/head", slow_head)
    r = fetch(hostile.url("/head"), "-Y", "100", "-y", "1", "-o", str(tmp_path / "h"), "-s")
    assert_clean(r)
    assert r.returncode == 9, r.stderr
    assert b"reading the response: transfer slower than 100 bytes/s for 1 s" in r.stderr
    assert not (tmp_path / "h").exists()


def test_speed_limit_spares_a_fast_transfer(ng, tmp_path):
    out = tmp_path / "b.bin"
    r = fetch(ng.url("/b.bin?fast"), "-Y", "1000", "-y", "1", "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert sha(out) == ng.files["b.bin"]


def test_speed_limit_over_h2(ng, tmp_path):
    out = tmp_path / "a.bin"
    r = fetch(ng.url("/a.bin?fast2", tls=True, host="localhost"), "--cacert", ng.certs["ca"],
              "-Y", "1000", "-y", "1", "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert sha(out) == ng.files["a.bin"]


def test_limit_rate_below_speed_limit_aborts(ng, tmp_path):
    """The two together as curl has them: a rate held under the speed limit
    is too slow (the pause counts)."""
    out = tmp_path / "a.bin"
    r = fetch(ng.url("/a.bin?both"), "--limit-rate", "10k", "-Y", "100k", "-y", "1",
              "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 9, r.stderr
    assert b"slower than 102400 bytes/s for 1 s (--speed-limit)" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("tls", [False, True], ids=["http1.1", "h2"])
def test_a_pause_is_not_a_stall(ng, tmp_path, tls):
    """A pause of the rate limit (about 1 s after each 256 KiB at 256k) is
    longer than --idle-timeout 0.5 s: it is ours, not the server's stall."""
    out = tmp_path / "a.bin"
    r, took = timed_fetch(ng.url("/a.bin?idle", tls=tls, host="localhost"), "--cacert",
                          ng.certs["ca"], "--limit-rate", "256k", "--idle-timeout", "0.5",
                          "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert sha(out) == ng.files["a.bin"]
    assert took >= LEAST, took
