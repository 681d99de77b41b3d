"""Regressions for what `make lint` found (docs/testing.md, "Static analysis")."""
import subprocess

from conftest import SOCKIT


def test_client_stops_when_stdout_fails(serve):
    # The greeting cannot be printed: the client stops at once, with one
    # line, instead of sending every message and failing only at the end.
    srv = serve()
    with open("/dev/full", "wb") as full:
        r = subprocess.run([SOCKIT, "client", f"127.0.0.1:{srv.port}", "a", "b", "c"],
                           stdout=full, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "write error on standard output" in lines[0], lines
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=\S+ messages=0")
