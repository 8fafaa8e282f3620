#!/usr/bin/env bash
# CA mode on 127.0.0.1: `meshward ca serve` with Kubernetes service-account tokens (an RSA
# issuer made with openssl), a client and a server sidecar that get their SVIDs from it (short
# TTL, renewal at 20 % of it), and a backend. A bounded load runs across at least two rotations
# with zero failed requests while the server's certificate changes; then the CA is stopped for
# longer than a rotation period: traffic goes on, meshward_ca_reachable is 0 and renewal failures
# count up; the CA comes back and reachable returns to 1. Also: no SVID, no start.
set -u
MESHWARD=${MESHWARD:-$(dirname "$0")/../../build/meshward}
MESHWARD=$(cd "$(dirname "$MESHWARD")" && pwd)/$(basename "$MESHWARD")
. "$(dirname "$0")/lib_mesh.sh"
MESH_LOGS=(server.out client.out)
read -r CAP APP S_IN S_ADMIN C_SVC C_ADMIN < <(mesh_ports 6)
TD=cluster.local
cd "$W" || exit 1

# ---------------------------------------------------------------- the CA and a Kubernetes issuer
"$MESHWARD" ca init --trust-domain $TD --out ca >/dev/null || { echo "ca init failed"; exit 1; }
"$MESHWARD" log keygen --name $TD/issuance --out lk >/dev/null || { echo "log keygen failed"; exit 1; }
mesh_k8s_issuer
mesh_k8s_token foo server server.tok
mesh_k8s_token foo client client.tok
mesh_k8s_token foo probe probe.tok
mesh_k8s_token foo server wrong.tok other-audience

start_ca() {
    "$MESHWARD" ca serve --config ca/ca.yaml --listen 127.0.0.1:$CAP --log log --log-key lk/log.key \
        --db ca.db --allow-unregistered \
        --k8s-jwks k8s.jwks --k8s-issuer https://k8s.example --k8s-audience meshward-ca \
        >>ca.out 2>>ca.err &
    CA_PID=$!
    mesh_wait_health $CAP ca.err
}
start_ca || exit 1

# ---------------------------------------------------------------- backend and sidecars
# The backend must be listening before the first request goes through the sidecars.
mesh_backend $APP

identity() { # TOKEN-FILE
    cat <<EOF
  identity:
    mode: ca
    caURL: https://127.0.0.1:$CAP
    credentialFile: $1
    credentialKind: k8s-sat
    ttl: 30s
    rotation: {fraction: 0.2, jitter: 0.1}
    bundleRefresh: 2s
    bundles: [{trustDomain: $TD, file: ca/bundle.pem}]
EOF
}
{
    printf 'apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nmetadata: {name: server}\nspec:\n'
    printf '  workload: {namespace: foo, serviceAccount: server}\n'
    identity server.tok
    printf '  inbound:\n    ports: [{port: %d, protocol: http, listenPort: %d, appPort: %d}]\n' $APP $S_IN $APP
    printf '  admin: {port: %d}\n' $S_ADMIN
} >server.yaml
{
    printf 'apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nmetadata: {name: client}\nspec:\n'
    printf '  workload: {namespace: foo, serviceAccount: client}\n'
    identity client.tok
    printf '  outbound:\n    services:\n    - name: server.foo\n      port: 80\n'
    printf '      endpoints: ["127.0.0.1:%d"]\n' $S_IN
    printf '      spiffeId: spiffe://%s/ns/foo/sa/server\n      localPort: %d\n' $TD $C_SVC
    printf '  admin: {port: %d}\n' $C_ADMIN
} >client.yaml

# No valid SVID, no start: the CA refuses the credential, or nothing answers at caURL.
sed 's/server\.tok/wrong.tok/' server.yaml >wrong.yaml
rc=0
timeout 20 "$MESHWARD" sidecar run --config wrong.yaml >wrong.out 2>&1 || rc=$?
check "refuses to start when the CA refuses the credential, and says why" \
    "[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'no SVID from the CA' wrong.out"
sed "s/127.0.0.1:$CAP/127.0.0.1:1/" server.yaml >nowhere.yaml
rc=0
timeout 20 "$MESHWARD" sidecar run --config nowhere.yaml >nowhere.out 2>&1 || rc=$?
check "refuses to start when the CA is unreachable" "[ $rc != 0 ] && grep -q 'no SVID from the CA' nowhere.out"
check "check-config in CA mode asks for no SVID" "'$MESHWARD' sidecar check-config server.yaml | grep -q 'no SVID'"

"$MESHWARD" sidecar run --config server.yaml >server.out 2>&1 &
PIDS+=($!)
"$MESHWARD" sidecar run --config client.yaml >client.out 2>&1 &
PIDS+=($!)
up=no
for _ in $(seq 1 100); do
    if curl -s "http://127.0.0.1:$S_ADMIN/readyz" 2>/dev/null | grep -q ready &&
        curl -s "http://127.0.0.1:$C_ADMIN/readyz" 2>/dev/null | grep -q ready; then
        up=yes
        break
    fi
    sleep 0.1
done
[ $up = yes ] || { echo "sidecars did not start: $(cat server.out client.out)"; exit 1; }
ok "both sidecars got SVIDs from the CA and are ready"

metric() { # ADMIN-PORT NAME
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }' | head -n1
}
served_serial() {
    openssl s_client -connect 127.0.0.1:$S_IN -cert probe.pem -key probe.key </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
"$MESHWARD" ca request --server https://127.0.0.1:$CAP --bundle ca/bundle.pem \
    --credential-kind k8s-sat --token-file probe.tok --key-out probe.key --cert-out probe.pem \
    --ttl 1h >/dev/null 2>&1 || bad "probe certificate"

check "the first request through both sidecars succeeds" \
    "[ \"\$(curl -s -m 5 http://127.0.0.1:$C_SVC/x)\" = ok ]"
check "meshward_ca_reachable is 1" "[ \"\$(metric $S_ADMIN meshward_ca_reachable)\" = 1 ]"
serial0=$(served_serial)
exp0=$(metric $S_ADMIN meshward_svid_expiry_timestamp_seconds)
check "the server presents a CA-issued certificate" "[ -n '$serial0' ]"

# ---------------------------------------------------------------- load across rotations
read -r n_ok n_failed n_ka < <(mesh_load $C_SVC 26 0.02 2>load.err)
check "load across rotations: $n_ok requests, $n_ka on one keep-alive connection, 0 failed" \
    "[ '${n_failed:-x}' = 0 ] && [ '${n_ok:-0}' -gt 50 ] && [ '${n_ka:-0}' -gt 50 ]"
[ "${n_failed:-x}" = 0 ] || head -5 load.err
renewals=$(metric $S_ADMIN meshward_svid_renewals_total)
check "the server sidecar renewed at least twice (renewals ${renewals:-none})" "[ '${renewals:-0}' -ge 2 ]"
check "the client sidecar renewed at least twice" "[ \"\$(metric $C_ADMIN meshward_svid_renewals_total)\" -ge 2 ]"
serial1=$(served_serial)
check "the serial served changed ($serial0 -> $serial1)" "[ -n '$serial1' ] && [ '$serial0' != '$serial1' ]"
check "the expiry gauge moved on" "[ \"\$(metric $S_ADMIN meshward_svid_expiry_timestamp_seconds)\" != '$exp0' ]"
check "the SVIDs were never written to disk" "! find . -newer server.yaml -name '*.key' ! -name probe.key | grep -q ."

# ---------------------------------------------------------------- the CA stops
# Right after a renewal the SVID has 80 % of 30 s (24 s) left; the outage (10 s of load, then
# 4 s for the retries to count up) is longer than a rotation period (6 s +- 10 %) and leaves
# about 9 s for the CA to come back and the renewal to land before the SVID would expire.
r0=$(metric $S_ADMIN meshward_svid_renewals_total)
for _ in $(seq 1 120); do
    [ "$(metric $S_ADMIN meshward_svid_renewals_total)" != "$r0" ] && break
    sleep 0.1
done
r0=$(metric $S_ADMIN meshward_svid_renewals_total)
kill "$CA_PID"
wait "$CA_PID" 2>/dev/null
CA_PID=
read -r n_ok n_failed n_ka < <(mesh_load $C_SVC 10 0.02 2>load2.err)
check "CA down for 10 s: $n_ok requests, 0 failed" "[ '${n_failed:-x}' = 0 ] && [ '${n_ok:-0}' -gt 20 ]"
check "meshward_ca_reachable is 0 on the server sidecar" "[ \"\$(metric $S_ADMIN meshward_ca_reachable)\" = 0 ]"
check "meshward_ca_reachable is 0 on the client sidecar" "[ \"\$(metric $C_ADMIN meshward_ca_reachable)\" = 0 ]"
f1=$(metric $S_ADMIN meshward_svid_renewal_failures_total)
check "renewal failures counted (${f1:-none})" "[ '${f1:-0}' -ge 1 ]"
# Retries back off up to a tenth of the 30 s lifetime (3 s): wait longer than that.
sleep 4
f2=$(metric $S_ADMIN meshward_svid_renewal_failures_total)
check "  ... and counting up ($f1 -> ${f2:-none})" "[ '${f2:-0}' -gt '${f1:-0}' ]"
check "/readyz stays 200 while the SVID is valid" \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$S_ADMIN/readyz)\" = 200 ]"
check "the sidecar said it serves with the last good SVID" "grep -q 'serving with the SVID valid until' server.out"

# ---------------------------------------------------------------- the CA comes back
start_ca || bad "CA restart"
back=no
for _ in $(seq 1 150); do
    if [ "$(metric $S_ADMIN meshward_ca_reachable)" = 1 ] && [ "$(metric $C_ADMIN meshward_ca_reachable)" = 1 ]; then
        back=yes
        break
    fi
    sleep 0.1
done
check "meshward_ca_reachable returns to 1 on both sidecars" "[ $back = yes ]"
for _ in $(seq 1 100); do
    [ "$(metric $S_ADMIN meshward_svid_renewals_total)" -gt "${r0:-0}" ] && break
    sleep 0.1
done
r1=$(metric $S_ADMIN meshward_svid_renewals_total)
check "renewal resumed after the outage ($r0 -> ${r1:-none})" "[ '${r1:-0}' -gt '${r0:-0}' ]"
check "requests succeed after the outage" "[ \"\$(curl -s -m 5 http://127.0.0.1:$C_SVC/x)\" = ok ]"
check "no sanitizer reports" "! grep -q 'Sanitizer' server.out client.out"
finish
