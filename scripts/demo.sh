#!/usr/bin/env bash
# meshward demo, today: what the product can already do, on files.
#   scripts/demo.sh PATH/TO/meshward
# The full demo (control plane, sidecars in network namespaces, live traffic)
# comes with the CA, sidecar and admission issues; this script says so at the end.
set -euo pipefail
mw=${1:-build/meshward}
root=$(cd "$(dirname "$0")/.." && pwd)
td="$root/../shared/testdata"
work=$(mktemp -d /tmp/meshward-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@" || printf '(exit %d)\n' "$?"; }

step "1. A trust domain: root CA -> intermediate -> workload SVID, made with openssl"
cat >ext.cnf <<'CNF'
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
nameConstraints = critical, permitted;URI:.example.org, permitted;URI:example.org
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = critical, URI:spiffe://example.org/ns/shop/sa/checkout
authorityKeyIdentifier = keyid
[evil]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectAltName = URI:spiffe://example.org/ns/shop/sa/checkout, URI:spiffe://example.org/ns/admin/sa/root
CNF
openssl ecparam -name prime256v1 -genkey -noout -out root.key 2>/dev/null
openssl req -x509 -new -key root.key -subj "/O=example.org/CN=demo root" -days 30 \
  -extensions root -config <(cat /etc/ssl/openssl.cnf ext.cnf) -out root.pem 2>/dev/null
for n in inter leaf evil; do openssl ecparam -name prime256v1 -genkey -noout -out $n.key 2>/dev/null; done
openssl req -new -key inter.key -subj "/O=example.org/CN=demo intermediate" -out inter.csr 2>/dev/null
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 7 \
  -extfile ext.cnf -extensions inter -out inter.pem 2>/dev/null
for n in leaf evil; do
  openssl req -new -key $n.key -subj "/O=example.org" -out $n.csr 2>/dev/null
  openssl x509 -req -in $n.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 1 \
    -extfile ext.cnf -extensions $n -out $n.pem 2>/dev/null
done
cat leaf.pem inter.pem > svid.pem
cp root.pem bundle.pem
echo "made svid.pem (leaf + intermediate), svid key leaf.key, trust bundle bundle.pem"

step "2. Inspect and validate the SVID against the bundle of its trust domain"
run "$mw" svid inspect svid.pem --key leaf.key --bundle bundle.pem

step "3. The same, as JSON for machines"
run "$mw" svid inspect svid.pem --bundle bundle.pem --json

step "4. An SVID with two SPIFFE IDs is refused (X509-SVID standard: exactly one URI SAN)"
cat evil.pem inter.pem > evil-svid.pem
run "$mw" svid inspect evil-svid.pem --bundle bundle.pem

step "5. Checked at a time after it expired (injected clock)"
run "$mw" svid inspect svid.pem --bundle bundle.pem --at 2031-01-01T00:00:00Z

step "6. A SPIFFE bundle in JWKS form (go-spiffe test data)"
if [ -d "$td" ]; then
  run "$mw" bundle inspect "$td/spiffe/bundle/spiffebundle/testdata/spiffebundle_valid_2.json" --trust-domain domain.test
else
  echo "(../shared/testdata is not beside the repository; skipping)"
fi

step "7. Istio AuthorizationPolicy, evaluated as Istio would"
cat >policy.yaml <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: checkout-allow-frontend
  namespace: shop
spec:
  selector:
    matchLabels:
      app: checkout
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/frontend"]
    to:
    - operation:
        methods: ["POST"]
        paths: ["/api/orders/*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: shop
spec:
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin/*"]
YAML
cat >allowed.json <<'JSON'
{"protocol":"http","source_principal":"cluster.local/ns/shop/sa/frontend","destination_port":8080,"method":"POST","path":"/api/orders/42"}
JSON
cat >bypass.json <<'JSON'
{"protocol":"http","source_principal":"cluster.local/ns/shop/sa/frontend","destination_port":8080,"method":"POST","path":"/api/orders/../../admin//%2e%2e/admin/users"}
JSON
if "$mw" policy --help >/dev/null 2>&1; then
  run "$mw" policy check -f policy.yaml --workload-namespace shop --label app=checkout --request allowed.json
  echo "A path that tries to slip past the DENY rule with .., // and %2e%2e:"
  run "$mw" policy check -f policy.yaml --workload-namespace shop --label app=checkout --request bypass.json
else
  echo "(policy engine not in this build yet)"
fi

step "Coming next"
cat <<'TXT'
- meshward ca: a mesh CA issuing 1-hour SVIDs only to verified artifacts, keys in an HSM (PKCS#11),
  every certificate in a Merkle issuance log.
- meshward verify: Sigstore bundles and SLSA provenance, offline.
- meshward sidecar + admission: mTLS, Istio authorization and egress control on live traffic in
  network namespaces, with a dashboard.
TXT
