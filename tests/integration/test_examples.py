"""examples/: the seed's `with` demos reproduced with libsockit's scoped form."""
import os
import subprocess

BUILD = os.environ.get("SOCKIT_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")


def run_demo(*args):
    return subprocess.run([os.path.join(BUILD, "examples", "with_demo")] + list(args),
                          capture_output=True, timeout=10)


def test_with_demo_matches_seed_output():
    r = run_demo()
    assert r.returncode == 0
    # demo 1 (DBManager) then demo 2 (With_work), exactly as the seed prints them
    assert r.stdout == (b"__enter__\nwith demo\n__exit__\n"
                        b"enter called\nxxt\nhello with\nexit called\n")


def test_with_demo_error_path_exit_sees_error():
    r = run_demo("--error")
    assert r.returncode == 1
    out = r.stdout.decode()
    # DBManager's exit ran, saw the error and suppressed it
    assert "__exit__\n(DBManager suppresses: protocol error)\n" in out
    # With_work's exit ran although the body failed before "hello with"
    assert out.endswith("enter called\nxxt\nexit called\n")
    assert "hello with" not in out
    assert r.stderr == b"with_demo: error propagated: protocol error\n"
