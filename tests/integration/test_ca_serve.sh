#!/usr/bin/env bash
# meshward ca serve / ca request: the CA over HTTPS on loopback, through the real binary.
# Issuance with a join token, validation of the SVID (meshward and openssl), every refusal
# with a clear reason and nothing written to the log, provenance, log prove --serial, audit;
# renewal by SVID (POST /v1/svid/renew) and its refusals, and the monitor's renewal rules.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
work=$(mktemp -d)
srv_pid=
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
EXPECT_DIR=$work
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

TD=example.org
D1=sha256:1111111111111111111111111111111111111111111111111111111111111111
D2=sha256:2222222222222222222222222222222222222222222222222222222222222222
A1=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

"$MESHWARD" ca init --trust-domain $TD --out ca >/dev/null || { echo "ca init failed"; exit 1; }
"$MESHWARD" log keygen --name $TD/issuance --out lk >/dev/null || { echo "log keygen failed"; exit 1; }
token() { # token ID TTL FILE
  "$MESHWARD" ca token create --db ca.db --spiffe-id "$1" --ttl "$2" >tok.out 2>&1 || return 1
  head -n1 tok.out >"$3" && chmod 600 "$3"
}

# A Kubernetes issuer: an RSA key, its JWKS, and RS256 tokens made with openssl.
openssl genrsa -out k8s.key 2048 2>/dev/null
n=$(openssl rsa -in k8s.key -noout -modulus 2>/dev/null | cut -d= -f2 | xxd -r -p | b64url)
printf '{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}' "$n" >k8s.jwks
k8s_token() { # AUD EXP-OFFSET-SECONDS
  local now h p s
  now=$(date +%s)
  h=$(printf '{"alg":"RS256","kid":"k1","typ":"JWT"}' | b64url)
  p=$(printf '{"iss":"https://k8s.example","aud":["%s"],"sub":"system:serviceaccount:shop:api","iat":%d,"nbf":%d,"exp":%d}' \
    "$1" "$((now - 5))" "$((now - 5))" "$((now + $2))" | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign k8s.key | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}

cat >regs.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata:
  name: prov
spec:
  spiffeID: spiffe://$TD/host/prov
  requiresProvenance: true
---
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata:
  name: shop-api
spec:
  kubernetes:
    namespace: shop
    serviceAccount: api
  maxTTL: 30m
EOF

"$MESHWARD" ca serve --config ca/ca.yaml --listen 127.0.0.1:0 --log log --log-key lk/log.key \
  --db ca.db --registrations regs.yaml --allow-unregistered \
  --k8s-jwks k8s.jwks --k8s-issuer https://k8s.example --k8s-audience meshward-ca \
  >serve.out 2>serve.err &
srv_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' serve.out)
  [ -n "$port" ] && break
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { echo "ca serve did not start: $(cat serve.err)"; exit 1; }
URL=https://127.0.0.1:$port
req() { "$MESHWARD" ca request --server "$URL" --bundle ca/bundle.pem "$@"; }
log_size() { "$MESHWARD" log verify log --pub lk/log.pub --json | sed -n 's/.*"size":\([0-9]*\).*/\1/p'; }
post() { # raw JSON body file -> status in out, body in body.json
  curl -sk -o body.json -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$1" "$URL/v1/svid" >out 2>err
}

# --- plain endpoints
curl -sk "$URL/healthz" | grep -qx ok && ok || bad "healthz"
curl -sk "$URL/v1/bundle" | grep -q '"x509-svid"' && ok || bad "bundle JWKS"
curl -sk "$URL/v1/bundle?format=pem" | cmp -s - ca/bundle.pem && ok || bad "bundle PEM differs"
[ "$(curl -sk -o /dev/null -w '%{http_code}' "$URL/v1/nothing")" = 404 ] && ok || bad "404"

# --- the server's own identity: an SVID for spiffe://TD/meshward/ca under the bundle
openssl s_client -connect 127.0.0.1:"$port" -showcerts </dev/null 2>/dev/null |
  awk '/BEGIN CERT/{n++} n' | awk '/BEGIN CERT/,/END CERT/' >server.pem
"$MESHWARD" svid inspect server.pem --bundle ca/bundle.pem >out 2>err && ok || bad "server cert: $(cat err)"
says "spiffe://$TD/meshward/ca"

# --- issuance with a join token
token spiffe://$TD/host/a 10m tokA || bad "token create"
expect 0 req --credential-kind join-token --token-file tokA --key-out a.key --cert-out a.pem
says "log_index 0"
[ "$(stat -c %a a.key)" = 600 ] && ok || bad "key mode $(stat -c %a a.key)"
expect 0 "$MESHWARD" svid inspect a.pem --key a.key --bundle ca/bundle.pem
says "spiffe://$TD/host/a"
awk '/BEGIN CERT/{n++} n==1' a.pem >a.leaf.pem
awk '/BEGIN CERT/{n++} n==2' a.pem >a.int.pem
expect 0 openssl verify -x509_strict -purpose sslclient -CAfile ca/bundle.pem -untrusted a.int.pem a.leaf.pem
serialA=$(openssl x509 -in a.leaf.pem -noout -serial | cut -d= -f2)
size1=$(log_size)
[ "$size1" = 1 ] && ok || bad "log size $size1, want 1"

# --- every refusal: a clear reason, nothing in the log
expect 1 req --credential-kind join-token --token-file tokA --key-out r.key --cert-out r.pem
says "refused (403)"
says "already used"
[ ! -e r.pem ] && ok || bad "replay wrote an SVID"

token spiffe://$TD/host/exp 1s tokE || bad "token create"
sleep 2.2
expect 1 req --credential-kind join-token --token-file tokE --key-out e.key --cert-out e.pem
says "refused (401)"
says "expired"

k8s_token other-audience 600 >k8s.wrong && chmod 600 k8s.wrong
expect 1 req --credential-kind k8s-sat --token-file k8s.wrong --key-out w.key --cert-out w.pem
says "refused (403)"
says "audience"
k8s_token meshward-ca -120 >k8s.old && chmod 600 k8s.old
expect 1 req --credential-kind k8s-sat --token-file k8s.old --key-out o.key --cert-out o.pem
says "expired"

# The CSR is checked before the credential: a bad CSR does not spend a join token.
token spiffe://$TD/host/b 10m tokB || bad "token create"
openssl genpkey -algorithm ed25519 -out ed.key 2>/dev/null
openssl req -new -key ed.key -subj /CN=x -out ed.csr 2>/dev/null
expect 1 req --credential-kind join-token --token-file tokB --csr ed.csr --cert-out b.pem
says "refused (400)"
says "key type Ed25519 is not allowed"
openssl ecparam -name secp521r1 -genkey -noout -out p521.key 2>/dev/null
openssl req -new -key p521.key -subj /CN=x -out p521.csr 2>/dev/null
expect 1 req --credential-kind join-token --token-file tokB --csr p521.csr --cert-out b.pem
says "secp521r1"
tokb=$(cat tokB)
printf '{"csr":"-----BEGIN CERTIFICATE REQUEST-----\\nMIIBbad\\n-----END CERTIFICATE REQUEST-----\\n","credential":{"kind":"join-token","token":"%s"}}' "$tokb" >bad_csr.json
post bad_csr.json
[ "$(cat out)" = 400 ] && ok || bad "malformed CSR status $(cat out)"
grep -q '"error":"csr' body.json && ok || bad "malformed CSR reason: $(cat body.json)"
grep -qF "${tokb#mwjt_}" body.json serve.err serve.out && bad "token echoed" || ok
# A CSR whose signature does not verify (proof of possession).
openssl ecparam -name prime256v1 -genkey -noout -out p256.key 2>/dev/null
openssl req -new -key p256.key -subj /CN=x -outform DER -out good.der 2>/dev/null
python3 - <<'EOF'
d = bytearray(open("good.der", "rb").read()); d[-3] ^= 0x01
import base64; b = base64.encodebytes(bytes(d)).decode()
open("tampered.csr", "w").write("-----BEGIN CERTIFICATE REQUEST-----\n" + b + "-----END CERTIFICATE REQUEST-----\n")
EOF
expect 1 req --credential-kind join-token --token-file tokB --csr tampered.csr --cert-out b.pem
says "refused (400)"
head -c 200000 /dev/zero | tr '\0' 'a' >big.txt
printf '{"csr":"%s","credential":{"kind":"join-token","token":"x"}}' "$(cat big.txt)" >big.json
post big.json
[ "$(cat out)" = 413 ] && ok || bad "oversized status $(cat out)"
grep -q "more than" body.json && ok || bad "oversized reason: $(cat body.json)"
printf '{"csr":"x","csr":"y","credential":{"kind":"join-token","token":"x"}}' >dup.json
post dup.json
[ "$(cat out)" = 400 ] && ok || bad "duplicate status $(cat out)"
printf '{"csr":"x","credential":{"kind":"join-token","token":"x"},"spiffe_id":"spiffe://%s/admin"}' $TD >unk.json
post unk.json
[ "$(cat out)" = 400 ] && grep -q 'unknown member' body.json && ok || bad "unknown member: $(cat out) $(cat body.json)"
printf '{"csr":' >trunc.json
post trunc.json
[ "$(cat out)" = 400 ] && ok || bad "truncated status $(cat out)"
# ... and the token survived all of that.
expect 0 req --credential-kind join-token --token-file tokB --key-out b.key --cert-out b.pem
size2=$(log_size)
[ "$size2" = 2 ] && ok || bad "log size $size2 after refusals, want 2"
expect 0 "$MESHWARD" log verify log --pub lk/log.pub

# --- Kubernetes token, right audience: registration's maxTTL (30m) caps the lifetime.
k8s_token meshward-ca 600 >k8s.ok && chmod 600 k8s.ok
expect 0 req --credential-kind k8s-sat --token-file k8s.ok --key-out k.key --cert-out k.pem --ttl 2h
says "spiffe://$TD/ns/shop/sa/api"
nb=$(date -d "$(openssl x509 -in k.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in k.pem -noout -enddate | cut -d= -f2)" +%s)
[ $((na - nb)) -le 1810 ] && ok || bad "k8s SVID lives $((na - nb)) s, want <= 30m"

# --- provenance
token spiffe://$TD/host/prov 10m tokP || bad "token create"
expect 1 req --credential-kind join-token --token-file tokP --key-out p.key --cert-out p.pem
says "requires provenance"
expect 1 req --credential-kind join-token --token-file tokP --key-out p.key --cert-out p.pem --image-digest $D2
says "not admitted"
"$MESHWARD" ca artifact add --db ca.db --image-digest $D1 --attestation-digest $A1 \
  --builder-id https://builder.example/v1 >/dev/null || bad "artifact add"
expect 0 req --credential-kind join-token --token-file tokP --key-out p.key --cert-out p.pem --image-digest $D1
expect 0 "$MESHWARD" svid inspect p.pem --bundle ca/bundle.pem
if grep -q provenance out; then says "$D1"; fi
serialP=$(openssl x509 -in p.pem -noout -serial | cut -d= -f2)

# --- renewal by SVID: POST /v1/svid/renew with the current SVID as the TLS client certificate
renew() { "$MESHWARD" ca request --renew --server "$URL" --bundle ca/bundle.pem "$@"; }
lower() { tr 'A-F' 'a-f' | sed 's/^0*//'; }
post_renew() { # BODYFILE [curl client-cert args...] -> status in out, body in body.json
  local f=$1
  shift
  curl -sk -o body.json -w '%{http_code}' -H 'Content-Type: application/json' "$@" \
    --data-binary @"$f" "$URL/v1/svid/renew" >out 2>err
}
sizeR0=$(log_size)
expect 0 renew --cert a.pem --key a.key --key-out a2.key --cert-out a2.pem
says "issued spiffe://$TD/host/a serial"
expect 0 "$MESHWARD" svid inspect a2.pem --key a2.key --bundle ca/bundle.pem
says "spiffe://$TD/host/a"
serialA2=$(openssl x509 -in a2.pem -noout -serial | cut -d= -f2)
[ -n "$serialA2" ] && [ "$serialA2" != "$serialA" ] && ok || bad "renewal kept serial $serialA"
cmp -s <(openssl x509 -in a.pem -noout -pubkey) <(openssl x509 -in a2.pem -noout -pubkey) &&
  bad "renewed SVID has the old key" || ok
expect 0 "$MESHWARD" log prove log --pub lk/log.pub --serial "$serialA2" --json
says "spiffe://$TD/host/a"
says "\"kind\":\"svid\""
says "svid:$(echo "$serialA" | lower)"
[ "$(log_size)" = $((sizeR0 + 1)) ] && ok || bad "log size $(log_size) after a renewal, want $((sizeR0 + 1))"
# The renewed SVID renews in turn (a chain), and --ttl is capped as for a fresh SVID.
expect 0 renew --cert a2.pem --key a2.key --key-out a3.key --cert-out a3.pem --ttl 30d
nb=$(date -d "$(openssl x509 -in a3.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in a3.pem -noout -enddate | cut -d= -f2)" +%s)
[ $((na - nb)) -le $((86400 + 20)) ] && ok || bad "renewed SVID lives $((na - nb)) s, want <= 24h"
# The k8s workload (maxTTL 30m in its registration) keeps the registration's cap on renewal.
expect 0 renew --cert k.pem --key k.key --key-out k2.key --cert-out k2.pem --ttl 2h
says "spiffe://$TD/ns/shop/sa/api"
nb=$(date -d "$(openssl x509 -in k2.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in k2.pem -noout -enddate | cut -d= -f2)" +%s)
[ $((na - nb)) -le 1810 ] && ok || bad "renewed k8s SVID lives $((na - nb)) s, want <= 30m"
sizeR1=$(log_size)

# Refusals: none of them writes to the log.
openssl ecparam -name prime256v1 -genkey -noout -out n.key 2>/dev/null
openssl req -new -key n.key -subj /CN=x -out n.csr 2>/dev/null
printf '{"csr":%s}' "$(python3 -c 'import json,sys; print(json.dumps(open("n.csr").read()))')" >renew_ok.json
post_renew renew_ok.json
[ "$(cat out)" = 401 ] && ok || bad "renew without a client certificate: status $(cat out)"
grep -q '"error":"no client certificate' body.json && ok || bad "no-cert reason: $(cat body.json)"
# An expired SVID of this CA: the handshake itself is refused.
openssl ecparam -name prime256v1 -genkey -noout -out x.key 2>/dev/null && chmod 600 x.key
openssl req -new -key x.key -subj /CN=x -out x.csr 2>/dev/null
"$MESHWARD" ca issue --config ca/ca.yaml --csr x.csr --spiffe-id spiffe://$TD/host/a --ttl 1s \
  --out x.pem >/dev/null 2>&1 || bad "ca issue (short)"
sleep 2.2
refused() { # NAME CMD...: CMD fails (a refused handshake is not an answer of the CA)
  local name=$1
  shift
  if "$@" >out 2>err; then bad "$name: succeeded"; else ok; fi
}
refused "renew with an expired SVID" renew --cert x.pem --key x.key --key-out r.key --cert-out r.pem
post_renew renew_ok.json --cert x.pem --key x.key
[ "$(cat out)" = 000 ] && ok || bad "expired client certificate: status $(cat out), want a failed handshake"
grep -q "client certificate refused: .*expired" serve.err && ok || bad "server did not log the expired SVID"
# An SVID of another CA of the same trust domain, and of another trust domain.
"$MESHWARD" ca init --trust-domain $TD --out ca2 >/dev/null
"$MESHWARD" ca issue --config ca2/ca.yaml --csr x.csr --spiffe-id spiffe://$TD/host/a --out y.pem \
  >/dev/null 2>&1 || bad "ca issue (ca2)"
refused "renew with another CA's SVID" renew --cert y.pem --key x.key --key-out r.key --cert-out r.pem
"$MESHWARD" ca init --trust-domain other.org --out oth >/dev/null
"$MESHWARD" ca issue --config oth/ca.yaml --csr x.csr --spiffe-id spiffe://other.org/host/a \
  --out z.pem >/dev/null 2>&1 || bad "ca issue (other.org)"
refused "renew with another trust domain's SVID" renew --cert z.pem --key x.key --key-out r.key --cert-out r.pem
post_renew renew_ok.json --cert z.pem --key x.key
[ "$(cat out)" = 000 ] && ok || bad "foreign client certificate: status $(cat out), want a failed handshake"
[ ! -e r.pem ] && ok || bad "a refused renewal wrote an SVID"
# The CA's own service identity is never renewed (nor issued for a token).
"$MESHWARD" ca issue --config ca/ca.yaml --csr x.csr --spiffe-id spiffe://$TD/meshward/ca \
  --out self.pem >/dev/null 2>&1 || bad "ca issue (self)"
expect 1 renew --cert self.pem --key x.key --key-out r.key --cert-out r.pem
says "refused (403)"
says "CA service's own identity"
token spiffe://$TD/meshward/ca 10m tokS || bad "token create (self)"
expect 1 req --credential-kind join-token --token-file tokS --key-out r.key --cert-out r.pem
says "refused (403)"
says "CA service's own identity"
# The CSR must be for a new key.
openssl req -new -key a3.key -subj /CN=x -out same.csr 2>/dev/null
expect 1 renew --cert a3.pem --key a3.key --csr same.csr --cert-out r.pem
says "refused (400)"
says "new key"
# Bad bodies, with a valid client certificate: same rules and statuses as /v1/svid.
C=(--cert a3.pem --key a3.key)
printf 'not json' >nj.json
post_renew nj.json "${C[@]}"
[ "$(cat out)" = 400 ] && ok || bad "renew non-JSON: status $(cat out)"
printf '{"csr":"x","csr":"y"}' >rdup.json
post_renew rdup.json "${C[@]}"
[ "$(cat out)" = 400 ] && grep -q 'duplicate' body.json && ok || bad "renew duplicate: $(cat out) $(cat body.json)"
printf '{"csr":%s,"credential":{"kind":"join-token","token":"x"}}' \
  "$(python3 -c 'import json; print(json.dumps(open("n.csr").read()))')" >runk.json
post_renew runk.json "${C[@]}"
[ "$(cat out)" = 400 ] && grep -q 'unknown member' body.json && ok || bad "renew unknown member: $(cat out) $(cat body.json)"
printf '{"csr":"%s"}' "$(cat big.txt)" >rbig.json
post_renew rbig.json "${C[@]}"
[ "$(cat out)" = 413 ] && ok || bad "renew oversized: status $(cat out)"
printf '{"ttl":"1h"}' >rnocsr.json
post_renew rnocsr.json "${C[@]}"
[ "$(cat out)" = 400 ] && grep -q 'csr is missing' body.json && ok || bad "renew without csr: $(cat out) $(cat body.json)"
[ "$(log_size)" = "$sizeR1" ] && ok || bad "log size $(log_size) after refused renewals, want $sizeR1"
# ... while the same client certificate, with a good body, renews (curl as the client).
post_renew renew_ok.json "${C[@]}"
[ "$(cat out)" = 200 ] && grep -q "\"spiffe_id\":\"spiffe://$TD/host/a\"" body.json && ok ||
  bad "curl renewal: $(cat out) $(cat body.json)"
# A second renewal of the same SVID forks the chain: the monitor reports it.
post_renew renew_ok.json "${C[@]}"
[ "$(cat out)" = 200 ] && ok || bad "second renewal: $(cat out)"
serialA3=$(openssl x509 -in a3.pem -noout -serial | cut -d= -f2 | lower)
# Provenance: a renewal keeps it while the image stays admitted, and is refused once the
# image is revoked from a workload whose registration requires provenance.
expect 0 renew --cert p.pem --key p.key --key-out p2.key --cert-out p2.pem
expect 0 "$MESHWARD" svid inspect p2.pem --bundle ca/bundle.pem
says "$D1"
serialP2=$(openssl x509 -in p2.pem -noout -serial | cut -d= -f2)
expect 0 "$MESHWARD" log prove log --pub lk/log.pub --serial "$serialP2" --json
says "$A1"
sizeR2=$(log_size)
"$MESHWARD" ca artifact remove --db ca.db --image-digest $D1 >/dev/null || bad "artifact remove"
expect 1 renew --cert p2.pem --key p2.key --key-out r.key --cert-out r.pem
says "refused (403)"
says "requires provenance"
[ "$(log_size)" = "$sizeR2" ] && ok || bad "log size $(log_size) after a refused renewal, want $sizeR2"
"$MESHWARD" ca artifact add --db ca.db --image-digest $D1 --attestation-digest $A1 \
  --builder-id https://builder.example/v1 >/dev/null || bad "artifact add again"

# --- the log: proofs by serial, audit
expect 0 "$MESHWARD" log prove log --pub lk/log.pub --serial "$serialA"
says "spiffe://$TD/host/a"
says "proof:"
expect 0 "$MESHWARD" log prove log --pub lk/log.pub --serial "$serialP" --json
says "$A1"
expect 1 "$MESHWARD" log prove log --pub lk/log.pub --serial 0123456789abcdef
says "not in the log"
expect 0 "$MESHWARD" log prove log 0 --pub lk/log.pub
cat >mon.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: IssuanceMonitorPolicy
metadata:
  name: t
spec:
  maxTTL: 1h
  requireRegistration: true
EOF
expect 0 "$MESHWARD" ca audit log --pub lk/log.pub --policy mon.yaml --registrations regs.yaml
says "ca-unregistered-identity"
# Renewal chains: the SVID renewed twice is reported once; every parent is known.
[ "$(grep -c '"ca-renewal-fork"' out)" = 1 ] && ok || bad "fork findings: $(grep -c ca-renewal-fork out), want 1"
grep '"ca-renewal-fork"' out | grep -q "serial $serialA3" && ok || bad "fork finding names another serial"
grep -q '"ca-renewal-unknown-parent"' out && bad "unknown-parent finding: $(grep unknown-parent out)" || ok
expect 0 "$MESHWARD" log verify log --pub lk/log.pub

# --- a client that does not pin this CA refuses the server
"$MESHWARD" ca init --trust-domain other.org --out other >/dev/null
expect 1 "$MESHWARD" ca request --server "$URL" --bundle other/bundle.pem --credential-kind \
  join-token --token-file tokB --key-out x.key --cert-out x.pem
says "not the CA"

# --- graceful stop
kill -TERM "$srv_pid"
wait "$srv_pid"
rc=$?
srv_pid=
[ "$rc" = 0 ] && ok || bad "ca serve exited $rc on SIGTERM"
grep -qF "${tokb#mwjt_}" serve.err serve.out && bad "token in the server's output" || ok

expect_summary "test_ca_serve: "
