"""sockit fetch --parallel N (issue 11): several transfers at once on one
event loop. Against the suite's nginx (byte-exact saves, a descriptor
limit) and hostile_http.HostileServer (how many requests are under way at
once, failures, a signal mid-run)."""
import os
import resource
import socket
import subprocess
import threading

import pytest

from conftest import SOCKIT, signal_when, stderr_on_a_terminal, terminal_screen
from fswait import wait_in_folder
from hostile_http import HostileServer, Mark, Sleep
from nginx_util import Nginx, make_certs


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx"))
    srv = Nginx(d, make_certs(os.path.join(d, "certs")), access_log=True)
    srv.files = {}
    for i in range(120):
        name = f"f{i:03d}.bin"
        srv.files[name] = os.urandom(1000 + 37 * i)
        srv.put(name, srv.files[name])
    yield srv
    srv.stop()


def fetch(*args, cwd, timeout=60, **kw):
    return subprocess.run([SOCKIT, "fetch", *args], capture_output=True, cwd=cwd,
                          timeout=timeout, **kw)


def test_fifty_urls_with_parallel_8_all_saved_byte_exact(ng, tmp_path):
    names = sorted(ng.files)[:50]
    r = fetch("--parallel", "8", *[ng.url("/" + n) for n in names], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == names, "no temporary file left"
    for n in names:
        assert (tmp_path / n).read_bytes() == ng.files[n], n
    out = r.stderr.decode().strip().splitlines()
    assert out[-1] == "sockit: fetch: 50 succeeded, 0 failed", out
    saved = sorted(line for line in out[:-1] if ": saved " in line)
    assert saved == sorted(f"sockit: fetch: {ng.url('/' + n)}: saved {n}" for n in names)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("slots", [4, 8], ids=["parallel-4", "default"])
def test_each_slot_reuses_its_connection(ng, tmp_path, tls, slots):
    names = sorted(ng.files)[50:90]
    before = len(ng.log())
    flags = ["--parallel", str(slots)] if slots != 8 else []  # 8: the default
    r = fetch("-s", *flags, "--cacert", ng.certs["ca"],
              *[ng.url("/" + n, tls=tls) for n in names], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for n in names:
        assert (tmp_path / n).read_bytes() == ng.files[n], n
    # nginx writes a line as each request ends
    wait_in_folder(ng.dir, lambda: len(ng.log()) >= before + len(names), 10, "the log lines")
    new = ng.log()[before:]
    assert sorted(uri for _, _, uri in new) == sorted("/" + n for n in names)
    conns = {c for c, _, _ in new}
    assert len(conns) <= slots, new  # at most N connections, each serving its slot's URLs
    assert max(int(k) for _, k, _ in new) >= 40 // slots


def test_curl_and_aria2_spellings(ng, tmp_path):
    names = sorted(ng.files)[:6]
    urls = [ng.url("/" + n) for n in names]
    for i, args in enumerate((["-Z"], ["-Z", "--parallel-max", "3"], ["-j", "2"])):
        d = tmp_path / str(i)
        d.mkdir()
        r = fetch("-s", *args, *urls, cwd=d)
        assert r.returncode == 0, (args, r.stderr)
        assert sorted(os.listdir(d)) == names


@pytest.mark.parametrize("bad", ["0", "x", "1025", "-3"])
def test_parallel_needs_a_count(tmp_path, bad):
    r = fetch("--parallel", bad, "http://127.0.0.1:9/a", "http://127.0.0.1:9/b", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert b"--parallel" in r.stderr


def test_120_urls_under_a_20_descriptor_limit(ng, tmp_path):
    names = sorted(ng.files)
    lst = tmp_path / "list"
    lst.write_text("".join(ng.url("/" + n) + "\n" for n in names))
    out = tmp_path / "out"
    out.mkdir()

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (20, 20))

    r = fetch("-s", "--parallel", "8", "-i", str(lst), cwd=out, preexec_fn=limit)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == names
    for n in names:
        assert (out / n).read_bytes() == ng.files[n], n


class Gate:
    """Holds requests until `k` are waiting (or `hold` seconds pass), then
    `linger` seconds more (a k+1-th would show up meanwhile); records the
    most seen under way at once. once: only the first k are held."""

    def __init__(self, k, hold=10.0, linger=0.0, once=False):
        self.k, self.hold, self.linger, self.once = k, hold, linger, once
        self.cond = threading.Condition()
        self.waiting = self.most = 0
        self.released = self.opened = False

    def __call__(self, req):
        with self.cond:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
            if not self.opened:
                if self.waiting >= self.k:
                    self.cond.wait_for(lambda: self.released, self.linger)
                    self.released = True
                    self.cond.notify_all()
                self.cond.wait_for(lambda: self.released, self.hold)
                self.opened = self.once
            self.waiting -= 1  # before the answer: the next request can only follow it
            if self.waiting == 0 and not self.once:
                self.released = False
        body = req.path.encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def hs():
    s = HostileServer()
    yield s
    s.stop()


def test_parallel_4_has_4_under_way_never_more(hs, tmp_path):
    gate = Gate(4, linger=0.3, once=True)
    for i in range(12):
        hs.route(f"/g{i}", gate)
    urls = [hs.url(f"/g{i}") for i in range(12)]
    r = fetch("-s", "--parallel", "4", *urls, cwd=tmp_path, timeout=30)
    assert r.returncode == 0, r.stderr
    assert gate.most == 4
    assert sorted(os.listdir(tmp_path)) == sorted(f"g{i}" for i in range(12))
    assert (tmp_path / "g7").read_bytes() == b"/g7"


@pytest.mark.parametrize("flags", [[], ["-Z"]], ids=["no-flag", "curl-Z"])
def test_default_is_8_under_way_never_more(hs, tmp_path, flags):
    gate = Gate(8, linger=0.3, once=True)
    for i in range(20):
        hs.route(f"/g{i}", gate)
    urls = [hs.url(f"/g{i}") for i in range(20)]
    r = fetch("-s", *flags, *urls, cwd=tmp_path, timeout=30)
    assert r.returncode == 0, r.stderr
    assert gate.most == 8
    assert sorted(os.listdir(tmp_path)) == sorted(f"g{i}" for i in range(20))


def test_parallel_1_is_one_at_a_time(hs, tmp_path):
    gate = Gate(2, hold=0.2)  # never released by a second request
    for i in range(4):
        hs.route(f"/g{i}", gate)
    r = fetch("-s", "--parallel", "1", *[hs.url(f"/g{i}") for i in range(4)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert gate.most == 1
    assert [q.path for q in hs.requests] == [f"/g{i}" for i in range(4)]


def refused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_failures_counted_first_in_url_order(hs, tmp_path):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    for i in range(6):
        hs.route(f"/ok{i}", lambda req: ok)
    # cut: 10 bytes promised, 3 sent; slow so that it ends after the 404
    hs.route("/cut", lambda req: [Sleep(0.3), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"])
    urls = [hs.url("/ok0"), hs.url("/cut"), hs.url("/ok1"), hs.url("/missing"),
            f"http://127.0.0.1:{refused_port()}/x", hs.url("/ok2"), hs.url("/ok3")]
    r = fetch("--parallel", "4", *urls, cwd=tmp_path)
    # the truncated body is first in URL order (exit 8), though the 404 (6)
    # and the refused connection (4) end before it
    assert r.returncode == 8, r.stderr
    out = r.stderr.decode().strip().splitlines()
    assert out[-1] == "sockit: fetch: 4 succeeded, 3 failed", out
    assert sorted(os.listdir(tmp_path)) == ["ok0", "ok1", "ok2", "ok3"], "nothing partial"
    assert any("/missing: HTTP 404" in line for line in out), out
    assert any("/cut:" in line for line in out), out


def test_sigint_mid_run_leaves_no_partial_file(hs, tmp_path):
    started = threading.Event()
    count = [0]
    lock = threading.Lock()

    def slow(req):
        with lock:
            count[0] += 1
            if count[0] == 3:
                started.set()
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x" * 1000, Sleep(30)]

    for i in range(10):
        hs.route(f"/s{i}", slow)
    argv = [SOCKIT, "fetch", "--parallel", "3", *[hs.url(f"/s{i}") for i in range(10)]]
    rc, err = signal_when(argv, started, cwd=tmp_path)
    assert rc == 1, err
    assert os.listdir(tmp_path) == [], "no partial or temporary file"
    assert "interrupted (SIGINT)" in err
    assert "the rest not tried" in err


def test_terminal_shows_a_line_per_transfer_and_a_total(hs, tmp_path):
    body = b"y" * 200000

    def big(req):
        return [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body[:1000],
                Sleep(0.3), body[1000:]]

    for i in range(3):
        hs.route(f"/b{i}", big)
    rc, out = stderr_on_a_terminal([SOCKIT, "fetch", "--parallel", "3",
                                    *[hs.url(f"/b{i}") for i in range(3)]], timeout=30,
                                   cwd=tmp_path)
    assert rc == 0, out
    text = out.decode()
    assert "under way" in text and "\033[1A" in text, text
    assert "b1  " in text, text
    assert text.rstrip().endswith("sockit: fetch: 3 succeeded, 0 failed"), text
    assert sorted(os.listdir(tmp_path)) == ["b0", "b1", "b2"]


def test_silent_or_no_terminal_draws_no_board(hs, tmp_path):
    hs.route("/a", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    hs.route("/b", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
    r = fetch("--parallel", "2", hs.url("/a"), hs.url("/b"), cwd=tmp_path)
    assert r.returncode == 0 and b"\033[" not in r.stderr, r.stderr
    assert r.stderr.decode().strip().splitlines()[-1] == "sockit: fetch: 2 succeeded, 0 failed"


def test_a_retry_wait_does_not_hold_the_others(hs, tmp_path):
    tries = []

    def flaky(req):
        tries.append(1)
        if len(tries) == 1:
            return b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    hs.route("/flaky", flaky)
    for i in range(5):
        hs.route(f"/q{i}", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nq")
    urls = [hs.url("/flaky")] + [hs.url(f"/q{i}") for i in range(5)]
    r = fetch("-s", "--parallel", "2", "--retry", "1", *urls, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    paths = [q.path for q in hs.requests]
    # the other slot went through all five while /flaky waited its second
    tries_at = [i for i, p in enumerate(paths) if p == "/flaky"]
    assert len(tries_at) == 2 and tries_at[1] == len(paths) - 1, paths
    assert sorted(os.listdir(tmp_path)) == ["flaky"] + [f"q{i}" for i in range(5)]


def test_sha256_and_resume_hold_per_transfer(ng, tmp_path):
    import hashlib
    names = sorted(ng.files)[:4]
    urls = [ng.url("/" + n) for n in names]
    good = hashlib.sha256(ng.files[names[0]]).hexdigest()
    r = fetch("-s", "--parallel", "4", "--sha256", good, *urls, cwd=tmp_path)
    assert r.returncode == 11, r.stderr  # the others do not match that digest
    assert os.listdir(tmp_path) == [names[0]]
    d = tmp_path / "c"
    d.mkdir()
    (d / (names[1] + ".part")).write_bytes(ng.files[names[1]][:100])
    r = fetch("-s", "-C", "--parallel", "4", *urls, cwd=d)
    assert r.returncode == 0, r.stderr
    for n in names:
        assert (d / n).read_bytes() == ng.files[n], n


def test_compressed_and_a_proxy_per_transfer(hs, tmp_path):
    import gzip
    origin = f"http://127.0.0.1:{refused_port()}"  # reached only through the proxy
    bodies = {f"/z{i}": os.urandom(500) * 4 for i in range(4)}
    for path, body in bodies.items():
        z = gzip.compress(body)
        hs.route(origin + path, lambda req, z=z: b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(z), z))
    r = fetch("-s", "--compressed", "--parallel", "4", "-x", f"127.0.0.1:{hs.port}",
              *[origin + p for p in bodies], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for path, body in bodies.items():
        assert (tmp_path / path[1:]).read_bytes() == body, path
    assert all(q.path.startswith(origin) for q in hs.requests)
    assert all("gzip" in q.headers.get("accept-encoding", "") for q in hs.requests)


def answer(body):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_result_lines_in_url_order_when_later_ones_finish_first(hs, tmp_path):
    """/u0 is answered only once u1 and u4 are saved and /u2's 404 sent; u3's
    name is taken (refused before any request): every URL's result line,
    its response head and its -w text wait for those of the URLs before it."""
    (tmp_path / "u3").write_bytes(b"mine")
    u2_answered = threading.Event()
    late = []

    def first(req):
        def saved():
            return u2_answered.is_set() and all((tmp_path / n).exists() for n in ("u1", "u4"))
        try:
            wait_in_folder(str(tmp_path), saved, 10, "u1 and u4 saved, /u2 answered")
        except AssertionError as e:
            late.append(str(e))
        yield answer(b"zero")

    def missing(req):
        yield b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        yield Mark(u2_answered)

    hs.route("/u0", first)
    hs.route("/u1", lambda req: answer(b"one"))
    hs.route("/u2", missing)
    hs.route("/u4", lambda req: answer(b"four"))
    urls = [hs.url(f"/u{i}") for i in range(5)]
    r = fetch("--parallel", "5", "-w", "%{url_effective} %{exitcode}\\n", *urls, cwd=tmp_path)
    assert not late, late
    assert r.returncode == 6, r.stderr  # /u2's 404 is the first failure given (u3's is 10)
    out = r.stderr.decode().splitlines()
    assert out == [f"sockit: fetch: {urls[0]}: saved u0",
                   f"sockit: fetch: {urls[1]}: saved u1",
                   f"sockit: fetch: {urls[2]}: HTTP 404 Not Found (body not saved)",
                   "sockit: fetch: u3 exists; not replacing it (use -o u3 to replace it)",
                   f"sockit: fetch: {urls[4]}: saved u4",
                   "sockit: fetch: 3 succeeded, 2 failed"], out
    codes = [0, 0, 6, 10, 0]
    heads = [answer(b"zero"), answer(b"one"), b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
             b"", answer(b"four")]
    heads = [h[:h.index(b"\r\n\r\n") + 4] if h else h for h in heads]
    # Each URL's head, then its -w text, in URL order too.
    assert r.stdout == b"".join(h + f"{u} {c}\n".encode() for h, u, c in zip(heads, urls, codes))
    assert (tmp_path / "u0").read_bytes() == b"zero"
    assert (tmp_path / "u3").read_bytes() == b"mine"


@pytest.mark.parametrize("extra", [[], ["-D", "-"], ["-v"]], ids=["heads", "dump-header", "verbose"])
def test_heads_and_verbose_lines_do_not_garble_the_board(hs, tmp_path, extra):
    """Standard output and error on one terminal: the heads (and -v's lines)
    of /h1../h4 come while the board is up (they are answered once h0 is
    saved, after which the board is drawn). Each goes above the board,
    whole; at the end the board is gone and the screen holds every head,
    every result line in URL order, and the count last."""
    h0_saved = []

    def after_h0(body):
        def route(req):
            try:
                wait_in_folder(str(tmp_path), lambda: (tmp_path / "h0").exists(), 10, "h0")
            except AssertionError as e:
                h0_saved.append(str(e))
            yield answer(body)
        return route

    hs.route("/h0", lambda req: answer(b"first"))
    for i in range(1, 5):
        hs.route(f"/h{i}", after_h0(b"body %d" % i))
    urls = [hs.url(f"/h{i}") for i in range(5)]
    rc, raw = stderr_on_a_terminal([SOCKIT, "fetch", "--parallel", "5", *extra, *urls],
                                   timeout=30, cwd=tmp_path, stdout_too=True)
    assert rc == 0, raw
    assert not h0_saved, h0_saved
    assert b"under way" in raw, "the board was drawn"
    screen = [line for line in terminal_screen(raw) if line]
    assert not any("under way" in line or line.startswith("  h") for line in screen), screen
    assert screen.count("HTTP/1.1 200 OK") == 5, screen
    for i, line in enumerate(screen):  # each head whole: its lines together
        if line.endswith("HTTP/1.1 200 OK"):
            assert screen[i + 1].startswith(line[:-len("HTTP/1.1 200 OK")] + "Content-Length: ")
    allowed = ("HTTP/1.1 200 OK", "Content-Length: ", "sockit: fetch: ") + (
        ("* ", ">", "<") if "-v" in extra else ())  # ">", "<": a head's last line
    assert all(line.startswith(allowed) for line in screen), screen
    results = [line for line in screen if line.startswith("sockit: fetch: ")]
    assert results == [f"sockit: fetch: {u}: saved h{i}" for i, u in enumerate(urls)] + [
        "sockit: fetch: 5 succeeded, 0 failed"], results
    if "-v" in extra:
        assert screen.count("< HTTP/1.1 200 OK") == 5, screen
    assert sorted(os.listdir(tmp_path)) == [f"h{i}" for i in range(5)]


def test_silent_on_a_terminal_writes_nothing_but_failures(hs, tmp_path):
    """-s: no board, no result lines, no count when all succeeded; a failure
    still says its line, and then the count."""
    for i in range(4):
        hs.route(f"/s{i}", lambda req, i=i: answer(b"%d" % i))
    urls = [hs.url(f"/s{i}") for i in range(4)]
    d = tmp_path / "ok"
    d.mkdir()
    rc, raw = stderr_on_a_terminal([SOCKIT, "fetch", "-s", *urls], timeout=30, cwd=d,
                                   stdout_too=True)
    assert rc == 0 and raw == b"", raw
    assert sorted(os.listdir(d)) == [f"s{i}" for i in range(4)]
    d = tmp_path / "fail"
    d.mkdir()
    rc, raw = stderr_on_a_terminal([SOCKIT, "fetch", "-s", *urls, hs.url("/none")], timeout=30,
                                   cwd=d, stdout_too=True)
    assert rc == 6, raw
    assert terminal_screen(raw) == [f"sockit: fetch: {hs.url('/none')}: HTTP 404 Not Found "
                                    "(body not saved)", "sockit: fetch: 4 succeeded, 1 failed",
                                    ""], raw


@pytest.mark.parametrize("flags", [["--parallel", "4"], ["-Z"], ["-j", "1"]])
def test_one_url_with_a_parallel_flag_is_fetched(hs, tmp_path, flags):
    """One URL takes the direct path whatever the count (--parallel 4 with one
    URL used to fetch nothing and exit 0)."""
    hs.route("/one", lambda req: answer(b"one"))
    r = fetch("-s", *flags, hs.url("/one"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "one").read_bytes() == b"one"
    assert [q.path for q in hs.requests] == ["/one"]
def test_an_unresolvable_name_among_good_urls(ng, tmp_path):
    """Names are looked up off the loop (a thread each, "localhost" here):
    the name that does not resolve fails alone, the others are saved."""
    names = sorted(ng.files)[:6]
    urls = [ng.url("/" + n, host="localhost") for n in names[:3]]
    urls += ["http://nonexistent.invalid/x.bin"]
    urls += [ng.url("/" + n) for n in names[3:]]
    r = fetch("--parallel", "3", *urls, cwd=tmp_path)
    assert r.returncode == 3, r.stderr  # could not resolve
    assert sorted(os.listdir(tmp_path)) == names
    for n in names:
        assert (tmp_path / n).read_bytes() == ng.files[n], n
    err = r.stderr.decode()
    assert "http://nonexistent.invalid/x.bin: could not resolve host nonexistent.invalid" in err
    assert err.strip().splitlines()[-1] == "sockit: fetch: 6 succeeded, 1 failed", err


@pytest.fixture(scope="module")
def slow_resolver(tmp_path_factory):
    """LD_PRELOAD of slow_resolver.c: NAME.slow.test resolves (to nothing)
    only when the test writes a line to the FIFO it waits on."""
    d = tmp_path_factory.mktemp("slowdns")
    so = d / "slow_resolver.so"
    src = os.path.join(os.path.dirname(__file__), "slow_resolver.c")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(so), src, "-ldl"], check=True)
    return str(so)


def slow_env(so, fifo):
    env = dict(os.environ, LD_PRELOAD=so, SLOW_RESOLVER_FIFO=str(fifo))
    # the sanitizer's runtime wants to come first; the shim is not instrumented
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env


def test_a_slow_lookup_does_not_hold_up_the_others(ng, tmp_path, slow_resolver):
    """The lookup waits on its thread while the other transfers run on the
    loop: all of them are saved before the name service answers."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    out.mkdir()
    names = sorted(ng.files)[:8]
    urls = ["http://a.slow.test/x"] + [ng.url("/" + n, host="localhost") for n in names]
    p = subprocess.Popen([SOCKIT, "fetch", "-s", "--parallel", "2", *urls], cwd=out,
                         stderr=subprocess.PIPE, env=slow_env(slow_resolver, fifo))
    try:
        with open(fifo, "w") as w:  # returns once the lookup has started
            wait_in_folder(str(out), lambda: sorted(os.listdir(out)) == names, 20,
                           "the other files, the lookup still waiting")
            assert p.poll() is None
            w.write("\n")
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 3, err
    assert b"could not resolve host a.slow.test" in err
    for n in names:
        assert (out / n).read_bytes() == ng.files[n], n


def held_fifo(fifo):
    """Makes the FIFO slow_resolver waits on and opens it for writing on a
    thread, held open: the lookup never returns. Returns (an event set once
    the lookup opened it, the list holding the file to close)."""
    os.mkfifo(fifo)
    opened = threading.Event()
    keep = []

    def opener():
        keep.append(open(fifo, "w"))
        opened.set()

    threading.Thread(target=opener, daemon=True).start()
    return opened, keep


def test_sigint_during_a_lookup(ng, tmp_path, slow_resolver):
    """A signal ends the run while a lookup waits: the lookup's thread is
    left to finish alone, the run reports the interruption at once."""
    fifo = tmp_path / "fifo"
    opened, keep = held_fifo(fifo)
    argv = [SOCKIT, "fetch", "--parallel", "2", "http://b.slow.test/x",
            ng.url("/" + sorted(ng.files)[0])]
    rc, err = signal_when(argv, opened, cwd=tmp_path, env=slow_env(slow_resolver, fifo))
    for f in keep:
        f.close()
    assert rc == 1, err
    assert "http://b.slow.test/x: resolving: interrupted (SIGINT)" in err, err


def test_a_lookup_past_the_connect_timeout(ng, tmp_path, slow_resolver):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    keep = []
    threading.Thread(target=lambda: keep.append(open(fifo, "w")), daemon=True).start()
    name = sorted(ng.files)[1]
    r = fetch("--parallel", "2", "--connect-timeout", "0.5", "http://c.slow.test/x",
              ng.url("/" + name), cwd=tmp_path, env=slow_env(slow_resolver, fifo))
    for f in keep:
        f.close()
    assert r.returncode == 9, r.stderr  # timed out
    assert b"resolving c.slow.test: timed out after 0.5 s" in r.stderr, r.stderr
    assert (tmp_path / name).read_bytes() == ng.files[name]


@pytest.mark.parametrize("dump", [False, True], ids=["stdout", "dump-file"])
def test_heads_past_the_held_room_go_out_as_they_come(hs, tmp_path, dump):
    """A parallel run holds at most 8 MiB of response heads to give them in
    URL order (on standard output, or in -D FILE): with /h0 answered last and
    140 heads of about 63 KiB after it, the heads over that room are written
    at once, and none is lost."""
    n = 140
    pad = b"X-Pad: " + b"p" * (63 * 1024) + b"\r\n"
    late = []

    def head(i):
        return b"HTTP/1.1 200 OK\r\nX-Name: h%d\r\n%sContent-Length: 1\r\n\r\n" % (i, pad)

    def first(req):
        def saved():
            return all((tmp_path / f"h{i}").exists() for i in range(1, n + 1))
        try:
            wait_in_folder(str(tmp_path), saved, 30, "every other URL saved")
        except AssertionError as e:
            late.append(str(e))
        yield head(0) + b"0"

    hs.route("/h0", first)
    for i in range(1, n + 1):
        hs.route(f"/h{i}", lambda req, i=i: head(i) + b"x")
    urls = [hs.url(f"/h{i}") for i in range(n + 1)]
    heads = tmp_path / "heads.txt"
    r = fetch("--parallel", "8", *(["-D", str(heads)] if dump else []), *urls, cwd=tmp_path)
    assert not late, late
    assert r.returncode == 0, r.stderr[-500:]
    text = heads.read_bytes() if dump else r.stdout
    names = [int(line[len("X-Name: h"):]) for line in text.decode().split("\r\n")
             if line.startswith("X-Name: ")]
    assert sorted(names) == list(range(n + 1)), "each head once"
    # Those past the room as they came (which ones depends on the order the
    # slots finish in); /h0's head last of all to arrive, then the held ones
    # in URL order, all within the room.
    j = names.index(0)
    assert j > 0, "some were past the room"
    assert names[j:] == sorted(names[j:]), names
    assert (len(names) - j - 1) * len(head(1)) <= 8 << 20, names
    assert len(text) == sum(len(head(i)) for i in range(n + 1))


def test_dump_file_heads_in_url_order(hs, tmp_path):
    """-D FILE in a parallel run: /d0 is answered only once d1..d3 are saved,
    so its head arrives last; the file still has every head in URL order
    (as -D - has on standard output), and standard output has none."""
    late = []

    def head(i):
        return b"HTTP/1.1 200 OK\r\nX-Name: d%d\r\nContent-Length: 1\r\n\r\n" % i

    def first(req):
        try:
            wait_in_folder(str(tmp_path), lambda: all((tmp_path / f"d{i}").exists()
                                                      for i in (1, 2, 3)), 10, "d1..d3 saved")
        except AssertionError as e:
            late.append(str(e))
        yield head(0) + b"0"

    hs.route("/d0", first)
    for i in (1, 2, 3):
        hs.route(f"/d{i}", lambda req, i=i: head(i) + b"x")
    dump = tmp_path / "heads.txt"
    urls = [hs.url(f"/d{i}") for i in range(4)]
    r = fetch("--parallel", "4", "-D", str(dump), *urls, cwd=tmp_path)
    assert not late, late
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    assert dump.read_bytes() == b"".join(head(i) for i in range(4))


def test_dump_file_write_error_of_held_heads(hs, tmp_path):
    """-D /dev/full in a parallel run: the held heads' write fails when the
    URL's turn comes: each URL fails with the write status (10), and says why."""
    for i in range(2):
        hs.route(f"/w{i}", lambda req: answer(b"x"))
    urls = [hs.url(f"/w{i}") for i in range(2)]
    r = fetch("--parallel", "2", "-D", "/dev/full", *urls, cwd=tmp_path)
    assert r.returncode == 10, r.stderr
    err = r.stderr.decode()
    assert err.count("write error on /dev/full: No space left on device") == 2, err
    assert err.endswith("sockit: fetch: 0 succeeded, 2 failed\n"), err
