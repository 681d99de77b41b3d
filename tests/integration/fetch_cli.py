"""Helpers of the fetch command-line tests (test_fetch_curlflags.py,
test_fetch_auth.py, test_fetch_report.py): run `sockit fetch`, check a run
ended cleanly or with a one-line usage error."""
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
