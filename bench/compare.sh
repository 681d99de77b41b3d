#!/usr/bin/env bash
# Server PIDs and ports live in PID_<name> / PORT_<name>, assigned through eval
# in start(): shellcheck cannot see those assignments.
# shellcheck disable=SC2034,SC2154
# bench/compare.sh: the same `sockit bench` load against `sockit serve` and
# its peers, side by side, on loopback; writes docs/performance.md and
# docs/performance.png.
#
#   bench/compare.sh                 everything (about 10 minutes)
#   RUNS=5 DUR=5 bench/compare.sh    more and longer runs
#   TLS_ONLY=1 RUNS=2 DUR=1 bench/compare.sh   only the TLS section
#                                    (bench/tls_compare.sh), written to
#                                    $TMPDIR/sockit-tls-performance.md
#
# The generator runs on CPU $GEN_CPU and every server on CPU $SRV_CPU
# (taskset), since both share this machine. Each figure is the median of
# $RUNS runs, interleaved (run 1 of every server, then run 2, ...), so a
# drift in the machine hits every server alike. Every server this script
# starts listens on 127.0.0.1 only and is stopped by its PID on exit,
# whatever the exit path.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
DUR=${DUR:-3}
WARM=${WARM:-0.5}
GEN_CPU=${GEN_CPU:-0}
SRV_CPU=${SRV_CPU:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
SEED_IDLE_CONNS=${SEED_IDLE_CONNS:-2000}
SCALE_CONNS=${SCALE_CONNS:-"1 10 50 200 1000"}
TLS_ONLY=${TLS_ONLY:-0}
if [[ $TLS_ONLY == 1 ]]; then
    OUT_MD=${OUT_MD:-${TMPDIR:-/tmp}/sockit-tls-performance.md}
else
    OUT_MD=${OUT_MD:-$ROOT/docs/performance.md}
fi
OUT_PNG=${OUT_PNG:-$ROOT/docs/performance.png}

SOCKIT=$ROOT/build/sockit
WORK=$(mktemp -d /tmp/sockit-compare.XXXXXX)
RES=$WORK/results
mkdir -p "$RES"
PIDS=()

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() { command -v "$1" >/dev/null || { echo "compare.sh: needs $1 (scripts/deps.sh bench)" >&2; exit 1; }; }
for t in taskset python3 node redis-server redis-cli redis-benchmark gnuplot cc openssl nginx haproxy; do
    need "$t"
done

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
make -s -C "$ROOT" -j2 build/sockit >&2 || exit 1
for p in epoll_server udp_server; do
    cc -std=c11 -O2 -o "$WORK/$p" "$ROOT/bench/peers/$p.c" || exit 1
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_tcp PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_tcp() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "compare.sh: nothing listens on port $1" >&2
    return 1
}

# start NAME PORT CMD...: starts a server pinned to SRV_CPU; sets SPID.
start() {
    local name=$1 port=$2
    shift 2
    taskset -c "$SRV_CPU" "$@" >"$WORK/$name.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    eval "PID_$name=$SPID PORT_$name=$port"
    [[ $name == *udp* ]] && { sleep 0.3; return 0; }
    wait_tcp "$port"
}

# forget PID: it has exited and been waited for; never signal it again.
forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p != "$1" ]] && keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget "$1"
}

# The command line of each server (chunk and line framing) and how the
# generator talks to it.
server_cmd() { # NAME FRAMING PORT
    local name=$1 f=$2 port=$3
    case $name in
    sockit) echo "$SOCKIT serve --listen 127.0.0.1:$port --framing $f --workers 1 --quiet" ;;
    epoll) echo "$WORK/epoll_server $port $f" ;;
    node) echo "node $ROOT/bench/peers/node_server.js $port $f" ;;
    asyncio) echo "python3 $ROOT/bench/peers/asyncio_server.py $port $f" ;;
    seed) echo "python3 $ROOT/bench/peers/seed_threads.py $port" ;;
    redis) echo "redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --maxclients 19000 --loglevel warning" ;;
    esac
}

gen_proto() { # NAME FRAMING -> protocol options for sockit bench
    if [[ $1 == redis ]]; then
        echo "--raw PING\\r\\n --expect +PONG\\r\\n"
    else
        echo "--framing $2"
    fi
}

# CPU time (user + system, clock ticks) the processes PIDS (one word each)
# have used so far.
cpu_ticks() {
    local p t=0
    for p in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}

# Resident memory (KiB) of the processes PIDS, together.
rss_kib() {
    local p t=0
    for p in $1; do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done
    echo "$t"
}

# bench OUTFILE SERVER_PIDS TARGET ARGS...: one sockit bench run on GEN_CPU,
# JSON kept. Also records the server's CPU time over the measured window
# (OUTFILE.cpu, in ticks of 1/$(getconf CLK_TCK) s) and the generator's own
# CPU time (OUTFILE.gen: user and system seconds): CPU per reply does not
# depend on what else the machine runs, throughput does.
bench() {
    local out=$1 spid=$2
    shift 2
    echo "taskset -c $GEN_CPU sockit bench $*" >"$out.cmd"
    /usr/bin/time -f "%U %S" -o "$out.gen" taskset -c "$GEN_CPU" "$SOCKIT" bench "$@" \
        --json --quiet --no-live >"$out" 2>"$out.err" &
    local b=$! c0
    sleep "$WARM"
    c0=$(cpu_ticks "$spid")
    wait "$b"
    echo $(($(cpu_ticks "$spid") - c0)) >"$out.cpu"
}

# rotate N WORD...: the words, starting at the N-th (mod their count), so that
# no server always runs first in a round (right after the previous round's
# connect storm) or always last.
rotate() {
    local n=$1
    shift
    local words=("$@") i
    for ((i = 0; i < ${#words[@]}; i++)); do
        printf '%s ' "${words[(i + n) % ${#words[@]}]}"
    done
}

# idle_rss OUT SERVER_PIDS PORT N ARGS...: the servers' RSS before, and while
# `sockit bench --idle` holds N greeted connections (OUT: "N BEFORE HOLDING",
# KiB; OUT.json, OUT.err: bench's).
idle_rss() {
    local out=$1 pids=$2 port=$3 n=$4 bpid before during
    shift 4
    sleep 1
    before=$(rss_kib "$pids")
    taskset -c "$GEN_CPU" "$SOCKIT" bench "127.0.0.1:$port" --idle 6 -c "$n" --json --quiet \
        --no-live "$@" >"$out.json" 2>"$out.err" &
    bpid=$!
    PIDS+=("$bpid")
    for _ in $(seq 300); do grep -q holding "$out.err" && break; sleep 0.1; done
    sleep 2
    during=$(rss_kib "$pids")
    wait "$bpid"
    forget "$bpid"
    echo "$n $before $during" >"$out"
}

# report: docs/performance.md (OUT_MD) from the results, and its plot.
report() {
    log "writing $OUT_MD${OUT_PNG:+ and $OUT_PNG}"
    {
        echo "cpu=$(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"
        echo "kernel=$(uname -r)"
        echo "os=$(. /etc/os-release; echo "$PRETTY_NAME")"
        echo "redis=$(redis-server --version | awk '{print $3}' | cut -d= -f2)"
        echo "node=$(node --version)"
        echo "openssl=$(openssl version | awk '{print $2}')"
        echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
        echo "haproxy=$(haproxy -v | awk 'NR == 1 {print $3}')"
        echo "python=$(python3 --version | awk '{print $2}')"
        echo "cc=$(cc --version | head -1)"
        echo "sockit=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo +dirty)"
        echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
        echo "load average at start=$LOAD0"
        echo "load average at end=$(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$RES/machine"
    TLS_ONLY=$TLS_ONLY TLS_IDLE_CONNS=$TLS_IDLE_CONNS python3 "$ROOT/bench/report.py" "$RES" \
        "$OUT_MD" "$OUT_PNG" "$RUNS" "$DUR" "$WARM" "$GEN_CPU" "$SRV_CPU" "$IDLE_CONNS" \
        "$SEED_IDLE_CONNS" "${GEN_N:-0}" || exit 1
    [[ $TLS_ONLY == 1 ]] || gnuplot "$RES/plot.gp" || exit 1
    log "done"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $TLS_ONLY == 1 ]]; then
    # shellcheck source=bench/tls_compare.sh
    . "$ROOT/bench/tls_compare.sh"
    report
    exit 0
fi
# ---- start the request/reply servers once, chunk and line framing ----
CHUNK_SERVERS="sockit epoll redis node asyncio seed"
LINE_SERVERS="sockit epoll redis node asyncio"
log "starting servers on CPU $SRV_CPU"
for s in $CHUNK_SERVERS; do
    p=$(free_port)
    # shellcheck disable=SC2046
    eval start "${s}_chunk" "$p" $(server_cmd "$s" chunk "$p") || exit 1
done
for s in $LINE_SERVERS; do
    [[ $s == redis ]] && { PORT_redis_line=$PORT_redis_chunk PID_redis_line=$PID_redis_chunk; continue; }
    p=$(free_port)
    # shellcheck disable=SC2046
    eval start "${s}_line" "$p" $(server_cmd "$s" line "$p") || exit 1
done

# ---- A: 50 connections, one request in flight; B: line framing, -P 16;
#      D: connect rate. Interleaved runs, order rotated each round. ----
for r in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    for s in $(rotate "$r" $CHUNK_SERVERS); do
        port_var=PORT_${s}_chunk pid_var=PID_${s}_chunk
        log "run $r: $s, 50 connections, not pipelined"
        # shellcheck disable=SC2046
        bench "$RES/A.$s.$r" "${!pid_var}" "127.0.0.1:${!port_var}" -c 50 -d "$DUR" --warmup "$WARM" \
            $(gen_proto "$s" chunk)
    done
    # shellcheck disable=SC2086
    for s in $(rotate "$r" $LINE_SERVERS); do
        port_var=PORT_${s}_line pid_var=PID_${s}_line
        log "run $r: $s, 50 connections, pipeline 16"
        # shellcheck disable=SC2046
        bench "$RES/B.$s.$r" "${!pid_var}" "127.0.0.1:${!port_var}" -c 50 -P 16 -d "$DUR" --warmup "$WARM" \
            $(gen_proto "$s" line)
    done
    for s in $(rotate "$r" sockit epoll redis node asyncio); do
        port_var=PORT_${s}_chunk pid_var=PID_${s}_chunk
        log "run $r: $s, connect rate"
        # shellcheck disable=SC2046
        bench "$RES/D.$s.$r" "${!pid_var}" "127.0.0.1:${!port_var}" --connect -c 50 -d "$DUR" \
            --warmup "$WARM" $(gen_proto "$s" chunk)
    done
done

# ---- F: the generator itself, against redis: sockit bench vs redis-benchmark ----
GEN_N=${GEN_N:-2000000}
rport=$PORT_redis_chunk
for r in $(seq "$RUNS"); do
    log "run $r: generators against redis, -c 50 -P 16 -n $GEN_N"
    redis-cli -p "$rport" config resetstat >/dev/null
    bench "$RES/F.sockit.$r" "$PID_redis_chunk" "127.0.0.1:$rport" -c 50 -P 16 -n "$GEN_N" --raw 'PING\r\n' \
        --expect '+PONG\r\n'
    redis-cli -p "$rport" info commandstats | grep -o 'cmdstat_ping:calls=[0-9]*' \
        | cut -d= -f2 >"$RES/F.sockit.$r.calls"
    redis-cli -p "$rport" config resetstat >/dev/null
    echo "taskset -c $GEN_CPU redis-benchmark -p PORT -c 50 -P 16 -n $GEN_N -t ping_inline --csv" \
        >"$RES/F.redis-benchmark.$r.cmd"
    /usr/bin/time -f "%U %S" -o "$RES/F.redis-benchmark.$r.gen" \
        taskset -c "$GEN_CPU" redis-benchmark -p "$rport" -c 50 -P 16 -n "$GEN_N" -t ping_inline \
        --csv 2>/dev/null | tail -1 >"$RES/F.redis-benchmark.$r"
    redis-cli -p "$rport" info commandstats | grep -o 'cmdstat_ping:calls=[0-9]*' \
        | cut -d= -f2 >"$RES/F.redis-benchmark.$r.calls"
done

# ---- G: throughput and p99 against the number of connections (one run each) ----
for c in $SCALE_CONNS; do
    for s in sockit epoll redis node asyncio; do
        port_var=PORT_${s}_chunk pid_var=PID_${s}_chunk
        log "scaling: $s, $c connections"
        # shellcheck disable=SC2046
        bench "$RES/G.$s.$c" "${!pid_var}" "127.0.0.1:${!port_var}" -c "$c" -d 2 --warmup "$WARM" \
            $(gen_proto "$s" chunk)
    done
done

for v in $(compgen -v PID_); do stop "${!v}"; done

# ---- E: UDP, sockit serve --udp against the bare recvmmsg/sendmmsg server ----
p=$(free_port)
start sockit_udp "$p" "$SOCKIT" serve --listen "127.0.0.1:$p" --udp --workers 1 --quiet
sleep 0.5
if grep -q '(udp' "$WORK/sockit_udp.log" && kill -0 "$PID_sockit_udp" 2>/dev/null; then
    q=$(free_port)
    start bare_udp "$q" "$WORK/udp_server" "$q"
    for r in $(seq "$RUNS"); do
        for s in $(rotate "$r" sockit bare); do
            port_var=PORT_${s}_udp pid_var=PID_${s}_udp
            log "run $r: UDP $s"
            bench "$RES/E.$s.$r" "${!pid_var}" "127.0.0.1:${!port_var}" --udp -c 8 -P 32 -d "$DUR" \
                --warmup "$WARM"
        done
    done
    stop "$PID_bare_udp"
else
    log "sockit serve --udp is not available here: UDP skipped"
fi
stop "$PID_sockit_udp"

# ---- C: RSS per idle connection; each server alone, started fresh ----
for s in sockit epoll redis node asyncio seed; do
    n=$IDLE_CONNS
    [[ $s == seed ]] && n=$SEED_IDLE_CONNS
    p=$(free_port)
    # shellcheck disable=SC2046
    eval start "${s}_idle" "$p" $(server_cmd "$s" chunk "$p") || continue
    pid_var=PID_${s}_idle
    log "idle: $s, $n connections"
    # shellcheck disable=SC2046
    idle_rss "$RES/C.$s" "${!pid_var}" "$p" "$n" $(gen_proto "$s" chunk)
    stop "${!pid_var}"
done

# ---- T: TLS, sockit serve --tls-* and its peers (bench/tls_compare.sh) ----
# shellcheck source=bench/tls_compare.sh
. "$ROOT/bench/tls_compare.sh"

report
