#!/usr/bin/env bash
# meshward policy check|mtls|lint|who-can against the shared Istio test data.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
: "${MESHWARD:?set MESHWARD to the meshward binary}"
: "${MW_TESTDATA_DIR:?set MW_TESTDATA_DIR to ../shared/testdata}"
V="$MW_TESTDATA_DIR/istio/validation"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
EXPECT_DIR=$tmp

cat >"$tmp/p.yaml" <<'Y'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-bar, namespace: foo}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/bar/sa/sleep"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: STRICT}}
Y
cat >"$tmp/r1.json" <<'J'
{"protocol":"http","source_principal":"cluster.local/ns/bar/sa/sleep","source_ip":"10.0.0.5",
 "destination_port":8000,"method":"GET","path":"/ip","host":"httpbin.foo","headers":{}}
J
cat >"$tmp/r2.json" <<'J'
{"protocol":"http","source_principal":"cluster.local/ns/bar/sa/sleep","destination_port":8000,
 "method":"GET","path":"/x/../admin","host":"httpbin.foo"}
J

for sub in check mtls lint who-can; do
    expect 0 "$MESHWARD" policy "$sub" --help; has usage
done
expect 0 "$MESHWARD" policy check -f "$tmp/p.yaml" --workload-namespace foo --label app=httpbin --request "$tmp/r1.json"
has ALLOW; has foo/allow-bar
expect 0 "$MESHWARD" policy check -f "$tmp/p.yaml" --workload-namespace foo --request "$tmp/r2.json" --json
has '"decision":"DENY"'; has 'foo/deny-admin'
expect 0 "$MESHWARD" policy check -f "$tmp/p.yaml" --workload-namespace foo --request - <"$tmp/r1.json"
has ALLOW
echo '{"protocol":"udp"}' >"$tmp/bad.json"
expect 1 "$MESHWARD" policy check -f "$tmp/p.yaml" --workload-namespace foo --request "$tmp/bad.json"
expect 2 "$MESHWARD" policy check -f "$tmp/p.yaml" --request "$tmp/r1.json"
expect 2 "$MESHWARD" policy check --bogus
expect 3 "$MESHWARD" policy check -f "$tmp/missing.yaml" --workload-namespace foo --request "$tmp/r1.json"
expect 0 "$MESHWARD" policy mtls -f "$tmp/p.yaml" --workload-namespace foo --port 8000
has STRICT; has foo/default
expect 0 "$MESHWARD" policy mtls -f "$tmp/p.yaml" --workload-namespace bar --port 8000 --json
has '"mode":"PERMISSIVE"'
expect 2 "$MESHWARD" policy mtls -f "$tmp/p.yaml" --workload-namespace foo --port 0
expect 0 "$MESHWARD" policy lint -f "$V/authz-valid.yaml" -f "$V/peerauth-valid.yaml"
has "4 valid, 0 invalid"
expect 1 "$MESHWARD" policy lint -f "$V/peerauth-invalid.yaml"
has "peerauth-invalid.yaml:"; has "portLevelMtls requires selector"; has "0 valid, 6 invalid"
expect 0 "$MESHWARD" policy who-can -f "$tmp/p.yaml" --workload-namespace foo
has "cluster.local/ns/bar/sa/sleep"; has "deny-admin"

expect_summary
