# shellcheck shell=bash
# Server PIDs and ports live in PID_<name> / PORT_<name>, set by compare.sh's start().
# shellcheck disable=SC2154
# bench/tls_compare.sh: issue 9's TLS comparison, sourced by bench/compare.sh
# (its helpers: start, stop, bench, rotate, idle_rss, free_port, log), which
# runs it after the plain sections, or alone with `TLS_ONLY=1 bench/compare.sh`.
#
# One ECDSA P-256 certificate, made here, for every server: sockit serve
# --tls-*, nginx's stream module, HAProxy TLS termination (mode tcp) and a
# Node.js tls greeting server. nginx (its `return` server aside) and HAProxy
# proxy to one plain backend, the bare epoll server, pinned to the server CPU
# as they are; its CPU time and RSS are counted with theirs.
# Results: T1 full handshakes, T2 resumed handshakes, T3 50 connections
# request/reply (and sockit's plain figure from the same rounds), T4 RSS per
# idle TLS session, T.speed `openssl speed` on the server CPU.

TLS_IDLE_CONNS=${TLS_IDLE_CONNS:-2000}
TLS_SERVERS="sockit nginx haproxy node"
TLS=$WORK/tls
mkdir -p "$TLS"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$TLS/key.pem" -out "$TLS/cert.pem" 2>"$TLS/openssl.err" || {
    cat "$TLS/openssl.err" >&2
    exit 1
}
cat "$TLS/cert.pem" "$TLS/key.pem" >"$TLS/bundle.pem" # HAProxy's crt: cert and key in one PEM
TLS_GEN=(--tls --cacert "$TLS/cert.pem")

# nginx_conf PROXY_PORT BACKEND_PORT RETURN_PORT: one process (master_process
# off: the process started is the one that serves), worker_processes 1.
nginx_conf() {
    local conf=$TLS/nginx.$1.conf
    cat >"$conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((2 * TLS_IDLE_CONNS + 100));
pid $TLS/nginx.$1.pid;
error_log $TLS/nginx.$1.error.log warn;
events { worker_connections $((2 * TLS_IDLE_CONNS + 100)); }
stream {
    ssl_protocols TLSv1.2 TLSv1.3; # nginx 1.22's default stops at TLS 1.2
    ssl_certificate $TLS/cert.pem;
    ssl_certificate_key $TLS/key.pem;
    server { listen 127.0.0.1:$1 ssl; proxy_pass 127.0.0.1:$2; }
    server { listen 127.0.0.1:$3 ssl; return "Welcome!"; }
}
CONF
    echo "$conf"
}

haproxy_conf() { # PORT BACKEND_PORT
    local conf=$TLS/haproxy.$1.cfg
    cat >"$conf" <<CONF
global
    nbthread 1
    maxconn $((TLS_IDLE_CONNS + 100))
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend tls
    bind 127.0.0.1:$1 ssl crt $TLS/bundle.pem
    default_backend plain
backend plain
    server plain 127.0.0.1:$2
CONF
    echo "$conf"
}

# start_tls NAME SUFFIX BACKEND_PORT: starts server NAME as NAME_SUFFIX (nginx
# also NAME_SUFFIX_ret, its `return` server) and sets TPIDS, the PIDs whose
# CPU and RSS count for it (with the backend's where it proxies).
start_tls() {
    local name=$1 tag=$1_$2 bport=$3 p q
    p=$(free_port)
    case $name in
    sockit)
        start "$tag" "$p" "$SOCKIT" serve --listen "127.0.0.1:$p" --workers 1 --quiet \
            --tls-cert "$TLS/cert.pem" --tls-key "$TLS/key.pem" || exit 1
        TPIDS=$SPID ;;
    plain)
        start "$tag" "$p" "$SOCKIT" serve --listen "127.0.0.1:$p" --workers 1 --quiet || exit 1
        TPIDS=$SPID ;;
    nginx)
        q=$(free_port)
        start "$tag" "$p" nginx -p "$TLS" -e "$TLS/nginx.$p.stderr.log" \
            -c "$(nginx_conf "$p" "$bport" "$q")" -g 'daemon off;' || exit 1
        eval "PORT_${tag}_ret=$q"
        TPIDS="$SPID $PID_backend" ;;
    haproxy)
        start "$tag" "$p" haproxy -db -f "$(haproxy_conf "$p" "$bport")" || exit 1
        TPIDS="$SPID $PID_backend" ;;
    node)
        start "$tag" "$p" node "$ROOT/bench/peers/node_tls_server.js" "$p" "$TLS/cert.pem" \
            "$TLS/key.pem" || exit 1
        TPIDS=$SPID ;;
    esac
    eval "TPIDS_$tag=\$TPIDS"
}

start_backend() {
    local p
    p=$(free_port)
    start backend "$p" "$WORK/epoll_server" "$p" chunk || exit 1
}

log "TLS: openssl speed on CPU $SRV_CPU"
echo "taskset -c $SRV_CPU openssl speed -seconds 1 ecdsap256 ecdhp256" >"$RES/T.speed.cmd"
taskset -c "$SRV_CPU" openssl speed -seconds 1 ecdsap256 ecdhp256 >"$RES/T.speed" 2>/dev/null

log "TLS: starting servers on CPU $SRV_CPU"
start_backend
for s in $TLS_SERVERS plain; do start_tls "$s" rr "$PORT_backend"; done
# What each server negotiates with a default client (T.proto.NAME: "TLSv1.3, CIPHER, GROUP").
for s in $TLS_SERVERS; do
    port_var=PORT_${s}_rr
    openssl s_client -connect "127.0.0.1:${!port_var}" -CAfile "$TLS/cert.pem" </dev/null 2>/dev/null |
        awk '/^Server Temp Key:/ {g = $4} /^New,/ {v = $2 " " $5} END {print v ", " g}' \
            >"$RES/T.proto.$s"
done

# T1 full handshakes, T2 resumed, T3 request/reply; interleaved, rotated.
for r in $(seq "$RUNS"); do
    for t in T1 T2; do
        extra=()
        [[ $t == T2 ]] && extra=(--tls-resume)
        # shellcheck disable=SC2086
        for s in $(rotate "$r" $TLS_SERVERS); do
            port_var=PORT_${s}_rr pids_var=TPIDS_${s}_rr
            [[ $s == nginx ]] && port_var=PORT_nginx_rr_ret
            log "run $r: TLS $s, $t handshakes ${extra[*]}"
            bench "$RES/$t.$s.$r" "${!pids_var}" "127.0.0.1:${!port_var}" --connect -c 50 \
                -d "$DUR" --warmup "$WARM" "${TLS_GEN[@]}" "${extra[@]}"
        done
    done
    # shellcheck disable=SC2086
    for s in $(rotate "$r" $TLS_SERVERS plain); do
        port_var=PORT_${s}_rr pids_var=TPIDS_${s}_rr
        tls=("${TLS_GEN[@]}")
        [[ $s == plain ]] && tls=()
        log "run $r: TLS $s, 50 connections request/reply"
        bench "$RES/T3.$s.$r" "${!pids_var}" "127.0.0.1:${!port_var}" -c 50 -d "$DUR" \
            --warmup "$WARM" "${tls[@]}"
    done
done
for s in $TLS_SERVERS plain; do pid_var=PID_${s}_rr && stop "${!pid_var}"; done
stop "$PID_backend"

# T4: RSS per idle TLS session (greeted), each server (and backend) fresh.
for s in $TLS_SERVERS; do
    start_backend
    start_tls "$s" idle "$PORT_backend"
    log "idle: TLS $s, $TLS_IDLE_CONNS sessions"
    port_var=PORT_${s}_idle pid_var=PID_${s}_idle
    idle_rss "$RES/T4.$s" "$TPIDS" "${!port_var}" "$TLS_IDLE_CONNS" "${TLS_GEN[@]}"
    stop "${!pid_var}"
    stop "$PID_backend"
done
