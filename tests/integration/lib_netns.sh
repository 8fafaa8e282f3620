# shellcheck shell=bash
# Test hosts in network namespaces, for integration tests that need real
# interception (iptables) or several addressable workloads. Source it, then:
#
#   netns_require                  fail (exit 1, with the reason) unless root with `ip netns`
#   netns_setup TEST N             N namespaces mw-TEST-PID-0..N-1, each with lo up and
#                                  eth0 = 10.248.R.(i+1)/24 on a bridge in a hub namespace
#                                  mw-TEST-PID-hub; a trap removes all of it on exit
#   netns_name I                   name of namespace I
#   netns_count                    N
#   netns_addr I                   IPv4 address of namespace I
#   netns_exec I CMD...            run CMD in namespace I (foreground)
#   netns_bg I CMD...              run CMD in namespace I in the background; its PID is in
#                                  NETNS_LAST_PID (killed by netns_kill or at exit)
#   netns_kill PID                 kill one background command started here
#   netns_wait_port I ADDR PORT    wait (bounded) until something listens on ADDR:PORT in I
#
# Addresses: 10.248.R.0/24 with R taken from the PID. The links exist only
# inside namespaces this library creates (both ends of every veth are moved
# out of the root namespace at creation), so nothing is ever routed outside,
# and concurrent runs cannot collide: each has its own hub and bridge.
# Everything is removed by exact name, never by pattern.

NETNS_PREFIX=""
NETNS_RUN=""
NETNS_COUNT=0
NETNS_PIDS=()
NETNS_CREATED=()
NETNS_LAST_PID=""

netns_require() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL: this test needs root (network namespaces and iptables); run it as root" >&2
    exit 1
  fi
  if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
    echo "FAIL: 'ip netns' is not available (install iproute2)" >&2
    exit 1
  fi
}

netns_name() { echo "${NETNS_PREFIX}-$1"; }
netns_count() { echo "$NETNS_COUNT"; }
netns_addr() { echo "10.248.${NETNS_RUN}.$(($1 + 1))"; }

netns_cleanup() {
  local p ns
  for p in "${NETNS_PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${NETNS_PIDS[@]}"; do
    wait "$p" 2>/dev/null
  done
  NETNS_PIDS=()
  # Deleting a namespace destroys the veth ends and the bridge inside it.
  for ns in "${NETNS_CREATED[@]}"; do
    ip netns delete "$ns" 2>/dev/null
  done
  NETNS_CREATED=()
}

# netns_setup TEST N
netns_setup() {
  local test=$1 n=$2 i ns hub
  NETNS_PREFIX="mw-${test}-$$"
  NETNS_RUN=$(($$ % 250 + 1))
  NETNS_COUNT=$n
  trap netns_cleanup EXIT
  hub="${NETNS_PREFIX}-hub"
  ip netns add "$hub" || return 1
  NETNS_CREATED+=("$hub")
  ip -n "$hub" link set lo up || return 1
  ip -n "$hub" link add br0 type bridge || return 1
  ip -n "$hub" link set br0 up || return 1
  for ((i = 0; i < n; i++)); do
    ns=$(netns_name "$i")
    ip netns add "$ns" || return 1
    NETNS_CREATED+=("$ns")
    ip -n "$ns" link set lo up || return 1
    # Created inside the hub namespace, peer created directly in the workload namespace.
    ip -n "$hub" link add "p$i" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$hub" link set "p$i" master br0 || return 1
    ip -n "$hub" link set "p$i" up || return 1
    ip -n "$ns" addr add "$(netns_addr "$i")/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up || return 1
  done
}

netns_exec() {
  local i=$1
  shift
  ip netns exec "$(netns_name "$i")" "$@"
}

netns_bg() {
  local i=$1
  shift
  # `ip netns exec` execs the command, so $! is the command's own PID.
  ip netns exec "$(netns_name "$i")" "$@" &
  NETNS_LAST_PID=$!
  NETNS_PIDS+=("$NETNS_LAST_PID")
}

netns_kill() {
  local p=$1 q keep=()
  kill "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  for q in "${NETNS_PIDS[@]}"; do
    [ "$q" = "$p" ] || keep+=("$q")
  done
  NETNS_PIDS=("${keep[@]}")
}

# netns_wait_port I ADDR PORT [TRIES]: poll `ss` for a listener, 0.1 s apart.
netns_wait_port() {
  local i=$1 addr=$2 port=$3 tries=${4:-50} k
  for ((k = 0; k < tries; k++)); do
    if netns_exec "$i" ss -Htln "sport = :$port" 2>/dev/null | grep -q "$addr:$port\|\*:$port\|0.0.0.0:$port"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- TCP probes
#
# A small python3 program for interception tests:
#   serve ADDR PORT NAME   accept forever; answer each connection with one line
#                          "NAME origdst=IP:PORT" (SO_ORIGINAL_DST, or "none" when the
#                          connection was not NATed) and close
#   connect IP PORT [UID]  (optionally drop to UID/GID first) connect with a 3 s timeout
#                          and print the line received, or "ERROR <reason>"
# netns_probe_init DIR writes it to DIR/probe.py and sets NETNS_PROBE.

NETNS_PROBE=""

netns_probe_init() {
  NETNS_PROBE="$1/probe.py"
  cat >"$NETNS_PROBE" <<'PY'
import os, socket, struct, sys

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h

def serve(addr, port, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            try:
                raw = c.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
                od = "%s:%d" % (socket.inet_ntoa(raw[4:8]), struct.unpack("!H", raw[2:4])[0])
            except OSError:
                od = "none"
            c.sendall(("%s origdst=%s\n" % (name, od)).encode())
        except OSError:
            pass
        finally:
            c.close()

def connect(ip, port, uid):
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    try:
        s = socket.create_connection((ip, port), timeout=3)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        print(data.decode(errors="replace").strip())
    except OSError as e:
        print("ERROR %s" % e)

if sys.argv[1] == "serve":
    serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
else:
    connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
PY
}

netns_python() {
  if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi
}

# netns_probe_serve I ADDR PORT NAME: background listener, waits until it listens.
netns_probe_serve() {
  local i=$1 addr=$2 port=$3 name=$4
  netns_bg "$i" "$(netns_python)" "$NETNS_PROBE" serve "$addr" "$port" "$name"
  netns_wait_port "$i" "$addr" "$port"
}

# netns_probe_connect I IP PORT [UID]: prints the listener's line.
netns_probe_connect() {
  local i=$1
  shift
  timeout 10 ip netns exec "$(netns_name "$i")" "$(netns_python)" "$NETNS_PROBE" connect "$@"
}
