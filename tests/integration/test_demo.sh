#!/usr/bin/env bash
# `make demo` stays true: run the mesh demo end to end (CA, three workloads in
# network namespaces with sidecars and interception) and check every outcome
# it reports. Needs root, as the demo does; CI runs as root.
set -uo pipefail
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
root=${MW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ "$(id -u)" -ne 0 ]; then
  echo "test_demo: needs root (network namespaces, iptables); CI runs as root"
  echo "0 passed, 1 failed"
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 300 bash "$root/scripts/demo.sh" "$MESHWARD" --check </dev/null >"$out" 2>&1
rc=$?
cat "$out"
if [ $rc -ne 0 ]; then
  echo "test_demo: the demo exited $rc"
  echo "0 passed, 1 failed"
  exit 1
fi
grep -q "demo: 12 passed, 0 failed" "$out" || {
  echo "test_demo: the demo did not report 12 expected outcomes"
  echo "0 passed, 1 failed"
  exit 1
}
echo "1 passed, 0 failed"
