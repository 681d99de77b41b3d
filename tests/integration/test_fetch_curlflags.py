"""sockit fetch as a curl or wget user types it (issue 11): their spellings
of what fetch already does, a URL without a scheme, the upload methods
refused. The scripted server is hostile_http.HostileServer."""
import os

import pytest

from fetch_cli import assert_clean, fetch, usage_error
from hostile_http import HostileServer

BODY = b"hello curl user\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
DATA = bytes(range(256)) * 100


def ranged(req, cut=None):
    """/f: a strong ETag, Range + If-Range honoured; cut: a full reply that
    stops after that many bytes."""
    rng = req.headers.get("range")
    if rng and req.headers.get("if-range") == '"v1"':
        start = int(rng.split("=")[1].rstrip("-"))
        body = DATA[start:]
        return (b"HTTP/1.1 206 Partial Content\r\nETag: \"v1\"\r\nContent-Range: bytes %d-%d/%d"
                b"\r\nContent-Length: %d\r\n\r\n" % (start, len(DATA) - 1, len(DATA), len(body))
                + body)
    body = DATA if cut is None else DATA[:cut]
    return (b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: %d\r\n\r\n" % len(DATA)) + body


@pytest.fixture
def srv():
    s = HostileServer()
    s.route("/a.txt", lambda req: OK)
    s.route("/moved", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /a.txt\r\n"
            b"Content-Length: 0\r\n\r\n")
    s.route("/missing", lambda req: b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
    yield s
    s.stop()


@pytest.mark.parametrize("flag", ["-L", "--location"])
def test_location_follows_redirects_as_always(srv, tmp_path, flag):
    r = fetch("-s", flag, srv.url("/moved"), "-o", str(tmp_path / "out"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == BODY
    assert [q.path for q in srv.requests] == ["/moved", "/a.txt"]


@pytest.mark.parametrize("flag", ["-O", "--remote-name"])
def test_remote_name_saves_under_the_urls_name(srv, tmp_path, flag):
    r = fetch("-s", flag, srv.url("/a.txt"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_path) == ["a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == BODY


def test_remote_name_with_output_is_a_usage_error(srv, tmp_path):
    usage_error(fetch("-O", "-o", "x", srv.url("/a.txt"), cwd=tmp_path), "-O")
    assert os.listdir(tmp_path) == [] and srv.requests == []


@pytest.mark.parametrize("flag", ["-f", "--fail"])
def test_fail_is_the_default_for_http_errors(srv, tmp_path, flag):
    r = fetch("-s", flag, srv.url("/missing"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 6, r.stderr
    assert b"HTTP 404" in r.stderr
    assert os.listdir(tmp_path) == []


def test_fail_and_no_fail_the_last_one_wins(srv, tmp_path):
    r = fetch("-s", "-f", "--no-fail", srv.url("/missing"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"nope"
    r = fetch("-s", "--no-fail", "-f", srv.url("/missing"), "-o", str(tmp_path / "p"))
    assert r.returncode == 6, r.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("flags", [["-sS"], ["-s", "--show-error"], ["-q", "-S"]])
def test_show_error_with_silent_still_says_why(srv, tmp_path, flags):
    r = fetch(*flags, srv.url("/missing"), cwd=tmp_path)
    assert r.returncode == 6
    assert r.stdout == b""
    assert r.stderr.decode().startswith("sockit: fetch: HTTP 404"), r.stderr


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_is_silent(srv, tmp_path, flag):
    r = fetch(flag, srv.url("/a.txt"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and r.stderr == b""
    assert (tmp_path / "a.txt").read_bytes() == BODY


@pytest.mark.parametrize("flag", ["-A", "--user-agent"])
def test_user_agent(srv, tmp_path, flag):
    r = fetch("-s", flag, "Mozilla/5.0 (test)", srv.url("/a.txt"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert srv.requests[0].headers["user-agent"] == "Mozilla/5.0 (test)"
    assert srv.requests[0].raw.count(b"User-Agent:") == 1


def test_header_still_overrides_user_agent(srv, tmp_path):
    r = fetch("-s", "-A", "one", "-H", "User-Agent: two", srv.url("/a.txt"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert srv.requests[0].headers["user-agent"] == "two"


@pytest.mark.parametrize("value,words", [("", "empty User-Agent"), ("a\r\nX: y", "CR or LF")])
def test_bad_user_agent_is_a_usage_error(srv, value, words):
    usage_error(fetch("-A", value, srv.url("/a.txt")), words)
    assert srv.requests == []


def interrupted(srv, tmp_path):
    srv.route("/f", lambda req: ranged(req, cut=10000))
    r = fetch("-s", "-C", srv.url("/f"), cwd=tmp_path)
    assert r.returncode == 8, r.stderr
    assert (tmp_path / "f.part").read_bytes() == DATA[:10000]
    srv.route("/f", ranged)


@pytest.mark.parametrize("flags", [["-C", "-"], ["-C-"], ["--continue-at", "-"],
                                   ["--continue-at=-"], ["-c"], ["--continue"]])
def test_resume_spellings_continue_the_part(srv, tmp_path, flags):
    interrupted(srv, tmp_path)
    r = fetch("-s", *flags, srv.url("/f"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f").read_bytes() == DATA
    assert srv.requests[-1].headers["range"] == "bytes=10000-"
    assert os.listdir(tmp_path) == ["f"]


def test_resume_dash_after_the_url(srv, tmp_path):
    interrupted(srv, tmp_path)
    r = fetch("-s", srv.url("/f"), "-C", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f").read_bytes() == DATA


@pytest.mark.parametrize("flags,words", [(["-C", "100"], "byte offsets"),
                                         (["-C100"], "only '-'"),
                                         (["--continue-at", "5"], "only '-'")])
def test_resume_at_an_offset_is_refused(srv, tmp_path, flags, words):
    usage_error(fetch(*flags, srv.url("/f"), cwd=tmp_path), words)
    assert srv.requests == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag", ["-P", "--directory-prefix", "--output-dir"])
def test_directory_prefix(srv, tmp_path, flag):
    (tmp_path / "d").mkdir()
    r = fetch("-s", flag, str(tmp_path / "d"), srv.url("/a.txt"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_path / "d") == ["a.txt"]


def test_empty_directory_prefix_is_a_usage_error(srv):
    usage_error(fetch("-P", "", srv.url("/a.txt")), "-P")


def test_url_without_scheme_means_http(srv, tmp_path):
    bare = srv.url("/a.txt")[len("http://"):]
    r = fetch(bare, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_bytes() == BODY
    assert srv.requests[0].headers["host"] == bare.split("/")[0]


def test_urls_without_scheme_in_a_list(srv, tmp_path):
    (tmp_path / "l").write_text(srv.url("/a.txt")[len("http://"):] + "\n")
    (tmp_path / "o").mkdir()
    r = fetch("-i", str(tmp_path / "l"), "-P", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert f"{srv.url('/a.txt')}: saved".encode() in r.stderr
    assert os.listdir(tmp_path / "o") == ["a.txt"]


def test_another_scheme_is_still_refused(tmp_path):
    usage_error(fetch("ftp://example.org/x", cwd=tmp_path), "unsupported URL scheme")


@pytest.mark.parametrize("flags", [["-d", "a=b"], ["--data", "a=b"], ["--data-binary", "@f"],
                                   ["--data-raw", "x"], ["--data-urlencode", "x"],
                                   ["-F", "f=@x"], ["--form", "a=b"], ["-T", "file"],
                                   ["--upload-file", "file"], ["-X", "POST"],
                                   ["--request", "PUT"], ["-XDELETE"]])
def test_uploads_are_out_of_scope(srv, flags):
    usage_error(fetch(*flags, srv.url("/a.txt")), "out of scope")
    assert srv.requests == []


def test_request_get_is_accepted_and_head_points_to_i(srv, tmp_path):
    r = fetch("-s", "-X", "GET", srv.url("/a.txt"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    usage_error(fetch("-X", "HEAD", srv.url("/a.txt")), "-I")


def test_help_lists_the_spellings_and_the_scope():
    r = fetch("--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for word in ("--location", "--remote-name", "--fail", "--show-error", "--quiet",
                 "--continue-at", "--directory-prefix", "--user-agent", "Out of scope",
                 "-d/--data", "-T/--upload-file", "usage: sockit fetch"):
        assert word in out, word
