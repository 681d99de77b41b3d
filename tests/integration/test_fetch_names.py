"""sockit fetch naming the saved file after the server's answer:
-J / --remote-header-name / --content-disposition (the final response's
Content-Disposition, RFC 6266) and --trust-server-names (the final URL
after redirects). Hostile names are cut to their last segment or refused
(the URL's name, with a notice); an existing file is never replaced and
its body is not read. The scripted server is hostile_http.HostileServer;
test_fetch_nginx_names at the end runs against a real nginx (HTTP/1.1 and
HTTP/2)."""
import os

import pytest

from fetch_cli import assert_clean, fetch, usage_error
from hostile_http import HostileServer, Mark
from nginx_util import Nginx, make_certs

BODY = b"the body\n"


def ok(cd=None, body=BODY, extra=b""):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body) + extra
    if cd is not None:
        head += b"Content-Disposition: " + cd + b"\r\n"
    return head + b"\r\n" + body


@pytest.fixture
def srv():
    s = HostileServer()
    yield s
    s.stop()


def cd_route(srv, cd, path="/dl/file.bin", body=BODY):
    srv.route(path, lambda req: ok(cd, body))
    return srv.url(path)


def saved(tmp_path):
    return sorted(os.listdir(tmp_path))


@pytest.mark.parametrize("flag", ["-J", "--remote-header-name", "--content-disposition"])
def test_quoted_filename_names_the_file(srv, tmp_path, flag):
    r = fetch("-s", flag, cd_route(srv, b'attachment; filename="report.pdf"'), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["report.pdf"]
    assert (tmp_path / "report.pdf").read_bytes() == BODY


@pytest.mark.parametrize("cd,name", [
    (b"attachment; filename=plain.txt", "plain.txt"),
    (b'attachment; FileName="A \\"q\\" b.txt"', 'A "q" b.txt'),
    (b'attachment; filename="esc\\aped.txt"', "escaped.txt"),
    (b"inline;filename*=UTF-8''na%C3%AFve%20caf%C3%A9.txt; filename=\"ascii.txt\"",
     "na\u00efve caf\u00e9.txt"),
    (b"attachment; filename=\"ascii.txt\"; FILENAME*=utf-8''%E2%82%AC.txt", "\u20ac.txt"),
    (b"attachment; filename*=ISO-8859-1''caf%E9.txt; filename=\"fallback.txt\"",
     "fallback.txt"),
    (b'attachment ; filename = "spaced.txt" ;', "spaced.txt"),
    (b'attachment; filename="../../etc/passwd"', "passwd"),
    (b'attachment; filename="/abs/path/x.bin"', "x.bin"),
    (b'attachment; filename="a\\\\b.txt"', "b.txt"),
    (b"attachment; filename*=UTF-8''..%2F..%2Fescape.txt", "escape.txt"),
    (b'attachment; filename="first.txt"; filename="second.txt"', "first.txt"),
])
def test_filename_forms(srv, tmp_path, cd, name):
    r = fetch("-s", "-J", cd_route(srv, cd), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == [name]
    assert (tmp_path / name).read_bytes() == BODY


@pytest.mark.parametrize("cd,why", [
    (b'attachment; filename=""', "empty"),
    (b'attachment; filename=".."', "empty"),
    (b'attachment; filename="x/.."', "empty"),
    (b'attachment; filename="dir/"', "empty"),
    (b'attachment; filename=".bashrc"', "hidden"),
    (b'attachment; filename="bad\tname"', "control"),
    (b"attachment; filename*=UTF-8''del%7Fname", "control"),
    (b"attachment; filename*=UTF-8''esc%1B%5B31m", "control"),
    (b"attachment; filename*=UTF-8''nul%00name", "control"),
    (b"attachment; filename*=UTF-8''tab%09name", "control"),
    (b"attachment; filename*=UTF-8''bad%zzpct", "percent"),
    (b"attachment; filename*=UTF-8''cut%4", "percent"),
    (b"attachment; filename*=UTF-8''%C3%28.txt", "UTF-8"),
    (b"attachment; filename*=UTF-8''%ED%A0%80.txt", "UTF-8"),
    (b"attachment; filename*=UTF-8''%C0%AF.txt", "UTF-8"),
    (b'attachment; filename="' + b"n" * 256 + b'"', "255"),
    (b'attachment; filename="unterminated', "malformed"),
    (b"attachment; filename*=noquotes", "malformed"),
    (b"attachment filename=x", "malformed"),
])
def test_refused_names_fall_back_to_the_urls(srv, tmp_path, cd, why):
    r = fetch("-J", cd_route(srv, cd), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["file.bin"]
    assert (tmp_path / "file.bin").read_bytes() == BODY
    err = r.stderr.decode()
    assert "Content-Disposition" in err and why in err and "file.bin" in err, err


def test_refused_name_notice_silenced_by_s(srv, tmp_path):
    r = fetch("-s", "-J", cd_route(srv, b'attachment; filename=".."'), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert saved(tmp_path) == ["file.bin"]


def test_255_bytes_is_accepted(srv, tmp_path):
    name = "n" * 255
    r = fetch("-s", "-J", cd_route(srv, b'attachment; filename="%s"' % name.encode()),
              cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == [name]


@pytest.mark.parametrize("cd", [None, b"inline", b"attachment; size=3"])
def test_no_header_or_no_filename_keeps_the_urls_name(srv, tmp_path, cd):
    r = fetch("-s", "-J", cd_route(srv, cd), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["file.bin"]


def test_without_J_the_header_is_ignored(srv, tmp_path):
    r = fetch("-s", cd_route(srv, b'attachment; filename="other.txt"'), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["file.bin"]


def test_redirects_content_disposition_is_ignored(srv, tmp_path):
    srv.route("/hop", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /dl/final.bin\r\n"
              b"Content-Disposition: attachment; filename=\"from-302.txt\"\r\n"
              b"Content-Length: 0\r\n\r\n")
    cd_route(srv, b'attachment; filename="from-200.txt"', "/dl/final.bin")
    r = fetch("-s", "-J", srv.url("/hop"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["from-200.txt"]
    srv.route("/hop2", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /dl/none.bin\r\n"
              b"Content-Disposition: attachment; filename=\"from-302.txt\"\r\n"
              b"Content-Length: 0\r\n\r\n")
    cd_route(srv, None, "/dl/none.bin")
    r = fetch("-s", "-J", srv.url("/hop2"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["from-200.txt", "hop2"], "the given URL's name, not the 302's"


def test_existing_target_exit_10_nothing_replaced_body_not_read(srv, tmp_path):
    (tmp_path / "taken.txt").write_bytes(b"mine")
    sent = []

    def endless(req):
        yield (b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n"
               b"Content-Disposition: attachment; filename=\"taken.txt\"\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(200000):  # 13 GB: never all read within the test's time
            sent.append(len(chunk))
            yield chunk

    srv.route("/dl/big.bin", endless)
    r = fetch("-J", srv.url("/dl/big.bin"), cwd=tmp_path, timeout=30)
    assert_clean(r)
    assert r.returncode == 10, r.stderr
    assert "taken.txt exists; not replacing it" in r.stderr.decode()
    assert saved(tmp_path) == ["taken.txt"], "no temporary file left"
    assert (tmp_path / "taken.txt").read_bytes() == b"mine"


def test_existing_url_name_is_fine_when_the_header_names_another(srv, tmp_path):
    (tmp_path / "file.bin").write_bytes(b"mine")
    r = fetch("-s", "-J", cd_route(srv, b'attachment; filename="new.bin"'), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "file.bin").read_bytes() == b"mine"
    assert (tmp_path / "new.bin").read_bytes() == BODY


def test_existing_url_name_without_header_is_exit_10(srv, tmp_path):
    (tmp_path / "file.bin").write_bytes(b"mine")
    r = fetch("-J", cd_route(srv, None), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 10, r.stderr
    assert (tmp_path / "file.bin").read_bytes() == b"mine"


def test_output_dir_and_write_out_filename_effective(srv, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = fetch("-J", "--output-dir", str(out), "-w", "%{filename_effective}\\n",
              cd_route(srv, b'attachment; filename="../named.txt"'), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(out) == ["named.txt"] and saved(tmp_path) == ["out"]
    assert r.stdout.decode().splitlines()[-1] == f"{out}/named.txt"


def test_header_name_too_long_for_the_output_dir_is_exit_10(srv, tmp_path):
    """The folder and the URL's short name fit PATH_MAX, the folder and the
    server's 200-byte name do not: exit 10, nothing saved, before the body."""
    out = str(tmp_path)
    while len(out) < 4096 - 150:
        out = os.path.join(out, "d" * 200)
    os.makedirs(out)
    name = "n" * 200
    r = fetch("-J", "--output-dir", out, cd_route(srv, b'attachment; filename="%s"' % name.encode()),
              cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 10, r.stderr
    assert "File name too long" in r.stderr.decode(), r.stderr
    assert os.listdir(out) == []


def test_several_urls_say_the_saved_name(srv, tmp_path):
    a = cd_route(srv, b'attachment; filename="one.txt"', "/a")
    b = cd_route(srv, b'attachment; filename="two.txt"', "/b")
    r = fetch("-J", a, b, cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert f"{a}: saved one.txt" in err and f"{b}: saved two.txt" in err, err
    assert saved(tmp_path) == ["one.txt", "two.txt"]


@pytest.mark.parametrize("par", [[], ["--parallel", "2"]])
def test_two_urls_with_the_same_header_name(srv, tmp_path, par):
    a = cd_route(srv, b'attachment; filename="same.bin"', "/a", b"from a\n")
    b = cd_route(srv, b'attachment; filename="same.bin"', "/b", b"from b\n")
    r = fetch("-J", *par, a, b, cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 10, r.stderr
    assert saved(tmp_path) == ["same.bin"]
    assert (tmp_path / "same.bin").read_bytes() in (b"from a\n", b"from b\n")
    err = r.stderr.decode()
    assert "1 succeeded, 1 failed" in err and "same.bin" in err, err


def test_output_wins(srv, tmp_path):
    url = cd_route(srv, b'attachment; filename="header.txt"')
    for flags in (["-J"], ["--trust-server-names"]):
        r = fetch("-s", *flags, "-o", "mine.txt", url, cwd=tmp_path)
        assert_clean(r)
        assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["mine.txt"]


@pytest.mark.parametrize("flag", ["-J", "--content-disposition", "--trust-server-names"])
def test_with_resume_is_a_usage_error(srv, tmp_path, flag):
    usage_error(fetch(flag, "-C", "-", srv.url("/dl/file.bin"), cwd=tmp_path), "-C")
    assert saved(tmp_path) == []
    assert srv.requests == []


def test_with_resume_and_output_is_fine(srv, tmp_path):
    r = fetch("-s", "-J", "-C", "-", "-o", "out.bin",
              cd_route(srv, b'attachment; filename="header.txt"'), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["out.bin"]


def chain(srv):
    srv.route("/start/given.bin", lambda req: b"HTTP/1.1 302 Found\r\nLocation: /mid/x\r\n"
              b"Content-Length: 0\r\n\r\n")
    srv.route("/mid/x", lambda req: b"HTTP/1.1 301 Moved\r\nLocation: /files/final.tar.gz?v=1\r\n"
              b"Content-Length: 0\r\n\r\n")
    srv.route("/files/final.tar.gz",
              lambda req: ok(b'attachment; filename="header.bin"'))
    return srv.url("/start/given.bin")


def test_trust_server_names_after_a_redirect_chain(srv, tmp_path):
    r = fetch("-s", "--trust-server-names", "-w", "%{filename_effective}", chain(srv),
              cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["final.tar.gz"]
    assert r.stdout == b"final.tar.gz"


def test_without_trust_the_given_urls_name(srv, tmp_path):
    r = fetch("-s", chain(srv), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["given.bin"]


def test_content_disposition_wins_over_the_final_url(srv, tmp_path):
    r = fetch("-s", "--trust-server-names", "-J", chain(srv), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["header.bin"]


def test_trust_server_names_existing_final_name_is_exit_10(srv, tmp_path):
    (tmp_path / "final.tar.gz").write_bytes(b"mine")
    r = fetch("--trust-server-names", chain(srv), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 10, r.stderr
    assert saved(tmp_path) == ["final.tar.gz"]
    assert (tmp_path / "final.tar.gz").read_bytes() == b"mine"


@pytest.mark.parametrize("target", ["/x/.profile", "/x/..", "/x/."])
def test_trust_server_names_refuses_a_hidden_final_name(srv, tmp_path, target):
    srv.route("/given.bin", lambda req: b"HTTP/1.1 302 Found\r\nLocation: %s\r\n"
              b"Content-Length: 0\r\n\r\n" % target.encode())
    srv.route(target, lambda req: ok())
    srv.route("/", lambda req: ok())
    srv.route("/x/", lambda req: ok())
    r = fetch("--trust-server-names", srv.url("/given.bin"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    if target == "/x/.profile":
        assert "refused" in r.stderr.decode() and "given.bin" in r.stderr.decode(), r.stderr
    assert saved(tmp_path) in (["given.bin"], ["index.html"]), "dot segments resolve away"
    assert not any(n.startswith(".") for n in saved(tmp_path))


def test_error_status_is_exit_6_not_10(srv, tmp_path):
    (tmp_path / "gone.txt").write_bytes(b"mine")
    srv.route("/x", lambda req: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
              b"Content-Disposition: attachment; filename=\"gone.txt\"\r\n\r\n")
    r = fetch("-s", "-J", srv.url("/x"), cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 6, r.stderr


def test_help_lists_the_options():
    r = fetch("--help")
    out = r.stdout.decode()
    for opt in ("--remote-header-name", "--content-disposition", "--trust-server-names"):
        assert opt in out


NGINX_CD = """
        location = /cd/plain.bin {
            add_header Content-Disposition "attachment; filename=\\"plain name.txt\\"";
        }
        location = /cd/ext.bin {
            add_header Content-Disposition "attachment; filename=\\"x.txt\\"; filename*=UTF-8''na%C3%AFve.txt";
        }
"""


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx_cd"))
    certs = make_certs(os.path.join(d, "certs"))
    srv = Nginx(d, certs, http2=True, extra_locations=NGINX_CD)
    srv.put("cd/plain.bin", b"plain\n")
    srv.put("cd/ext.bin", b"ext\n")
    yield srv
    srv.stop()


@pytest.mark.parametrize("tls", [False, True], ids=["http1.1", "h2"])
def test_fetch_nginx_names(ng, tmp_path, tls):
    r = fetch("-J", "-w", "%{http_version} %{filename_effective}\\n",
              ng.url("/cd/plain.bin", tls=tls, host="localhost" if tls else "127.0.0.1"),
              ng.url("/cd/ext.bin", tls=tls, host="localhost" if tls else "127.0.0.1"),
              "--cacert", ng.certs["ca"], cwd=tmp_path)
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert saved(tmp_path) == ["na\u00efve.txt", "plain name.txt"]
    assert (tmp_path / "plain name.txt").read_bytes() == b"plain\n"
    assert (tmp_path / "na\u00efve.txt").read_bytes() == b"ext\n"
    v = "2" if tls else "1.1"
    assert f"{v} plain name.txt" in r.stdout.decode(), r.stdout
