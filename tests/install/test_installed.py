"""`make install DESTDIR=... PREFIX=/usr` as a packager runs it: the exact file list,
a pkg-config file that works from the staging tree, and programs built with it against
the shared and the static library. Run by `make test-install`, which installs into
SOCKIT_DESTDIR first (and runs `make uninstall` after)."""
import glob
import os
import re
import shlex
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DESTDIR = os.environ.get("SOCKIT_DESTDIR", "")
PREFIX = os.environ.get("SOCKIT_PREFIX", "/usr")
CC = os.environ.get("SOCKIT_CC") or "cc"
SANFLAGS = shlex.split(os.environ.get("SOCKIT_SANFLAGS", ""))
STAGE = DESTDIR + PREFIX
LIBDIR = os.path.join(STAGE, "lib")

pytestmark = pytest.mark.skipif(not DESTDIR, reason="run through `make test-install`")


def version():
    with open(os.path.join(ROOT, "include", "sockit", "version.h")) as f:
        text = f.read()
    return ".".join(re.search(rf"^#define SOCKIT_VERSION_{p} (\d+)$", text, re.M).group(1)
                    for p in ("MAJOR", "MINOR", "PATCH"))


VERSION = version()
MAJOR = VERSION.split(".")[0]


def installed():
    out = set()
    for d, _, files in os.walk(DESTDIR):
        out.update(os.path.relpath(os.path.join(d, f), STAGE) for f in files)
    return out


def test_file_list():
    want = {"bin/sockit", f"lib/libsockit.so.{VERSION}", f"lib/libsockit.so.{MAJOR}", "lib/libsockit.so",
            "lib/libsockit.a", "lib/pkgconfig/sockit.pc", "include/sockit.h"}
    want |= {"include/sockit/" + os.path.basename(h) for h in glob.glob(os.path.join(ROOT, "include/sockit/*.h"))}
    want |= {f"share/man/man{m[-1]}/{os.path.basename(m)}" for m in glob.glob(os.path.join(ROOT, "man/*.[1-8]"))}
    assert "share/man/man3/libsockit.3" in want
    want |= {f"share/locale/{os.path.basename(p)[:-3]}/LC_MESSAGES/sockit.mo"
             for p in glob.glob(os.path.join(ROOT, "po/*.po"))}
    assert "share/locale/zh_CN/LC_MESSAGES/sockit.mo" in want
    want |= {"lib/systemd/system/sockit.service", "lib/systemd/system/sockit.socket"}
    assert installed() == want
    assert os.readlink(os.path.join(LIBDIR, f"libsockit.so.{MAJOR}")) == f"libsockit.so.{VERSION}"
    assert os.readlink(os.path.join(LIBDIR, "libsockit.so")) == f"libsockit.so.{MAJOR}"
    assert os.stat(os.path.join(STAGE, "bin/sockit")).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(STAGE, "include/sockit.h")).st_mode & 0o777 == 0o644


def test_units_name_the_installed_program():
    with open(os.path.join(STAGE, "lib/systemd/system/sockit.service")) as f:
        unit = f.read()
    assert f"\nExecStart={PREFIX}/bin/sockit serve\n" in unit
    assert os.stat(os.path.join(STAGE, "lib/systemd/system/sockit.socket")).st_mode & 0o777 == 0o644


def pkg_config(*args):
    # The staged .pc file, with the staging tree as sysroot: its paths are the
    # final ones (/usr/...), pkg-config puts DESTDIR in front of -I and -L.
    env = dict(os.environ, PKG_CONFIG_LIBDIR=os.path.join(LIBDIR, "pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=DESTDIR)
    # openssl.pc (Requires.private) is the system's, not staged: keep its search path.
    env["PKG_CONFIG_PATH"] = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                                            capture_output=True, text=True, check=True).stdout.strip()
    r = subprocess.run(["pkg-config", *args, "sockit"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_pc_file_records_the_final_paths():
    with open(os.path.join(LIBDIR, "pkgconfig", "sockit.pc")) as f:
        pc = f.read()
    assert f"libdir={PREFIX}/lib\n" in pc and f"includedir={PREFIX}/include\n" in pc
    assert DESTDIR not in pc
    assert pkg_config("--modversion") == [VERSION]
    assert pkg_config("--cflags") == [f"-I{STAGE}/include"]
    assert pkg_config("--libs") == [f"-L{LIBDIR}", "-lsockit"]
    static = pkg_config("--static", "--libs")
    assert "-lssl" in static and "-lcrypto" in static and "-pthread" in static
    assert "-lz" in static and "-lbrotlidec" in static  # --compressed's decoders
    assert "-lnghttp2" in static  # HTTP/2 in fetch


PROBE = r"""
#include <stdio.h>
#include <string.h>
#include <sockit.h>

int main(void)
{
    /* The header's version, the loaded library's, and an error code's text. */
    printf("%s %s %d\n", SOCKIT_VERSION, sk_version(), SOCKIT_VERSION_NUMBER);
    return strcmp(sk_strerror(SK_ETIMEDOUT), "") == 0;
}
"""


def build(tmp_path, src, name, flags):
    exe = tmp_path / name
    r = subprocess.run([CC, *SANFLAGS, "-o", str(exe), str(src), *flags],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return exe


def run(exe, *args):
    return subprocess.run([str(exe), *args], capture_output=True, timeout=30,
                          env=dict(os.environ, LD_LIBRARY_PATH=LIBDIR))


@pytest.fixture
def probe(tmp_path):
    src = tmp_path / "probe.c"
    src.write_text(PROBE)
    return src


def test_program_against_the_shared_library(tmp_path, probe):
    exe = build(tmp_path, probe, "probe", pkg_config("--cflags", "--libs"))
    needed = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
    assert f"[libsockit.so.{MAJOR}]" in needed
    r = run(exe)
    num = (int(VERSION.split(".")[0]) << 16) | (int(VERSION.split(".")[1]) << 8) | int(VERSION.split(".")[2])
    assert r.returncode == 0 and r.stdout.decode() == f"{VERSION} {VERSION} {num}\n", r


def test_program_against_the_static_library(tmp_path, probe):
    flags = [f if f != "-lsockit" else "-l:libsockit.a" for f in pkg_config("--static", "--cflags", "--libs")]
    exe = build(tmp_path, probe, "probe-static", flags)
    needed = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
    assert "libsockit" not in needed
    assert run(exe).returncode == 0


def test_with_demo_outside_the_tree(tmp_path):
    # The example as a user builds it: a copy, the installed headers, pkg-config.
    src = tmp_path / "with_demo.c"
    src.write_bytes(open(os.path.join(ROOT, "examples", "with_demo.c"), "rb").read())
    exe = build(tmp_path, src, "with_demo", pkg_config("--cflags", "--libs"))
    r = run(exe)
    assert r.returncode == 0 and r.stdout == (b"__enter__\nwith demo\n__exit__\n"
                                              b"enter called\nxxt\nhello with\nexit called\n"), r


def test_installed_program_runs():
    r = subprocess.run([os.path.join(STAGE, "bin", "sockit"), "--version"], capture_output=True, timeout=10)
    assert r.returncode == 0 and VERSION in r.stdout.decode(), r
