#!/usr/bin/env bash
# Sigstore verifier benchmark (issue 5). Not part of the test run.
#
#   bench/run_verify.sh [BUILD_DIR] [SECONDS_PER_ROW] [ROUNDS]
#
# BUILD_DIR (default build/) must hold libmeshward_core.a from a Release build, e.g.
#   cmake -S . -B build-vbench -DCMAKE_BUILD_TYPE=Release && \
#   cmake --build build-vbench -j2 --target meshward_core
# The peer, @sigstore/verify (pinned below), is installed with npm into a temporary folder
# that is removed on exit; nothing is installed into the repository. Both verify the same
# sigstore-conformance bundles (read from ../shared/testdata at run time) with the same
# trusted roots, offline. Each round runs meshward then sigstore-js; the table reports the
# median over ROUNDS (default 3) of each round's median and of each round's p99; the
# machine-readable lines add the worst round's p99.
# With the defaults (1.5 s per row, 5 kinds, 3 rounds) it takes about a minute and a half.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
secs=${2:-1.5}
rounds=${3:-3}
data=${MW_CONFORMANCE_DIR:-$root/../shared/testdata/sigstore-conformance}
sigstore_verify_version=3.1.1 # the last release whose engines accept Node 20
lib="$build/libmeshward_core.a"
if [ ! -f "$lib" ]; then
    echo "run_verify.sh: $lib not found: build meshward_core first (see the header)" >&2
    exit 2
fi
if grep -q '^MW_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "run_verify.sh: warning: $build is a sanitizer build; figures will be slow" >&2
fi
[ -f "$data/cases.json" ] || { echo "run_verify.sh: no $data/cases.json" >&2; exit 2; }
command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "run_verify.sh: node and npm are needed for the peer" >&2; exit 2; }

# Bundle kinds: a sigstore-conformance case that verifies, and the name of its row.
cases=(
    happy-path-v0.3=keyless_rekor1_v03       # production: Fulcio cert, hashedrekord 0.0.1 + SET
    happy-path-v0.1=keyless_rekor1_v01_chain # production: v0.1, x509CertificateChain
    happy-path-intoto-in-dsse-v3=dsse_intoto # production: DSSE in-toto, dsse 0.0.1 + SET
    managed-key-happy-path=keyed_tsa         # production: publicKey, hashedrekord 0.0.1 + RFC 3161
    rekor2-happy-path=rekor2_tsa             # staging root: hashedrekord 0.0.2, RFC 3161 timestamp
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
"$cc" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -I"$root/include" -I"$root/src" \
    "$here/bench_verify.c" "$lib" -lssl -lcrypto -ljansson -lyaml -lsqlite3 -lev -ldl -lm \
    -o "$tmp/bench_verify"
npm install --prefix "$tmp/js" --no-audit --no-fund --no-package-lock --loglevel=error \
    "@sigstore/verify@$sigstore_verify_version" >"$tmp/npm.log" 2>&1 ||
    { cat "$tmp/npm.log" >&2; exit 1; }
jsver() { node -p "require('$tmp/js/node_modules/$1/package.json').version"; }

echo "# meshward verify benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
    "$(free -g | awk '/Mem:/{print $2}') GiB, $(uname -srm)"
echo "# versions: meshward $(sed -n 's/^project(meshward VERSION \([^ ]*\).*/\1/p' "$root/CMakeLists.txt")"\
    "($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo '+dirty')),"\
    "$(openssl version | cut -d' ' -f1-2), node $(node --version), @sigstore/verify $(jsver @sigstore/verify),"\
    "@sigstore/bundle $(jsver @sigstore/bundle), @sigstore/core $(jsver @sigstore/core),"\
    "@sigstore/protobuf-specs $(jsver @sigstore/protobuf-specs)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $secs s per row, $rounds rounds; cold = parse bundle JSON + hash artifact + verify," \
    "trusted root loaded once outside the loop"

for r in $(seq 1 "$rounds"); do
    "$tmp/bench_verify" "$data" "$secs" "${cases[@]}" | sed "s/^/round=$r /" >>"$tmp/results"
    node "$here/bench_verify_sigstore_js.mjs" "$tmp/js" "$data" "$secs" "${cases[@]}" |
        sed "s/^/round=$r /" >>"$tmp/results"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# raw lines:"
sed 's/^/#   /' "$tmp/results"
echo

# Median of the round medians and of the round p99s; the worst p99 too.
awk '
function field(name,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
    return ""
}
function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$2 == "RESULT" {
    impl = field("impl"); kind = field("kind"); key = impl SUBSEP kind
    if (!(kind in seen)) { seen[kind] = 1; order[++nk] = kind; casename[kind] = field("case") }
    unit = kind == "cache_hit" ? "ns" : "us"
    med[key] = med[key] " " field("median_" unit)
    p = field("p99_" unit) + 0; p99s[key] = p99s[key] " " p; if (p > worst[key]) worst[key] = p
}
$2 == "RSS" { impl = field("impl"); v = field("vmhwm_kib") + 0; if (v > rss[impl]) rss[impl] = v }
END {
    printf "%-26s %-30s %13s %11s %13s %11s %7s\n", "kind", "conformance case", "meshward med", "p99", "sigstore-js", "p99", "ratio"
    for (key in p99s) p99[key] = median(p99s[key])
    for (i = 1; i <= nk; i++) {
        k = order[i]; m = median(med["meshward", k])
        if (k == "cache_hit") {
            printf "%-26s %-30s %10.0f ns %8.0f ns %13s %11s %7s\n", k, casename[k], m, p99["meshward", k], "-", "-", "-"
            line[i] = sprintf("BENCH verify kind=%s meshward_median_ns=%.0f meshward_p99_ns=%.0f meshward_worst_p99_ns=%.0f goal_ns=2000", k, m, p99["meshward", k], worst["meshward", k])
            continue
        }
        j = median(med["sigstore-js", k])
        printf "%-26s %-30s %10.1f us %8.1f us %10.1f us %8.1f us %6.1fx\n", k, casename[k], m, p99["meshward", k], j, p99["sigstore-js", k], j / m
        line[i] = sprintf("BENCH verify kind=%s case=%s meshward_median_us=%.1f meshward_p99_us=%.1f meshward_worst_p99_us=%.1f sigstore_js_median_us=%.1f sigstore_js_p99_us=%.1f sigstore_js_worst_p99_us=%.1f ratio=%.2f", k, casename[k], m, p99["meshward", k], worst["meshward", k], j, p99["sigstore-js", k], worst["sigstore-js", k], j / m)
    }
    printf "peak RSS (VmHWM, largest of the rounds): meshward %.1f MiB, sigstore-js (node) %.1f MiB\n\n", rss["meshward"] / 1024, rss["sigstore-js"] / 1024
    for (i = 1; i <= nk; i++) print line[i]
    printf "BENCH verify rss meshward_vmhwm_kib=%d sigstore_js_maxrss_kib=%d\n", rss["meshward"], rss["sigstore-js"]
}' "$tmp/results"
