#!/usr/bin/env bash
# Policy evaluation benchmark (issue 4). Not part of the test run.
#
#   bench/run_policy.sh [BUILD_DIR] [SECONDS_PER_ROW]
#
# BUILD_DIR (default build/) must hold libmeshward_core.a from a Release build, e.g.
#   cmake -S . -B build-policy-rel -DCMAKE_BUILD_TYPE=Release && \
#   cmake --build build-policy-rel -j2 --target meshward_core
# The benchmark is compiled here with -O2 against it. 17 rows of SECONDS_PER_ROW (default 1.5)
# plus loading 10,000 policies: under two minutes on a small machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
secs=${2:-1.5}
lib="$build/libmeshward_core.a"
if [ ! -f "$lib" ]; then
    echo "run_policy.sh: $lib not found: build meshward_core first (see the header)" >&2
    exit 2
fi
if grep -q 'fsanitize' "$build/CMakeCache.txt" 2>/dev/null &&
    grep -q '^MW_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "run_policy.sh: warning: $build is a sanitizer build; figures will be slow" >&2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-cc}
"$cc" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -I"$root/include" -I"$root/src" \
    "$here/bench_policy.c" "$lib" -lssl -lcrypto -ljansson -lyaml -lm -o "$out/bench_policy"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm)"
echo "# cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc)," \
    "mem $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "# cc: $("$cc" --version | head -1); lib: $lib"
"$out/bench_policy" "$secs"
