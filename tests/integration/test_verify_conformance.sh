#!/usr/bin/env bash
# meshward verify-bundle against every sigstore-conformance case in
# ../shared/testdata/sigstore-conformance/cases.json, each run twice as the
# conformance suite does: with the artifact file and with sha256:<digest>.
# (Fields are split on 0x1f: tab is IFS whitespace, so empty fields would collapse.)
# Passes only when every run agrees with the expected outcome; prints the
# count and each disagreement with meshward's reason.
set -euo pipefail
: "${MESHWARD:?set MESHWARD to the meshward binary}"
: "${MW_TESTDATA_DIR:?set MW_TESTDATA_DIR to ../shared/testdata}"
C="$MW_TESTDATA_DIR/sigstore-conformance"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
agree=0
total=0
n=$(jq '.cases | length' "$C/cases.json")
for ((i = 0; i < n; i++)); do
    jq -r ".cases[$i] | [.name, .expect, .bundle, .artifact, .trusted_root,
        (.certificate_identity // \"\"), (.certificate_oidc_issuer // \"\"), (.key // \"\")] | join(\"\\u001f\")" \
        "$C/cases.json" >"$tmp/case"
    IFS=$'\x1f' read -r name expect bundle artifact root identity issuer key <"$tmp/case"
    if [ -n "$key" ]; then
        who=(--key "$C/$key")
    else
        who=(--certificate-identity "$identity" --certificate-oidc-issuer "$issuer")
    fi
    digest="sha256:$(sha256sum "$C/$artifact" | cut -d' ' -f1)"
    for input in "$C/$artifact" "$digest"; do
        total=$((total + 1))
        rc=0
        "$MESHWARD" verify-bundle --bundle "$C/$bundle" "${who[@]}" --trusted-root "$C/$root" \
            "$input" >"$tmp/out" 2>"$tmp/err" || rc=$?
        got=pass
        [ "$rc" -eq 0 ] || got=fail
        kind=FILE
        [ "$input" = "$digest" ] && kind=DIGEST
        if [ "$got" = "$expect" ]; then
            agree=$((agree + 1))
            # A rejection must say why on exactly one line.
            if [ "$got" = fail ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
                echo "DISAGREE $kind-$name: failure reason is not one line: $(cat "$tmp/err")" >&2
                agree=$((agree - 1))
            fi
        else
            echo "DISAGREE $kind-$name: want $expect, got $got (exit $rc): $(head -c 400 "$tmp/err")" >&2
        fi
    done
done
echo "sigstore-conformance: $agree of $total agree"
[ "$agree" -eq "$total" ]
