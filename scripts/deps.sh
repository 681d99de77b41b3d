#!/usr/bin/env bash
# Installs the Debian packages sockit needs, or says exactly what to install.
#   scripts/deps.sh build   compiler, make, OpenSSL, zlib, brotli and nghttp2 headers, gettext (msgfmt)
#   scripts/deps.sh lint    build plus clang-tidy, cppcheck, scan-build (`make lint`)
#   scripts/deps.sh test    build and lint plus Criterion, pytest, nginx, haproxy, tinyproxy, microsocks, dante-server, openssl CLI, clang, g++,
#                           systemd, prometheus (promtool checks serve --metrics)
#   scripts/deps.sh package build plus debhelper, lintian, dpkg-dev (`make package-test`)
#   scripts/deps.sh soak    test plus gnuplot (`make soak` draws docs/soak.png)
#   scripts/deps.sh bench   test plus redis, wrk, hyperfine, gnuplot, curl, wget, node, and
#                           nginx (stream module), haproxy, openssl for bench/compare.sh's TLS peers
# Not root and no sudo: prints the exact apt-get line and exits 1.
set -euo pipefail

build_pkgs=(gcc make libc6-dev libssl-dev zlib1g-dev libbrotli-dev libnghttp2-dev pkg-config gettext)
# clang-tools: scan-build; clang-tidy: run-clang-tidy too.
lint_pkgs=(clang clang-tidy clang-tools cppcheck python3)
# g++: the public headers compile as C++ (tests/install/test_exports.py).
# systemd: systemd-socket-activate and systemd-analyze (tests/integration/test_serve_sd.py).
# prometheus: promtool (tests/integration/test_serve_metrics.py). ncat: a TLS peer (test_serve_tls.py).
# tinyproxy: the real proxy of tests/integration/test_fetch_proxy.py (plain, CONNECT, BasicAuth).
# microsocks: the real SOCKS5 proxy of tests/integration/test_fetch_socks.py (-u/-P auth).
# dante-server: danted, the real SOCKS4 proxy of tests/integration/test_fetch_socks4.py.
# python3-brotli: br bodies for tests/integration/test_fetch_compressed.py.
# lighttpd (+ mod-deflate, mod-openssl): the second real web server of test_fetch_lighttpd.py.
# python3-h2: the hostile HTTP/2 server of tests/integration/test_fetch_h2.py; nghttp2-server: nghttpd, a second real HTTP/2 peer.
test_pkgs=(libcriterion-dev python3 python3-pytest python3-brotli locales nginx openssl clang libclang-rt-14-dev iproute2 procps curl time g++ groff-base mandoc haproxy libnginx-mod-stream systemd prometheus ncat tinyproxy microsocks dante-server lighttpd lighttpd-mod-deflate lighttpd-mod-openssl python3-h2 nghttp2-server)
package_pkgs=(debhelper lintian dpkg-dev pkg-config)
soak_pkgs=(gnuplot-nox)
# nginx, libnginx-mod-stream, haproxy, openssl: the TLS peers of bench/tls_compare.sh
# (also in test_pkgs; listed here so the bench list stands on its own).
bench_pkgs=(redis-server redis-tools wrk hyperfine gnuplot-nox wget nodejs time nginx libnginx-mod-stream haproxy openssl aria2)

want=("${build_pkgs[@]}")
case "${1:-build}" in
build) ;;
lint) want+=("${lint_pkgs[@]}") ;;
test) want+=("${lint_pkgs[@]}" "${test_pkgs[@]}") ;;
soak) want+=("${lint_pkgs[@]}" "${test_pkgs[@]}" "${soak_pkgs[@]}") ;;
bench) want+=("${lint_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
package) want+=("${package_pkgs[@]}") ;;
*) echo "usage: $0 build|lint|test|soak|bench|package" >&2; exit 2 ;;
esac

missing=()
declare -A seen=()
for p in "${want[@]}"; do
    [[ -n ${seen[$p]:-} ]] && continue
    seen[$p]=1
    # nginx, nginx-light and nginx-full all provide the nginx binary.
    if [[ $p == nginx ]] && command -v nginx >/dev/null 2>&1; then continue; fi
    if [[ $p == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
    echo "sockit: missing packages: ${missing[*]}" >&2
    echo "sockit: install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "sockit: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq || true
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
