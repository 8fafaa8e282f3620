#!/usr/bin/env bash
# Authorization, PeerAuthentication, egress, metrics and reload on a real mesh in
# network namespaces (the issue's "Tests" list), driven with real curl, openssl
# s_client and python3 http.client clients:
#
#   ns 0 "control"  the mesh CA (`meshward ca serve`), two plain HTTP servers for egress
#   ns 1 "client"   workload foo/client: app-side curl/python, sidecar with interception
#   ns 2 "server"   workload foo/server: an HTTP/1.1 app on 9080, 9090 and 9091, its
#                   sidecar with interception (9080/9090 STRICT, 9091 PERMISSIVE)
#   ns 3 "outsider" no sidecar: curl/openssl with SVIDs for foo/reader and bar/other (from
#                   the CA with join tokens), one from a second trust domain
#                   (other.example, `meshward ca init`), one from an untrusted openssl CA
#
# Covers: STRICT refuses plaintext, another trust domain and an untrusted CA;
# PERMISSIVE (port-level) accepts plaintext and mTLS; allow/deny by principal,
# namespace, method, path, header and port; DENY beats ALLOW (x-meshward-denied-by
# names the DENY policy); declared egress allowed and undeclared refused, both
# counted; exact metric deltas (istio_requests_total by response_code and
# source_principal, meshward_authz_denied_total{policy}); a policy reload by SIGHUP
# changes the decision on one open keep-alive connection. Needs root.
set -uo pipefail
MESHWARD=${MESHWARD:-$(cd "$(dirname "$0")/../.." && pwd)/build/meshward}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib_netns.sh
. "$here/lib_netns.sh"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# want NAME WANT GOT
want() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: got '$3', want '$2'"; fi; }
# has NAME PATTERN FILE: FILE contains PATTERN (grep -E)
has() { if grep -qE "$2" "$3"; then ok "$1"; else bad "$1: no /$2/ in $3: $(head -c 300 "$3")"; fi; }
# alive NAME PID
alive() { if kill -0 "$2" 2>/dev/null; then ok "$1"; else bad "$1: process $2 is gone"; fi; }

netns_require
command -v iptables >/dev/null || { echo "FAIL: iptables is not installed" >&2; exit 1; }
for tool in curl openssl setpriv python3; do
  command -v $tool >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
[ -x "$MESHWARD" ] || { echo "FAIL: $MESHWARD is not built" >&2; exit 1; }

W=$(mktemp -d /tmp/mw-netns-policy.XXXXXX)
chmod 755 "$W"
KEEP_PIDS=()
finish() {
  local p
  for p in "${KEEP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${KEEP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  netns_cleanup
  if [ "${MW_TEST_KEEP:-0}" = 1 ]; then echo "files kept in $W"; else rm -rf "$W"; fi
}
netns_setup pol 4 || { echo "FAIL: could not create network namespaces" >&2; exit 1; }
trap finish EXIT
cd "$W" || exit 1

CTRL=0 CLIENT=1 SERVER=2 OUT=3
C_ADDR=$(netns_addr $CTRL) S_ADDR=$(netns_addr $SERVER)
TD=cluster.local
PROXY_UID=1337
PROXY_AS=(setpriv "--reuid=$PROXY_UID" "--regid=$PROXY_UID" --clear-groups)
CA_PORT=8443 EXT_OPEN=8081 EXT_CLOSED=8080
ADMIN=15000

die() {
  echo "FAIL setup: $*"
  failed=$((failed + 1))
  echo "$passed passed, $failed failed"
  exit 1
}

# ---------------------------------------------------------------- CA and SVIDs
"$MESHWARD" ca init --trust-domain $TD --out ca >/dev/null || die "ca init"
"$MESHWARD" log keygen --name $TD/issuance --out logkey >/dev/null || die "log keygen"
: >registrations.yaml
for id in foo/client foo/server foo/reader bar/other; do
  cat >>registrations.yaml <<EOF
---
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata: {name: ${id%/*}-${id#*/}}
spec:
  kubernetes: {namespace: ${id%/*}, serviceAccount: ${id#*/}}
  maxTTL: 1h
EOF
done
netns_bg $CTRL "$MESHWARD" ca serve --config ca/ca.yaml --listen "$C_ADDR:$CA_PORT" --log issuance-log \
  --log-key logkey/log.key --db ca.db --registrations registrations.yaml --log-level warn >ca.log 2>&1
netns_wait_port $CTRL "$C_ADDR" $CA_PORT 100 || die "the CA did not start: $(tail -3 ca.log)"
mkdir -p www-ext && echo "external service" >www-ext/index.html
netns_bg $CTRL python3 -m http.server $EXT_OPEN --bind "$C_ADDR" --directory www-ext >/dev/null 2>&1
netns_bg $CTRL python3 -m http.server $EXT_CLOSED --bind "$C_ADDR" --directory www-ext >/dev/null 2>&1
netns_wait_port $CTRL "$C_ADDR" $EXT_OPEN || die "egress server $EXT_OPEN"
netns_wait_port $CTRL "$C_ADDR" $EXT_CLOSED || die "egress server $EXT_CLOSED"

# request HOST NAME NS SA: an SVID for spiffe://TD/ns/NS/sa/SA via a single-use join token,
# fetched from inside namespace HOST; NAME.pem (leaf + intermediate) and NAME.key.
request() {
  local host=$1 name=$2 ns=$3 sa=$4
  "$MESHWARD" ca token create --db ca.db --spiffe-id "spiffe://$TD/ns/$ns/sa/$sa" --ttl 10m \
    >"$name.token" 2>/dev/null || return 1
  chmod 600 "$name.token"
  netns_exec "$host" "$MESHWARD" ca request --server "https://$C_ADDR:$CA_PORT" --bundle ca/bundle.pem \
    --credential-kind join-token --token-file "$name.token" --key-out "$name.key" \
    --cert-out "$name.pem" >/dev/null 2>"$name.request.err"
}
mkdir -p client server
request $CLIENT client/svid foo client || die "client SVID: $(cat client/svid.request.err)"
request $SERVER server/svid foo server || die "server SVID: $(cat server/svid.request.err)"
request $OUT reader foo reader || die "reader SVID: $(cat reader.request.err)"
request $OUT other bar other || die "other SVID: $(cat other.request.err)"

# A second trust domain: its own CA (meshward ca init), an SVID with the same path as the client.
"$MESHWARD" ca init --trust-domain other.example --out ca2 >/dev/null || die "ca init other.example"
openssl ecparam -name prime256v1 -genkey -noout -out foreign.key 2>/dev/null
chmod 600 foreign.key
openssl req -new -key foreign.key -subj "/O=other" -out foreign.csr 2>/dev/null
"$MESHWARD" ca issue --config ca2/ca.yaml --csr foreign.csr --spiffe-id spiffe://other.example/ns/foo/sa/client \
  --out foreign.pem >/dev/null 2>foreign.err || die "other.example SVID: $(cat foreign.err)"

# An untrusted CA made by openssl: a chain whose leaf has the right trust domain and path.
openssl ecparam -name prime256v1 -genkey -noout -out rogue-ca.key 2>/dev/null
openssl req -x509 -new -key rogue-ca.key -subj "/O=rogue/CN=rogue root" -days 2 -out rogue-ca.pem \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out rogue.key 2>/dev/null
chmod 600 rogue.key
openssl req -new -key rogue.key -subj "/O=rogue" -out rogue.csr 2>/dev/null
printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://%s/ns/foo/sa/client\n' $TD >rogue.ext
openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -days 1 \
  -extfile rogue.ext -out rogue-leaf.pem 2>/dev/null
cat rogue-leaf.pem rogue-ca.pem >rogue.pem
[ -s rogue-leaf.pem ] || die "openssl rogue chain"
"$MESHWARD" svid inspect rogue.pem --bundle ca/bundle.pem --json >rogue.inspect 2>&1
"$MESHWARD" svid inspect foreign.pem --bundle ca2/bundle.pem --json >foreign.inspect 2>&1
grep -q '"spiffe_id": *"spiffe://other.example/ns/foo/sa/client"' foreign.inspect ||
  die "other.example SVID does not carry its ID: $(head -c 300 foreign.inspect)"

# ---------------------------------------------------------------- the server app
cat >app.py <<'EOF'
import http.server, socketserver, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, send_body=True):
        body = ("port=%d path=%s xfcc=%s\n" % (self.server.server_address[1], self.path,
                self.headers.get("x-forwarded-client-cert", "-"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)
    def do_GET(self): self.reply()
    def do_HEAD(self): self.reply(False)
    def do_DELETE(self): self.reply()
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n: self.rfile.read(n)
        self.reply()
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
ports = [int(p) for p in sys.argv[1:]]
for p in ports[1:]:
    threading.Thread(target=S(("127.0.0.1", p), H).serve_forever, daemon=True).start()
S(("127.0.0.1", ports[0]), H).serve_forever()
EOF
netns_bg $SERVER python3 app.py 9080 9090 9091
for p in 9080 9090 9091; do netns_wait_port $SERVER 127.0.0.1 $p || die "server app :$p"; done

# ---------------------------------------------------------------- policies
cat >server/policy.yaml <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server-ports, namespace: foo}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9091: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-allow, namespace: foo}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  # principal + method + port
  - from: [{source: {principals: ["$TD/ns/foo/sa/client"]}}]
    to: [{operation: {ports: ["9080"], methods: ["GET", "HEAD"]}}]
  # namespace + path
  - from: [{source: {namespaces: ["foo"]}}]
    to: [{operation: {ports: ["9080"], paths: ["/team/*"]}}]
  # port: only the reader, only on 9090
  - from: [{source: {principals: ["$TD/ns/foo/sa/reader"]}}]
    to: [{operation: {ports: ["9090"]}}]
  # header: any authenticated peer with x-team: blue
  - from: [{source: {principals: ["*"]}}]
    to: [{operation: {ports: ["9080"], paths: ["/hdr/*"]}}]
    when: [{key: "request.headers[x-team]", values: ["blue"]}]
  # the PERMISSIVE port: anyone
  - to: [{operation: {ports: ["9091"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["9080", "9090", "9091"], paths: ["/admin", "/admin/*"]}}]
EOF
cp server/policy.yaml server/policy.orig.yaml
cat >server/policy.reload.yaml <<EOF
$(cat server/policy.orig.yaml)
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-reload, namespace: foo}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["9080"], paths: ["/reload"]}}]
EOF

# ---------------------------------------------------------------- sidecars
cp ca/bundle.pem client/bundle.pem
cp ca/bundle.pem server/bundle.pem
cat >server/sidecar.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: server}
spec:
  workload: {namespace: foo, serviceAccount: server, trustDomain: $TD, labels: {app: server}}
  identity:
    mode: static
    certificate: svid.pem
    key: svid.key
    bundles: [{trustDomain: $TD, file: bundle.pem}]
  inbound:
    port: 15006
    ports:
    - {port: 9080, protocol: http}
    - {port: 9090, protocol: http}
    - {port: 9091, protocol: http}
  outbound: {port: 15001}
  policies: [policy.yaml]
  admin: {port: $ADMIN}
  accessLog: access.log
EOF
cat >client/sidecar.yaml <<EOF
apiVersion: meshward.io/v1alpha1
kind: SidecarConfig
metadata: {name: client}
spec:
  workload: {namespace: foo, serviceAccount: client, trustDomain: $TD, labels: {app: client}}
  identity:
    mode: static
    certificate: svid.pem
    key: svid.key
    bundles: [{trustDomain: $TD, file: bundle.pem}]
  inbound:
    port: 15006
    ports: [{port: 9080, protocol: http}]
  outbound:
    port: 15001
    services:
    - {name: server.foo, port: 9080, endpoints: ["$S_ADDR:9080"], spiffeId: "spiffe://$TD/ns/foo/sa/server"}
    - {name: server.foo, port: 9090, endpoints: ["$S_ADDR:9090"], spiffeId: "spiffe://$TD/ns/foo/sa/server"}
    - {name: server.foo, port: 9091, endpoints: ["$S_ADDR:9091"], spiffeId: "spiffe://$TD/ns/foo/sa/server"}
  egress:
  - {cidr: $C_ADDR/32, ports: [$EXT_OPEN]}
  admin: {port: $ADMIN}
  accessLog: access.log
EOF
chown -R $PROXY_UID:$PROXY_UID client server
if ! "$MESHWARD" sidecar check-config server/sidecar.yaml >server/check.out 2>&1; then
  die "check-config server: $(cat server/check.out)"
fi
has "check-config: a port is PERMISSIVE" 'PERMISSIVE' server/check.out

netns_bg $SERVER "${PROXY_AS[@]}" "$MESHWARD" sidecar run --config server/sidecar.yaml --log-level info \
  >server/sidecar.log 2>&1
SPID=$NETNS_LAST_PID
netns_bg $CLIENT "${PROXY_AS[@]}" "$MESHWARD" sidecar run --config client/sidecar.yaml --log-level info \
  >client/sidecar.log 2>&1
CPID=$NETNS_LAST_PID
netns_wait_port $SERVER 127.0.0.1 $ADMIN 100 || die "server sidecar: $(tail -5 server/sidecar.log)"
netns_wait_port $CLIENT 127.0.0.1 $ADMIN 100 || die "client sidecar: $(tail -5 client/sidecar.log)"
for i in $CLIENT $SERVER; do
  netns_exec "$i" "$MESHWARD" sidecar iptables --inbound-port 15006 --outbound-port 15001 \
    --proxy-uid $PROXY_UID --exclude-inbound-ports $ADMIN >/dev/null || die "iptables in ns $i"
done

# ---------------------------------------------------------------- clients
# mesh URL [CURL ARGS]: status of curl run by the client app (through both sidecars).
mesh() {
  local url=$1
  shift
  netns_exec $CLIENT curl -s -o mesh.body -D mesh.hdr -m 5 --path-as-is -w '%{http_code}' "$@" "$url"
}
# direct WHO URL [CURL ARGS]: status of curl in the outsider namespace presenting WHO's SVID
# (WHO=none: no client certificate; plain http:// URLs need no certificate).
direct() {
  local who=$1 url=$2
  shift 2
  local tls=()
  case "$url" in https:*) tls=(-k) && [ "$who" != none ] && tls+=(--cert "$who.pem" --key "$who.key") ;; esac
  netns_exec $OUT curl -s -o direct.body -D direct.hdr -m 5 --path-as-is -w '%{http_code}' "${tls[@]}" "$@" "$url"
}
denied_by() { tr -d '\r' <"$1" | awk -F': ' 'tolower($1) == "x-meshward-denied-by" {print $2}'; }
metrics() { netns_exec "$1" curl -s -m 5 "http://127.0.0.1:$ADMIN/metrics"; }
# msum FILE NAME [label=value ...]: the sum of the series of NAME whose labels match.
msum() {
  python3 - "$@" <<'EOF'
import re, sys
f, name, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
total = 0.0
for line in open(f):
    m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line.strip())
    if not m or m.group(1) != name:
        continue
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        total += float(m.group(3))
print(int(total) if total == int(total) else total)
EOF
}
# delta NAME BEFORE AFTER METRIC [labels]: AFTER - BEFORE for one selection.
delta() {
  local b a
  b=$(msum "$1" "${@:3}")
  a=$(msum "$2" "${@:3}")
  echo $((a - b))
}

S=https://$S_ADDR
P=http://$S_ADDR
# Wait (bounded) until the first request through the mesh works.
for _ in $(seq 1 50); do
  [ "$(mesh "$P:9080/hello")" = 200 ] && break
  sleep 0.2
done

echo "--- PeerAuthentication"
want "STRICT 9080: mTLS with a mesh SVID (foo/reader) is served" 200 "$(direct reader "$S:9080/hdr/x" -H 'x-team: blue')"
want "STRICT 9080: plaintext is refused" 000 "$(direct none "$P:9080/hdr/x" -H 'x-team: blue')"
want "STRICT 9090: plaintext is refused" 000 "$(direct none "$P:9090/x")"
want "STRICT 9080: TLS without a client certificate is refused" 000 "$(direct none "$S:9080/hdr/x" -H 'x-team: blue')"
want "STRICT 9080: SVID of trust domain other.example (no bundle) is refused" 000 \
  "$(direct foreign "$S:9080/hdr/x" -H 'x-team: blue')"
want "STRICT 9080: spiffe://$TD chain from an untrusted openssl CA is refused" 000 \
  "$(direct rogue "$S:9080/hdr/x" -H 'x-team: blue')"
# The same with openssl s_client (sending the whole chain): no HTTP response comes back.
sclient() { # WHO PORT
  printf 'GET /hdr/x HTTP/1.1\r\nHost: server\r\nx-team: blue\r\nConnection: close\r\n\r\n' |
    netns_exec $OUT timeout 8 openssl s_client -quiet -connect "$S_ADDR:$2" -cert "$1.pem" -cert_chain "$1.pem" -key "$1.key" 2>/dev/null |
    head -1 | tr -d '\r'
}
want "openssl s_client with foo/reader gets a response" "HTTP/1.1 200 OK" "$(sclient reader 9080)"
want "openssl s_client with the other.example SVID gets no response" "" "$(sclient foreign 9080)"
want "openssl s_client with the untrusted-CA chain gets no response" "" "$(sclient rogue 9080)"
want "PERMISSIVE 9091 (port-level): plaintext accepted" 200 "$(direct none "$P:9091/p")"
has "PERMISSIVE plaintext reaches the app without an XFCC" 'xfcc=-' direct.body
want "PERMISSIVE 9091: mTLS (foo/reader) accepted" 200 "$(direct reader "$S:9091/p")"
has "PERMISSIVE mTLS: the app sees the peer's ID in XFCC" "URI=spiffe://$TD/ns/foo/sa/reader" direct.body
want "PERMISSIVE 9091: mTLS through the mesh (client sidecar)" 200 "$(mesh "$P:9091/p")"

echo "--- authorization"
want "principal: foo/client GET :9080/hello (mesh) allowed" 200 "$(mesh "$P:9080/hello")"
has "the app sees foo/client in XFCC" "URI=spiffe://$TD/ns/foo/sa/client" mesh.body
want "principal: bar/other GET :9080/hello denied" 403 "$(direct other "$S:9080/hello")"
want "  ... x-meshward-denied-by" default "$(denied_by direct.hdr)"
want "principal: foo/reader GET :9080/hello denied (rule names foo/client only)" 403 "$(direct reader "$S:9080/hello")"
want "namespace: foo/reader GET :9080/team/a allowed (source.namespaces foo)" 200 "$(direct reader "$S:9080/team/a")"
want "namespace: bar/other GET :9080/team/a denied" 403 "$(direct other "$S:9080/team/a")"
want "method: foo/client HEAD :9080/hello allowed" 200 "$(mesh "$P:9080/hello" -I)"
want "method: foo/client DELETE :9080/hello denied" 403 "$(mesh "$P:9080/hello" -X DELETE)"
want "method: foo/client POST :9080/hello denied" 403 "$(mesh "$P:9080/hello" --data x=1)"
want "path: foo/reader GET :9080/team/a allowed, /teams denied" "200 403" \
  "$(direct reader "$S:9080/team/a") $(direct reader "$S:9080/teams")"
want "path: foo/client GET :9080/admin/ denied" 403 "$(mesh "$P:9080/admin/")"
want "path: foo/client GET :9080/hello/../admin/ (bypass spelling) denied" 403 "$(mesh "$P:9080/hello/../admin/")"
want "path: foo/client GET :9080/%61dmin (bypass spelling) denied" 403 "$(mesh "$P:9080/%61dmin")"
want "header: bar/other /hdr/x with x-team: blue allowed" 200 "$(direct other "$S:9080/hdr/x" -H 'x-team: blue')"
want "header: bar/other /hdr/x without x-team denied" 403 "$(direct other "$S:9080/hdr/x")"
want "header: bar/other /hdr/x with x-team: red denied" 403 "$(direct other "$S:9080/hdr/x" -H 'x-team: red')"
want "port: foo/reader GET :9090/x allowed" 200 "$(direct reader "$S:9090/x")"
has "port: the :9090 request reached the app's 9090" 'port=9090 ' direct.body
want "port: foo/reader GET :9080/x denied" 403 "$(direct reader "$S:9080/x")"
want "port: foo/client GET :9090/hello (mesh) denied" 403 "$(mesh "$P:9090/hello")"
want "port: foo/client GET :9080/hello (mesh) allowed" 200 "$(mesh "$P:9080/hello")"
has "port: the :9080 request reached the app's 9080" 'port=9080 ' mesh.body
want "DENY beats ALLOW: foo/client GET :9080/admin (ALLOW rule 1 and DENY match)" 403 "$(mesh "$P:9080/admin")"
want "  ... x-meshward-denied-by names the DENY policy" foo/deny-admin "$(denied_by mesh.hdr)"
want "DENY beats ALLOW: foo/reader GET :9090/admin/x" 403 "$(direct reader "$S:9090/admin/x")"
want "  ... x-meshward-denied-by names the DENY policy" foo/deny-admin "$(denied_by direct.hdr)"

echo "--- metrics count what happened"
metrics $SERVER >m0.txt
metrics $CLIENT >c0.txt
for _ in 1 2 3; do mesh "$P:9080/count" >/dev/null; done
for _ in 1 2; do mesh "$P:9080/admin/count" >/dev/null; done
direct other "$S:9080/count" >/dev/null
direct none "$P:9091/count" >/dev/null
egress_ok=$(netns_exec $CLIENT curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$C_ADDR:$EXT_OPEN/")
egress_no=$(netns_exec $CLIENT curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$C_ADDR:$EXT_CLOSED/")
sleep 0.3
metrics $SERVER >m1.txt
metrics $CLIENT >c1.txt
want "egress: declared $C_ADDR:$EXT_OPEN allowed" 200 "$egress_ok"
want "egress: undeclared $C_ADDR:$EXT_CLOSED refused (transparent: closed)" 000 "$egress_no"
CL="spiffe://$TD/ns/foo/sa/client" OT="spiffe://$TD/ns/bar/sa/other"
want "istio_requests_total{response_code=200,source_principal=foo/client} +3" 3 \
  "$(delta m0.txt m1.txt istio_requests_total response_code=200 source_principal=$CL)"
want "istio_requests_total{response_code=403,source_principal=foo/client} +2" 2 \
  "$(delta m0.txt m1.txt istio_requests_total response_code=403 source_principal=$CL)"
want "istio_requests_total{response_code=403,source_principal=bar/other} +1" 1 \
  "$(delta m0.txt m1.txt istio_requests_total response_code=403 source_principal=$OT)"
want "istio_requests_total{response_code=200,source_principal=unknown,connection_security_policy=none} +1" 1 \
  "$(delta m0.txt m1.txt istio_requests_total response_code=200 source_principal=unknown connection_security_policy=none)"
want "istio_requests_total{connection_security_policy=mutual_tls} +6" 6 \
  "$(delta m0.txt m1.txt istio_requests_total connection_security_policy=mutual_tls)"
want "meshward_authz_denied_total{policy=foo/deny-admin} +2" 2 \
  "$(delta m0.txt m1.txt meshward_authz_denied_total policy=foo/deny-admin)"
want "meshward_authz_denied_total{policy=default} +1" 1 \
  "$(delta m0.txt m1.txt meshward_authz_denied_total policy=default)"
want "meshward_egress_denied_total{host=$C_ADDR,port=$EXT_CLOSED} +1 (client sidecar)" 1 \
  "$(delta c0.txt c1.txt meshward_egress_denied_total "host=$C_ADDR" port=$EXT_CLOSED)"
want "meshward_egress_denied_total for the declared port stays 0" 0 \
  "$(msum c1.txt meshward_egress_denied_total port=$EXT_OPEN)"
want "allowed egress counted: istio_tcp_connections_opened_total{reporter=source,connection_security_policy=none} +1" 1 \
  "$(delta c0.txt c1.txt istio_tcp_connections_opened_total reporter=source connection_security_policy=none)"
want "mesh traffic counted at the client: istio_tcp_connections_opened_total{reporter=source,mutual_tls} +5" 5 \
  "$(delta c0.txt c1.txt istio_tcp_connections_opened_total reporter=source connection_security_policy=mutual_tls)"
has "server access log: a deny line naming foo/deny-admin" '"decision":"deny".*"policy":"foo/deny-admin"' server/access.log
has "client access log: the egress refusal" '"decision":"deny".*"policy":"egress"' client/access.log

echo "--- policy reload on an open keep-alive connection"
cat >ka.py <<'EOF'
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
first_sock = None
for line in sys.stdin:
    step = line.strip()
    if not step:
        break
    try:
        conn.request("GET", "/reload", headers={"Host": "server.foo"})
        r = conn.getresponse()
        r.read()
        if first_sock is None:
            first_sock = conn.sock
        same = conn.sock is not None and conn.sock is first_sock
        print("%s %d %s %s" % (step, r.status, r.getheader("x-meshward-denied-by", "-"),
                               "same" if same else "new-or-closed"), flush=True)
    except Exception as e:
        print("%s error %s" % (step, type(e).__name__), flush=True)
EOF
reloads() { grep -c 'reloaded:' server/sidecar.log; }
# reload_to FILE: install FILE as the policy, SIGHUP the server sidecar by PID, wait for it.
reload_to() {
  local n k
  n=$(reloads)
  cp "$1" server/policy.yaml
  chown $PROXY_UID:$PROXY_UID server/policy.yaml
  kill -HUP "$SPID"
  for ((k = 0; k < 50; k++)); do
    [ "$(reloads)" -gt "$n" ] && return 0
    sleep 0.1
  done
  return 1
}
coproc KA { exec ip netns exec "$(netns_name $CLIENT)" python3 ka.py "$S_ADDR" 9080; }
# shellcheck disable=SC2153 # KA_PID is set by coproc
KAPID=$KA_PID
KEEP_PIDS+=("$KAPID")
ka() { # STEP: one request on the open connection; prints the result line
  local line=""
  echo "$1" >&"${KA[1]}"
  read -r -t 10 line <&"${KA[0]}"
  echo "$line"
}
want "keep-alive: before the reload" "before 200 - same" "$(ka before)"
if reload_to server/policy.reload.yaml; then ok "SIGHUP $SPID: reloaded (deny /reload)"; else bad "SIGHUP: no 'reloaded:' in the log"; fi
want "keep-alive: after reload to deny, same connection" "denied 403 foo/deny-reload same" "$(ka denied)"
if reload_to server/policy.orig.yaml; then ok "SIGHUP $SPID: reloaded (back)"; else bad "SIGHUP: no 'reloaded:' in the log"; fi
want "keep-alive: after reload back, same connection" "after 200 - same" "$(ka after)"
# The server side saw one connection too: the three /reload requests came from one peer address:port.
peers=$(grep '"path":"/reload"' server/access.log | python3 -c '
import json, sys
print(" ".join(sorted(set(json.loads(l)["downstream_remote_address"] for l in sys.stdin))) or "-")')
n_reload=$(grep -c '"path":"/reload"' server/access.log)
if [ "$n_reload" = 3 ] && [ "${peers// /}" = "$peers" ] && [ "$peers" != - ]; then
  ok "server access log: 3 /reload requests, all from $peers (one connection)"
else
  bad "server access log: $n_reload /reload requests from '$peers' (want 3 from one address:port)"
fi
ka_in=${KA[1]}
eval "exec $ka_in>&-" # EOF ends the python client
for _ in $(seq 1 30); do kill -0 "$KAPID" 2>/dev/null || break; sleep 0.1; done
kill "$KAPID" 2>/dev/null
wait "$KAPID" 2>/dev/null

alive "server sidecar still running" "$SPID"
alive "client sidecar still running" "$CPID"
for i in $CLIENT $SERVER; do
  netns_exec "$i" "$MESHWARD" sidecar iptables --inbound-port 15006 --outbound-port 15001 \
    --proxy-uid $PROXY_UID --cleanup >/dev/null 2>&1
done
for p in $SPID $CPID; do
  kill -TERM "$p" 2>/dev/null
done
rc_s=0 rc_c=0
wait "$SPID" || rc_s=$?
wait "$CPID" || rc_c=$?
want "sidecars stop on SIGTERM with exit 0" "0 0" "$rc_s $rc_c"
netns_kill "$SPID"
netns_kill "$CPID"

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  echo "--- server sidecar log (tail)"
  tail -25 server/sidecar.log
  echo "--- client sidecar log (tail)"
  tail -15 client/sidecar.log
fi
[ "$failed" -eq 0 ]
