"""libsockit.so as packagers see it: its SONAME, its exports (the public API, nothing
else), the headers on their own in C11 and C++, and one version everywhere.
Needs SOCKIT_BUILD (the build directory); run by `make test-install`."""
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SOCKIT_BUILD") or os.path.join(ROOT, "build")
HEADERS = sorted(glob.glob(os.path.join(ROOT, "include", "sockit", "*.h")))


def version_h():
    with open(os.path.join(ROOT, "include", "sockit", "version.h")) as f:
        text = f.read()
    return tuple(int(re.search(rf"^#define SOCKIT_VERSION_{p} (\d+)$", text, re.M).group(1))
                 for p in ("MAJOR", "MINOR", "PATCH"))


VERSION = "%d.%d.%d" % version_h()
SO = os.path.join(BUILD, f"libsockit.so.{VERSION}")


def exports():
    """{name: version} of every dynamic symbol the library defines."""
    out = subprocess.run(["nm", "-D", "--defined-only", SO], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        name = line.split()[-1]
        base, _, ver = name.partition("@@")
        syms[base] = ver
    return syms


def public_declarations():
    """Names the public headers declare for linking: functions and extern objects."""
    names = set()
    for h in HEADERS:
        with open(h) as f:
            text = f.read()
        # A declaration starts at the beginning of a line (macro bodies, comments and
        # static inline helpers do not) and ends with ");" or is an extern object.
        for m in re.finditer(r"^(?!static\b|typedef\b|#|\s)[\w \t*]*?\b(sk_[a-z0-9_]+)\s*\([^;{]*\)\s*;",
                             text, re.M):
            names.add(m.group(1))
        names.update(re.findall(r"^extern [^;(\n\"]*\b(sk_[a-z0-9_]+)\s*;", text, re.M))
    return names


def test_soname_and_links():
    major = VERSION.split(".")[0]
    dyn = subprocess.run(["readelf", "-d", SO], capture_output=True, text=True, check=True).stdout
    assert f"Library soname: [libsockit.so.{major}]" in dyn
    assert os.readlink(os.path.join(BUILD, f"libsockit.so.{major}")) == f"libsockit.so.{VERSION}"
    assert os.readlink(os.path.join(BUILD, "libsockit.so")) == f"libsockit.so.{major}"
    # OpenSSL is recorded, so a program linking -lsockit alone still loads.
    assert "[libssl.so" in dyn and "[libcrypto.so" in dyn


def test_exports_are_the_public_api_and_nothing_else():
    syms = exports()
    node = f"LIBSOCKIT_{VERSION.split('.')[0]}"
    internal = sorted(s for s in syms if s.startswith("sk__"))
    assert not internal, f"internal symbols exported: {internal}"
    declared = public_declarations()
    stray = sorted(s for s in syms if s != node and s not in declared)
    assert not stray, f"exported but not declared in include/sockit/*.h: {stray}"
    unversioned = sorted(s for s, v in syms.items() if s != node and v != node)
    assert not unversioned, f"exported without version {node}: {unversioned}"
    assert len(syms) > 50  # the whole API, not an empty library


def test_every_declared_function_is_exported():
    # A declaration with no definition links in the tree only while nobody calls it.
    missing = sorted(public_declarations() - set(exports()))
    assert not missing, f"declared in a public header but not in libsockit.so: {missing}"


def test_test_hooks_are_not_public():
    for h in HEADERS:
        with open(h) as f:
            assert "for tests" not in f.read(), f"{h}: test-only declarations go in lib/*_int.h"


def compile_header(compiler, lang, std, path):
    return subprocess.run([compiler, "-x", lang, std, "-pedantic", "-Wall", "-Wextra", "-Werror",
                           "-fsyntax-only", "-D_POSIX_C_SOURCE=200809L",
                           "-I", os.path.join(ROOT, "include"), path],
                          capture_output=True, text=True)


@pytest.mark.parametrize("lang,compiler,std", [("c", "gcc", "-std=c11"), ("c++", "g++", "-std=c++11")])
@pytest.mark.parametrize("header", ["sockit.h"] + [os.path.relpath(h, os.path.join(ROOT, "include"))
                                                   for h in HEADERS])
def test_header_compiles_alone(header, lang, compiler, std):
    # Each public header includes what it uses, and C++ can include it (extern "C").
    assert shutil.which(compiler), f"{compiler} missing: scripts/deps.sh test installs it"
    r = compile_header(compiler, lang, std, os.path.join(ROOT, "include", header))
    assert r.returncode == 0, r.stderr


def test_every_header_has_extern_c():
    for h in HEADERS:
        with open(h) as f:
            text = f.read()
        assert 'extern "C" {' in text, h


def test_one_version_everywhere():
    # version.h is the source; the Debian changelog (a native package) must follow it.
    with open(os.path.join(ROOT, "debian", "changelog")) as f:
        m = re.match(r"sockit \(([^)]+)\) ", f.readline())
    assert m and m.group(1) == VERSION, "debian/changelog's top entry is not version.h's version"
    with open(os.path.join(BUILD, "sockit.pc")) as f:
        assert f"Version: {VERSION}\n" in f.read()
