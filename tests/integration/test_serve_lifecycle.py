"""Session log lines (one open and one close with the right reason per
session) and the SIGINT/SIGTERM shutdown."""
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import SOCKIT, cpu_seconds, recv_exact, recv_until, wait_until


def greet(s, line=False):
    want = b"Welcome!\n" if line else b"Welcome!"
    assert recv_exact(s, len(want)) == want


def sessions_balanced(srv):
    """Every logged open has exactly one close for the same peer."""
    opens, closes = {}, {}
    for line in srv.lines:
        m = re.search(r" open (\S+)$", line)
        if m:
            opens[m.group(1)] = opens.get(m.group(1), 0) + 1
        m = re.search(r" close (\S+) reason=", line)
        if m:
            closes[m.group(1)] = closes.get(m.group(1), 0) + 1
    assert all(n == 1 for n in opens.values()), opens
    assert opens == closes, (opens, closes)
    return len(opens)


def tcp_queues(srv, sock):
    """(bytes we sent that the server's kernel has not acknowledged, bytes
    the server has not read) on the connection of `sock`, from
    /proc/net/tcp (IPv4 loopback)."""
    mine, unacked, unread = sock.getsockname()[1], None, None
    with open(f"/proc/{srv.proc.pid}/net/tcp") as f:
        for row in f.readlines()[1:]:
            fields = row.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            tx, rx = (int(v, 16) for v in fields[4].split(":"))
            if lport == mine and rport == srv.port:
                unacked = tx
            elif lport == srv.port and rport == mine:
                unread = rx
    return unacked, unread


def wait_server_read(srv, sock, timeout=5.0):
    """Waits until the server has read everything sent on `sock` so far."""
    wait_until(lambda: tcp_queues(srv, sock) == (0, 0), timeout, "server read our bytes")


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_close_reasons_each_logged_once(serve):
    srv = serve("--framing", "line", "--max-line", "16", "--idle-timeout", "2")
    # exit
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"a\nb\nexit\n")
        recv_until(s, b"\x00never")
    # eof
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"a\n")
        recv_exact(s, 10)
    # message-too-long
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"x" * 40 + b"\n")
        assert recv_until(s, b"\x00never") == b"Error: message too long\n"
    # reset
    s = srv.connect()
    greet(s, True)
    s.sendall(b"a\n")
    recv_exact(s, 10)
    rst_close(s)
    # idle-timeout
    with srv.connect() as s:
        greet(s, True)
        assert recv_until(s, b"\x00never", timeout=5) == b""
    srv.wait_log(r"reason=idle-timeout")
    for reason, msgs in [("exit", 2), ("eof", 1), ("message-too-long", 0), ("reset", 1),
                         ("idle-timeout", 0)]:
        srv.wait_log(rf"close 127\.0\.0\.1:\d+ reason={reason} messages={msgs} bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$")
        assert srv.log_count(rf"reason={reason} ") == 1, reason
    assert sessions_balanced(srv) == 5
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=5 refused=0 messages=4 ") == 1


def test_output_limit_reason_for_a_peer_that_never_reads(serve):
    # One 10 MiB line is answered with a 10 MiB reply: more than the 4 MiB
    # bound on pending output once the socket buffers are full.
    srv = serve("--framing", "line", "--max-line", str(16 << 20))
    base = srv.fd_count()
    s = srv.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        greet(s, True)
        s.settimeout(20)
        s.sendall(b"y" * (10 << 20) + b"\n")
        srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=output-limit messages=1", timeout=20)
    finally:
        s.close()
    wait_until(lambda: srv.fd_count() == base, 10, "fds back to baseline")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_with_idle_sessions_exits_quickly(serve, sig):
    srv = serve("--framing", "line")
    socks = [srv.connect() for _ in range(20)]
    try:
        for s in socks:
            greet(s, True)
        socks[0].sendall(b"one\n")
        assert recv_exact(socks[0], 12) == b"Hello, one!\n"
        socks[1].sendall(b"partial line")  # pending input does not hold up the stop
        srv.wait_log(r" open ", count=20)
        t0 = time.monotonic()
        rc = srv.stop(sig, timeout=5)
        took = time.monotonic() - t0
        assert rc == 0
        assert took < 1.5, f"shutdown took {took:.2f}s with idle sessions"
        # Each session still open hears why it ends (docs/protocol.md), then the FIN.
        for s in socks:
            assert recv_until(s, b"\x00never", timeout=3) == b"Error: server shutting down\n"
    finally:
        for s in socks:
            s.close()
    name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
    assert srv.log_count(rf"received {name}") == 1
    assert srv.log_count(r"reason=shutdown") == 20
    assert srv.log_count(r"summary:") == 1
    summary = [l for l in srv.lines if "summary:" in l][0]
    assert re.search(r"summary: connections=20 refused=0 messages=1 datagrams=0 "
                     r"bytes_in=\d+ bytes_out=\d+$", summary), summary
    assert sessions_balanced(srv) == 20
    assert srv.lines[-1] == summary


def test_signal_stops_accepting_and_flushes_delayed_reply(serve):
    srv = serve("--delay", "800")
    with srv.connect() as s:
        greet(s)
        s.sendall(b"late")
        wait_server_read(srv, s)
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(r"received SIGTERM")
        # No new sessions once stopping: the connect is refused, or at least
        # the connection is never greeted.
        try:
            with srv.connect(timeout=2) as late:
                late.settimeout(2)
                try:
                    got = late.recv(100)
                except (ConnectionResetError, socket.timeout):
                    got = b""
                assert got == b"", f"new session greeted during shutdown: {got!r}"
        except (ConnectionRefusedError, ConnectionResetError):
            # Refused; or (racing the listener's shutdown) the handshake
            # completed into the backlog and was then reset.
            pass
        # The reply already promised still arrives, then the drain's goodbye, then the close.
        assert recv_until(s, b"\x00never", timeout=5) == b"Hello, late!Error: server shutting down\n"
    assert srv.stop(timeout=5) == 0
    assert srv.log_count(r"reason=shutdown messages=1") == 1
    assert srv.log_count(r"summary: connections=1 refused=0 messages=1 ") == 1


def test_signal_refuses_new_connections_immediately(serve):
    srv = serve("--delay", "1500")
    with srv.connect() as s:
        greet(s)
        s.sendall(b"keep the server in its grace period")
        wait_server_read(srv, s)
        srv.proc.send_signal(signal.SIGINT)
        srv.wait_log(r"received SIGINT")
        # Refused from the moment the stop is requested (allow the main
        # thread a moment to get from its log line to the stop call).
        refused_after = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            try:
                srv.connect(timeout=2).close()
            except (ConnectionRefusedError, ConnectionResetError):
                # a connect racing the listener's shutdown is reset: refused too
                refused_after = time.monotonic() - t0
                break
            time.sleep(0.05)
        assert refused_after is not None, "still accepting connects 1 s after SIGINT"
        recv_until(s, b"\x00never", timeout=5)
    assert srv.stop(timeout=5) == 0


def test_grace_period_bounds_shutdown_with_a_stuck_reader(serve):
    # A peer that never reads holds pending output; the server still exits
    # after its grace period, not never.
    srv = serve("--framing", "line")
    s = srv.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        greet(s, True)
        s.setblocking(False)
        sent = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:
            try:
                sent += s.send(b"\n" * 65536)
            except BlockingIOError:
                time.sleep(0.01)
                if sent > (1 << 20):
                    break
        t0 = time.monotonic()
        assert srv.stop(signal.SIGTERM, timeout=8) == 0
        assert time.monotonic() - t0 < 4.0
    finally:
        s.close()
    assert srv.log_count(r"reason=shutdown") == 1
    assert srv.log_count(r"summary:") == 1


def test_error_line_delivered_to_a_peer_that_keeps_sending(serve):
    # After "message too long" the server sends its FIN and discards input
    # for a bounded time: the line is never lost to a reset, and a peer that
    # never stops sending is still closed within the linger period.
    srv = serve("--framing", "line", "--max-line", "1000")
    base = srv.fd_count()
    s = srv.connect()
    try:
        greet(s, True)
        s.sendall(b"ok\n" + b"x" * 5000)
        assert recv_until(s, b"\x00never", timeout=5) == b"Hello, ok!\nError: message too long\n"
        t0 = time.monotonic()
        s.setblocking(False)
        closed = False
        while time.monotonic() - t0 < 6 and not closed:
            try:
                s.send(b"y" * 4096)
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            time.sleep(0.01)
        assert closed, "server still reading a peer it has given up on"
        assert time.monotonic() - t0 < 4
    finally:
        s.close()
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=message-too-long messages=1")
    wait_until(lambda: srv.fd_count() == base, 5, "fds back to baseline")


def test_shutdown_does_not_wait_for_a_lingering_session(serve):
    srv = serve("--framing", "line", "--max-line", "10")
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"z" * 100)
        assert recv_until(s, b"\x00never", timeout=5) == b"Error: message too long\n"
        t0 = time.monotonic()
        assert srv.stop(timeout=5) == 0
        assert time.monotonic() - t0 < 1.5  # the linger (and grace) period is 2 s
    assert srv.log_count(r"reason=message-too-long") == 1


def test_shutdown_does_not_wait_for_a_dropped_delayed_reply(serve):
    # The only delayed reply belonged to a session that was reset: nothing
    # is left to send, so SIGTERM must not wait for the --delay to pass.
    srv = serve("--delay", "20000", "--workers", "1")
    s = srv.connect()
    greet(s)
    s.sendall(b"never answered")
    wait_server_read(srv, s)
    rst_close(s)
    srv.wait_log(r"reason=reset messages=1")
    t0 = time.monotonic()
    assert srv.stop(timeout=5) == 0
    assert time.monotonic() - t0 < 1.5  # not the 20 s delay


def test_replies_before_exit_survive_input_sent_after_it(serve):
    # A pipelining client sends "exit" and more behind it, and reads late.
    # Closing with that input unread would reset the connection and destroy
    # the replies still queued; they must all arrive, then the close.
    srv = serve("--framing", "line")
    n = 20000
    want = b"Hello, a!\n" * n
    for _ in range(3):
        s = srv.connect()
        try:
            greet(s, True)
            s.sendall(b"a\n" * n + b"exit\n")
            s.setblocking(False)
            try:
                s.send(b"after exit\n" * 20000)
            except BlockingIOError:
                pass
            s.setblocking(True)
            time.sleep(0.3)  # the client reads late: the scenario, not a wait
            assert recv_until(s, b"\x00never", timeout=5, limit=1 << 30) == want
            # The server has sent its FIN and is draining us: that must not
            # cost CPU while we keep the connection open.
            c0 = cpu_seconds(srv.proc.pid)
            time.sleep(0.3)
            assert cpu_seconds(srv.proc.pid) - c0 < 0.15
        finally:
            s.close()
    srv.wait_log(rf"close 127\.0\.0\.1:\d+ reason=exit messages={n} bytes_in=\d+ bytes_out=\d+ duration_ms=\d+$", count=3)


def test_exit_without_the_peer_closing_ends_within_the_linger_time(serve):
    srv = serve("--framing", "line")
    base = srv.fd_count()
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"x\nexit\n")
        assert recv_until(s, b"\x00never") == b"Hello, x!\n"
        # We do not close: the server gives up waiting for our FIN.
        srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=1", timeout=4)
        wait_until(lambda: srv.fd_count() == base, 5, "fds back to baseline")


def test_line_framing_unterminated_tail_at_eof_is_a_message(serve):
    # End of stream ends the last line too (as most line servers do): bytes
    # after the last "\n", then FIN, are answered; the session ends with eof.
    srv = serve("--framing", "line")
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"one\ntail without newline")
        s.shutdown(socket.SHUT_WR)
        assert recv_until(s, b"\x00never") == \
            b"Hello, one!\nHello, tail without newline!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=eof messages=2")


def test_replies_before_a_too_long_line_are_sent_first_with_delay(serve):
    # As without --delay: what came before the offending line is answered,
    # then the error line, then the close.
    srv = serve("--framing", "line", "--max-line", "5", "--delay", "300")
    with srv.connect() as s:
        greet(s, True)
        s.sendall(b"ok\nfine\n")
        wait_server_read(srv, s)  # the long line comes in a later read
        s.sendall(b"far too long\n")
        assert recv_until(s, b"\x00never", timeout=5) == \
            b"Hello, ok!\nHello, fine!\nError: message too long\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=message-too-long messages=2")


# ---- signals other than INT/TERM, and a slow or absent stderr reader ----

def exchange(srv):
    with srv.connect() as s:
        greet(s)
        s.sendall(b"ping")
        assert recv_exact(s, 12) == b"Hello, ping!"


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM],
                         ids=lambda s: signal.Signals(s).name)
def test_signals_without_a_meaning_are_logged_and_ignored(serve, sig):
    srv = serve()
    name = signal.Signals(sig).name
    with srv.connect() as s:
        greet(s)
        for i in range(3):
            srv.proc.send_signal(sig)
            srv.wait_log(rf"received {name}: ignored$", count=i + 1)
        # The session in progress and new ones are served as before.
        s.sendall(b"still")
        assert recv_exact(s, 13) == b"Hello, still!"
    exchange(srv)
    assert srv.proc.poll() is None
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=2 ") == 1


def test_sigquit_drains_like_sigterm(serve):
    srv = serve("--delay", "500")
    with srv.connect() as s:
        greet(s)
        s.sendall(b"late")
        wait_server_read(srv, s)
        assert srv.stop(signal.SIGQUIT, timeout=5) == 0
        assert recv_until(s, b"\x00never", timeout=5) == b"Hello, late!Error: server shutting down\n"
    assert srv.log_count(r"received SIGQUIT: stopping$") == 1
    assert srv.log_count(r"reason=shutdown messages=1") == 1
    assert srv.lines[-1].split(" ", 1)[1].startswith("summary: connections=1 ")


def start_with_stderr_pipe(*args, stderr=subprocess.PIPE, reader=None):
    """A server whose stderr pipe (or socket) the test reads itself; returns
    the process, the stderr fd, the port (from the listening line) and what
    was read up to it."""
    # SIGPIPE as a shell leaves it (Python itself ignores it, and so would
    # the child).
    proc = subprocess.Popen([SOCKIT, "serve", "--listen", "127.0.0.1:0"] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr,
                            preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_DFL))
    fd = proc.stderr.fileno() if reader is None else reader.fileno()
    got = b""
    deadline = time.monotonic() + 10
    try:
        while b"\n" not in got:
            assert time.monotonic() < deadline and proc.poll() is None, got
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                got += os.read(fd, 1)  # byte by byte: leave the rest in the pipe
        port = int(re.search(rb"listening on 127\.0\.0\.1:(\d+)", got).group(1))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, fd, port, got


def churn(port, n):
    """n short sessions: two log lines each (open, close)."""
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            assert recv_exact(s, 8) == b"Welcome!"


def stop_and_time(proc):
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("no exit 10 s after SIGTERM")
    return rc, time.monotonic() - t0


GRACE = 2.0
BOUND = GRACE + 2.0  # the grace period plus a generous margin


def test_sigpipe_on_a_closed_stderr_does_not_kill_the_server(serve):
    # stderr a stream socket (as journald's): once the reader has gone, a
    # write raises SIGPIPE, which must not kill the server (a guard: main()
    # ignores SIGPIPE for every command).
    ours, theirs = socket.socketpair()
    proc, fd, port, _ = start_with_stderr_pipe(stderr=theirs, reader=ours)
    theirs.close()
    try:
        ours.close()  # nobody reads the log any more: writes get EPIPE
        churn(port, 5)
        churn(port, 1)
        assert proc.poll() is None, f"server died: {proc.returncode}"
        rc, took = stop_and_time(proc)
        assert rc == 0
        assert took < BOUND
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_slowly_read_stderr_does_not_hold_up_the_exit(serve):
    # Regression: stderr read at 4 KiB per 100 ms made SIGTERM take 25.9 s
    # (the whole log backlog was written first) and the summary was lost.
    proc, fd, port, head = start_with_stderr_pipe()
    out = [head]
    done = threading.Event()

    def slow_reader():
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return
            out.append(chunk)
            if not done.is_set():
                time.sleep(0.1)  # the pace of the slow reader, not a wait

    th = threading.Thread(target=slow_reader, daemon=True)
    th.start()
    try:
        churn(port, 3000)  # about 360 KB of log: 9 s at the reader's pace
        rc, took = stop_and_time(proc)
        done.set()
        th.join(10)
        assert not th.is_alive()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0
    assert took < BOUND, f"exit took {took:.1f}s after SIGTERM"
    lines = b"".join(out).decode().splitlines()
    assert re.search(r"Z summary: connections=3000 ", lines[-1]), lines[-3:]
    notes = [int(m.group(1)) for l in lines
             for m in [re.match(r"\(logger: (\d+) lines dropped", l)] if m]
    assert notes, "lines were dropped without a count"
    # Every line is either there whole or counted: listening, 3000 opens and
    # closes, "received", summary (a line cut at the deadline is counted).
    whole = [l for l in lines if re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z (listening|open|close|"
                                          r"received|summary)", l)]
    assert len(whole) + sum(notes) >= 1 + 6000 + 1 + 1, (len(whole), notes)


def test_stderr_never_read_does_not_hold_up_the_exit(serve):
    proc, fd, port, _ = start_with_stderr_pipe()
    try:
        churn(port, 1500)  # far more than the 64 KiB the pipe holds
        rc, took = stop_and_time(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert rc == 0
    assert took < BOUND, f"exit took {took:.1f}s after SIGTERM"
