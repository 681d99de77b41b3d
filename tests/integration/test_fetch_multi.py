"""sockit fetch with several URLs (issue 11): command-line URLs and -i
lists, each saved under its own name, a result line per URL, a final
count, the first failure's exit status. The scripted server is
hostile_http.HostileServer."""
import os
import subprocess
import threading

import pytest

from conftest import SOCKIT, signal_when
from hostile_http import HostileServer, Mark

OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"


@pytest.fixture
def srv():
    s = HostileServer()
    for name in ("a", "b", "c", "d"):
        body = name.encode() * 10
        s.route("/" + name, lambda req, body=body: OK % (len(body), body))
    yield s
    s.stop()


def fetch(*args, cwd, input=None):
    return subprocess.run([SOCKIT, "fetch", "-s", *args], capture_output=True, cwd=cwd,
                          input=input, timeout=30)


def fetch_loud(*args, cwd):
    return subprocess.run([SOCKIT, "fetch", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, cwd=cwd, timeout=30)


def lines(r):
    out = r.stderr.decode().strip().splitlines()
    assert all(line.startswith("sockit: ") for line in out), out
    return out


@pytest.mark.parametrize("flags", [[], ["--parallel", "1"]], ids=["at-once", "one-by-one"])
def test_several_urls_each_saved_under_its_name(srv, tmp_path, flags):
    r = fetch_loud(*flags, srv.url("/a"), srv.url("/b"), srv.url("/c"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]
    assert (tmp_path / "b").read_bytes() == b"b" * 10
    out = lines(r)
    assert out == [f"sockit: fetch: {srv.url('/' + n)}: saved {n}" for n in "abc"] + [
        "sockit: fetch: 3 succeeded, 0 failed"], "the lines in the order given"
    paths = [q.path for q in srv.requests]
    # at once (the default: 8), the server may see them in any order
    assert (paths if flags else sorted(paths)) == ["/a", "/b", "/c"], paths


def test_silent_run_prints_nothing_on_success(srv, tmp_path):
    r = fetch(srv.url("/a"), srv.url("/b"), cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_list_file_skips_comments_and_blank_lines(srv, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(f"# mirror\n\n  {srv.url('/a')}  \n\t\n#{srv.url('/b')}\n{srv.url('/c')}")
    out = tmp_path / "out"
    out.mkdir()
    r = fetch_loud(srv.url("/d"), "-i", str(lst), cwd=out)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["a", "c", "d"]
    # the result lines come in the run's order of URLs: the command line's first
    assert lines(r)[:3] == [f"sockit: fetch: {srv.url('/' + n)}: saved {n}" for n in "dac"]
    assert sorted(q.path for q in srv.requests) == ["/a", "/c", "/d"]


def test_list_from_standard_input(srv, tmp_path):
    text = f"{srv.url('/a')}\n# no\n\n{srv.url('/b')}\n".encode()
    r = fetch("-i", "-", cwd=tmp_path, input=text)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_a_one_url_list_still_counts(srv, tmp_path):
    lst = tmp_path / "l"
    lst.write_text(srv.url("/a") + "\n")
    d = tmp_path / "d"
    d.mkdir()
    r = fetch_loud("-i", str(lst), cwd=d)
    assert r.returncode == 0 and lines(r)[-1] == "sockit: fetch: 1 succeeded, 0 failed", r.stderr


def test_output_dir(srv, tmp_path):
    d = tmp_path / "mirror"
    d.mkdir()
    r = fetch("--output-dir", str(d), srv.url("/a"), srv.url("/b"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(d)) == ["a", "b"]
    assert sorted(os.listdir(tmp_path)) == ["mirror"]


def test_output_dir_missing_is_an_output_error_for_each(srv, tmp_path):
    r = fetch("--output-dir", str(tmp_path / "nope"), srv.url("/a"), srv.url("/b"), cwd=tmp_path)
    assert r.returncode == 10, r.stderr
    assert lines(r)[-1] == "sockit: fetch: 0 succeeded, 2 failed"
    assert os.listdir(tmp_path) == []


def test_mix_of_failures_first_one_in_order_decides(srv, tmp_path):
    srv.route("/gone", lambda req: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    (tmp_path / "c").write_bytes(b"mine")
    urls = [srv.url("/a"), srv.url("/gone"), srv.url("/c"), "http://127.0.0.1:1/x", srv.url("/d")]
    r = fetch(*urls, cwd=tmp_path)
    assert r.returncode == 6, r.stderr  # the 404, the first failure given
    out = lines(r)
    assert out[-1] == "sockit: fetch: 2 succeeded, 3 failed", out
    assert any(srv.url("/gone") in line for line in out), out
    assert any("c exists; not replacing it" in line for line in out), out
    assert sorted(os.listdir(tmp_path)) == ["a", "c", "d"]
    assert (tmp_path / "c").read_bytes() == b"mine", "the existing file is untouched"
    assert sorted(q.path for q in srv.requests) == ["/a", "/d", "/gone"], "nothing asked for c"


def test_existing_file_refused_only_for_its_url(srv, tmp_path):
    (tmp_path / "a").write_bytes(b"mine")
    r = fetch(srv.url("/a"), srv.url("/b"), cwd=tmp_path)
    assert r.returncode == 10, r.stderr
    assert (tmp_path / "a").read_bytes() == b"mine"
    assert (tmp_path / "b").read_bytes() == b"b" * 10


def test_bad_url_in_a_list_fails_that_one(srv, tmp_path):
    r = fetch("ftp://x/y", srv.url("/a"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert os.listdir(tmp_path) == ["a"]


@pytest.mark.parametrize("args, words", [
    (["http://h/a", "http://h/b", "-o", "x"], "-o names one file"),
    (["-i", "-", "-o", "x"], "-o names one file"),
    (["http://h/a", "-o", "x", "--output-dir", "."], "--output-dir is for names"),
    (["-i", "a", "-i", "b"], "-i given twice"),
    (["http://h/a", "--output-dir", ""], "empty folder name"),
    (["-i", "/nonexistent/list"], "cannot open /nonexistent/list"),
    (["-i", "-"], "missing URL"),
])
def test_usage_errors(tmp_path, args, words):
    r = fetch(*args, cwd=tmp_path, input=b"# nothing\n\n")
    assert r.returncode == 2, r.stderr
    out = lines(r)
    assert len(out) == 1 and words in out[0], out
    assert os.listdir(tmp_path) == []


def test_too_long_list_line_names_its_line(tmp_path):
    lst = tmp_path / "l"
    lst.write_bytes(b"# ok\nhttp://h/" + b"a" * 8192 + b"\n")
    r = fetch("-i", str(lst), cwd=tmp_path)
    assert r.returncode == 2
    assert lines(r) == [f"sockit: fetch: {lst}:2: line longer than 8192 bytes"]


def test_longest_list_line_is_read(srv, tmp_path):
    url = srv.url("/a")
    pad = "?" + "p" * (8192 - len(url) - 1)
    lst = tmp_path / "l"
    lst.write_text(url + pad + "\n")
    d = tmp_path / "d"
    d.mkdir()
    r = fetch("-i", str(lst), cwd=d)
    assert r.returncode == 0, r.stderr
    assert os.listdir(d) == ["a"]
    assert len(srv.requests[0].raw.split(b" ")[1]) > 8000


def test_nul_byte_in_list_is_refused(tmp_path):
    lst = tmp_path / "l"
    lst.write_bytes(b"http://h/a\0b\n")
    r = fetch("-i", str(lst), cwd=tmp_path)
    assert r.returncode == 2
    assert lines(r) == [f"sockit: fetch: {lst}:1: NUL byte in the line"]


def test_sigint_stops_the_run_nothing_partial(srv, tmp_path):
    flowing = threading.Event()

    def endless(req):
        yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 65536
        yield Mark(flowing)
        while True:
            yield b"x" * 65536

    srv.route("/big", endless)
    # one at a time: the subject is a run stopped between URLs, the third never begun
    # (several at once: test_fetch_parallel.py's test_sigint_mid_run_leaves_no_partial_file)
    rc, err = signal_when([SOCKIT, "fetch", "-s", "--parallel", "1", srv.url("/a"),
                           srv.url("/big"), srv.url("/c")], flowing, cwd=tmp_path)
    assert rc == 1, err
    assert "interrupted" in err, err
    assert "1 succeeded, 1 failed, the rest not tried" in err, err
    assert os.listdir(tmp_path) == ["a"], "no temporary file left, the third never begun"
    assert [q.path for q in srv.requests] == ["/a", "/big"]


def test_no_descriptor_leaks_across_urls(srv, tmp_path):
    """With 20 descriptors, 60 URLs: one leaked descriptor per URL would
    run out long before the end."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (20, 20))

    lst = tmp_path / "l"
    d = tmp_path / "d"
    d.mkdir()
    srv.route("/gone", lambda req: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    names = [f"f{i}" for i in range(60)]
    for n in names:
        body = n.encode()
        srv.route("/" + n, lambda req, body=body: OK % (len(body), body))
    lst.write_text("".join(srv.url("/" + n) + "\n" + srv.url("/gone") + "\n" for n in names))
    r = subprocess.run([SOCKIT, "fetch", "-s", "-i", str(lst)], capture_output=True, cwd=d,
                       timeout=60, preexec_fn=low_limit)
    assert r.returncode == 6, r.stderr[-500:]
    assert lines(r)[-1] == "sockit: fetch: 60 succeeded, 60 failed", r.stderr[-500:]
    assert sorted(os.listdir(d)) == sorted(names)
