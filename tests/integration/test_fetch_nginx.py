"""sockit fetch against a real nginx (HTTP and HTTPS, IPv4 and IPv6) that
this module starts on free loopback ports with its own config and
certificates made by the openssl CLI."""
import glob
import hashlib
import os
import socket
import subprocess

import pytest

from conftest import SOCKIT
from nginx_util import Nginx, make_certs

BIG = 60 * 1024 * 1024


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx"))
    certs = make_certs(os.path.join(d, "certs"))
    srv = Nginx(d, certs)
    srv.small = srv.put("small.bin", os.urandom(1000))
    srv.put("index.html", b"<h1>index</h1>\n")
    srv.put("dir/index.html", b"<h1>dir index</h1>\n")
    srv.put("q.txt", b"query file\n")
    text = b"".join(b"line %06d of the chunked body\n" % i for i in range(60000))
    srv.chunked = srv.put("chunked/text.txt", text)
    srv.big = srv.put_big("big.bin", BIG)
    yield srv
    srv.stop()


def fetch(*args, cwd=None, timeout=60):
    return subprocess.run([SOCKIT, "fetch"] + list(args), capture_output=True, cwd=cwd,
                          timeout=timeout)


def assert_clean(r):
    assert r.returncode >= 0, f"killed by signal {-r.returncode}"
    assert b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr.decode()


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def same(a, b):
    return os.path.getsize(a) == os.path.getsize(b) and digest(a) == digest(b)


def no_temp_files(d):
    return not glob.glob(os.path.join(d, ".*.sockit-*"))


def test_small_http_identical_and_headers_on_stdout(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/small.bin"), "-o", str(out))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 1000\r\n" in r.stdout
    assert r.stdout.endswith(b"\r\n\r\n")
    assert no_temp_files(tmp_path)


def test_small_https_identical(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/small.bin", tls=True, host="localhost"), "-o", str(out),
              "--cacert", ng.certs["ca"], "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    assert same(out, ng.small)


@pytest.mark.parametrize("tls", [False, True])
def test_ipv6_literal(ng, tmp_path, tls):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/small.bin", tls=tls, host="::1"), "-o", str(out), "--cacert",
              ng.certs["ca"], "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)


@pytest.mark.parametrize("tls", [False, True])
def test_large_file_identical_with_bounded_memory(ng, tmp_path, tls):
    out = tmp_path / "big.bin"
    # /usr/bin/time reports the peak RSS of sockit alone (%M, KiB) on its last line.
    r = subprocess.run(["/usr/bin/time", "-f", "%M", SOCKIT, "fetch",
                        ng.url("/big.bin", tls=tls, host="localhost"), "-o", str(out),
                        "--cacert", ng.certs["ca"], "-s"], capture_output=True, timeout=120)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(out) == BIG
    assert same(out, ng.big)
    peak_kib = int(r.stderr.strip().splitlines()[-1])
    # Streaming: peak memory is far below the 60 MiB body (ASan builds included).
    assert peak_kib < 48 * 1024, f"peak RSS {peak_kib} KiB"


def test_chunked_response_decoded(ng, tmp_path):
    # On the wire, this location's responses are chunked...
    with socket.create_connection(("127.0.0.1", ng.http), timeout=5) as s:
        s.sendall(b"GET /chunked/text.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            raw += piece
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert len(body) > os.path.getsize(ng.chunked)  # framing included
    # ...and sockit saves the decoded body, not the framing.
    out = tmp_path / "text.txt"
    r = fetch(ng.url("/chunked/text.txt"), "-o", str(out))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert b"Transfer-Encoding: chunked" in r.stdout
    assert same(out, ng.chunked)


def test_chunked_over_https(ng, tmp_path):
    out = tmp_path / "text.txt"
    r = fetch(ng.url("/chunked/text.txt", tls=True, host="localhost"), "-o", str(out),
              "--cacert", ng.certs["ca"], "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert same(out, ng.chunked)


def test_redirect_chain_relative_and_absolute(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/redir/a"), "-o", str(out))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)
    statuses = [line.split(b" ")[1] for line in r.stdout.split(b"\r\n")
                if line.startswith(b"HTTP/1.1 ")]
    assert statuses == [b"302", b"301", b"307", b"200"]


def test_redirect_limit(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/redir/a"), "-o", str(out), "--max-redirs", "2", "-s")
    assert_clean(r)
    assert r.returncode == 7
    assert b"too many redirects" in r.stderr
    assert not out.exists()


def test_max_redirs_zero_does_not_follow(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/redir/a"), "-o", str(out), "--max-redirs", "0")
    assert_clean(r)
    assert r.returncode == 6
    assert r.stdout.startswith(b"HTTP/1.1 302 ")
    assert not out.exists()


def test_redirect_loop_fails_fast(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/redir/loop"), "-o", str(out), timeout=20)
    assert_clean(r)
    assert r.returncode == 7
    assert b"too many redirects (limit 10)" in r.stderr
    assert r.stdout.count(b"HTTP/1.1 302") == 11
    assert not out.exists()


def test_redirect_to_unsupported_scheme(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/redir/ftp"), "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode == 7
    assert b"unsupported scheme" in r.stderr
    assert not out.exists()


def test_https_to_http_downgrade_refused_unless_asked(ng, tmp_path):
    out = tmp_path / "out.bin"
    url = ng.url("/redir/to-http", tls=True, host="localhost")
    r = fetch(url, "-o", str(out), "--cacert", ng.certs["ca"], "-s")
    assert_clean(r)
    assert r.returncode == 7
    assert b"https to http" in r.stderr
    assert not out.exists()
    r = fetch(url, "-o", str(out), "--cacert", ng.certs["ca"], "-s", "--allow-downgrade")
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)


def test_http_to_https_redirect_verified(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(ng.url("/redir/to-https"), "-o", str(out), "--cacert", ng.certs["ca"], "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)


def test_404_not_saved_and_existing_file_untouched(ng, tmp_path):
    out = tmp_path / "keep.txt"
    out.write_bytes(b"precious")
    r = fetch(ng.url("/missing"), "-o", str(out))
    assert_clean(r)
    assert r.returncode == 6
    assert r.stdout.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"HTTP 404" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert out.read_bytes() == b"precious"
    assert no_temp_files(tmp_path)


def test_no_fail_saves_error_body(ng, tmp_path):
    out = tmp_path / "tea.txt"
    r = fetch(ng.url("/teapot"), "-o", str(out), "--no-fail", "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"short and stout\n"


def test_output_dash_body_to_stdout_headers_to_stderr(ng):
    r = fetch(ng.url("/small.bin"), "-o", "-")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    with open(ng.small, "rb") as f:
        assert r.stdout == f.read()
    assert r.stderr.startswith(b"HTTP/1.1 200 OK\r\n")


def test_head_request(ng, tmp_path):
    r = fetch(ng.url("/small.bin"), "-I", cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 1000" in r.stdout
    assert os.listdir(tmp_path) == []


def test_default_name_and_no_clobber(ng, tmp_path):
    r = fetch(ng.url("/small.bin?x=1#frag"), "-s", cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert same(tmp_path / "small.bin", ng.small)
    (tmp_path / "small.bin").write_bytes(b"mine")
    r = fetch(ng.url("/small.bin"), "-s", cwd=tmp_path)
    assert r.returncode == 10
    assert b"exists" in r.stderr
    assert (tmp_path / "small.bin").read_bytes() == b"mine"
    r = fetch(ng.url("/dir/"), "-s", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "index.html").read_bytes() == b"<h1>dir index</h1>\n"


def test_explicit_output_replaces_atomically(ng, tmp_path):
    out = tmp_path / "out.bin"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    r = fetch(ng.url("/small.bin"), "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)
    assert os.stat(out).st_mode & 0o777 == 0o640  # the replaced file's mode is kept
    assert no_temp_files(tmp_path)
    r = fetch(ng.url("/small.bin"), "-o", str(tmp_path), "-s")
    assert r.returncode == 2
    assert b"is a folder" in r.stderr


def test_request_headers(ng):
    r = fetch(ng.url("/echo-headers"), "-o", "-", "-s", "-H", "X-Test: hello there")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    # HTTP/1.1's default: the connection may be kept (no Connection header)
    assert r.stdout == (f"ua=sockit/0.1.0 host=127.0.0.1:{ng.http} x=hello there "
                        "conn=\n").encode()
    r = fetch(ng.url("/echo-headers"), "-o", "-", "-s", "--no-reuse", "-H", "X-Test: hello there")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"ua=sockit/0.1.0 host=127.0.0.1:{ng.http} x=hello there "
                        "conn=close\n").encode()
    r = fetch(ng.url("/echo-headers"), "-o", "-", "-s", "-H", "User-Agent: other/1")
    assert r.stdout.startswith(b"ua=other/1 ")
    for bad in ("NoColon", "Bad Name: x", "Connection: keep-alive", ": x"):
        r = fetch(ng.url("/echo-headers"), "-o", "-", "-H", bad)
        assert r.returncode == 2, bad


def test_tls_wrong_host_rejected(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(f"https://127.0.0.1:{ng.wrong}/small.bin", "-o", str(out), "--cacert",
              ng.certs["ca"])
    assert_clean(r)
    assert r.returncode == 5
    assert b"mismatch" in r.stderr
    assert not out.exists()


def test_tls_unknown_ca_rejected_then_insecure_warns(ng, tmp_path):
    out = tmp_path / "out.bin"
    url = ng.url("/small.bin", tls=True, host="localhost")
    r = fetch(url, "-o", str(out))
    assert_clean(r)
    assert r.returncode == 5
    assert b"certificate verification failed" in r.stderr
    assert not out.exists()
    r = fetch(url, "-o", str(out), "--insecure")
    assert r.returncode == 0, r.stderr
    assert b"warning" in r.stderr and b"not verified" in r.stderr
    assert same(out, ng.small)


def test_bad_cacert_file(ng, tmp_path):
    r = fetch(ng.url("/small.bin", tls=True, host="localhost"), "-o", str(tmp_path / "o"),
              "--cacert", str(tmp_path / "nope.pem"))
    assert r.returncode == 5
    assert b"cannot load CA file" in r.stderr
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate\n")
    r = fetch(ng.url("/small.bin", tls=True, host="localhost"), "-o", str(tmp_path / "o"),
              "--cacert", str(junk))
    assert_clean(r)
    assert r.returncode == 5
    assert b"cannot load CA file" in r.stderr
    assert not (tmp_path / "o").exists()


def test_plain_http_to_tls_port_is_protocol_error(ng, tmp_path):
    out = tmp_path / "out.bin"
    r = fetch(f"http://127.0.0.1:{ng.https}/small.bin", "-o", str(out), "-s")
    assert_clean(r)
    assert r.returncode in (6, 7), r.stderr  # nginx answers 400 in plain text
    assert not out.exists()


def test_output_to_device_is_written_in_place(ng):
    r = fetch(ng.url("/small.bin"), "-o", "/dev/null", "-s")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert not glob.glob("/dev/.null.sockit-*")
    r = fetch(ng.url("/small.bin"), "-o", "/dev/full", "-s")
    assert_clean(r)
    assert r.returncode == 10
    assert b"No space left" in r.stderr


def test_output_folder_missing(ng, tmp_path):
    r = fetch(ng.url("/small.bin"), "-o", str(tmp_path / "no" / "such" / "dir" / "f"), "-s")
    assert_clean(r)
    assert r.returncode == 10
    assert b"cannot create a temporary file" in r.stderr


def test_symlink_target_replaced_link_kept(ng, tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    os.symlink("real.bin", link)
    r = fetch(ng.url("/small.bin"), "-o", str(link), "-s")
    assert r.returncode == 0, r.stderr
    assert os.path.islink(link)
    assert same(real, ng.small)
    assert sorted(os.listdir(tmp_path)) == ["link.bin", "real.bin"]


def test_trust_store_from_environment(ng, tmp_path):
    url = ng.url("/small.bin", tls=True, host="localhost")
    env = dict(os.environ, SSL_CERT_FILE=ng.certs["ca"])
    r = subprocess.run([SOCKIT, "fetch", url, "-o", str(tmp_path / "a"), "-s"], env=env,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert same(tmp_path / "a", ng.small)
    hashed = tmp_path / "certs"
    hashed.mkdir()
    subprocess.run(["cp", ng.certs["ca"], str(hashed / "test-ca.pem")], check=True)
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, capture_output=True)
    env = dict(os.environ, SSL_CERT_DIR=str(hashed))
    r = subprocess.run([SOCKIT, "fetch", url, "-o", str(tmp_path / "b"), "-s"], env=env,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert same(tmp_path / "b", ng.small)
