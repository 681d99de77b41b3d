"""The greeting protocol, byte for byte, and the seed's own client."""
import os
import subprocess
import sys

from conftest import SEED_DIR, recv_exact, recv_until, run_sockit


def test_seed_client_unchanged_passes(serve):
    srv = serve()
    out = subprocess.run([sys.executable, os.path.join(SEED_DIR, "seed_client.py"),
                          str(srv.port)], capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=3")
    assert srv.log_count(r"open 127\.0\.0\.1:\d+") == 1


def test_chunk_bytes_exact_including_nul(serve):
    srv = serve()
    with srv.connect() as s:
        assert recv_exact(s, 8) == b"Welcome!"
        s.sendall(b"a\x00b\xff")
        assert recv_exact(s, 12) == b"Hello, a\x00b\xff!"
        s.sendall(b"exit")
        assert s.recv(100) == b""  # server closes after exit


def test_line_framing_split_and_pipelined(serve):
    srv = serve("--framing", "line")
    with srv.connect() as s:
        assert recv_exact(s, 9) == b"Welcome!\n"
        s.sendall(b"Mich")
        s.sendall(b"ael\r\nTracy\nSar")
        s.sendall(b"ah\n")
        want = b"Hello, Michael!\nHello, Tracy!\nHello, Sarah!\n"
        assert recv_exact(s, len(want)) == want
        s.sendall(b"exit\n")
        assert s.recv(100) == b""


def test_client_prints_replies_and_exits_zero(serve):
    srv = serve()
    r = run_sockit("client", f"127.0.0.1:{srv.port}", "Michael", "Tracy")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, Michael!\nHello, Tracy!\n"


def test_sigterm_summary_exit_zero(serve):
    srv = serve()
    with srv.connect() as s:
        recv_exact(s, 8)
        s.sendall(b"x")
        recv_exact(s, 9)
    assert srv.stop() == 0
    assert srv.log_count(r"summary: connections=1 .*messages=1") == 1
