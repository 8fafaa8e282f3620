#!/usr/bin/env bash
# Interception on real traffic between network namespaces (client, server,
# other), with probe listeners standing in for the sidecar:
#   (a) client -> server:8080 lands on the server's inbound port, and
#       SO_ORIGINAL_DST recovers server:8080;
#   (b) outbound connections from the server namespace by an application uid
#       land on the outbound port with the original destination, while the
#       proxy uid's own connections go out directly;
#   (c) excluded inbound ports, outbound ports and CIDRs bypass the sidecar;
#   plus loopback, the proxy calling its own pod address (Istio's inbound
#   case), and cleanup restoring direct traffic.
# The sidecar binary replaces the inbound/outbound probes in later tests;
# the steps are functions so that they can be reused. Needs root.
set -uo pipefail
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary in the build directory}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib_netns.sh
. "$here/lib_netns.sh"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

CLIENT=0
SERVER=1
OTHER=2
PROXY_UID=1337
APP_UID=12345
INBOUND_PORT=15006
OUTBOUND_PORT=15001

# expect NAME WANT NS IP PORT [UID]: the probe's answer must be exactly WANT.
expect() {
  local name=$1 want=$2
  shift 2
  local got
  got=$(netns_probe_connect "$@")
  if [ "$got" = "$want" ]; then ok "$name"; else bad "$name: got '$got', want '$want'"; fi
}

# direct NAME LISTENER NS IP PORT [UID]: the connection reached LISTENER itself, not a
# redirect target. Once a namespace has nat rules, conntrack tracks every
# connection and SO_ORIGINAL_DST reports the real destination even when nothing
# was rewritten, so "origdst=IP:PORT" (unchanged) and "origdst=none" both mean direct.
direct() {
  local name=$1 listener=$2
  shift 2
  local got
  got=$(netns_probe_connect "$@")
  if [ "$got" = "$listener origdst=none" ] || [ "$got" = "$listener origdst=$2:$3" ]; then
    ok "$name"
  else
    bad "$name: got '$got', want '$listener origdst=none|$2:$3'"
  fi
}

# Listeners: the sidecar's two ports (probes for now), the application, and peers.
start_listeners() {
  netns_probe_serve $SERVER 0.0.0.0 $INBOUND_PORT inbound &&
    netns_probe_serve $SERVER 0.0.0.0 $OUTBOUND_PORT outbound &&
    netns_probe_serve $SERVER 0.0.0.0 8080 app8080 &&
    netns_probe_serve $SERVER 0.0.0.0 8081 app8081 &&
    netns_probe_serve $SERVER 127.0.0.1 7070 loop &&
    netns_probe_serve $CLIENT 0.0.0.0 9090 direct9090 &&
    netns_probe_serve $CLIENT 0.0.0.0 9091 direct9091 &&
    netns_probe_serve $OTHER 0.0.0.0 9090 other9090
}

install_rules() {
  "$MESHWARD" sidecar iptables --inbound-port $INBOUND_PORT --outbound-port $OUTBOUND_PORT \
    --proxy-uid $PROXY_UID --exclude-inbound-ports 8081 --exclude-outbound-ports 9091 \
    --exclude-outbound-cidrs "$(netns_addr $OTHER)/32" --netns "$(netns_name $SERVER)"
}

netns_require
command -v iptables-restore >/dev/null || { echo "FAIL: iptables is not installed" >&2; exit 1; }
[ -n "$(netns_python)" ] || { echo "FAIL: python3 is not installed" >&2; exit 1; }
work=$(mktemp -d)
netns_setup snet 3 || { bad "namespace setup"; finish; }
trap 'netns_cleanup; rm -rf "$work"' EXIT
netns_probe_init "$work"
start_listeners || { bad "listeners did not start"; finish; }

S=$(netns_addr $SERVER)
C=$(netns_addr $CLIENT)
O=$(netns_addr $OTHER)

# Without rules every connection is direct: the checks below can fail.
direct "before: client -> server:8080 is direct" app8080 $CLIENT "$S" 8080
direct "before: app uid -> client:9090 is direct" direct9090 $SERVER "$C" 9090 $APP_UID

if install_rules; then ok "rules installed"; else bad "rules installed"; fi

# (a) inbound interception
expect "(a) client -> server:8080 lands on the inbound port, origdst server:8080" \
  "inbound origdst=$S:8080" $CLIENT "$S" 8080
expect "(a) client -> server:12345 (nothing listens) lands on the inbound port" \
  "inbound origdst=$S:12345" $CLIENT "$S" 12345
# (b) outbound interception, proxy uid exempt
expect "(b) app uid -> client:9090 lands on the outbound port, origdst client:9090" \
  "outbound origdst=$C:9090" $SERVER "$C" 9090 $APP_UID
expect "(b) root (not the proxy uid) is intercepted too" \
  "outbound origdst=$C:9090" $SERVER "$C" 9090 0
direct "(b) proxy uid -> client:9090 goes out directly" \
  direct9090 $SERVER "$C" 9090 $PROXY_UID
# (c) exclusions
direct "(c) excluded inbound port 8081 reaches the application" \
  app8081 $CLIENT "$S" 8081
direct "(c) excluded outbound port 9091 goes out directly" \
  direct9091 $SERVER "$C" 9091 $APP_UID
direct "(c) excluded outbound CIDR goes out directly" \
  other9090 $SERVER "$O" 9090 $APP_UID
# loopback and the pod's own address
direct "loopback 127.0.0.1:7070 is not intercepted" loop $SERVER 127.0.0.1 7070 $APP_UID
direct "app uid -> own address over lo is not intercepted" app8080 $SERVER "$S" 8080 $APP_UID
expect "proxy uid -> own address goes through the inbound port (Istio's case)" \
  "inbound origdst=$S:8080" $SERVER "$S" 8080 $PROXY_UID
# The client namespace has no rules: its outbound traffic is untouched.
direct "client namespace is not affected" direct9091 $CLIENT "$C" 9091 $APP_UID

if install_rules; then ok "second install"; else bad "second install"; fi
expect "after a second install, interception unchanged" "inbound origdst=$S:8080" $CLIENT "$S" 8080

if "$MESHWARD" sidecar iptables --cleanup --netns "$(netns_name $SERVER)"; then
  ok "cleanup"
else
  bad "cleanup"
fi
direct "after cleanup: client -> server:8080 is direct" app8080 $CLIENT "$S" 8080
direct "after cleanup: app uid -> client:9090 is direct" direct9090 $SERVER "$C" 9090 $APP_UID
finish
