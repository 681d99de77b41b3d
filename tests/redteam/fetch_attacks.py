#!/usr/bin/python3
"""Red-team pass on `sockit fetch`: attacks it as a hostile HTTP/HTTPS server
and as a hostile local user, and checks every outcome against docs/fetch.md:
the documented exit status, one "sockit: " line on failure, no sanitizer
report, no death by signal, no hang (each run has a time bound), FILE absent
or unchanged, no temporary file left, and no fd left open across redirects
and retries.

    /usr/bin/python3 tests/redteam/fetch_attacks.py --bin build/san/sockit [-k WORD] [-v]

Prints one line per failed attack and a summary (run, passed, failed);
exits 1 if any attack failed. Root is needed for the tmpfs attacks (full
disk, read-only folder) and the other-owner ones; without it they are
skipped and counted as such. The scripted server is
tests/integration/hostile_http.py; folder waits use fswait.py."""
import argparse
import datetime
import functools
import glob
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fswait import wait_in_folder  # noqa: E402
from hostile_http import HostileServer, Mark, Raw, Reset, Sleep  # noqa: E402

BIN = None
LOGDIR = None
ATTACKS = []  # (category, name, function)
OK_HEAD = b"HTTP/1.1 200 OK\r\n"
DATA = bytes(range(256)) * 400  # 102400 bytes
ETAG = '"v1"'


class Skip(Exception):
    pass


def attack(category, name=None):
    def reg(fn):
        ATTACKS.append((category, name or fn.__name__, fn))
        return fn
    return reg


def env():
    e = dict(os.environ)
    # Reports go to files as well as stderr: a run with stderr closed still
    # gets its sanitizer reports seen.
    e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + f":log_path={LOGDIR}/asan").lstrip(":")
    e["UBSAN_OPTIONS"] = (e.get("UBSAN_OPTIONS", "") +
                          f":print_stacktrace=1:log_path={LOGDIR}/ubsan").lstrip(":")
    return e


class Result:
    def __init__(self, rc, out, err, elapsed):
        self.returncode, self.stdout, self.stderr, self.elapsed = rc, out, err, elapsed


def fetch(*args, timeout=20, shell_redirs="", stdin=subprocess.DEVNULL, **kw):
    """Runs `sockit fetch ARGS` with a hard time bound; shell_redirs (for
    closed standard streams) runs it through /bin/sh."""
    start = time.monotonic()
    if shell_redirs:
        cmd = " ".join(shlex_quote(a) for a in [BIN, "fetch", *args]) + " " + shell_redirs
        p = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env(), **kw)
    else:
        p = subprocess.Popen([BIN, "fetch", *args], stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env(), **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError(f"hang: no exit within {timeout} s")
    return Result(p.returncode, out, err, time.monotonic() - start)


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


def sanitizer_reports():
    found = []
    for f in glob.glob(os.path.join(LOGDIR, "*")):
        with open(f, errors="replace") as fh:
            found.append(fh.read()[:2000])
        os.unlink(f)
    return found


def check(r, codes, words=None, max_s=None, quiet_ok=True):
    """The documented outcome: exit status in codes, a one-line message on
    failure, no signal death, no sanitizer report, within max_s."""
    codes = (codes,) if isinstance(codes, int) else tuple(codes)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode >= 0, f"killed by signal {-r.returncode}: {err[-800:]}"
    assert "Sanitizer" not in err and "runtime error" not in err, err[-3000:]
    assert r.returncode in codes, f"exit {r.returncode}, expected {codes}: {err[-600:]}"
    if r.returncode != 0:
        lines = [ln for ln in err.strip().splitlines()
                 if not ln.startswith("HTTP/") and ":" in ln and ln.startswith("sockit: ")]
        assert len(lines) >= 1, f"no 'sockit: ' message: {err[-600:]}"
        if words:
            assert words in lines[-1], f"{words!r} not in {lines[-1]!r}"
        other = [ln for ln in err.strip().splitlines() if not ln.startswith("sockit: ")]
        assert not other or not quiet_ok, f"stray stderr lines: {other[:3]}"
    if max_s is not None:
        assert r.elapsed <= max_s, f"took {r.elapsed:.1f} s, bound {max_s} s"


def listing(d):
    return sorted(os.listdir(d))


def no_temp(d):
    left = [n for n in os.listdir(d) if ".sockit-" in n]
    assert not left, f"temporary files left: {left}"


class Box:
    """A fresh folder and a hostile server for one attack."""

    def __init__(self, tls=None, close_notify=True, host="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="rt-", dir=WORK)
        self.srv = HostileServer(host=host, tls=tls, close_notify=close_notify)

    def close(self):
        self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def url(self, p="/f", host="127.0.0.1"):
        return self.srv.url(p, host)


def with_box(fn, **kw):
    @functools.wraps(fn)
    def run():
        b = Box(**kw)
        try:
            fn(b)
        finally:
            b.close()
    return run


def bad_response(b, response, codes, words=None, extra=(), max_s=15):
    """The server sends `response`; FILE existed: it must be unchanged and
    nothing else left in the folder."""
    b.srv.route("/f", response if callable(response) else (lambda req: response))
    out = b.path("f.out")
    with open(out, "wb") as f:
        f.write(b"untouched")
    r = fetch(b.url(), "-o", out, "-s", *extra, timeout=max_s + 10)
    check(r, codes, words, max_s)
    with open(out, "rb") as f:
        data = f.read()
    if r.returncode != 0:
        assert data == b"untouched", "FILE changed by a failed fetch"
    assert listing(b.dir) == ["f.out"], listing(b.dir)
    return r, data


# ---------------------------------------------------------------------------
# (a) hostile server: heads, framing, chunks, 1xx, redirects


def lines(*ls):
    return b"".join(x + b"\r\n" for x in ls)


HEAD_ATTACKS = [
    # name, response, codes, words
    ("status_nul", b"HTTP/1.1 200 OK\x00\r\nContent-Length: 0\r\n\r\n", 7, "bad status line"),
    ("status_leading_zero", b"HTTP/1.1 0200 OK\r\n\r\n", 7, "bad status line"),
    ("status_below_100", b"HTTP/1.1 099 Low\r\n\r\n", 7, "bad status line"),
    ("status_two_digit_minor", b"HTTP/1.10 200 OK\r\n\r\n", 7, "bad status line"),
    ("status_double_space", b"HTTP/1.1  200 OK\r\n\r\n", 7, "bad status line"),
    ("status_cr_cr_lf", b"HTTP/1.1 200 OK\r\r\n\r\n", 7, "bad status line"),
    ("status_only_lf_after", b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", 7, "bad header"),
    ("status_999", b"HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n", 6, "HTTP 999"),
    ("status_huge_reason", b"HTTP/1.1 200 " + b"R" * 70000 + b"\r\n\r\n", 7, "too large"),
    ("status_reason_ctl", b"HTTP/1.1 200 O\x01K\r\n\r\n", 7, "bad status line"),
    ("http09_body", b"<html>hello</html>", 7, "bad status line"),
    ("tls_alert_on_http", b"\x15\x03\x01\x00\x02\x02\x28", 7, "bad status line"),
    ("header_name_space", OK_HEAD + b"X Y: z\r\nContent-Length: 0\r\n\r\n", 7, "bad header"),
    ("header_space_before_colon", OK_HEAD + b"Content-Length : 0\r\n\r\n", 7, "bad header"),
    ("header_nul_in_value", OK_HEAD + b"X: a\x00b\r\nContent-Length: 0\r\n\r\n", 7,
     "bad header"),
    ("header_bare_cr_in_value", OK_HEAD + b"X: a\rb\r\nContent-Length: 0\r\n\r\n", 7,
     "bad header"),
    ("header_bare_cr_line_end", OK_HEAD + b"X: a\rContent-Length: 0\r\n\r\n", 7, "bad header"),
    ("header_del_in_value", OK_HEAD + b"X: a\x7fb\r\nContent-Length: 0\r\n\r\n", 7, "bad header"),
    ("header_empty_name", OK_HEAD + b": v\r\nContent-Length: 0\r\n\r\n", 7, "bad header"),
    ("header_obs_fold_tab", OK_HEAD + b"X: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", 7,
     "bad header"),
    ("header_first_line_folded", OK_HEAD + b" X: a\r\nContent-Length: 0\r\n\r\n", 7,
     "bad header"),
    ("header_huge_value", OK_HEAD + b"X: " + b"v" * 65530 + b"\r\n\r\n", 7, "too large"),
    ("header_101_fields", OK_HEAD + b"".join(b"A%d: b\r\n" % i for i in range(101)) +
     b"Content-Length: 0\r\n\r\n", 7, "too large"),
    ("header_many_tiny_then_never_ends", OK_HEAD + b"A: b\r\n" * 20000, 7, "too large"),
    ("cl_conflict_list", OK_HEAD + b"Content-Length: 5, 6\r\n\r\nhello!", 7, "Content-Length"),
    ("cl_conflict_fields", OK_HEAD + b"Content-Length: 6\r\nContent-Length: 5\r\n\r\nhello!", 7,
     "Content-Length"),
    ("cl_plus_sign", OK_HEAD + b"Content-Length: +5\r\n\r\nhello", 7, "Content-Length"),
    ("cl_hex", OK_HEAD + b"Content-Length: 0x5\r\n\r\nhello", 7, "Content-Length"),
    ("cl_19_digits", OK_HEAD + b"Content-Length: 1000000000000000000\r\n\r\nhello", 7,
     "Content-Length"),
    ("cl_overflow", OK_HEAD + b"Content-Length: 18446744073709551621\r\n\r\nhello", 7,
     "Content-Length"),
    ("cl_empty", OK_HEAD + b"Content-Length:\r\n\r\nhello", 7, "Content-Length"),
    ("cl_empty_list_element", OK_HEAD + b"Content-Length: 5,\r\n\r\nhello", 7, "Content-Length"),
    ("cl_then_te", OK_HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 7, "Content-Length"),
    ("te_then_cl", OK_HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 7, "Content-Length"),
    ("te_chunked_twice", OK_HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 7, "Transfer-Encoding"),
    ("te_list", OK_HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 7,
     "Transfer-Encoding"),
    ("te_identity", OK_HEAD + b"Transfer-Encoding: identity\r\n\r\nhello", 7,
     "Transfer-Encoding"),
    ("te_chunked_x", OK_HEAD + b"Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", 7,
     "Transfer-Encoding"),
    ("cl_body_longer", OK_HEAD + b"Content-Length: 2\r\n\r\nokEXTRA", 0, None),
    ("reset_inside_head", [OK_HEAD + b"Content-Le", Reset()], 7, "inside the response head"),
    ("reset_before_anything", [Reset()], 7, "empty reply"),
    ("reset_inside_length_body", [OK_HEAD + b"Content-Length: 100\r\n\r\nabc", Reset()], 8,
     "after 3 of 100"),
    ("reset_inside_chunked_body", [OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab",
                                   Reset()], 8, "no final chunk"),
    ("huge_length_then_close", OK_HEAD + b"Content-Length: 999999999999999999\r\n\r\nabc",
     (8, 10), None),
]

CHUNK_ATTACKS = [
    ("chunk_plus", b"+5\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_0x", b"0x5\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_leading_space", b" 5\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_negative", b"-5\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_16_digits", b"ffffffffffffffff\r\nhello\r\n", 7, "exceeds limits"),
    ("chunk_64bit_wrap", b"10000000000000005\r\nhello\r\n0\r\n\r\n", 7, "exceeds limits"),
    ("chunk_15_digits_truncated", b"fffffffffffffff\r\nhello", 8, "no final chunk"),
    ("chunk_ext_huge", b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n", 7, "exceeds limits"),
    ("chunk_ext_nul", b"5;a=\x00\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_ext_no_semicolon", b"5 x\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_size_bare_lf", b"5\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_data_bare_lf", b"5\r\nhello\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_data_no_crlf", b"5\r\nhelloX\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("chunk_leading_zeros_4097", b"0" * 4097 + b"5\r\nhello\r\n0\r\n\r\n", 7, "exceeds limits"),
    ("trailers_without_end", b"5\r\nhello\r\n0\r\nX: y\r\n", 8, "no final chunk"),
    ("trailers_101", b"5\r\nhello\r\n0\r\n" + b"T: v\r\n" * 101 + b"\r\n", 7, "exceeds limits"),
    ("trailers_70k", b"5\r\nhello\r\n0\r\n" + (b"T: " + b"v" * 4000 + b"\r\n") * 18 + b"\r\n",
     7, "exceeds limits"),
    ("trailer_no_colon", b"5\r\nhello\r\n0\r\nnocolon\r\n\r\n", 7, "malformed chunked"),
    ("trailer_folded", b"5\r\nhello\r\n0\r\nA: b\r\n c\r\n\r\n", 7, "malformed chunked"),
    ("trailer_line_5000", b"5\r\nhello\r\n0\r\nT: " + b"v" * 5000 + b"\r\n\r\n", 7,
     "exceeds limits"),
    ("one_byte_chunks", b"1\r\nx\r\n" * 60000 + b"0\r\n\r\n", 7, "exceeds limits"),
    ("empty_ext_chunks", b"0;" + b"x" * 4000 + b"\r\n\r\n", 0, None),
]


def _register_table():
    for name, resp, codes, words in HEAD_ATTACKS:
        def fn(b, resp=resp, codes=codes, words=words):
            bad_response(b, resp, codes, words)
        attack("server-head", name)(with_box(fn))
    for name, body, codes, words in CHUNK_ATTACKS:
        resp = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body

        def fn(b, resp=resp, codes=codes, words=words):
            bad_response(b, resp, codes, words)
        attack("server-chunked", name)(with_box(fn))


_register_table()


@attack("server-head")
@with_box
def valid_edges_are_accepted(b):
    """Limits are not off by one: 100 fields, an empty reason, '5, 5',
    'Chunked', 16 interim responses are all legal."""
    cases = [
        OK_HEAD + b"".join(b"A%d: b\r\n" % i for i in range(99)) + b"Content-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
        OK_HEAD + b"Content-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
        OK_HEAD + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" * 16 + OK_HEAD + b"Content-Length: 2\r\n\r\nok",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK_HEAD + b"Content-Length: 2\r\n\r\nok",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;a=b;c\r\nok\r\n0\r\nT: v\r\n\r\n",
    ]
    for i, resp in enumerate(cases):
        out = b.path(f"ok{i}")
        b.srv.route(f"/ok{i}", lambda req, resp=resp: resp)
        r = fetch(b.url(f"/ok{i}"), "-o", out, "-s")
        check(r, 0)
        with open(out, "rb") as f:
            assert f.read() == b"ok", f"case {i}"


@attack("server-1xx")
@with_box
def interim_17(b):
    bad_response(b, b"HTTP/1.1 100 Continue\r\n\r\n" * 17 + OK_HEAD + b"Content-Length: 0\r\n\r\n",
                 7, "interim")


@attack("server-1xx")
@with_box
def interim_endless_stream(b):
    def gen(req):
        while True:
            yield b"HTTP/1.1 102 Processing\r\n\r\n"
    bad_response(b, gen, 7, "interim")


@attack("server-1xx")
@with_box
def interim_with_huge_heads(b):
    h = b"HTTP/1.1 103 Early Hints\r\n" + b"Link: <" + b"a" * 60000 + b">\r\n\r\n"
    bad_response(b, h * 17, 7, "interim")


@attack("server-1xx")
@with_box
def interim_with_body(b):
    bad_response(b, b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhello", 7,
                 "bad status line")


@attack("server-1xx")
@with_box
def switching_protocols_after_interim(b):
    bad_response(b, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", 7, "101")


# -- redirects ----------------------------------------------------------------


def redirect(loc):
    return b"HTTP/1.1 302 Found\r\nLocation: " + loc + b"\r\nContent-Length: 0\r\n\r\n"


REDIRECTS = [
    ("to_ftp", b"ftp://127.0.0.1/x", 7, "unsupported scheme"),
    ("to_file", b"file:///etc/passwd", 7, "unsupported scheme"),
    ("to_javascript", b"javascript:alert(1)", 7, "unsupported scheme"),
    ("to_data", b"data:text/plain,hi", 7, "unsupported scheme"),
    ("to_port_0", b"http://127.0.0.1:0/", 7, "invalid URL"),
    ("to_port_99999", b"http://127.0.0.1:99999/", 7, "invalid URL"),
    ("to_userinfo", b"http://user:pw@127.0.0.1/", 7, "invalid URL"),
    ("to_bad_ipv6", b"http://[::1/", 7, "invalid URL"),
    ("to_bad_pct", b"/a%zz", 7, "invalid URL"),
    ("to_empty_host", b"http:///x", 7, "invalid URL"),
    ("to_closed_port", b"http://127.0.0.1:1/", 4, "cannot connect"),
    ("location_ctl", b"/a\x01b", 7, "bad header"),
    ("location_nul", b"/a\x00b", 7, "bad header"),
    ("location_too_long", b"/" + b"a" * 9000, 7, "too long"),
    ("location_host_too_long", b"http://" + b"a" * 300 + b".example/", 7, None),
    ("location_obs_text_404", b"/\xff\xfe \"<>", 6, "HTTP 404"),
    ("location_expands_past_target_max", b"/" + b"\xff" * 2800, 7, "invalid URL"),
    ("location_just_under_target_max", b"/" + b"\xff" * 2700, 6, "HTTP 404"),
    ("location_dot_segments", b"/" + b"../" * 2500 + b"x", 6, "HTTP 404"),
    ("location_relative_dots", b"a/./b/../../" * 600 + b"x", 6, "HTTP 404"),
    ("location_ipv6_zone", b"http://[fe80::1%25eth0]/", 7, None),
    ("location_query_only", b"?" + b"q" * 8000, (6, 7), None),
    ("location_fragment_only", b"#frag", 7, "too many redirects"),
]


def _register_redirects():
    for name, loc, codes, words in REDIRECTS:
        def fn(b, loc=loc, codes=codes, words=words):
            bad_response(b, redirect(loc), codes, words)
        attack("server-redirect", name)(with_box(fn))


_register_redirects()


@attack("server-redirect")
@with_box
def redirect_self_loop(b):
    bad_response(b, redirect(b"/f"), 7, "too many redirects")


@attack("server-redirect")
@with_box
def redirect_empty_location_loops(b):
    bad_response(b, redirect(b""), 7, None)


@attack("server-redirect")
@with_box
def redirect_chain_of_ten_then_eleven(b):
    for i in range(12):
        b.srv.route(f"/r{i}", lambda req, i=i: redirect(b"/r%d" % (i + 1)))
    b.srv.route("/r10", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
    r = fetch(b.url("/r0"), "-o", b.path("ok"), "-s")
    check(r, 0)
    r = fetch(b.url("/r0"), "-o", b.path("ok2"), "-s", "--max-redirs", "9")
    check(r, 7, "too many redirects")
    assert listing(b.dir) == ["ok"]


@attack("server-redirect")
@with_box
def redirect_to_other_port_drops_credentials(b):
    other = HostileServer()
    try:
        other.route("/x", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
        b.srv.route("/f", lambda req: redirect(other.url("/x").encode()))
        r = fetch(b.url(), "-o", b.path("o"), "-s", "-H", "Cookie: secret=1",
                  "-H", "Authorization: Bearer t")
        check(r, 0)
        h = other.requests[0].headers
        assert "cookie" not in h and "authorization" not in h, h
    finally:
        other.stop()


@attack("server-redirect")
@with_box
def redirect_to_https_on_plain_port(b):
    b.srv.route("/x", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
    bad_response(b, redirect(b"https://127.0.0.1:%d/x" % b.srv.port), 5, None)


# -- Retry-After, slowloris ----------------------------------------------------


def unavailable(retry_after):
    return (b"HTTP/1.1 503 Busy\r\nRetry-After: " + retry_after +
            b"\r\nContent-Length: 0\r\n\r\n")


@attack("server-retry")
@with_box
def retry_after_far_date_with_max_time(b):
    r, _ = bad_response(b, unavailable(b"Fri, 31 Dec 9999 23:59:59 GMT"), 6, "HTTP 503",
                        extra=("--retry", "3", "--max-time", "3"), max_s=4)
    assert len(b.srv.requests) == 1


@attack("server-retry")
@with_box
def retry_after_huge_number_with_max_time(b):
    bad_response(b, unavailable(b"999999999999999999999999"), 6, "HTTP 503",
                 extra=("--retry", "2", "--retry-delay", "0.1", "--max-time", "5"), max_s=5)


@attack("server-retry")
@with_box
def retry_after_negative_and_garbage(b):
    for v in (b"-5", b"1e3", b"0x10", b"Thu, 01 Jan 1970 00:00:00 GMT", b"\xff\xfe"):
        b.srv.requests.clear()
        bad_response(b, unavailable(v), 6, "HTTP 503",
                     extra=("--retry", "1", "--retry-delay", "0.05"), max_s=5)
        assert len(b.srv.requests) == 2, (v, len(b.srv.requests))


@attack("server-retry")
@with_box
def retry_after_zero_many_retries(b):
    bad_response(b, unavailable(b"0"), 6, "HTTP 503", extra=("--retry", "40"), max_s=15)
    assert len(b.srv.requests) == 41


@attack("server-slow")
@with_box
def slowloris_head_bounded_by_max_time(b):
    def gen(req):
        yield b"HTTP/1.1 200 OK\r\n"
        while True:
            yield b"X"
            yield Sleep(0.2)
    bad_response(b, gen, 9, "--max-time", extra=("--max-time", "2", "--idle-timeout", "1"),
                 max_s=4)


@attack("server-slow")
@with_box
def slowloris_body_bounded_by_max_time(b):
    def gen(req):
        yield OK_HEAD + b"Content-Length: 1000\r\n\r\n"
        while True:
            yield b"x"
            yield Sleep(0.2)
    bad_response(b, gen, 9, "--max-time", extra=("--max-time", "2", "--idle-timeout", "1"),
                 max_s=4)


@attack("server-slow")
@with_box
def slowloris_trailers_bounded_by_max_time(b):
    def gen(req):
        yield OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\n"
        for _ in range(1000):
            yield b"T: v\r\n"
            yield Sleep(0.2)
    bad_response(b, gen, 9, "--max-time", extra=("--max-time", "2"), max_s=4)


@attack("server-slow")
@with_box
def stall_mid_body_idle_timeout(b):
    bad_response(b, [OK_HEAD + b"Content-Length: 10\r\n\r\nab", Sleep(30)], 9,
                 "--idle-timeout", extra=("--idle-timeout", "1"), max_s=4)


@attack("server-slow")
@with_box
def endless_close_delimited_body_max_time(b):
    def gen(req):
        yield OK_HEAD + b"\r\n"
        while True:
            yield b"z" * 65536
    # bound: 2 s plus unlinking gigabytes of temporary file on a loaded machine
    bad_response(b, gen, 9, "--max-time", extra=("--max-time", "2"), max_s=8)


@attack("server-slow")
@with_box
def redirect_chain_with_stalls_max_time(b):
    for i in range(12):
        b.srv.route(f"/r{i}", lambda req, i=i: [Sleep(0.4), redirect(b"/r%d" % (i + 1))])
    r = fetch(b.url("/r0"), "-o", b.path("o"), "-s", "--max-time", "2")
    check(r, 9, "--max-time", 4)
    assert listing(b.dir) == []


# -- -C: Content-Range games -----------------------------------------------------


def full_reply(req):
    return (OK_HEAD + b"ETag: %s\r\nContent-Length: %d\r\n\r\n" % (ETAG.encode(), len(DATA)) +
            DATA)


def first_cut_run(b, cut=40000):
    b.srv.route("/f", lambda req: (OK_HEAD + b"ETag: %s\r\nContent-Length: %d\r\n\r\n"
                                   % (ETAG.encode(), len(DATA)) + DATA[:cut]))
    r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s")
    check(r, 8)
    assert listing(b.dir) == ["f.bin.part", "f.bin.part.meta"], listing(b.dir)


def range_game(reply_to_range, want=DATA):
    """After an interrupted first run, every request with Range gets
    reply_to_range; plain requests get the full file: the outcome must be
    the right file (a restart from zero) or a failure that saved nothing."""
    def fn(b):
        first_cut_run(b)

        def h(req):
            if "range" in req.headers:
                return reply_to_range(req)
            return full_reply(req)
        b.srv.route("/f", h)
        b.srv.route("/g", full_reply)
        r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s")
        check(r, (0, 7, 8))
        if r.returncode == 0:
            with open(b.path("f.bin"), "rb") as f:
                assert f.read() == want, "a mixed or wrong file committed"
            assert listing(b.dir) == ["f.bin"], listing(b.dir)
        else:
            assert not os.path.exists(b.path("f.bin"))
            no_temp(b.dir)
    return fn


def r206(cr, body, etag=ETAG, cl=None):
    cl = len(body) if cl is None else cl
    return (b"HTTP/1.1 206 Partial Content\r\nETag: %s\r\nContent-Range: %s\r\n"
            b"Content-Length: %d\r\n\r\n" % (etag.encode(), cr, cl) + body)


RANGE_GAMES = [
    ("cl_shorter_than_range", lambda req: r206(b"bytes 40000-102399/102400", DATA[40000:40100],
                                                cl=100)),
    ("range_from_zero", lambda req: r206(b"bytes 0-102399/102400", DATA)),
    ("range_total_star_short", lambda req: r206(b"bytes 40000-50000/*", DATA[40000:50001])),
    ("range_other_total", lambda req: r206(b"bytes 40000-199999/200000", b"q" * 160000)),
    ("range_end_past_total", lambda req: r206(b"bytes 40000-102400/102400", DATA[40000:])),
    ("range_huge_numbers", lambda req: r206(b"bytes 999999999999999990-999999999999999999/"
                                            b"999999999999999999", b"x" * 10)),
    ("range_19_digits", lambda req: r206(b"bytes 40000-102399/1000000000000000000",
                                         DATA[40000:])),
    ("range_negative", lambda req: r206(b"bytes -1-102399/102400", DATA[40000:])),
    ("range_other_unit", lambda req: r206(b"items 40000-102399/102400", DATA[40000:])),
    ("range_missing", lambda req: (b"HTTP/1.1 206 Partial\r\nETag: %s\r\nContent-Length: 5"
                                   b"\r\n\r\nhello" % ETAG.encode())),
    ("range_weak_etag", lambda req: r206(b"bytes 40000-102399/102400", DATA[40000:],
                                         etag='W/"v1"')),
    ("range_no_etag", lambda req: (b"HTTP/1.1 206 P\r\nContent-Range: bytes 40000-102399/102400"
                                   b"\r\nContent-Length: 62400\r\n\r\n" + DATA[40000:])),
    ("range_two_content_ranges", lambda req: (
        b"HTTP/1.1 206 P\r\nETag: \"v1\"\r\nContent-Range: bytes 40000-102399/102400\r\n"
        b"Content-Range: bytes 0-10/102400\r\nContent-Length: 62400\r\n\r\n" + DATA[40000:])),
    ("range_chunked_longer", lambda req: (
        b"HTTP/1.1 206 P\r\nETag: \"v1\"\r\nContent-Range: bytes 40000-102399/102400\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % 70000 + b"y" * 70000 + b"\r\n0\r\n\r\n")),
    ("range_close_delimited_shorter", lambda req: (
        b"HTTP/1.1 206 P\r\nETag: \"v1\"\r\nContent-Range: bytes 40000-102399/102400\r\n\r\n"
        + DATA[40000:50000])),
    ("416_claims_part_complete", lambda req: (
        b"HTTP/1.1 416 R\r\nContent-Range: bytes */40000\r\nContent-Length: 0\r\n\r\n")),
    ("416_star_star", lambda req: (
        b"HTTP/1.1 416 R\r\nContent-Range: bytes */*\r\nContent-Length: 0\r\n\r\n")),
    ("200_shorter_than_before", lambda req: (OK_HEAD + b"ETag: \"v1\"\r\nContent-Length: 10"
                                             b"\r\n\r\n0123456789"), b"0123456789"),
    ("redirect_on_resume", lambda req: redirect(b"/g")),
    ("multipart_byteranges", lambda req: (
        b"HTTP/1.1 206 P\r\nETag: \"v1\"\r\nContent-Type: multipart/byteranges; boundary=B\r\n"
        b"Content-Length: 20\r\n\r\n--B\r\n--B--\r\n\r\n\r\n")),
]


def _register_range_games():
    for name, reply, *want in RANGE_GAMES:
        attack("server-resume", name)(with_box(range_game(reply, *want)))


_register_range_games()


@attack("server-resume")
@with_box
def meta_validator_injection(b):
    """An ETag with bytes that could forge meta lines or request headers
    is not stored or sent back as something else."""
    b.srv.route("/f", lambda req: (OK_HEAD + b"ETag: \"a\r\nX: y\"\r\nContent-Length: 5\r\n\r\nhe"))
    r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s")
    check(r, 8)  # the ETag is '"a': the CRLF ended it
    evil = '"a" \tsize 1'
    b.srv.route("/f", lambda req: (OK_HEAD + b"ETag: %s\r\nContent-Length: 5\r\n\r\nhe"
                                   % evil.encode()))
    r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s")
    check(r, 8)
    b.srv.requests.clear()
    b.srv.route("/f", full_reply)
    r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s")
    check(r, 0)
    for q in b.srv.requests:
        assert b"\r\nX: y" not in q.raw
    with open(b.path("f.bin"), "rb") as f:
        assert f.read() == DATA


# -- TLS -------------------------------------------------------------------------

CERTS = {}


def certs():
    if not CERTS:
        from nginx_util import make_certs
        d = tempfile.mkdtemp(prefix="rt-certs-", dir=WORK)
        CERTS.update(make_certs(d))
        CERTS["dir"] = d
        CERTS["expired_cert"], CERTS["expired_key"] = expired_cert(d)
    return CERTS


def expired_cert(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    with open(os.path.join(d, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(d, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, "expired")])).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(
            __import__("ipaddress").ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256()))
    cp, kp = os.path.join(d, "expired.pem"), os.path.join(d, "expired.key")
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cp, kp


def tls_ctx(cert="cert", key="key"):
    c = certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(c[cert], c[key])
    return ctx


def tls_attack(name, cert, key, host, codes, words, resp=None, close_notify=True, cacert=True,
               extra=()):
    def fn():
        b = Box(tls=tls_ctx(cert, key), close_notify=close_notify)
        try:
            b.srv.route("/f", lambda req: resp if resp is not None else
                        OK_HEAD + b"Content-Length: 2\r\n\r\nok")
            out = b.path("f.out")
            with open(out, "wb") as f:
                f.write(b"untouched")
            args = [b.url("/f", host), "-o", out, "-s", *extra]
            if cacert:
                args += ["--cacert", certs()["ca"]]
            r = fetch(*args)
            check(r, codes, words, 10)
            with open(out, "rb") as f:
                got = f.read()
            assert r.returncode == 0 or got == b"untouched"
            assert listing(b.dir) == ["f.out"], listing(b.dir)
        finally:
            b.close()
    attack("tls", name)(fn)


tls_attack("self_signed_without_cacert", "cert", "key", "127.0.0.1", 5, None, cacert=False)
tls_attack("wrong_host_name", "wrong_cert", "wrong_key", "127.0.0.1", 5, None)
tls_attack("wrong_host_by_name", "wrong_cert", "wrong_key", "localhost", 5, None)
tls_attack("expired", "expired_cert", "expired_key", "127.0.0.1", 5, None)
tls_attack("good_chain_ok", "cert", "key", "127.0.0.1", 0, None)
tls_attack("truncated_length_no_close_notify", "cert", "key", "127.0.0.1", 8, None,
           resp=OK_HEAD + b"Content-Length: 100\r\n\r\nabc", close_notify=False)
tls_attack("close_delimited_no_close_notify", "cert", "key", "127.0.0.1", 8, "close_notify",
           resp=OK_HEAD + b"\r\nabc", close_notify=False)
tls_attack("chunked_no_final_no_close_notify", "cert", "key", "127.0.0.1", 8, None,
           resp=OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", close_notify=False)
tls_attack("corrupt_record_mid_body", "cert", "key", "127.0.0.1", 5, None,
           resp=[OK_HEAD + b"Content-Length: 100\r\n\r\nabc",
                 Raw(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)])
tls_attack("plaintext_inside_tls", "cert", "key", "127.0.0.1", 5, None,
           resp=[Raw(OK_HEAD + b"Content-Length: 2\r\n\r\nok")])
tls_attack("insecure_expired_is_allowed", "expired_cert", "expired_key", "127.0.0.1", 0, None,
           cacert=False, extra=("-k",))


@attack("tls")
def tls_downgrade_redirect():
    b = Box(tls=tls_ctx())
    plain = HostileServer()
    try:
        plain.route("/x", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
        b.srv.route("/f", lambda req: redirect(plain.url("/x").encode()))
        r = fetch(b.url(), "-o", b.path("o"), "-s", "--cacert", certs()["ca"])
        check(r, 7, "refusing redirect from https to http")
        assert plain.requests == [] and listing(b.dir) == []
    finally:
        plain.stop()
        b.close()


@attack("tls")
def tls_garbage_handshake():
    for raw in (b"\x16\x03\x01\xff\xff" + b"\x00" * 100, b"HTTP/1.1 200 OK\r\n\r\n",
                b"\x15\x03\x03\x00\x02\x02\x50"):
        srv = HostileServer(raw=raw)
        d = tempfile.mkdtemp(prefix="rt-", dir=WORK)
        try:
            r = fetch(f"https://127.0.0.1:{srv.port}/f", "-o", os.path.join(d, "o"), "-s",
                      "--connect-timeout", "3")
            check(r, 5, None, 5)
            assert os.listdir(d) == []
        finally:
            srv.stop()
            shutil.rmtree(d)


@attack("tls")
def tls_handshake_dribble_bounded():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    stop = threading.Event()

    def serve():
        lsock.settimeout(5)
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        c.recv(65536)
        rec = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000
        for byte in rec:
            if stop.wait(0.1):
                break
            try:
                c.send(bytes([byte]))
            except OSError:
                break
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = fetch(f"https://127.0.0.1:{lsock.getsockname()[1]}/f", "-o", os.path.join(WORK, "x"),
                  "-s", "--connect-timeout", "2", "--idle-timeout", "1")
        check(r, 9, None, 4)
    finally:
        stop.set()
        lsock.close()
        t.join(5)


def s_server_attack(proto, command, marker, codes, want=None):
    """openssl s_server (its stdin commands: R renegotiates, k / K update
    keys) sends half a body, runs `command`, then the rest."""
    def fn():
        c = certs()
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        port = lsock.getsockname()[1]
        lsock.close()
        srv = subprocess.Popen(["stdbuf", "-o0", "openssl", "s_server", "-accept", str(port), "-cert", c["cert"],
                                "-key", c["key"], proto, "-crlf"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seen, cond = [], threading.Condition()

        def reader():
            for line in srv.stdout:
                with cond:
                    seen.append(line)
                    cond.notify_all()

        def wait_for(text):
            with cond:
                assert cond.wait_for(lambda: any(text in ln for ln in seen), 10), text
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        d = tempfile.mkdtemp(prefix="rt-", dir=WORK)
        out = os.path.join(d, "o")
        try:
            wait_for(b"ACCEPT")
            p = subprocess.Popen([BIN, "fetch", f"https://127.0.0.1:{port}/f", "--cacert",
                                  c["ca"], "-o", out, "-s", "--max-time", "8"],
                                 stderr=subprocess.PIPE, env=env())
            wait_for(b"GET /f")
            try:
                srv.stdin.write(b"HTTP/1.1 200 OK\nContent-Length: 12\n\nhello\n")
                srv.stdin.flush()
                # one read of s_server's stdin per command: wait for each step
                wait_in_folder(d, lambda: any(os.path.getsize(os.path.join(d, n)) >= 7
                                              for n in os.listdir(d)), 10, "half the body")
                srv.stdin.write(command + b"\n")
                srv.stdin.flush()
                wait_for(marker)
                srv.stdin.write(b"abc\n")
                srv.stdin.flush()
            except BrokenPipeError:
                pass
            err = p.communicate(timeout=15)[1]
            check(Result(p.returncode, b"", err, 0), codes)
            if p.returncode == 0:
                with open(out, "rb") as f:
                    assert f.read() == want
            else:
                assert os.listdir(d) == []
        finally:
            srv.kill()
            srv.communicate()
            t.join(5)
            shutil.rmtree(d)
    return fn


# Renegotiation is refused (SSL_OP_NO_RENEGOTIATION): the server then fails,
# unless the whole body got through before it read the refusal.
attack("tls", "renegotiation_refused")(s_server_attack("-tls1_2", b"R", b"SSL_do_handshake",
                                                       (0, 5), b"hello\r\nabc\r\n"))
attack("tls", "key_update")(s_server_attack("-tls1_3", b"k", b"SSL_do_handshake", 0,
                                            b"hello\r\nabc\r\n"))
attack("tls", "key_update_requested")(s_server_attack("-tls1_3", b"K", b"SSL_do_handshake", 0,
                                                      b"hello\r\nabc\r\n"))


# ---------------------------------------------------------------------------
# (b) hostile local user


def ok_route(b, path="/f", body=b"hello"):
    b.srv.route(path, lambda req: OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)


@attack("local-names")
@with_box
def default_name_symlink_refused(b):
    ok_route(b)
    victim = b.path("victim")
    with open(victim, "w") as f:
        f.write("precious")
    os.symlink(victim, b.path("f"))
    r = fetch(b.url(), "-s", cwd=b.dir)
    check(r, 10, "exists")
    assert open(victim).read() == "precious" and os.path.islink(b.path("f"))
    no_temp(b.dir)


@attack("local-names")
@with_box
def default_name_dangling_symlink_refused(b):
    ok_route(b)
    os.symlink(b.path("nowhere"), b.path("f"))
    r = fetch(b.url(), "-s", cwd=b.dir)
    check(r, 10, "exists")
    assert not os.path.exists(b.path("nowhere"))


@attack("local-names")
@with_box
def default_name_fifo_and_dir_refused(b):
    ok_route(b)
    os.mkfifo(b.path("f"))
    check(fetch(b.url(), "-s", cwd=b.dir, timeout=5), 10, "exists")
    os.unlink(b.path("f"))
    os.mkdir(b.path("f"))
    check(fetch(b.url(), "-s", cwd=b.dir, timeout=5), 10, "exists")
    assert listing(b.dir) == ["f"]


@attack("local-race")
@with_box
def default_name_planted_during_download(b):
    victim = b.path("victim")
    with open(victim, "w") as f:
        f.write("precious")

    def h(req):
        os.symlink(victim, b.path("f"))  # after sockit's check, before its rename
        return OK_HEAD + b"Content-Length: 5\r\n\r\nhello"
    b.srv.route("/f", h)
    r = fetch(b.url(), "-s", cwd=b.dir)
    check(r, 10, "appeared during the download")
    assert open(victim).read() == "precious" and os.path.islink(b.path("f"))
    no_temp(b.dir)


@attack("local-race")
@with_box
def output_symlink_planted_during_download_gives_no_mode(b):
    """A link planted at -o FILE after the output was planned is replaced;
    the file it points to lends neither its bytes nor its mode bits."""
    evil = b.path("evil")
    with open(evil, "w") as f:
        f.write("attacker's")
    os.chmod(evil, 0o777)

    def h(req):
        os.symlink(evil, b.path("out"))
        return OK_HEAD + b"Content-Length: 5\r\n\r\nhello"
    b.srv.route("/f", h)
    r = fetch(b.url(), "-o", b.path("out"), "-s")
    check(r, 0)
    st = os.lstat(b.path("out"))
    assert stat.S_ISREG(st.st_mode) and open(b.path("out")).read() == "hello"
    assert open(evil).read() == "attacker's"
    assert st.st_mode & 0o022 == 0, f"mode {oct(st.st_mode)} taken from the planted link"


@attack("local-race")
@with_box
def output_swapped_to_fifo_during_download(b):
    def h(req):
        os.mkfifo(b.path("out"))
        return OK_HEAD + b"Content-Length: 5\r\n\r\nhello"
    b.srv.route("/f", h)
    r = fetch(b.url(), "-o", b.path("out"), "-s", "--max-time", "3", timeout=8)
    check(r, (0, 10), None, 5)
    no_temp(b.dir)


@attack("local-race")
@with_box
def special_output_swapped_to_regular(b):
    os.mkfifo(b.path("out"))

    def h(req):
        os.unlink(b.path("out"))
        with open(b.path("out"), "w") as f:
            f.write("precious")
        return OK_HEAD + b"Content-Length: 5\r\n\r\nhello"
    b.srv.route("/f", h)
    r = fetch(b.url(), "-o", b.path("out"), "-s", timeout=8)
    check(r, 10, None, 5)
    assert open(b.path("out")).read() == "precious"


@attack("local-names")
@with_box
def output_hard_link_is_replaced_not_written(b):
    ok_route(b)
    with open(b.path("victim"), "w") as f:
        f.write("precious")
    os.link(b.path("victim"), b.path("out"))
    check(fetch(b.url(), "-o", b.path("out"), "-s"), 0)
    assert open(b.path("victim")).read() == "precious"
    assert open(b.path("out")).read() == "hello"


@attack("local-names")
@with_box
def output_fifo_without_reader_bounded(b):
    """A FIFO at -o is written in place: with no reader the wait must still
    end at --max-time (and at a signal)."""
    ok_route(b)
    os.mkfifo(b.path("out"))
    r = fetch(b.url(), "-o", b.path("out"), "-s", "--max-time", "2", timeout=8)
    check(r, 9, None, 4)
    assert listing(b.dir) == ["out"]


@attack("local-names")
@with_box
def output_fifo_with_reader(b):
    ok_route(b)
    os.mkfifo(b.path("out"))
    got = []
    t = threading.Thread(target=lambda: got.append(open(b.path("out"), "rb").read()))
    t.start()
    r = fetch(b.url(), "-o", b.path("out"), "-s", "--max-time", "5", timeout=10)
    if r.returncode != 0:  # unblock the reader
        os.close(os.open(b.path("out"), os.O_WRONLY | os.O_NONBLOCK))
    t.join(5)
    check(r, 0)
    assert got == [b"hello"]


@attack("local-names")
@with_box
def output_fifo_of_another_user_in_shared_folder(b):
    if os.geteuid() != 0:
        raise Skip("needs root")
    ok_route(b)
    os.chmod(b.dir, 0o1777)
    fifo = b.path("out")
    os.mkfifo(fifo)
    os.chown(fifo, 12345, 12345)
    got = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    r = fetch(b.url(), "-o", fifo, "-s", "--max-time", "5", timeout=10)
    if t.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    t.join(5)
    check(r, 10, "refusing")
    assert got == [b""], got


@attack("local-names")
@with_box
def output_directory(b):
    ok_route(b)
    os.mkdir(b.path("out"))
    check(fetch(b.url(), "-o", b.path("out"), "-s"), 2, "folder")
    check(fetch(b.url(), "-o", b.path("out") + "/", "-s"), (2, 10))
    assert listing(b.dir) == ["out"] and os.listdir(b.path("out")) == []


@attack("local-names")
@with_box
def output_symlink_loop(b):
    ok_route(b)
    os.symlink("b", b.path("a"))
    os.symlink("a", b.path("b"))
    check(fetch(b.url(), "-o", b.path("a"), "-s"), 10, None)
    assert listing(b.dir) == ["a", "b"]


@attack("local-names")
@with_box
def output_missing_folder(b):
    ok_route(b)
    check(fetch(b.url(), "-o", b.path("no/such/out"), "-s"), 10, None)


PART_PLANTS = {
    "symlink": lambda b, p: os.symlink(b.path("victim"), p),
    "dangling_symlink": lambda b, p: os.symlink(b.path("nowhere"), p),
    "fifo": lambda b, p: os.mkfifo(p),
    "directory": lambda b, p: os.mkdir(p),
    "hard_link": lambda b, p: os.link(b.path("victim"), p),
}


def part_plant(kind, which):
    def fn(b):
        b.srv.route("/f", full_reply)
        with open(b.path("victim"), "w") as f:
            f.write("precious")
        target = b.path("f.bin" + which)
        PART_PLANTS[kind](b, target)
        before = listing(b.dir)
        r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s", timeout=10)
        assert open(b.path("victim")).read() == "precious"
        assert not os.path.exists(b.path("nowhere"))
        no_temp(b.dir)
        if which == ".part":
            check(r, 10, None, 5)
            assert listing(b.dir) == before
        else:  # the meta file: replaced (a link, a FIFO) or refused (a folder)
            check(r, (0, 10), None, 5)
            if r.returncode == 0:
                with open(b.path("f.bin"), "rb") as f:
                    assert f.read() == DATA
            else:
                assert not os.path.exists(b.path("f.bin"))
    return fn


for _kind in PART_PLANTS:
    for _which in (".part", ".part.meta"):
        attack("local-resume", f"plant_{_kind}_at{_which.replace('.', '_')}")(
            with_box(part_plant(_kind, _which)))


@attack("local-resume")
@with_box
def part_of_other_user_refused(b):
    if os.geteuid() != 0:
        raise Skip("needs root")
    b.srv.route("/f", full_reply)
    with open(b.path("f.bin.part"), "wb") as f:
        f.write(b"theirs")
    os.chown(b.path("f.bin.part"), 12345, 12345)
    check(fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s"), 10, "refusing")
    assert open(b.path("f.bin.part"), "rb").read() == b"theirs"


@attack("local-resume")
@with_box
def meta_of_other_user_ignored(b):
    if os.geteuid() != 0:
        raise Skip("needs root")
    first_cut_run(b)
    os.chown(b.path("f.bin.part.meta"), 12345, 12345)
    b.srv.requests.clear()
    b.srv.route("/f", full_reply)
    check(fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s"), 0)
    assert "range" not in b.srv.requests[0].headers
    assert open(b.path("f.bin"), "rb").read() == DATA


@attack("local-resume")
@with_box
def concurrent_resume_refused(b):
    started = threading.Event()

    def h(req):
        yield OK_HEAD + b"ETag: \"v1\"\r\nContent-Length: %d\r\n\r\n" % len(DATA)
        yield DATA[:1000]
        yield Mark(started)
        yield Sleep(30)
    b.srv.route("/f", h)
    p = subprocess.Popen([BIN, "fetch", b.url(), "-o", b.path("f.bin"), "-C", "-s"],
                         stderr=subprocess.PIPE, env=env())
    try:
        assert started.wait(10)
        r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s")
        check(r, 10, "in use")
    finally:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=10)[1]
    assert p.returncode == 1, (p.returncode, err)
    assert not os.path.exists(b.path("f.bin"))


# -- folders and disks ------------------------------------------------------------


class Mount:
    def __init__(self, opts):
        if os.geteuid() != 0:
            raise Skip("needs root")
        self.dir = tempfile.mkdtemp(prefix="rt-mnt-", dir=WORK)
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", self.dir], check=True)

    def close(self):
        subprocess.run(["umount", self.dir], check=False)
        os.rmdir(self.dir)


def on_mount(opts, fn):
    @functools.wraps(fn)
    def run(b):
        m = Mount(opts)
        try:
            fn(b, m.dir)
        finally:
            m.close()
    return with_box(run)


def big_routes(b, size=1 << 20):
    body = b"B" * size
    b.srv.route("/len", lambda req: OK_HEAD + b"ETag: \"v\"\r\nContent-Length: %d\r\n\r\n"
                % size + body)
    b.srv.route("/chunked", lambda req: OK_HEAD + b"ETag: \"v\"\r\nTransfer-Encoding: chunked"
                b"\r\n\r\n%x\r\n" % size + body + b"\r\n0\r\n\r\n")
    b.srv.route("/close", lambda req: OK_HEAD + b"ETag: \"v\"\r\n\r\n" + body)


def _full_disk(b, d):
    big_routes(b)
    with open(os.path.join(d, "old"), "wb") as f:
        f.write(b"old")
    for path, words in (("/len", "no room"), ("/chunked", "No space"), ("/close", "No space")):
        for extra in ((), ("-C",), ("--sync",)):
            r = fetch(b.url(path), "-o", os.path.join(d, "old"), "-s", *extra)
            check(r, 10, words if not extra or path != "/len" else None)
            assert open(os.path.join(d, "old"), "rb").read() == b"old"
            left = [n for n in os.listdir(d) if n != "old"]
            assert all(n.startswith("old.part") for n in left) and (extra or not left), left
            for n in left:
                os.unlink(os.path.join(d, n))


attack("local-disk", "full_disk_tmpfs_64k")(on_mount("size=64k", _full_disk))


def _full_disk_meta(b, d):
    """The disk fills up exactly when the meta file is written."""
    big_routes(b, 1000)
    fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    r = fetch(b.url("/chunked"), "-o", os.path.join(d, "f"), "-C", "-s")
    check(r, 10, None)
    assert sorted(os.listdir(d)) == ["filler"], os.listdir(d)


attack("local-disk", "full_disk_at_meta")(on_mount("size=64k", _full_disk_meta))


def _read_only(b, d):
    ok_route(b)
    check(fetch(b.url(), "-o", os.path.join(d, "f"), "-s"), 10, "Read-only")
    check(fetch(b.url(), "-o", os.path.join(d, "f"), "-C", "-s"), 10, "Read-only")
    check(fetch(b.url(), "-s", cwd=d), 10, "Read-only")
    assert os.listdir(d) == []


attack("local-disk", "read_only_folder")(on_mount("ro,size=64k", _read_only))


def _no_inodes(b, d):
    ok_route(b)
    check(fetch(b.url(), "-o", os.path.join(d, "f"), "-s"), 10, None)


attack("local-disk", "no_free_inodes")(on_mount("size=64k,nr_inodes=1", _no_inodes))


# -- standard streams --------------------------------------------------------------


@attack("local-stdio")
@with_box
def dev_full_outputs(b):
    ok_route(b)
    check(fetch(b.url(), "-o", "/dev/full", "-s"), 10, "No space")
    check(fetch(b.url(), "-o", "-", "-s", shell_redirs=">/dev/full"), 10, "No space")
    check(fetch(b.url(), "-o", b.path("o"), shell_redirs=">/dev/full"), 10, "No space")
    assert listing(b.dir) == []


@attack("local-stdio")
@with_box
def closed_stdout_body_to_stdout(b):
    """-o - with standard output closed: the body must not land in whatever
    file the next open() gets as fd 1 (the socket), and exit 0 would lie."""
    ok_route(b)
    r = fetch(b.url(), "-o", "-", "-s", shell_redirs=">&-")
    check(r, 10, "standard output")
    assert b.srv.requests == [], "refused before any network work"


@attack("local-stdio")
@with_box
def closed_stdout_headers(b):
    ok_route(b)
    r = fetch(b.url(), "-o", b.path("o"), shell_redirs=">&-")
    check(r, 10, "standard output")
    assert listing(b.dir) == []


@attack("local-stdio")
@with_box
def closed_stdout_silent_is_fine(b):
    ok_route(b)
    check(fetch(b.url(), "-o", b.path("o"), "-s", shell_redirs=">&-"), 0)
    assert open(b.path("o")).read() == "hello"


@attack("local-stdio")
@with_box
def closed_stderr_and_stdin(b):
    """Messages have nowhere to go, but must not go into a file or socket."""
    ok_route(b)
    b.srv.route("/bad", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
    r = fetch(b.url(), "-o", b.path("o"), "-s", shell_redirs="2>&- <&-")
    check(r, 0)
    assert open(b.path("o")).read() == "hello"
    r = fetch(b.url("/bad"), "-o", b.path("o"), "-s", "-k", "--retry", "1", "--retry-delay",
              "0.05", "-C", shell_redirs="2>&- <&-")
    assert r.returncode == 8, r.returncode
    for q in b.srv.requests:
        assert b"sockit:" not in q.raw
    for n in os.listdir(b.dir):
        with open(b.path(n), "rb") as f:
            assert b"sockit:" not in f.read(), n


def stalled_stdout(b, sig=None, extra=()):
    big = b"x" * (4 << 20)
    sent = threading.Event()
    b.srv.route("/big", lambda req: [OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(big), big,
                                     Mark(sent)])
    rfd, wfd = os.pipe()
    p = subprocess.Popen([BIN, "fetch", b.url("/big"), "-o", "-", "-s", *extra], stdout=wfd,
                         stderr=subprocess.PIPE, env=env())
    os.close(wfd)
    try:
        # The pipe holds 64 KiB: sockit is blocked writing once its wchan
        # says so (polled with a deadline).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{p.pid}/wchan") as f:
                if "pipe" in f.read():
                    break
            time.sleep(0.02)
        if sig:
            p.send_signal(sig)
        start = time.monotonic()
        try:
            err = p.communicate(timeout=6)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("hang: blocked on a stalled standard output")
        return Result(p.returncode, b"", err, time.monotonic() - start)
    finally:
        os.close(rfd)


@attack("local-stdio")
@with_box
def stalled_stdout_sigterm(b):
    check(stalled_stdout(b, signal.SIGTERM), 1, "interrupted (SIGTERM)", 3)


@attack("local-stdio")
@with_box
def stalled_stdout_max_time(b):
    check(stalled_stdout(b, None, ("--max-time", "2")), 9, None, 4)


@attack("local-stdio")
@with_box
def stdout_reader_goes_away(b):
    def gen(req):
        yield OK_HEAD + b"\r\n"
        while True:
            yield b"z" * 65536
    b.srv.route("/f", gen)
    p = subprocess.Popen([BIN, "fetch", b.url(), "-o", "-", "-s"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env())
    p.stdout.read(200000)
    p.stdout.close()
    err = p.communicate(timeout=10)[1]
    check(Result(p.returncode, b"", err, 0), 10, None)


@attack("local-stdio")
@with_box
def dev_stdout_on_a_pipe(b):
    ok_route(b)
    for name in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        r = fetch(b.url(), "-s", "-o", name)
        check(r, 0)
        assert r.stdout == b"hello", (name, r.stdout)


@attack("local-stdio")
@with_box
def non_blocking_stdout(b):
    import array
    import fcntl
    import termios
    body = b"n" * (512 << 10)
    b.srv.route("/f", lambda req: OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    rfd, wfd = os.pipe()
    fcntl.fcntl(wfd, fcntl.F_SETFL, fcntl.fcntl(wfd, fcntl.F_GETFL) | os.O_NONBLOCK)
    p = subprocess.Popen([BIN, "fetch", b.url(), "-o", "-", "-s"], stdout=wfd,
                         stderr=subprocess.PIPE, env=env())
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            n = array.array("i", [0])
            fcntl.ioctl(rfd, termios.FIONREAD, n)
            if n[0] >= 65536 - 8192:
                break
            time.sleep(0.01)
        got = r.read()
    err = p.communicate(timeout=10)[1]
    check(Result(p.returncode, b"", err, 0), 0)
    assert got == body


@attack("local-limits")
@with_box
def file_size_limit(b):
    body = b"x" * 300000
    b.srv.route("/f", lambda req: OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    b.srv.route("/c", lambda req: OK_HEAD + b"\r\n" + body)
    for path in ("/f", "/c"):
        r = fetch(b.url(path), "-s", "-o", b.path("out"), shell_redirs="", timeout=20,
                  preexec_fn=lambda: __import__("resource").setrlimit(
                      __import__("resource").RLIMIT_FSIZE, (100 * 1024, 100 * 1024)))
        check(r, 10, "File too large")
        assert listing(b.dir) == []


@attack("local-limits")
@with_box
def cpu_time_limit(b):
    def gen(req):
        yield OK_HEAD + b"\r\n"
        while True:
            yield b"s" * 65536
    b.srv.route("/f", gen)
    import resource
    r = fetch(b.url(), "-s", "-o", b.path("out"), timeout=60,
              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CPU,
                                                    (1, resource.RLIM_INFINITY)))
    check(r, 1, "SIGXCPU")
    assert listing(b.dir) == []


@attack("local-limits")
@with_box
def hashing_a_huge_part_is_interruptible(b):
    size = 4 << 30
    with open(b.path("f.bin.part"), "wb") as f:
        f.truncate(size)
    with open(b.path("f.bin.part.meta"), "w") as f:
        f.write(f"sockit-resume 2\nurl {b.url()}\nvalidator \"v1\"\nsize {size}\n")
    b.srv.route("/f", lambda req: b"HTTP/1.1 416 R\r\nContent-Range: bytes */%d\r\n"
                b"Content-Length: 0\r\n\r\n" % size)
    r = fetch(b.url(), "-o", b.path("f.bin"), "-C", "-s", "--sha256", "0" * 64, "--max-time",
              "1", timeout=60)
    check(r, 9, "--max-time", 3)
    assert listing(b.dir) == ["f.bin.part", "f.bin.part.meta"]


@attack("local-limits")
@with_box
def no_fds_left_to_open(b):
    ok_route(b)
    import resource
    for n in range(3, 16):
        r = fetch(b.url(), "-s", "-o", b.path("out"), timeout=20,
                  preexec_fn=lambda n=n: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)))
        if r.returncode == 127 and b"loading shared libraries" in r.stderr:
            continue  # too few for the dynamic loader itself
        check(r, (0, 1, 4, 10))
        if r.returncode == 0:
            assert open(b.path("out")).read() == "hello"
        no_temp(b.dir)


@attack("local-signals")
@with_box
def user_signals_clean_up(b):
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGHUP, signal.SIGXCPU):
        sent = threading.Event()
        b.srv.route("/f", lambda req, sent=sent: [OK_HEAD + b"Content-Length: 100\r\n\r\nab",
                                                  Mark(sent), Sleep(30)])
        p = subprocess.Popen([BIN, "fetch", b.url(), "-o", b.path("o"), "-s"],
                             stderr=subprocess.PIPE, env=env())
        assert sent.wait(10)
        wait_in_folder(b.dir, lambda: len(os.listdir(b.dir)) == 1, 10, "the temporary file")
        p.send_signal(sig)
        if sig == signal.SIGALRM:
            p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=10)[1]
        check(Result(p.returncode, b"", err, 0), 1, "interrupted")
        assert listing(b.dir) == [], (sig, listing(b.dir))


@attack("local-stdio")
@with_box
def stalled_stderr(b):
    b.srv.route("/f", lambda req: b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    try:
        while True:
            os.write(wfd, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(wfd, True)
    start = time.monotonic()
    p = subprocess.Popen([BIN, "fetch", b.url(), "-o", b.path("o"), "--max-time", "2",
                          "--retry", "3", "--retry-delay", "0.1"], stdout=subprocess.DEVNULL,
                         stderr=wfd, env=env())
    os.close(wfd)
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("hang on a stalled standard error")
    finally:
        os.close(rfd)
    assert rc in (6, 9) and time.monotonic() - start < 5, rc


# -- fd leaks ------------------------------------------------------------------------


def fds_while_stalled(b, url, *extra):
    """Starts a fetch that ends on a stalling hop; returns its open fds."""
    p = subprocess.Popen([BIN, "fetch", url, "-o", b.path("o"), "-s", *extra],
                         stderr=subprocess.PIPE, env=env())
    try:
        assert STALLED.wait(10), "never reached the stall"
        # the body's file is open once it shows in the folder
        wait_in_folder(b.dir, lambda: any(".sockit-" in n or n.endswith(".part")
                                          for n in os.listdir(b.dir)), 10, "the output file")
        fds = sorted(re.sub(r"sockit-\w{6}$", "sockit-X",
                            os.readlink(f"/proc/{p.pid}/fd/{n}").split(":")[0])
                     for n in os.listdir(f"/proc/{p.pid}/fd"))
        return fds
    finally:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=10)[1]
        check(Result(p.returncode, b"", err, 0), 1, "interrupted")
        STALLED.clear()


STALLED = threading.Event()


@attack("local-fds")
@with_box
def no_fd_leak_across_redirects_and_retries(b):
    def stall(req):
        return [OK_HEAD + b"ETag: \"v\"\r\nContent-Length: 10\r\n\r\nab", Mark(STALLED), Sleep(30)]
    b.srv.route("/stall", stall)
    for i in range(8):
        b.srv.route(f"/r{i}", lambda req, i=i: redirect(b"/r%d" % (i + 1)))
    b.srv.route("/r8", stall)
    n = {"k": 0}

    def flaky(req):
        n["k"] += 1
        return unavailable(b"0") if n["k"] < 4 else stall(req)
    b.srv.route("/flaky", flaky)
    base = fds_while_stalled(b, b.url("/stall"))
    hops = fds_while_stalled(b, b.url("/r0"))
    assert hops == base, (hops, base)
    retried = fds_while_stalled(b, b.url("/flaky"), "--retry", "5")
    assert retried == base, (retried, base)
    for f in os.listdir(b.dir):
        os.unlink(b.path(f))
    n["k"] = 0
    with_c = fds_while_stalled(b, b.url("/flaky"), "--retry", "5", "-C")
    assert len(with_c) <= len(base) + 2, (with_c, base)  # the part and its folder


# ---------------------------------------------------------------------------


def main():
    global BIN, LOGDIR, WORK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "san", "sockit"))
    ap.add_argument("-k", default="", help="run only attacks whose name contains this")
    ap.add_argument("-v", action="store_true", help="print every attack")
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    WORK = tempfile.mkdtemp(prefix="sockit-redteam-")
    LOGDIR = os.path.join(WORK, "sanitizer")
    os.makedirs(LOGDIR)
    counts, failed, skipped = {}, [], []
    try:
        for cat, name, fn in ATTACKS:
            if a.k not in name and a.k not in cat:
                continue
            counts[cat] = counts.get(cat, 0) + 1
            start = time.monotonic()
            try:
                fn()
                reports = sanitizer_reports()
                assert not reports, "sanitizer report: " + reports[0]
                status = "ok"
            except Skip as e:
                skipped.append(name)
                status = f"skip ({e})"
            except Exception as e:  # noqa: BLE001: every failure is reported
                sanitizer_reports()
                failed.append((cat, name, e))
                status = f"FAIL: {type(e).__name__}: {e}"
                if a.v:
                    traceback.print_exc()
            if a.v or status.startswith("FAIL"):
                print(f"{cat:16} {name:48} {status[:300]} ({time.monotonic() - start:.1f} s)",
                      flush=True)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    total = sum(counts.values())
    print("by category: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    print(f"attacks run: {total}, passed: {total - len(failed) - len(skipped)}, "
          f"failed: {len(failed)}, skipped: {len(skipped)}")
    return 1 if failed else 0


WORK = None
if __name__ == "__main__":
    sys.exit(main())
