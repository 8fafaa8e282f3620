#!/usr/bin/env bash
# Pooled mTLS connections between sidecars for protocol http services, on 127.0.0.1: new
# client connections with "Connection: close" reuse one upstream connection; keep-alive and
# pipelined requests get their own responses in order; chunked bodies, HEAD, 204 and 304 keep
# their framing; hop-by-hop fields do not cross; a restarted server sidecar costs no GET; a
# reused connection the server drops is retried for GET and answered 502 (not sent twice) for
# POST; a new SVID stops reuse; a wrong server identity is refused; tcp services still relay.
set -u
MESHWARD=${MESHWARD:-$(dirname "$0")/../../build/meshward}
# shellcheck source=lib_mesh.sh
. "$(dirname "$0")/lib_mesh.sh"
MESH_LOGS=(server.out client.out fake.log)
read -r APP S_HTTP S_ADMIN C_HTTP C_TCP C_WRONG C_FLAKY C_ADMIN FAKE C_PROXY <<<"$(mesh_ports 10)"
cd "$W" || exit 1

# ---------------------------------------------------------------- certificates
mesh_test_ca ca
mesh_test_svid client spiffe://cluster.local/ns/foo/sa/client ca
mesh_test_svid client2 spiffe://cluster.local/ns/foo/sa/client ca # the same identity, a new key
mesh_test_svid server spiffe://cluster.local/ns/foo/sa/server ca
[ -s client2.crt ] && [ -s server.crt ] || { echo "certificate setup failed"; exit 1; }
cp client.crt cur-client.crt && cp client.key cur-client.key

# ---------------------------------------------------------------- the app
cat >app.py <<'EOF'
import http.server, socketserver, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def body_in(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        p = self.path
        if p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD":
                return
            for part in (b"alpha-", b"beta-", b"gamma\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if p == "/204":
            self.send_response(204)
            self.end_headers()
            return
        if p == "/304":
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            return
        x = self.headers.get("x-forwarded-client-cert", "")
        h = x.split(";Hash=")[1].split(";")[0] if ";Hash=" in x else "-"
        self.reply(200, ("path=%s hash=%s\n" % (p, h)).encode())
    do_HEAD = do_GET
    def do_POST(self):
        self.reply(200, self.body_in())
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 app.py "$APP" &
PIDS+=($!)

# A destination "sidecar" with the server's SVID that answers the first request on each
# connection (echoing the head it received) and drops the connection at the second one,
# unanswered: a server closing an idle connection just as a request is sent on it.
cat >fake.py <<'EOF'
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain("server.crt", "server.key")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
log = open("fake.log", "a")
lock = threading.Lock()
def serve(c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        f = s.makefile("rb")
        n = 0
        while True:
            head = b""
            while True:
                line = f.readline()
                if not line:
                    return
                head += line
                if line == b"\r\n":
                    break
            n += 1
            with lock:
                log.write("%s #%d\n" % (head.split(b"\r\n")[0].decode(), n))
                log.flush()
            if n >= 2:
                s.close()
                return
            path = head.split(b" ")[1]
            if path == b"/bad":  # two lengths: a response no one can frame
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
                continue
            r = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(head) + head
            if path == b"/extra":  # a second response nobody asked for
                r += b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"
            s.sendall(r)
    except Exception:
        pass
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
: >fake.log
python3 fake.py "$FAKE" &
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
    certificate: server.crt
    key: server.key
    bundles: [{trustDomain: cluster.local, file: ca.crt}]
  inbound:
    address: 127.0.0.1
    ports:
    - {port: 8080, protocol: http, listenPort: $S_HTTP, appPort: $APP}
  policies: [policy.yaml]
  admin: {port: $S_ADMIN}
EOF
SID=spiffe://cluster.local/ns/foo/sa/server
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
    port: $C_PROXY
    services:
    - {name: server.foo, port: 8080, protocol: http, endpoints: ["127.0.0.1:$S_HTTP"], spiffeId: "$SID", localPort: $C_HTTP}
    - {name: server-tcp.foo, port: 8080, protocol: tcp, endpoints: ["127.0.0.1:$S_HTTP"], spiffeId: "$SID", localPort: $C_TCP}
    - {name: wrongid.foo, port: 8080, protocol: http, endpoints: ["127.0.0.1:$S_HTTP"], spiffeId: "spiffe://cluster.local/ns/foo/sa/not-the-server", localPort: $C_WRONG}
    - {name: flaky.foo, port: 8080, protocol: http, endpoints: ["127.0.0.1:$FAKE"], spiffeId: "$SID", localPort: $C_FLAKY}
  admin: {port: $C_ADMIN}
EOF

start_server() {
    "$MESHWARD" sidecar run --config server.yaml >>server.out 2>&1 &
    SPID=$!
    PIDS+=($SPID)
    for _ in $(seq 1 100); do
        curl -s "http://127.0.0.1:$S_ADMIN/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
start_server
"$MESHWARD" sidecar run --config client.yaml >client.out 2>&1 &
CPID=$!
PIDS+=($CPID)
for _ in $(seq 1 100); do
    curl -s "http://127.0.0.1:$C_ADMIN/readyz" >/dev/null 2>&1 &&
        curl -s "http://127.0.0.1:$APP/" >/dev/null 2>&1 && break
    sleep 0.1
done

# metric ADMIN_PORT NAME LABEL...: the sum of the series whose labels include every LABEL.
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
in_hs() { metric "$S_ADMIN" meshward_tls_handshakes_total 'direction="inbound"'; }
pool() { metric "$C_ADMIN" meshward_outbound_pool_connections_total "service=\"$1\"" "event=\"$2\""; }
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
wait_log() { # FILE TEXT COUNT
    for _ in $(seq 1 50); do
        [ "$(grep -c -- "$2" "$1")" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
U=http://127.0.0.1:$C_HTTP

# ---------------------------------------------------------------- reuse across client connections
hs0=$(in_hs)
codes=""
for i in $(seq 1 20); do
    codes+=$(curl -s -o /dev/null -w '%{http_code} ' --max-time 5 -H 'Connection: close' "$U/n$i")
done
check "20 new client connections with Connection: close -> 20 x 200" \
    "[ \"\$(echo $codes | tr ' ' '\n' | grep -c '^200$')\" = 20 ]"
check "  ... over one upstream connection (server sidecar: 1 handshake)" "[ \$(( \$(in_hs) - hs0 )) = 1 ]"
check "  ... the pool counts 1 opened, 19 reused" \
    "[ \$(pool server.foo opened) = 1 ] && [ \$(pool server.foo reused) = 19 ]"
r=$(curl -s --max-time 5 "$U/who")
check "the server sidecar still sees the client's certificate (XFCC hash)" \
    "[ '$r' = \"path=/who hash=\$(fp client.crt)\" ]"

# ---------------------------------------------------------------- keep-alive and pipelining
r=$(curl -s --max-time 5 "$U/a" "$U/b" "$U/c" | tr -d '\n')
check "keep-alive client connection: three responses in order" \
    "[[ '$r' == path=/a\ hash=*path=/b\ hash=*path=/c\ hash=* ]]"
cat >pipe.py <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
req = b""
for p in ("/p1", "/p2", "/p3"):
    req += b"GET %s HTTP/1.1\r\nHost: server.foo\r\n\r\n" % p.encode()
req += b"GET /p4 HTTP/1.1\r\nHost: server.foo\r\nConnection: close\r\n\r\n"
s.sendall(req)
data = b""
s.settimeout(5)
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(" ".join(l.split()[0].split(b"=")[1].decode() for l in data.split(b"\n") if l.startswith(b"path=")))
print(data.count(b"HTTP/1.1 200 OK"))
EOF
r=$(python3 pipe.py "$C_HTTP" | tr '\n' ' ')
check "four pipelined requests: four 200s, responses in request order" "[ '$r' = '/p1 /p2 /p3 /p4 4 ' ]"

ru0=$(pool server.foo reused)
r=$(curl -s --max-time 5 -x "http://127.0.0.1:$C_PROXY" "http://server.foo:8080/viaproxy")
check "explicit proxy (curl -x) to an http service: answered on a pooled connection" \
    "[[ '$r' == path=/viaproxy* ]] && [ \$(pool server.foo reused) = $((ru0 + 1)) ]"
check "  ... still the first upstream connection (kept ones went back to the pool)" \
    "[ \$(pool server.foo opened) = 1 ]"

# ---------------------------------------------------------------- bodies and framing
head -c 300000 /dev/urandom >big.bin
r=$(curl -s --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary @big.bin "$U/echo" | sha256sum)
check "a 300 kB chunked request body arrives whole (echoed)" "[ '$r' = \"\$(sha256sum <big.bin)\" ]"
r=$(curl -s --max-time 10 --data-binary @big.bin "$U/echo" | sha256sum)
check "a 300 kB Content-Length request body arrives whole" "[ '$r' = \"\$(sha256sum <big.bin)\" ]"
r=$(curl -s --raw --max-time 5 -D hdr.out "$U/chunked")
check "a chunked response is relayed chunked, whole" \
    "grep -qi '^transfer-encoding: chunked' hdr.out && [[ '$(echo "$r" | tr -d '\r\n')' == *alpha-*beta-*gamma* ]]"
cat >framing.py <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
out = []
for m, p in (("HEAD", "/x"), ("GET", "/204"), ("GET", "/304"), ("HEAD", "/chunked"), ("GET", "/after")):
    c.request(m, p)
    r = c.getresponse()
    b = r.read()
    out.append("%s %d %d" % (p, r.status, len(b)))
    if p == "/x":
        out.append("cl=%s" % r.getheader("Content-Length"))
    if p == "/after":
        out.append(b.decode().split()[0])
print(",".join(out))
EOF
r=$(python3 framing.py "$C_HTTP")
check "HEAD, 204, 304, HEAD of a chunked resource, then GET on one connection keep their framing" \
    "[[ '$r' == '/x 200 0,cl=78,/204 204 0,/304 304 0,/chunked 200 0,/after 200 '*',path=/after' ]]"

# ---------------------------------------------------------------- hop-by-hop fields (the fake echoes what it got)
r=$(curl -s --max-time 5 -H 'Connection: close, X-Hop' -H 'X-Hop: 1' -H 'Keep-Alive: timeout=5' \
    -H 'Proxy-Connection: keep-alive' -H 'TE: trailers' -H 'Proxy-Authorization: Basic c2VjcmV0' \
    -H 'Upgrade-Insecure-Requests: 1' -H 'X-End: 2' "http://127.0.0.1:$C_FLAKY/hop")
check "hop-by-hop fields are not forwarded (Connection and what it names, Keep-Alive, Proxy-*, TE)" \
    "[[ '$r' == 'GET /hop HTTP/1.1'* ]] && [[ '$r' == *'X-End: 2'* ]] && [[ '$r' == *'Upgrade-Insecure-Requests: 1'* ]] && ! grep -qiE '^(connection|x-hop|keep-alive|proxy-connection|te|proxy-authorization):' <<<'$r'"

# ---------------------------------------------------------------- retry of a dropped reused connection
r=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$C_FLAKY/again")
check "GET on a reused connection the server drops unanswered: retried on a new one -> 200" \
    "[ '$r' = 200 ] && [ \$(grep -c '^GET /again ' fake.log) = 2 ] && [ \$(pool flaky.foo retried) = 1 ]"
r=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d 'once' "http://127.0.0.1:$C_FLAKY/post")
check "POST on a reused connection the server drops: 502, sent once, not retried" \
    "[ '$r' = 502 ] && [ \$(grep -c '^POST /post ' fake.log) = 1 ] && [ \$(pool flaky.foo retried) = 1 ]"

# ---------------------------------------------------------------- responses that poison nothing
r1=$(curl -s --max-time 5 "http://127.0.0.1:$C_FLAKY/extra")
r2=$(curl -s --max-time 5 "http://127.0.0.1:$C_FLAKY/next")
check "a response followed by an unrequested one: the connection is dropped, not reused" \
    "[[ '$r1' == 'GET /extra HTTP/1.1'* ]] && [[ '$r2' == 'GET /next HTTP/1.1'* ]] && grep -q '^GET /next HTTP/1.1 #1' fake.log"
r1=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$C_FLAKY/bad")
r2=$(curl -s --max-time 5 "http://127.0.0.1:$C_FLAKY/next2")
check "a response with two Content-Lengths: 502, and the next request gets a new connection" \
    "[ '$r1' = 502 ] && [[ '$r2' == 'GET /next2 HTTP/1.1'* ]] && grep -q '^GET /next2 HTTP/1.1 #1' fake.log"

# ---------------------------------------------------------------- the server sidecar restarts
kill -KILL "$SPID"
wait "$SPID" 2>/dev/null
start_server
codes=""
for i in 1 2 3 4 5; do
    codes+=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Connection: close' "$U/r$i")
done
check "after a server sidecar restart (pooled connection dead): 5 GETs -> 200" "[ '$codes' = 200200200200200 ]"

# ---------------------------------------------------------------- our SVID rotates
op0=$(pool server.foo opened)
curl -s -o /dev/null --max-time 5 "$U/before"
cp client2.crt cur-client.crt && cp client2.key cur-client.key
kill -HUP "$CPID"
wait_log client.out "reloaded" 1
r1=$(curl -s --max-time 5 -H 'Connection: close' "$U/rot1")
r2=$(curl -s --max-time 5 -H 'Connection: close' "$U/rot2")
check "after the client's SVID changes (SIGHUP): a new connection, with the new certificate" \
    "[ '$r1' = \"path=/rot1 hash=\$(fp client2.crt)\" ] && [ \$(pool server.foo opened) = $((op0 + 1)) ]"
check "  ... which is then reused" \
    "[ '$r2' = \"path=/rot2 hash=\$(fp client2.crt)\" ] && [ \$(pool server.foo opened) = $((op0 + 1)) ]"

# ---------------------------------------------------------------- identity and tcp
mm0=$(metric "$C_ADMIN" meshward_tls_handshake_failures_total 'reason="identity_mismatch"')
r1=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$C_WRONG/w1")
r2=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$C_WRONG/w2")
check "a server that is not the expected SPIFFE ID is refused (503), each time, never pooled" \
    "[ '$r1$r2' = 503503 ] && [ \$(pool wrongid.foo reused) = 0 ] && [ \$(metric $C_ADMIN meshward_tls_handshake_failures_total 'reason=\"identity_mismatch\"') = $((mm0 + 2)) ]"
r=$(curl -s --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' "$U/up")
check "a request with Upgrade goes over a dedicated connection (relayed)" \
    "[[ '$r' == path=/up* ]] && [ \$(metric $C_ADMIN istio_tcp_connections_opened_total 'destination_service=\"server.foo\"') = 1 ]"
r=$(curl -s --max-time 5 "http://127.0.0.1:$C_TCP/tcp")
check "a protocol tcp service is still a relay" \
    "[[ '$r' == path=/tcp* ]] && [ \$(metric $C_ADMIN istio_tcp_connections_opened_total 'destination_service=\"server-tcp.foo\"') = 1 ] && [ \$(pool server-tcp.foo opened) = 0 ]"
check "outbound requests are reported (reporter=source, istio_requests_total)" \
    "[ \$(metric $C_ADMIN istio_requests_total 'reporter=\"source\"' 'destination_service=\"server.foo\"' 'response_code=\"200\"') -ge 30 ]"

check "both sidecars still alive" "kill -0 $SPID && kill -0 $CPID"
check "SIGTERM stops both cleanly (exit 0, no sanitizer report)" \
    "kill -TERM $SPID $CPID; wait $SPID; r1=\$?; wait $CPID; r2=\$?; [ \$r1 = 0 ] && [ \$r2 = 0 ] && ! grep -q Sanitizer server.out client.out"
finish
