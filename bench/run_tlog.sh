#!/usr/bin/env bash
# Issuance-log benchmark: durable append rates against the fsync floor, proof rates.
#   bench/run_tlog.sh [BUILD_DIR] [SCRATCH_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
scratch=${2:-/tmp}
[ -f "$build/libmeshward_core.a" ] || { echo "run_tlog: build first (make build)"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -D_GNU_SOURCE -I"$root/include" -I"$root/src" "$root/bench/bench_tlog.c" \
  "$build/libmeshward_core.a" -lssl -lcrypto -ljansson -lyaml -lsqlite3 -lev -ldl -o "$out/bench_tlog"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB; disk of $scratch: $(df -h "$scratch" | awk 'NR==2{print $1}')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
"$out/bench_tlog" "$scratch"
rm -rf "$scratch"/mw-bench-tlog.*
