#!/usr/bin/env bash
# `make demo` stays true: run the mesh demo end to end in both of its modes
# (network namespaces with iptables interception, as root; and loopback ports,
# as anyone) and check every outcome it reports.
set -uo pipefail
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
root=${MW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
passed=0
failed=0
run_mode() { # run_mode LABEL ARGS...
  local label=$1
  shift
  timeout 300 bash "$root/scripts/demo.sh" "$MESHWARD" --check "$@" </dev/null >"$out" 2>&1
  local rc=$?
  if [ $rc -eq 0 ] && grep -q "demo: 13 passed, 0 failed" "$out"; then
    passed=$((passed + 1))
    echo "ok: demo ($label): 13 outcomes as expected"
  else
    failed=$((failed + 1))
    echo "FAIL: demo ($label) exited $rc:"
    cat "$out"
  fi
}
if [ "$(id -u)" -eq 0 ]; then
  run_mode "network namespaces"
else
  echo "FAIL: the namespace demo needs root (CI runs as root)"
  failed=$((failed + 1))
fi
run_mode "loopback" --loopback
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
