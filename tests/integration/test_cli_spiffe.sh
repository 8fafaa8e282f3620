#!/usr/bin/env bash
# `meshward svid inspect` and `meshward bundle inspect` against a PKI made with the
# openssl CLI (and checked with `openssl verify`), and against the go-spiffe files.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"

: "${MESHWARD:?set MESHWARD to the meshward binary}"
if [ -z "${MW_TESTDATA_DIR:-}" ] || [ ! -d "${MW_TESTDATA_DIR}/spiffe" ]; then
  echo "FAIL: MW_TESTDATA_DIR (${MW_TESTDATA_DIR:-unset}) has no spiffe/ folder;" \
    "the shared test data must be checked out beside the repository" >&2
  exit 1
fi
td="$MW_TESTDATA_DIR/spiffe"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
EXPECT_DIR=$tmp

# ---------------------------------------------------------------- a PKI with the openssl CLI
cd "$tmp"
cat >ext.cnf <<'EOF'
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
subjectAltName = URI:spiffe://example.org
[int]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/ns/a/sa/b
[leaf2]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/a, URI:spiffe://example.org/b
EOF
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
  -out root.pem -days 30 -subj "/O=example.org/CN=root" -extensions root \
  -config ext.cnf -set_serial 1
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr \
  -subj "/O=example.org/CN=int" -config ext.cnf
q openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -set_serial 2 -days 20 \
  -extfile ext.cnf -extensions int -out int.pem
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
  -out leaf.csr -subj "/O=example.org/CN=workload" -config ext.cnf
q openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -set_serial 3 -days 1 \
  -extfile ext.cnf -extensions leaf -out leaf.pem
q openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -set_serial 4 -days 1 \
  -extfile ext.cnf -extensions leaf2 -out leaf2.pem
q openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
  -out other.pem -days 30 -subj "/O=example.org/CN=other root" -extensions root -config ext.cnf
chmod 600 ./*.key
cat leaf.pem int.pem >chain.pem
cat leaf2.pem int.pem >chain2.pem
openssl x509 -in leaf.pem -outform DER -out leaf.der
for f in root.pem int.pem leaf.pem leaf2.pem other.pem; do
  [ -s "$f" ] || { echo "FAIL: openssl did not make $f"; exit 1; }
done
not_after=$(openssl x509 -in leaf.pem -noout -enddate | cut -d= -f2)
later=$(date -u -d "$not_after + 1 hour" +%Y-%m-%dT%H:%M:%SZ)
earlier=$(date -u -d "$(openssl x509 -in leaf.pem -noout -startdate | cut -d= -f2) - 1 hour" \
  +%Y-%m-%dT%H:%M:%SZ)

expect_output "accepts a valid chain" 0 "verdict:       ok" -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.pem
expect_output "shows the SPIFFE ID" 0 "spiffe_id:     spiffe://example.org/ns/a/sa/b" -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.pem --key leaf.key
expect_output "key matches" 0 "key_match:     yes" -- \
  "$MESHWARD" svid inspect chain.pem --key leaf.key
expect_output "openssl agrees: valid" 0 "leaf.pem: OK" -- \
  openssl verify -CAfile root.pem -untrusted int.pem leaf.pem
expect_output "json output" 0 '"verdict": "ok"' -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.pem --json
expect_output "DER leaf" 0 "chain_length:  1" -- "$MESHWARD" svid inspect leaf.der
expect_output "wrong bundle" 1 "chain does not verify against the bundle for example.org" -- \
  "$MESHWARD" svid inspect chain.pem --bundle other.pem
expect_output "openssl agrees: wrong bundle" 2 "unable to get local issuer certificate" -- \
  openssl verify -CAfile other.pem -untrusted int.pem leaf.pem
expect_output "wrong trust domain" 1 "but the bundle is for other.org" -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.pem --trust-domain other.org
expect_output "expired (--at)" 1 "certificate at depth 0 expired at" -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.pem --at "$later"
expect_output "openssl agrees: expired" 2 "certificate has expired" -- \
  openssl verify -attime "$(date -u -d "$later" +%s)" -CAfile root.pem -untrusted int.pem leaf.pem
expect_output "not yet valid (--at)" 1 "is not valid until" -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.pem --at "$earlier"
expect_output "missing intermediate" 1 "unable to get local issuer certificate" -- \
  "$MESHWARD" svid inspect leaf.pem --bundle root.pem
expect_output "two URI SANs" 1 "chain2.pem: certificate has 2 URI SANs, want 1" -- \
  "$MESHWARD" svid inspect chain2.pem
expect_output "wrong key" 1 "leaf does not match private key" -- \
  "$MESHWARD" svid inspect chain.pem --key other.key
chmod 644 leaf.key
expect_output "readable key refused" 3 "secrets must be 0600" -- \
  "$MESHWARD" svid inspect chain.pem --key leaf.key
chmod 600 leaf.key
expect_output "missing file" 3 "nope.pem: No such file or directory" -- \
  "$MESHWARD" svid inspect nope.pem
expect_output "missing bundle" 3 "nope.json" -- \
  "$MESHWARD" svid inspect chain.pem --bundle nope.json
expect_output "bad --at" 2 "RFC 3339" -- "$MESHWARD" svid inspect chain.pem --bundle root.pem --at 2026
expect_output "no file" 2 "want one FILE" -- "$MESHWARD" svid inspect
expect_output "unknown option" 2 "unknown option" -- "$MESHWARD" svid inspect chain.pem --nope
expect_output "svid --help" 0 "usage: meshward svid inspect" -- "$MESHWARD" svid --help
expect_output "svid inspect --help" 0 "--bundle BUNDLE" -- "$MESHWARD" svid inspect --help
expect_output "bundle --help" 0 "usage: meshward bundle inspect" -- "$MESHWARD" bundle --help
expect_output "bundle inspect --help" 0 "--trust-domain TD" -- "$MESHWARD" bundle inspect --help

# A SPIFFE JWKS of our root, written by hand from the DER, checks the JWKS path end to end.
der64=$(openssl x509 -in root.pem -outform DER | base64 -w0)
printf '{"keys":[{"use":"x509-svid","kty":"EC","x5c":["%s"]}],"spiffe_sequence":7}\n' \
  "$der64" >root.json
expect_output "JWKS bundle accepted" 0 "verdict:       ok" -- \
  "$MESHWARD" svid inspect chain.pem --bundle root.json --trust-domain example.org
expect_output "bundle inspect JWKS" 0 "sequence:          7" -- \
  "$MESHWARD" bundle inspect root.json --trust-domain example.org
expect_output "bundle inspect PEM" 0 "format:            pem" -- "$MESHWARD" bundle inspect root.pem

# ---------------------------------------------------------------- the go-spiffe files
sv="$td/svid/x509svid/testdata"
# Keys there are world-readable; meshward refuses those, so copy them private.
for k in key-pkcs8-rsa.pem key-pkcs8-ecdsa.pem good-key-and-cert.pem; do
  install -m 600 "$sv/$k" "$tmp/gs-$k"
done
expect_output "go-spiffe leaf + key" 0 "spiffe://example.org/workload-1" -- \
  "$MESHWARD" svid inspect "$sv/good-leaf-only.pem" --key "$tmp/gs-key-pkcs8-rsa.pem"
expect_output "go-spiffe leaf + intermediate" 0 "chain_length:  2" -- \
  "$MESHWARD" svid inspect "$sv/good-leaf-and-intermediate.pem" --key "$tmp/gs-key-pkcs8-ecdsa.pem"
expect_output "go-spiffe key and cert in one file" 0 "key_match:     yes" -- \
  "$MESHWARD" svid inspect "$tmp/gs-good-key-and-cert.pem" --key "$tmp/gs-good-key-and-cert.pem"
expect_output "go-spiffe mismatched key" 1 "leaf does not match private key" -- \
  "$MESHWARD" svid inspect "$sv/good-leaf-and-intermediate.pem" --key "$tmp/gs-key-pkcs8-rsa.pem"
expect_output "go-spiffe world-readable key" 3 "0600" -- \
  "$MESHWARD" svid inspect "$sv/good-leaf-only.pem" --key "$sv/key-pkcs8-rsa.pem"
while read -r file frag; do
  expect_output "go-spiffe $file" 1 "$frag" -- "$MESHWARD" svid inspect "$sv/$file"
done <<'EOF'
wrong-leaf-empty-id.pem certificate contains no URI SAN
wrong-leaf-ca-true.pem leaf certificate must not have CA flag
wrong-leaf-no-digital-signature.pem leaf must have digitalSignature
wrong-leaf-cert-sign.pem leaf must not have keyCertSign
wrong-leaf-crl-sign.pem leaf must not have cRLSign
wrong-intermediate-no-ca.pem signing certificate 1 must have CA flag
wrong-intermediate-no-key-cert-sign.pem signing certificate 1 must have keyCertSign
corrupt-cert.pem malformed certificate
key-pkcs8-rsa.pem no certificates found
EOF

sb="$td/bundle/spiffebundle/testdata"
expect_output "bundle valid_2" 0 "jwt_authorities:   6" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_valid_2.json" --trust-domain domain.test
expect_output "bundle valid_2 refresh" 0 "refresh_hint:      60s" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_valid_2.json"
expect_output "bundle with WIT keys" 0 "ignored_keys:      2" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_valid_with_wit.json"
expect_output "bundle two x5c" 0 "only the first is used" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_multiple_x509.json"
expect_output "bundle missing kid" 1 "jwt-svid key has no kid" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_missing_kid.json"
expect_output "bundle no keys" 1 "no authorities" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_no_keys.json"
expect_output "jwt bundle" 0 "jwt_authorities:   2" -- \
  "$MESHWARD" bundle inspect "$td/bundle/jwtbundle/testdata/jwks_valid_2.json" --format jwt
expect_output "x509 bundle certs" 0 "x509_authorities:  2" -- \
  "$MESHWARD" bundle inspect "$td/bundle/x509bundle/testdata/certs.pem"
expect_output "x509 bundle key" 1 "want CERTIFICATE" -- \
  "$MESHWARD" bundle inspect "$td/bundle/x509bundle/testdata/key.pem"
expect_output "x509 bundle empty" 1 "bundle is empty" -- \
  "$MESHWARD" bundle inspect "$td/bundle/x509bundle/testdata/empty.pem"
expect_output "bundle bad format" 2 "--format" -- \
  "$MESHWARD" bundle inspect "$sb/spiffebundle_valid_2.json" --format xml

expect_summary
