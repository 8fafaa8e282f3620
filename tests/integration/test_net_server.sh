#!/usr/bin/env bash
# meshward's HTTP/1.1 server and client against real peers (curl, openssl
# s_client, bash's /dev/tcp) on 127.0.0.1: plain HTTP, HTTPS, mTLS,
# keep-alive, pipelining, 400/408/413/431, TLS version and cipher policy,
# connection limit, graceful stop. Builds tests/integration/net_echo_server.c
# against the build directory's libmeshward_core.a. Every wait is bounded.
set -uo pipefail
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary in the build directory}
MW_SOURCE_DIR=${MW_SOURCE_DIR:?set MW_SOURCE_DIR to the source tree}
build=$(dirname "$MESHWARD")
lib="$build/libmeshward_core.a"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # name, condition exit status
  if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

for tool in curl openssl cc; do
  command -v $tool >/dev/null || { bad "$tool not installed"; finish; }
done
[ -f "$lib" ] || { bad "$lib not found"; finish; }
san=()
if [ "$(nm "$lib" 2>/dev/null | grep -c __asan_report || true)" -gt 0 ]; then
  san=(-fsanitize=address,undefined)
fi
if ! cc -std=gnu11 -O1 -g -Wall "${san[@]}" -I"$MW_SOURCE_DIR/include" \
  "$MW_SOURCE_DIR/tests/integration/net_echo_server.c" "$lib" \
  -lssl -lcrypto -ljansson -lyaml -lev -lsqlite3 -ldl -lm -lpthread \
  -o "$work/echo" >"$work/cc.log" 2>&1; then
  tail -20 "$work/cc.log"
  bad "building net_echo_server"
  finish
fi
export ASAN_OPTIONS=detect_leaks=1
cd "$work"

# Certificates: a CA, a server certificate for 127.0.0.1/localhost, a client certificate.
gen() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj /CN=test-ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
    -subj /CN=localhost
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile server.ext -out server.pem
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr \
    -subj /CN=client
  printf 'extendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://test.example/ns/a/sa/b\n' \
    >client.ext
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile client.ext -out client.pem
  # A second, unrelated CA.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
    -out other.pem -days 2 -subj /CN=other-ca
  chmod 600 ./*.key
}
gen >gen.log 2>&1 || { cat gen.log; bad "making certificates"; finish; }

# start NAME ARGS...: start the server, wait (bounded) for its port.
start() {
  local name=$1
  shift
  rm -f "$name.port"
  ./echo serve --port-file "$name.port" "$@" 2>"$name.err" &
  local pid=$!
  pids+=("$pid")
  eval "${name}_pid=$pid"
  for _ in $(seq 1 50); do
    [ -s "$name.port" ] && break
    sleep 0.1
  done
  eval "${name}_port=$(cat "$name.port" 2>/dev/null || echo 0)"
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

# ---------------------------------------------------------------- plain HTTP
start plain --head-timeout 1 --max-body 1000 --max-head 4096
P=$plain_port
[ "$P" != 0 ] || { bad "plain server did not start: $(cat plain.err)"; finish; }
out=$(curl -s --max-time 5 "http://127.0.0.1:$P/hello")
[ "$out" = "hello" ]; check "plain GET /hello" $?
out=$(curl -s --max-time 5 --data-binary 'abc def' "http://127.0.0.1:$P/echo")
[ "$out" = "abc def" ]; check "POST /echo with Content-Length" $?
out=$(printf 'chunked body' | curl -s --max-time 5 -H 'Transfer-Encoding: chunked' \
  --data-binary @- "http://127.0.0.1:$P/echo")
[ "$out" = "chunked body" ]; check "POST /echo chunked" $?
[ "$(code "http://127.0.0.1:$P/nope")" = 200 ]; check "fallback answers" $?
[ "$(code -X DELETE "http://127.0.0.1:$P/hello")" = 405 ]; check "405 for a routed path" $?
curl -sv --max-time 5 "http://127.0.0.1:$P/hello" "http://127.0.0.1:$P/hello" >ka.out 2>ka.err
grep -q "Re-using existing connection" ka.err && [ "$(grep -c hello ka.out)" = 2 ]
check "keep-alive: curl reuses the connection" $?
out=$(curl -s --max-time 5 -0 -H 'Connection: keep-alive' -D - "http://127.0.0.1:$P/hello")
echo "$out" | grep -qi '^Connection: keep-alive'; check "HTTP/1.0 keep-alive is acknowledged" $?

# Pipelining: two requests in one write; the answers in order.
exec 3<>"/dev/tcp/127.0.0.1/$P"
printf 'GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >&3
timeout 5 cat <&3 >pipe.out
exec 3<&- 3>&-
[ "$(grep -c '^HTTP/1.1 200' pipe.out)" = 2 ] && grep -A20 'GET /first' pipe.out | grep -q 'GET /second'
check "pipelining: two responses in order" $?

[ "$(code -H "X-Big: $(head -c 5000 /dev/zero | tr '\0' a)" "http://127.0.0.1:$P/hello")" = 431 ]
check "oversized head gets 431" $?
[ "$(code --data-binary "$(head -c 2000 /dev/zero | tr '\0' a)" "http://127.0.0.1:$P/echo")" = 413 ]
check "oversized body gets 413" $?
head -c 3000000 /dev/zero >big.bin
[ "$(code -H 'Expect:' --data-binary @big.bin "http://127.0.0.1:$P/echo")" = 413 ]
check "3 MB body without Expect: 413 arrives (lingering close)" $?
out=$(printf 'GET / HTTP/1.1\nHost: a\n\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$P; cat >&3; cat <&3")
echo "$out" | grep -q '^HTTP/1.1 400' && echo "$out" | grep -q 'bare LF'
check "bare LF gets 400 with a reason" $?
out=$(printf 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n' |
  timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$P; cat >&3; cat <&3")
echo "$out" | grep -q '^HTTP/1.1 400'; check "CL+TE smuggling attempt gets 400" $?
out=$(printf 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n' |
  timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$P; cat >&3; cat <&3")
echo "$out" | grep -q '^HTTP/1.1 501'; check "unknown transfer coding gets 501" $?

# Slow head: half a request, then silence; 408 within the timeout (1 s) and close.
# (A background command's stdin is /dev/null in bash: hand it fd 4 explicitly.)
out=$( (printf 'GET /hello HTTP/1.1\r\nHost: a\r\n'; sleep 3) |
  timeout 6 bash -c "exec 3<>/dev/tcp/127.0.0.1/$P 4<&0; t0=\$(date +%s%N); cat <&4 >&3 &
    cat <&3; echo elapsed \$(((\$(date +%s%N) - t0) / 1000000))")
ms=$(echo "$out" | sed -n 's/^elapsed //p')
echo "$out" | grep -q '^HTTP/1.1 408' && [ -n "$ms" ] && [ "$ms" -ge 900 ] && [ "$ms" -lt 2500 ]
check "slow head gets 408 after ~1 s (took ${ms:-?} ms)" $?

# The client: plain GET and POST, and a response over its size limit.
out=$(./echo get "http://127.0.0.1:$P/hello")
[ "$out" = "$(printf '200\nhello')" ]; check "mw client: GET" $?
out=$(./echo get "http://127.0.0.1:$P/echo" --method POST --body 'xyz')
[ "$out" = "$(printf '200\nxyz')" ]; check "mw client: POST" $?
out=$(./echo get "http://127.0.0.1:$P/echo" --method POST --body "$(head -c 500 /dev/zero | tr '\0' b)" --max 100)
echo "$out" | grep -q 'error: limit'; check "mw client: response size limit" $?

# Graceful stop: the answer arrives, then the process exits by itself.
out=$(curl -s --max-time 5 -X POST "http://127.0.0.1:$P/stop")
for _ in $(seq 1 50); do
  kill -0 "$plain_pid" 2>/dev/null || break
  sleep 0.1
done
[ "$out" = "stopping" ] && ! kill -0 "$plain_pid" 2>/dev/null && wait "$plain_pid"
check "graceful stop answers and exits cleanly" $?

# ---------------------------------------------------------------- connection limit
start lim --max-conns 1 --idle-timeout 5
exec 4<>"/dev/tcp/127.0.0.1/$lim_port"
sleep 0.2
c=$(code "http://127.0.0.1:$lim_port/hello")
exec 4<&- 4>&-
sleep 0.2
c2=$(code "http://127.0.0.1:$lim_port/hello")
[ "$c" = 000 ] && [ "$c2" = 200 ]; check "connection limit (over: $c, after: $c2)" $?
kill "$lim_pid" 2>/dev/null

# ---------------------------------------------------------------- HTTPS
start tls --tls server.pem server.key --head-timeout 2
T=$tls_port
[ "$T" != 0 ] || { bad "TLS server did not start: $(cat tls.err)"; finish; }
out=$(curl -s --max-time 5 --cacert ca.pem "https://127.0.0.1:$T/hello")
[ "$out" = "hello" ]; check "HTTPS GET" $?
out=$(curl -s --max-time 5 --cacert ca.pem --data-binary "$(head -c 100000 /dev/zero | tr '\0' c)" \
  "https://127.0.0.1:$T/echo" | wc -c)
[ "$out" = 100000 ]; check "HTTPS POST of 100 kB echoed" $?
curl -sv --max-time 5 --cacert ca.pem "https://127.0.0.1:$T/hello" "https://127.0.0.1:$T/hello" \
  >tka.out 2>tka.err
grep -q "Re-using existing connection" tka.err; check "HTTPS keep-alive" $?
printf 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' |
  timeout 5 openssl s_client -quiet -connect "127.0.0.1:$T" -CAfile ca.pem >tpipe.out 2>/dev/null
[ "$(grep -c '^HTTP/1.1 200' tpipe.out)" = 2 ] && grep -A20 'GET /a' tpipe.out | grep -q 'GET /b'
check "HTTPS pipelining via s_client" $?
echo | timeout 5 openssl s_client -connect "127.0.0.1:$T" -tls1_3 -CAfile ca.pem >t13.out 2>&1
grep -q 'Protocol.*TLSv1.3\|TLSv1.3' t13.out && grep -q 'Verify return code: 0' t13.out
check "TLS 1.3 handshake" $?
echo | timeout 5 openssl s_client -connect "127.0.0.1:$T" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 \
  >t12.out 2>&1
grep -q 'Cipher is ECDHE-ECDSA-AES128-GCM-SHA256' t12.out; check "TLS 1.2 with ECDHE+AEAD" $?
echo | timeout 5 openssl s_client -connect "127.0.0.1:$T" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA \
  >t12cbc.out 2>&1
! grep -q 'Cipher is ECDHE-ECDSA-AES128-SHA' t12cbc.out; check "TLS 1.2 CBC cipher refused" $?
echo | timeout 5 openssl s_client -connect "127.0.0.1:$T" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
  >t11.out 2>&1
grep -q 'alert protocol version' t11.out && grep -q 'Cipher is (NONE)' t11.out
check "TLS 1.1 refused with a protocol_version alert" $?
[ "$(code "http://127.0.0.1:$T/hello")" != 200 ]; check "plaintext on the TLS port fails" $?
out=$(./echo get "https://127.0.0.1:$T/hello" --ca ca.pem)
[ "$out" = "$(printf '200\nhello')" ]; check "mw client: HTTPS with pinned CA" $?
out=$(./echo get "https://localhost:$T/hello" --ca ca.pem)
[ "$out" = "$(printf '200\nhello')" ]; check "mw client: HTTPS by name (SNI, name check)" $?
out=$(./echo get "https://127.0.0.1:$T/hello" --ca other.pem)
echo "$out" | grep -q 'error: verify'; check "mw client: wrong CA refused ($out)" $?
# A TLS handshake that stalls is closed by the head timeout (2 s).
out=$(timeout 6 bash -c "exec 3<>/dev/tcp/127.0.0.1/$T; t0=\$(date +%s%N); cat <&3 >/dev/null;
  echo elapsed \$(((\$(date +%s%N) - t0) / 1000000))")
ms=$(echo "$out" | sed -n 's/^elapsed //p')
[ -n "$ms" ] && [ "$ms" -ge 1900 ] && [ "$ms" -lt 3500 ]
check "stalled TLS handshake closed after ~2 s (${ms:-?} ms)" $?
kill "$tls_pid" 2>/dev/null

# ---------------------------------------------------------------- mTLS
start mtls --tls server.pem server.key --ca ca.pem --require
M=$mtls_port
[ "$(code --cacert ca.pem "https://127.0.0.1:$M/hello")" = 000 ]
check "mTLS: client without a certificate refused" $?
out=$(curl -s --max-time 5 --cacert ca.pem --cert client.pem --key client.key "https://127.0.0.1:$M/peer")
echo "$out" | grep -q 'peer chain [1-9][0-9]* bytes'; check "mTLS: client certificate accepted, chain handed over ($out)" $?
[ "$(code --cacert ca.pem --cert other.pem --key other.key "https://127.0.0.1:$M/hello")" = 000 ]
check "mTLS: certificate from another CA refused" $?
out=$(./echo get "https://127.0.0.1:$M/peer" --ca ca.pem --cert client.pem client.key)
echo "$out" | grep -q '^200'; check "mw client: mTLS with a client certificate" $?
kill "$mtls_pid" 2>/dev/null

start mcheck --tls server.pem server.key --require --peer-check
out=$(curl -s --max-time 5 --cacert ca.pem --cert other.pem --key other.key \
  "https://127.0.0.1:$mcheck_port/peer")
echo "$out" | grep -q 'checks 1'; check "mTLS: the peer-check callback decides ($out)" $?
kill "$mcheck_pid" 2>/dev/null

for f in ./*.err; do
  if grep -q 'ERROR: AddressSanitizer\|runtime error' "$f"; then
    bad "sanitizer report in $f"
    cat "$f"
  fi
done
finish
