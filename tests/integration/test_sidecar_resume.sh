#!/usr/bin/env bash
# Outbound TLS 1.3 session resumption between two sidecars on 127.0.0.1, and the
# handshake metrics: a second connection to the same destination resumes; the server
# sees the client's current certificate after the client's SVID rotates (the cache
# was flushed); a rotated destination falls back to a full handshake without failing
# the connection; a destination that now presents another identity is refused even
# though the client holds tickets for it; refused handshakes are counted by reason.
set -u
MESHWARD=${MESHWARD:-$(dirname "$0")/../../build/meshward}
# shellcheck source=lib_mesh.sh
. "$(dirname "$0")/lib_mesh.sh"
read -r APP S_HTTP S_ADMIN C_SVC C_WRONG C_ADMIN <<<"$(mesh_ports 6)"

# ---------------------------------------------------------------- certificates
cd "$W" || exit 1
mesh_test_ca ca
mesh_test_ca rogue
mesh_test_svid client spiffe://cluster.local/ns/foo/sa/client ca
mesh_test_svid client2 spiffe://cluster.local/ns/foo/sa/client ca # the same identity, a new key: rotation
mesh_test_svid server spiffe://cluster.local/ns/foo/sa/server ca
mesh_test_svid server2 spiffe://cluster.local/ns/foo/sa/server ca
mesh_test_svid other spiffe://cluster.local/ns/bar/sa/other ca
mesh_test_svid untrusted spiffe://cluster.local/ns/foo/sa/client rogue
mesh_test_svid foreign spiffe://partner.example/ns/foo/sa/client rogue
[ -s client2.crt ] && [ -s foreign.crt ] || { echo "certificate setup failed"; exit 1; }
cp client.crt cur-client.crt && cp client.key cur-client.key
cp server.crt cur-server.crt && cp server.key cur-server.key

# ---------------------------------------------------------------- app: echoes the XFCC header
cat >app.py <<'EOF'
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("xfcc=%s\n" % self.headers.get("x-forwarded-client-cert", "-")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 app.py "$APP" &
PIDS+=($!)

cat >policy.yaml <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: foo}
spec:
  mtls: {mode: STRICT}
EOF
cat >server.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: server}
spec:
  workload: {namespace: foo, serviceAccount: server, labels: {app: server}}
  identity:
    certificate: cur-server.crt
    key: cur-server.key
    bundles: [{trustDomain: cluster.local, file: ca.crt}]
  inbound:
    address: 127.0.0.1
    ports:
    - {port: 8080, protocol: http, listenPort: $S_HTTP, appPort: $APP}
  policies: [policy.yaml]
  admin: {port: $S_ADMIN}
  timeouts: {head: 2s}
EOF
cat >client.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: client}
spec:
  workload: {namespace: foo, serviceAccount: client, labels: {app: client}}
  identity:
    certificate: cur-client.crt
    key: cur-client.key
    bundles: [{trustDomain: cluster.local, file: ca.crt}]
  outbound:
    services:
    - {name: server.foo, port: 8080, endpoints: ["127.0.0.1:$S_HTTP"], spiffeId: "spiffe://cluster.local/ns/foo/sa/server", localPort: $C_SVC}
    - {name: wrongid.foo, port: 8080, endpoints: ["127.0.0.1:$S_HTTP"], spiffeId: "spiffe://cluster.local/ns/foo/sa/not-the-server", localPort: $C_WRONG}
  admin: {port: $C_ADMIN}
EOF

"$MESHWARD" sidecar run --config server.yaml >server.out 2>&1 &
SPID=$!
PIDS+=($SPID)
"$MESHWARD" sidecar run --config client.yaml >client.out 2>&1 &
CPID=$!
PIDS+=($CPID)
for _ in $(seq 1 100); do
    curl -s "http://127.0.0.1:$S_ADMIN/readyz" >/dev/null 2>&1 &&
        curl -s "http://127.0.0.1:$C_ADMIN/readyz" >/dev/null 2>&1 &&
        curl -s "http://127.0.0.1:$APP/" >/dev/null 2>&1 && break
    sleep 0.1
done

# metric ADMIN_PORT NAME LABEL... : the value of the series whose labels include every LABEL
# (0 when absent).
metric() {
    local port=$1 name=$2
    shift 2
    curl -s --max-time 5 "http://127.0.0.1:$port/metrics" | grep "^$name{" |
        { local l; while read -r l; do
            local all=1 want
            for want in "$@"; do [[ $l == *"$want"* ]] || all=0; done
            [ $all = 1 ] && echo "${l##* }"
        done; } | awk '{s += $1} END {print s + 0}'
}
out_hs() { metric "$C_ADMIN" meshward_tls_handshakes_total 'direction="outbound"' "resumed=\"$1\""; }
in_hs() { metric "$S_ADMIN" meshward_tls_handshakes_total 'direction="inbound"' "resumed=\"$1\""; }
fails() { # admin direction reason
    metric "$1" meshward_tls_handshake_failures_total "direction=\"$2\"" "reason=\"$3\""
}
# get: one request through the client sidecar on a new connection; prints the status and
# the certificate hash the server sidecar saw (XFCC Hash=).
get() {
    local port=${1:-$C_SVC} body code
    code=$(curl -s -o body.out -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/x")
    echo "$code $(sed -n 's/.*;Hash=\([0-9a-f]*\);.*/\1/p' body.out)"
}
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
# wait_log FILE TEXT COUNT: until FILE holds TEXT COUNT times (bounded, 5 s).
wait_log() {
    for _ in $(seq 1 50); do
        [ "$(grep -c -- "$2" "$1")" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- resumption
r1=$(get)
r2=$(get)
r3=$(get)
check "three requests through both sidecars -> 200" "[ '${r1%% *}${r2%% *}${r3%% *}' = 200200200 ]"
check "first connection: one full outbound handshake" "[ \$(out_hs false) = 1 ]"
check "second and third connections resumed (outbound resumed=\"true\" = 2)" "[ \$(out_hs true) = 2 ]"
check "the server counted the resumptions (inbound resumed=\"true\" = 2)" "[ \$(in_hs true) = 2 ]"
check "resumed connections still carry the client's certificate (XFCC hash)" \
    "[ '${r1#* }' = \"\$(fp client.crt)\" ] && [ '${r3#* }' = \"\$(fp client.crt)\" ]"

# A real client against the server sidecar: its tickets are usable by openssl s_client.
req='GET /x HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n'
printf "$req" | timeout 5 openssl s_client -connect "127.0.0.1:$S_HTTP" -cert client.crt \
    -key client.key -sess_out sess.pem -ign_eof >s1.out 2>&1
printf "$req" | timeout 5 openssl s_client -connect "127.0.0.1:$S_HTTP" -cert client.crt \
    -key client.key -sess_in sess.pem -ign_eof >s2.out 2>&1
check "openssl s_client resumes a session with the server sidecar (TLS 1.3 ticket)" \
    "grep -q '^Reused, TLSv1.3' s2.out && grep -q 'HTTP/1.1 200' s2.out"

# ---------------------------------------------------------------- our SVID rotates
full0=$(out_hs false) res0=$(out_hs true)
cp client2.crt cur-client.crt && cp client2.key cur-client.key
kill -HUP "$CPID"
wait_log client.out "reloaded" 1
r4=$(get)
check "after the client's SVID rotates: 200" "[ '${r4%% *}' = 200 ]"
check "  ... the server sees the new certificate (no session of the old one was resumed)" \
    "[ '${r4#* }' = \"\$(fp client2.crt)\" ] && [ '${r4#* }' != \"\$(fp client.crt)\" ]"
check "  ... it was a full handshake" "[ \$(out_hs false) = $((full0 + 1)) ] && [ \$(out_hs true) = $res0 ]"
r5=$(get)
check "  ... and the next one resumes the new session" \
    "[ '${r5%% *}' = 200 ] && [ \$(out_hs true) = $((res0 + 1)) ] && [ '${r5#* }' = \"\$(fp client2.crt)\" ]"

# ---------------------------------------------------------------- the destination rotates
full0=$(out_hs false) res0=$(out_hs true)
cp server2.crt cur-server.crt && cp server2.key cur-server.key
kill -HUP "$SPID"
wait_log server.out "reloaded" 1
r6=$(get)
check "after the server's SVID rotates: the stale ticket falls back to a full handshake, 200" \
    "[ '${r6%% *}' = 200 ] && [ \$(out_hs false) = $((full0 + 1)) ] && [ \$(out_hs true) = $res0 ]"
r7=$(get)
check "  ... and the new server's ticket resumes" "[ '${r7%% *}' = 200 ] && [ \$(out_hs true) = $((res0 + 1)) ]"

# The destination now presents another identity; the client still holds tickets for it.
mm0=$(fails "$C_ADMIN" outbound identity_mismatch)
res0=$(out_hs true)
cp other.crt cur-server.crt && cp other.key cur-server.key
kill -HUP "$SPID"
wait_log server.out "reloaded" 2
r8=$(get)
r9=$(get)
check "a destination with another SPIFFE ID is refused, though tickets for it were cached" \
    "[ '${r8%% *}' != 200 ] && [ '${r9%% *}' != 200 ] && [ \$(out_hs true) = $res0 ]"
check "  ... counted as outbound identity_mismatch" \
    "[ \$(fails $C_ADMIN outbound identity_mismatch) = $((mm0 + 2)) ]"
cp server.crt cur-server.crt && cp server.key cur-server.key
kill -HUP "$SPID"
wait_log server.out "reloaded" 3
check "the right destination again -> 200" "[ \"\$(get | cut -d' ' -f1)\" = 200 ]"

# ---------------------------------------------------------------- refused handshakes
check "outbound to the wrong expected ID is refused" "[ \"\$(get $C_WRONG | cut -d' ' -f1)\" != 200 ]"
check "  ... and counted (outbound identity_mismatch)" \
    "[ \$(fails $C_ADMIN outbound identity_mismatch) = $((mm0 + 3)) ]"
curl -s --max-time 5 "http://127.0.0.1:$S_HTTP/x" >/dev/null 2>&1
check "plaintext on a STRICT port: inbound plaintext" "[ \$(fails $S_ADMIN inbound plaintext) = 1 ]"
curl -s -k --max-time 5 "https://127.0.0.1:$S_HTTP/x" >/dev/null 2>&1
check "TLS without a client certificate: inbound no_certificate" \
    "[ \$(fails $S_ADMIN inbound no_certificate) = 1 ]"
curl -s -k --cert untrusted.crt --key untrusted.key --max-time 5 "https://127.0.0.1:$S_HTTP/x" \
    >/dev/null 2>&1
check "a certificate from an untrusted CA: inbound bad_certificate" \
    "[ \$(fails $S_ADMIN inbound bad_certificate) = 1 ]"
curl -s -k --cert foreign.crt --key foreign.key --max-time 5 "https://127.0.0.1:$S_HTTP/x" \
    >/dev/null 2>&1
check "an SVID of a trust domain without a bundle: inbound unknown_trust_domain" \
    "[ \$(fails $S_ADMIN inbound unknown_trust_domain) = 1 ]"
python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $S_HTTP)); time.sleep(3); s.close()"
check "a client that never starts the handshake: inbound timeout (head timeout 2 s)" \
    "[ \$(fails $S_ADMIN inbound timeout) = 1 ]"
check "no other inbound failure reason was counted" \
    "[ \$(metric $S_ADMIN meshward_tls_handshake_failures_total 'direction=\"inbound\"') = 5 ]"

check "both sidecars still alive" "kill -0 $SPID && kill -0 $CPID"
check "SIGTERM stops both cleanly (exit 0, no sanitizer report)" \
    "kill -TERM $SPID $CPID; wait $SPID; r1=\$?; wait $CPID; r2=\$?; [ \$r1 = 0 ] && [ \$r2 = 0 ] && ! grep -q Sanitizer server.out client.out"
echo "$pass passed, $fail failed"
if [ "$fail" -ne 0 ]; then
    echo "--- server sidecar log"; tail -30 server.out
    echo "--- client sidecar log"; tail -30 client.out
    curl -s "http://127.0.0.1:$C_ADMIN/metrics" 2>/dev/null | grep meshward_tls
fi
[ "$fail" -eq 0 ]
