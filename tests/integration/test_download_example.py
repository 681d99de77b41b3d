"""examples/download.c: `download URL FILE` on the library's HTTP client,
against the tests' nginx (the fixture of test_fetch_nginx.py)."""
import os
import subprocess

from test_fetch_nginx import ng, same  # noqa: F401  (the module-scoped nginx fixture)

BUILD = os.environ.get("SOCKIT_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
DOWNLOAD = os.path.join(BUILD, "examples", "download")


def download(url, out, env=None):
    return subprocess.run([DOWNLOAD, url, str(out)], capture_output=True, timeout=60,
                          env=env)


def test_download_saves_the_exact_bytes(ng, tmp_path):  # noqa: F811
    out = tmp_path / "small.bin"
    r = download(ng.url("/small.bin"), out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and r.stderr == b""
    assert same(out, ng.small)
    assert os.listdir(tmp_path) == ["small.bin"]


def test_download_https_verifies_against_the_trusted_ca(ng, tmp_path):  # noqa: F811
    out = tmp_path / "small.bin"
    env = dict(os.environ, SSL_CERT_FILE=ng.certs["ca"])  # the default store, pointed here
    r = download(ng.url("/small.bin", tls=True, host="localhost"), out, env)
    assert r.returncode == 0, r.stderr
    assert same(out, ng.small)
    # Without that CA the certificate is refused: verification is on.
    r = download(ng.url("/small.bin", tls=True, host="localhost"), tmp_path / "x.bin",
                 dict(os.environ, SSL_CERT_FILE=os.devnull))
    assert r.returncode != 0
    assert r.stderr.startswith(b"download: ") and r.stderr.count(b"\n") == 1, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["small.bin"]


def test_download_404_fails_with_one_line_and_no_file(ng, tmp_path):  # noqa: F811
    out = tmp_path / "missing.bin"
    r = download(ng.url("/no-such-file"), out)
    assert r.returncode != 0
    assert r.stderr.startswith(b"download: ") and r.stderr.count(b"\n") == 1, r.stderr
    assert b"404" in r.stderr
    assert r.stdout == b""
    assert os.listdir(tmp_path) == []
