"""Regression tests for what the red-team pass on `sockit serve` found
(tests/redteam/serve_attacks.py, issue 7)."""
import os
import socket
import subprocess

from conftest import SOCKIT, recv_exact, wait_until


def good_client(srv):
    with srv.connect() as s:
        assert recv_exact(s, 9) == b"Welcome!\n"
        s.sendall(b"still here\n")
        want = b"Hello, still here!\n"
        assert recv_exact(s, len(want)) == want


def test_budget_holds_against_many_small_partial_lines(serve):
    # 300 peers each hold an 8,000-byte partial line: 8 KiB of input each
    # (below the 16 KiB a session needed to be shed), 2.4 MiB together
    # against a 1 MiB budget. Nothing was ever shed: the budget was no bound
    # for sessions that each stay small.
    budget = 1 << 20
    srv = serve("--framing", "line", "--max-memory", str(budget), "--workers", "1")
    socks = []
    try:
        for _ in range(300):
            s = srv.connect()
            s.sendall(b"p" * 8000)
            socks.append(s)
        # Each holds about 8,208 bytes: about 172 must go to fit 1 MiB.
        srv.wait_log(r"reason=memory", 150, timeout=15)
        # Shedding stops once under the budget (plus one publish step of
        # 256 KiB): the others keep their sessions.
        good_client(srv)
        assert srv.log_count(r"reason=memory") <= 200
    finally:
        for s in socks:
            s.close()


def test_same_listen_address_twice_is_a_usage_error():
    # With --reuseport the second bind of the same address succeeded: one
    # server listening twice on one port, silently. Without it, the second
    # bind failed at run time (exit 1). Either way it is a bad command line.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for extra in ([], ["--reuseport"], ["--udp"]):
        r = subprocess.run([SOCKIT, "serve", "--listen", f"127.0.0.1:{port}", "--listen",
                            "[::1]:0", "--listen", f"127.0.0.1:{port}"] + extra,
                           capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        err = r.stderr.decode()
        assert r.returncode == 2, (extra, r.returncode, err)
        assert err == f"sockit: serve: --listen given twice: 127.0.0.1:{port}\n", err
    # Port 0 twice is two sockets on two free ports: allowed.
    r = subprocess.Popen([SOCKIT, "serve", "--listen", "127.0.0.1:0", "--listen",
                          "127.0.0.1:0"], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        seen = 0
        while seen < 2:
            line = r.stderr.readline()
            assert line, "server ended before listening twice"
            seen += b"listening on" in line
    finally:
        r.terminate()
        assert r.wait(10) == 0


def test_udp_workers_touch_no_memory_until_used(serve):
    # Each worker's UDP slots (64 x 64 KiB) had "Hello, " written into every
    # slot at start-up: 256 KiB resident per worker whether or not a datagram
    # ever came (--workers 1024 --udp: 256 MiB more than without --udp).
    tcp = serve("--workers", "128")
    udp = serve("--workers", "128", "--udp")
    extra = udp.rss_kib() - tcp.rss_kib()
    assert extra < 8 * 1024, f"--udp costs {extra} KiB resident for 128 idle workers"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"", udp.addr)
    assert u.recvfrom(100)[0] == b"Hello, !"
    u.sendto(b"x" * 65499, udp.addr)
    assert u.recvfrom(70000)[0] == b"Hello, " + b"x" * 65499 + b"!"
    u.close()


def server_cpu_s(srv):
    with open(f"/proc/{srv.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_long_line_costs_linear_cpu(serve):
    # A partial line was scanned again from its start on every read: with
    # --delay (reads of 4 KiB) one 16 MiB line cost the worker 4.6 s of CPU
    # (sanitizer build), an amplification any client could use.
    srv = serve("--framing", "line", "--max-line", str(16 << 20), "--delay", "1",
                "--workers", "1")
    before = server_cpu_s(srv)
    with srv.connect(timeout=60) as s:
        assert recv_exact(s, 9) == b"Welcome!\n"
        s.sendall(b"L" * (16 << 20) + b"\n")
        want = b"Hello, " + b"L" * (16 << 20) + b"!\n"
        assert recv_exact(s, len(want), timeout=60) == want
    used = server_cpu_s(srv) - before
    assert used < 1.0, f"{used:.2f} s of CPU for one 16 MiB line"


def test_option_errors_are_one_sockit_line():
    # getopt's own messages ("serve: option '--listen' requires an argument",
    # then a second line) had no "sockit: " prefix.
    for args, want in ((["--listen"], "sockit: serve: option --listen needs a value"),
                       (["-d"], "sockit: serve: option -d needs a value"),
                       (["--no-such"], "sockit: serve: unknown option --no-such"),
                       (["-Z"], "sockit: serve: unknown option -Z"),
                       (["-qZ"], "sockit: serve: unknown option -Z"),
                       (["-qd"], "sockit: serve: option -d needs a value")):
        r = subprocess.run([SOCKIT, "serve"] + args, capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        err = r.stderr.decode()
        assert r.returncode == 2, (args, r.returncode, err)
        assert err == want + " (try 'sockit serve --help')\n", (args, err)


def test_closed_stderr_is_held_not_given_to_a_socket():
    # With fd 2 closed, the first descriptor serve made (epoll, eventfd, a
    # socket) took number 2 and the log wrote into it.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    p = subprocess.Popen([SOCKIT, "serve", "--listen", f"127.0.0.1:{port}", "--workers", "1"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         preexec_fn=lambda: os.close(2))
    try:
        conns = []

        def connected():
            try:
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                return True
            except ConnectionRefusedError:
                return False
        wait_until(connected, timeout=10, what="serve listening with stderr closed")
        with conns[0] as c:
            assert recv_exact(c, 8) == b"Welcome!"
            c.sendall(b"Michael")
            assert recv_exact(c, 15) == b"Hello, Michael!"
        assert os.readlink(f"/proc/{p.pid}/fd/2") == "/dev/null"
        p.terminate()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
