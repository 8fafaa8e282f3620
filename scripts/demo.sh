#!/usr/bin/env bash
# meshward demo: a small mesh on this host.
#
#   scripts/demo.sh [PATH/TO/meshward] [--check]
#
# As root it builds four network namespaces joined by a bridge (nothing is
# routed off the machine): "control" runs the mesh CA, and three workloads
# (client, productpage, reviews) each run a real HTTP server behind a meshward
# sidecar with iptables interception. Each workload gets its X.509-SVID from
# the CA with a single-use join token; every certificate lands in the CA's
# tamper-evident issuance log. Then traffic is driven that is allowed, denied
# by identity, denied by path (including a bypass spelling), and blocked at
# egress, and the sidecars' Prometheus metrics are shown.
#
# With --check (used by tests/integration/test_demo.sh) every outcome is
# asserted and the script exits non-zero if one is wrong; without it, it waits
# for Enter (when run on a terminal) before tearing everything down.
set -uo pipefail

mw=""
check=0
for a in "$@"; do
  case "$a" in
  --check) check=1 ;;
  -h | --help)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
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

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v iptables >/dev/null; then
  echo "demo: the mesh demo needs root, iproute2 and iptables (it makes network namespaces)." >&2
  echo "demo: on a fresh machine run it as root: sudo make demo" >&2
  exit 1
fi

# shellcheck source=../tests/integration/lib_netns.sh
. "$root/tests/integration/lib_netns.sh"
work=$(mktemp -d /tmp/meshward-demo.XXXXXX)
chmod 755 "$work"
finish() {
  netns_cleanup
  # MW_DEMO_KEEP=1 keeps the files (logs, certificates, the issuance log) for a look afterwards.
  if [ "${MW_DEMO_KEEP:-0}" = 1 ]; then echo "demo: files kept in $work"; else rm -rf "$work"; fi
}
netns_setup demo 4 || {
  echo "demo: could not create network namespaces" >&2
  exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM
cd "$work"

CONTROL=0
NAMES=(control client productpage reviews)
td=cluster.local
ns=demo
proxy_uid=1337
ca_addr=$(netns_addr $CONTROL)

bold "1. A mesh CA in the control namespace ($ca_addr)"
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
netns_bg $CONTROL "$mw" ca serve --config ca/ca.yaml --listen "$ca_addr:8443" --log issuance-log \
  --log-key logkey/log.key --db ca.db --registrations registrations.yaml --log-level warn \
  >ca.log 2>&1
netns_wait_port $CONTROL "$ca_addr" 8443 100 || {
  echo "demo: the CA did not start" >&2
  exit 1
}
echo "  CA: https://$ca_addr:8443 (root and intermediate ECDSA P-256; SVIDs live 1 hour)"
# Two plain HTTP servers outside the mesh, for egress: one declared, one not.
mkdir -p www-ext && echo "external service" >www-ext/index.html
netns_bg $CONTROL python3 -m http.server 8080 --bind "$ca_addr" --directory www-ext >/dev/null 2>&1
netns_bg $CONTROL python3 -m http.server 8081 --bind "$ca_addr" --directory www-ext >/dev/null 2>&1
netns_wait_port $CONTROL "$ca_addr" 8080 100
netns_wait_port $CONTROL "$ca_addr" 8081 100

bold "2. Each workload gets an SVID with a single-use join token"
for i in 1 2 3; do
  w=${NAMES[$i]}
  mkdir -p "$w"
  "$mw" ca token create --db ca.db --spiffe-id "spiffe://$td/ns/$ns/sa/$w" --ttl 10m >"$w/token" 2>/dev/null ||
    exit 1
  chmod 600 "$w/token"
  if netns_exec $i "$mw" ca request --server "https://$ca_addr:8443" --bundle ca/bundle.pem \
    --credential-kind join-token --token-file "$w/token" --key-out "$w/svid.key" \
    --cert-out "$w/svid.pem" >/dev/null 2>"$w/request.err"; then
    id=$("$mw" svid inspect "$w/svid.pem" --bundle ca/bundle.pem --json | python3 -c \
      'import json,sys; d=json.load(sys.stdin); print(d["spiffe_id"], d["verdict"])')
    echo "  $w: $id"
  else
    echo "  $w: refused: $(cat "$w/request.err")"
    exit 1
  fi
done
replay=$(netns_exec 1 "$mw" ca request --server "https://$ca_addr:8443" --bundle ca/bundle.pem \
  --credential-kind join-token --token-file client/token --key-out client/x.key \
  --cert-out client/x.pem 2>&1 >/dev/null)
outcome "the client's join token, replayed" "refused" "$(echo "$replay" | grep -q 'already used' && echo refused || echo "$replay")"

bold "3. Policies (Istio YAML, as users write them)"
cat >policies.yaml <<EOF
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
sed -n '/^kind: AuthorizationPolicy/,/^---/p' policies.yaml | grep -E 'name:|action:|principals|paths|methods' |
  sed 's/^/  /'

bold "4. Sidecars with transparent interception (iptables REDIRECT, proxy uid $proxy_uid)"
for i in 1 2 3; do
  w=${NAMES[$i]}
  mkdir -p "$w/www/admin" "$w/www/api"
  echo "$w home" >"$w/www/index.html"
  echo "$w admin console" >"$w/www/admin/index.html"
  echo "{\"service\": \"$w\"}" >"$w/www/api/info"
  netns_bg $i python3 -m http.server 9080 --bind 127.0.0.1 --directory "$w/www" >/dev/null 2>&1
  cp ca/bundle.pem "$w/bundle.pem"
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
    mode: static
    certificate: svid.pem
    key: svid.key
    bundles: [{trustDomain: $td, file: bundle.pem}]
  inbound:
    port: 15006
    ports: [{port: 9080, protocol: http}]
  outbound:
    port: 15001
    services:
    - {name: productpage.$ns, port: 9080, endpoints: ["$(netns_addr 2):9080"], spiffeId: "spiffe://$td/ns/$ns/sa/productpage"}
    - {name: reviews.$ns, port: 9080, endpoints: ["$(netns_addr 3):9080"], spiffeId: "spiffe://$td/ns/$ns/sa/reviews"}
  egress:
  - {cidr: $ca_addr/32, ports: [8081]}
  policies: [../policies.yaml]
  admin: {port: 15000}
  accessLog: access.log
EOF
  chown -R $proxy_uid:$proxy_uid "$w"
  netns_bg $i setpriv --reuid=$proxy_uid --regid=$proxy_uid --clear-groups \
    "$mw" sidecar run --config "$w/sidecar.yaml" --log-level warn >"$w/sidecar.log" 2>&1
  netns_exec $i "$mw" sidecar iptables --inbound-port 15006 --outbound-port 15001 \
    --proxy-uid $proxy_uid --exclude-inbound-ports 15000 >/dev/null || exit 1
done
for i in 1 2 3; do
  netns_wait_port $i 127.0.0.1 9080 100 || {
    echo "demo: the ${NAMES[$i]} app did not start" >&2
    exit 1
  }
  netns_wait_port $i 127.0.0.1 15000 100 || {
    echo "demo: the ${NAMES[$i]} sidecar did not start: $(tail -3 "${NAMES[$i]}/sidecar.log")" >&2
    exit 1
  }
done
for i in 1 2 3; do
  echo "  ${NAMES[$i]}: $(netns_addr $i), app on 127.0.0.1:9080, sidecar inbound 15006, outbound 15001"
done

# code I URL: the HTTP status curl gets from namespace I (000: connection refused or reset).
code() { netns_exec "$1" curl -s -o /dev/null -m 5 -w '%{http_code}' --path-as-is "$2"; }
pp=$(netns_addr 2)
rv=$(netns_addr 3)

bold "5. Traffic (each request goes app → sidecar → mTLS → sidecar → app)"
outcome "client → productpage GET /                      (allowed)" 200 "$(code 1 "http://$pp:9080/")"
outcome "client → productpage GET /api/info              (allowed)" 200 "$(code 1 "http://$pp:9080/api/info")"
outcome "client → productpage GET /admin/                (denied by path)" 403 "$(code 1 "http://$pp:9080/admin/")"
outcome "client → productpage GET /api/../admin/ (bypass try, denied)" 403 "$(code 1 "http://$pp:9080/api/../admin/")"
outcome "client → productpage GET //ADMIN/ (bypass try, denied)" 403 "$(code 1 "http://$pp:9080//ADMIN/")"
outcome "client → reviews GET /                          (denied by identity)" 403 "$(code 1 "http://$rv:9080/")"
outcome "productpage → reviews GET /                     (allowed)" 200 "$(code 2 "http://$rv:9080/")"
outcome "client → $ca_addr:8081 (declared egress, allowed)" 200 "$(code 1 "http://$ca_addr:8081/")"
outcome "client → $ca_addr:8080 (undeclared egress, blocked)" 000 "$(code 1 "http://$ca_addr:8080/")"
plain=$(netns_exec 1 setpriv --reuid=$proxy_uid --regid=$proxy_uid --clear-groups \
  curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$pp:9080/")
outcome "plaintext straight to productpage's sidecar (STRICT mTLS)" 000 "$plain"

bold "6. What the sidecars saw (Prometheus, Istio's metric and label names)"
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
netns_exec 2 curl -s -m 5 http://127.0.0.1:15000/metrics | summarize
echo " client's sidecar:"
netns_exec 1 curl -s -m 5 http://127.0.0.1:15000/metrics | summarize
echo " productpage's access log, the /admin/ request (JSON, Istio's field names):"
grep '"path":"/admin/"' productpage/access.log | head -1 | python3 -c '
import json, sys
e = json.loads(sys.stdin.read())
for k in ("method", "path", "response_code", "source_principal", "decision", "policy"):
    print("    %-18s %s" % (k, e.get(k)))
'

bold "7. The issuance log: every SVID, tamper-evident"
"$mw" log verify issuance-log --pub logkey/log.pub | sed 's/^/  /'
serial=$("$mw" svid inspect client/svid.pem --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])')
proved=$("$mw" log prove issuance-log --serial "$serial" --pub logkey/log.pub >/dev/null 2>&1 && echo proved || echo missing)
outcome "client's SVID (serial $serial) in the log" proved "$proved"

bold "Result"
echo "  $passed as expected, $failed not"
if [ "$check" -eq 0 ] && [ -t 0 ]; then
  echo
  echo "The mesh is up (namespaces $(netns_name 0) .. $(netns_name 3)). Try:"
  echo "  ip netns exec $(netns_name 1) curl -s http://$pp:9080/"
  echo "  ip netns exec $(netns_name 2) curl -s http://127.0.0.1:15000/metrics"
  read -r -p "Press Enter to stop it and clean up. " _
fi
echo "demo: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
