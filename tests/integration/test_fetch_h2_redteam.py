"""Red-team tests of fetch's HTTP/2 adapter and its multiplexing: a hostile
python3-h2 server (and raw frames past h2's checks) against the binary,
the sanitizer build too (ASan+LSan: no crash, no leak). Each bad peer ends
in a bounded time with a documented status, nothing partial is saved, and
where a test can, no descriptor is left open while the process lives."""
import os
import signal
import subprocess
import threading
import time

import pytest
from hyperframe.frame import ContinuationFrame, HeadersFrame, PingFrame, PushPromiseFrame

from conftest import SOCKIT
from fswait import wait_in_folder
from h2_hostile import H2Server, data_frame, goaway, send_body, window_update
from nginx_util import Nginx
from test_fetch_h2 import assert_clean, certs, fetch, multiplexed, ok_head, run_hostile  # noqa: F401
from test_fetch_parallel import held_fifo, slow_env, slow_resolver  # noqa: F401


def literal(name, value):
    """An HPACK literal header field without indexing (names, values < 127 bytes)."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def served(certs, script, *args, paths=("/f",)):
    """The paths fetched (with args) from a hostile server running script;
    returns (the run, the server), the run checked for a signal or a
    sanitizer report."""
    srv = H2Server(certs, script=script)
    try:
        r = fetch(*[srv.url(p) for p in paths], "--cacert", certs["ca"], *args, timeout=30)
    finally:
        srv.stop()
    assert_clean(r)
    return r, srv


# ---- frames the client must refuse ----

def test_push_promise_refused(certs, tmp_path):
    """The client's SETTINGS disable push; a PUSH_PROMISE anyway is a
    connection error: nothing saved, one line, exit 7."""
    seen = {}

    def script(srv, conn, sid, h, send, n):
        seen["push"] = conn.remote_settings.enable_push
        block = conn.encoder.encode([(":method", "GET"), (":scheme", "https"),
                                     (":authority", h[":authority"]), (":path", "/pushed")])
        f = PushPromiseFrame(sid, promised_stream_id=2, data=block)
        f.flags.add("END_HEADERS")
        send(f.serialize())
        conn.send_headers(sid, ok_head(5))
        send_body(conn, sid, b"hello", send)
    run_hostile(certs, tmp_path, 7, "HTTP/2", script)
    assert seen["push"] == 0


def continuation_flood(srv, sid, send, piece):
    """HEADERS without END_HEADERS, then CONTINUATION frames of piece until
    the client goes (or 64 MiB)."""
    f = HeadersFrame(sid, data=b"\x88")  # :status 200, static table
    send(f.serialize())
    sent = 0
    try:
        while sent < 64 << 20 and not srv.stopping.is_set():
            send(ContinuationFrame(sid, data=piece).serialize() * 64)
            sent += 64 * (9 + len(piece))
    except OSError:
        pass
    return "close"


def test_continuation_flood_of_fields(certs, tmp_path):
    field = literal(b"x-flood", b"a" * 100)
    t = time.monotonic()
    run_hostile(certs, tmp_path, 7, "", lambda srv, conn, sid, h, send, n:
                continuation_flood(srv, sid, send, field * 8), extra=("--max-time", "20"))
    assert time.monotonic() - t < 15  # refused on the header list's bound, not the clock


def test_continuation_flood_of_empty_frames(certs, tmp_path):
    """Empty CONTINUATION frames (CVE-2024-28182's shape) carry no field:
    only a bound on frames or the clock ends it: it must end."""
    r, srv = served(certs, lambda srv, conn, sid, h, send, n:
                    continuation_flood(srv, sid, send, b""),
                    "-o", str(tmp_path / "o"), "-s", "--max-time", "3")
    assert r.returncode in (7, 9), r.stderr
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def raw_headers(sid, block, end_stream=False):
    f = HeadersFrame(sid, data=block)
    f.flags.add("END_HEADERS")
    if end_stream:
        f.flags.add("END_STREAM")
    return f.serialize()


BAD_HEADS = {
    "no-status": literal(b"content-length", b"0"),
    "status-word": literal(b":status", b"abc"),
    "status-099": literal(b":status", b"099"),
    "status-1000": literal(b":status", b"1000"),
    "two-status": b"\x88" + literal(b":status", b"204"),
    "pseudo-after-regular": literal(b"x-a", b"1") + b"\x88",
    "unknown-pseudo": b"\x88" + literal(b":foo", b"1"),
    "request-pseudo": b"\x88" + literal(b":path", b"/"),
    "two-lengths": b"\x88" + literal(b"content-length", b"5") + literal(b"content-length", b"7"),
    "length-word": b"\x88" + literal(b"content-length", b"five"),
    "connection-field": b"\x88" + literal(b"connection", b"close"),
    "te-field": b"\x88" + literal(b"te", b"gzip"),
    "nul-in-value": b"\x88" + literal(b"x-a", b"a\x00b"),
    "crlf-in-value": b"\x88" + literal(b"x-a", b"a\r\nsockit: fetch: saved x"),
    "esc-in-value": b"\x88" + literal(b"x-a", b"\x1b]0;owned\x07\x1b[2J"),
    "space-in-name": b"\x88" + literal(b"x a", b"1"),
    "empty-name": b"\x88" + literal(b"", b"1"),
    "bad-index": b"\xff\x7f",  # index 254: past the empty dynamic table
    "interim-end-stream": None,   # a 103 with END_STREAM
    "headers-on-stream-3": None,  # a head on a stream the client never opened
    "trailer-pseudo": None,       # trailers carrying :status
}


@pytest.mark.parametrize("case", sorted(BAD_HEADS))
def test_malformed_response_heads(certs, tmp_path, case):
    """Each malformed head (raw HPACK past h2's checks): exit 7 or 8, one
    line, nothing saved, no sanitizer report."""
    def script(srv, conn, sid, h, send, n):
        if case == "interim-end-stream":
            send(raw_headers(sid, literal(b":status", b"103"), end_stream=True))
        elif case == "headers-on-stream-3":
            send(raw_headers(3, b"\x88", end_stream=True))
        elif case == "trailer-pseudo":
            send(raw_headers(sid, b"\x88" + literal(b"content-length", b"2")))
            send(data_frame(sid, b"ok"))
            send(raw_headers(sid, b"\x88", end_stream=True))
        else:
            send(raw_headers(sid, BAD_HEADS[case]))
            send(data_frame(sid, b"", end=True))
        srv.sleep(5)
        return "close"
    r, srv = served(certs, script, "-o", str(tmp_path / "f.out"), "-s", "--max-time", "10")
    assert r.returncode in (7, 8), (r.returncode, r.stderr)
    # nghttp2's reason quotes the server's bytes: escaped, one line, no terminal escape
    assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
    assert not set(r.stderr[:-1]) & {0, 7, 0x0a, 0x0d, 0x1b}, r.stderr
    if case == "crlf-in-value":
        assert b"\\x0d\\x0a" in r.stderr, r.stderr
    if case == "status-099":  # below 100 is no status, as over HTTP/1.1
        assert b"malformed HTTP/2 :status" in r.stderr, r.stderr
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def settings(*pairs):
    body = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
    return len(body).to_bytes(3, "big") + b"\x04\x00\x00\x00\x00\x00" + body


def frame(ftype, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") \
        + payload


FRAME_ATTACKS = {
    # the client's settings or windows pushed past their bounds
    "initial-window-too-big": lambda sid: settings((0x4, 0x80000000)),
    "max-frame-size-too-small": lambda sid: settings((0x5, 100)),
    "enable-push-2": lambda sid: settings((0x2, 2)),
    "stream-window-overflow": lambda sid: window_update(sid, 0x7FFFFFFF) * 2,
    "window-update-zero": lambda sid: window_update(sid, 0),
    # frames on streams the client never opened, or that a server cannot open
    "rst-on-idle-stream": lambda sid: frame(0x3, 0, 99, b"\x00\x00\x00\x02"),
    "data-on-idle-stream": lambda sid: data_frame(101, b"x"),
    "server-opens-stream-2": lambda sid: frame(0x1, 0x5, 2, b"\x88"),
    "priority-on-itself": lambda sid: frame(0x2, 0, sid, sid.to_bytes(4, "big") + b"\x10"),
    # framing
    "data-larger-than-max-frame": lambda sid: raw_headers(sid, b"\x88") + frame(
        0x0, 0, sid, b"x" * 20000),
    "padding-past-payload": lambda sid: raw_headers(sid, b"\x88") + frame(
        0x0, 0x8, sid, b"\xff" + b"x" * 10),
    "unknown-frame-types-then-stall": lambda sid: frame(0xfa, 0, 0, b"x" * 100) * 1000,
    "goaway-graceful-then-the-rest": lambda sid: raw_headers(sid, b"\x88" + literal(
        b"content-length", b"2")) + goaway(sid, 0) + data_frame(sid, b"ok", end=True),
    # the head came, then a GOAWAY that says the stream was not processed
    "goaway-contradicting-the-head": lambda sid: raw_headers(sid, b"\x88" + literal(
        b"content-length", b"2")) + goaway(0, 0) + data_frame(sid, b"ok", end=True),
    "continuation-without-headers": lambda sid: frame(0x9, 0x4, sid, b"\x88"),
    "settings-ack-unasked": lambda sid: frame(0x4, 0x1, 0, b""),
    "ping-wrong-length": lambda sid: frame(0x6, 0, 0, b"x" * 7),
}


@pytest.mark.parametrize("case", sorted(FRAME_ATTACKS))
def test_frame_attacks(certs, tmp_path, case):
    """Each attack on the connection's frames, after the request came: a
    bounded end (exit 7, 8 or 9 within --max-time 3, or the file saved
    whole where the frame is legal), one line, nothing else saved."""
    def script(srv, conn, sid, h, send, n):
        send(FRAME_ATTACKS[case](sid))
        srv.sleep(6)
        return "close"
    out = tmp_path / "f.out"
    t = time.monotonic()
    r, srv = served(certs, script, "-o", str(out), "-s", "--max-time", "3")
    assert time.monotonic() - t < 8
    if case == "goaway-graceful-then-the-rest":  # the stream was processed: it completes
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == b"ok"
        return
    assert r.returncode in (7, 8, 9), (r.returncode, r.stderr)
    assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


@pytest.mark.parametrize("urls", [1, 3])
def test_max_concurrent_streams_zero(certs, tmp_path, urls):
    """SETTINGS_MAX_CONCURRENT_STREAMS 0: no stream can open; the request
    waits in nghttp2's queue, so the transfer ends on its idle timeout (not
    held by the server's frames), each URL with its line."""
    import h2.connection
    orig = h2.connection.H2Connection.initiate_connection

    def initiate(self):
        orig(self)
        self.update_settings({0x3: 0})
    h2.connection.H2Connection.initiate_connection = initiate
    srv = H2Server(certs, script=lambda *a: None)
    t = time.monotonic()
    try:
        r = fetch(*[srv.url(f"/{c}") for c in "abc"[:urls]], "--cacert", certs["ca"],
                  "--parallel", "3", "--idle-timeout", "1", "--max-time", "10",
                  "--output-dir", str(tmp_path), timeout=30)
    finally:
        h2.connection.H2Connection.initiate_connection = orig
        srv.stop()
    assert_clean(r)
    assert r.returncode in (7, 9), r.stderr
    assert time.monotonic() - t < 8
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_trailer_flood_is_bounded(certs, tmp_path):
    """Trailers are counted, not kept: a trailer block of field after field
    in CONTINUATION frames ends on the head's bound (exit 7 or 8), nothing
    saved, memory bounded."""
    def script(srv, conn, sid, h, send, n):
        send(raw_headers(sid, b"\x88" + literal(b"content-length", b"2")))
        send(data_frame(sid, b"ok"))
        return continuation_flood(srv, sid, send, literal(b"x-trailer", b"t" * 100) * 8)
    srv = H2Server(certs, script=script)
    out = tmp_path / "f.out"
    try:
        r = subprocess.run(["/usr/bin/time", "-f", "%M", SOCKIT, "fetch", srv.url("/f"),
                            "--cacert", certs["ca"], "-o", str(out), "-s", "--max-time", "20"],
                           capture_output=True, timeout=60)
    finally:
        srv.stop()
    assert_clean(r)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode in (7, 8), r.stderr
    # the error line, /usr/bin/time's status line and its peak RSS
    assert len(lines) == 3 and lines[0].startswith("sockit: "), lines
    if "CONTINUATION" in lines[0]:  # nghttp2's reason whole, not cut at 50 bytes
        assert "CONTINUATION frames following a HEADER frame" in lines[0], lines[0]
    assert int(lines[-1]) < 200 * 1024, f"peak RSS {lines[-1]} KiB"
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_dynamic_table_size_update_past_settings(certs, tmp_path):
    """A table size update above the client's SETTINGS_HEADER_TABLE_SIZE
    (4096 by default) is a COMPRESSION_ERROR."""
    def script(srv, conn, sid, h, send, n):
        block = b"\x3f\xe1\xff\xff\x0f" + b"\x88"  # size 2^31-ish, then :status 200
        f = HeadersFrame(sid, data=block)
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        send(f.serialize())
        srv.sleep(5)
        return "close"
    run_hostile(certs, tmp_path, 7, "HTTP/2", script)


def test_huge_header_table_size_setting(certs, tmp_path):
    """The server allows a 4 GiB table: the client's encoder keeps its own
    bound, the request goes out and the file is saved."""
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(5))
        send_body(conn, sid, b"hello", send)
    srv = H2Server(certs, script=script)
    # the settings of every connection this server makes: patched at the source
    import h2.connection
    orig = h2.connection.H2Connection.initiate_connection

    def initiate(self):
        orig(self)
        self.update_settings({0x1: 0xFFFFFFFF, 0x3: 1})  # HEADER_TABLE_SIZE, MAX_CONCURRENT
    h2.connection.H2Connection.initiate_connection = initiate
    try:
        r = fetch(srv.url("/a"), srv.url("/b"), "--cacert", certs["ca"], "--parallel", "2",
                  "--output-dir", str(tmp_path), timeout=30)
    finally:
        h2.connection.H2Connection.initiate_connection = orig
        srv.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a").read_bytes() == b"hello" == (tmp_path / "b").read_bytes()


# ---- stalls dressed as traffic ----

@pytest.mark.parametrize("keepalive", ["ping", "window_update", "empty_data"])
def test_traffic_without_data_does_not_hold_the_idle_timeout(certs, tmp_path, keepalive):
    """A server that answers the head, then only sends frames that carry no
    body byte (PINGs on the connection, WINDOW_UPDATEs or empty DATA frames
    on the stream) every 0.1 s: no body byte for --idle-timeout ends the
    transfer (exit 9), however busy the connection looks."""
    def frame(sid, i):
        if keepalive == "ping":
            return PingFrame(0, opaque_data=b"%08d" % i).serialize()
        if keepalive == "window_update":
            return window_update(sid, 1)
        return data_frame(sid, b"")

    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(1000))
        send()
        for i in range(200):
            if srv.stopping.is_set():
                break
            try:
                send(frame(sid, i))
            except OSError:
                break
            srv.sleep(0.1)
        return "close"
    t = time.monotonic()
    run_hostile(certs, tmp_path, 9, "reading the body", script, extra=("--idle-timeout", "1"))
    assert time.monotonic() - t < 10


def test_slow_head_in_continuation_frames_is_progress(certs, tmp_path):
    """A head that comes a field at a time in CONTINUATION frames every
    0.3 s, 2.4 s in all, past --idle-timeout 1: each field is the stream's
    progress, so it is not a stall; the file is saved."""
    def script(srv, conn, sid, h, send, n):
        send(HeadersFrame(sid, data=b"\x88" + literal(b"content-length", b"2")).serialize())
        for i in range(8):
            srv.sleep(0.3)
            f = ContinuationFrame(sid, data=literal(b"x-slow-%d" % i, b"v"))
            if i == 7:
                f.flags.add("END_HEADERS")
            send(f.serialize())
        send(data_frame(sid, b"ok", end=True))
        srv.sleep(5)
        return "close"
    r, srv = served(certs, script, "-o", str(tmp_path / "o"), "-s", "--idle-timeout", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"ok"


# ---- multiplexing ----

def test_multiplexed_status_per_stream(certs, tmp_path):
    """Streams of one connection answer 200, 404 and a redirect to another
    path of the same origin: each verdict is its own; --fail keeps the 404
    body off the disk and the connection for the redirect's target."""
    def script(srv, conn, sid, h, send, n):
        p = h[":path"]
        if p == "/b":
            conn.send_headers(sid, [(":status", "404"), ("content-length", "9")])
            send_body(conn, sid, b"not found", send)
        elif p == "/c":
            conn.send_headers(sid, [(":status", "302"), ("location", "/c2"),
                                    ("content-length", "0")])
            send_body(conn, sid, b"", send)
        else:
            conn.send_headers(sid, ok_head(len(p)))
            send_body(conn, sid, p.encode(), send)
    r, srv = served(certs, script, "--parallel", "3", "--fail", "--output-dir", str(tmp_path),
                    paths=("/a", "/b", "/c"))
    assert r.returncode == 6, r.stderr
    assert (tmp_path / "a").read_bytes() == b"/a"
    assert sorted(os.listdir(tmp_path)) == ["a", "c"], os.listdir(tmp_path)
    assert (tmp_path / "c").read_bytes() == b"/c2"
    assert b"404" in r.stderr


@pytest.mark.parametrize("owner", ["flows", "done", "stalled"])
def test_multiplexed_slow_streams_each_keep_their_own_clock(certs, tmp_path, owner):
    """Streams of one connection dribble a piece every 0.25 s for 2.5 s,
    past --idle-timeout 1: each stream's progress is its own, none times
    out. done: the owner's file is whole at once and it waits for its
    guests without a clock of its own. stalled: the owner's stream stops
    after its head; its guests' frames are not its progress, so it times
    out (exit 9) and the guests are saved."""
    streams = []

    def script(srv, conn, sid, h, send, n):
        is_owner = h[":path"] == "/a"
        conn.send_headers(sid, ok_head(1 if is_owner and owner == "done" else 10))
        if is_owner and owner == "done":
            send_body(conn, sid, b"a", send)
            return None
        send()
        if is_owner and owner == "stalled":
            return None
        streams.append((sid, h[":path"][1:].encode()))
        if len(streams) < (3 if owner == "flows" else 2):
            return None
        for i in range(10):
            for s, c in streams:
                send_body(conn, s, c, send, end=i == 9)
            srv.sleep(0.25)
    r, srv = served(certs, script, "--parallel", "3", "--idle-timeout", "1", "--output-dir",
                    str(tmp_path), paths=("/a", "/b", "/c"))
    assert srv.connections == 1
    assert (tmp_path / "b").read_bytes() == b"b" * 10
    assert (tmp_path / "c").read_bytes() == b"c" * 10
    if owner == "stalled":
        assert r.returncode == 9, r.stderr
        assert b"/a: " in r.stderr and b"reading the body" in r.stderr, r.stderr
        assert sorted(os.listdir(tmp_path)) == ["b", "c"], os.listdir(tmp_path)
        return
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a").read_bytes() == (b"a" if owner == "done" else b"a" * 10)


def test_multiplexed_interim_flood_on_one_stream(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        if h[":path"] == "/b":
            for _ in range(50):
                conn.send_headers(sid, [(":status", "103"), ("link", "</x>")])
                send()
        conn.send_headers(sid, ok_head(3000))
        send_body(conn, sid, h[":path"][1:].encode() * 3000, send)
    r, srv = multiplexed(certs, tmp_path, script)
    assert r.returncode == 7, r.stderr
    assert (tmp_path / "a").read_bytes() == b"a" * 3000
    assert (tmp_path / "c").read_bytes() == b"c" * 3000
    assert not (tmp_path / "b").exists()


def test_multiplexed_data_past_content_length_on_a_guest(certs, tmp_path):
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(3000))
        send()
        if h[":path"] == "/b":
            send(data_frame(sid, b"b" * 3000))
            send(data_frame(sid, b"b" * 100, end=True))  # beyond the length
            return None
        send_body(conn, sid, h[":path"][1:].encode() * 3000, send)
    r, srv = multiplexed(certs, tmp_path, script)
    assert r.returncode != 0, r.stderr
    assert not (tmp_path / "b").exists()
    for name in "ac":
        if (tmp_path / name).exists():
            assert (tmp_path / name).read_bytes() == name.encode() * 3000


def test_guest_reset_while_the_owner_body_flows(certs, tmp_path):
    """The owner's stream is mid-body (the rest of its DATA held back) when
    a guest's stream is reset before its head: the owner's rest comes after
    the reset and is saved, the guest alone fails (exit 7)."""
    held = []

    def script(srv, conn, sid, h, send, n):
        if h[":path"] == "/a":
            conn.send_headers(sid, ok_head(6000))
            send_body(conn, sid, b"a" * 3000, send, end=False)
            held.append(sid)
            return None
        if h[":path"] == "/b":
            conn.reset_stream(sid, error_code=8)  # CANCEL
            send()
            while held:
                send_body(conn, held.pop(), b"a" * 3000, send)
            return None
        conn.send_headers(sid, ok_head(1))
        send_body(conn, sid, b"c", send)
    r, srv = multiplexed(certs, tmp_path, script)
    assert srv.connections == 1
    assert r.returncode == 7, r.stderr
    assert b"/b: server reset the HTTP/2 stream (RST_STREAM CANCEL)" in r.stderr, r.stderr
    assert (tmp_path / "a").read_bytes() == b"a" * 6000
    assert (tmp_path / "c").read_bytes() == b"c"
    assert not (tmp_path / "b").exists()


def interrupted(certs, tmp_path, script, names, started, files, fd_max=None):
    """names fetched with --parallel 3 from a hostile server running script;
    SIGINT once started is set and the folder holds files entries (at most
    fd_max descriptors open then); the run checked (exit 1, interrupted,
    no sanitizer report); returns the server."""
    srv = H2Server(certs, script=script)
    try:
        p = subprocess.Popen([SOCKIT, "fetch", *[srv.url(f"/{c}") for c in names],
                              "--cacert", certs["ca"], "--parallel", "3", "-s"],
                             cwd=tmp_path, stderr=subprocess.PIPE)
        assert started.wait(20)
        wait_in_folder(str(tmp_path), lambda: len(os.listdir(tmp_path)) == files, 10,
                       f"{files} files in the folder")
        if fd_max:
            assert fd_count(p.pid) <= fd_max, os.listdir(f"/proc/{p.pid}/fd")
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=20)[1]
    finally:
        srv.stop()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, err
    assert b"Sanitizer" not in err and b"interrupted" in err, err
    return srv


def test_sigint_while_guests_are_mid_body(certs, tmp_path):
    """SIGINT with three streams of one connection in their bodies: exit 1,
    no file, no temporary file."""
    seen = []
    started = threading.Event()

    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(100000))
        send_body(conn, sid, b"x" * 2000, send, end=False)
        seen.append(sid)
        if len(seen) == 3:
            started.set()
    # std, socket, files, loop
    srv = interrupted(certs, tmp_path, script, "abc", started, 3, fd_max=3 + 1 + 3 + 4)
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
    assert srv.connections == 1


def test_goaway_while_guests_wait_for_the_handshake(certs, tmp_path):
    """The server's first word after the handshake is a GOAWAY (last stream
    0, NO_ERROR): no stream was processed, so each is tried on a new
    connection, where the second server answers."""
    def script(srv, conn, sid, h, send, n):
        if n == 1:
            send(goaway(0, 0))
            return "close"
        conn.send_headers(sid, ok_head(1))
        send_body(conn, sid, h[":path"][1:].encode(), send)
    r, srv = multiplexed(certs, tmp_path, script)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]
    assert srv.connections >= 2


# ---- redirects across protocols ----

def test_redirect_h2_to_h1_and_back(certs, tmp_path_factory, tmp_path):
    """h2 (hostile server) -> http:// nginx (HTTP/1.1) -> https:// nginx (h2)."""
    d = str(tmp_path_factory.mktemp("nginx_h2_redir"))
    ng = Nginx(d, certs, access_log=True, http2=True)
    ng.put("small.bin", b"small body\n")

    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, [(":status", "302"), ("content-length", "0"),
                                ("location", ng.url("/redir/to-https"))])
        send_body(conn, sid, b"", send)
    srv = H2Server(certs, script=script)
    try:
        r = fetch(srv.url("/start"), "--cacert", certs["ca"], "-o", str(tmp_path / "o"), "-s",
                  "--allow-downgrade")
        # nginx logs an HTTP/2 request when its stream closes, maybe after
        # sockit exited (seen failing once under load): wait for the line
        wait_in_folder(d, lambda: any(x[2] == "/small.bin" for x in ng.log()), 10,
                       "nginx's log line of /small.bin")
        log = ng.log()
    finally:
        srv.stop()
        ng.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == b"small body\n"
    assert [(line[2], line[3]) for line in log] == [("/redir/to-https", "HTTP/1.1"),
                                                    ("/small.bin", "HTTP/2.0")], log


def run_or_interrupt(argv, ready, **kw):
    """Runs argv; with ready (an event), sends it SIGINT once ready is set.
    Returns (exit status, standard error), checked for a sanitizer report."""
    p = subprocess.Popen(argv, stderr=subprocess.PIPE, **kw)
    try:
        if ready is not None:
            assert ready.wait(20)
            p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=20)[1].decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p.returncode, err


# ---- the resolver with guests waiting ----

@pytest.mark.parametrize("how", ["sigint", "timeout"])
def test_one_pending_lookup_with_guests_waiting(tmp_path, slow_resolver, how):
    """Three https URLs of one slow name: one lookup (the run's cache), the
    two others wait for it; a SIGINT, or the connect timeout, ends them all
    with one verdict each, nothing saved, no sanitizer report."""
    fifo = tmp_path / "fifo"
    opened, keep = held_fifo(fifo)
    urls = [f"https://d.slow.test/{c}" for c in "abc"]
    extra = ["--connect-timeout", "0.5"] if how == "timeout" else []
    try:  # with sigint: once the lookup's thread is in getaddrinfo
        rc, err = run_or_interrupt([SOCKIT, "fetch", "--parallel", "3", *urls, *extra],
                                   opened if how == "sigint" else None, cwd=tmp_path,
                                   env=slow_env(slow_resolver, fifo))
    finally:
        for f in keep:
            f.close()
    assert rc == (1 if how == "sigint" else 9), err
    assert os.listdir(tmp_path) == ["fifo"], os.listdir(tmp_path)
    if how == "timeout":
        for u in urls:
            assert f"{u}: resolving d.slow.test: timed out after 0.5 s" in err, err


# ---- the owner leaves, fails or redirects while its guests are mid-body ----

@pytest.fixture(scope="module")
def ng1(tmp_path_factory, certs):
    """nginx over HTTP/1.1 only, as a redirect's other origin."""
    srv = Nginx(str(tmp_path_factory.mktemp("nginx_h1")), certs)
    srv.put("small.bin", b"small body\n")
    yield srv
    srv.stop()


@pytest.mark.parametrize("owner", ["redirect-away", "404-fail", "max-filesize", "reset"])
def test_owner_ends_while_guests_are_mid_body(certs, tmp_path, ng1, owner):
    """The owner's own stream ends early (a redirect to another origin, a
    404 under --fail, a body past --max-filesize, a reset) while two guests'
    bodies are under way on its connection: the connection outlives the
    owner's stream, the guests' files are whole."""
    streams = []

    def script(srv, conn, sid, h, send, n):
        if h[":path"] == "/a":
            streams.append(sid)
            return None
        conn.send_headers(sid, ok_head(20))
        send_body(conn, sid, h[":path"][1:].encode() * 10, send, end=False)
        streams.append(sid)
        if len(streams) < 3:
            return None
        a = streams[0]
        if owner == "redirect-away":
            conn.send_headers(a, [(":status", "302"), ("content-length", "0"),
                                  ("location", ng1.url("/small.bin"))], end_stream=True)
        elif owner == "404-fail":
            conn.send_headers(a, [(":status", "404"), ("content-length", "4")])
            send_body(conn, a, b"gone", send)
        elif owner == "max-filesize":
            conn.send_headers(a, ok_head(5000))
            send_body(conn, a, b"a" * 5000, send)
        else:
            conn.reset_stream(a, error_code=2)
        send()
        srv.sleep(0.3)
        for s, c in zip(streams[1:], b"bc"):
            send_body(conn, s, bytes([c]) * 10, send)
    srv = H2Server(certs, script=script)
    extra = {"404-fail": ["--fail"], "max-filesize": ["--max-filesize", "1000"]}.get(owner, [])
    try:
        p = subprocess.Popen([SOCKIT, "fetch", *[srv.url(f"/{c}") for c in "abc"], "--cacert",
                              certs["ca"], "--parallel", "3", "--allow-downgrade", "-s",
                              "--output-dir", str(tmp_path), "--max-time", "20", *extra],
                             stderr=subprocess.PIPE)
        err = p.communicate(timeout=30)[1]
    finally:
        srv.stop()
    assert b"Sanitizer" not in err and b"runtime error" not in err, err
    assert p.returncode == {"redirect-away": 0, "404-fail": 6, "max-filesize": 13,
                            "reset": 7}[owner], err
    assert (tmp_path / "b").read_bytes() == b"b" * 20
    assert (tmp_path / "c").read_bytes() == b"c" * 20
    if owner == "redirect-away":
        assert (tmp_path / "a").read_bytes() == b"small body\n"
    else:
        assert sorted(os.listdir(tmp_path)) == ["b", "c"], os.listdir(tmp_path)
    assert srv.connections == 1


def test_more_streams_than_the_connection_takes(certs, tmp_path):
    """300 URLs, --parallel 300, against a server allowing 100 streams: the
    rest open their own connections or wait; every file saved, no leak."""
    def script(srv, conn, sid, h, send, n):
        conn.send_headers(sid, ok_head(len(h[":path"])))
        send_body(conn, sid, h[":path"].encode(), send)
    srv = H2Server(certs, script=script)
    try:
        r = fetch(*[srv.url(f"/f{i}") for i in range(300)], "--cacert", certs["ca"],
                  "--parallel", "300", "-s", "--output-dir", str(tmp_path), timeout=120)
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(os.listdir(tmp_path)) == 300
    assert (tmp_path / "f299").read_bytes() == b"/f299"


def test_head_request_answered_with_a_body(certs, tmp_path):
    """-I (HEAD) over h2, the server sending DATA anyway: a HEAD response
    has no body, so the head is shown and the DATA dropped; no file."""
    def script(srv, conn, sid, h, send, n):
        assert h[":method"] == "HEAD"
        send(raw_headers(sid, b"\x88" + literal(b"content-length", b"5")))
        send(data_frame(sid, b"hello", end=True))
        srv.sleep(5)
        return "close"
    srv = H2Server(certs, script=script)
    try:
        r = fetch("-I", srv.url("/f"), "--cacert", certs["ca"], "--max-time", "5", cwd=tmp_path,
                  timeout=30)
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == 0, r.stderr  # the head is the answer; the DATA dropped
    assert r.stdout == b"HTTP/2 200\r\ncontent-length: 5\r\n\r\n", r.stdout
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_handshake_cut_while_guests_wait(tmp_path, certs):
    """The server takes each TCP connection and closes it at once: the
    transfers waiting for the first one's handshake are not left waiting;
    each URL fails with its line (TLS, exit 5), nothing saved."""
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    stop = threading.Event()

    def serve():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                s, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = fetch(*[f"https://localhost:{port}/{c}" for c in "abc"], "--cacert", certs["ca"],
                  "--parallel", "3", "--output-dir", str(tmp_path), "--max-time", "10",
                  timeout=30)
    finally:
        stop.set()
        t.join(5)
        lsock.close()
    assert_clean(r)
    assert r.returncode == 5, r.stderr  # a TLS failure
    err = r.stderr.decode()
    for c in "abc":
        assert f"https://localhost:{port}/{c}: " in err, err
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


# ---- scripts that test_torture.py also runs under the fault build, whose
# exit report counts the descriptors left open ----

def _reset_b(srv, conn, sid, h, send, n):
    conn.send_headers(sid, ok_head(3000))
    if h[":path"] == "/b":
        send_body(conn, sid, b"b" * 1000, send, end=False)
        conn.reset_stream(sid, error_code=2)
        send()
        return None
    send_body(conn, sid, h[":path"][1:].encode() * 3000, send)


def _cut_all(srv, conn, sid, h, send, n):
    conn.send_headers(sid, ok_head(100000))
    send_body(conn, sid, b"x" * 1000, send, end=False)
    return "close" if h[":path"] == "/c" else None


def _goaway_first(srv, conn, sid, h, send, n):
    if n == 1:
        send(goaway(0, 0))
        return "close"
    conn.send_headers(sid, ok_head(1))
    send_body(conn, sid, b"1", send)


def _stall_b(srv, conn, sid, h, send, n):
    conn.send_headers(sid, ok_head(3000))
    if h[":path"] != "/b":
        send_body(conn, sid, b"z" * 3000, send)


@pytest.mark.parametrize("how", ["sigint", "connect-timeout"])
def test_silent_handshake_while_guests_wait(certs, tmp_path, how):
    """The server takes the TCP connections and never answers the TLS
    ClientHello: the transfers waiting for the first one's handshake end
    with it, on a SIGINT (exit 1) or on --connect-timeout (exit 9, each
    URL its line, in bounded time), nothing saved."""
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    held = []
    accepted = threading.Event()

    def serve():
        while True:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            held.append(s)
            accepted.set()
    threading.Thread(target=serve, daemon=True).start()
    urls = [f"https://localhost:{port}/{c}" for c in "abc"]
    extra = ["--connect-timeout", "0.5"] if how == "connect-timeout" else []
    t = time.monotonic()
    try:
        rc, err = run_or_interrupt([SOCKIT, "fetch", *urls, "--cacert", certs["ca"],
                                    "--parallel", "3", "--output-dir", str(tmp_path), *extra],
                                   accepted if how == "sigint" else None)
    finally:
        lsock.close()
        for s in held:
            s.close()
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
    if how == "sigint":
        assert rc == 1, err
        assert "interrupted" in err, err
        return
    assert rc == 9, err
    assert time.monotonic() - t < 5, err
    for u in urls:
        assert f"{u}: " in err, err


# ---- the run's pool: a connection outlives the transfer that opened it ----

def pooled(certs, tmp_path, script, names, *args, init=None):
    """names fetched with --parallel 3 (and args) from a hostile server
    running script (init(conn): after its SETTINGS are queued); the run
    checked for a signal or a sanitizer report; (run, server, seconds)."""
    import h2.connection
    orig = h2.connection.H2Connection.initiate_connection

    def initiate(self):
        orig(self)
        if init:
            init(self)
    h2.connection.H2Connection.initiate_connection = initiate
    srv = H2Server(certs, script=script)
    t = time.monotonic()
    try:
        r = fetch(*[srv.url(f"/{c}") for c in names], "--cacert", certs["ca"], "--parallel",
                  "3", "--output-dir", str(tmp_path), "--max-time", "20", *args, timeout=40)
    finally:
        h2.connection.H2Connection.initiate_connection = orig
        srv.stop()
    assert_clean(r)
    return r, srv, time.monotonic() - t


def test_pool_max_concurrent_streams_one(certs, tmp_path):
    """SETTINGS_MAX_CONCURRENT_STREAMS 1: the first three streams went
    before the SETTINGS came and are served; with the third still open, a
    later transfer finds the connection full and opens another (the third
    body ends only once a request came there); every file whole."""
    second = threading.Event()

    def script(srv, conn, sid, h, send, n):
        c = h[":path"][1:].encode()
        conn.send_headers(sid, ok_head(4000))
        if n > 1:
            second.set()
        elif sid == 5:
            send_body(conn, sid, c * 1000, send, end=False)
            if not second.wait(10):
                return "close"
            send_body(conn, sid, c * 3000, send)
            return None
        send_body(conn, sid, c * 4000, send)
    r, srv, _ = pooled(certs, tmp_path, script, "abcdef",
                       init=lambda c: c.update_settings({0x3: 1}))
    assert r.returncode == 0, r.stderr
    for c in "abcdef":
        assert (tmp_path / c).read_bytes() == c.encode() * 4000
    assert second.is_set() and srv.connections >= 2


def test_pool_first_transfer_done_while_others_mid_body(certs, tmp_path):
    """The connection's first transfer ends at once while two others are
    mid-body: its slot's next URL opens its stream on the same connection
    (the server answers none of them before it saw it there), then the
    last URL too: one connection, every file whole."""
    held = []

    def script(srv, conn, sid, h, send, n):
        c = h[":path"][1:].encode()
        conn.send_headers(sid, ok_head(3000))
        if c in (b"a", b"e"):
            send_body(conn, sid, c * 3000, send)
            return None
        send_body(conn, sid, c * 1000, send, end=False)
        held.append((sid, c))
        if len(held) == 3:  # b and c mid-body, d joined the connection
            for s, b in held:
                send_body(conn, s, b * 2000, send)
    r, srv, _ = pooled(certs, tmp_path, script, "abcde")
    assert r.returncode == 0, r.stderr
    for c in "abcde":
        assert (tmp_path / c).read_bytes() == c.encode() * 3000
    assert srv.connections == 1
    assert sorted(x[1] for x in held) == [b"b", b"c", b"d"]


def test_pool_goaway_with_streams_active_and_others_waiting(certs, tmp_path):
    """A graceful GOAWAY (last stream 5) when the fourth request comes on
    the run's connection, two bodies under way: those finish, the refused
    request is sent once more on a new connection, and the URLs after it
    join that one: two connections, every file whole."""
    state = {"pending": []}

    def script(srv, conn, sid, h, send, n):
        c = h[":path"][1:].encode()
        if n > 1 or c == b"a":
            conn.send_headers(sid, ok_head(2000))
            send_body(conn, sid, c * 2000, send)
            return None
        if sid > 5:  # the fourth stream: refused, the others finished
            send(goaway(5, 0))
            for s, b in state["pending"]:
                send_body(conn, s, b * 1000, send)
            return "close"
        conn.send_headers(sid, ok_head(2000))
        send_body(conn, sid, c * 1000, send, end=False)
        state["pending"].append((sid, c))
    r, srv, _ = pooled(certs, tmp_path, script, "abcdef")
    assert r.returncode == 0, r.stderr
    for c in "abcdef":
        assert (tmp_path / c).read_bytes() == c.encode() * 2000
    assert srv.connections == 2


def _pool_reset_e(srv, conn, sid, h, send, n):
    """Each path's letter 3000 times, but /e is reset inside its body."""
    c = h[":path"][1:].encode()
    conn.send_headers(sid, ok_head(3000))
    if c == b"e":
        send_body(conn, sid, b"e" * 1000, send, end=False)
        conn.reset_stream(sid, error_code=2)
        send()
        return None
    send_body(conn, sid, c * 3000, send)


def test_pool_reset_of_a_later_stream_only(certs, tmp_path):
    """RST_STREAM on one stream of a transfer that joined after the first
    ones ended: that URL fails (exit 8, nothing saved), the others on the
    same connection are whole."""
    r, srv, _ = pooled(certs, tmp_path, _pool_reset_e, "abcdef")
    assert r.returncode == 8, r.stderr
    assert sorted(os.listdir(tmp_path)) == list("abcdf"), os.listdir(tmp_path)
    for c in "abcdf":
        assert (tmp_path / c).read_bytes() == c.encode() * 3000
    assert b"/e: server reset the HTTP/2 stream (RST_STREAM INTERNAL_ERROR)" in r.stderr
    assert srv.connections == 1


def test_pool_server_stops_reading(certs, tmp_path):
    """The server answers the first three streams, then neither reads nor
    writes on the connection: the later transfers joined to it end on their
    idle timeout (exit 9, each its line, nothing saved) in bounded time."""
    def script(srv, conn, sid, h, send, n):
        c = h[":path"][1:].encode()
        conn.send_headers(sid, ok_head(3000))
        send_body(conn, sid, c * 3000, send)
        if len(srv.requests) == 3:
            send()
            srv.sleep(30)  # stop() wakes it
            return "close"
    r, srv, took = pooled(certs, tmp_path, script, "abcdef", "--idle-timeout", "1")
    assert r.returncode == 9, r.stderr
    assert took < 15, r.stderr
    assert sorted(os.listdir(tmp_path)) == list("abc"), os.listdir(tmp_path)
    for c in "def":
        assert f"/{c}: ".encode() in r.stderr, r.stderr
    assert srv.connections == 1


def test_pool_sigint_with_the_first_transfer_done(certs, tmp_path):
    """SIGINT while three streams are mid-body on the connection whose first
    transfer is over (its slot's next URL one of them): exit 1, the first
    file saved, nothing partial of the others."""
    held = []
    started = threading.Event()

    def script(srv, conn, sid, h, send, n):
        c = h[":path"][1:].encode()
        conn.send_headers(sid, ok_head(100000))
        if c == b"a":
            send_body(conn, sid, b"a" * 100000, send)
            return None
        send_body(conn, sid, c * 2000, send, end=False)
        held.append(sid)
        if len(held) == 3:
            started.set()
    srv = interrupted(certs, tmp_path, script, "abcde", started, 4)
    assert os.listdir(tmp_path) == ["a"], os.listdir(tmp_path)
    assert (tmp_path / "a").read_bytes() == b"a" * 100000
    assert srv.connections == 1


def test_redirect_with_its_body_unsent_keeps_the_connection(certs, tmp_path):
    """A 302 whose body (Content-Length 1000) has not come when the redirect
    is followed: its stream is reset (CANCEL) and the next hop is a stream of
    the same connection, not a new one; the 302's DATA, had it come, would
    not reach the next hop's body."""
    body = os.urandom(3000)

    def script(srv, conn, sid, h, send, n):
        if h[":path"] == "/f":
            conn.send_headers(sid, [(":status", "302"), ("location", "/g"),
                                    ("content-length", "1000")])
            return None  # its body never sent
        conn.send_headers(sid, ok_head(len(body)))
        send_body(conn, sid, body, send)
        return None

    out = tmp_path / "out"
    r, srv = served(certs, script, "-o", str(out), "-s")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body
    assert srv.connections == 1
    assert [h[":path"] for h in srv.requests] == ["/f", "/g"]
    assert (1, 1, 8) in srv.resets, srv.resets  # stream 1, CANCEL


def test_kept_connection_closed_without_goaway_is_sent_again(certs, tmp_path):
    """The server answers the first URL, then closes its connection with no
    GOAWAY: the second URL, sent on the kept connection, meets the close
    before any byte of its head and is sent once more on a new connection."""
    def script(srv, conn, sid, h, send, n):
        body = h[":path"].encode() * 10
        conn.send_headers(sid, ok_head(len(body)))
        send_body(conn, sid, body, send)
        return "close" if n == 1 else None

    r, srv = served(certs, script, "--parallel", "1", "--output-dir", str(tmp_path), "-s",
                    paths=("/f", "/g"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f").read_bytes() == b"/f" * 10
    assert (tmp_path / "g").read_bytes() == b"/g" * 10
    assert srv.connections == 2
