"""sockit fetch --compressed and --max-filesize: gzip from a real nginx
(its own gzip filter, and files whose Content-Encoding lies), deflate, br
and hostile codings from a scripted server; bombs stopped by
--max-filesize with bounded memory, and the limit on plain bodies."""
import glob
import gzip
import hashlib
import os
import subprocess
import zlib

import brotli
import pytest

from conftest import SOCKIT, stderr_on_a_terminal
from hostile_http import HostileServer, Sleep
from nginx_util import Nginx, make_certs

TEXT = b"".join(b"line %06d of a text that compresses well\n" % i for i in range(50000))
MiB = 1 << 20
BR = brotli.compress(TEXT, quality=5)  # the default quality 11 takes seconds
RSS_MAX_KIB = 48 * 1024  # the bound of the plain large-file test, sanitizer builds included


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx"))
    srv = Nginx(d, make_certs(os.path.join(d, "certs")))
    srv.text = srv.put("gz/text.txt", TEXT)
    srv.put("plain/text.txt", TEXT)
    srv.put("says-gzip/plain.txt", TEXT)  # sent as is, labelled gzip: a lie
    srv.put("plain/two.bin", os.urandom(2 * MiB))
    yield srv
    srv.stop()


@pytest.fixture
def hs():
    s = HostileServer()
    yield s
    s.stop()


def fetch(*args, cwd=None, timeout=60):
    return subprocess.run([SOCKIT, "fetch"] + list(args), capture_output=True, cwd=cwd,
                          timeout=timeout)


def fetch_rss(*args, timeout=60):
    """fetch under /usr/bin/time: (result, peak RSS in KiB of sockit alone)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M", SOCKIT, "fetch"] + list(args),
                       capture_output=True, timeout=timeout)
    lines = r.stderr.strip().splitlines()
    return r, int(lines[-1])


def assert_clean(r):
    assert r.returncode >= 0, f"killed by signal {-r.returncode}"
    assert b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr.decode()


def nothing_saved(d, name="out"):
    return not os.path.exists(os.path.join(d, name)) and not glob.glob(
        os.path.join(d, ".*.sockit-*"))


def chunked(body, size=1000):
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                   for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


def reply(body, enc, framing="length"):
    """A 200 with Content-Encoding enc (None: none), framed as asked."""
    head = b"HTTP/1.1 200 OK\r\n"
    if enc is not None:
        head += b"Content-Encoding: " + enc + b"\r\n"
    if framing == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if framing == "chunked":
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body)
    return head + b"Connection: close\r\n\r\n" + body  # read to the close


def raw_deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zeros_gzip(n):
    """n zero bytes, gzipped, made a MiB at a time."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MiB)
    return b"".join(c.compress(block) for _ in range(n // MiB)) + c.flush()


# ---- a real server: nginx's gzip ----

@pytest.mark.parametrize("tls", [False, True])
def test_gzip_from_nginx_decoded_byte_exact(ng, tmp_path, tls):
    out = tmp_path / "out"
    r = fetch("--compressed", "-o", str(out), "--cacert", ng.certs["ca"],
              ng.url("/gz/text.txt", tls=tls, host="localhost"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"\r\nContent-Encoding: gzip\r\n" in r.stdout  # it was coded on the wire
    assert out.read_bytes() == TEXT


def test_without_compressed_nothing_is_asked_or_decoded(ng, tmp_path):
    out = tmp_path / "out"
    r = fetch("-o", str(out), ng.url("/gz/text.txt"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"Content-Encoding" not in r.stdout
    assert out.read_bytes() == TEXT


def test_sha256_is_of_the_decoded_body(ng, tmp_path):
    good = hashlib.sha256(TEXT).hexdigest()
    r = fetch("--compressed", "-s", "--sha256", good, "-o", str(tmp_path / "out"),
              ng.url("/gz/text.txt"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    # The digest of what nginx sent (coded) is not the decoded body's.
    coded = hashlib.sha256(gzip.compress(TEXT)).hexdigest()
    r = fetch("--compressed", "-s", "--sha256", coded, "-o", str(tmp_path / "bad"),
              ng.url("/gz/text.txt"))
    assert_clean(r)
    assert r.returncode == 11, r.stderr
    assert nothing_saved(tmp_path, "bad")


def test_a_content_encoding_that_lies_saves_nothing(ng, tmp_path):
    r = fetch("--compressed", "-s", "-o", str(tmp_path / "out"), ng.url("/says-gzip/plain.txt"))
    assert_clean(r)
    assert r.returncode == 7, r.stderr
    assert b"corrupt gzip body" in r.stderr and b"not saved" in r.stderr, r.stderr
    assert nothing_saved(tmp_path)
    # Without --compressed the bytes are saved as sent.
    r = fetch("-s", "-o", str(tmp_path / "asis"), ng.url("/says-gzip/plain.txt"))
    assert r.returncode == 0 and (tmp_path / "asis").read_bytes() == TEXT


def test_head_with_compressed_shows_heads_only(ng, tmp_path):
    r = fetch("--compressed", "-I", ng.url("/gz/text.txt"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert os.listdir(tmp_path) == []


def test_max_filesize_refuses_a_content_length_above(ng, tmp_path):
    r = fetch("-s", "--max-filesize", "1M", "-o", str(tmp_path / "out"), ng.url("/plain/two.bin"))
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert b"over the size limit of 1048576 bytes" in r.stderr, r.stderr
    assert b"(--max-filesize)" in r.stderr
    assert nothing_saved(tmp_path)
    # The limit itself is allowed.
    r = fetch("-s", "--max-filesize", "2m", "-o", str(tmp_path / "out"), ng.url("/plain/two.bin"))
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(tmp_path / "out") == 2 * MiB


def test_max_filesize_bounds_the_decoded_body_from_nginx(ng, tmp_path):
    # nginx's gzip is chunked: the decoded bytes cross the limit.
    r = fetch("-s", "--compressed", "--max-filesize", "100k", "-o", str(tmp_path / "out"),
              ng.url("/gz/text.txt"))
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert b"grows past the size limit of 102400 bytes" in r.stderr, r.stderr
    assert nothing_saved(tmp_path)


# ---- deflate, br and bad streams from a scripted server ----

CODED = {
    "gzip": (b"gzip", gzip.compress(TEXT)),
    "x-gzip": (b"x-gzip", gzip.compress(TEXT)),
    "deflate-zlib": (b"deflate", zlib.compress(TEXT)),
    "deflate-raw": (b"deflate", raw_deflate(TEXT)),
    "br": (b"br", BR),
    "identity": (b"identity", TEXT),
}


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
@pytest.mark.parametrize("kind", sorted(CODED))
def test_codings_decoded_byte_exact(hs, tmp_path, kind, framing):
    enc, body = CODED[kind]
    hs.route("/x", lambda req: reply(body, enc, framing))
    out = tmp_path / "out"
    r = fetch("--compressed", "-s", "-o", str(out), hs.url("/x"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == TEXT
    assert hs.requests[0].headers["accept-encoding"] == "gzip, deflate, br"


def test_to_stdout_decoded(hs):
    hs.route("/x", lambda req: reply(BR, b"br"))
    r = fetch("--compressed", "-s", "-o", "-", hs.url("/x"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == TEXT


@pytest.mark.parametrize("enc,what", [(b"zstd", b"unsupported Content-Encoding: zstd"),
                                      (b"compress", b"unsupported Content-Encoding: compress"),
                                      (b"gzip, br", b"several Content-Encodings (gzip, br)")])
def test_unknown_or_chained_codings_refused(hs, tmp_path, enc, what):
    hs.route("/x", lambda req: reply(b"whatever", enc))
    r = fetch("--compressed", "-s", "-o", str(tmp_path / "out"), hs.url("/x"))
    assert_clean(r)
    assert r.returncode == 7, r.stderr
    assert what in r.stderr, r.stderr
    assert nothing_saved(tmp_path)


def test_two_content_encoding_fields_are_a_chain(hs, tmp_path):
    body = brotli.compress(gzip.compress(TEXT), quality=5)
    hs.route("/x", lambda req: b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
             b"Content-Encoding: br\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    r = fetch("--compressed", "-s", "-o", str(tmp_path / "out"), hs.url("/x"))
    assert r.returncode == 7, r.stderr
    assert b"several Content-Encodings" in r.stderr
    assert nothing_saved(tmp_path)


GZ = gzip.compress(TEXT)
BAD = {
    # the stream stops before its end marker though the body is complete
    "gzip-truncated": (b"gzip", GZ[:-8], "length", 8, b"truncated gzip body"),
    "br-truncated": (b"br", BR[:-3], "chunked", 8, b"truncated br body"),
    "deflate-truncated": (b"deflate", zlib.compress(TEXT)[:100], "close", 8,
                          b"truncated deflate body"),
    # bytes after the end of the gzip member
    "gzip-trailing": (b"gzip", GZ + b"garbage", "length", 7, b"data after the end"),
    "gzip-two-members": (b"gzip", GZ + GZ, "chunked", 7, b"data after the end"),
    "br-trailing": (b"br", BR + b"\0", "length", 7, b"corrupt br body"),
    # a flipped byte inside: the CRC says so
    "gzip-corrupt": (b"gzip", GZ[:len(GZ) // 2] + bytes([GZ[len(GZ) // 2] ^ 0xff]) +
                     GZ[len(GZ) // 2 + 1:], "length", 7, b"corrupt gzip body"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_streams_save_nothing(hs, tmp_path, kind):
    enc, body, framing, status, what = BAD[kind]
    hs.route("/x", lambda req: reply(body, enc, framing))
    r = fetch("--compressed", "-s", "-o", str(tmp_path / "out"), hs.url("/x"))
    assert_clean(r)
    assert r.returncode == status, r.stderr
    assert what in r.stderr, r.stderr
    assert nothing_saved(tmp_path)


def test_a_cut_connection_inside_a_coded_body_is_truncated(hs, tmp_path):
    body = gzip.compress(TEXT)
    hs.route("/x", lambda req: b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body) + body[:len(body) // 2])
    r = fetch("--compressed", "-s", "-o", str(tmp_path / "out"), hs.url("/x"))
    assert_clean(r)
    assert r.returncode == 8, r.stderr
    assert nothing_saved(tmp_path)


# ---- bombs and --max-filesize ----

@pytest.fixture(scope="module")
def bomb():
    return zeros_gzip(256 * MiB)  # about 250 KiB on the wire


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_gzip_bomb_stopped_by_max_filesize_with_low_rss(hs, tmp_path, bomb, framing):
    hs.route("/bomb", lambda req: reply(bomb, b"gzip", framing))
    r, rss = fetch_rss("--compressed", "-s", "--max-filesize", "1M", "-o",
                       str(tmp_path / "out"), hs.url("/bomb"))
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert b"grows past the size limit of 1048576 bytes" in r.stderr, r.stderr
    assert rss < RSS_MAX_KIB, f"peak RSS {rss} KiB"
    assert nothing_saved(tmp_path)


def test_a_large_decoded_body_streams_with_bounded_memory(hs, tmp_path):
    body = zeros_gzip(96 * MiB)
    hs.route("/z", lambda req: reply(body, b"gzip", "chunked"))
    out = tmp_path / "out"
    r, rss = fetch_rss("--compressed", "-s", "-o", str(out), hs.url("/z"), timeout=120)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(out) == 96 * MiB
    assert rss < RSS_MAX_KIB, f"peak RSS {rss} KiB"


def test_max_filesize_fails_on_content_length_before_the_body(hs, tmp_path):
    # The server sends the head and a little, then stalls: only a verdict
    # taken on the Content-Length can end the run before the timeout.
    hs.route("/big", lambda req: [b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n",
                                  b"x" * 100, Sleep(60)])
    r = fetch("-s", "--max-filesize", "1m", "-o", str(tmp_path / "out"), hs.url("/big"),
              timeout=30)
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert b"the body is 10485760 bytes, over the size limit" in r.stderr, r.stderr
    assert nothing_saved(tmp_path)


def endless_chunks(req):
    yield b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    while True:
        yield b"4000\r\n" + b"y" * 0x4000 + b"\r\n"


@pytest.mark.parametrize("route", ["chunked", "close"])
def test_max_filesize_stops_a_growing_plain_body(hs, tmp_path, route):
    if route == "chunked":
        hs.route("/grow", endless_chunks)
    else:
        hs.route("/grow", lambda req: reply(b"z" * (3 * MiB), None, "close"))
    r = fetch("-s", "--max-filesize", "1M", "-o", str(tmp_path / "out"), hs.url("/grow"))
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert b"grows past the size limit of 1048576 bytes" in r.stderr, r.stderr
    assert nothing_saved(tmp_path)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_max_filesize_with_resume_keeps_no_part(hs, tmp_path, framing):
    hs.route("/f", lambda req: reply(b"a" * 5000, None, framing))
    r = fetch("-s", "-C", "--max-filesize", "4k", "-o", str(tmp_path / "out"), hs.url("/f"))
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert os.listdir(tmp_path) == []  # no out, out.part or out.part.meta: a rerun would fail


def test_max_filesize_with_resume_counts_the_part(hs, tmp_path):
    # A first run keeps 3000 of 6000 bytes in out.part; the rerun's 206
    # offers 3000 more: 6000 > 5k, though the 206's own length is not.
    def route(req):
        if "range" in req.headers:
            return (b"HTTP/1.1 206 Partial Content\r\nETag: \"v\"\r\n"
                    b"Content-Range: bytes 3000-5999/6000\r\nContent-Length: 3000\r\n\r\n" +
                    b"a" * 3000)
        return b"HTTP/1.1 200 OK\r\nETag: \"v\"\r\nContent-Length: 6000\r\n\r\n" + b"a" * 3000
    hs.route("/f", route)
    out = str(tmp_path / "out")
    r = fetch("-s", "-C", "-o", out, hs.url("/f"))
    assert r.returncode == 8, r.stderr
    assert os.path.getsize(out + ".part") == 3000
    r = fetch("-s", "-C", "--max-filesize", "5k", "-o", out, hs.url("/f"))
    assert_clean(r)
    assert r.returncode == 13, r.stderr
    assert b"the body is 6000 bytes, over the size limit of 5120 bytes" in r.stderr, r.stderr
    assert hs.requests[-1].headers["range"] == "bytes=3000-"
    assert os.listdir(tmp_path) == []


# ---- the command line ----

def test_continue_with_compressed_is_a_usage_error(tmp_path):
    r = fetch("-C", "--compressed", "-o", str(tmp_path / "out"), "http://127.0.0.1:9/x")
    assert r.returncode == 2, r.stderr
    assert b"-C cannot resume a --compressed download" in r.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value", ["", "abc", "1x", "-1", "+5", " 5", "1kk", "1.5M", "k",
                                   "99999999999999999999", "17179869184g"])
def test_bad_max_filesize_is_a_usage_error(value):
    r = fetch("--max-filesize", value, "http://127.0.0.1:9/x")
    assert r.returncode == 2, (value, r.stderr)
    assert b"--max-filesize needs a size in bytes" in r.stderr, r.stderr


def test_max_filesize_zero_is_no_limit(hs, tmp_path):
    hs.route("/f", lambda req: reply(b"a" * 5000, None))
    r = fetch("-s", "--max-filesize", "0", "-o", str(tmp_path / "out"), hs.url("/f"))
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(tmp_path / "out") == 5000


def test_help_names_the_options():
    r = fetch("--help")
    assert r.returncode == 0
    for word in (b"--compressed", b"--max-filesize BYTES", b"  13  "):
        assert word in r.stdout, word


def test_progress_has_no_total_when_decoding(hs, tmp_path):
    # The Content-Length is the coded size: a bar against it would pass
    # 100 %. Decoding, the bar shows the bytes without a percentage.
    body = gzip.compress(TEXT)
    step = len(body) // 5 + 1
    hs.route("/slow", lambda req: [b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                   b"Content-Length: %d\r\n\r\n" % len(body)] +
             [p for i in range(0, len(body), step) for p in (body[i:i + step], Sleep(0.15))])
    rc, seen = stderr_on_a_terminal([SOCKIT, "fetch", "--compressed", hs.url("/slow"), "-o",
                                     str(tmp_path / "out")])
    assert rc == 0
    assert b"\r" in seen and b"/s" in seen, seen  # a bar was drawn
    assert b"%" not in seen, seen
    assert (tmp_path / "out").read_bytes() == TEXT
