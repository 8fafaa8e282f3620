#!/usr/bin/env bash
# Control mode on 127.0.0.1: `meshward control` (the CA service plus GET /v1/config) with a mesh
# directory, a server sidecar and a client sidecar in CA + control mode, a backend and a local
# "external" server. Checks: /v1/config answers only to a client SVID, only that workload's
# namespace (and the root namespace), long-polls 304 when nothing changed; policies, the service
# registry and egress declarations from the control plane decide traffic; editing the mesh
# directory changes decisions within seconds without restarting a sidecar; a broken edit is
# refused and the previous version keeps serving; with the control plane stopped traffic goes on
# and meshward_control_reachable is 0, and 1 again once it is back; no control plane, no start.
set -u
MESHWARD=${MESHWARD:-$(dirname "$0")/../../build/meshward}
MESHWARD=$(cd "$(dirname "$MESHWARD")" && pwd)/$(basename "$MESHWARD")
. "$(dirname "$0")/lib_mesh.sh"
MESH_LOGS=(ctl.err server.out client.out)
read -r CTLP APP EXT S_IN S_ADMIN C_OUT C_ADMIN < <(mesh_ports 7)
TD=cluster.local
cd "$W" || exit 1

"$MESHWARD" ca init --trust-domain $TD --out ca >/dev/null || { echo "ca init failed"; exit 1; }
"$MESHWARD" log keygen --name $TD/issuance --out lk >/dev/null || { echo "log keygen failed"; exit 1; }
mesh_k8s_issuer
mesh_k8s_token foo server server.tok
mesh_k8s_token foo client client.tok
mesh_k8s_token foo probe probe.tok
mesh_k8s_token bar other other.tok

# ---------------------------------------------------------------- the mesh directory
mkdir mesh
cat >mesh/registry.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: MeshService
metadata: {name: server, namespace: foo}
spec:
  host: server.foo
  port: 80
  endpoints: ["127.0.0.1:$S_IN"]
  spiffeId: spiffe://$TD/ns/foo/sa/server
EOF
write_policy() { # the paths the client may GET
    cat >mesh/foo-authz.yaml.tmp <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-allow, namespace: foo}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["$TD/ns/foo/sa/client"]}}]
    to: [{operation: {methods: [GET], paths: [$1]}}]
EOF
    mv mesh/foo-authz.yaml.tmp mesh/foo-authz.yaml
}
write_policy '"/allowed/*"'
cat >mesh/mesh-wide.yaml <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: meshward.io/v1alpha1
kind: EgressPolicy
metadata: {name: ext, namespace: foo}
spec:
  egress:
  - {cidr: 127.0.0.1/32, ports: [$EXT]}
EOF
cat >mesh/bar.yaml <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bar-secret-policy, namespace: bar}
spec: {action: DENY, rules: [{to: [{operation: {paths: ["/bar"]}}]}]}
EOF

start_control() {
    "$MESHWARD" control --mesh mesh --config ca/ca.yaml --listen 127.0.0.1:$CTLP --log log \
        --log-key lk/log.key --db ca.db --allow-unregistered \
        --k8s-jwks k8s.jwks --k8s-issuer https://k8s.example --k8s-audience meshward-ca \
        >>ctl.out 2>>ctl.err &
    CA_PID=$!
    mesh_wait_health $CTLP ctl.err
}

# A mesh directory that does not load: no start, and the file named.
mkdir badmesh
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n' >badmesh/cm.yaml
"$MESHWARD" control --mesh badmesh --config ca/ca.yaml --listen 127.0.0.1:0 --log badlog \
    --log-key lk/log.key --db bad.db >/dev/null 2>bad.err
rc=$?
check "control refuses a mesh directory that does not load (exit $rc)" \
    '[ $rc = 1 ] && grep -q "cm.yaml:1:1: not a kind the control plane distributes" bad.err'
"$MESHWARD" ca serve --mesh mesh --config ca/ca.yaml --listen 127.0.0.1:0 --log badlog \
    --log-key lk/log.key --db bad.db >/dev/null 2>&1
check "ca serve refuses --mesh (usage)" '[ $? = 2 ]'

start_control || exit 1

# ---------------------------------------------------------------- GET /v1/config by hand
"$MESHWARD" ca request --server https://127.0.0.1:$CTLP --bundle ca/bundle.pem \
    --credential-kind k8s-sat --token-file probe.tok --key-out probe.key --cert-out probe.pem \
    >/dev/null 2>&1 || { echo "ca request failed"; exit 1; }
"$MESHWARD" ca request --server https://127.0.0.1:$CTLP --bundle ca/bundle.pem \
    --credential-kind k8s-sat --token-file other.tok --key-out other.key --cert-out other.pem \
    >/dev/null 2>&1 || { echo "ca request failed"; exit 1; }
get() { # CERT-BASENAME QUERY -> body; status in $W/status
    curl -sk -o body.json -w '%{http_code}' ${1:+--cert $1.pem --key $1.key} \
        "https://127.0.0.1:$CTLP/v1/config$2" >status 2>/dev/null
    cat body.json 2>/dev/null
}
get "" "?since=0" >/dev/null
check "no client certificate: 401" '[ "$(cat status)" = 401 ]'
get probe "?since=0" >probe.json
check "a workload SVID: 200" '[ "$(cat status)" = 200 ]'
check "the answer names the caller" \
    '[ "$(jq -r .workload probe.json)" = "spiffe://'$TD'/ns/foo/sa/probe" ]'
jq -r .documents probe.json >probe.docs
check "foo gets its namespace's policy, egress, the root namespace and the registry" \
    'grep -q server-allow probe.docs && grep -q "kind: EgressPolicy" probe.docs && grep -q "kind: PeerAuthentication" probe.docs && grep -q "kind: MeshService" probe.docs'
check "foo does not get bar's policy" '! grep -q bar-secret-policy probe.docs'
get other "?since=0" >other.json
check "bar gets bar's policy and not foo's" \
    'jq -r .documents other.json | grep -q bar-secret-policy && ! jq -r .documents other.json | grep -q server-allow'
V=$(jq -r .version probe.json)
get probe "?since=0&workload=spiffe://$TD/ns/foo/sa/server" >/dev/null
check "asking for another workload: 403" '[ "$(cat status)" = 403 ]'
t0=$(date +%s.%N)
get probe "?since=$V&wait=2" >/dev/null
t1=$(date +%s.%N)
check "long-poll at the current version: 304 after the wait ($(echo "$t1 - $t0" | bc 2>/dev/null || true)s)" \
    '[ "$(cat status)" = 304 ] && python3 -c "import sys; sys.exit(0 if 1.8 < $t1 - $t0 < 6 else 1)"'
# One workload may hold 8 long-polls at once; the ninth is refused while they wait.
polls=()
for i in 1 2 3 4 5 6 7 8; do
    curl -sk -o /dev/null --cert probe.pem --key probe.key \
        "https://127.0.0.1:$CTLP/v1/config?since=$V&wait=4" &
    polls+=($!)
done
sleep 1
get probe "?since=$V&wait=4" >/dev/null
check "a ninth long-poll from one workload: 429" '[ "$(cat status)" = 429 ]'
get other "?since=0" >/dev/null
check "another workload is still answered" '[ "$(cat status)" = 200 ]'
wait "${polls[@]}"
get probe "?since=abc" >/dev/null
check "a bad since: 400" '[ "$(cat status)" = 400 ]'
# An SVID of this trust domain that does not name a namespace: no configuration for it.
"$MESHWARD" ca token create --db ca.db --spiffe-id spiffe://$TD/batch/nightly --ttl 10m \
    >odd.tok 2>/dev/null && chmod 600 odd.tok
"$MESHWARD" ca request --server https://127.0.0.1:$CTLP --bundle ca/bundle.pem \
    --credential-kind join-token --token-file odd.tok --key-out odd.key --cert-out odd.pem \
    >/dev/null 2>&1
get odd "?since=0" >/dev/null
check "an SVID without /ns/NS/sa/SA: 403" '[ -s odd.pem ] && [ "$(cat status)" = 403 ]'
get probe "?since=$V&wait=x" >/dev/null
check "a bad wait: 400" '[ "$(cat status)" = 400 ]'

# ---------------------------------------------------------------- sidecars in control mode
mesh_backend $APP app
mesh_backend $EXT external

sidecar_yaml() { # NAME TOKEN
    cat <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: $1}
spec:
  workload: {namespace: foo, serviceAccount: $1, labels: {app: $1}}
  identity:
    mode: ca
    caURL: https://127.0.0.1:$CTLP
    credentialFile: $2
    credentialKind: k8s-sat
    bundles: [{trustDomain: $TD, file: ca/bundle.pem}]
  control: {url: "https://127.0.0.1:$CTLP", pollTimeout: 5s}
EOF
}
{ sidecar_yaml server server.tok
  printf '  inbound:\n    ports: [{port: %d, protocol: http, listenPort: %d, appPort: %d}]\n' $APP $S_IN $APP
  printf '  admin: {port: %d}\n' $S_ADMIN
} >server.yaml
{ sidecar_yaml client client.tok
  printf '  outbound: {port: %d}\n' $C_OUT
  printf '  admin: {port: %d}\n' $C_ADMIN
} >client.yaml

# Configuration checks: control needs CA mode, and policies come from one place.
sed 's/^  control:.*/&\n  policies: [x.yaml]/' client.yaml >twice.yaml
"$MESHWARD" sidecar check-config twice.yaml >twice.out 2>&1
check "control mode refuses local policies" 'grep -q "comes from the control plane in control mode" twice.out'

"$MESHWARD" sidecar check-config client.yaml >cc.out 2>&1
rc=$?
check "check-config in control mode says where policies come from (exit $rc)" \
    '[ $rc = 0 ] && grep -q "control plane https://127.0.0.1:$CTLP: policies, egress and the registry come from it" cc.out'

# No control plane at the URL: no start.
sed "s|url: \"https://127.0.0.1:$CTLP\"|url: \"https://127.0.0.1:1\"|" client.yaml >noctl.yaml
timeout 30 "$MESHWARD" sidecar run --config noctl.yaml >noctl.out 2>&1
rc=$?
check "no control plane, no start (exit $rc)" \
    '[ $rc != 0 ] && [ $rc != 124 ] && grep -q "no configuration from the control plane" noctl.out'

"$MESHWARD" sidecar run --config server.yaml >server.out 2>&1 &
PIDS+=($!)
"$MESHWARD" sidecar run --config client.yaml >client.out 2>&1 &
PIDS+=($!)
ready() { curl -s "http://127.0.0.1:$1/readyz" 2>/dev/null | grep -qx ready; }
for _ in $(seq 1 100); do ready $S_ADMIN && ready $C_ADMIN && break; sleep 0.1; done
check "both sidecars ready" 'ready $S_ADMIN && ready $C_ADMIN'

via() { # PATH [HOST:PORT] -> status
    curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$C_OUT" "http://${2:-server.foo:80}$1" 2>/dev/null
}
metric() { # ADMIN-PORT NAME -> value
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}
check "allowed by the control plane's policy: 200" '[ "$(via /allowed/x)" = 200 ]'
s=$(via /other); check "not allowed: 403 (got $s)" "[ $s = 403 ]"
check "egress declared by the control plane: 200" '[ "$(via / 127.0.0.1:$EXT)" = 200 ]'
check "egress not declared: refused" '[ "$(via / 127.0.0.1:$APP)" != 200 ]'
check "version in use is the control plane's" '[ "$(metric $S_ADMIN meshward_config_version)" = "$V" ]'
check "control reachable" '[ "$(metric $C_ADMIN meshward_control_reachable)" = 1 ]'

# An edit to the mesh directory: decisions change without a restart.
write_policy '"/allowed/*", "/other"'
for _ in $(seq 1 100); do [ "$(via /other)" = 200 ] && break; sleep 0.1; done
check "after the edit, /other is allowed" '[ "$(via /other)" = 200 ]'
check "the server applied a new version" \
    '[ "$(metric $S_ADMIN meshward_config_updates_total)" = 1 ] && [ "$(metric $S_ADMIN meshward_config_version)" != "$V" ]'
V2=$(metric $S_ADMIN meshward_config_version)

# A broken edit: refused by the control plane; the previous version keeps serving.
printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: broken, namespace: foo}\nspec: {action: MAYBE}\n' >mesh/broken.yaml
for _ in $(seq 1 50); do grep -q "mesh not loaded" ctl.err && break; sleep 0.1; done
check "the control plane refuses the broken file, naming it" 'grep -q "broken.yaml:" ctl.err'
sleep 1
check "sidecars keep the previous version" \
    '[ "$(metric $S_ADMIN meshward_config_version)" = "$V2" ] && [ "$(via /other)" = 200 ]'
rm mesh/broken.yaml

# The control plane stopped: traffic goes on, the metric says so; back: reachable again.
kill "$CA_PID"; wait "$CA_PID" 2>/dev/null; CA_PID=
for _ in $(seq 1 100); do [ "$(metric $C_ADMIN meshward_control_reachable)" = 0 ] && break; sleep 0.1; done
check "control stopped: meshward_control_reachable 0" '[ "$(metric $C_ADMIN meshward_control_reachable)" = 0 ]'
check "traffic goes on with the last version" '[ "$(via /allowed/y)" = 200 ] && [ "$(via /nope)" = 403 ]'
start_control || finish
for _ in $(seq 1 400); do [ "$(metric $C_ADMIN meshward_control_reachable)" = 1 ] && break; sleep 0.1; done
check "control back: reachable 1" '[ "$(metric $C_ADMIN meshward_control_reachable)" = 1 ]'
write_policy '"/allowed/*"'
for _ in $(seq 1 100); do [ "$(via /other)" = 403 ] && break; sleep 0.1; done
check "after the restart, edits apply again" '[ "$(via /other)" = 403 ]'
finish
