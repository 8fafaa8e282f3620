#!/usr/bin/env bash
# meshward ca audit: the issuance monitor over a real log directory. Entries here are
# appended with `meshward log append` (text lines, so not issuance records): the audit
# must flag each as a malformed record, and must refuse a log that does not verify.
# Every rule over real records is covered by tests/unit/ca/test_ca_monitor.c.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
EXPECT_DIR=$work

cat >policy.yaml <<'P'
apiVersion: meshward.io/v1alpha1
kind: IssuanceMonitorPolicy
metadata: {name: prod}
spec:
  changeWindows:
    - days: [Mon, Tue, Wed, Thu, Fri]
      hours: "08:00-18:00"
  maxTTL: 1h
  burst: {max: 20, window: 10m}
  retiredKeys: [int-2025]
P
cat >regs.yaml <<'R'
apiVersion: meshward.io/v1alpha1
kind: WorkloadRegistration
metadata: {name: api}
spec:
  kubernetes: {namespace: shop, serviceAccount: api}
  requiresProvenance: true
R
printf 'apiVersion: meshward.io/v1alpha1\nkind: IssuanceMonitorPolicy\nmetadata: {name: x}\nspec: {maxTTL: 0s}\n' >bad-policy.yaml

o=meshward.test/issuance
expect 0 "$MESHWARD" log keygen --name $o --out k
expect 0 "$MESHWARD" log keygen --name $o --out k2
expect 0 "$MESHWARD" ca audit --help
says "JSON lines"
expect 2 "$MESHWARD" ca audit
expect 2 "$MESHWARD" ca audit log --pub k/log.pub
expect 2 "$MESHWARD" ca audit log --policy policy.yaml
expect 2 "$MESHWARD" ca audit log --pub k/log.pub --policy policy.yaml --registrations regs.yaml --db x.db

printf 'first\nsecond\nthird\n' | "$MESHWARD" log append log --key k/log.key --origin $o >/dev/null
expect 0 "$MESHWARD" ca audit log --pub k/log.pub --policy policy.yaml --registrations regs.yaml
says '"id":"ca-malformed-record"'
says '"resource":"log entry 2"'
says "3 findings"
[ "$(wc -l <out)" -eq 3 ] && ok || bad "want 3 finding lines: $(cat out)"
if command -v jq >/dev/null; then
  jq -e 'has("id") and has("severity") and has("resource") and has("message") and has("evidence")' out >/dev/null \
    && ok || bad "findings are not JSON with the five keys"
fi
# An empty log: ran, no findings.
expect 0 "$MESHWARD" log verify log --pub k/log.pub
mkdir empty
printf '' | "$MESHWARD" log append empty --key k/log.key --origin $o >/dev/null
expect 0 "$MESHWARD" ca audit empty --pub k/log.pub --policy policy.yaml
says "0 findings"

# Bad input: wrong key, tampered entries, missing files, bad policy/registrations.
expect 1 "$MESHWARD" ca audit log --pub k2/log.pub --policy policy.yaml
expect 1 "$MESHWARD" ca audit log --pub k/log.pub --policy bad-policy.yaml
says "bad-policy.yaml:4"
expect 3 "$MESHWARD" ca audit log --pub k/log.pub --policy missing.yaml
expect 3 "$MESHWARD" ca audit log --pub k/log.pub --policy policy.yaml --registrations missing.yaml
echo "kind: Pod" >bad-regs.yaml
expect 1 "$MESHWARD" ca audit log --pub k/log.pub --policy policy.yaml --registrations bad-regs.yaml
expect 3 "$MESHWARD" ca audit nosuchdir --pub k/log.pub --policy policy.yaml
bundle=$(find log/tile/entries -type f | head -n1)
printf 'X' | dd of="$bundle" bs=1 seek=3 conv=notrunc status=none
expect 1 "$MESHWARD" ca audit log --pub k/log.pub --policy policy.yaml
[ ! -s out ] && ok || bad "findings printed for a log that does not verify"

expect_summary "test_ca_audit: "
