#!/usr/bin/env bash
# CA issuance benchmark: in-process (file key vs SoftHSM2), with the log on, and over HTTPS
# against `meshward ca serve`, next to the physical floor (ECDSA P-256 signatures/s).
#   bench/run_ca.sh [BUILD_DIR]        (a release build: libmeshward_core.a and meshward)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -f "$build/libmeshward_core.a" ] && [ -x "$build/meshward" ] || {
  echo "run_ca: build first (libmeshward_core.a and meshward in $build)"; exit 1; }
M=$build/meshward
out=$(mktemp -d)
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT
cc -O2 -D_GNU_SOURCE -I"$root/include" -I"$root/src" "$root/bench/bench_ca.c" \
  "$build/libmeshward_core.a" -lssl -lcrypto -ljansson -lyaml -lsqlite3 -lev -ldl -lpthread \
  -o "$out/bench_ca"
B=$out/bench_ca
cd "$out"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), OpenSSL $(openssl version | cut -d' ' -f2)"
S=${BENCH_SECONDS:-3}

"$M" ca init --trust-domain example.org --out ca >/dev/null
"$M" log keygen --name example.org/issuance --out lk >/dev/null
$B floor "$S" | tee floor.txt
$B issue ca/ca.yaml "$S" | tee issue.txt
hsm=skipped
if [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null; then
  mkdir -p hsm/tokens
  printf 'directories.tokendir = %s/hsm/tokens\nobjectstore.backend = file\n' "$out" >hsm/softhsm2.conf
  export SOFTHSM2_CONF=$out/hsm/softhsm2.conf
  softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
  export MW_BENCH_PIN=1234
  "$M" ca init --trust-domain example.org --out hca --pkcs11-module /usr/lib/softhsm/libsofthsm2.so \
    --token-label bench --pin-env MW_BENCH_PIN >/dev/null
  $B issue hca/ca.yaml "$S" MW_BENCH_PIN | sed 's/issue_inproc/issue_inproc_softhsm/; s/mw_ca_issue/mw_ca_issue SoftHSM2/' | tee hsm.txt
  hsm=$(awk '/^result/{print $3}' hsm.txt)
fi
$B logged ca/ca.yaml log1 lk/log.key "$S" 256 | tee logged.txt
$B logged ca/ca.yaml log2 lk/log.key "$S" 16 | tee logged16.txt

# HTTPS: ca serve with a reusable k8s credential, N keep-alive clients.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
openssl genrsa -out k8s.key 2048 2>/dev/null
n=$(openssl rsa -in k8s.key -noout -modulus 2>/dev/null | cut -d= -f2 | xxd -r -p | b64url)
printf '{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}' "$n" >k8s.jwks
now=$(date +%s)
h=$(printf '{"alg":"RS256","kid":"k1"}' | b64url)
p=$(printf '{"iss":"https://k8s","aud":"ca","sub":"system:serviceaccount:b:b","iat":%d,"exp":%d}' \
  "$((now - 5))" "$((now + 3600))" | b64url)
printf '%s.%s.%s' "$h" "$p" "$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign k8s.key | b64url)" >tok
"$M" ca serve --config ca/ca.yaml --listen 127.0.0.1:0 --log slog --log-key lk/log.key --db s.db \
  --allow-unregistered --k8s-jwks k8s.jwks --k8s-issuer https://k8s --k8s-audience ca \
  --log-level warn >serve.out 2>serve.err &
srv=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' serve.out)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "ca serve did not start"; cat serve.err; exit 1; }
: >https.txt
for c in 1 16 64; do
  $B https "$port" $c "$S" tok | tee -a https.txt
done
rss=$(awk '/VmHWM/{print $2}' /proc/$srv/status)
echo "result ca_serve_rss_peak ${rss} kB"
kill -TERM $srv; wait $srv || true; srv=
"$M" log verify slog --pub lk/log.pub | sed -n 's/^size: */https log entries: /p'

get() { awk -v k="$2" '$1=="result" && $2 ~ k {print $3}' "$1" | head -1; }
fl=$(get floor.txt ecdsa); is=$(get issue.txt issue_inproc); lg=$(get logged.txt batch256)
lg16=$(get logged16.txt batch16); h64=$(get https.txt c64); h16=$(get https.txt c16); h1=$(get https.txt c1)
echo
printf '| %-52s | %10s | %8s |\n' "measure (one core unless said)" "per second" "of floor"
printf '|%s|%s|%s|\n' "------------------------------------------------------" "------------" "----------"
row() { printf '| %-52s | %10s | %7s%% |\n' "$1" "$2" "$( [ "$2" = skipped ] && echo - || echo $((100 * $2 / fl)))"; }
row "ECDSA P-256 signatures (EVP; the floor)" "$fl"
row "mw_ca_issue, file key" "$is"
row "mw_ca_issue, SoftHSM2 key" "$hsm"
row "issue + record + durable append, batch 256" "$lg"
row "issue + record + durable append, batch 16" "$lg16"
row "HTTPS ca serve, 1 client (1 loop thread)" "$h1"
row "HTTPS ca serve, 16 keep-alive clients" "$h16"
row "HTTPS ca serve, 64 keep-alive clients" "$h64"
echo "ca serve peak RSS: $rss kB; target: >= 4000 SVIDs/s/core in-process with a file key"
