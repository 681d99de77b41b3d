"""sockit fetch's progress bar on a terminal (issue 11), read from a pty:
each frame clears the rest of its line (a shorter frame leaves nothing of a
longer one), a known length shows the total and the time left, and the bar
is there with -o - too. The server paces its body until the test has seen
the bar, then sends the rest: the test waits on what the pty shows."""
import os
import pty
import re
import subprocess
import threading
import tty

import pytest

from conftest import SOCKIT
from hostile_http import HostileServer, Sleep

SIZE = 4 << 20
PIECE = b"x" * 1024


class Pty:
    """The child's stderr: a reader thread keeps what it writes and sets
    `seen` once a frame matching `pattern` arrived."""

    def __init__(self, pattern):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # the bytes as written: no \n to \r\n
        self.data = b""
        self.pattern = pattern
        self.seen = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self):
        os.close(self.slave)
        self.thread.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            self.data += chunk
            if re.search(self.pattern, self.data):
                self.seen.set()

    def close(self):
        self.thread.join(10)
        os.close(self.master)


def paced(seen, length=SIZE, chunked=False):
    """A body of `length` bytes, 1 KiB at a time until the bar is seen, then
    the rest at once; chunked: no length given."""

    def handler(req):
        if chunked:
            yield b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        else:
            yield b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length
        sent = 0
        while not seen.is_set() and sent + len(PIECE) < length:
            yield b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE
            sent += len(PIECE)
            yield Sleep(0.01)  # the server's pace, not a synchronisation
        rest = b"x" * (length - sent)
        yield b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest) if chunked else rest
    return handler


def run(args, pattern, route, stdout=subprocess.DEVNULL):
    t = Pty(pattern)
    srv = HostileServer()
    srv.route("/f", route(t.seen))
    try:
        p = subprocess.Popen([SOCKIT, "fetch", *args(srv.url("/f"))], stdout=stdout,
                             stderr=t.slave, stdin=subprocess.DEVNULL)
        t.start()
        out = p.stdout.read() if stdout == subprocess.PIPE else b""
        assert p.wait(30) == 0
    finally:
        srv.stop()
        t.close()
    assert t.seen.is_set(), t.data
    return t.data, out


def frames(data):
    """The bar's frames: what follows each carriage return."""
    return [f for f in data.split(b"\r") if f]


FRAME = rb" *\d+% \[[= ]{30}\] [\d.]+ [KMG]?i?B / 4\.0 MiB, [\d.]+ [KMG]?i?B/s, (\d+:\d\d|--:--) left\x1b\[K"


@pytest.mark.parametrize("extra", [[], ["--parallel", "4"]], ids=["plain", "parallel-4"])
def test_bar_shows_total_and_time_left_and_clears_each_line(tmp_path, extra):
    """--parallel N with one URL: the direct path, and its bar."""
    data, _ = run(lambda url: [url, "-o", str(tmp_path / "out"), *extra], FRAME, paced)
    bars = [f for f in frames(data) if b"% [" in f]
    assert len(bars) >= 2, data
    for f in bars[:-1]:
        assert re.fullmatch(FRAME, f), f
    assert re.fullmatch(FRAME + rb"\n", bars[-1]), bars[-1]
    assert bars[-1].startswith(b"100% [" + b"=" * 30 + b"] 4.0 MiB / 4.0 MiB"), bars[-1]
    assert (tmp_path / "out").stat().st_size == SIZE


def test_bar_without_a_length_clears_its_line(tmp_path):
    pattern = rb"\r[\d.]+ [KMG]?i?B, [\d.]+ [KMG]?i?B/s\x1b\[K"
    data, _ = run(lambda url: [url, "-o", str(tmp_path / "out")], pattern,
                  lambda seen: paced(seen, chunked=True))
    bars = [f for f in frames(data) if re.match(rb"[\d.]+ [KMG]?i?B, ", f)]
    assert bars, data
    for f in bars[:-1]:
        assert re.fullmatch(rb"[\d.]+ [KMG]?i?B, [\d.]+ [KMG]?i?B/s\x1b\[K", f), f
    assert bars[-1].startswith(b"4.0 MiB, ") and bars[-1].endswith(b"\x1b[K\n"), bars[-1]


def test_bar_with_body_on_stdout(tmp_path):
    data, out = run(lambda url: [url, "-o", "-"], FRAME, paced, stdout=subprocess.PIPE)
    assert out == b"x" * SIZE, "the bar stays off standard output"
    assert any(re.fullmatch(FRAME, f) for f in frames(data)), data
    assert data.startswith(b"HTTP/1.1 200 OK"), "the head on stderr, then the bar"


@pytest.mark.parametrize("flag", ["-s", "-q"])
def test_silent_shows_no_bar(tmp_path, flag):
    t = Pty(b"never")
    srv = HostileServer()
    srv.route("/f", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    try:
        p = subprocess.Popen([SOCKIT, "fetch", flag, srv.url("/f"), "-o", str(tmp_path / "o")],
                             stdout=subprocess.DEVNULL, stderr=t.slave)
        t.start()
        assert p.wait(30) == 0
    finally:
        srv.stop()
        t.close()
    assert t.data == b""
