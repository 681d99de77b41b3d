"""sockit fetch's reports besides the body (issue 11): -D FILE (each
response head of a chain as received), -w FORMAT (curl's write-out
variables after each URL). Scripted servers: hostile_http.HostileServer."""
import contextlib
import json
import os
import re
import ssl
import subprocess

import pytest

from conftest import SOCKIT
from fetch_cli import assert_clean, fetch, usage_error
from hostile_http import HostileServer
from nginx_util import make_certs

BODY = b"0123456789" * 10
OK = b"HTTP/1.1 200 OK\r\nX-Hop: final\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
MOVED = b"HTTP/1.1 302 Found\r\nX-Hop: first\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n"
MOVED2 = b"HTTP/1.1 301 Moved\r\nX-Hop: second\r\nLocation: /a\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def srv():
    s = HostileServer()
    s.route("/a", lambda req: OK)
    s.route("/r", lambda req: MOVED)
    s.route("/b", lambda req: MOVED2)
    s.route("/missing", lambda req: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    yield s
    s.stop()


# ---- -D ----

@pytest.mark.parametrize("flag", ["-D", "--dump-header"])
def test_dump_header_writes_every_head_of_the_chain(srv, tmp_path, flag):
    d = tmp_path / "heads"
    r = fetch(flag, str(d), srv.url("/r"), "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert d.read_bytes() == MOVED + MOVED2 + OK[:OK.index(b"\r\n\r\n") + 4], "as received"
    assert r.stdout == b"", "the heads went to the file instead"
    assert (tmp_path / "o").read_bytes() == BODY


def test_dump_header_even_with_silent_and_for_several_urls(srv, tmp_path):
    d = tmp_path / "heads"
    (tmp_path / "out").mkdir()
    r = fetch("-s", "-D", str(d), "--output-dir", str(tmp_path / "out"), srv.url("/a"),
              srv.url("/missing"))
    assert r.returncode == 6
    # both heads, whole, in the order they came (the URLs run at once)
    heads = sorted(h + b"\r\n\r\n" for h in d.read_bytes().split(b"\r\n\r\n")[:-1])
    assert len(heads) == 2 and heads[0].startswith(b"HTTP/1.1 200 OK\r\n"), heads
    assert heads[1] == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", heads
    assert d.read_bytes().endswith(b"\r\n\r\n")


def test_dump_header_replaces_the_file(srv, tmp_path):
    d = tmp_path / "heads"
    d.write_bytes(b"old contents " * 100)
    r = fetch("-s", "-D", str(d), srv.url("/a"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert d.read_bytes().startswith(b"HTTP/1.1 200 OK") and b"old" not in d.read_bytes()


def test_dump_header_to_stdout_with_body_on_stdout(srv, tmp_path):
    r = fetch("-s", "-D", "-", "-o", "-", srv.url("/a"))
    assert r.returncode == 0, r.stderr
    head = OK[:OK.index(b"\r\n\r\n") + 4]
    assert r.stdout == head + BODY
    assert r.stderr == b""


def test_dump_header_with_head_request(srv, tmp_path):
    d = tmp_path / "h"
    r = fetch("-I", "-D", str(d), srv.url("/a"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and d.read_bytes().startswith(b"HTTP/1.1 200 OK")


def test_dump_header_cannot_open_is_an_output_error(srv, tmp_path):
    r = fetch("-D", str(tmp_path / "no" / "such"), srv.url("/a"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 10, r.stderr
    assert b"-D " in r.stderr and srv.requests == []


def test_dump_header_empty_name_is_a_usage_error(srv):
    r = fetch("-D", "", srv.url("/a"))
    assert r.returncode == 2 and b"-D: empty file name" in r.stderr


# ---- -w ----

ALL = ("code=%{http_code} size=%{size_download} time=%{time_total} url=%{url_effective} "
       "file=%{filename_effective} redirects=%{num_redirects} exit=%{exitcode}\\n")


def parse(line):
    return dict(kv.split("=", 1) for kv in line.split(" "))


@pytest.mark.parametrize("flag", ["-w", "--write-out"])
def test_write_out_variables(srv, tmp_path, flag):
    r = fetch("-s", flag, ALL, srv.url("/r"), "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"\n") and r.stdout.count(b"\n") == 1
    v = parse(r.stdout.decode().strip())
    assert v["code"] == "200"
    assert v["size"] == str(len(BODY))
    assert re.fullmatch(r"\d+\.\d{6}", v["time"]), v["time"]
    assert 0 < float(v["time"]) < 30
    assert v["url"] == srv.url("/a"), "after the redirects"
    assert v["file"] == str(tmp_path / "o")
    assert v["redirects"] == "2"
    assert v["exit"] == "0"


def test_write_out_after_each_url_and_failures(srv, tmp_path):
    r = fetch("-s", "-w", "%{http_code} %{exitcode} %{url_effective} %{filename_effective}\\n",
              srv.url("/a"), srv.url("/missing"), "http://127.0.0.1:1/x", cwd=tmp_path)
    assert r.returncode == 6
    assert r.stdout.decode().splitlines() == [
        f"200 0 {srv.url('/a')} a",
        f"404 6 {srv.url('/missing')} missing",
        "000 4 http://127.0.0.1:1/x x",
    ]


def test_write_out_escapes_and_unknown_variable(srv, tmp_path):
    r = fetch("-s", "-w", "100%% %{nope}|\\t|\\r|\\\\|%{http_code}|%{|%x|\\q", srv.url("/a"),
              "-o", str(tmp_path / "o"))
    assert r.returncode == 0
    assert r.stdout == b"100% |\t|\r|\\|200|%{|%x|\\q"
    err = r.stderr.decode().strip().splitlines()
    assert err == ["sockit: fetch: warning: unknown --write-out variable: 'nope'"], err


def test_write_out_with_body_on_stdout_comes_after_it(srv):
    r = fetch("-s", "-o", "-", "-w", "[%{size_download}]", srv.url("/a"))
    assert r.returncode == 0
    assert r.stdout == BODY + b"[%d]" % len(BODY)


def test_write_out_size_counts_only_what_was_downloaded(srv, tmp_path):
    data = bytes(range(256)) * 40

    def ranged(req):
        rng = req.headers.get("range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            return (b"HTTP/1.1 206 Partial Content\r\nETag: \"e\"\r\nContent-Range: bytes %d-%d/%d"
                    b"\r\nContent-Length: %d\r\n\r\n" % (start, len(data) - 1, len(data),
                                                       len(data) - start) + data[start:])
        return b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: %d\r\n\r\n" % len(data) + data[:1000]

    srv.route("/f", ranged)
    r = fetch("-s", "-C", "-w", "%{size_download} %{exitcode}", srv.url("/f"), cwd=tmp_path)
    assert r.stdout == b"1000 8", r.stderr
    r = fetch("-s", "-C", "-w", "%{size_download} %{exitcode}", srv.url("/f"), cwd=tmp_path)
    assert r.stdout == b"%d 0" % (len(data) - 1000), r.stderr
    assert (tmp_path / "f").read_bytes() == data


def test_write_out_for_a_usage_error_of_one_url(srv, tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    r = fetch("-s", "-w", "%{exitcode} %{url_effective}\\n", srv.url("/a"), cwd=tmp_path)
    assert r.returncode == 10
    assert r.stdout == f"10 {srv.url('/a')}\n".encode()
    assert srv.requests == []


def test_write_out_shows_no_credentials(srv, tmp_path):
    url = srv.url("/a").replace("http://", "http://al:hunter2@")
    r = fetch("-s", "-w", "%{url_effective}", url, "-o", str(tmp_path / "o"))
    assert r.returncode == 0
    assert r.stdout == srv.url("/a").encode()


def json_report(r):
    assert_clean(r)
    lines = r.stdout.decode().splitlines()
    return [json.loads(line) for line in lines]


TYPED = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


def test_write_out_json_has_every_variable_of_a_redirect_chain(srv, tmp_path):
    srv.route("/t", lambda req: TYPED)
    srv.route("/rt", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /t\r\nContent-Length: 0\r\n\r\n")
    r = fetch("-s", "-w", "%{json}\\n", srv.url("/rt"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    [j] = json_report(r)
    assert list(j) == sorted(j), "curl's order: by name"
    heads = [TYPED[:TYPED.index(b"\r\n\r\n") + 4],
             b"HTTP/1.1 302 Found\r\nLocation: /t\r\nContent-Length: 0\r\n\r\n"]
    assert j["http_code"] == j["response_code"] == 200
    assert j["exitcode"] == 0 and j["errormsg"] is None
    assert j["content_type"] == "text/plain; charset=utf-8"
    assert j["http_version"] == "1.1" and j["scheme"] == "HTTP"
    assert j["remote_ip"] == "127.0.0.1" and j["remote_port"] == srv.port
    assert j["num_redirects"] == 1 and j["num_connects"] >= 1
    assert j["size_download"] == len(BODY)
    assert j["size_header"] == sum(len(h) for h in heads), "every hop's head"
    assert j["size_request"] > 2 * len("GET /t HTTP/1.1\r\n\r\n")
    assert j["url"] == srv.url("/rt") and j["url_effective"] == srv.url("/t")
    assert j["filename_effective"] == str(tmp_path / "o") and j["urlnum"] == 0
    assert j["time_appconnect"] == 0, "no TLS"
    assert 0 <= j["time_connect"] <= j["time_pretransfer"] <= j["time_starttransfer"]
    assert j["time_starttransfer"] <= j["time_total"] < 30
    assert j["speed_download"] >= 0


def test_write_out_json_of_a_failure_and_of_each_url_in_order(srv, tmp_path):
    r = fetch("-s", "-w", "%{json}\\n", srv.url("/a"), "http://127.0.0.1:1/x", srv.url("/missing"),
              cwd=tmp_path)
    assert r.returncode == 4
    a, refused, missing = json_report(r)
    assert [a["urlnum"], refused["urlnum"], missing["urlnum"]] == [0, 1, 2]
    assert a["exitcode"] == 0 and a["content_type"] is None
    assert refused["exitcode"] == 4 and refused["http_code"] == 0
    assert "127.0.0.1:1" in refused["errormsg"] and refused["num_connects"] == 0
    assert refused["remote_ip"] == "" and refused["http_version"] == "0"
    assert missing["http_code"] == 404 and missing["exitcode"] == 6 and missing["errormsg"]


def test_write_out_quotes_a_hostile_content_type(srv, tmp_path):
    # Control bytes other than HTAB are refused in a field (exit 7); obs-text passes.
    ct = b"text/x;\tq=\"a\\b\"; \xff\xc3\xa9"
    srv.route("/h", lambda req: b"HTTP/1.1 200 OK\r\nContent-Type: " + ct +
              b"\r\nContent-Length: 2\r\n\r\nok")
    r = fetch("-s", "-w", "[%{content_type}]\\n%{json}", srv.url("/h"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    text, js = r.stdout.split(b"\n", 1)
    assert text == b"[text/x;\\x09q=\"a\\b\"; \xff\xc3\xa9]", "control bytes as \\xHH"
    j = json.loads(js.decode("utf-8"))  # valid UTF-8 JSON: the bad byte replaced
    assert j["content_type"] == "text/x;\tq=\"a\\b\"; \ufffd\u00e9"


@contextlib.contextmanager
def tls_server(tmp_path, answer):
    """A HostileServer over TLS (certificate for localhost, of a test CA)
    answering /a with answer; yields it and the certificates' paths."""
    certs = make_certs(str(tmp_path))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    tls = HostileServer(tls=ctx)
    tls.route("/a", lambda req: answer)
    try:
        yield tls, certs
    finally:
        tls.stop()


def test_write_out_json_over_tls(tmp_path):
    with tls_server(tmp_path, OK) as (tls, certs):
        r = fetch("-s", "-w", "%{json}", tls.url("/a", host="localhost"), "--cacert", certs["ca"],
                  "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    [j] = json_report(r)
    assert j["scheme"] == "HTTPS" and j["http_version"] == "1.1" and j["num_connects"] == 1
    # The connected event comes after the handshake: both times are its.
    assert 0 < j["time_appconnect"] == j["time_connect"] <= j["time_pretransfer"]


def test_write_out_onerror_and_the_two_streams(srv, tmp_path):
    fmt = "%{stderr}E%{urlnum}%{stdout}O%{urlnum}%{onerror} failed %{exitcode}\\n"
    r = fetch("-s", "-w", fmt, srv.url("/a"), "http://127.0.0.1:1/x", cwd=tmp_path)
    assert r.returncode == 4
    assert r.stdout == b"O0O1 failed 4\n", "the rest of the format only for a failure"
    err = r.stderr.decode()
    assert err.startswith("E0E1") or err.index("E0") < err.index("E1"), err


@pytest.mark.parametrize("stdin", [False, True])
def test_write_out_format_from_a_file(srv, tmp_path, stdin):
    fmt = tmp_path / "fmt"
    fmt.write_bytes(b"code %{http_code}\nurl %{url_effective}\n")
    arg = "@-" if stdin else "@" + str(fmt)
    r = subprocess.run([SOCKIT, "fetch", "-s", "-w", arg, srv.url("/a"), "-o", str(tmp_path / "o")],
                       input=fmt.read_bytes(), capture_output=True, timeout=60)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"code 200\nurl {srv.url('/a')}\n".encode()


@pytest.mark.parametrize("content, words", [
    (None, "-w @{path}: No such file or directory"),
    (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    (b"%{http_code}\0rest", "holds a NUL byte"),
])
def test_write_out_bad_format_file_is_a_usage_error(srv, tmp_path, content, words):
    path = tmp_path / "fmt"
    if content is not None:
        path.write_bytes(content)
    r = fetch("-s", "-w", "@" + str(path), srv.url("/a"), cwd=tmp_path)
    usage_error(r, words.format(path=path))
    assert srv.requests == [] and not (tmp_path / "a").exists()


def test_write_out_from_stdin_and_a_list_from_stdin_is_a_usage_error(srv, tmp_path):
    r = subprocess.run([SOCKIT, "fetch", "-s", "-w", "@-", "-i", "-"], input=srv.url("/a").encode(),
                       capture_output=True, cwd=tmp_path, timeout=60)
    usage_error(r, "-w @- and -i - cannot both read standard input")
    assert srv.requests == []


# ---- -v ----

def verbose_lines(r):
    return r.stderr.decode().splitlines()


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_verbose_shows_the_exchange_of_each_hop(srv, tmp_path, flag):
    r = fetch("-s", flag, "-u", "alice:hunter2", srv.url("/r"), "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    lines = verbose_lines(r)
    assert b"hunter2" not in r.stderr and "Basic " + "YWxp" not in r.stderr.decode()
    connected = [ln for ln in lines if ln.startswith("* connected to ")]
    assert len(connected) == 3, lines
    assert all(re.fullmatch(rf"\* connected to 127\.0\.0\.1:{srv.port} after \d+\.\d{{6}} s", c)
               for c in connected), connected
    assert "> GET /r HTTP/1.1" in lines and "> GET /b HTTP/1.1" in lines
    assert "> Authorization: Basic [masked]" in lines
    assert [ln for ln in lines if ln.startswith("< HTTP/")] == [
        "< HTTP/1.1 302 Found", "< HTTP/1.1 301 Moved", "< HTTP/1.1 200 OK"]
    assert "< X-Hop: first" in lines and "< X-Hop: final" in lines
    assert sum(ln.startswith("* first byte after ") for ln in lines) == 3
    assert re.fullmatch(r"\* total \d+\.\d{6} s, 100 body bytes, exit status 0", lines[-1]), lines
    # in order: connect, protocol, request, first byte, head, per hop
    i = lines.index(connected[0])
    assert lines[i + 1] == "* using HTTP/1.1"
    assert lines[i + 2] == "> GET /r HTTP/1.1"


def test_verbose_masks_header_credentials(srv, tmp_path):
    # (a response head with control bytes is refused by the parser before -v sees it)
    r = fetch("-v", "-s", "-H", "Authorization: Bearer s3cr3t-token", "-H",
              "Proxy-Authorization: Basic eHk6eg==", srv.url("/a"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert b"s3cr3t" not in r.stderr and b"eHk6eg" not in r.stderr
    assert "> Authorization: Bearer [masked]" in verbose_lines(r)
    assert "> Proxy-Authorization: Basic [masked]" in verbose_lines(r)


def test_verbose_on_a_failed_connect(tmp_path):
    r = fetch("-v", "http://127.0.0.1:1/x", cwd=tmp_path)
    assert r.returncode == 4
    lines = verbose_lines(r)
    assert not any(ln.startswith("* connected") for ln in lines)
    assert lines[-2].startswith("sockit: fetch: cannot connect"), lines
    assert lines[-1].startswith("* total "), lines


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    from nginx_util import Nginx, make_certs
    d = str(tmp_path_factory.mktemp("nginx"))
    srv = Nginx(d, make_certs(os.path.join(d, "certs")))
    srv.put("t.txt", b"tls body\n")
    yield srv
    srv.stop()


def test_verbose_tls_version_cipher_and_certificate(ng, tmp_path):
    r = fetch("-v", "-s", "--cacert", ng.certs["ca"], ng.url("/t.txt", tls=True),
              "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    lines = verbose_lines(r)
    tls = [ln for ln in lines if ln.startswith("* TLS ")]
    assert len(tls) == 1, lines
    assert re.fullmatch(r"\* TLS TLSv1\.[23], cipher [A-Z0-9_-]+, after \d+\.\d{6} s", tls[0]), tls
    assert "* certificate subject: CN=server" in lines
    assert "* certificate issuer: CN=sockit test CA" in lines
    assert any(re.fullmatch(rf"\* connected to 127\.0\.0\.1:{ng.https} after \d+\.\d{{6}} s"
                            r"( \(the TLS handshake included\))?", ln) for ln in lines), lines
    assert "< HTTP/1.1 200 OK" in lines
    assert (tmp_path / "o").read_bytes() == b"tls body\n"


def test_verbose_over_ipv6(ng, tmp_path):
    r = fetch("-v", "-s", ng.url("/t.txt", host="::1"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert any(ln.startswith(f"* connected to [::1]:{ng.http} after ")
               for ln in verbose_lines(r)), r.stderr


def test_verbose_escapes_control_bytes_of_a_long_request(srv, tmp_path):
    # -H refuses only CR and LF: other control bytes reach the request, and
    # -v writes them as \xHH (this head is larger than -v's buffer)
    r = fetch("-v", "-s", "-H", "X-Esc: " + "\x1b" * 20000, srv.url("/a"),
              "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"\x1b" not in r.stderr
    line = [ln for ln in verbose_lines(r) if ln.startswith("> X-Esc: ")]
    assert line == ["> X-Esc: " + "\\x1b" * 20000]
