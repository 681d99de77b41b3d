#!/usr/bin/env bash
# Compares `sockit fetch` with curl and wget (and, with OLD, another sockit
# build): wall time (hyperfine, median)
# and peak RSS (/usr/bin/time %M, median) for a 1 KiB and a 1 GiB file from a
# local nginx, and for 1,000 files of 1 KiB fetched in one run ("many":
# `fetch -i LIST`, 8 at once by default, no --parallel flag, against curl
# --parallel --parallel-max 8, wget -i and aria2c -j 8). Three schemes, each row
# comparing the same protocol: "http" (HTTP/1.1), "https" (HTTP/1.1 over TLS:
# an nginx port without http2, sockit and curl with --http1.1) and "h2" (HTTP/2
# over TLS: an `ssl http2` port, sockit's default against curl --http2; wget
# and aria2c have no HTTP/2, so they are on the http and https rows only; in
# "many" both sockit and curl multiplex the transfers as streams of one
# connection). Every tool writes to a fresh file on the
# same disk (removed before each run), verifies certificates against the same
# test CA, and runs the same number of times.
#
#   bench/fetch_compare.sh              # 1 KiB: 40 runs, 1 GiB: 5 runs, in 6 rotating rounds
#   RUNS_SMALL=100 RUNS_BIG=7 bench/fetch_compare.sh
#   SIZES=1k bench/fetch_compare.sh     # only the small file (sizes: 1k, 256m, 1g...)
#   SIZES=many RUNS_MANY=10 bench/fetch_compare.sh   # only the 1,000 files
#   SCHEMES=h2 bench/fetch_compare.sh   # only HTTP/2 (schemes: http, https, h2)
#   OLD=/tmp/main/build/sockit bench/fetch_compare.sh   # before/after: an "old" row too
#   RT=1 bench/fetch_compare.sh         # root: nginx and the timed runs SCHED_FIFO, so
#                                       # other jobs of a busy machine do not time the runs
#   FLOOR=1 SIZES="1k many" SCHEMES="http https" bench/fetch_compare.sh
#       # floors (docs/fetch.md "Floors"): a "floor" row on the http and https rows,
#       # bench/fetch_floor.c (the least an HTTP/1.1 client does, each file written
#       # atomically as sockit does; for "many" 8 connections on one thread's epoll
#       # loop as sockit, and "floor-t": one blocking thread each); and,
#       # for "many", nginx alone under wrk -t1 -c8 (keep-alive, no files) and
#       # the creation of the files alone in $TMPDIR (temporary name + rename,
#       # and plain O_EXCL files)
#
# Every row also gives the tool's CPU time per run (user + system, hyperfine's
# mean) and nginx's (/proc/PID/schedstat over the RSS runs, one at a time).
#
# Needs nginx, openssl, curl, wget, aria2c, hyperfine, GNU time (scripts/deps.sh bench);
# FLOOR=1 also cc, the OpenSSL headers and wrk.
# Uses about 2 GiB in $TMPDIR (the served file and one download; "many" keeps
# each run's 1,000 files until the end: about 1 GiB more); cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS_SMALL=${RUNS_SMALL:-40}
RUNS_BIG=${RUNS_BIG:-5}
RUNS_MANY=${RUNS_MANY:-10}
MANY=${MANY:-1000} # files in the "many" case
ROUNDS=${ROUNDS:-6} # wall-time runs are split into this many interleaved rounds
SIZES=${SIZES:-"1k 1g many"}
SCHEMES=${SCHEMES:-"http https h2"}
OLD=${OLD:-}
RT=${RT:-0}
FLOOR=${FLOOR:-0}
TOOLS="sockit${OLD:+ old} curl wget"
[[ $FLOOR == 1 ]] && TOOLS="$TOOLS floor"
FIFO=()
if [[ $RT == 1 ]]; then FIFO=(chrt -f 50); fi
PY=/usr/bin/python3

for tool in nginx openssl curl wget aria2c hyperfine /usr/bin/time $([[ $FLOOR == 1 ]] && echo cc wrk); do
    command -v "$tool" >/dev/null || { echo "missing $tool: scripts/deps.sh bench" >&2; exit 1; }
done
if [[ -z ${SOCKIT:-} ]]; then
    make -s -j2 build/sockit >/dev/null
    SOCKIT=$PWD/build/sockit
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sockit-bench.XXXXXX")
nginx_pid=
cleanup() {
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid"
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT


# A CA and a server certificate for localhost.
(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key \
        -out srv.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >srv.ext
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem \
        -days 2 -extfile srv.ext 2>/dev/null
)
CA=$work/ca.pem
FLOORBIN=$work/fetch_floor
if [[ $FLOOR == 1 ]]; then
    cc -std=c11 -O2 -pthread -o "$FLOORBIN" bench/fetch_floor.c -lssl -lcrypto
fi

mkdir -p "$work/www" "$work/out"
for size in $SIZES; do
    [[ $size == many ]] || head -c "${size^^}" /dev/urandom >"$work/www/$size.bin"
done

# Three free ports, bound at once so that they differ.
read -r HTTP HTTPS H2 < <($PY -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
cat >"$work/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/t1; proxy_temp_path $work/t2; fastcgi_temp_path $work/t3;
    uwsgi_temp_path $work/t4; scgi_temp_path $work/t5;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:$HTTP;
        listen 127.0.0.1:$HTTPS ssl;
        listen 127.0.0.1:$H2 ssl http2;
        ssl_certificate $work/srv.pem;
        ssl_certificate_key $work/srv.key;
        root $work/www;
    }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" </dev/null >/dev/null 2>"$work/nginx.stderr" &
nginx_pid=$!
if [[ $RT == 1 ]]; then chrt -f -p 50 "$nginx_pid"; fi
for port in $HTTP $HTTPS $H2; do
    for i in $(seq 100); do
        if $PY -c "import socket; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null; then
            break
        fi
        [[ $i == 100 ]] && { echo "nginx did not start" >&2; cat "$work/nginx.stderr" >&2; exit 1; }
        sleep 0.05
    done
done

# Each TLS port speaks what its rows say (ALPN): h2 on $H2, HTTP/1.1 only on $HTTPS.
[[ $(curl -s --http2 --cacert "$CA" -o /dev/null -w '%{http_version}' "https://localhost:$H2/") == 2 &&
    $(curl -s --http2 --cacert "$CA" -o /dev/null -w '%{http_version}' "https://localhost:$HTTPS/") == 1.1 ]] ||
    { echo "nginx: wrong protocol on a TLS port" >&2; exit 1; }
# ... and sockit takes h2 there by default, HTTP/1.1 with --http1.1.
sockit_proto() { "$SOCKIT" fetch -v "$@" -o /dev/null --cacert "$CA" 2>&1 | grep -c 'using HTTP/2' || true; }
[[ $(sockit_proto "https://localhost:$H2/") == 1 && $(sockit_proto --http1.1 "https://localhost:$H2/") == 0 ]] ||
    { echo "sockit: not HTTP/2 by default, or HTTP/2 despite --http1.1" >&2; exit 1; }
out=$work/out/file
base_for() { # scheme -> the URL of the server's root
    case $1 in
    http) echo "http://127.0.0.1:$HTTP" ;;
    https) echo "https://localhost:$HTTPS" ;;
    h2) echo "https://localhost:$H2" ;;
    esac
}
proto_for() { # tool scheme -> the flags that pin the row's protocol
    case $1:$2 in
    sockit:https | old:https | curl:https) echo " --http1.1" ;;
    curl:h2) echo " --http2" ;;
    esac
}
outd=$work/out/many
prepare_many="bash -c '[[ ! -d $outd ]] || mv $outd \$(mktemp -d -p $work/aside); mkdir -p $outd'"
if [[ " $SIZES " == *" many "* ]]; then
    mkdir -p "$work/www/many"
    for i in $(seq -f %04g 0 $((MANY - 1))); do head -c 1024 /dev/urandom >"$work/www/many/f$i.bin"; done
    for scheme in $SCHEMES; do
        base=$(base_for "$scheme")
        for f in "$work"/www/many/*.bin; do echo "$base/many/${f##*/}"; done >"$work/list.$scheme"
        sed 's/.*/url = "&"/' "$work/list.$scheme" >"$work/curl.$scheme"
    done
fi
many_for() { # tool scheme -> the command line fetching every file of the list into $outd
    local l=$work/list.$2 p
    p=$(proto_for "$1" "$2")
    case $1 in
    sockit) echo "$SOCKIT fetch -s$p -i $l --output-dir $outd --cacert $CA" ;;
    old) echo "$OLD fetch -s$p -i $l --output-dir $outd --cacert $CA" ;;
    curl) echo "curl -s -f$p --parallel --parallel-max 8 --remote-name-all --output-dir $outd --cacert $CA -K $work/curl.$2" ;;
    wget) echo "wget -q -i $l -P $outd --ca-certificate=$CA" ;;
    floor) echo "$FLOORBIN -e -j 8 -a -k $CA -o $outd $l" ;;
    floor-t) echo "$FLOORBIN -j 8 -a -k $CA -o $outd $l" ;;
    aria2c) echo "aria2c -q -j 8 -i $l -d $outd --ca-certificate=$CA" ;;
    esac
}
cmd_for() {
    [[ $3 == many ]] && { many_for "$1" "$2"; return; } # tool scheme size -> the command line
    local url p
    url="$(base_for "$2")/$3.bin"
    p=$(proto_for "$1" "$2")
    case $1 in
    sockit) echo "$SOCKIT fetch -s$p $url -o $out --cacert $CA" ;;
    old) echo "$OLD fetch -s$p $url -o $out --cacert $CA" ;;
    curl) echo "curl -s -f$p $url -o $out --cacert $CA" ;;
    wget) echo "wget -q $url -O $out --ca-certificate=$CA" ;;
    floor) echo "$url" >"$work/one.$2.$3"; echo "$FLOORBIN -a -k $CA -O $out $work/one.$2.$3" ;;
    esac
}

results=$work/results.tsv
: >"$results"
echo "sockit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(curl --version | head -1 | cut -d' ' -f1-2);" \
    "$(wget --version | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3); $(openssl version | cut -d' ' -f1-2)"
echo "runs: 1 KiB x $RUNS_SMALL, larger x $RUNS_BIG, $MANY files x $RUNS_MANY (medians); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)${OLD:+; old = $OLD}${FIFO:+; SCHED_FIFO}"
for size in $SIZES; do
    runs=$RUNS_SMALL
    warm=5
    tools=$TOOLS
    prepare="rm -f $out"
    if [[ $size == many ]]; then
        # The last run's files are moved aside, not removed, until the end: on
        # ext4 each new inode is checked against the recently deleted ones
        # (find_inode_bit -> recently_deleted, minutes while their blocks are
        # dirty), so after a removal the creation of 1,000 files costs more
        # the more files were removed before it, and whichever tool ran later
        # in a round paid for the others' removals (2x and more).
        mkdir -p "$work/aside"
        runs=$RUNS_MANY; warm=1; tools="$TOOLS aria2c"
        [[ $FLOOR == 1 ]] && tools="$tools floor-t"
        prepare=$prepare_many
    elif [[ $size != 1k ]]; then
        runs=$RUNS_BIG; warm=1; cat "$work/www/$size.bin" >/dev/null
    fi
    for scheme in $SCHEMES; do
        stools=$tools
        # wget, aria2c and the floor: no HTTP/2
        [[ $scheme == h2 ]] && stools="sockit${OLD:+ old} curl"
        cmds=()
        for tool in $stools; do cmds+=("$(cmd_for $tool $scheme $size)"); done
        # Correctness first: every tool must produce the served bytes.
        for c in "${cmds[@]}"; do
            eval "$prepare"
            $c 2>"$work/stderr" || { echo "failed: $c" >&2; cat "$work/stderr" >&2; exit 1; }
            if [[ $size == many ]]; then
                diff -rq "$outd" "$work/www/many" >/dev/null || { echo "wrong output from: $c" >&2; exit 1; }
            else
                cmp -s "$out" "$work/www/$size.bin" || { echo "wrong output from: $c" >&2; exit 1; }
            fi
        done
        # Wall time: hyperfine in rounds, the tools' order rotating each round, so a
        # change in background load hits every tool alike; medians over all rounds.
        rounds=$ROUNDS
        (( rounds > runs )) && rounds=$runs
        per=$(( (runs + rounds - 1) / rounds ))
        for r in $(seq "$rounds"); do
            k=$((r % ${#cmds[@]}))
            rot=("${cmds[@]:$k}" "${cmds[@]:0:$k}")
            "${FIFO[@]}" hyperfine -N --style none --warmup "$warm" --runs "$per" --prepare "$prepare" \
                --export-json "$work/h.$r.json" "${rot[@]}" >"$work/hyperfine.out" 2>&1 ||
                { echo "hyperfine failed ($size $scheme):" >&2; cat "$work/hyperfine.out" >&2; exit 1; }
        done
        # Peak RSS: median of the same number of runs; nginx's CPU time over them.
        for tool in $stools; do
            c=$(cmd_for $tool $scheme $size)
            rss=()
            ngx_ns=0
            for _ in $(seq "$runs"); do
                eval "$prepare"
                ngx0=$(cut -d' ' -f1 "/proc/$nginx_pid/schedstat")
                rss+=("$(/usr/bin/time -f %M $c 2>&1 >/dev/null | tail -1)")
                ngx_ns=$((ngx_ns + $(cut -d' ' -f1 "/proc/$nginx_pid/schedstat") - ngx0))
            done
            med_rss=$(printf '%s\n' "${rss[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
            read -r med_ms cpu_ms < <($PY -c "import glob, json, statistics, sys
rs = [r for f in glob.glob('$work/h.*.json') for r in json.load(open(f))['results']
      if r['command'] == sys.argv[1]]
times = [t for r in rs for t in r['times']]
print('%.2f %.2f' % (1000 * statistics.median(times),
                     1000 * statistics.mean(r['user'] + r['system'] for r in rs)))" "$c")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$scheme" "$tool" "$med_ms" "$med_rss" \
                "$(awk "BEGIN {printf \"%.2f\", $ngx_ns / $runs / 1e6}")" "$cpu_ms" >>"$results"
        done
        rm -f "$out" "$work"/h.*.json
    done
done

# The floors' parts measured alone (FLOOR=1, "many"): nginx under wrk (8
# keep-alive connections, one thread, the bodies dropped), and the creation of
# the files without any network.
if [[ $FLOOR == 1 && " $SIZES " == *" many "* ]]; then
    cat >"$work/rotate.lua" <<LUA
local i = 0
request = function()
  i = i % $MANY + 1
  return wrk.format("GET", string.format("/many/f%04d.bin", i - 1))
end
LUA
    for scheme in $SCHEMES; do
        [[ $scheme == h2 ]] && continue
        ngx0=$(cut -d' ' -f1 "/proc/$nginx_pid/schedstat")
        wrk -t1 -c8 -d3s -s "$work/rotate.lua" "$(base_for "$scheme")/" >"$work/wrk.out"
        ngx_ns=$(( $(cut -d' ' -f1 "/proc/$nginx_pid/schedstat") - ngx0 ))
        $PY - "$work/wrk.out" "$ngx_ns" "$MANY" "$scheme" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
many = int(sys.argv[3])
print(f"wrk -t1 -c8 {sys.argv[4]}: {rps:.0f} requests/s = {1000 * many / rps:.2f} ms per {many}; "
      f"nginx CPU {int(sys.argv[2]) / n * many / 1e6:.2f} ms per {many}")
PY
    done
    for a in "-a" ""; do
        c="$FLOORBIN $a -f -o $outd $work/list.${SCHEMES%% *}"
        hyperfine -N --style none --warmup 1 --runs "$RUNS_MANY" --prepare "$prepare_many" \
            --export-json "$work/files.json" "$c" >"$work/hyperfine.out" 2>&1 ||
            { echo "hyperfine failed (files):" >&2; cat "$work/hyperfine.out" >&2; exit 1; }
        $PY - "$work/files.json" "$MANY" "${a:+atomically (temporary name + rename)}" "${TMPDIR:-/tmp}" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{sys.argv[2]} files of 1 KiB alone, {sys.argv[3] or 'O_EXCL'}, in {sys.argv[4]}: "
      f"{1000 * statistics.median(r['times']):.2f} ms (user {1000 * r['user']:.2f}, "
      f"system {1000 * r['system']:.2f})")
PY
    done
fi

echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
$PY - "$results" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
curl = {(r[0], r[1]): (float(r[3]), int(r[4])) for r in rows if r[2] == "curl"}
print(f"{'file':5} {'scheme':6} {'tool':7} {'median ms':>10} {'x curl':>7} {'peak RSS KiB':>13} {'x curl':>7}"
      f" {'CPU ms':>7} {'nginx ms':>9}")
for size, scheme, tool, ms, rss, ngx, cpu in rows:
    cms, crss = curl[(size, scheme)]
    print(f"{size:5} {scheme:6} {tool:7} {float(ms):10.2f} {float(ms)/cms:7.2f} {int(rss):13d} "
          f"{int(rss)/crss:7.2f} {float(cpu):7.2f} {float(ngx):9.2f}")
PY
