#!/usr/bin/env bash
# Crash safety of the CA service: an issuance is acknowledged only after its record is durable.
# Each round: a burst of concurrent `ca request` loops against `ca serve`, SIGKILL the server in
# the middle, restart it on the same log, issue one more; then the log verifies and every serial
# a client got a 200 for is in it (`log prove --serial`). Loopback only, every loop bounded,
# every process killed by PID.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
PER_CLIENT=${PER_CLIENT:-40}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

TD=example.org
"$MESHWARD" ca init --trust-domain $TD --out ca >/dev/null || exit 1
"$MESHWARD" log keygen --name $TD/issuance --out lk >/dev/null || exit 1
# A reusable credential: a Kubernetes service-account token (join tokens are single-use).
openssl genrsa -out k8s.key 2048 2>/dev/null
n=$(openssl rsa -in k8s.key -noout -modulus 2>/dev/null | cut -d= -f2 | xxd -r -p | b64url)
printf '{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}' "$n" >k8s.jwks
now=$(date +%s)
h=$(printf '{"alg":"RS256","kid":"k1","typ":"JWT"}' | b64url)
p=$(printf '{"iss":"https://k8s.example","aud":"meshward-ca","sub":"system:serviceaccount:shop:api","iat":%d,"exp":%d}' \
  "$((now - 5))" "$((now + 3600))" | b64url)
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign k8s.key | b64url)
printf '%s.%s.%s' "$h" "$p" "$s" >tok
chmod 600 tok

srv_pid=
port=
start_server() {
  : >serve.out
  "$MESHWARD" ca serve --config ca/ca.yaml --listen 127.0.0.1:0 --log log --log-key lk/log.key \
    --db ca.db --allow-unregistered --k8s-jwks k8s.jwks --k8s-issuer https://k8s.example \
    --k8s-audience meshward-ca --log-level warn >serve.out 2>>serve.err &
  srv_pid=$!
  pids+=("$srv_pid")
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' serve.out)
    [ -n "$port" ] && return 0
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "ca serve did not start: $(tail -5 serve.err)"
  return 1
}
request() { # OUT-PREFIX
  timeout 20 "$MESHWARD" ca request --server "https://127.0.0.1:$port" --bundle ca/bundle.pem \
    --credential-kind k8s-sat --token-file tok --key-out "$1.key" --cert-out "$1.pem" --timeout 15s
}
client_loop() { # ID ROUND: prints the serial of every acknowledged SVID
  local deadline=$((SECONDS + 20))
  for i in $(seq 1 "$PER_CLIENT"); do
    [ "$SECONDS" -ge "$deadline" ] && break
    out=$(request "r$2c$1n$i" 2>/dev/null) || continue
    echo "$out" | sed -n 's/.* serial \([0-9a-f]*\) .*/\1/p'
  done
}

all_acked=acked.all
: >"$all_acked"
for round in $(seq 1 "$ROUNDS"); do
  start_server || { bad "round $round: start"; break; }
  cpids=()
  for c in $(seq 1 "$CLIENTS"); do
    client_loop "$c" "$round" >"acked.$round.$c" &
    cpids+=($!)
    pids+=($!)
  done
  # Kill the CA once it has acknowledged a few, mid-burst.
  for _ in $(seq 1 100); do
    [ "$(cat acked."$round".* | wc -l)" -ge 5 ] && break
    sleep 0.1
  done
  sleep 0.$((RANDOM % 5))
  kill -9 "$srv_pid"
  wait "$srv_pid" 2>/dev/null
  for c in "${cpids[@]}"; do wait "$c"; done
  cat acked."$round".* >>"$all_acked"
  n_acked=$(cat acked."$round".* | wc -l)
  [ "$n_acked" -gt 0 ] && ok || bad "round $round: nothing acknowledged before the kill"

  # Restart on the same log: it opens (discarding anything past the last checkpoint) and issues.
  start_server || { bad "round $round: restart"; break; }
  if out=$(request "r${round}after"); then
    ok
    echo "$out" | sed -n 's/.* serial \([0-9a-f]*\) .*/\1/p' >>"$all_acked"
  else
    bad "round $round: no issuance after restart"
  fi
  kill -TERM "$srv_pid"
  wait "$srv_pid" 2>/dev/null

  if "$MESHWARD" log verify log --pub lk/log.pub >verify.out 2>&1; then ok; else
    bad "round $round: log does not verify: $(cat verify.out)"; fi
  args=()
  while read -r s; do args+=(--serial "$s"); done <"$all_acked"
  if "$MESHWARD" log prove log --pub lk/log.pub "${args[@]}" >prove.out 2>prove.err; then ok; else
    bad "round $round: acknowledged serials missing from the log: $(cat prove.err)"; fi
  size=$(sed -n 's/^size: *\([0-9]*\) entries.*/\1/p' verify.out)
  echo "round $round: $n_acked acknowledged before SIGKILL; log holds $size entries; all $(wc -l <"$all_acked") acknowledged serials proven"
done
[ -s serve.err ] && grep -i "sanitizer\|runtime error" serve.err && bad "sanitizer report in ca serve"

expect_summary "test_ca_crash: "
