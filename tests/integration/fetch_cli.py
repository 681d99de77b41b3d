"""Helpers of the fetch command-line tests (test_fetch_curlflags.py,
test_fetch_auth.py, test_fetch_report.py): run `sockit fetch`, check a run
ended cleanly or with a one-line usage error."""
import hashlib
import os
import subprocess

from conftest import SOCKIT


def fetch(*args, cwd=None, env=None, timeout=60):
    return subprocess.run([SOCKIT, "fetch", *args], capture_output=True, cwd=cwd, env=env,
                          timeout=timeout)


def assert_clean(r):
    assert r.returncode >= 0, f"killed by signal {-r.returncode}"
    assert b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr.decode()


def usage_error(r, words):
    assert_clean(r)
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and words in err, err


def put_files(srv, prefix, count, step):
    """count files of random bytes (prefix0.bin..., sizes growing by step)
    on srv (nginx_util's or lighttpd_util's put); {name: sha256 hex}."""
    sums = {}
    for i in range(count):
        b = os.urandom(5000 + step * i)
        sums[f"{prefix}{i}.bin"] = hashlib.sha256(b).hexdigest()
        srv.put(f"{prefix}{i}.bin", b)
    return sums


def assert_sums(folder, sums):
    """Every file of sums is in folder, byte-exact."""
    for n, want in sums.items():
        assert hashlib.sha256((folder / n).read_bytes()).hexdigest() == want, n
