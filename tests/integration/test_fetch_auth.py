"""sockit fetch credentials (issue 11): -u USER:PASSWORD, user:password@ in
the URL, --netrc / --netrc-file; Basic only to the URL's origin, dropped on
a redirect to another (as -H credentials are), never shown. The scripted
server is hostile_http.HostileServer."""
import base64
import os

import pytest

from fetch_cli import assert_clean, fetch, usage_error
from hostile_http import HostileServer

BODY = b"secret page\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def srv():
    s = HostileServer()
    s.route("/a", lambda req: OK)
    s.route("/denied", lambda req: b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
    yield s
    s.stop()


def auth_of(srv, i=0):
    return srv.requests[i].headers.get("authorization")


@pytest.mark.parametrize("flag", ["-u", "--user"])
def test_user_sends_basic(srv, tmp_path, flag):
    r = fetch("-s", flag, "alice:s3cr:et", srv.url("/a"), "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("alice", "s3cr:et"), "split at the first ':'"
    assert (tmp_path / "o").read_bytes() == BODY


def test_user_without_password_is_refused_not_prompted(srv):
    r = fetch("-u", "alice", srv.url("/a"))
    usage_error(r, "does not prompt")
    assert srv.requests == []


@pytest.mark.parametrize("value,words", [("a\x01:b", "control"), ("a:" + "p" * 256, "at most")])
def test_bad_user_values(srv, value, words):
    usage_error(fetch("-u", value, srv.url("/a")), words)


def test_a_401_is_an_http_failure(srv, tmp_path):
    r = fetch("-s", "-u", "a:wrong", srv.url("/denied"), cwd=tmp_path)
    assert r.returncode == 6 and b"HTTP 401" in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []


def test_header_authorization_wins_over_user(srv, tmp_path):
    r = fetch("-s", "-u", "a:b", "-H", "Authorization: Bearer tok", srv.url("/a"),
              "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == "Bearer tok"
    assert srv.requests[0].raw.lower().count(b"authorization:") == 1


def redirect_to(target):
    return lambda req: (b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
                        % target.encode())


def test_same_origin_redirect_keeps_credentials(srv, tmp_path):
    srv.route("/r", redirect_to("/a"))
    r = fetch("-s", "-u", "a:b", srv.url("/r"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert [auth_of(srv, i) for i in range(2)] == [basic("a", "b")] * 2


@pytest.mark.parametrize("how", ["-u", "url", "netrc"])
def test_cross_origin_redirect_drops_credentials(srv, tmp_path, how):
    # 127.0.0.1 and localhost are other origins (another host name), and so
    # is another port; the chain comes back to the first origin at the end.
    other = HostileServer()
    try:
        other.route("/o", redirect_to(srv.url("/a")))
        srv.route("/r", redirect_to(srv.url("/s", host="localhost")))
        srv.route("/s", redirect_to(other.url("/o")))
        args = ["-s", "-o", str(tmp_path / "o")]
        env = dict(os.environ, HOME=str(tmp_path))
        url = srv.url("/r")
        if how == "-u":
            args += ["-u", "a:b"]
        elif how == "url":
            url = url.replace("http://", "http://a:b@")
        else:
            (tmp_path / ".netrc").write_text("machine 127.0.0.1 login a password b\n")
            args += ["--netrc"]
        r = fetch(*args, url, env=env)
        assert_clean(r)
        assert r.returncode == 0, r.stderr
        assert [q.path for q in srv.requests] == ["/r", "/s", "/a"]
        assert auth_of(srv, 0) == basic("a", "b")
        assert auth_of(srv, 1) is None, "another host name"
        assert other.requests[0].headers.get("authorization") is None, "another port"
        assert auth_of(srv, 2) is None, "once dropped, never sent again in the chain"
    finally:
        other.stop()


def test_header_and_user_credentials_dropped_alike(srv, tmp_path):
    srv.route("/r", redirect_to(srv.url("/a", host="localhost")))
    r = fetch("-s", "-u", "a:b", "-H", "Cookie: c=1", srv.url("/r"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "cookie" in srv.requests[0].headers and "authorization" in srv.requests[0].headers
    assert "cookie" not in srv.requests[1].headers
    assert "authorization" not in srv.requests[1].headers


def test_credentials_in_the_url_percent_decoded(srv, tmp_path):
    url = srv.url("/a").replace("http://", "http://us%40er:p%3Ass%20w@")
    r = fetch("-s", url, "-o", str(tmp_path / "o"))
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("us@er", "p:ss w")
    assert srv.requests[0].headers["host"] == f"127.0.0.1:{srv.port}", "no userinfo on the wire"


def test_user_option_wins_over_the_url(srv, tmp_path):
    url = srv.url("/a").replace("http://", "http://x:y@")
    r = fetch("-s", "-u", "a:b", url, "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("a", "b")


def test_url_credentials_never_shown(srv, tmp_path):
    ok = srv.url("/a").replace("http://", "http://alice:hunter2@")
    bad = srv.url("/denied").replace("http://", "http://alice:hunter2@")
    r = fetch(ok, bad, cwd=tmp_path)
    assert r.returncode == 6
    out = r.stdout + r.stderr
    assert b"hunter2" not in out and b"alice" not in out, out
    assert f"{srv.url('/a')}: saved a".encode() in r.stderr
    assert f"{srv.url('/denied')}: HTTP 401".encode() in r.stderr
    r = fetch("http://alice:hunter2@no-such-host.invalid/x", cwd=tmp_path)
    assert r.returncode == 3 and b"hunter2" not in r.stderr, r.stderr
    r = fetch("http://alice:hunter2@bad host/x", cwd=tmp_path)
    assert r.returncode == 2 and b"hunter2" not in r.stderr, r.stderr
    assert os.listdir(tmp_path) == ["a"]


def test_resume_metadata_holds_no_credentials(srv, tmp_path):
    srv.route("/big", lambda req: b"HTTP/1.1 200 OK\r\nETag: \"v\"\r\nContent-Length: 100\r\n\r\n"
              + b"x" * 10)
    url = srv.url("/big").replace("http://", "http://alice:hunter2@")
    r = fetch("-s", "-C", url, cwd=tmp_path)
    assert r.returncode == 8, r.stderr
    meta = (tmp_path / "big.part.meta").read_bytes()
    assert b"hunter2" not in meta and srv.url("/big").encode() in meta


@pytest.mark.parametrize("url,words", [("http://u:%zz@h/", "invalid credentials"),
                                       ("http://u@h/", "does not prompt"),
                                       ("http://u:%0a@h/", "invalid credentials")])
def test_bad_url_credentials(url, words):
    usage_error(fetch(url), words)


def test_url_user_alone_with_user_option_is_fine(srv, tmp_path):
    url = srv.url("/a").replace("http://", "http://x@")
    r = fetch("-s", "-u", "a:b", url, "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("a", "b")


# ---- netrc ----

def netrc_run(srv, tmp_path, text, *args, url=None, home=True):
    (tmp_path / ".netrc").write_text(text)
    env = dict(os.environ, HOME=str(tmp_path))
    return fetch("-s", *args, url or srv.url("/a"), "-o", str(tmp_path / "o"), env=env)


def test_netrc_from_home(srv, tmp_path):
    text = ("# hosts\nmachine example.org login x password y\n"
            "machine 127.0.0.1\n  login \"bob smith\"\n  password \"p w\\\"d\"\n")
    r = netrc_run(srv, tmp_path, text, "--netrc")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("bob smith", 'p w"d')


def test_netrc_file(srv, tmp_path):
    f = tmp_path / "creds"
    f.write_text("machine 127.0.0.1 login carol password c\n")
    r = fetch("-s", "--netrc-file", str(f), srv.url("/a"), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("carol", "c")


def test_netrc_only_for_the_matching_host(srv, tmp_path):
    r = netrc_run(srv, tmp_path, "machine localhost login x password y\n", "--netrc")
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) is None


def test_netrc_default_entry(srv, tmp_path):
    r = netrc_run(srv, tmp_path, "machine other login x password y\ndefault login d password e\n",
                  "--netrc")
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("d", "e")


def test_user_and_url_win_over_netrc(srv, tmp_path):
    text = "machine 127.0.0.1 login n password n\n"
    r = netrc_run(srv, tmp_path, text, "--netrc", "-u", "a:b")
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("a", "b")
    r = netrc_run(srv, tmp_path, text, "--netrc",
                  url=srv.url("/a").replace("http://", "http://u:p@"))
    assert r.returncode == 0, r.stderr
    assert auth_of(srv, 1) == basic("u", "p")


def test_without_netrc_option_the_file_is_not_read(srv, tmp_path):
    r = netrc_run(srv, tmp_path, "machine 127.0.0.1 login n password n\n")
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) is None


def test_missing_home_netrc_is_no_error(srv, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    r = fetch("-s", "--netrc", srv.url("/a"), "-o", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) is None


def test_missing_netrc_file_is_a_usage_error(srv, tmp_path):
    usage_error(fetch("--netrc-file", str(tmp_path / "nope"), srv.url("/a")), "cannot read")
    assert srv.requests == []


@pytest.mark.parametrize("text,line,words", [
    ("machine 127.0.0.1 login u password \"open\n", 1, "unterminated quoted token"),
    ("machine a\nlogin u\n\nmachine b bogus\n", 4, "unknown word"),
    ("machine a\nlogin", 2, "'login' without a value"),
    ("login u password p\n", 1, "login, password or account outside"),
    ("machine a login " + "x" * 256 + "\n", 1, "token too long"),
])
def test_malformed_netrc_names_file_and_line(srv, tmp_path, text, line, words):
    f = tmp_path / "n"
    f.write_text(text)
    r = fetch("--netrc-file", str(f), srv.url("/a"))
    usage_error(r, f"{f}:{line}: {words}")
    assert srv.requests == [], "checked before any network work"


def test_malformed_netrc_error_shows_no_secret(srv, tmp_path):
    f = tmp_path / "n"
    f.write_text("machine 127.0.0.1 login u password hunter2 secret\n")
    r = fetch("--netrc-file", str(f), srv.url("/a"))
    assert r.returncode == 2
    assert b"hunter2" not in r.stderr and b"secret" not in r.stderr


def test_oversized_netrc_is_refused(srv, tmp_path):
    f = tmp_path / "n"
    f.write_text("#" * (64 * 1024) + "\n")
    usage_error(fetch("--netrc-file", str(f), srv.url("/a")), "larger than 64 KiB")


def test_netrc_macdef_is_skipped(srv, tmp_path):
    text = ("macdef init\nmachine 127.0.0.1 login evil password evil\n\n"
            "machine 127.0.0.1 login good password g\n")
    r = netrc_run(srv, tmp_path, text, "--netrc")
    assert r.returncode == 0, r.stderr
    assert auth_of(srv) == basic("good", "g")


def test_netrc_for_each_url_of_a_run(srv, tmp_path):
    other = HostileServer()
    try:
        other.route("/b", lambda req: OK)
        f = tmp_path / "n"
        f.write_text("machine 127.0.0.1 login a password b\n")
        (tmp_path / "d").mkdir()
        r = fetch("-s", "--netrc-file", str(f), "-P", str(tmp_path / "d"), srv.url("/a"),
                  other.url("/b", host="localhost"))
        assert r.returncode == 0, r.stderr
        assert auth_of(srv) == basic("a", "b")
        assert other.requests[0].headers.get("authorization") is None
    finally:
        other.stop()


def test_a_url_too_long_shows_nothing_of_it(tmp_path):
    url = "http://alice:hunter2@h/" + "a" * 40000
    r = fetch(url, cwd=tmp_path)
    usage_error(r, "URL too long")
    assert b"hunter2" not in r.stderr and b"alice" not in r.stderr
