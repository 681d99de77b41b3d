#!/usr/bin/env bash
# bench/million.sh: one `sockit serve` holding N concurrent idle TCP
# connections (default 1,000,000) on this machine (not in CI; needs root for
# the sysctls; about 5 minutes at a million).
#
#   bench/million.sh                 N=1,000,000
#   N=20000 bench/million.sh         a quick check
#   SERVERS=51 bench/million.sh      N over 51 servers (see "One process" below)
#
# What it does:
#   1. raises fs.nr_open, fs.file-max, fs.epoll.max_user_watches,
#      net.ipv4.ip_local_port_range, net.core.somaxconn,
#      net.ipv4.tcp_max_syn_backlog, net.core.netdev_max_backlog,
#      net.ipv4.tcp_mem and (when the conntrack module is there)
#      net.netfilter.nf_conntrack_max, each only upwards, after saving the
#      old value; every one is written back on exit, whatever the exit path
#      (trap on EXIT, INT and TERM);
#   2. starts one release `sockit serve --workers 2 --quiet` on 0.0.0.0:0
#      (the port it picked is read from its log) with `ulimit -n` (hard and
#      soft) raised in the subshell that starts it (and every bench);
#   3. starts ceil(N / PER) `sockit bench --idle` processes (per server) at once, each
#      holding PER connections (the last one the rest) to its own
#      destination address 127.0.1.1, 127.0.1.2, ...; samples
#      /proc/net/sockstat every second while they fill (the accept rate)
#      and aborts if MemAvailable drops under MIN_AVAIL_MIB;
#   4. once every bench holds: the server's VmRSS (RSS per connection =
#      (holding - before) / N), its established sockets (ss) and open fds,
#      the kernel's memory (Slab and SUnreclaim from /proc/meminfo,
#      sockstat's TCP mem), the listen queue drops (/proc/net/netstat);
#   5. SIGUSR1 to every bench: `--probe` sends one message on a sample of
#      its held connections (PROBE in all, spread evenly over each bench's
#      connections) and checks every reply, the hold going on;
#   6. SIGTERM to the server while it holds all N: the time to its exit,
#      its exit status (0) and its summary line; then every bench is
#      stopped by PID.
#
# Why destination addresses: a TCP connection is unique by its 4-tuple, so
# one client address talking to one server address has at most one
# connection per local port (about 64k). The issue text spreads the
# *source* addresses over 127.0.0.0/8; spreading the *destination* is the
# same for the 4-tuple and needs no bind() in the client: Linux's connect()
# reuses a local port for a different destination. The server listens on
# 0.0.0.0 (a socket on 127.0.0.1 would see only that destination; --listen
# takes at most 16 addresses), so during the run it is reachable from other
# hosts too: run this on a test machine. Each destination gets at most
# PER=25,000 connections, under half of the 10000-65535 port range: connect()
# takes ports of one parity first and bind(port 0) the other, so the other
# processes on the machine can still bind ephemeral ports (and bench warns
# above half the range).
#
# One process: a process holds at most its hard RLIMIT_NOFILE in fds, and
# raising that needs CAP_SYS_RESOURCE. Where the script cannot raise it (a
# container that drops the capability), it says so and caps N at what one
# server can hold. SERVERS=K then spreads N over K servers (each on its own
# port, with its own benches): not the one process the target asks for, but
# the machine's side of N connections (kernel memory, ports, accept rate),
# and the sum of the servers' RSS per connection.
#
# Every process it starts is stopped by PID, every wait has a deadline; the
# raw samples stay in $OUT_DIR (printed at the end).
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOCKIT=${SOCKIT:-$ROOT/build/sockit}
N=${N:-1000000}
SERVERS=${SERVERS:-1}         # servers, each holding N / SERVERS
PER=${PER:-25000}             # connections per bench process (one destination each)
PROBE=${PROBE:-10000}         # held connections that get one round trip
CONC=${CONC:-128}             # connects in progress per bench (its default)
MIN_AVAIL_MIB=${MIN_AVAIL_MIB:-2048}
FILL_TIMEOUT=${FILL_TIMEOUT:-$((N / 2000 + 120))}   # seconds for every bench to hold
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-60}  # bench --timeout: a connect (or probe) later is an error
GRACE_S=${GRACE_S:-2.5}       # serve --help: "exit 0, within 2.5 s" after SIGTERM
TERM_TIMEOUT=${TERM_TIMEOUT:-$((N / 5000 + 30))} # then SIGKILL: closing costs ~20 us of CPU per connection
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/sockit-million.XXXXXX)}
SLACK=100                     # fds a process needs besides its sockets (stdio, epoll, log)
NOFILE=$(((N + SERVERS - 1) / SERVERS + SLACK)) # the open-file limit of every process started
N_ASKED=$N
FD_BOUND=

log() { printf '[million %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

(( N >= 1 && PER >= 1 && SERVERS >= 1 && SERVERS <= N )) ||
    die "N, PER and SERVERS must be positive, SERVERS at most N"
[[ $(id -u) == 0 ]] || die "needs root (sysctls, ulimit -n $NOFILE)"
[[ -x $SOCKIT ]] || die "no $SOCKIT: build it first (make -j2 -s all)"
command -v ss >/dev/null || die "needs ss (iproute2)"

# ---- limits: saved, raised, restored ----

declare -A SAVED=()
SAVED_ORDER=()
PIDS=()

sysctl_path() { echo "/proc/sys/${1//.//}"; }
sysctl_get() { tr -s ' \t' ' ' <"$(sysctl_path "$1")"; }
sysctl_set() { # key value: saves the old value once, then writes
    local key=$1 val=$2 path
    path=$(sysctl_path "$key")
    if [[ -z ${SAVED[$key]+x} ]]; then
        SAVED[$key]=$(sysctl_get "$key")
        SAVED_ORDER+=("$key")
    fi
    echo "$val" >"$path" || die "cannot set $key=$val"
    log "set $key = $val (was ${SAVED[$key]})"
}
raise() { # key value: raises a one-number sysctl to at least value
    local cur
    cur=$(sysctl_get "$1")
    (( cur < $2 )) && sysctl_set "$1" "$2"
    return 0
}

stop_pid() { # pid [signal]: signals it, waits up to 10 s, then SIGKILL
    local pid=$1 sig=${2:-TERM} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < 1000; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIG$sig: SIGKILL"; kill -KILL "$pid"; }
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local p k i
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do
        stop_pid "$p"
    done
    for ((i = ${#SAVED_ORDER[@]} - 1; i >= 0; i--)); do
        k=${SAVED_ORDER[$i]}
        if echo "${SAVED[$k]}" >"$(sysctl_path "$k")"; then
            log "restored $k = ${SAVED[$k]}"
        else
            log "COULD NOT RESTORE $k = ${SAVED[$k]}"
        fi
    done
    log "raw samples and logs: $OUT_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

raise fs.nr_open "$NOFILE"
# Raising the hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE. Without it (a
# container that drops it) one process holds at most the hard limit in
# fds: the run is then capped there, and the report says what bounded it.
if (( $(ulimit -Hn) < NOFILE )) && ! (ulimit -Hn "$NOFILE") 2>/dev/null; then
    hard=$(ulimit -Hn)
    FD_BOUND="the open-file limit: RLIMIT_NOFILE hard $hard, and no CAP_SYS_RESOURCE to raise it (CapEff $(awk '$1 == "CapEff:" {print $2}' /proc/self/status))"
    log "cannot raise ulimit -n to $NOFILE: $FD_BOUND"
    (( SERVERS == 1 )) || die "N / SERVERS is more than one process can hold here ($((hard - SLACK))): use SERVERS=$(((N + hard - SLACK - 1) / (hard - SLACK)))"
    N=$((hard - SLACK))
    NOFILE=$hard
    log "one server holds at most $N connections: N=$N"
fi
(( PER > NOFILE - SLACK )) && PER=$((NOFILE - SLACK))
(( PROBE > N )) && PROBE=$N
# Server s holds n_s = N / SERVERS (+1 for the first N % SERVERS), opened by
# ceil(n_s / PER) benches of PER connections (the last one the rest).
BCOUNT=() BSRV=()
for ((s = 0; s < SERVERS; s++)); do
    n_s=$((N / SERVERS + (s < N % SERVERS)))
    for ((left = n_s; left > 0; left -= PER)); do
        BCOUNT+=($((left < PER ? left : PER)))
        BSRV+=("$s")
    done
done
NB=${#BCOUNT[@]}
(( NB <= 250 * 254 )) || die "N / PER gives more than $((250 * 254)) destinations"
raise fs.file-max $((2 * N + 1000000))
raise fs.epoll.max_user_watches $((2 * N + 1000000))
raise net.core.somaxconn 65535
raise net.ipv4.tcp_max_syn_backlog 65535
raise net.core.netdev_max_backlog 65536
read -r lo hi <<<"$(sysctl_get net.ipv4.ip_local_port_range)"
(( lo > 10000 || hi < 65535 )) &&
    sysctl_set net.ipv4.ip_local_port_range "$((lo < 10000 ? lo : 10000)) 65535"
read -r m1 m2 m3 <<<"$(sysctl_get net.ipv4.tcp_mem)"
if (( m3 < 3 * N / 2 )); then # pages; idle sockets hold next to none, but no pressure mode
    sysctl_set net.ipv4.tcp_mem \
        "$((m1 > N / 2 ? m1 : N / 2)) $((m2 > N ? m2 : N)) $((3 * N / 2))"
fi
if [[ -e /proc/sys/net/netfilter/nf_conntrack_max ]]; then
    raise net.netfilter.nf_conntrack_max $((2 * N + 100000)) # one entry per connection, if tracked
fi

# ---- readings ----

meminfo() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; } # kB
sockstat_tcp() { awk -v k="$1" '$1 == "TCP:" {for (i = 2; i < NF; i += 2) if ($i == k) print $(i + 1)}' /proc/net/sockstat; }
netstat_ext() { # TcpExt counter
    awk -v k="$1" '$1 == "TcpExt:" {if (!h) {for (i = 2; i <= NF; i++) idx[$i] = i; h = 1} else print $idx[k]}' /proc/net/netstat
}
rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
avail_check() { # aborts (the trap cleans up) when memory runs short
    local avail=$(($(meminfo MemAvailable) / 1024))
    (( avail >= MIN_AVAIL_MIB )) ||
        die "MemAvailable ${avail} MiB is under ${MIN_AVAIL_MIB} MiB: aborting ($1)"
}
# Only with &: the background subshell raises its limits and becomes the
# program, so $! is the program's PID.
limited() {
    if (( $(ulimit -Hn) < NOFILE )); then ulimit -Hn "$NOFILE" || exit 1; fi
    ulimit -Sn "$NOFILE" && exec "$@"
}

# ---- the servers ----

SPIDS=() PORTS=()
for ((s = 0; s < SERVERS; s++)); do
    limited "$SOCKIT" serve --listen 0.0.0.0:0 --workers 2 --quiet 2>"$OUT_DIR/server.$s.log" &
    SPIDS+=($!)
    PIDS+=($!)
done
for ((s = 0; s < SERVERS; s++)); do
    port=
    for ((i = 0; i < 200; i++)); do
        port=$(sed -nE 's/.*listening on 0\.0\.0\.0:([0-9]+) \(tcp.*/\1/p' "$OUT_DIR/server.$s.log" | head -1)
        [[ -n $port ]] && break
        kill -0 "${SPIDS[$s]}" 2>/dev/null || die "server $s exited: $(cat "$OUT_DIR/server.$s.log")"
        sleep 0.05
    done
    [[ -n $port ]] || die "no listening line from server $s in 10 s"
    PORTS+=("$port")
done
log "$SERVERS server(s), pid ${SPIDS[*]} on 0.0.0.0 port ${PORTS[*]}; $NB bench processes for $N connections"

rss_sum() { local p t=0; for p in "$@"; do t=$((t + $(rss_kib "$p"))); done; echo "$t"; }
servers_alive() { local p; for p in "${SPIDS[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
RSS0=$(rss_sum "${SPIDS[@]}")
SLAB0=$(meminfo Slab); SUNR0=$(meminfo SUnreclaim); AVAIL0=$(meminfo MemAvailable)
INUSE0=$(sockstat_tcp inuse); TCPMEM0=$(sockstat_tcp mem)
OVF0=$(netstat_ext ListenOverflows); DROP0=$(netstat_ext ListenDrops)

# ---- the clients ----

BPIDS=()
BPROBE=()
T0=$(now)
for ((b = 0; b < NB; b++)); do
    c=${BCOUNT[$b]}
    p=$((PROBE / NB + (b < PROBE % NB)))
    (( p > c )) && p=$c
    dest=127.0.$((1 + b / 254)).$((1 + b % 254))
    args=(--idle 86400 -c "$c" --timeout "$CONNECT_TIMEOUT" --connect-concurrency "$CONC"
          --no-live --quiet --json)
    (( p > 0 )) && args+=(--probe "$p")
    limited "$SOCKIT" bench "$dest:${PORTS[${BSRV[$b]}]}" "${args[@]}" \
        >"$OUT_DIR/bench.$b.json" 2>"$OUT_DIR/bench.$b.err" &
    BPIDS+=($!)
    PIDS+=($!)
    BPROBE+=("$p")
done

# Fill: sample the TCP sockets in use every second (each connection is two
# sockets here, the client's and the server's) until every bench holds.
SAMPLES=$OUT_DIR/fill.tsv
printf 't_s\ttcp_inuse\tconnections\n' >"$SAMPLES"
holding=0
while :; do
    t=$(now)
    inuse=$(sockstat_tcp inuse)
    printf '%.3f\t%s\t%d\n' "$(echo "$t - $T0" | bc)" "$inuse" $(((inuse - INUSE0) / 2)) >>"$SAMPLES"
    holding=$(grep -l "holding connections" "$OUT_DIR"/bench.*.err 2>/dev/null | wc -l)
    (( holding == NB )) && break
    avail_check "$(((inuse - INUSE0) / 2)) connections, $holding of $NB benches holding"
    servers_alive || die "a server exited while filling: $(tail -n 3 "$OUT_DIR"/server.*.log)"
    for ((b = 0; b < NB; b++)); do
        kill -0 "${BPIDS[$b]}" 2>/dev/null ||
            die "bench $b exited while filling: $(tail -3 "$OUT_DIR/bench.$b.err")"
    done
    (( $(echo "$t - $T0 > $FILL_TIMEOUT" | bc) )) &&
        die "not every bench holds after ${FILL_TIMEOUT} s ($holding of $NB; $(((inuse - INUSE0) / 2)) connections)"
    sleep 1
done
T_FULL=$(now)
FILL_S=$(echo "$T_FULL - $T0" | bc)
log "every bench holds after ${FILL_S} s"

# ---- holding: the figures ----

sleep 2 # let the accept bursts' buffers be given back before reading RSS
avail_check "holding"
RSS1=$(rss_sum "${SPIDS[@]}")
SLAB1=$(meminfo Slab); SUNR1=$(meminfo SUnreclaim); AVAIL1=$(meminfo MemAvailable)
TCPMEM1=$(sockstat_tcp mem)
OVF1=$(netstat_ext ListenOverflows); DROP1=$(netstat_ext ListenDrops)
FDS=0
for p in "${SPIDS[@]}"; do FDS=$((FDS + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 | wc -l))); done
# The servers' side of each connection: a local port that is a server's.
EST=$(timeout 300 ss -Htn state established |
      awk -v ports="${PORTS[*]}" 'BEGIN {split(ports, a, " "); for (i in a) mine[a[i]] = 1}
           {n = split($3, f, ":"); if (f[n] in mine) c++} END {print c + 0}')
BRSS=$(rss_sum "${BPIDS[@]}")
log "server(s) hold $EST established connections ($FDS fds), RSS ${RSS0} -> ${RSS1} KiB"

# ---- the probe: one round trip on PROBE of the held connections ----

for p in "${BPIDS[@]}"; do kill -USR1 "$p"; done
T_PROBE=$(now)
answered=0
for ((i = 0; i < (CONNECT_TIMEOUT + 30) * 10; i++)); do
    done_b=$(grep -l "probe: " "$OUT_DIR"/bench.*.err 2>/dev/null | wc -l)
    (( done_b == NB )) && break
    sleep 0.1
done
(( done_b == NB )) || die "only $done_b of $NB benches finished their probe in $((CONNECT_TIMEOUT + 30)) s"
PROBE_S=$(echo "$(now) - $T_PROBE" | bc)
for ((b = 0; b < NB; b++)); do
    r=$(sed -nE 's/.*probe: ([0-9]+) of ([0-9]+) answered.*/\1/p' "$OUT_DIR/bench.$b.err")
    answered=$((answered + ${r:-0}))
done
log "probe: $answered of $PROBE answered (${PROBE_S} s for all benches)"

# ---- SIGTERM of the full server(s) ----

EST_AT_TERM=$(sockstat_tcp inuse)
T_TERM=$(now)
for p in "${SPIDS[@]}"; do kill -TERM "$p"; done
( sleep "$TERM_TIMEOUT"; kill -KILL "${SPIDS[@]}" 2>/dev/null ) &
KILLER=$!
SRC=0
for p in "${SPIDS[@]}"; do
    wait "$p"
    rc=$?
    (( rc > SRC )) && SRC=$rc
done
T_EXIT=$(now)
kill "$KILLER" 2>/dev/null; wait "$KILLER" 2>/dev/null
TERM_S=$(echo "$T_EXIT - $T_TERM" | bc)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
# One summary line per server, summed.
SUMMARY=$(for ((s = 0; s < SERVERS; s++)); do grep "summary:" "$OUT_DIR/server.$s.log" | tail -1; done)
NSUM=$(grep -c "summary:" <<<"$SUMMARY")
msgs=$(sed -nE 's/.*messages=([0-9]+).*/\1/p' <<<"$SUMMARY" | awk '{t += $1} END {print t + 0}')
conns=$(sed -nE 's/.*connections=([0-9]+).*/\1/p' <<<"$SUMMARY" | awk '{t += $1} END {print t + 0}')
log "server(s) exit status (highest) $SRC after ${TERM_S} s; $NSUM summary lines: connections=$conns messages=$msgs"
for p in "${BPIDS[@]}"; do stop_pid "$p"; done

# ---- report ----

rates=$(awk -F'\t' 'NR > 2 {d = $3 - c; dt = $1 - t; if (dt > 0) print d / dt} NR > 1 {c = $3; t = $1}' "$SAMPLES" | sort -n)
rate_max=$(tail -1 <<<"$rates")
rate_med=$(awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}' <<<"$rates")
ok=1
verdict() { # name pass(1/0) detail
    if (( $2 )); then
        printf '  %-46s ok\n' "$1"
    else
        printf '  %-46s MISSED (%s)\n' "$1" "$3"
        ok=0
    fi
}

per_conn() { echo $(($1 * 1024 / N)); } # KiB delta -> bytes per connection
if (( SERVERS == 1 )); then
    who="sockit serve"
    cmd_srv="$SOCKIT serve --listen 0.0.0.0:${PORTS[0]} --workers 2 --quiet"
else
    who="$SERVERS sockit serve processes"
    cmd_srv="$SERVERS x $SOCKIT serve --listen 0.0.0.0:0 --workers 2 --quiet (ports ${PORTS[0]}...)"
fi
cat <<EOF

$who holding $N idle connections${FD_BOUND:+ (asked $N_ASKED; bounded by $FD_BOUND)}
  machine           $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs, $(($(meminfo MemTotal) / 1048576)) GiB; load average $LOAD0 at start, $LOAD1 at end
  command           N=$N_ASKED SERVERS=$SERVERS PER=$PER PROBE=$PROBE bench/million.sh
  servers           $cmd_srv
  clients           $NB x sockit bench 127.0.X.Y:PORT --idle 86400 -c ${BCOUNT[0]} --probe $((PROBE / NB)) --timeout $CONNECT_TIMEOUT --no-live --quiet --json (one destination each)
  established       $EST at the server side ($FDS fds open in the server(s))
  fill              ${FILL_S} s: $(echo "$N / $FILL_S" | bc) connections/s on average; 1-s samples median $(printf '%.0f' "${rate_med:-0}"), max $(printf '%.0f' "${rate_max:-0}")
  listen drops      ListenOverflows +$((OVF1 - OVF0)), ListenDrops +$((DROP1 - DROP0))
  server RSS        ${RSS0} KiB before, ${RSS1} KiB holding: $(per_conn $((RSS1 - RSS0))) bytes per connection
  kernel memory     Slab +$(((SLAB1 - SLAB0) / 1024)) MiB ($(per_conn $((SLAB1 - SLAB0))) bytes per connection, both ends), SUnreclaim +$(((SUNR1 - SUNR0) / 1024)) MiB; sockstat TCP mem ${TCPMEM0} -> ${TCPMEM1} pages
  memory available  $((AVAIL0 / 1024)) -> $((AVAIL1 / 1024)) MiB ($(per_conn $((AVAIL0 - AVAIL1))) bytes per connection, everything); benches' RSS $((BRSS / 1024)) MiB in all
  probe             $answered of $PROBE answered, ${PROBE_S} s
  SIGTERM           exit status $SRC, all exited ${TERM_S} s after the signal (${EST_AT_TERM} TCP sockets in use then)
  summary           connections=$conns messages=$msgs ($NSUM summary lines)
EOF
echo "verdicts:"
verdict "all $N_ASKED held at the server side" $((EST == N_ASKED)) "$EST${FD_BOUND:+; bounded by the open-file limit}"
verdict "server RSS <= 256 bytes per connection" $(($(per_conn $((RSS1 - RSS0))) <= 256)) \
    "$(per_conn $((RSS1 - RSS0))) bytes"
verdict "probe: every one answered" $((answered == PROBE)) "$answered of $PROBE"
verdict "SIGTERM: exit 0 with a summary line" $((SRC == 0 && NSUM == SERVERS)) "status $SRC, $NSUM summary lines"
verdict "SIGTERM: exit within ${GRACE_S} s" "$(echo "$TERM_S <= $GRACE_S" | bc)" "${TERM_S} s"
verdict "summary: connections >= N, messages = probe" $((conns >= N && msgs == PROBE)) \
    "connections=$conns messages=$msgs"
(( ok )) || exit 1
