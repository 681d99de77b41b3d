"""scripts/deps.sh on a machine that lacks packages: as a user with neither root nor
sudo it prints the exact apt-get line and fails; with sudo it installs through it.
dpkg-query (and sudo) are stand-ins on a PATH of our own: no network, nothing installed."""
import os
import shutil
import subprocess
import tempfile

import pytest

DEPS = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "deps.sh")
# What `make test` and CI use: the unit tests, the integration tests, the lint.
MUST = ["gcc", "make", "libssl-dev", "zlib1g-dev", "libbrotli-dev", "python3-brotli", "libcriterion-dev", "python3-pytest", "nginx", "openssl",
        "clang", "libclang-rt-14-dev", "iproute2", "time", "clang-tidy", "clang-tools", "cppcheck", "g++",
        "groff-base", "mandoc", "systemd", "prometheus", "ncat", "tinyproxy", "microsocks",
        "dante-server"]


@pytest.fixture
def fakebin():
    """A PATH holding only what deps.sh runs, dpkg-query saying nothing is installed."""
    d = tempfile.mkdtemp(prefix="sockit-deps-")
    os.chmod(d, 0o755)  # readable by the unprivileged user below
    for tool in ("bash", "grep", "id", "cat"):
        os.symlink(shutil.which(tool), os.path.join(d, tool))
    stub = os.path.join(d, "dpkg-query")
    with open(stub, "w") as f:
        f.write("#!/bin/bash\nexit 1\n")
    os.chmod(stub, 0o755)
    yield d
    shutil.rmtree(d)


def run_deps(path, what, as_nobody):
    """Runs deps.sh with PATH=path; as root, as the user nobody (any other user: as itself)."""
    pre = [shutil.which("setpriv") or "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
        if as_nobody and os.geteuid() == 0 else []
    with open(DEPS, "rb") as script:  # on stdin: the checkout need not be readable by nobody
        return subprocess.run(pre + ["/bin/bash", "-s", what], stdin=script, capture_output=True,
                              env={"PATH": path, "HOME": "/"}, timeout=30)


def test_no_root_no_sudo_prints_the_apt_get_line_and_fails(fakebin):
    r = run_deps(fakebin, "test", as_nobody=True)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    lines = [ln for ln in err.splitlines() if "apt-get install" in ln]
    assert len(lines) == 1, err
    prefix = "sockit: install them as root: apt-get install -y "
    assert lines[0].startswith(prefix), err
    pkgs = lines[0][len(prefix):].split()
    assert len(pkgs) == len(set(pkgs)), "each package once"
    assert all(p in pkgs for p in MUST), f"missing from the line: {set(MUST) - set(pkgs)}"
    assert r.stdout == b""


def fake_sudo(fakebin, rc):
    """A sudo that logs its arguments; rc 1: one that would ask for a password."""
    log = os.path.join(fakebin, "sudo.log")
    stub = os.path.join(fakebin, "sudo")
    with open(stub, "w") as f:
        f.write(f'#!/bin/bash\necho "$*" >> {log}\nexit {rc}\n')
    os.chmod(stub, 0o755)
    os.chmod(fakebin, 0o777)  # nobody writes sudo.log
    return log


def test_with_sudo_installs_through_it(fakebin):
    log = fake_sudo(fakebin, 0)
    r = run_deps(fakebin, "test", as_nobody=True)
    assert r.returncode == 0, r.stderr.decode()
    with open(log) as f:
        calls = f.read().splitlines()
    assert calls[0] == "-n true"  # may we, without a password?
    assert calls[1] == "-n apt-get update -qq"
    assert calls[2].startswith("-n apt-get install -y -qq --no-install-recommends ")
    assert all(p in calls[2].split() for p in MUST)


def test_sudo_wanting_a_password_prints_the_line_and_fails(fakebin):
    log = fake_sudo(fakebin, 1)
    r = run_deps(fakebin, "test", as_nobody=True)
    assert r.returncode == 1, r.stderr.decode()
    assert b"sockit: install them as root: apt-get install -y " in r.stderr
    with open(log) as f:
        assert f.read().splitlines() == ["-n true"]  # asked, installed nothing


def test_bad_set_is_a_usage_error(fakebin):
    r = run_deps(fakebin, "everything", as_nobody=False)
    assert r.returncode == 2
    assert b"usage:" in r.stderr
