#!/usr/bin/env bash
# `meshward sidecar iptables` in a fresh network namespace: the installed nat
# table is exactly the dry-run rules, a second run changes nothing, a run with
# other options replaces ours, rules of other owners survive install and
# cleanup, cleanup removes every chain and jump of ours and is itself
# idempotent, and bad input is refused. Needs root (fails, never skips).
set -uo pipefail
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary in the build directory}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib_netns.sh
. "$here/lib_netns.sh"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1"; fi; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

netns_require
command -v iptables-save >/dev/null || { echo "FAIL: iptables is not installed" >&2; exit 1; }
netns_setup ipt 1 || { bad "namespace setup"; finish; }
ns=$(netns_name 0)
work=$(mktemp -d)
trap 'netns_cleanup; rm -rf "$work"' EXIT

# The nat table without the comment lines (they carry a timestamp).
nat() { netns_exec 0 iptables-save -t nat | grep -v '^#'; }
# shellcheck disable=SC2054 # the commas are inside option values
args=(--inbound-port 15006 --outbound-port 15001 --proxy-uid 1337 --exclude-inbound-ports "15020,22"
  --exclude-outbound-ports 5432 --exclude-outbound-cidrs 169.254.169.254/32,10.96.0.0/12)

# A rule of someone else that must survive.
netns_exec 0 iptables -t nat -A OUTPUT -d 192.0.2.1/32 -j RETURN
nat >"$work/before"

"$MESHWARD" sidecar iptables "${args[@]}" --dry-run >"$work/dry"
check "dry-run exits 0" $?
[ "$(nat)" = "$(cat "$work/before")" ]
check "dry-run changes nothing" $?

"$MESHWARD" sidecar iptables "${args[@]}" --netns "$ns"
check "install exits 0" $?
nat >"$work/one"
for c in MESHWARD_INBOUND MESHWARD_IN_REDIRECT MESHWARD_OUTPUT MESHWARD_REDIRECT; do
  grep -qx ":$c - \[0:0\]" "$work/one"
  check "chain $c exists" $?
done
# Every rule line of the dry run is in the table, as iptables-save prints it.
missing=0
while IFS= read -r line; do
  case "$line" in -A*) grep -qxF -- "$line" "$work/one" || { echo "  missing: $line"; missing=1; } ;; esac
done <"$work/dry"
check "installed rules equal the dry-run rules" $missing
[ "$(grep -c 'MESHWARD' "$work/one")" -eq "$(($(grep -c '^-A' "$work/dry") + 4))" ]
check "no rule of ours beyond the dry-run ones" $?
grep -qxF -- "-A OUTPUT -d 192.0.2.1/32 -j RETURN" "$work/one"
check "foreign rule kept by install" $?

"$MESHWARD" sidecar iptables "${args[@]}" --netns "$ns"
check "second install exits 0" $?
nat >"$work/two"
diff -u "$work/one" "$work/two" >/dev/null
check "second install leaves the same table" $?

"$MESHWARD" sidecar iptables --inbound-port 16006 --outbound-port 16001 --proxy-uid 1000 --netns "$ns"
check "install with other options exits 0" $?
nat >"$work/three"
[ "$(grep -c -- '-j REDIRECT' "$work/three")" -eq 2 ] &&
  grep -qxF -- "-A MESHWARD_REDIRECT -p tcp -j REDIRECT --to-ports 16001" "$work/three" &&
  ! grep -q -- '--uid-owner 1337\|5432\|15020' "$work/three" &&
  [ "$(grep -c -- '-j MESHWARD_INBOUND$' "$work/three")" -eq 1 ]
check "other options replace ours, one jump each" $?

"$MESHWARD" sidecar iptables --cleanup --netns "$ns"
check "cleanup exits 0" $?
nat >"$work/after"
! grep -q MESHWARD "$work/after"
check "no chain or jump of ours after cleanup" $?
diff -u "$work/before" "$work/after"
check "cleanup restores the table as it was" $?
"$MESHWARD" sidecar iptables --cleanup --netns "$ns"
check "cleanup of a clean table exits 0" $?

# Refused input: usage errors (2), a missing namespace (3), never a change.
for bad_args in "--inbound-port 0 --outbound-port 15001 --proxy-uid 1" \
  "--inbound-port 15006 --outbound-port 65536 --proxy-uid 1" \
  "--inbound-port 15006 --outbound-port 15001 --proxy-uid root" \
  "--inbound-port 15006 --outbound-port 15006 --proxy-uid 1" \
  "--inbound-port 15006 --outbound-port 15001" \
  "--inbound-port 15006 --outbound-port 15001 --proxy-uid 1 --exclude-outbound-cidrs 10.0.0.1/8" \
  "--inbound-port 15006 --outbound-port 15001 --proxy-uid 1 --exclude-outbound-cidrs 300.0.0.0/8" \
  "--inbound-port 15006 --outbound-port 15001 --proxy-uid 1 --exclude-inbound-ports 1,,2" \
  "--inbound-port 15006 --outbound-port 15001 --proxy-uid 1 --netns ../x"; do
  # shellcheck disable=SC2086
  "$MESHWARD" sidecar iptables $bad_args --netns "$ns" >/dev/null 2>&1
  rc=$?
  [ $rc -eq 2 ]
  check "refused with usage error: $bad_args (rc=$rc)" $?
done
"$MESHWARD" sidecar iptables --inbound-port 15006 --outbound-port 15001 --proxy-uid 1 \
  --netns "${ns}-absent" 2>"$work/err"
rc=$?
[ $rc -eq 3 ] && grep -q "namespace" "$work/err"
check "missing namespace refused (rc=$rc)" $?
[ "$(nat)" = "$(cat "$work/before")" ]
check "refused runs changed nothing" $?
finish
