#!/usr/bin/env bash
# CA mode with single-use join tokens, on 127.0.0.1: two sidecars (client and server) get 30 s
# SVIDs from `meshward ca serve` with a join token each, then renew by presenting their current
# SVID (POST /v1/svid/renew) at half the lifetime, so they keep serving well past the first SVID's
# expiry with zero failed requests, although their tokens are spent. The issuance log holds each
# renewal as a record of credential kind "svid" naming the serial it renewed, and the monitor
# finds nothing wrong with the chains.
set -u
MESHWARD=${MESHWARD:-$(dirname "$0")/../../build/meshward}
MESHWARD=$(cd "$(dirname "$MESHWARD")" && pwd)/$(basename "$MESHWARD")
. "$(dirname "$0")/lib_mesh.sh"
MESH_LOGS=(server.out client.out ca.err)
read -r CAP APP S_IN S_ADMIN C_SVC C_ADMIN < <(mesh_ports 6)
TD=cluster.local
cd "$W" || exit 1

"$MESHWARD" ca init --trust-domain $TD --out ca >/dev/null || { echo "ca init failed"; exit 1; }
"$MESHWARD" log keygen --name $TD/issuance --out lk >/dev/null || { echo "log keygen failed"; exit 1; }
token() { # SA FILE
    "$MESHWARD" ca token create --db ca.db --spiffe-id "spiffe://$TD/ns/foo/sa/$1" --ttl 10m \
        >tok.out 2>&1 || { echo "token create failed: $(cat tok.out)"; exit 1; }
    head -n1 tok.out >"$2"
    chmod 600 "$2"
}
token server server.tok
token client client.tok
token probe probe.tok
cat >regs.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata: {name: server}
spec: {kubernetes: {namespace: foo, serviceAccount: server}}
---
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata: {name: client}
spec: {kubernetes: {namespace: foo, serviceAccount: client}}
---
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata: {name: probe}
spec: {kubernetes: {namespace: foo, serviceAccount: probe}}
EOF

"$MESHWARD" ca serve --config ca/ca.yaml --listen 127.0.0.1:$CAP --log log --log-key lk/log.key \
    --db ca.db --registrations regs.yaml >ca.out 2>ca.err &
CA_PID=$!
mesh_wait_health $CAP ca.err || exit 1

mesh_backend $APP

identity() { # TOKEN-FILE
    cat <<EOF
  identity:
    mode: ca
    caURL: https://127.0.0.1:$CAP
    credentialFile: $1
    credentialKind: join-token
    ttl: 30s
    rotation: {fraction: 0.5, jitter: 0.1}
    bundleRefresh: 5s
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
[ $up = yes ] || { echo "sidecars did not start: $(cat server.out client.out ca.err)"; exit 1; }
ok "both sidecars got SVIDs from the CA with a join token and are ready"
start=$(date +%s)

metric() { # ADMIN-PORT NAME
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }' | head -n1
}
served_serial() {
    openssl s_client -connect 127.0.0.1:$S_IN -cert probe.pem -key probe.key </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
"$MESHWARD" ca request --server https://127.0.0.1:$CAP --bundle ca/bundle.pem \
    --credential-kind join-token --token-file probe.tok --key-out probe.key --cert-out probe.pem \
    --ttl 1h >/dev/null 2>&1 || bad "probe certificate"
check "the first request through both sidecars succeeds" \
    "[ \"\$(curl -s -m 5 http://127.0.0.1:$C_SVC/x)\" = ok ]"
serial0=$(served_serial)
exp0=$(metric $S_ADMIN meshward_svid_expiry_timestamp_seconds)
check "the server presents a CA-issued certificate" "[ -n '$serial0' ]"
# The tokens are spent: a second use is refused, so whatever follows is renewal by SVID.
check "the server's join token is spent" "! '$MESHWARD' ca request --server https://127.0.0.1:$CAP \
    --bundle ca/bundle.pem --credential-kind join-token --token-file server.tok --key-out x.key \
    --cert-out x.pem 2>&1 | grep -q issued"

# ---------------------------------------------------------------- load across renewals
# 30 s SVIDs renewed at 15 s (+- 1.5 s): 40 s covers two renewals and the first SVID's expiry.
read -r n_ok n_failed n_ka < <(mesh_load $C_SVC 40 0.05 2>load.err)
check "load across renewals: $n_ok requests, $n_ka on one keep-alive connection, 0 failed" \
    "[ '${n_failed:-x}' = 0 ] && [ '${n_ok:-0}' -gt 50 ] && [ '${n_ka:-0}' -gt 50 ]"
[ "${n_failed:-x}" = 0 ] || head -5 load.err
check "running $(($(date +%s) - start)) s, longer than the first SVID's 30 s" \
    "[ $(($(date +%s) - start)) -gt 32 ]"
for side in server:$S_ADMIN client:$C_ADMIN; do
    name=${side%%:*}
    port=${side##*:}
    n=$(metric "$port" meshward_svid_renewals_total)
    check "the $name sidecar renewed at least twice (renewals ${n:-none})" "[ '${n:-0}' -ge 2 ]"
    check "  ... with no failed renewal" "[ \"\$(metric $port meshward_svid_renewal_failures_total)\" = 0 ]"
    check "  ... and is ready" \
        "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/readyz)\" = 200 ]"
done
serial1=$(served_serial)
check "the serial served changed ($serial0 -> $serial1)" "[ -n '$serial1' ] && [ '$serial0' != '$serial1' ]"
check "the expiry gauge moved on" "[ \"\$(metric $S_ADMIN meshward_svid_expiry_timestamp_seconds)\" != '$exp0' ]"
check "no sidecar said it cannot renew" "! grep -qi 'cannot be renewed' server.out client.out"
check "no sidecar fell back to its (spent) join token" "! grep -q 'posting the credential' server.out client.out"

# ---------------------------------------------------------------- the log
s1=$(echo "$serial1" | tr 'A-F' 'a-f' | sed 's/^0*//')
"$MESHWARD" log prove log --pub lk/log.pub --serial "$serial1" --json >prove.out 2>&1
check "the serial served is in the issuance log as a renewal" \
    "grep -q '\"kind\":\"svid\"' prove.out && grep -q 'spiffe://$TD/ns/foo/sa/server' prove.out"
cat >mon.yaml <<'EOF'
apiVersion: meshward.io/v1alpha1
kind: IssuanceMonitorPolicy
metadata: {name: t}
spec:
  changeWindows: [{days: [Sun], hours: "00:00-00:01"}]
  requireRegistration: true
EOF
"$MESHWARD" ca audit log --pub lk/log.pub --policy mon.yaml --registrations regs.yaml >audit.out 2>&1
# Only the three first issuances (join tokens) fall outside the (nearly empty) change window:
# renewals are exempt from it, and every renewal chain is linear with known parents.
check "the audit ran" "[ -s audit.out ] || [ \$? = 0 ]"
check "renewals raise no change-window finding ($(grep -c ca-outside-change-window audit.out) findings)" \
    "[ \"\$(grep -c ca-outside-change-window audit.out)\" -le 3 ]"
check "no renewal-chain finding" "! grep -q 'ca-renewal' audit.out"
kill -0 "$CA_PID" && ok "the CA is still up" || bad "the CA died"
finish
