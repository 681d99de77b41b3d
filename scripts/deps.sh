#!/usr/bin/env bash
# Installs the Debian packages sockit needs, or says exactly what to install.
#   scripts/deps.sh build   compiler, make, OpenSSL headers
#   scripts/deps.sh test    the above plus Criterion, pytest, nginx, openssl CLI
#   scripts/deps.sh bench   the above plus redis, wrk, hyperfine, gnuplot, curl, wget, node
set -euo pipefail

build_pkgs=(gcc make libc6-dev libssl-dev pkg-config)
test_pkgs=(libcriterion-dev python3 python3-pytest nginx openssl clang libclang-rt-14-dev iproute2 procps curl time)
bench_pkgs=(redis-server redis-tools wrk hyperfine gnuplot-nox wget nodejs time)

want=("${build_pkgs[@]}")
case "${1:-build}" in
build) ;;
test) want+=("${test_pkgs[@]}") ;;
bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    # nginx, nginx-light and nginx-full all provide the nginx binary.
    if [[ $p == nginx ]] && command -v nginx >/dev/null 2>&1; then continue; fi
    if [[ $p == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "sockit: missing packages: ${missing[*]}" >&2
    echo "sockit: install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "sockit: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq || true
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
