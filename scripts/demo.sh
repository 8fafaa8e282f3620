#!/usr/bin/env bash
# meshward demo: a small mesh on this host.
#
#   scripts/demo.sh [PATH/TO/meshward] [--check] [--loopback]
#
# As root it builds four network namespaces joined by a bridge (nothing is
# routed off the machine): "control" runs `meshward control` (the mesh CA and
# configuration distribution), and three workloads (client, productpage,
# reviews) each run a real HTTP server behind a meshward sidecar with iptables
# interception. Without root (or with --loopback) the same mesh runs on
# 127.0.0.1 ports, the sidecars addressed explicitly. Each sidecar gets its
# X.509-SVID from the CA with a single-use join token (every certificate lands
# in the tamper-evident issuance log) and its policies, service registry and
# egress declarations from the control plane. Then traffic is driven that is
# allowed, denied by identity, denied by path (including bypass spellings),
# and blocked at egress; a policy edit reaches the sidecars in seconds; and
# the sidecars' Prometheus metrics are shown.
#
# With --check (used by tests/integration/test_demo.sh) every outcome is
# asserted and the script exits non-zero if one is wrong; without it, it waits
# until Ctrl-C (when run on a terminal), then removes everything it made.
set -uo pipefail

mw=""
check=0
mode=netns
for a in "$@"; do
  case "$a" in
  --check) check=1 ;;
  --loopback) mode=loopback ;;
  -h | --help)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) mw=$a ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
mw=${mw:-$root/build/meshward}
mw=$(cd "$(dirname "$mw")" && pwd)/$(basename "$mw")
[ -x "$mw" ] || {
  echo "demo: $mw is not built (run make build)" >&2
  exit 1
}

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
passed=0
failed=0
# outcome LABEL WANT GOT: print one line; count it in --check mode.
outcome() {
  if [ "$2" = "$3" ]; then
    printf '  %-58s %s\n' "$1" "$3"
    passed=$((passed + 1))
  else
    printf '  %-58s %s (want %s)\n' "$1" "$3" "$2"
    failed=$((failed + 1))
  fi
}

if [ "$mode" = netns ] && { [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null ||
  ! command -v iptables >/dev/null; }; then
  echo "demo: not root (or no iproute2/iptables): running the mesh on 127.0.0.1 ports instead"
  echo "demo: of network namespaces. As root, it uses namespaces and iptables interception."
  mode=loopback
fi

# shellcheck source=../tests/integration/lib_netns.sh
. "$root/tests/integration/lib_netns.sh"
work=$(mktemp -d /tmp/meshward-demo.XXXXXX)
chmod 755 "$work"
LOOP_PIDS=()
finish() {
  local p
  netns_cleanup
  for p in "${LOOP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${LOOP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # MW_DEMO_KEEP=1 keeps the files (logs, certificates, the issuance log) for a look afterwards.
  if [ "${MW_DEMO_KEEP:-0}" = 1 ]; then echo "demo: files kept in $work"; else rm -rf "$work"; fi
}
if [ "$mode" = netns ]; then
  netns_setup demo 4 || {
    echo "demo: could not create network namespaces" >&2
    exit 1
  }
fi
trap finish EXIT
trap 'exit 130' INT TERM
cd "$work"

# on I CMD...: run CMD on host I; bg I CMD...: the same in the background.
on() {
  local i=$1
  shift
  if [ "$mode" = netns ]; then netns_exec "$i" "$@"; else "$@"; fi
}
bg() {
  local i=$1
  shift
  if [ "$mode" = netns ]; then
    netns_bg "$i" "$@"
  else
    "$@" &
    LOOP_PIDS+=($!)
  fi
}
wait_port() { # wait_port I ADDR PORT
  if [ "$mode" = netns ]; then
    netns_wait_port "$1" "$2" "$3" 100
  else
    local k
    for ((k = 0; k < 100; k++)); do
      ss -Htln "sport = :$3" 2>/dev/null | grep -q "$2:$3" && return 0
      sleep 0.1
    done
    return 1
  fi
}
# A free block of 60 loopback ports for loopback mode.
free_base() {
  local b k used
  for ((k = 0; k < 50; k++)); do
    b=$((20000 + (RANDOM % 400) * 100))
    used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' |
      awk -v lo="$b" -v hi="$((b + 60))" '$1 >= lo && $1 < hi' | head -1)
    [ -z "$used" ] && echo "$b" && return 0
  done
  return 1
}

CONTROL=0
NAMES=(control client productpage reviews)
td=cluster.local
ns=demo
proxy_uid=1337
if [ "$mode" = netns ]; then
  for i in 0 1 2 3; do ADDR[i]=$(netns_addr "$i"); done
  ca_port=8443 ext_open=8081 ext_closed=8080
  for i in 1 2 3; do
    APP[i]=9080 IN[i]=15006 OUT[i]=15001 ADMIN[i]=15000 LP_PP[i]=0 LP_RV[i]=0
  done
  where="control namespace"
else
  base=$(free_base) || {
    echo "demo: no free block of loopback ports" >&2
    exit 1
  }
  for i in 0 1 2 3; do ADDR[i]=127.0.0.1; done
  ca_port=$((base + 1)) ext_closed=$((base + 2)) ext_open=$((base + 3))
  for i in 1 2 3; do
    APP[i]=$((base + 10 * i)) IN[i]=$((base + 10 * i + 1)) ADMIN[i]=$((base + 10 * i + 2))
    OUT[i]=$((base + 10 * i + 3)) LP_PP[i]=$((base + 10 * i + 4)) LP_RV[i]=$((base + 10 * i + 5))
  done
  where="loopback"
fi
ca_addr=${ADDR[$CONTROL]}
# The proxy runs as its own uid where interception needs it to (netns mode), so
# that its own connections are not redirected back to itself.
PROXY_AS=()
[ "$mode" = netns ] && PROXY_AS=(setpriv --reuid=$proxy_uid --regid=$proxy_uid --clear-groups)

bold "1. Policies, registry and egress: the mesh directory the control plane serves"
"$mw" ca init --trust-domain $td --out ca >/dev/null || exit 1
"$mw" log keygen --name $td/issuance --out logkey >/dev/null || exit 1
cat >registrations.yaml <<EOF
$(for w in client productpage reviews; do
  cat <<DOC
---
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata: {name: $w}
spec:
  kubernetes: {namespace: $ns, serviceAccount: $w}
  maxTTL: 1h
DOC
done)
EOF
if [ "$mode" = netns ]; then
  ep_pp="${ADDR[2]}:9080" ep_rv="${ADDR[3]}:9080"
else
  ep_pp="127.0.0.1:${IN[2]}" ep_rv="127.0.0.1:${IN[3]}"
fi
mkdir -p mesh
cat >mesh/policies.yaml <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: $ns}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["$td/ns/$ns/sa/client"]}}]
    to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-no-admin, namespace: $ns}
spec:
  selector: {matchLabels: {app: productpage}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["9080"], paths: ["/admin", "/admin/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-from-productpage, namespace: $ns}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["$td/ns/$ns/sa/productpage"]}}]
EOF
cat >mesh/registry.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: MeshService
metadata: {name: productpage, namespace: $ns}
spec: {host: productpage.$ns, port: 9080, protocol: http, endpoints: ["$ep_pp"], spiffeId: "spiffe://$td/ns/$ns/sa/productpage"}
---
apiVersion: meshward.io/v1alpha1
kind: MeshService
metadata: {name: reviews, namespace: $ns}
spec: {host: reviews.$ns, port: 9080, protocol: http, endpoints: ["$ep_rv"], spiffeId: "spiffe://$td/ns/$ns/sa/reviews"}
EOF
cat >mesh/egress.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: EgressPolicy
metadata: {name: declared, namespace: $ns}
spec:
  egress:
  - {cidr: $ca_addr/32, ports: [$ext_open]}
EOF
sed -n '/^kind: AuthorizationPolicy/,/^---/p' mesh/policies.yaml | grep -E 'name:|action:|principals|paths|methods' |
  sed 's/^/  /'
echo "  registry: productpage.$ns:9080 at $ep_pp, reviews.$ns:9080 at $ep_rv, with their SPIFFE IDs"
echo "  egress: $ca_addr:$ext_open declared; everything else refused"

bold "2. The control plane: meshward control ($where, $ca_addr:$ca_port)"
bg $CONTROL "$mw" control --mesh mesh --config ca/ca.yaml --listen "$ca_addr:$ca_port" \
  --log issuance-log --log-key logkey/log.key --db ca.db --registrations registrations.yaml \
  --log-level "${MW_DEMO_LOG_LEVEL:-warn}" >control.log 2>&1
wait_port $CONTROL "$ca_addr" $ca_port || {
  echo "demo: the control plane did not start: $(tail -3 control.log)" >&2
  exit 1
}
echo "  https://$ca_addr:$ca_port: the CA (ECDSA P-256 root and intermediate; SVIDs live 1 hour)"
echo "  and GET /v1/config (a long-poll over mTLS: each sidecar gets its namespace's documents)"
# Two plain HTTP servers outside the mesh, for egress: one declared, one not.
mkdir -p www-ext && echo "external service" >www-ext/index.html
bg $CONTROL python3 -m http.server $ext_closed --bind "$ca_addr" --directory www-ext >/dev/null 2>&1
bg $CONTROL python3 -m http.server $ext_open --bind "$ca_addr" --directory www-ext >/dev/null 2>&1
wait_port $CONTROL "$ca_addr" $ext_closed
wait_port $CONTROL "$ca_addr" $ext_open

bold "3. A single-use join token per workload"
for i in 1 2 3; do
  w=${NAMES[$i]}
  mkdir -p "$w"
  "$mw" ca token create --db ca.db --spiffe-id "spiffe://$td/ns/$ns/sa/$w" --ttl 10m >"$w/token" 2>/dev/null ||
    exit 1
  chmod 600 "$w/token"
  echo "  $w: spiffe://$td/ns/$ns/sa/$w"
done

if [ "$mode" = netns ]; then
  bold "4. Sidecars with transparent interception (iptables REDIRECT, proxy uid $proxy_uid)"
else
  bold "4. Sidecars on loopback ports (no interception: the apps address their sidecars)"
fi
for i in 1 2 3; do
  w=${NAMES[$i]}
  mkdir -p "$w/www/admin" "$w/www/api"
  echo "$w home" >"$w/www/index.html"
  echo "$w admin console" >"$w/www/admin/index.html"
  echo "{\"service\": \"$w\"}" >"$w/www/api/info"
  bg $i python3 -m http.server "${APP[$i]}" --bind 127.0.0.1 --directory "$w/www" >/dev/null 2>&1
  cp ca/bundle.pem "$w/bundle.pem"
  if [ "$mode" = netns ]; then
    inbound="port: ${IN[$i]}
    ports: [{port: 9080, protocol: http}]"
    services=""
  else
    inbound="ports: [{port: 9080, protocol: http, listenPort: ${IN[$i]}, appPort: ${APP[$i]}}]"
    services="
    services:
    - {name: productpage.$ns, port: 9080, localPort: ${LP_PP[$i]}}
    - {name: reviews.$ns, port: 9080, localPort: ${LP_RV[$i]}}"
  fi
  cat >"$w/sidecar.yaml" <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: $w}
spec:
  workload:
    namespace: $ns
    serviceAccount: $w
    trustDomain: $td
    labels: {app: $w}
  identity:
    mode: ca
    caURL: https://$ca_addr:$ca_port
    credentialFile: token
    credentialKind: join-token
    bundles: [{trustDomain: $td, file: bundle.pem}]
  control: {url: "https://$ca_addr:$ca_port"}
  inbound:
    $inbound
  outbound:
    port: ${OUT[$i]}$services
  admin: {port: ${ADMIN[$i]}}
  accessLog: access.log
EOF
  if [ "$mode" = netns ]; then
    chown -R $proxy_uid:$proxy_uid "$w"
  fi
  # Interception first, as Istio's init container does: a connection the sidecar opened before
  # the nat rules existed would be picked up by conntrack mid-stream and its replies redirected.
  if [ "$mode" = netns ]; then
    on $i "$mw" sidecar iptables --inbound-port 15006 --outbound-port 15001 \
      --proxy-uid $proxy_uid --exclude-inbound-ports 15000 >/dev/null || exit 1
  fi
  bg $i "${PROXY_AS[@]}" "$mw" sidecar run --config "$w/sidecar.yaml" --log-level warn >"$w/sidecar.log" 2>&1
done
for i in 1 2 3; do
  wait_port $i 127.0.0.1 "${APP[$i]}" || {
    echo "demo: the ${NAMES[$i]} app did not start" >&2
    exit 1
  }
  wait_port $i 127.0.0.1 "${ADMIN[$i]}" || {
    echo "demo: the ${NAMES[$i]} sidecar did not start: $(tail -3 "${NAMES[$i]}/sidecar.log")" >&2
    exit 1
  }
done
for i in 1 2 3; do
  echo "  ${NAMES[$i]}: ${ADDR[$i]}, app on 127.0.0.1:${APP[$i]}, sidecar inbound ${IN[$i]}, outbound ${OUT[$i]}, admin ${ADMIN[$i]}"
done
# (From the control host: the client's own outbound traffic is intercepted by its sidecar now.)
replay=$(on $CONTROL "$mw" ca request --server "https://$ca_addr:$ca_port" --bundle ca/bundle.pem \
  --credential-kind join-token --token-file client/token --key-out client/x.key \
  --cert-out client/x.pem 2>&1 >/dev/null)
outcome "the client's join token, replayed after its sidecar used it" "refused" \
  "$(echo "$replay" | grep -q 'already used' && echo refused || echo "$replay")"

# code I URL [CURL ARGS]: the HTTP status curl gets on host I (000: connection refused or reset).
code() {
  local i=$1 url=$2
  shift 2
  on "$i" curl -s -o /dev/null -m 5 -w '%{http_code}' --path-as-is "$@" "$url"
}
if [ "$mode" = netns ]; then
  pp="http://${ADDR[2]}:9080" rv_from_client="http://${ADDR[3]}:9080" rv_from_pp="http://${ADDR[3]}:9080"
  egress_args=() blocked=000
  plain_url="http://${ADDR[2]}:9080/"
else
  pp="http://127.0.0.1:${LP_PP[1]}" rv_from_client="http://127.0.0.1:${LP_RV[1]}"
  rv_from_pp="http://127.0.0.1:${LP_RV[2]}"
  egress_args=(-x "http://127.0.0.1:${OUT[1]}") blocked=403
  plain_url="http://127.0.0.1:${IN[2]}/"
fi

bold "5. Traffic (each request goes app → sidecar → mTLS → sidecar → app)"
outcome "client → productpage GET /                      (allowed)" 200 "$(code 1 "$pp/")"
outcome "client → productpage GET /api/info              (allowed)" 200 "$(code 1 "$pp/api/info")"
outcome "client → productpage GET /admin/                (denied by path)" 403 "$(code 1 "$pp/admin/")"
outcome "client → productpage GET /api/../admin/ (bypass try, denied)" 403 "$(code 1 "$pp/api/../admin/")"
outcome "client → productpage GET //ADMIN/ (bypass try, denied)" 403 "$(code 1 "$pp//ADMIN/")"
outcome "client → reviews GET /                          (denied by identity)" 403 "$(code 1 "$rv_from_client/")"
outcome "productpage → reviews GET /                     (allowed)" 200 "$(code 2 "$rv_from_pp/")"
outcome "client → $ca_addr:$ext_open (declared egress, allowed)" 200 \
  "$(code 1 "http://$ca_addr:$ext_open/" "${egress_args[@]}")"
outcome "client → $ca_addr:$ext_closed (undeclared egress, blocked)" "$blocked" \
  "$(code 1 "http://$ca_addr:$ext_closed/" "${egress_args[@]}")"
plain=$(on 1 "${PROXY_AS[@]}" curl -s -o /dev/null -m 5 -w '%{http_code}' "$plain_url")
outcome "plaintext straight to productpage's sidecar (STRICT mTLS)" 000 "$plain"

bold "6. A policy edit: the control plane sends it, the sidecars apply it (no restart)"
before=$(on 3 curl -s -m 5 "http://127.0.0.1:${ADMIN[3]}/metrics" | awk '$1 == "meshward_config_version" {print $2}')
sed -i 's|  - from: \[{source: {principals: \["'"$td/ns/$ns/sa/productpage"'"\]}}\]|  - from: [{source: {principals: ["'"$td/ns/$ns/sa/productpage"'", "'"$td/ns/$ns/sa/client"'"]}}]|' \
  mesh/policies.yaml
echo "  mesh/policies.yaml: reviews-from-productpage now also names the client"
t0=$(date +%s.%N)
got=403
for _ in $(seq 1 100); do
  got=$(code 1 "$rv_from_client/")
  [ "$got" = 200 ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
after=$(on 3 curl -s -m 5 "http://127.0.0.1:${ADMIN[3]}/metrics" | awk '$1 == "meshward_config_version" {print $2}')
outcome "client → reviews GET / after the edit ($(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s later)" 200 "$got"
echo "  reviews' sidecar: config version $before -> $after"

bold "7. What the sidecars saw (Prometheus, Istio's metric and label names)"
# Only the labels that tell the story; /metrics has Istio's full label set.
summarize() {
  python3 -c '
import re, sys
keep = ("source_principal", "destination_principal", "response_code", "connection_security_policy",
        "policy", "direction", "host", "port")
for line in sys.stdin:
    m = re.match(r"(istio_requests_total|meshward_authz_denied_total|meshward_egress_denied_total)\{(.*)\} (\S+)$", line.strip())
    if not m:
        continue
    labels = dict(re.findall(r"(\w+)=\"((?:[^\"\\]|\\.)*)\"", m.group(2)))
    shown = ",".join("%s=\"%s\"" % (k, labels[k]) for k in keep if k in labels)
    print("  %s{%s} %s" % (m.group(1), shown, m.group(3)))
'
}
echo " productpage's sidecar:"
on 2 curl -s -m 5 "http://127.0.0.1:${ADMIN[2]}/metrics" | summarize
echo " client's sidecar:"
on 1 curl -s -m 5 "http://127.0.0.1:${ADMIN[1]}/metrics" | summarize
echo " productpage's access log, the /admin/ request (JSON, Istio's field names):"
grep '"path":"/admin/"' productpage/access.log | head -1 | python3 -c '
import json, sys
e = json.loads(sys.stdin.read())
for k in ("method", "path", "response_code", "source_principal", "decision", "policy"):
    print("    %-18s %s" % (k, e.get(k)))
'

bold "8. The issuance log: every SVID, tamper-evident"
"$mw" log verify issuance-log --pub logkey/log.pub | sed 's/^/  /'
# The certificate productpage's sidecar presents (its key never left the sidecar's memory).
pp_sidecar=${plain_url#http://}
pp_sidecar=${pp_sidecar%/}
serial=$(on 1 "${PROXY_AS[@]}" sh -c "openssl s_client -connect '$pp_sidecar' -showcerts </dev/null 2>/dev/null |
  openssl x509 -noout -serial" | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
proved=$("$mw" log prove issuance-log --serial "$serial" --pub logkey/log.pub >/dev/null 2>&1 && echo proved || echo missing)
outcome "productpage's SVID (serial ${serial:-none}, as its sidecar presents it) in the log" proved "$proved"

bold "Result"
echo "  $passed as expected, $failed not"
if [ "$check" -eq 0 ] && [ -t 0 ]; then
  echo
  if [ "$mode" = netns ]; then
    echo "The mesh is up (namespaces $(netns_name 0) .. $(netns_name 3)). Try:"
    echo "  ip netns exec $(netns_name 1) curl -s $pp/"
    echo "  ip netns exec $(netns_name 2) curl -s http://127.0.0.1:${ADMIN[2]}/metrics"
  else
    echo "The mesh is up on loopback. Try:"
    echo "  curl -s $pp/"
    echo "  curl -s http://127.0.0.1:${ADMIN[2]}/metrics"
  fi
  echo "Press Ctrl-C to stop it; everything it made is removed."
  while :; do sleep 1; done
fi
echo "demo: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
