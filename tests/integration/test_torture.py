"""Fault injection on every path, sampled: for each scenario of
tests/torture/torture.py, the k-th wrapped call (malloc, socket, send,
fsync, SSL_read_ex, ...) fails for k = 1..40 and then every 7th k up to N;
then counting each function on its own ("by function": the k-th fsync is
hit whatever the number of recv calls before it), its first 8 calls and
then every 25th, except under load, where that would take minutes.
Needs build/fault-san/sockit (`make FAULT=1 SANITIZE=1`; `make test` builds
it): without it the test fails, it is never skipped. `make torture` runs
every k."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torture"))
import torture  # noqa: E402

CAP, STRIDE = 40, 7
BY_CAP, BY_STRIDE = 8, 25  # per function: its first 8 calls, then every 25th


# By function only where calls of one kind vary in number (fetch's recv):
# the serve-load and bench runs cost too much to run twice in make test.
CASES = [(sc, by) for by in (False, True) for sc in torture.scenarios()
         if not (by and sc.name.startswith(("serve-load", "bench")))]


@pytest.mark.parametrize("scenario,by_function", CASES,
                         ids=[sc.name + ("-by-function" if by else "") for sc, by in CASES])
def test_torture_sample(scenario, by_function):
    assert os.access(torture.SOCKIT, os.X_OK), (
        f"{torture.SOCKIT} is missing: build it with make FAULT=1 SANITIZE=1")
    cap, stride = (BY_CAP, BY_STRIDE) if by_function else (CAP, STRIDE)
    n, ks, fired, bad = torture.torture(scenario, cap, stride, jobs=2,
                                        by_function=by_function)
    assert not bad, "\n".join(torture.describe(scenario.name, r) for r in bad)
    assert n > 0 and ks, "the counting run made no wrapped call"
    assert fired > 0, "no k made a call fail: the shim is not linked in"


# Calls that can fail like the wrapped ones: sockit must not call one the
# shim does not wrap, or its error path would escape the torture runs.
FALLIBLE = """malloc calloc realloc strdup strndup aligned_alloc posix_memalign
reallocarray asprintf vasprintf socket socketpair bind listen connect accept
accept4 recv recvfrom recvmsg recvmmsg read readv pread send sendto sendmsg
sendmmsg write writev pwrite open openat creat fopen fdopen mkstemp mkostemp
rename renameat renameat2 link linkat fsync fdatasync ftruncate fallocate
epoll_create epoll_create1 epoll_ctl eventfd timerfd_create signalfd pipe
pipe2 dup dup2 dup3 pthread_create SSL_do_handshake SSL_connect SSL_accept
SSL_read SSL_read_ex SSL_peek SSL_write SSL_write_ex""".split()


def test_every_fallible_call_is_wrapped():
    import re
    import subprocess
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "tests", "fault", "fault.c")) as f:
        wrapped = set(re.findall(r"X\((\w+), \"", f.read()))
    objs = [os.path.join(d, n) for sub in ("lib", "src")
            for d in [os.path.join(os.path.dirname(torture.SOCKIT), "obj", sub)]
            if os.path.isdir(d) for n in os.listdir(d) if n.endswith(".o")]
    assert objs, f"no objects beside {torture.SOCKIT}: make FAULT=1 SANITIZE=1"
    out = subprocess.run(["nm", "-u"] + objs, capture_output=True, text=True,
                         check=True).stdout
    called = {line.split()[-1] for line in out.splitlines() if line.strip().startswith("U ")}
    missing = sorted((called & set(FALLIBLE)) - wrapped)
    assert not missing, f"called but not wrapped by tests/fault/fault.c: {missing}"


# HTTP/2 multiplexing against a hostile server (test_fetch_h2_redteam.py's
# scripts), run with no fault: the exit report's descriptor count.
import subprocess  # noqa: E402

from test_fetch_h2_redteam import (  # noqa: E402
    H2Server, _cut_all, _goaway_first, _pool_reset_e, _reset_b, _stall_b, assert_clean,
    certs)  # noqa: F401


@pytest.mark.parametrize("script,code,names", [
    (_reset_b, 8, "abc"), (_cut_all, 8, "abc"), (_goaway_first, 0, "abc"), (_stall_b, 9, "abc"),
    (_pool_reset_e, 8, "abcdef")],
    ids=["guest-reset", "connection-cut", "goaway-retry", "stream-stall", "pool-later-reset"])
def test_no_descriptor_left_after_hostile_multiplexing(certs, tmp_path, script, code, names):
    """The hostile multiplexed runs again (with the run's pool: more URLs
    than slots on one connection) under build/fault-san/sockit with no
    fault (SOCKIT_FAULT=0): its exit report counts the descriptors
    still open past those inherited (sockets, temporary files, the output
    folder's fd, eventfds, timers): none."""
    assert os.access(torture.SOCKIT, os.X_OK), (
        f"{torture.SOCKIT} is missing: build it with make FAULT=1 SANITIZE=1")
    report = tmp_path / "report"
    out = tmp_path / "out"
    out.mkdir()
    srv = H2Server(certs, script=script)
    try:
        r = subprocess.run([torture.SOCKIT, "fetch", *[srv.url(f"/{c}") for c in names], "--cacert",
                            certs["ca"], "--parallel", "3", "--idle-timeout", "1", "-s",
                            "--output-dir", str(out)], capture_output=True, timeout=30,
                           env=dict(os.environ, SOCKIT_FAULT="0", SOCKIT_FAULT_COUNT=str(report)))
    finally:
        srv.stop()
    assert_clean(r)
    assert r.returncode == code, r.stderr
    rep = dict(line.partition(" ")[::2] for line in report.read_text().splitlines())
    assert rep.get("fds", "").strip() == "0", report.read_text()
    assert all(not n.startswith(".") for n in os.listdir(out)), os.listdir(out)
