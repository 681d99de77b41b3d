#!/usr/bin/env bash
# Shared EPOLLEXCLUSIVE listener (default) against --reuseport, same load,
# interleaved runs. Loopback only; every server is stopped by PID.
#   bench/listener_modes.sh [RUNS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DUR=${2:-3}
SOCKIT=build/sockit
WORKERS=${WORKERS:-2}
[[ -x $SOCKIT ]] || make -s build/sockit

port_of() { sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+) \(tcp.*/\1/p' "$1" | head -1; }

run_one() { # mode load -> prints throughput
    local mode=$1 load=$2 log pid port extra=()
    [[ $mode == reuseport ]] && extra=(--reuseport)
    log=$(mktemp)
    $SOCKIT serve --listen 127.0.0.1:0 --workers "$WORKERS" --quiet "${extra[@]}" 2>"$log" &
    pid=$!
    for _ in $(seq 50); do port=$(port_of "$log"); [[ -n $port ]] && break; sleep 0.05; done
    local args=(-c 50 -d "$DUR" --warmup 0.5 --json --no-live)
    [[ $load == connect ]] && args+=(--connect)
    $SOCKIT bench "127.0.0.1:$port" "${args[@]}" 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["throughput"]))'
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$log"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for load in request connect; do
    declare -A res=()
    for r in $(seq "$RUNS"); do
        for mode in shared reuseport; do
            res[$mode]+="$(run_one $mode $load) "
        done
    done
    s=$(tr ' ' '\n' <<<"${res[shared]}" | grep . | median)
    p=$(tr ' ' '\n' <<<"${res[reuseport]}" | grep . | median)
    echo "$load (50 conns, $WORKERS workers): shared ${s}/s [${res[shared]% }]  reuseport ${p}/s [${res[reuseport]% }]  reuseport/shared $(awk -v a="$p" -v b="$s" 'BEGIN{printf "%.2f", a/b}')"
    unset res
done
