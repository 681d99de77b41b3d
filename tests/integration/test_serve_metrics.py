"""`sockit serve --metrics HOST:PORT`: the Prometheus endpoint. Its counters follow real
sessions (the open gauge up then down, closes by their log reason, messages, bytes, the
reply-latency histogram, refusals, datagrams, PROXY header errors, TLS handshakes);
`promtool check metrics` accepts a real scrape; only GET /metrics is served (404, 405,
400, 431 otherwise); slow, silent, trickling and surplus scrapers are bounded and never
hold up the others or the server; a bad --metrics is one line and exit 1 or 2.

Every wait is on a log line, a byte or a scrape's value, with a deadline."""
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import recv_exact, recv_until, run_sockit, wait_until

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
METRICS_RE = re.compile(r"metrics on http://(\S+)/metrics")
DEADLINE_S = 5.0  # serve_metrics.c DEADLINE_MS


def metrics_addr(srv):
    srv.wait_log(METRICS_RE.pattern)
    with srv.cond:
        m = next(METRICS_RE.search(l) for l in srv.lines if METRICS_RE.search(l))
    host, _, port = m.group(1).rpartition(":")
    return host.strip("[]"), int(port)


def request(addr, raw, timeout=5.0):
    """Sends raw bytes and reads the response to the server's close:
    (status, headers dict, body bytes)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    return status, headers, body


def scrape_text(addr):
    status, headers, body = request(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode()


def samples(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def scrape(addr):
    return samples(scrape_text(addr))


def wait_metric(addr, key, value, timeout=10.0):
    """Once key reads value, a scrape taken after that one. A scrape reads
    the counters one by one while the workers count (no lock), so the one
    that first saw key move may have read an earlier counter (the bytes
    sent beside the datagrams, the connections total beside the open
    gauge) just before its worker moved it; the next scrape starts after."""
    last = {}

    def ok():
        last.update(scrape(addr))
        return last.get(key) == value
    try:
        wait_until(ok, timeout, f"{key} == {value}", interval=0.05)
    except AssertionError:
        raise AssertionError(f"{key} is {last.get(key)}, want {value}")
    return scrape(addr)


def closed(reason):
    return f'sockit_sessions_closed_total{{reason="{reason}"}}'


def greeted(srv):
    s = srv.connect()
    assert recv_exact(s, 8) == b"Welcome!"
    return s


def exchanged(srv, msg):
    """A session that has its greeting and its reply to msg."""
    s = greeted(srv)
    s.sendall(msg)
    want = b"Hello, " + msg + b"!"
    assert recv_exact(s, len(want)) == want
    return s


def test_counters_follow_sessions(serve):
    srv = serve("--metrics", "127.0.0.1:0", "--max-conns", "2")
    addr = metrics_addr(srv)
    m = scrape(addr)
    assert m["sockit_connections_open"] == 0
    assert m["sockit_connections_total"] == 0
    assert m["sockit_reply_latency_seconds_count"] == 0

    a = exchanged(srv, b"Michael")
    # The reply reaches us before the server's send() returns, and the sent
    # bytes and the latency are counted after it: wait for both.
    wait_metric(addr, "sockit_reply_latency_seconds_count", 1)
    m = wait_metric(addr, "sockit_bytes_sent_total", len(b"Welcome!Hello, Michael!"))
    assert m["sockit_connections_open"] == 1
    assert m["sockit_connections_total"] == 1
    assert m["sockit_messages_total"] == 1
    assert m["sockit_bytes_received_total"] == len(b"Michael")
    assert m["sockit_reply_latency_seconds_count"] == 1
    assert m['sockit_reply_latency_seconds_bucket{le="+Inf"}'] == 1
    assert 0 < m["sockit_reply_latency_seconds_sum"] < 1

    b = greeted(srv)
    assert wait_metric(addr, "sockit_connections_open", 2)["sockit_connections_total"] == 2
    # Over --max-conns: refused, never open.
    c = srv.connect()
    assert recv_until(c, b"\n").startswith(b"Error: server busy")
    c.close()
    srv.wait_log(r"refuse ")
    assert scrape(addr)["sockit_connections_refused_total"] == 1

    a.sendall(b"exit")
    assert a.recv(100) == b""
    a.close()
    srv.wait_log(r"close \S+ reason=exit")
    m = wait_metric(addr, "sockit_connections_open", 1)
    assert m[closed("exit")] == 1
    assert m["sockit_messages_total"] == 1  # "exit" is not a message answered

    b.close()  # our FIN: reason eof
    srv.wait_log(r"close \S+ reason=eof")
    m = wait_metric(addr, "sockit_connections_open", 0)
    assert m[closed("eof")] == 1
    assert m[closed("exit")] == 1
    assert m[closed("reset")] == 0
    assert m["sockit_connections_total"] == 2
    # The summary comes from the same counters.
    assert srv.stop() == 0
    summary = [l for l in srv.lines if " summary: " in l][0]
    assert "connections=2 refused=1 messages=1 " in summary
    assert f"bytes_in={int(m['sockit_bytes_received_total'])} " in summary


def test_line_framing_counts_each_message_and_its_latency(serve):
    srv = serve("--metrics", "127.0.0.1:0", "--framing", "line")
    addr = metrics_addr(srv)
    s = srv.connect()
    assert recv_exact(s, 9) == b"Welcome!\n"
    s.sendall(b"a\nb\nc\n")  # one read, three replies in one write
    want = b"Hello, a!\nHello, b!\nHello, c!\n"
    assert recv_exact(s, len(want)) == want
    # Latency is recorded after the send (see test_counters_follow_sessions).
    m = wait_metric(addr, "sockit_reply_latency_seconds_count", 3)
    assert m["sockit_messages_total"] == 3
    s.close()


def test_delayed_replies_count_their_delay(serve):
    srv = serve("--metrics", "127.0.0.1:0", "--delay", "120")
    addr = metrics_addr(srv)
    s = exchanged(srv, b"x")
    m = wait_metric(addr, "sockit_reply_latency_seconds_count", 1)
    assert m['sockit_reply_latency_seconds_bucket{le="0.1"}'] == 0
    assert m['sockit_reply_latency_seconds_bucket{le="0.25"}'] == 1
    assert 0.119 <= m["sockit_reply_latency_seconds_sum"] < 0.25
    s.close()


def test_udp_datagrams_counted(serve):
    srv = serve("--metrics", "127.0.0.1:0", "--udp")
    addr = metrics_addr(srv)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"dgram", srv.addr)
        assert u.recv(100) == b"Hello, dgram!"
    m = wait_metric(addr, "sockit_datagrams_total", 1)
    assert m["sockit_bytes_received_total"] == 5
    assert m["sockit_bytes_sent_total"] == len(b"Hello, dgram!")


def test_promtool_accepts_a_real_scrape(serve):
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail("promtool is not installed: scripts/deps.sh test installs it (prometheus)")
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    s = exchanged(srv, b"m")
    text = scrape_text(addr)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert r.stdout.strip() == b"" and r.stderr.strip() == b"", "no lint warning either"
    s.close()


@pytest.mark.parametrize("raw,status", [
    (b"GET / HTTP/1.1\r\n\r\n", 404),
    (b"GET /metricsx HTTP/1.1\r\n\r\n", 404),
    (b"GET /metrics/ HTTP/1.0\r\n\r\n", 404),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
    (b"HEAD /metrics HTTP/1.1\r\n\r\n", 405),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 400),
    (b"GET /metrics\r\n\r\n", 400),
    (b"hello\r\n\r\n", 400),
    (b"\x16\x03\x01\x00\x05hello\n\n", 400),
    (b"GET /metrics?name[]=x HTTP/1.1\n\n", 200),  # bare LFs, a query
])
def test_only_get_metrics_is_served(serve, raw, status):
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    got, headers, body = request(addr, raw)
    assert got == status, body
    if status == 405:
        assert headers["allow"] == "GET"
    if status != 200:
        assert body.decode().startswith(f"{status} ")
        assert headers["content-type"] == "text/plain; charset=utf-8"


def test_oversize_request_gets_431_and_close(serve):
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    # No end of head within 8 KiB: 431 at once, not at the deadline.
    t0 = time.monotonic()
    raw = b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 9000 + b"\r\n\r\n"
    status, _, _ = request(addr, raw)
    assert status == 431
    assert time.monotonic() - t0 < DEADLINE_S - 1
    # A head of 8 KiB with its end inside is still answered.
    pad = 8192 - len(b"GET /metrics HTTP/1.1\r\nX: \r\n\r\n")
    status, _, _ = request(addr, b"GET /metrics HTTP/1.1\r\nX: " + b"b" * pad + b"\r\n\r\n")
    assert status == 200
    assert scrape(addr)["sockit_connections_open"] == 0


def closed_by_server(sock, timeout):
    """True once the server has closed sock (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_hostile_scrapers_closed_at_their_deadline(serve):
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    t0 = time.monotonic()
    silent = socket.create_connection(addr)
    half = socket.create_connection(addr)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost:")
    garbage = socket.create_connection(addr)
    garbage.sendall(os.urandom(64).replace(b"\n", b"x"))
    trickle = socket.create_connection(addr)
    # Meanwhile the others are served at once.
    assert scrape(addr)["sockit_connections_open"] == 0
    # The trickler sends a byte every 0.2 s (progress, but never a whole head).
    trickle.setblocking(False)
    ended = None
    while time.monotonic() - t0 < DEADLINE_S + 3:
        r, _, _ = select.select([trickle], [], [], 0.2)
        if r:
            try:
                if trickle.recv(100) == b"":
                    ended = time.monotonic() - t0
                    break
            except ConnectionResetError:
                ended = time.monotonic() - t0
                break
        try:
            trickle.send(b"X")
        except OSError:
            ended = time.monotonic() - t0
            break
    assert ended is not None, "the trickling scraper was never closed"
    assert DEADLINE_S - 0.5 <= ended < DEADLINE_S + 2
    for s in (silent, half, garbage):
        assert closed_by_server(s, 2), "closed at the deadline"
        s.close()
    trickle.close()
    assert scrape(addr)["sockit_connections_total"] == 0


def test_slow_scraper_blocks_neither_others_nor_the_server(serve):
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    # A scraper that asks and never reads, one that has sent half a request.
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    lazy.connect(addr)
    lazy.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    half = socket.create_connection(addr)
    half.sendall(b"GET /met")
    for _ in range(5):
        t0 = time.monotonic()
        scrape(addr)
        assert time.monotonic() - t0 < 1.0
    exchanged(srv, b"still").close()
    lazy.close()
    half.close()


def test_scrapers_over_the_limit_are_closed_at_accept(serve):
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    held = [socket.create_connection(addr) for _ in range(16)]  # serve_metrics.c SCRAPES_MAX
    extra = socket.create_connection(addr)
    assert closed_by_server(extra, DEADLINE_S - 2), "the 17th is closed at once"
    extra.close()
    for s in held:
        assert not closed_by_server(s, 0.01), "the first 16 are still served"
    for s in held:
        s.close()

    def served():
        try:
            return request(addr, b"GET /metrics HTTP/1.1\r\n\r\n")[0] == 200
        except (OSError, IndexError):
            return False
    wait_until(served, 10, "a scrape once the others have gone")


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(d, "k.pem"),
                    "-out", os.path.join(d, "c.pem"), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    return ["--tls-cert", os.path.join(d, "c.pem"), "--tls-key", os.path.join(d, "k.pem")]


def test_tls_and_proxy_protocol_counts(serve, tmp_path):
    srv = serve("--metrics", "127.0.0.1:0", "--proxy-protocol", *make_cert(str(tmp_path)))
    addr = metrics_addr(srv)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 8888\r\n"
    # A good session: PROXY header, then TLS.
    raw = srv.connect()
    raw.sendall(header)
    good = ctx.wrap_socket(raw, server_hostname="localhost")
    assert recv_exact(good, 8) == b"Welcome!"
    good.sendall(b"tls")
    assert recv_exact(good, 11) == b"Hello, tls!"
    m = wait_metric(addr, 'sockit_tls_handshakes_total{result="ok"}', 1)
    assert m["sockit_connections_open"] == 1
    assert m["sockit_messages_total"] == 1
    # No valid PROXY header: counted, never open.
    bad = srv.connect()
    bad.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert closed_by_server(bad, 5)
    bad.close()
    srv.wait_log(r"proxy-error ")
    m = wait_metric(addr, "sockit_proxy_header_errors_total", 1)
    # A valid header, then no TLS: the handshake fails, a close with no open.
    junk = srv.connect()
    junk.sendall(header + b"this is not a ClientHello\r\n" * 4)
    assert closed_by_server(junk, 5)
    junk.close()
    srv.wait_log(r"close 192\.0\.2\.7:40000 reason=tls-error")
    m = wait_metric(addr, 'sockit_tls_handshakes_total{result="failed"}', 1)
    assert m[closed("tls-error")] == 1
    assert m["sockit_connections_total"] == 1
    assert m["sockit_connections_open"] == 1
    good.close()
    wait_metric(addr, "sockit_connections_open", 0)


def test_metrics_port_in_use_is_one_line_and_exit_1():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = run_sockit("serve", "--listen", "127.0.0.1:0", "--metrics", f"127.0.0.1:{port}")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err == f"sockit: serve: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize("bad", ["9100", "localhost:", "[::1:9100", "127.0.0.1:70000"])
def test_bad_metrics_address_is_a_usage_error(bad):
    r = run_sockit("serve", "--metrics", bad)
    assert r.returncode == 2
    assert r.stderr.decode() == f"sockit: serve: --metrics expects HOST:PORT or [IPv6]:PORT: {bad}\n"


def test_metrics_on_ipv6(serve):
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = serve("--metrics", "[::1]:0")
    srv.wait_log(r"metrics on http://\[::1\]:\d+/metrics")
    host, port = metrics_addr(srv)
    assert scrape((host, port))["sockit_connections_open"] == 0


def test_scraper_leaving_mid_request_gets_nothing(serve):
    srv = serve("--metrics", "127.0.0.1:0")
    addr = metrics_addr(srv)
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"GET /metr")
    s.shutdown(socket.SHUT_WR)  # its FIN before the end of the head
    assert s.recv(100) == b"", "closed unanswered, at once"
    s.close()
    assert scrape(addr)["sockit_connections_open"] == 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_out_of_fds_pauses_metrics_accepts_then_recovers(serve):
    # 40 fds (as test_accept_emfile.py): the sessions take what is left, then
    # a scrape's accept fails with EMFILE: accepting pauses instead of spinning.
    srv = serve("--metrics", "127.0.0.1:0", "--workers", "1",
                preexec_fn=lambda: __import__("resource").setrlimit(
                    __import__("resource").RLIMIT_NOFILE, (40, 40)))
    addr = metrics_addr(srv)
    socks = []
    for _ in range(60):
        s = socket.create_connection(srv.addr, timeout=3)  # completes in the backlog
        socks.append(s)
    srv.wait_log(r"pausing accepts")
    pending = [socket.create_connection(addr, timeout=5) for _ in range(3)]
    for p in pending:
        p.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    t0 = cpu_ticks(srv.proc.pid)
    time.sleep(1)  # a measurement window, not a synchronisation
    busy = cpu_ticks(srv.proc.pid) - t0
    assert busy < 30, f"server used {busy} ticks in 1 s while out of fds"
    for s in socks:
        s.close()
    # Room again: the waiting scrapes are accepted and answered.
    for p in pending:
        assert recv_until(p, b"sockit_tls_handshakes_total{result=\"failed\"}", timeout=10) \
            .startswith(b"HTTP/1.1 200 OK\r\n")
        p.close()
