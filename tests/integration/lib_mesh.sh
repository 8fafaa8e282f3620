# shellcheck shell=bash
# Shared by the integration tests that run a CA or control plane, sidecars and a backend on
# 127.0.0.1 (test_control.sh, test_sidecar_rotation.sh, test_sidecar_join_renew.sh,
# test_sidecar_pool.sh, test_sidecar_resume.sh). Source it
# after setting MESHWARD; it makes the scratch folder $W (removed at exit, with every process
# in PIDS and CA_PID), the counters and check(), and the helpers below. Set MESH_LOGS to the
# log files worth showing when a check failed.
W=$(mktemp -d)
PIDS=()
CA_PID=
MESH_LOGS=()
mesh_cleanup() {
    [ -n "$CA_PID" ] && kill "$CA_PID" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$CA_PID" ] && wait "$CA_PID" 2>/dev/null
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap mesh_cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
# The count, the logs when something failed, and the exit status.
finish() {
    if [ "$fail" != 0 ]; then
        for f in "${MESH_LOGS[@]}"; do echo "--- $f"; tail -n 15 "$W/$f" 2>/dev/null; done
    fi
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit
}

# mesh_ports N: N free loopback ports, chosen by the kernel.
mesh_ports() {
    python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

# A Kubernetes service-account token issuer: an RSA key (k8s.key) and its JWKS (k8s.jwks).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
mesh_k8s_issuer() {
    openssl genrsa -out k8s.key 2048 2>/dev/null
    local n
    n=$(openssl rsa -in k8s.key -noout -modulus 2>/dev/null | cut -d= -f2 | xxd -r -p | b64url)
    printf '{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}' \
        "$n" >k8s.jwks
}
# mesh_k8s_token NAMESPACE SA FILE [AUDIENCE]: a token valid for an hour (audience meshward-ca).
mesh_k8s_token() {
    local now h p s
    now=$(date +%s)
    h=$(printf '{"alg":"RS256","kid":"k1","typ":"JWT"}' | b64url)
    p=$(printf '{"iss":"https://k8s.example","aud":["%s"],"sub":"system:serviceaccount:%s:%s","iat":%d,"nbf":%d,"exp":%d}' \
        "${4:-meshward-ca}" "$1" "$2" "$((now - 5))" "$((now - 5))" "$((now + 3600))" | b64url)
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign k8s.key | b64url)
    printf '%s.%s.%s\n' "$h" "$p" "$s" >"$3"
    chmod 600 "$3"
}

# mesh_wait_health PORT ERRFILE: the CA service answers /healthz (10 s), or say why not.
mesh_wait_health() {
    for _ in $(seq 1 100); do
        curl -sk "https://127.0.0.1:$1/healthz" 2>/dev/null | grep -qx ok && return 0
        [ -n "$CA_PID" ] && ! kill -0 "$CA_PID" 2>/dev/null && break
        sleep 0.1
    done
    echo "the CA service did not start: $(cat "$2")"
    return 1
}

# mesh_wait_tcp PORT: something listens on 127.0.0.1:PORT (10 s).
mesh_wait_tcp() {
    for _ in $(seq 1 100); do
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
            "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# mesh_backend PORT [NAME]: an HTTP/1.1 keep-alive backend answering GET with "ok" (or
# "NAME PATH" when NAME is given), started into PIDS and waited for.
mesh_backend() {
    [ -f app.py ] || cat >app.py <<'EOF'
import http.server, socketserver, sys
name = sys.argv[2] if len(sys.argv) > 2 else None
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (name + " " + self.path + "\n").encode() if name else b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
    python3 app.py "$@" &
    PIDS+=($!)
    mesh_wait_tcp "$1"
}

# mesh_test_ca NAME: a P-256 CA made with openssl (NAME.crt, NAME.key).
mesh_test_ca() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
    openssl req -x509 -new -key "$1.key" -subj "/O=meshward test/CN=$1" -days 2 -out "$1.crt" \
        -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
}
# mesh_test_svid NAME SPIFFE-ID [CA]: an X.509-SVID from CA (default "ca"): NAME.crt, NAME.key
# (0600), one URI SAN, leaf, digitalSignature, serverAuth + clientAuth (X509-SVID §4).
mesh_test_svid() {
    local ca=${3:-ca}
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
    chmod 600 "$1.key"
    openssl req -new -key "$1.key" -subj "/O=meshward test" -out "$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:%s\n' "$2" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 1 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

# mesh_load PORT SECONDS PAUSE: for SECONDS, a GET on a new connection every PAUSE seconds plus
# one on a keep-alive connection held open, each wanting 200 "ok"; prints "ok failed ka_ok"
# (reasons for failures on stderr).
mesh_load() {
    [ -f load.py ] || cat >load.py <<'EOF'
import http.client, sys, time
port, secs, pause = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ok = failed = ka_ok = 0
ka = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
end = time.time() + secs
while time.time() < end:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/load")
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status == 200 and body == b"ok\n":
            ok += 1
        else:
            failed += 1
            print("status", r.status, body[:80], file=sys.stderr)
    except Exception as e:
        failed += 1
        print("error", e, file=sys.stderr)
    try:
        ka.request("GET", "/ka")
        r = ka.getresponse()
        if r.read() == b"ok\n" and r.status == 200:
            ka_ok += 1
        else:
            failed += 1
    except Exception as e:
        failed += 1
        print("keep-alive error", e, file=sys.stderr)
    time.sleep(pause)
print(ok, failed, ka_ok)
EOF
    python3 load.py "$1" "$2" "$3"
}
