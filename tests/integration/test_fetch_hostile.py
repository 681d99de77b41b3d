"""sockit fetch against a hostile server: each bad input of issue 3 gives a
non-zero exit within the time bounds, a one-line message, no crash, no leak
(the sanitizer build runs these too) and an untouched output file."""
import glob
import os
import signal
import subprocess
import time

import ssl

import pytest

from conftest import SOCKIT, stderr_on_a_terminal
from fswait import wait_in_folder
from hostile_http import HostileServer, Sleep
from nginx_util import make_certs

OK_HEAD = b"HTTP/1.1 200 OK\r\n"


@pytest.fixture
def srv():
    s = HostileServer()
    yield s
    s.stop()


def fetch(*args, cwd=None, timeout=30):
    return subprocess.run([SOCKIT, "fetch"] + list(args), capture_output=True, cwd=cwd,
                          timeout=timeout)


def check_failure(r, code, words):
    assert r.returncode >= 0, f"killed by signal {-r.returncode}"
    assert b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr.decode()
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit: "), lines
    assert words in lines[0], lines[0]


def run_bad(srv, tmp_path, response, code, words, extra=(), timeout=30):
    srv.route("/f", lambda req: response)
    out = tmp_path / "f.out"
    out.write_bytes(b"untouched")
    start = time.monotonic()
    r = fetch(srv.url("/f"), "-o", str(out), "-s", *extra, timeout=timeout)
    elapsed = time.monotonic() - start
    check_failure(r, code, words)
    assert out.read_bytes() == b"untouched"
    assert os.listdir(tmp_path) == ["f.out"], os.listdir(tmp_path)
    return r, elapsed


BAD = [
    ("malformed_status_line", b"HTTP/1.1 2OO OK\r\n\r\n", 7, "bad status line"),
    ("not_http", b"SSH-2.0-OpenSSH_9.2\r\n", 7, "bad status line"),
    ("http2_preface", b"HTTP/2 200\r\n\r\n", 7, "bad status line"),
    ("header_without_colon", OK_HEAD + b"Content-Length 5\r\n\r\nhello", 7,
     "bad header field line"),
    ("obs_fold", OK_HEAD + b"X: a\r\n b\r\nContent-Length: 0\r\n\r\n", 7,
     "bad header field line"),
    ("bare_lf", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", 7, "bad status line"),
    ("header_section_too_big", OK_HEAD + b"X: " + b"a" * 70000 + b"\r\n\r\n", 7, "too large"),
    ("too_many_headers", OK_HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
     7, "too large"),
    ("conflicting_content_length",
     OK_HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 7, "Content-Length"),
    ("non_numeric_content_length", OK_HEAD + b"Content-Length: five\r\n\r\nhello", 7,
     "Content-Length"),
    ("negative_content_length", OK_HEAD + b"Content-Length: -1\r\n\r\n", 7, "Content-Length"),
    ("cl_and_chunked", OK_HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 7, "Content-Length"),
    ("unknown_transfer_coding", OK_HEAD + b"Transfer-Encoding: gzip\r\n\r\nxx", 7,
     "Transfer-Encoding"),
    ("chunk_size_not_hex", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", 7,
     "malformed chunked"),
    ("chunk_size_too_large", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"1000000000000000\r\nhello\r\n", 7, "exceeds limits"),
    ("chunk_size_overflow", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"1ffffffffffffffffffffffff\r\nhello\r\n", 7, "exceeds limits"),
    ("chunk_data_overrun", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"3\r\nhello\r\n0\r\n\r\n", 7, "malformed chunked"),
    ("body_shorter_than_content_length", OK_HEAD + b"Content-Length: 100\r\n\r\nonly this", 8,
     "after 9 of 100 bytes"),
    ("close_inside_chunk", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n10\r\nabc", 8,
     "no final chunk"),
    ("missing_final_chunk", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 8,
     "no final chunk"),
    ("missing_final_crlf", OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
     8, "no final chunk"),
    ("empty_reply", b"", 7, "empty reply"),
    ("close_inside_head", OK_HEAD + b"Content-Le", 7, "inside the response head"),
    ("switching_protocols", b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 7, "101"),
    ("endless_interim_responses", b"HTTP/1.1 100 Continue\r\n\r\n" * 1000, 7, "interim"),
    ("redirect_without_location", b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", 7,
     "without a Location"),
    ("redirect_to_unsupported_scheme",
     b"HTTP/1.1 301 Moved\r\nLocation: gopher://127.0.0.1/\r\nContent-Length: 0\r\n\r\n", 7,
     "unsupported scheme"),
    ("redirect_to_invalid_url",
     b"HTTP/1.1 301 Moved\r\nLocation: http://[::1/\r\nContent-Length: 0\r\n\r\n", 7,
     "invalid URL"),
    ("server_error", b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nfail", 6, "HTTP 500 Oops"),
]


@pytest.mark.parametrize("response,code,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(srv, tmp_path, response, code, words):
    run_bad(srv, tmp_path, response, code, words)


def test_redirect_loop(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /g\r\nContent-Length: 0\r\n\r\n")
    srv.route("/g", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /f\r\nContent-Length: 0\r\n\r\n")
    out = tmp_path / "f.out"
    r = fetch(srv.url("/f"), "-o", str(out), "-s", "--max-redirs", "5")
    check_failure(r, 7, "too many redirects (limit 5)")
    assert len(srv.requests) == 6
    assert not out.exists()


def test_stalled_server_bounded_by_max_time(srv, tmp_path):
    _, elapsed = run_bad(srv, tmp_path, [Sleep(20)], 9, "--max-time", extra=("--max-time", "1"))
    assert elapsed < 5


def test_stall_mid_body_bounded_by_idle_timeout(srv, tmp_path):
    _, elapsed = run_bad(srv, tmp_path, [OK_HEAD + b"Content-Length: 10\r\n\r\nhal", Sleep(20)],
                         9, "timed out", extra=("--idle-timeout", "0.5"))
    assert elapsed < 5


def test_connection_refused(tmp_path):
    srv = HostileServer()
    port = srv.port
    srv.stop()
    out = tmp_path / "o"
    r = fetch(f"http://127.0.0.1:{port}/x", "-o", str(out))
    check_failure(r, 4, "cannot connect to 127.0.0.1:")
    assert not out.exists()


def test_unresolvable_host(tmp_path):
    r = fetch("http://no-such-host.invalid/x", "-o", str(tmp_path / "o"))
    check_failure(r, 3, "could not resolve host")


def test_tls_to_plain_server(tmp_path):
    srv = HostileServer(raw=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    try:
        r = fetch(f"https://127.0.0.1:{srv.port}/f", "-o", str(tmp_path / "o"),
                  "--connect-timeout", "3")
    finally:
        srv.stop()
    check_failure(r, 5, "TLS")
    assert not (tmp_path / "o").exists()


def test_tls_handshake_stall_bounded_by_connect_timeout(srv, tmp_path):
    start = time.monotonic()
    r = fetch(f"https://127.0.0.1:{srv.port}/f", "-o", str(tmp_path / "o"),
              "--connect-timeout", "0.5")
    check_failure(r, 9, "TLS handshake")
    assert time.monotonic() - start < 4


# user:pw@ is accepted since issue 11 (test_fetch_auth.py); malformed credentials are not
@pytest.mark.parametrize("url", ["ftp://x/y", "http://", "http://h:99999/", "not a url",
                                 "http://user:pw%zz@h/", "http://user@h/"])
def test_bad_urls_are_usage_errors(url):
    r = fetch(url)
    assert r.returncode == 2
    assert r.stderr.startswith(b"sockit: ")


def test_usage_errors():
    assert fetch().returncode == 2
    # several URLs are a run (issue 11); -o names one file, so not with several
    assert fetch("http://a/", "http://b/", "-o", "x").returncode == 2
    assert fetch("http://a/", "--max-redirs", "x").returncode == 2
    assert fetch("http://a/", "--max-time", "-1").returncode == 2
    assert fetch("http://a/", "-C", "-o", "-").returncode == 2
    assert fetch("http://a/", "--bogus").returncode == 2
    r = fetch("--help")
    assert r.returncode == 0
    assert b"Exit status:" in r.stdout and b"--max-redirs" in r.stdout


def test_retry_honours_retry_after(srv, tmp_path):
    calls = []

    def flaky(req):
        calls.append(time.monotonic())
        if len(calls) < 3:
            return b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"
        return OK_HEAD + b"Content-Length: 5\r\n\r\nhello"

    srv.route("/f", flaky)
    out = tmp_path / "o"
    r = fetch(srv.url("/f"), "-o", str(out), "-s", "--retry", "3")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"hello"
    assert len(calls) == 3


def test_retry_backoff_and_give_up(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.1 429 Slow down\r\nContent-Length: 0\r\n\r\n")
    out = tmp_path / "o"
    start = time.monotonic()
    r = fetch(srv.url("/f"), "-o", str(out), "--retry", "2", "--retry-delay", "0.2")
    elapsed = time.monotonic() - start
    assert r.returncode == 6
    assert len(srv.requests) == 3
    assert 0.55 < elapsed < 5  # 0.2 s then 0.4 s
    assert r.stderr.count(b"retrying") == 2
    assert not out.exists()


def test_no_retry_by_default_and_not_for_404(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "o"), "-s")
    assert r.returncode == 6 and len(srv.requests) == 1
    r = fetch(srv.url("/missing"), "-o", str(tmp_path / "o"), "-s", "--retry", "3")
    assert r.returncode == 6 and len(srv.requests) == 2


def test_retry_after_beyond_max_time_gives_up(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.1 503 Busy\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n")
    start = time.monotonic()
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "o"), "-s", "--retry", "3", "--max-time", "2")
    assert r.returncode == 6
    assert time.monotonic() - start < 2
    assert len(srv.requests) == 1


def test_sigint_removes_temporary_file(srv, tmp_path):
    srv.route("/f", lambda req: [OK_HEAD + b"Content-Length: 100\r\n\r\n" + b"x" * 50, Sleep(20)])
    out = tmp_path / "o"
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", str(out), "-s"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_in_folder(tmp_path, lambda: glob.glob(str(tmp_path / ".o.sockit-*")), 5,
                   "the temporary file")
    p.send_signal(signal.SIGINT)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise
    err = p.stderr.read()
    p.stderr.close()
    assert p.returncode == 1, err
    assert b"interrupted" in err
    assert os.listdir(tmp_path) == []


# -- resume (-C) ------------------------------------------------------------

DATA = bytes(range(256)) * 400  # 102400 bytes


def ranged(etag, cut=None, wrong_start=False):
    """A resource with a strong ETag that honours Range + If-Range; cut:
    close after that many body bytes of a full reply."""

    def handler(req):
        rng = req.headers.get("range")
        if rng and req.headers.get("if-range") == etag:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(DATA):
                return (b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%d\r\n"
                        b"Content-Length: 0\r\n\r\n" % len(DATA))
            first = start + 7 if wrong_start else start
            body = DATA[first:]
            return (b"HTTP/1.1 206 Partial Content\r\nETag: %s\r\nContent-Range: bytes %d-%d/%d\r\n"
                    b"Content-Length: %d\r\n\r\n" % (etag.encode(), first, len(DATA) - 1,
                                                    len(DATA), len(body)) + body)
        body = DATA if cut is None else DATA[:cut]
        return (b"HTTP/1.1 200 OK\r\nETag: %s\r\nAccept-Ranges: bytes\r\nContent-Length: %d\r\n\r\n"
                % (etag.encode(), len(DATA)) + body)

    return handler


def interrupted_first_run(srv, tmp_path, etag='"v1"', cut=40000):
    srv.route("/f", ranged(etag, cut=cut))
    out = tmp_path / "f.bin"
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    check_failure(r, 8, "after 40000 of 102400 bytes")
    assert not out.exists(), "FILE must only ever appear complete"
    assert (tmp_path / "f.bin.part").read_bytes() == DATA[:cut]
    meta = (tmp_path / "f.bin.part.meta").read_text()
    assert etag in meta and srv.url("/f") in meta
    return out


def test_resume_appends_only_a_matching_206(srv, tmp_path):
    out = interrupted_first_run(srv, tmp_path)
    srv.route("/f", ranged('"v1"'))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    last = srv.requests[-1]
    assert last.headers["range"] == "bytes=40000-"
    assert last.headers["if-range"] == '"v1"'
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_resume_restarts_when_resource_changed(srv, tmp_path):
    out = interrupted_first_run(srv, tmp_path)
    srv.route("/f", ranged('"v2"'))  # If-Range fails: the server sends a full 200
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_resume_refuses_misplaced_content_range(srv, tmp_path):
    out = interrupted_first_run(srv, tmp_path)
    srv.route("/f", ranged('"v1"', wrong_start=True))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA  # restarted from zero, never appended at the wrong place
    assert "range" not in srv.requests[-1].headers
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_resume_complete_part_416(srv, tmp_path):
    srv.route("/f", ranged('"v1"'))
    out = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(DATA)
    (tmp_path / "f.bin.part.meta").write_text(
        f"sockit-resume 2\nurl {srv.url('/f')}\nvalidator \"v1\"\nsize {len(DATA)}\n")
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    assert len(srv.requests) == 1 and srv.requests[0].headers["range"] == f"bytes={len(DATA)}-"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_resume_part_for_another_url_is_not_trusted(srv, tmp_path):
    srv.route("/f", ranged('"v1"'))
    out = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"garbage" * 100)
    (tmp_path / "f.bin.part.meta").write_text(
        "sockit-resume 2\nurl http://elsewhere/f\nvalidator \"v1\"\nsize *\n")
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert "range" not in srv.requests[-1].headers
    assert out.read_bytes() == DATA


def test_without_continue_nothing_partial_is_kept(srv, tmp_path):
    srv.route("/f", ranged('"v1"', cut=40000))
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "f.bin"), "-s")
    check_failure(r, 8, "after 40000 of 102400 bytes")
    assert os.listdir(tmp_path) == []


def test_resume_with_retry_finishes_in_one_run(srv, tmp_path):
    calls = []

    def first_cut(req):
        calls.append(req)
        return ranged('"v1"', cut=30000 if len(calls) == 1 else None)(req)

    srv.route("/f", first_cut)
    out = tmp_path / "f.bin"
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "--retry", "2", "--retry-delay", "0.05")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    assert calls[1].headers["range"] == "bytes=30000-"
    assert b"retrying" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_close_delimited_body_plain_http(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    out = tmp_path / "o"
    r = fetch(srv.url("/f"), "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"until the end"


def test_every_address_is_tried(srv, tmp_path):
    # "localhost" may resolve to ::1 first; the server listens on 127.0.0.1 only.
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
    out = tmp_path / "o"
    r = fetch(srv.url("/f", host="localhost"), "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"ok"


@pytest.fixture(scope="module")
def tls_ctx(tmp_path_factory):
    certs = make_certs(str(tmp_path_factory.mktemp("certs")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx, certs["ca"]


@pytest.mark.parametrize("close_notify", [True, False])
def test_tls_close_delimited_body_needs_close_notify(tls_ctx, tmp_path, close_notify):
    ctx, ca = tls_ctx
    srv = HostileServer(tls=ctx, close_notify=close_notify)
    srv.route("/f", lambda req: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
    out = tmp_path / "o"
    try:
        r = fetch(srv.url("/f", host="localhost"), "-o", str(out), "-s", "--cacert", ca)
    finally:
        srv.stop()
    if close_notify:
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == b"all of it"
    else:
        check_failure(r, 8, "close_notify")
        assert not out.exists()


def test_tls_truncated_length_body(tls_ctx, tmp_path):
    ctx, ca = tls_ctx
    srv = HostileServer(tls=ctx, close_notify=False)
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: 50\r\n\r\nshort")
    out = tmp_path / "o"
    try:
        r = fetch(srv.url("/f", host="localhost"), "-o", str(out), "-s", "--cacert", ca)
    finally:
        srv.stop()
    check_failure(r, 8, "after 5 of 50 bytes")
    assert not out.exists()


def slow_body(req):
    piece = b"z" * 20000
    return [OK_HEAD + b"Content-Length: 100000\r\n\r\n"] + [p for _ in range(5)
                                                          for p in (piece, Sleep(0.15))]


def test_progress_bar_only_on_a_terminal(srv, tmp_path):
    srv.route("/f", slow_body)
    rc, seen = stderr_on_a_terminal([SOCKIT, "fetch", srv.url("/f"), "-o", str(tmp_path / "a")])
    assert rc == 0
    assert b"\r" in seen and b"%" in seen, seen
    assert b"100%" in seen
    # Not a terminal: no bar at all.
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "b"))
    assert r.returncode == 0
    assert r.stderr == b""
    assert (tmp_path / "b").read_bytes() == b"z" * 100000


def test_interim_1xx_responses_are_skipped(srv, tmp_path):
    srv.route("/f", lambda req: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                                b"Link: </x>\r\n\r\n" + OK_HEAD + b"Content-Length: 2\r\n\r\nok")
    out = tmp_path / "o"
    r = fetch(srv.url("/f"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"ok"
    assert r.stdout.startswith(OK_HEAD)


def test_credentials_not_sent_to_another_origin(srv, tmp_path):
    other = HostileServer()
    try:
        other.route("/g", lambda req: OK_HEAD + b"Content-Length: 2\r\n\r\nok")
        srv.route("/f", lambda req: b"HTTP/1.1 302 Found\r\nLocation: %s\r\n"
                  b"Content-Length: 0\r\n\r\n" % other.url("/g").encode())
        r = fetch(srv.url("/f"), "-o", str(tmp_path / "o"), "-s", "-H", "Authorization: Bearer t",
                  "-H", "X-Keep: 1")
    finally:
        other.stop()
    assert r.returncode == 0, r.stderr
    assert srv.requests[0].headers["authorization"] == "Bearer t"
    assert "authorization" not in other.requests[0].headers
    assert other.requests[0].headers["x-keep"] == "1"
    assert other.requests[0].headers["host"] == f"127.0.0.1:{other.port}"


def test_sha256_checked_before_commit(srv, tmp_path):
    import hashlib
    srv.route("/f", ranged('"v1"'))
    good = hashlib.sha256(DATA).hexdigest()
    out = tmp_path / "f.bin"
    out.write_bytes(b"untouched")
    r = fetch(srv.url("/f"), "-o", str(out), "-s", "--sha256", "0" * 64)
    check_failure(r, 11, "SHA-256 mismatch")
    assert good.encode() in r.stderr
    assert out.read_bytes() == b"untouched"
    assert os.listdir(tmp_path) == ["f.bin"]
    r = fetch(srv.url("/f"), "-o", str(out), "-s", "--sha256", good.upper())
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    r = fetch(srv.url("/f"), "-o", "-", "-s", "--sha256", good)
    assert r.returncode == 0 and r.stdout == DATA
    assert fetch(srv.url("/f"), "--sha256", "xyz").returncode == 2


def test_sha256_covers_a_resumed_file(srv, tmp_path):
    import hashlib
    out = interrupted_first_run(srv, tmp_path)
    srv.route("/f", ranged('"v1"'))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s", "--sha256", "1" * 64)
    check_failure(r, 11, "SHA-256 mismatch")
    assert hashlib.sha256(DATA).hexdigest().encode() in r.stderr  # prefix + appended bytes
    assert os.listdir(tmp_path) == [], "a part that failed its checksum is not kept"
    interrupted_first_run(srv, tmp_path)
    srv.route("/f", ranged('"v1"'))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s", "--sha256",
              hashlib.sha256(DATA).hexdigest())
    assert r.returncode == 0, r.stderr
    assert srv.requests[-1].headers["range"] == "bytes=40000-"  # resumed, and still verified
    assert out.read_bytes() == DATA


def test_sigterm_with_continue_keeps_the_part(srv, tmp_path):
    srv.route("/f", lambda req: [b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: %d\r\n\r\n"
                                 % len(DATA) + DATA[:5000], Sleep(20)])
    out = tmp_path / "f.bin"
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", str(out), "-C", "-s"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    part = tmp_path / "f.bin.part"
    wait_in_folder(tmp_path, lambda: part.exists() and part.stat().st_size == 5000, 5,
                   "5000 bytes in the part")
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise
    err = p.stderr.read()
    p.stderr.close()
    assert p.returncode == 1, err
    assert not out.exists()
    assert part.read_bytes() == DATA[:5000]
    assert (tmp_path / "f.bin.part.meta").exists()
    srv.route("/f", ranged('"v1"'))
    r = fetch(srv.url("/f"), "-o", str(out), "-C", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == DATA
    assert srv.requests[-1].headers["range"] == "bytes=5000-"
