"""A draining server says goodbye: at SIGTERM every session still open gets the replies to
what the server read, then `Error: server shutting down`, then the FIN, and nothing it sends
after the line is read (docs/protocol.md). `sockit bench` sends the requests left unanswered
again on a new connection and counts `reconnects`, not errors: two `serve --reuseport` on one
port stand for a balancer's pool, and one of them stopped mid-run costs zero failed requests.
A close without the line stays a failed session."""
import json
import re
import signal
import socket
import struct
import subprocess
import threading

import pytest

from conftest import (SOCKIT, read_to_end, recv_exact, recv_until, run_sockit, wait_read_by_server,
                      wait_until)
from nginx_util import free_port
from test_bench_merge import bench_runs
from tls_pki import pki  # noqa: F401 (the fixture)

BYE = b"Error: server shutting down\n"


def sigterm(srv):
    srv.proc.send_signal(signal.SIGTERM)


def test_open_session_gets_replies_then_the_line_then_fin(serve):
    srv = serve()
    s = srv.connect()
    assert recv_exact(s, 8) == b"Welcome!"
    s.sendall(b"M")
    assert recv_exact(s, 9) == b"Hello, M!"
    sigterm(srv)
    assert read_to_end(s) == BYE
    s.close()
    assert srv.stop() == 0
    assert srv.log_count(r"close \S+ reason=shutdown messages=1 ") == 1


def test_pipelined_messages_read_before_the_stop_are_all_answered_first(serve):
    srv = serve("--framing", "line")
    s = srv.connect()
    assert recv_exact(s, 9) == b"Welcome!\n"
    s.sendall(b"".join(b"m%d\n" % i for i in range(50)))
    want = b"".join(b"Hello, m%d!\n" % i for i in range(50))
    assert recv_exact(s, len(want)) == want  # all read and answered
    sigterm(srv)
    assert read_to_end(s) == BYE
    s.close()
    assert srv.stop() == 0
    assert srv.log_count(r"reason=shutdown messages=50 ") == 1


def test_delayed_replies_go_out_before_the_line(serve):
    # --delay holds the replies; within the grace they go out when due, then the line.
    srv = serve("--framing", "line", "--delay", "300")
    s = srv.connect()
    assert recv_exact(s, 9) == b"Welcome!\n"
    s.sendall(b"a\nb\n")
    wait_read_by_server(srv, [s])
    sigterm(srv)
    assert read_to_end(s) == b"Hello, a!\nHello, b!\n" + BYE
    s.close()
    assert srv.stop() == 0


def test_nothing_sent_after_the_line_is_read(serve):
    srv = serve("--framing", "line")
    s = srv.connect()
    assert recv_exact(s, 9) == b"Welcome!\n"
    sigterm(srv)
    assert recv_until(s, BYE) == BYE
    try:
        s.sendall(b"late\n")  # may be reset: the server is gone or going
    except OSError:
        pass
    try:
        rest = read_to_end(s)
    except ConnectionResetError:
        rest = b""
    assert rest == b""
    s.close()
    assert srv.stop() == 0
    assert srv.log_count(r"reason=shutdown messages=0 ") == 1
    assert "messages=0" in [x for x in srv.lines if "summary:" in x][-1]


def test_a_peer_that_already_sent_its_fin_gets_no_line(serve):
    srv = serve("--framing", "line", "--delay", "300")
    s = srv.connect()
    assert recv_exact(s, 9) == b"Welcome!\n"
    s.sendall(b"a\n")
    s.shutdown(socket.SHUT_WR)  # done sending: nothing of its can go unread
    wait_read_by_server(srv, [s])
    sigterm(srv)
    assert read_to_end(s) == b"Hello, a!\n"
    s.close()
    assert srv.stop() == 0


def test_json_log_format_is_unchanged_by_the_line(serve):
    srv = serve("--log-format", "json")
    s = srv.connect()
    assert recv_exact(s, 8) == b"Welcome!"
    sigterm(srv)
    assert read_to_end(s) == BYE
    s.close()
    assert srv.stop() == 0
    closes = [json.loads(x) for x in srv.lines if '"event":"close"' in x]
    assert [c["reason"] for c in closes] == ["shutdown"]
    assert closes[0]["bytes_out"] == 8 + len(BYE)


def test_tls_session_gets_the_line_then_close_notify(serve, pki):
    srv = serve(*pki.args(), "--framing", "line")
    raw = socket.create_connection(srv.addr, timeout=5)
    s = pki.client_ctx().wrap_socket(raw, server_hostname="localhost")
    assert recv_until(s, b"Welcome!\n") == b"Welcome!\n"
    s.sendall(b"x\n")
    assert recv_until(s, b"Hello, x!\n") == b"Hello, x!\n"
    sigterm(srv)
    # read_to_end ends on close_notify; a bare FIN would raise SSLEOFError.
    assert read_to_end(s) == BYE
    s.close()
    assert srv.stop() == 0
    assert srv.log_count(r"reason=shutdown messages=1") == 1


# ---- bench: the line is a clean end, the requests go elsewhere ----

def pool(serve, n=2, *args):
    """n servers on one port (--reuseport): the kernel spreads connections over them, and
    once one stops listening new ones go to the others, as a balancer's pool does."""
    port = free_port()
    return port, [serve("--listen", f"127.0.0.1:{port}", "--reuseport", "--workers", "1", *args)
                  for _ in range(n)]


def bench_while(target, args, meanwhile):
    """Runs `sockit bench target *args`, calls meanwhile() while it runs, and returns
    (exit status, stdout, stderr) once it has ended (killed if the test fails first)."""
    p = subprocess.Popen([SOCKIT, "bench", target, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        meanwhile()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out, err


def run_bench_over_a_stop(port, victim, others, *bench_args, conns=20):
    """Runs bench for a few seconds, stops `victim` once it and the others hold sessions,
    and returns bench's JSON report."""
    def stop_victim():
        # Every connection open, some on each server (the 4-tuple hash spreads 20 of them).
        wait_until(lambda: sum(s.log_count(r" open ") for s in [victim, *others]) >= conns,
                   timeout=20, what="every bench connection open")
        assert victim.log_count(r" open ") > 0 and all(s.log_count(r" open ") for s in others)
        assert victim.stop() == 0

    rc, out, err = bench_while(f"127.0.0.1:{port}",
                               ["-c", str(conns), "-d", "4", "--json", *bench_args], stop_victim)
    assert rc == 0, (out + err).decode()
    return json.loads(out), victim.log_count(r"reason=shutdown")


def test_a_peer_that_reconnects_at_the_line_is_never_reset(serve):
    """The line tells a peer to go elsewhere, and it may connect again at once: that
    connect must reach the rest of the pool (or be refused), never be queued by a
    listener of the draining server still in LISTEN, to be reset when it is shut
    down. (sk_server_stop told the workers first and shut the listeners down after:
    a worker's line could outrun it. Under load it showed in
    test_bench_reconnects_without_a_failure_when_one_of_a_pool_drains as resets.)
    Four workers, four listeners of the victim's: the stop reaches them one by one."""
    def again():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                return recv_exact(c, 8)
        except ConnectionRefusedError:
            return b"refused"
        except OSError as e:
            return repr(e).encode()

    for _ in range(10):  # the race is narrow: each round is a chance to hit it
        port = free_port()
        victim = serve("--listen", f"127.0.0.1:{port}", "--reuseport", "--workers", "4")
        other = serve("--listen", f"127.0.0.1:{port}", "--reuseport", "--workers", "1")
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        try:
            for s in socks:
                assert recv_exact(s, 8) == b"Welcome!"
            mine = {f"127.0.0.1:{s.getsockname()[1]}": s for s in socks}
            victim.wait_for(lambda: sum(victim.log_count(rf" open {re.escape(p)}$") for p in mine)
                            + sum(other.log_count(rf" open {re.escape(p)}$") for p in mine) == 40,
                            what="the 40 open lines")
            told = [s for p, s in mine.items() if victim.log_count(rf" open {re.escape(p)}$")]
            victim.proc.send_signal(signal.SIGTERM)
            got = []
            for s in told:  # each reconnects as soon as it has the line
                assert recv_until(s, b"\n") == BYE
                got.append(again())
            assert victim.stop() == 0
            assert set(got) <= {b"Welcome!", b"refused"}, got
        finally:
            for s in socks:
                s.close()
        assert other.stop() == 0


@pytest.mark.parametrize("args", [
    [],
    ["--framing", "line", "-P", "8"],
    ["--rate", "4000"],
], ids=["closed-loop", "line-pipelined", "open-loop"])
def test_bench_reconnects_without_a_failure_when_one_of_a_pool_drains(serve, args):
    framing = args[1:2] if args[:1] == ["--framing"] else []
    srv_args = ["--framing", "line"] if framing else []
    port, (victim, other) = pool(serve, 2, *srv_args)
    d, drained = run_bench_over_a_stop(port, victim, [other], *args)
    assert drained > 0
    assert d["errors"] == 0, d["error_classes"]
    assert d["sessions_failed"] == 0
    assert d["reconnects"] == drained  # one per session the victim ended with the line
    assert d["replies"] == d["sent"] > 0


def test_bench_text_report_counts_the_reconnects(serve):
    port, (victim, other) = pool(serve, 2)
    def stop_victim():
        wait_until(lambda: victim.log_count(r" open ") + other.log_count(r" open ") >= 20,
                   timeout=20, what="every bench connection open")
        assert victim.stop() == 0

    rc, out, err = bench_while(f"127.0.0.1:{port}", ["-c", "20", "-d", "3"], stop_victim)
    n = victim.log_count(r"reason=shutdown")
    assert rc == 0, (out + err).decode()
    assert f"reconnects    {n} (sessions a draining server ended".encode() in out, out.decode()
    assert b"errors        0" in out


def test_bench_alone_with_a_draining_server_counts_what_could_not_be_resent(serve):
    # Nobody else on the port: the new connections are refused, so the requests the line
    # left unanswered are errors, and every request is accounted for.
    srv = serve("--workers", "1", "--framing", "line")
    def stop_it():
        wait_until(lambda: srv.log_count(r" open ") >= 4, timeout=20, what="4 sessions")
        assert srv.stop() == 0

    rc, out, err = bench_while(f"127.0.0.1:{srv.port}", ["-c", "4", "-P", "4", "--framing",
                                                          "line", "-d", "30", "--json"], stop_it)
    # It gave up with every error a failed connect: exit 4 (docs/bench.md).
    assert rc == 4, err.decode()
    d = json.loads(out)
    assert d["reconnects"] == 4
    assert d["sessions_failed"] == 0
    assert d["gave_up"] and d["errors"] == d["error_classes"]["connect"] > 0
    # Unanswered: at most the 4 x 4 in flight when the line came (none when the line came
    # with the last replies, before more were sent), each an error (the errors also count
    # the connects that failed with nothing to send).
    assert 0 <= d["sent"] - d["replies"] <= 16
    assert d["sent"] - d["replies"] <= d["errors"]


class ByeServer:
    """A fake greeting server that says `first` on every connection, then closes."""

    def __init__(self, first):
        self.first = first
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _serve(self, c):
        c.sendall(self.first)
        c.shutdown(socket.SHUT_WR)
        c.settimeout(2)
        while c.recv(4096):
            pass

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            self.accepted += 1
            try:
                self._serve(c)
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopping = True
        self.t.join(5)
        self.lsock.close()


class ByeThenResetServer(ByeServer):
    """A fake line-framing server whose first connection answers one request,
    says the line and resets at once, the other requests of the pipeline
    unread (as a drain that closes with input pending would); every later
    connection answers everything."""

    def __init__(self):
        self.reset_done = threading.Event()
        super().__init__(b"Welcome!\n")

    def _serve(self, c):
        first = self.accepted == 1
        c.settimeout(5)
        c.sendall(self.first)
        buf = b""
        while True:
            data = c.recv(65536)
            if not data:
                return
            buf += data
            if first and buf.count(b"\n") >= 2:
                # One reply, the line, then a reset (SO_LINGER 0): the line
                # and the reset reach bench together, before it reads.
                c.sendall(b"Hello, " + buf.split(b"\n", 1)[0] + b"!\n" + BYE)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.reset_done.set()
                return
            while not first and b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                c.sendall(b"Hello, " + line + b"!\n")


def test_bench_line_then_reset_is_a_reconnect_and_nothing_is_lost():
    """The drain's line followed at once by a reset (the requests in flight
    crossed the close): bench reads the line before the reset's error, sends
    the unanswered requests again on a new connection, and nothing counts as
    an error. (The line read at a failed write, heard_bye_before_reset, needs
    the reset to land between the loop's wake-up and a timed send: only load
    reaches it, the open-loop pool test above.)"""
    srv = ByeThenResetServer()
    try:
        out = subprocess.run([SOCKIT, "bench", f"127.0.0.1:{srv.port}", "-c", "1", "-n", "40",
                              "--framing", "line", "-P", "4", "--json"],
                             capture_output=True, timeout=60)
    finally:
        srv.close()
    assert srv.reset_done.is_set()
    d = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert d["replies"] == 40 and d["errors"] == 0 and d["sessions_failed"] == 0, d
    assert d["reconnects"] == 1 and srv.accepted == 2, d


def test_bench_gives_up_on_a_server_that_only_says_bye():
    # Greeting and line in one read, every time: reconnecting forever would never end -n.
    srv = ByeServer(b"Welcome!" + BYE)
    try:
        out = subprocess.run([SOCKIT, "bench", f"127.0.0.1:{srv.port}", "-c", "2", "-n", "100",
                              "--json"], capture_output=True, timeout=60)
    finally:
        srv.close()
    d = json.loads(out.stdout)
    assert out.returncode == 1, out.stderr
    assert d["gave_up"] and d["replies"] == 0
    assert d["reconnects"] >= 2 * 3 + 3  # GIVE_UP_AFTER: 3 per connection, plus 3
    assert d["sessions_failed"] == 0


def test_bench_bytes_after_the_line_are_a_protocol_error():
    srv = ByeServer(b"Welcome!" + BYE + b"more")
    try:
        out = subprocess.run([SOCKIT, "bench", f"127.0.0.1:{srv.port}", "-c", "1", "-n", "10",
                              "--json"], capture_output=True, timeout=60)
    finally:
        srv.close()
    d = json.loads(out.stdout)
    assert d["error_classes"]["protocol"] > 0 or d["gave_up"], d
    assert d["reconnects"] == 0


def test_bench_merge_adds_the_reconnects(serve, tmp_path):
    srv = serve()
    paths = bench_runs(srv.port, tmp_path, ["a", "b", "c"], ["-c", "2", "-n", "200"])
    docs = [json.loads(p.read_text()) for p in paths]
    for d, n in zip(docs, [3, 4]):
        assert d["reconnects"] == 0
        d["reconnects"] = n
    del docs[2]["reconnects"]  # a report from an older bench: counts as 0
    for p, d in zip(paths, docs):
        p.write_text(json.dumps(d))
    out = run_sockit("bench", "merge", *map(str, paths), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["reconnects"] == 7
    text = run_sockit("bench", "merge", *map(str, paths))
    assert b"reconnects    7 " in text.stdout, text.stdout.decode()


def test_client_says_which_message_the_drain_left_unanswered(serve):
    srv = serve()
    p = subprocess.Popen([SOCKIT, "client", f"127.0.0.1:{srv.port}"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"hi\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"Welcome!\n"
        assert p.stdout.readline() == b"Hello, hi!\n"
        assert srv.stop() == 0  # the line is on its way to the client
        out, err = p.communicate(b"again\n", timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1
    assert err == b"sockit: client: message 2 not answered: the server is shutting down\n"
