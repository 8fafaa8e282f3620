#!/usr/bin/env bash
# Sidecar data-plane benchmark: the two-hop shape
#   wrk -> client-side proxy -> mTLS (TLS 1.3, client cert) -> server-side proxy -> backend
# on 127.0.0.1 for meshward (two sidecars: a localPort service listener on the client side,
# STRICT mTLS + an ALLOW policy on the server side), haproxy<->haproxy and nginx<->nginx,
# same certificates, same backend (nginx, 1 worker, 100-byte body), one run.
#   bench/run_sidecar.sh [BUILD_DIR]
# A third scenario opens a new connection per request (wrk -H "Connection: close", CLOSECONNS
# connections, default 10), so each request pays a new mTLS connection between the proxies:
# this is where meshward's TLS 1.3 session resumption shows (its RESULT line gives the client
# sidecar's full and resumed handshake counts; haproxy's server side has no-tls-tickets,
# nginx's ssl_session_tickets off, both pool server connections instead).
# Environment: DURATION (s, default 10), CONNS (default 50), BIGCONNS (default 1000),
#   ROUNDS (default 3; the table shows the median round of each proxy by req/s),
#   THREADS (wrk threads, default 2), ONLY ("meshward haproxy nginx" subset), KEEP=1 keeps the dir,
#   MESHWARD (binary, default BUILD_DIR/meshward),
#   QUIET (cores of foreign CPU tolerated before a measurement, default 0.15; waits up to 30 s),
#   MW_PROTOCOL (meshward's outbound service: http, pooled mTLS connections, default; or tcp, a
#   byte relay with one mTLS connection per client connection).
# Reports req/s, p50/p99 (wrk --latency), CPU per request (utime+stime of both proxy processes
# from /proc/PID/stat), RSS (and private memory) of each proxy idle, at CONNS and at BIGCONNS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
BIGCONNS=${BIGCONNS:-1000}
CLOSECONNS=${CLOSECONNS:-10}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
QUIET=${QUIET:-0.15}
MW_PROTOCOL=${MW_PROTOCOL:-http} # the client side's service: http (pooled, parsed) or tcp (relayed)
ONLY=${ONLY:-meshward haproxy nginx}
MESHWARD=${MESHWARD:-$build/meshward}
[ -x "$MESHWARD" ] || { echo "run_sidecar: no $MESHWARD (build first)"; exit 1; }
MESHWARD=$(cd "$(dirname "$MESHWARD")" && pwd)/$(basename "$MESHWARD")

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || need+=(haproxy)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((BIGCONNS * 4 + 256)) ]; then
    echo "run_sidecar: ulimit -n $(ulimit -n) is too low for $BIGCONNS connections"
    exit 1
fi

W=$(mktemp -d /tmp/mw-bench-sidecar.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT
stop() { # pid...
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

BASE=$((21000 + ($$ % 700) * 16)) # below the ephemeral range (32768-)
BACK=$BASE
M_SRV=$((BASE + 1)) M_CLI=$((BASE + 2)) M_SADM=$((BASE + 3)) M_CADM=$((BASE + 4)) M_OUT=$((BASE + 5))
H_SRV=$((BASE + 6)) H_CLI=$((BASE + 7))
N_SRV=$((BASE + 8)) N_CLI=$((BASE + 9))

# ---------------------------------------------------------------- certificates (SPIFFE SVIDs)
cd "$W"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/O=meshward bench/CN=ca" -days 2 -out ca.crt \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
svid() { # name spiffe-id extra-san
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
    chmod 600 "$1.key"
    openssl req -new -key "$1.key" -subj "/O=meshward bench" -out "$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:%s%s\n' "$2" "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    cat "$1.crt" "$1.key" >"$1.pem"
}
# The server SVID also names localhost, so haproxy/nginx can verify the server by name.
svid server spiffe://cluster.local/ns/bench/sa/server ",DNS:localhost,IP:127.0.0.1"
svid client spiffe://cluster.local/ns/bench/sa/client ""

# ---------------------------------------------------------------- backend (shared)
body=$(printf '%0100d' 0 | tr 0 x)
mkdir -p back
cat >back/nginx.conf <<EOF
worker_processes 1;
daemon off;
pid $W/back/nginx.pid;
error_log $W/back/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$BACK backlog=4096;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
EOF

# ---------------------------------------------------------------- meshward
cat >policy.yaml <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: bench}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: bench}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/bench/sa/client"]}}]
    to: [{operation: {ports: ["8080"], methods: ["GET"]}}]
EOF
cat >m-server.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: server}
spec:
  workload: {namespace: bench, serviceAccount: server, labels: {app: server}}
  identity:
    certificate: server.crt
    key: server.key
    bundles: [{trustDomain: cluster.local, file: ca.crt}]
  inbound:
    address: 127.0.0.1
    ports:
    - {port: 8080, protocol: http, listenPort: $M_SRV, appPort: $BACK}
  policies: [policy.yaml]
  admin: {port: $M_SADM}
EOF
cat >m-client.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: client}
spec:
  workload: {namespace: bench, serviceAccount: client, labels: {app: client}}
  identity:
    certificate: client.crt
    key: client.key
    bundles: [{trustDomain: cluster.local, file: ca.crt}]
  outbound:
    port: $M_OUT
    services:
    - {name: server.bench, port: 8080, protocol: $MW_PROTOCOL, endpoints: ["127.0.0.1:$M_SRV"], spiffeId: "spiffe://cluster.local/ns/bench/sa/server", localPort: $M_CLI}
  admin: {port: $M_CADM}
EOF

# ---------------------------------------------------------------- haproxy (1 thread each)
for side in server client; do
    cat >h-$side.cfg <<EOF
global
  nbthread 1
  maxconn 8000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
EOF
done
cat >>h-server.cfg <<EOF
frontend mtls
  bind 127.0.0.1:$H_SRV ssl crt $W/server.pem ca-file $W/ca.crt verify required no-tls-tickets
  default_backend be
backend be
  server s1 127.0.0.1:$BACK
EOF
cat >>h-client.cfg <<EOF
frontend plain
  bind 127.0.0.1:$H_CLI
  default_backend peer
backend peer
  server p1 127.0.0.1:$H_SRV ssl crt $W/client.pem ca-file $W/ca.crt verify required verifyhost localhost sni str(localhost)
EOF

# ---------------------------------------------------------------- nginx (master + 1 worker each)
ngx_head() { # dir
    mkdir -p "$W/$1"
    cat <<EOF
worker_processes 1;
daemon off;
pid $W/$1/nginx.pid;
error_log $W/$1/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
EOF
}
{
    ngx_head n-server
    cat <<EOF
  upstream be { server 127.0.0.1:$BACK; keepalive 1024; }
  server {
    listen 127.0.0.1:$N_SRV ssl backlog=4096;
    ssl_certificate $W/server.crt;
    ssl_certificate_key $W/server.key;
    ssl_protocols TLSv1.3;
    ssl_verify_client on;
    ssl_client_certificate $W/ca.crt;
    ssl_session_tickets off;
    ssl_session_cache off;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
} >n-server.conf
{
    ngx_head n-client
    cat <<EOF
  upstream peer { server 127.0.0.1:$N_SRV; keepalive 1024; }
  server {
    listen 127.0.0.1:$N_CLI backlog=4096;
    location / {
      proxy_pass https://peer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_certificate $W/client.crt;
      proxy_ssl_certificate_key $W/client.key;
      proxy_ssl_trusted_certificate $W/ca.crt;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }
}
EOF
} >n-client.conf

# ---------------------------------------------------------------- helpers
ticks() { # pid... -> utime+stime in clock ticks, summed
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
priv_kb() { awk '/^Private_(Clean|Dirty)/{s += $2} END {print s + 0}' "/proc/$1/smaps_rollup"; }
busy_jiffies() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
HZ=$(getconf CLK_TCK)
to_us() { # "1.23ms" -> 1230
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1;
        printf "%.0f", n * m }'
}
idle_cores() { # machine CPU used during 1 s while nothing of ours runs, in cores
    local b0 b1
    b0=$(busy_jiffies)
    sleep 1
    b1=$(busy_jiffies)
    awk -v b=$((b1 - b0)) -v hz="$HZ" 'BEGIN{printf "%.2f", b / hz}'
}
wait_quiet() { # -> FOREIGN: foreign cores seen last; waits up to 30 s for < QUIET
    for _ in $(seq 1 30); do
        FOREIGN=$(idle_cores)
        awk -v f="$FOREIGN" -v q="$QUIET" 'BEGIN{exit !(f < q)}' && return 0
    done
    echo "   (machine busy: $FOREIGN cores of foreign CPU; measuring anyway)"
}
wait_port() { # port
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "run_sidecar: nothing listens on $1"
    return 1
}
children() { # pid -> the pid of its first child (nginx worker)
    local c=""
    for _ in $(seq 1 50); do
        c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
        [ -n "$c" ] && break
        sleep 0.05
    done
    echo "$c"
}

"$NGINX" -p "$W/back" -c "$W/back/nginx.conf" -e "$W/back/error.log" &
BACKPID=$!
PIDS+=("$BACKPID")
BACKW=$(children "$BACKPID")
wait_port "$BACK"

start_pair() { # name -> sets SRVPIDS CLIPIDS (procs measured) ALLPIDS (to stop) PORT
    case $1 in
    meshward)
        "$MESHWARD" sidecar run --config m-server.yaml --log-level warn >m-server.out 2>&1 &
        local s=$!
        "$MESHWARD" sidecar run --config m-client.yaml --log-level warn >m-client.out 2>&1 &
        local c=$!
        PIDS+=("$s" "$c")
        SRVPIDS=("$s") CLIPIDS=("$c") ALLPIDS=("$s" "$c") PORT=$M_CLI
        wait_port "$M_SRV"; wait_port "$M_CLI"
        ;;
    haproxy)
        "$HAPROXY" -db -f h-server.cfg >h-server.out 2>&1 &
        local s=$!
        "$HAPROXY" -db -f h-client.cfg >h-client.out 2>&1 &
        local c=$!
        PIDS+=("$s" "$c")
        SRVPIDS=("$s") CLIPIDS=("$c") ALLPIDS=("$s" "$c") PORT=$H_CLI
        wait_port "$H_SRV"; wait_port "$H_CLI"
        ;;
    nginx)
        "$NGINX" -p "$W/n-server" -c "$W/n-server.conf" -e "$W/n-server/error.log" &
        local s=$!
        "$NGINX" -p "$W/n-client" -c "$W/n-client.conf" -e "$W/n-client/error.log" &
        local c=$!
        PIDS+=("$s" "$c")
        local sw cw
        sw=$(children "$s") cw=$(children "$c")
        SRVPIDS=("$s" "$sw") CLIPIDS=("$c" "$cw") ALLPIDS=("$s" "$c") PORT=$N_CLI
        wait_port "$N_SRV"; wait_port "$N_CLI"
        ;;
    esac
}
hs_counts() { # name -> "full resumed": the client sidecar's outbound handshakes (meshward only)
    [ "$1" = meshward ] || { echo "0 0"; return; }
    curl -s --max-time 5 "http://127.0.0.1:$M_CADM/metrics" | awk '
        /^meshward_tls_handshakes_total\{direction="outbound",resumed="false"\}/ {f = $2}
        /^meshward_tls_handshakes_total\{direction="outbound",resumed="true"\}/ {r = $2}
        END {print f + 0, r + 0}'
}
mem() { # pids... -> "rss_kb priv_kb" summed over the processes
    local r=0 v=0 p
    for p in "$@"; do r=$((r + $(rss_kb "$p"))); v=$((v + $(priv_kb "$p"))); done
    echo "$r $v"
}

wrk_run() { # port conns seconds outfile [pids to sample memory of, mid-run -> memfile]
    local port=$1 conns=$2 secs=$3 out=$4
    shift 4
    local hdr=()
    [ -n "${WRK_CLOSE:-}" ] && hdr=(-H "Connection: close")
    wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/" >"$out" 2>&1 &
    local w=$!
    PIDS+=("$w")
    if [ $# -gt 0 ]; then
        sleep "$(awk -v s="$secs" 'BEGIN{print s * 0.7}')"
        mem "${SRVPIDS[@]}" >"$out.srvmem"
        mem "${CLIPIDS[@]}" >"$out.climem"
    fi
    wait "$w" || true
}
parse_wrk() { # file -> "reqs rps p50_us p99_us errors"
    local f=$1
    local reqs rps p50 p99 non2xx sockerr
    reqs=$(awk '/requests in/{print $1}' "$f")
    rps=$(awk '/^Requests\/sec/{printf "%.0f", $2}' "$f")
    p50=$(to_us "$(awk '$1=="50%"{print $2}' "$f")")
    p99=$(to_us "$(awk '$1=="99%"{print $2}' "$f")")
    non2xx=$(awk '/Non-2xx/{print $NF}' "$f")
    sockerr=$(awk -F'[ ,]+' '/Socket errors/{print $4+$6+$8+$10}' "$f")
    echo "${reqs:-0} ${rps:-0} ${p50:-0} ${p99:-0} $(( ${non2xx:-0} + ${sockerr:-0} ))"
}

echo "== sidecar two-hop benchmark (mTLS TLS 1.3, keep-alive; wrk -t$THREADS, ${DURATION}s)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "versions: $("$HAPROXY" -v | head -1 | awk '{print "haproxy", $3}'), $("$NGINX" -v 2>&1 | sed 's/.*\///;s/^/nginx /'), $(openssl version | awk '{print "OpenSSL", $2}'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A R
for round in $(seq 1 "$ROUNDS"); do
for name in $ONLY; do
    start_pair "$name"
    # Correctness first: a request through the chain gets the backend's body.
    got=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/x" || true)
    if [ "$got" != "$body" ]; then
        echo "run_sidecar: $name chain does not answer the backend's body (got: ${got:0:80})"
        exit 1
    fi
    sleep 0.5
    wait_quiet
    read -r si_rss si_priv < <(mem "${SRVPIDS[@]}")
    read -r ci_rss ci_priv < <(mem "${CLIPIDS[@]}")
    wrk_run "$PORT" "$CONNS" 2 "$W/$name.warm"                      # warm-up
    t0=$(ticks "${SRVPIDS[@]}" "${CLIPIDS[@]}")
    ob0=$(ticks "$BACKPID" "$BACKW")
    b0=$(busy_jiffies)
    wrk_run "$PORT" "$CONNS" "$DURATION" "$W/$name.c$CONNS" mem
    t1=$(ticks "${SRVPIDS[@]}" "${CLIPIDS[@]}")
    ob1=$(ticks "$BACKPID" "$BACKW")
    b1=$(busy_jiffies)
    read -r reqs rps p50 p99 errs < <(parse_wrk "$W/$name.c$CONNS")
    read -r s50_rss s50_priv <"$W/$name.c$CONNS.srvmem"
    read -r c50_rss c50_priv <"$W/$name.c$CONNS.climem"
    cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.1f", n ? t / hz * 1e6 / n : 0}')
    # Machine CPU not used by the proxies, the backend or wrk (wrk's own CPU is not in /proc after
    # it exits, so this is an upper bound that includes wrk): a sign of a busy shared machine.
    other=$(awk -v b=$((b1 - b0)) -v p=$((t1 - t0 + ob1 - ob0)) -v hz="$HZ" -v d="$DURATION" \
        'BEGIN{printf "%.2f", (b - p) / hz / d}')
    wrk_run "$PORT" "$BIGCONNS" 5 "$W/$name.c$BIGCONNS" mem
    read -r _ brps _ bp99 berrs < <(parse_wrk "$W/$name.c$BIGCONNS")
    read -r sb_rss sb_priv <"$W/$name.c$BIGCONNS.srvmem"
    read -r cb_rss cb_priv <"$W/$name.c$BIGCONNS.climem"
    # What stays resident once the load is gone (5 s later): freed memory given back or not.
    sleep 5
    read -r sa_rss _ < <(mem "${SRVPIDS[@]}")
    read -r ca_rss _ < <(mem "${CLIPIDS[@]}")
    # A new connection per request: the mTLS hop between the proxies is set up for each one
    # (meshward: resumed after the first), unless the proxy pools server connections.
    hs0=$(hs_counts "$name")
    WRK_CLOSE=1 wrk_run "$PORT" "$CLOSECONNS" "$DURATION" "$W/$name.close"
    read -r creqs crps _ cp99 cerrs < <(parse_wrk "$W/$name.close")
    hs1=$(hs_counts "$name")
    hs_full=$(($(echo "$hs1" | cut -d' ' -f1) - $(echo "$hs0" | cut -d' ' -f1)))
    hs_res=$(($(echo "$hs1" | cut -d' ' -f2) - $(echo "$hs0" | cut -d' ' -f2)))
    R[$name.$round]="$rps $p50 $p99 $cpu_us $errs $si_rss $ci_rss $s50_rss $c50_rss $sb_rss $cb_rss $brps $bp99 $berrs $si_priv $ci_priv $s50_priv $c50_priv $sb_priv $cb_priv $other $crps $cp99 $cerrs"
    echo "RESULT round=$round proxy=$name conns=$CONNS rps=$rps p50_us=$p50 p99_us=$p99 cpu_us_per_req=$cpu_us errors=$errs" \
        "rss_kb_idle=$si_rss,$ci_rss rss_kb_c$CONNS=$s50_rss,$c50_rss rss_kb_c$BIGCONNS=$sb_rss,$cb_rss rss_kb_after=$sa_rss,$ca_rss" \
        "priv_kb_idle=$si_priv,$ci_priv priv_kb_c$CONNS=$s50_priv,$c50_priv priv_kb_c$BIGCONNS=$sb_priv,$cb_priv" \
        "rps_c$BIGCONNS=$brps p99_us_c$BIGCONNS=$bp99 errors_c$BIGCONNS=$berrs idle_foreign_cores=$FOREIGN busy_other_cores=$other" \
        "close_c$CLOSECONNS: reqs=$creqs rps=$crps p99_us=$cp99 errors=$cerrs outbound_handshakes_full=$hs_full resumed=$hs_res"
    stop "${ALLPIDS[@]}"
    sleep 0.3
done
done

# ---------------------------------------------------------------- table
# The median round of each proxy by req/s (its latency, CPU and memory come from that round).
declare -A M
for name in $ONLY; do
    pick=$(for r in $(seq 1 "$ROUNDS"); do echo "${R[$name.$r]%% *} $r"; done | sort -n |
        awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) {print $2}')
    M[$name]=${R[$name.$pick]}
done
ref=${M[haproxy]:-}
ratio() { # value refvalue
    awk -v a="$1" -v b="$2" 'BEGIN{ if (b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }
echo
echo "Median of $ROUNDS rounds. Two-hop mTLS, c=$CONNS (req/s, latency, CPU) and RSS server+client side in MiB (private in parentheses)."
echo "Ratios are against haproxy in this run (req/s: higher is better; p99, CPU: lower is better)."
printf '%-9s %9s %6s %8s %8s %6s %10s %6s %5s | %-17s %-17s %-19s | %9s %9s | %9s %6s %9s\n' \
    proxy req/s x p50_us p99_us x cpu_us/req x errs "RSS idle" "RSS c=$CONNS" "RSS c=$BIGCONNS" \
    "rps c=$BIGCONNS" "p99 c=$BIGCONNS" "rps close" x "p99 close"
for name in $ONLY; do
    read -r rps p50 p99 cpu errs si ci s50 c50 sb cb brps bp99 berrs sip cip s50p c50p sbp cbp other crps cp99 _ <<<"${M[$name]}"
    if [ -n "$ref" ]; then
        read -r hrps _ hp99 hcpu _ <<<"$ref"
        hcrps=$(echo "$ref" | awk '{print $22}')
    else
        hrps=0 hp99=0 hcpu=0 hcrps=0
    fi
    printf '%-9s %9s %6s %8s %8s %6s %10s %6s %5s | %-17s %-17s %-19s | %9s %9s | %9s %6s %9s\n' \
        "$name" "$rps" "$(ratio "$rps" "$hrps")" "$p50" "$p99" "$(ratio "$p99" "$hp99")" \
        "$cpu" "$(ratio "$cpu" "$hcpu")" "$errs" \
        "$(mb "$si")+$(mb "$ci") ($(mb "$sip")+$(mb "$cip"))" \
        "$(mb "$s50")+$(mb "$c50") ($(mb "$s50p")+$(mb "$c50p"))" \
        "$(mb "$sb")+$(mb "$cb") ($(mb "$sbp")+$(mb "$cbp"))" "$brps" "$bp99" \
        "$crps" "$(ratio "$crps" "$hcrps")" "$cp99"
done
echo "close: a new client connection per request (Connection: close, c=$CLOSECONNS)."
echo "nginx rows sum master + worker. RESULT lines: idle_foreign_cores = machine CPU used by others just"
echo "before the run; busy_other_cores = machine CPU outside the proxies and backend during it (includes wrk)."
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
