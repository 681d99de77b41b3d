#!/usr/bin/env bash
# The Debian packages end to end (make package-test, .ci/run): builds sockit,
# libsockit0 and libsockit-dev with `dpkg-buildpackage -us -uc -b` in a copy
# of the tree under /tmp, runs lintian on them (errors fail), installs them
# with dpkg -i, runs `sockit --version`, builds every examples/*.c outside the
# tree with `cc $(pkg-config --cflags --libs sockit)` against the installed
# library, runs each example's check hook, then removes the packages again.
#
# Check hook: examples/NAME.check, if present, is run as `NAME.check PROGRAM`
# (PROGRAM: the example built against the installed packages) from a scratch
# directory; exit 0 means it works. An example without a hook is only built.
#
# Needs root, or sudo without a password, for dpkg -i / dpkg -r.
# KEEP=1 keeps the scratch directory (the build log, the .debs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
    echo "package-test: dpkg -i needs root (or sudo without a password)" >&2
    exit 1
fi
for tool in dpkg-buildpackage dh lintian pkg-config cc; do
    command -v "$tool" >/dev/null || { echo "package-test: $tool not found (scripts/deps.sh package)" >&2; exit 1; }
done

v() { sed -n "s/^#define SOCKIT_VERSION_$1 \\([0-9]*\\)$/\\1/p" include/sockit/version.h; }
version="$(v MAJOR).$(v MINOR).$(v PATCH)"
pkgs=(sockit libsockit0 libsockit-dev)
work=$(mktemp -d /tmp/sockit-package.XXXXXX)
installed=0
cleanup() {
    if [[ $installed -eq 1 ]]; then
        "${SUDO[@]}" dpkg -r "${pkgs[@]}" >/dev/null || echo "package-test: dpkg -r failed" >&2
    fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "package-test: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
for p in "${pkgs[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        echo "package-test: $p is already installed; remove it first (dpkg -r ${pkgs[*]})" >&2
        exit 1
    fi
done

echo "== package: dpkg-buildpackage in $work =="
src=$work/sockit-$version
mkdir -p "$src"
# The tree as git sees it (tracked and new files, not build/ or other ignored ones).
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -C "$src" -xf -
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    grep -q "dpkg-gensymbols" "$work/build.log" &&
        echo "package-test: the exports differ from debian/libsockit0.symbols: check the diff, then 'make symbols'" >&2
    echo "package-test: dpkg-buildpackage failed (log: $work/build.log, KEEP=1 keeps it)" >&2
    exit 1
fi
arch=$(dpkg --print-architecture)
debs=()
for p in "${pkgs[@]}"; do debs+=("$work/${p}_${version}_${arch}.deb"); done
ls -l "${debs[@]}"
grep -E "^dpkg-gensymbols: warning" "$work/build.log" || true

echo "== package: lintian =="
lintian_rc=0
lintian --fail-on error --display-info "$work/sockit_${version}_${arch}.changes" > "$work/lintian.txt" 2>&1 || lintian_rc=$?
cat "$work/lintian.txt"
for t in E W I; do printf '%s: %s  ' "$t" "$(grep -c "^$t: " "$work/lintian.txt" || true)"; done; echo
[[ $lintian_rc -eq 0 ]] || { echo "package-test: lintian found errors" >&2; exit 1; }

echo "== package: install =="
"${SUDO[@]}" dpkg -i "${debs[@]}" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; exit 1; }
installed=1
got=$(sockit --version)
echo "$got"
[[ $got == *"$version"* ]] || { echo "package-test: sockit --version does not say $version" >&2; exit 1; }
[[ $(pkg-config --modversion sockit) == "$version" ]] || { echo "package-test: pkg-config: wrong version" >&2; exit 1; }

echo "== package: examples built outside the tree with pkg-config =="
out=$work/examples
mkdir -p "$out"
cp examples/*.c "$out/"
fails=0
for c in "$out"/*.c; do
    name=$(basename "$c" .c)
    # shellcheck disable=SC2046 # pkg-config's output is a list of flags
    if ! (cd "$out" && cc -Wall -o "$name" "$name.c" $(pkg-config --cflags --libs sockit)); then
        echo "package-test: $name: does not build against the installed library" >&2; fails=1; continue
    fi
    readelf -d "$out/$name" | grep -q 'NEEDED.*\[libsockit\.so\.[0-9]*\]' ||
        { echo "package-test: $name: not linked with the shared library" >&2; fails=1; continue; }
    hook=$root/examples/$name.check
    if [[ -x $hook ]]; then
        scratch=$(mktemp -d "$out/run-$name.XXXXXX")
        if (cd "$scratch" && "$hook" "$out/$name"); then echo "$name: ok"; else
            echo "package-test: $name: its check ($hook) failed" >&2; fails=1; fi
    else
        echo "$name: built (no examples/$name.check)"
    fi
done
[[ $fails -eq 0 ]] || exit 1
echo "== package: ok: ${pkgs[*]} $version built, lintian clean of errors, installed, examples built and run =="
