"""Regression tests for what the red-team pass on `sockit fetch`
(tests/redteam/fetch_attacks.py) found; each failed before its fix."""
import array
import errno
import fcntl
import os
import signal
import ssl
import stat
import subprocess
import termios
import threading
import time

import pytest

from conftest import SOCKIT
from fswait import wait_in_folder
from hostile_http import HostileServer, Mark, Sleep
from nginx_util import make_certs
from test_fetch_hostile import check_failure, fetch

OK_HEAD = b"HTTP/1.1 200 OK\r\n"


@pytest.fixture
def srv():
    s = HostileServer()
    yield s
    s.stop()


def hello(req):
    return OK_HEAD + b"Content-Length: 5\r\n\r\nhello"


def test_link_planted_at_output_lends_no_mode(srv, tmp_path):
    """A symbolic link planted at -o FILE while the request is in flight
    (after sockit planned the output) is replaced, and the mode of the file
    it points to (another user's 0777 file) is not copied: the download
    used to be committed world-writable."""
    evil = tmp_path / "evil"
    evil.write_text("attacker's")
    os.chmod(evil, 0o777)
    out = tmp_path / "out"

    def plant(req):
        os.symlink(evil, out)
        return hello(req)
    srv.route("/f", plant)
    r = fetch(srv.url("/f"), "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    st = os.lstat(out)
    assert stat.S_ISREG(st.st_mode) and out.read_bytes() == b"hello"
    assert evil.read_text() == "attacker's"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(st.st_mode) == 0o666 & ~umask, oct(st.st_mode)


def shell_fetch(url, redirs, *args):
    cmd = " ".join([SOCKIT, "fetch", url, *args, redirs])
    return subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, timeout=30)


@pytest.mark.parametrize("args", [("-o", "-", "-s"), ("-o", "FILE"), ("-I",)],
                         ids=["body", "headers", "head"])
def test_closed_standard_output_is_refused(srv, tmp_path, args):
    """With fd 1 closed the socket took its number: the body (-o -) was
    sent back to the server, or the headers, and the exit was 0."""
    srv.route("/f", hello)
    args = [str(tmp_path / "o") if a == "FILE" else a for a in args]
    r = shell_fetch(srv.url("/f"), ">&-", *args)
    check_failure(r, 10, "standard output is closed")
    assert srv.requests == [], "refused before any network work"
    assert os.listdir(tmp_path) == []


def test_closed_standard_streams_are_held(srv, tmp_path):
    """Without a need for standard output, closed 0, 1 and 2 do not stop
    a fetch, and nothing meant for them lands in the socket."""
    srv.route("/f", hello)
    r = shell_fetch(srv.url("/f"), "<&- >&- 2>&-", "-o", str(tmp_path / "o"), "-s")
    assert r.returncode == 0
    assert (tmp_path / "o").read_bytes() == b"hello"
    assert len(srv.requests) == 1 and srv.requests[0].raw.endswith(b"\r\n\r\n")


@pytest.fixture(scope="module")
def tls_ctx(tmp_path_factory):
    certs = make_certs(str(tmp_path_factory.mktemp("certs")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx, certs["ca"]


def test_tls_peer_gone_is_not_a_closed_output(tmp_path):
    """A server that sends a bad TLS record and closes: OpenSSL's alert
    write raised SIGPIPE, read as 'standard output closed' (exit 10)."""
    srv = HostileServer(raw=b"\x16\x03\x01\xff\xff" + b"\x00" * 100)
    try:
        r = fetch(f"https://127.0.0.1:{srv.port}/f", "-o", str(tmp_path / "o"), "-s")
    finally:
        srv.stop()
    check_failure(r, 5, "TLS")
    assert os.listdir(tmp_path) == []


def test_tls_request_to_a_closed_peer_is_not_a_closed_output(tls_ctx, tmp_path):
    """The handshake completes, then the server resets before the request
    is written: a socket error, never SIGPIPE's exit 10."""
    ctx, ca = tls_ctx
    srv = HostileServer(tls=ctx, raw=b"")  # closes right after the handshake
    try:
        r = fetch(srv.url("/f"), "-o", str(tmp_path / "o"), "-s", "--cacert", ca)
    finally:
        srv.stop()
    assert r.returncode in (1, 7), r
    assert b"SIGPIPE" not in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []


def test_fifo_without_reader_is_bounded_by_max_time(srv, tmp_path):
    """-o FIFO is written in place; opening it waited for a reader forever,
    past --max-time."""
    srv.route("/f", hello)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    r = fetch(srv.url("/f"), "-o", str(fifo), "-s", "--max-time", "1", timeout=15)
    assert time.monotonic() - start < 5
    check_failure(r, 9, "--max-time")
    assert os.listdir(tmp_path) == ["fifo"]


def stalled_stdout_fetch(srv, *extra):
    """A fetch whose standard output is a pipe nobody reads, blocked in its
    write once the pipe is full; returns (process, read end)."""
    big = b"x" * (4 << 20)
    srv.route("/big", lambda req: OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(big) + big)
    rfd, wfd = os.pipe()
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/big"), "-o", "-", "-s", *extra],
                         stdout=wfd, stderr=subprocess.PIPE)
    os.close(wfd)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # polled with a deadline: the kernel's word for it
        with open(f"/proc/{p.pid}/wchan") as f:
            if "pipe" in f.read():
                break
        time.sleep(0.02)
    else:
        p.kill()
        p.wait()
        os.close(rfd)
        raise AssertionError("never blocked on the pipe")
    return p, rfd


def finish(p, rfd, timeout):
    try:
        err = p.communicate(timeout=timeout)[1].decode()
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("hang: blocked writing to a stalled standard output")
    finally:
        os.close(rfd)
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_stops_a_write_to_a_stalled_standard_output(srv, sig):
    """The write loop retried on EINTR without looking at the cancel flag:
    Ctrl-C was ignored while standard output did not drain."""
    p, rfd = stalled_stdout_fetch(srv)
    p.send_signal(sig)
    err = finish(p, rfd, 5)
    assert p.returncode == 1, err
    assert "interrupted" in err and sig.name in err, err


def test_stalled_standard_output_is_bounded_by_max_time(srv):
    p, rfd = stalled_stdout_fetch(srv, "--max-time", "1")
    err = finish(p, rfd, 8)
    assert p.returncode == 9, err
    assert err.startswith("sockit: ") and "--max-time" in err, err


def test_stalled_standard_output_is_bounded_by_idle_timeout(srv):
    p, rfd = stalled_stdout_fetch(srv, "--idle-timeout", "1")
    err = finish(p, rfd, 8)
    assert p.returncode == 9, err
    assert "--idle-timeout" in err, err


def test_slow_standard_output_reader_is_not_a_timeout(srv):
    """The ticks that bound a blocked write must not break a reader that is
    slow but steady: every byte arrives, exit 0."""
    body = bytes(range(256)) * 4096  # 1 MiB
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", "-", "-s", "--idle-timeout",
                          "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = b""
    while True:
        chunk = p.stdout.read(32768)
        if not chunk:
            break
        got += chunk
        time.sleep(0.005)
    err = p.communicate(timeout=10)[1]
    assert p.returncode == 0, err
    assert got == body


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_output_to_dev_stdout_on_a_pipe(srv, name):
    """-o /dev/stdout on a pipe: the /proc link names "pipe:[N]", which was
    taken for a relative file name: exit 10, "cannot create a temporary
    file beside /proc/self/fd/pipe:[N]"."""
    srv.route("/f", hello)
    r = subprocess.run([SOCKIT, "fetch", srv.url("/f"), "-s", "-o", name], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello"


BIG_PART = 4 << 30  # sparse: hashing it takes seconds, storing it nothing


def big_complete_part(srv, tmp_path, served):
    """FILE.part of BIG_PART bytes (ours, with its meta): the server says it
    is complete (416 bytes */SIZE), so --sha256 hashes all of it."""
    part = tmp_path / "f.bin.part"
    with open(part, "wb") as f:
        f.truncate(BIG_PART)
    (tmp_path / "f.bin.part.meta").write_text(
        f"sockit-resume 2\nurl {srv.url('/f')}\nvalidator \"v1\"\nsize {BIG_PART}\n")
    srv.route("/f", lambda req: [b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: "
                                 b"bytes */%d\r\nContent-Length: 0\r\n\r\n" % BIG_PART,
                                 Mark(served)])


def test_signal_stops_hashing_a_large_part(srv, tmp_path):
    """-C --sha256 hashes the bytes already in FILE.part: that loop looked
    at neither the cancel flag nor the deadline, so Ctrl-C waited for
    gigabytes to be read back."""
    served = threading.Event()
    big_complete_part(srv, tmp_path, served)
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", str(tmp_path / "f.bin"), "-C",
                          "-s", "--sha256", "0" * 64], stderr=subprocess.PIPE)
    try:
        assert served.wait(10)
        p.send_signal(signal.SIGINT)
        start = time.monotonic()
        err = p.communicate(timeout=30)[1].decode()
        elapsed = time.monotonic() - start
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1 and "interrupted (SIGINT)" in err, (p.returncode, err)
    assert elapsed < 1.5, f"{elapsed:.1f} s to see SIGINT"
    assert sorted(os.listdir(tmp_path)) == ["f.bin.part", "f.bin.part.meta"]


def test_max_time_bounds_hashing_a_large_part(srv, tmp_path):
    big_complete_part(srv, tmp_path, threading.Event())
    start = time.monotonic()
    r = fetch(srv.url("/f"), "-o", str(tmp_path / "f.bin"), "-C", "-s", "--sha256", "0" * 64,
              "--max-time", "1", timeout=60)
    assert time.monotonic() - start < 3
    check_failure(r, 9, "--max-time")
    assert sorted(os.listdir(tmp_path)) == ["f.bin.part", "f.bin.part.meta"]


def test_non_blocking_standard_output(srv):
    """Standard output inherited in O_NONBLOCK mode (a parent's choice, or
    another process sharing the pipe): a full pipe gave EAGAIN, reported as
    a write error (exit 10) instead of a wait for the reader."""
    body = bytes(range(256)) * 2048  # 512 KiB: more than the pipe holds
    srv.route("/f", lambda req: OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    rfd, wfd = os.pipe()
    fcntl.fcntl(wfd, fcntl.F_SETFL, fcntl.fcntl(wfd, fcntl.F_GETFL) | os.O_NONBLOCK)
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", "-", "-s"], stdout=wfd,
                         stderr=subprocess.PIPE)
    os.close(wfd)
    got = b""
    with os.fdopen(rfd, "rb") as r:
        # Nothing is read until the pipe is full: sockit's next write gets EAGAIN.
        size = fcntl.fcntl(rfd, 1032)  # F_GETPIPE_SZ
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            n = array.array("i", [0])
            fcntl.ioctl(rfd, termios.FIONREAD, n)
            if n[0] >= size - 8192:  # all but a partly filled page or two
                break
            time.sleep(0.01)  # polling an observable condition, with a deadline
        got = r.read()
    err = p.communicate(timeout=10)[1]
    assert p.returncode == 0, err
    assert got == body


@pytest.mark.parametrize("framing", ["length", "close"])
def test_file_size_limit_is_a_write_error(srv, tmp_path, framing):
    """ulimit -f: SIGXFSZ killed sockit (exit 153) with the temporary file
    left behind."""
    body = b"x" * 300000
    head = b"Content-Length: %d\r\n" % len(body) if framing == "length" else b""
    srv.route("/f", lambda req: OK_HEAD + head + b"\r\n" + body)
    r = subprocess.run(["/bin/sh", "-c", f"ulimit -f 100; exec {SOCKIT} fetch -s "
                        f"{srv.url('/f')} -o {tmp_path / 'out'}"], capture_output=True, timeout=30)
    check_failure(r, 10, "File too large")
    assert os.listdir(tmp_path) == []


def release_reader(fifo):
    """Opens fifo for writing once, so that a reader still blocked in its
    open() returns. ENXIO: no reader has it open any more (it was already
    on its way out when is_alive() was asked), nothing to release."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise


def test_cpu_time_limit_stops_and_cleans_up(srv, tmp_path):
    """ulimit -t: SIGXCPU killed sockit (exit 152) with the temporary file
    left behind."""
    def endless(req):
        yield OK_HEAD + b"\r\n"
        piece = b"s" * 65536
        while True:
            yield piece
    srv.route("/f", endless)
    r = subprocess.run(["/bin/sh", "-c", f"ulimit -S -t 1; exec {SOCKIT} fetch -s "
                        f"{srv.url('/f')} -o {tmp_path / 'out'}"], capture_output=True, timeout=60)
    check_failure(r, 1, "interrupted (SIGXCPU")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a FIFO to another user")
def test_fifo_planted_by_another_user_in_a_shared_folder_is_refused(srv, tmp_path):
    """-o /tmp/NAME where another user made NAME a FIFO and reads it: the
    body (fetched with the victim's credentials, say) went to them."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    fifo = shared / "report"
    os.mkfifo(fifo)
    os.chown(fifo, 12345, 12345)
    srv.route("/f", hello)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    try:
        r = fetch(srv.url("/f"), "-o", str(fifo), "-s", "--max-time", "5")
    finally:
        if reader.is_alive():  # sockit never opened it: release the reader
            release_reader(fifo)
        reader.join(5)
    check_failure(r, 10, "refusing")
    assert got == [b""], got


def test_own_fifo_in_a_shared_folder_is_written(srv, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    fifo = shared / "mine"
    os.mkfifo(fifo)
    srv.route("/f", hello)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    try:
        r = fetch(srv.url("/f"), "-o", str(fifo), "-s", "--max-time", "5")
    finally:
        if reader.is_alive():
            release_reader(fifo)
        reader.join(5)
    assert r.returncode == 0, r.stderr
    assert got == [b"hello"]


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM],
                         ids=lambda s: s.name)
def test_user_signals_do_not_leave_the_temporary_file(srv, tmp_path, sig):
    """Their default action killed sockit with .NAME.sockit-XXXXXX left."""
    sent = threading.Event()
    srv.route("/f", lambda req: [OK_HEAD + b"Content-Length: 100\r\n\r\nab", Mark(sent),
                                 Sleep(30)])
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", str(tmp_path / "o"), "-s"],
                         stderr=subprocess.PIPE)
    assert sent.wait(10)
    wait_in_folder(tmp_path, lambda: len(os.listdir(tmp_path)) == 1, 10, "the temporary file")
    p.send_signal(sig)
    if sig == signal.SIGALRM:  # harmless; SIGTERM (a higher number) is handled after it
        p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=10)[1].decode()
    assert p.returncode == 1, (p.returncode, err)
    want = "SIGTERM" if sig == signal.SIGALRM else sig.name
    assert f"interrupted ({want}" in err, err
    assert os.listdir(tmp_path) == []


def test_stalled_standard_error_does_not_hold_the_exit(srv, tmp_path):
    """The final message went through stdio to a full stderr pipe: the
    process never exited, whatever --max-time said."""
    srv.route("/f", lambda req: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    try:
        while True:
            os.write(wfd, b"x" * 4096)  # fill it: nobody will read
    except BlockingIOError:
        pass
    os.set_blocking(wfd, True)
    p = subprocess.Popen([SOCKIT, "fetch", srv.url("/f"), "-o", str(tmp_path / "o"), "-s",
                          "--max-time", "1"], stderr=wfd)
    os.close(wfd)
    try:
        assert p.wait(10) == 6
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("hang: the exit waited for standard error")
    finally:
        os.close(rfd)
