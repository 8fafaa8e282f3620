#!/usr/bin/env bash
# `meshward ca`: a CA made by meshward (file keys, SoftHSM2 keys, an offline root), SVIDs
# issued for CSRs made by the openssl CLI, and every chain checked by the real
# `openssl verify -x509_strict` and by `meshward svid inspect` against the published bundle.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"

: "${MESHWARD:?set MESHWARD to the meshward binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
EXPECT_DIR=$tmp
cd "$tmp"

# split CHAIN LEAF INTER: the first and second certificate of a PEM chain.
split() {
  awk -v a="$2" -v b="$3" '/BEGIN CERT/{n++} {print > (n == 1 ? a : b)}' "$1"
}

# strict CAFILE CHAIN NAME: openssl verify -x509_strict of the chain's leaf via its intermediate.
strict() {
  split "$2" "$tmp/leaf.pem" "$tmp/inter.pem"
  expect_output "$3: openssl verify -x509_strict" 0 "leaf.pem: OK" -- \
    openssl verify -x509_strict -purpose sslclient -CAfile "$1" -untrusted "$tmp/inter.pem" \
    "$tmp/leaf.pem"
  expect_output "$3: openssl verify (server)" 0 "OK" -- \
    openssl verify -x509_strict -purpose sslserver -CAfile "$1" -untrusted "$tmp/inter.pem" \
    "$tmp/leaf.pem"
}

csr() { # csr NAME KEYALG...: key NAME.key and NAME.csr asking for a DNS and a foreign URI name
  local name=$1
  shift
  openssl genpkey "$@" -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "/CN=evil" -out "$name.csr" \
    -addext "subjectAltName=DNS:evil.example,URI:spiffe://example.org/admin" 2>/dev/null
}

ID=spiffe://example.org/ns/prod/sa/web

# ---------------------------------------------------------------- a CA with file keys
expect_output "ca --help" 0 "usage: meshward ca" -- "$MESHWARD" ca --help
for sub in init issue info rotate sign-intermediate import-intermediate; do
  expect_output "ca $sub --help" 0 "usage: meshward ca $sub" -- "$MESHWARD" ca "$sub" --help
done
expect_output "ca unknown" 2 "unknown command 'frobnicate'" -- "$MESHWARD" ca frobnicate
expect_output "init without --out" 2 "--trust-domain and --out are required" -- \
  "$MESHWARD" ca init --trust-domain example.org
expect_output "init bad option" 2 "unknown option" -- "$MESHWARD" ca init --bogus
expect_output "init bad ttl" 2 "--root-ttl" -- "$MESHWARD" ca init --trust-domain example.org \
  --out ca0 --root-ttl 10w
expect_output "init bad trust domain" 1 "" -- "$MESHWARD" ca init --trust-domain Example.ORG --out ca0
expect_output "init" 0 "made CA for example.org" -- "$MESHWARD" ca init --trust-domain example.org --out ca
expect_output "init twice" 1 "refusing to replace a CA" -- \
  "$MESHWARD" ca init --trust-domain example.org --out ca
for f in ca/root.key ca/intermediate-1.key; do
  mode=$(stat -c %a "$f")
  if [ "$mode" = 600 ]; then ok; else bad "$f has mode $mode, want 600"; fi
done
expect_output "root is a CA" 0 "CA:TRUE" -- openssl x509 -in ca/root.pem -noout -text
expect_output "intermediate name constraints" 0 "URI:example.org" -- \
  openssl x509 -in ca/intermediate-1.pem -noout -text
expect_output "intermediate pathlen 0" 0 "pathlen:0" -- openssl x509 -in ca/intermediate-1.pem -noout -text
expect_output "bundle.jwks.json" 0 "x509-svid" -- cat ca/bundle.jwks.json
expect_output "bundle inspect" 0 "" -- "$MESHWARD" bundle inspect ca/bundle.jwks.json
expect_output "ca info" 0 "active" -- "$MESHWARD" ca info --config ca/ca.yaml

# ---------------------------------------------------------------- issuance
csr p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
expect_output "issue P-256" 0 "issued $ID" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr --spiffe-id "$ID" --out p256.chain
strict ca/root.pem p256.chain "P-256"
openssl x509 -in leaf.pem -noout -text >leaf.txt
expect_output "leaf URI SAN" 0 "URI:$ID" -- cat leaf.txt
if grep -q "evil" leaf.txt; then bad "the leaf carries a name from the CSR"; else ok; fi
expect_output "leaf key usage" 0 "Digital Signature" -- grep -A1 "Key Usage: critical" leaf.txt
expect_output "leaf EKU" 0 "TLS Web Server Authentication, TLS Web Client Authentication" -- cat leaf.txt
expect_output "leaf not a CA" 0 "CA:FALSE" -- cat leaf.txt
expect_output "leaf lifetime 1h" 0 "" -- bash -c \
  "nb=\$(date -d \"\$(openssl x509 -in leaf.pem -noout -startdate | cut -d= -f2)\" +%s);
   na=\$(date -d \"\$(openssl x509 -in leaf.pem -noout -enddate | cut -d= -f2)\" +%s);
   test \$((na - nb)) -eq 3610"
expect_output "svid inspect with bundle" 0 "" -- \
  "$MESHWARD" svid inspect p256.chain --bundle ca/bundle.jwks.json
expect_output "issue from stdin, PEM" 0 "BEGIN CERTIFICATE" -- bash -c \
  "'$MESHWARD' ca issue --config ca/ca.yaml --csr - --spiffe-id '$ID' --ttl 10m <p256.csr"
openssl req -in p256.csr -outform DER -out p256.der
expect_output "issue DER CSR" 0 "BEGIN CERTIFICATE" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.der --spiffe-id "$ID"

csr p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
expect_output "issue P-384" 0 "" -- "$MESHWARD" ca issue --config ca/ca.yaml --csr p384.csr \
  --spiffe-id "$ID" --out p384.chain
strict ca/root.pem p384.chain "P-384"
csr rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
expect_output "issue RSA 2048" 0 "" -- "$MESHWARD" ca issue --config ca/ca.yaml --csr rsa.csr \
  --spiffe-id "$ID" --out rsa.chain
strict ca/root.pem rsa.chain "RSA"
expect_output "RSA leaf keyEncipherment" 0 "Key Encipherment" -- openssl x509 -in leaf.pem -noout -text

# Refusals: each names its fault, and nothing is printed as a certificate.
csr ed -algorithm ED25519
expect_output "Ed25519 refused" 1 "key type Ed25519 is not allowed for SVIDs" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr ed.csr --spiffe-id "$ID"
csr rsa1k -algorithm RSA -pkeyopt rsa_keygen_bits:1024
expect_output "RSA 1024 refused" 1 "RSA key of 1024 bits is too small" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr rsa1k.csr --spiffe-id "$ID"
python3 - p256.der bad.der <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read()); d[-1] ^= 1
open(sys.argv[2], "wb").write(d)
EOF
expect_output "bad CSR signature" 1 "CSR signature does not verify" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr bad.der --spiffe-id "$ID"
head -c 100 p256.der >trunc.der
expect_output "truncated CSR" 1 "CSR is not a DER PKCS#10 request" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr trunc.der --spiffe-id "$ID"
printf 'not a csr' >junk.csr
expect_output "junk CSR" 1 "CSR" -- "$MESHWARD" ca issue --config ca/ca.yaml --csr junk.csr --spiffe-id "$ID"
expect_output "foreign trust domain" 1 "not in this CA's trust domain" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr --spiffe-id spiffe://evil.org/ns/a/sa/b
expect_output "no path" 1 "has no path" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr --spiffe-id spiffe://example.org
expect_output "missing CSR file" 3 "" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr nope.csr --spiffe-id "$ID"
expect_output "issue usage" 2 "are required" -- "$MESHWARD" ca issue --config ca/ca.yaml

# The intermediate's name constraint binds its key to the trust domain: a leaf for another
# trust domain, signed with the intermediate's key by openssl (not meshward), is rejected.
printf 'subjectAltName=URI:spiffe://evil.org/ns/a/sa/b\nbasicConstraints=critical,CA:FALSE\n' \
  >evil.ext
openssl x509 -req -in p256.csr -CA ca/intermediate-1.pem -CAkey ca/intermediate-1.key \
  -CAcreateserial -days 1 -extfile evil.ext -out evil.pem 2>/dev/null
expect_output "name constraint stops another trust domain" 2 "permitted subtree violation" -- \
  openssl verify -CAfile ca/root.pem -untrusted ca/intermediate-1.pem evil.pem

# ---------------------------------------------------------------- provenance
IMG=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ATT=sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
expect_output "issue with provenance" 0 "" -- "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr \
  --spiffe-id "$ID" --image-digest "$IMG" --attestation-digest "$ATT" \
  --builder-id https://github.com/actions/runner --out prov.chain
strict ca/root.pem prov.chain "provenance"
expect_output "provenance OID in leaf" 0 "2.25.319310414890660852850650409127980927266" -- \
  openssl x509 -in leaf.pem -noout -text
expect_output "provenance digest in leaf" 0 "$IMG" -- openssl x509 -in leaf.pem -noout -text
expect_output "svid inspect shows provenance" 0 "image $IMG" -- "$MESHWARD" svid inspect prov.chain
expect_output "svid inspect --json provenance" 0 "\"attestation_digest\": \"$ATT\"" -- \
  "$MESHWARD" svid inspect prov.chain --json
expect_output "issue without provenance" 0 "" -- "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr \
  --spiffe-id "$ID" --out plain.chain
expect_output "svid inspect without provenance" 0 "provenance:    none" -- \
  "$MESHWARD" svid inspect plain.chain
expect_output "provenance partial" 2 "together" -- "$MESHWARD" ca issue --config ca/ca.yaml \
  --csr p256.csr --spiffe-id "$ID" --image-digest "$IMG"
expect_output "provenance bad digest" 1 "image digest" -- "$MESHWARD" ca issue --config ca/ca.yaml \
  --csr p256.csr --spiffe-id "$ID" --image-digest sha256:ABC --attestation-digest "$ATT" \
  --builder-id b

# ---------------------------------------------------------------- rotation
cp p256.chain before.chain
expect_output "rotate: nothing yet" 0 "nothing to do" -- "$MESHWARD" ca rotate --config ca/ca.yaml
expect_output "rotate --prepare" 0 "prepared" -- "$MESHWARD" ca rotate --config ca/ca.yaml --prepare
expect_output "rotate --activate" 0 "activated" -- "$MESHWARD" ca rotate --config ca/ca.yaml --activate
expect_output "issue after switch" 0 "" -- "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr \
  --spiffe-id "$ID" --out after.chain
strict ca/root.pem before.chain "before the switch"
strict ca/root.pem after.chain "after the switch"
expect_output "new intermediate" 0 "intermediate CA 2" -- openssl x509 -in inter.pem -noout -subject
expect_output "info shows old and active" 0 "old" -- "$MESHWARD" ca info --config ca/ca.yaml
expect_output "svid inspect old chain, same bundle" 0 "" -- \
  "$MESHWARD" svid inspect before.chain --bundle ca/bundle.jwks.json
expect_output "svid inspect new chain, same bundle" 0 "" -- \
  "$MESHWARD" svid inspect after.chain --bundle ca/bundle.jwks.json

# ---------------------------------------------------------------- offline root
expect_output "init --csr" 0 "import-intermediate" -- \
  "$MESHWARD" ca init --trust-domain example.org --out off --csr
expect_output "offline CSR" 0 "" -- openssl req -in off/intermediate-1.csr.pem -noout -verify
expect_output "no issuing before import" 1 "no active intermediate" -- \
  "$MESHWARD" ca issue --config off/ca.yaml --csr p256.csr --spiffe-id "$ID"
expect_output "sign-intermediate" 0 "" -- "$MESHWARD" ca sign-intermediate --config ca/ca.yaml \
  --csr off/intermediate-1.csr.pem --ttl 30d --out off-inter.pem
expect_output "import wrong root" 1 "" -- "$MESHWARD" ca import-intermediate --config off/ca.yaml \
  --cert off-inter.pem --root off-inter.pem
expect_output "import-intermediate" 0 "can issue" -- "$MESHWARD" ca import-intermediate \
  --config off/ca.yaml --cert off-inter.pem --root ca/root.pem
expect_output "issue under offline root" 0 "" -- "$MESHWARD" ca issue --config off/ca.yaml \
  --csr p256.csr --spiffe-id "$ID" --out off.chain
strict ca/root.pem off.chain "offline root"
expect_output "offline rotate needs root" 1 "root key is offline" -- \
  "$MESHWARD" ca rotate --config off/ca.yaml --prepare

# ---------------------------------------------------------------- private key files
chmod 0644 ca/intermediate-2.key
expect_output "world-readable key refused" 3 "intermediate-2.key" -- \
  "$MESHWARD" ca issue --config ca/ca.yaml --csr p256.csr --spiffe-id "$ID"
chmod 0600 ca/intermediate-2.key

# ---------------------------------------------------------------- SoftHSM2
if [ -r /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null; then
  mod=/usr/lib/softhsm/libsofthsm2.so
  mkdir -p hsm/tokens
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$tmp/hsm/tokens" >hsm/softhsm2.conf
  export SOFTHSM2_CONF=$tmp/hsm/softhsm2.conf
  softhsm2-util --init-token --free --label meshward-test --pin 1234 --so-pin 5678 >/dev/null
  printf '1234\n' >pin
  chmod 0600 pin
  expect_output "init --pkcs11 needs a PIN" 2 "--pin-file or --pin-env" -- "$MESHWARD" ca init \
    --trust-domain example.org --out hsmca --pkcs11-module "$mod" --token-label meshward-test
  expect_output "init --pkcs11" 0 "made CA" -- "$MESHWARD" ca init --trust-domain example.org \
    --out hsmca --pkcs11-module "$mod" --token-label meshward-test --pin-file "$tmp/pin"
  if ls hsmca/*.key >/dev/null 2>&1; then bad "key files written for a PKCS#11 CA"; else ok; fi
  expect_output "token keys are sensitive, never extractable" 0 "never extractable" -- \
    pkcs11-tool --module "$mod" --token-label meshward-test --login --pin 1234 --list-objects \
    --type privkey
  expect_output "issue with a token key" 0 "" -- env MW_PIN=1234 "$MESHWARD" ca issue \
    --config hsmca/ca.yaml --pin-env MW_PIN --csr p256.csr --spiffe-id "$ID" --out hsm.chain
  strict hsmca/root.pem hsm.chain "SoftHSM"
  expect_output "wrong PIN" 3 "CKR_PIN_INCORRECT" -- env MW_PIN=0000 "$MESHWARD" ca issue \
    --config hsmca/ca.yaml --pin-env MW_PIN --csr p256.csr --spiffe-id "$ID"
  chmod 0644 pin
  expect_output "PIN file readable by others" 3 "pin" -- "$MESHWARD" ca issue --config hsmca/ca.yaml \
    --csr p256.csr --spiffe-id "$ID"
  chmod 0600 pin
  expect_output "rotate on the token" 0 "activated" -- "$MESHWARD" ca rotate --config hsmca/ca.yaml \
    --prepare --activate
  expect_output "issue after token rotation" 0 "" -- "$MESHWARD" ca issue --config hsmca/ca.yaml \
    --csr p256.csr --spiffe-id "$ID" --out hsm2.chain
  strict hsmca/root.pem hsm2.chain "SoftHSM rotated"
else
  bad "SoftHSM2 is not installed (apt-get install softhsm2 opensc)"
fi

expect_summary "test_ca_pki: "
