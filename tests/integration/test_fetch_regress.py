"""Regression tests for the `sockit fetch` bugs of issue 7, each of which
failed before its fix: writes through planted links, mixed or partial
files committed with exit 0, --sha256 bypassed, signals ignored while data
flows, setuid bits carried over, and the smaller exit-status and naming
bugs. The scripted server is hostile_http.HostileServer."""
import hashlib
import os
import signal
import ssl
import stat
import subprocess
import threading

import pytest

from conftest import SOCKIT
from fswait import wait_in_folder
from hostile_http import HostileServer, Mark, Raw, Reset, Sleep
from nginx_util import make_certs
from test_fetch_hostile import DATA, check_failure, fetch, interrupted_first_run, ranged

OK_HEAD = b"HTTP/1.1 200 OK\r\n"
DATA2 = bytes(reversed(DATA))  # the resource's next version: same size, other bytes


@pytest.fixture
def srv():
    s = HostileServer()
    yield s
    s.stop()


def files(d):
    return sorted(os.listdir(d))


# -- writes outside the intended place -----------------------------------------


def test_meta_tmp_symlink_is_not_written_through(srv, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, tmp_path / "f.bin.part.meta.tmp")  # the old fixed temporary name
    interrupted_first_run(srv, tmp_path)
    assert victim.read_bytes() == b"precious"
    assert os.path.islink(tmp_path / "f.bin.part.meta.tmp")


def test_meta_symlink_is_replaced_not_followed(srv, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, tmp_path / "f.bin.part.meta")
    interrupted_first_run(srv, tmp_path)
    assert victim.read_bytes() == b"precious"
    assert not os.path.islink(tmp_path / "f.bin.part.meta")


def test_hard_link_at_part_is_refused(srv, tmp_path):
    srv.route("/f", ranged('"v1"'))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.link(victim, tmp_path / "f.bin.part")
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "f.bin"), "-C", "-s")
    check_failure(r, 10, "refusing")
    assert victim.read_bytes() == b"precious"
    assert files(tmp_path) == ["f.bin.part", "victim"]
    assert srv.requests == [], "refused before any network work"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_part_of_another_user_is_refused(srv, tmp_path):
    srv.route("/f", ranged('"v1"'))
    part = tmp_path / "f.bin.part"
    part.write_bytes(b"theirs")
    os.chown(part, 12345, 12345)
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "f.bin"), "-C", "-s")
    check_failure(r, 10, "refusing")
    assert part.read_bytes() == b"theirs"


def test_replaced_setuid_file_loses_special_bits(srv, tmp_path):
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: 3\r\n\r\nnew")
    out = tmp_path / "tool"
    out.write_bytes(b"old")
    os.chmod(out, 0o6755)
    r = fetch(srv.url("/f"), "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


# -- partial or mixed files committed as complete ------------------------------


def ignores_if_range(etag, data):
    """A cache that ignores If-Range: any Range gets a 206 of the current
    version, which carries its own validator."""

    def handler(req):
        rng = req.headers.get("range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            body = data[start:]
            return (b"HTTP/1.1 206 Partial Content\r\nETag: %s\r\nContent-Range: bytes %d-%d/%d\r\n"
                    b"Content-Length: %d\r\n\r\n" % (etag.encode(), start, len(data) - 1,
                                                    len(data), len(body)) + body)
        return (b"HTTP/1.1 200 OK\r\nETag: %s\r\nContent-Length: %d\r\n\r\n"
                % (etag.encode(), len(data)) + data)

    return handler


def test_206_of_another_version_restarts_instead_of_appending(srv, tmp_path):
    out = interrupted_first_run(srv, tmp_path)  # 40000 bytes of "v1"
    srv.route("/f", ignores_if_range('"v2"', DATA2))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA2, "never old bytes + new bytes"
    assert "range" not in srv.requests[-1].headers
    assert files(tmp_path) == ["f.bin"]


def test_206_to_a_plain_get_is_not_saved(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/100\r\n"
                                b"Content-Length: 5\r\n\r\nhello")
    out = tmp_path / "o"
    out.write_bytes(b"untouched")
    r = fetch(srv.url("/f"), "-o", str(out), "-s")
    check_failure(r, 7, "206")
    assert out.read_bytes() == b"untouched"
    assert files(tmp_path) == ["o"]
    # Asked for by the user, a range is what they want.
    r = fetch(srv.url("/f"), "-o", str(out), "-s", "-H", "Range: bytes=0-4")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"hello"


def chunked(body):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192])
                    for i in range(0, len(body), 8192)) + b"0\r\n\r\n"


@pytest.mark.parametrize("extra", [b"EXTRA BYTES", b""], ids=["longer", "exact"])
def test_chunked_206_must_match_its_content_range(srv, tmp_path, extra):
    out = interrupted_first_run(srv, tmp_path)
    srv.route("/f", lambda req: b"HTTP/1.1 206 Partial Content\r\nETag: \"v1\"\r\n"
                                b"Content-Range: bytes 40000-%d/*\r\nTransfer-Encoding: chunked\r\n"
                                b"\r\n" % (len(DATA) - 1) + chunked(DATA[40000:] + extra))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    if extra:
        check_failure(r, 7, "Content-Range")
        assert not out.exists()
    else:
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == DATA


def test_416_for_a_short_part_does_not_commit_it(srv, tmp_path):
    out = interrupted_first_run(srv, tmp_path)  # the 200 said 102400 bytes; 40000 arrived

    def liar(req):
        if req.headers.get("range"):
            return (b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */40000\r\n"
                    b"Content-Length: 0\r\n\r\n")
        return ranged('"v1"')(req)

    srv.route("/f", liar)
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA, "restarted, not the 40000-byte part"
    assert "range" not in srv.requests[-1].headers


def complete_part_of_unknown_size(srv, tmp_path):
    """A first run that got every byte of a chunked body but no final chunk:
    FILE.part is whole, and nothing on record says how large FILE is."""
    srv.route("/f", lambda req: b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nTransfer-Encoding: chunked\r\n"
                                b"\r\n" + chunked(DATA)[:-5])
    out = tmp_path / "f.bin"
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    check_failure(r, 8, "no final chunk")
    assert (tmp_path / "f.bin.part").read_bytes() == DATA
    srv.route("/f", ranged('"v1"'))  # Range at the end: 416 bytes */102400
    return out


def test_416_does_not_bypass_sha256(srv, tmp_path):
    out = complete_part_of_unknown_size(srv, tmp_path)
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s", "--sha256", "2" * 64)
    check_failure(r, 11, "SHA-256 mismatch")
    assert not out.exists()
    out = complete_part_of_unknown_size(srv, tmp_path)
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s", "--sha256",
              hashlib.sha256(DATA).hexdigest())
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    assert files(tmp_path) == ["f.bin"]


def write_meta(tmp_path, url, validator, size):
    (tmp_path / "f.bin.part.meta").write_text(
        f"sockit-resume 2\nurl {url}\nvalidator {validator}\nsize {size}\n")


def test_416_complete_part_is_verified_by_sha256(srv, tmp_path):
    srv.route("/f", ranged('"v1"'))
    out = tmp_path / "f.bin"
    for digest, code in (("3" * 64, 11), (hashlib.sha256(DATA).hexdigest(), 0)):
        (tmp_path / "f.bin.part").write_bytes(DATA)
        write_meta(tmp_path, srv.url("/f"), '"v1"', len(DATA))
        r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s", "--sha256", digest)
        assert r.returncode == code, r.stderr
        assert srv.requests[-1].headers["range"] == f"bytes={len(DATA)}-"
    assert out.read_bytes() == DATA
    assert files(tmp_path) == ["f.bin"]


# -- signals ---------------------------------------------------------------------


def endless(req):
    """A fast stream that never ends (a close-delimited body)."""
    yield b"HTTP/1.0 200 OK\r\nETag: \"v1\"\r\n\r\n"
    piece = b"s" * 65536
    while True:
        yield piece


def start_endless_fetch(srv, tmp_path, *extra):
    srv.route("/f", endless)
    out = tmp_path / "f.bin"
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", str(out), "-s", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def flowing():
        # The part's metadata is replaced by rename as it goes: a name just
        # listed may be gone (its temporary name) by the time it is sized.
        for n in os.listdir(tmp_path):
            try:
                if ".meta" not in n and os.path.getsize(tmp_path / n) > (1 << 20):
                    return True
            except FileNotFoundError:
                pass
        return False

    try:
        wait_in_folder(tmp_path, flowing, 10, "1 MiB written")
    except BaseException:
        p.kill()
        p.wait()
        p.stderr.close()
        raise
    return p


def stop(p, sig):
    p.send_signal(sig)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        p.stderr.close()
        raise AssertionError(f"{sig.name} ignored while data flows")
    err = p.stderr.read().decode()
    p.stderr.close()
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                                 signal.SIGPIPE], ids=lambda s: s.name)
def test_signal_stops_a_flowing_transfer_and_cleans_up(srv, tmp_path, sig):
    p = start_endless_fetch(srv, tmp_path)
    err = stop(p, sig)
    assert p.returncode == (10 if sig == signal.SIGPIPE else 1), err
    assert "interrupted" in err and sig.name in err, err
    assert files(tmp_path) == [], "the temporary file is removed"


def test_sighup_with_continue_keeps_the_part(srv, tmp_path):
    p = start_endless_fetch(srv, tmp_path, "-C")
    err = stop(p, signal.SIGHUP)
    assert p.returncode == 1, err
    assert files(tmp_path) == ["f.bin.part", "f.bin.part.meta"]


def test_closed_standard_output_stops_the_transfer(srv, tmp_path):
    srv.route("/f", endless)
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", "-", "-s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert len(p.stdout.read(1 << 20)) == 1 << 20  # data flows
    p.stdout.close()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise
    finally:
        err = p.stderr.read().decode()
        p.stderr.close()
    assert p.returncode == 10, err
    assert err.startswith("sockit: ") and len(err.strip().splitlines()) == 1, err
    assert files(tmp_path) == []


# -- smaller -------------------------------------------------------------------------


def test_close_delimited_body_ended_by_reset_is_truncated(srv, tmp_path):
    srv.route("/f", lambda req: [b"HTTP/1.0 200 OK\r\n\r\n" + b"r" * 5000, Reset()])
    out = tmp_path / "o"
    r = fetch(srv.url("/f"), "-o", str(out), "-s")
    check_failure(r, 8, "reset")
    assert files(tmp_path) == []


@pytest.fixture(scope="module")
def tls_ctx(tmp_path_factory):
    certs = make_certs(str(tmp_path_factory.mktemp("certs")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx, certs["ca"]


def test_corrupt_tls_record_mid_body_is_a_tls_error(tls_ctx, tmp_path):
    ctx, ca = tls_ctx
    srv = HostileServer(tls=ctx, close_notify=False)
    sent = threading.Event()
    # An application-data record whose MAC cannot verify.
    bad_record = b"\x17\x03\x03\x00\x40" + bytes(range(64))
    srv.route("/f", lambda req: [OK_HEAD + b"Content-Length: 10000\r\n\r\n" + b"t" * 100,
                                 Mark(sent), Raw(bad_record), Sleep(10)])
    out = tmp_path / "o"
    try:
        r = fetch(srv.url("/f", host="localhost"), "-o", str(out), "-s", "--cacert", ca)
    finally:
        srv.stop()
    assert sent.is_set()
    check_failure(r, 5, "reading the body: TLS read: ")
    assert "TLS error" not in r.stderr.decode()
    assert files(tmp_path) == []


@pytest.mark.parametrize("length", [241, 250, 255])
def test_longest_legal_names(srv, tmp_path, length):
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
    out = tmp_path / ("n" * length)
    r = fetch(srv.url("/f"), "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"ok"
    assert files(tmp_path) == [out.name]


def test_output_through_a_dangling_symlink_creates_its_target(srv, tmp_path):
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
    (tmp_path / "sub").mkdir()
    os.symlink("sub/target", tmp_path / "link")  # relative, dangling
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "link"), "-s")
    assert r.returncode == 0, r.stderr
    assert os.path.islink(tmp_path / "link"), "the link stays a link"
    assert (tmp_path / "sub" / "target").read_bytes() == b"ok"
    assert files(tmp_path / "sub") == ["target"]


def test_continue_names_leave_room_for_the_meta_file(srv, tmp_path):
    srv.route("/f", ranged('"v1"'))
    r = fetch(srv.url("/f"), "-o", str(tmp_path / ("n" * 246)), "-C", "-s")
    check_failure(r, 2, "at most 245 bytes")
    assert files(tmp_path) == [] and srv.requests == []
    out = tmp_path / ("n" * 245)
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
