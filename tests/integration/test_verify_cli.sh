#!/usr/bin/env bash
# meshward verify image|policy and verify-bundle usage, against the shared
# sigstore-conformance data (a real production SLSA v1 provenance bundle).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
: "${MESHWARD:?set MESHWARD to the meshward binary}"
: "${MW_TESTDATA_DIR:?set MW_TESTDATA_DIR to ../shared/testdata}"
C="$MW_TESTDATA_DIR/sigstore-conformance"
ROOT="$MW_TESTDATA_DIR/sigstore/trusted_root.production.json"
BUNDLE="$C/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
EXPECT_DIR=$tmp

DIGEST="sha256:$(sha256sum "$C/a.txt" | cut -d' ' -f1)"
BEACON="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
GHA="https://token.actions.githubusercontent.com"
BUILDER="https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main"

cat >"$tmp/policy.yaml" <<Y
apiVersion: meshward.io/v1alpha1
kind: ImagePolicy
metadata: {name: prod}
spec:
  images:
  - glob: ghcr.io/acme/*
    signers:
    - identity: $BEACON
      issuer: $GHA
    provenance:
      builderIds: ["$BUILDER"]
  - glob: ghcr.io/pinned-builder/*
    signers:
    - identityRegex: https://github.com/sigstore-conformance/.*
      issuer: $GHA
    provenance:
      builderIds: [https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0]
  sidecars:
  - namespace: prod
    digests: ["sha256:0000000000000000000000000000000000000000000000000000000000000001"]
Y

# verify policy: validates and explains.
expect 0 "$MESHWARD" verify policy "$tmp/policy.yaml"
has "ImagePolicy prod: 2 image rules, 1 sidecar pins"
has "builder id: one of $BUILDER"
printf 'apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec: {images: [{glob: a}]}\n' >"$tmp/bad.yaml"
expect 1 "$MESHWARD" verify policy "$tmp/bad.yaml"
err_has "signers"

# verify image: allowed, with the attestation digest and builder.
expect 0 "$MESHWARD" verify image "ghcr.io/acme/app@$DIGEST" --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT"
has "ALLOW ghcr.io/acme/app@$DIGEST"
has "builder: $BUILDER"
has "attestation: sha256:"
expect 0 "$MESHWARD" verify image "ghcr.io/acme/app@$DIGEST" --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT" --json
if jq -e '.allowed == true and (.attestation_digest | startswith("sha256:")) and .builder_id != ""' "$tmp/out" >/dev/null; then ok; else bad "json verdict: $(cat "$tmp/out")"; fi
# Denied: builder not allowed; no rule; digest not a subject.
expect 1 "$MESHWARD" verify image "ghcr.io/pinned-builder/app@$DIGEST" --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT"
has "not an allowed builder"
expect 1 "$MESHWARD" verify image "quay.io/x/y@$DIGEST" --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT"
has "no rule"
expect 1 "$MESHWARD" verify image "ghcr.io/acme/app@sha256:0000000000000000000000000000000000000000000000000000000000000001" --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT"
has "DENY"
# Usage errors.
expect 2 "$MESHWARD" verify image "ghcr.io/acme/app@$DIGEST" --policy "$tmp/policy.yaml"
expect 2 "$MESHWARD" verify frobnicate
expect 1 "$MESHWARD" verify image "ghcr.io/acme/app:latest" --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT"

# verify-bundle: the protocol's argument rules.
expect 0 "$MESHWARD" verify-bundle --bundle "$BUNDLE" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" --trusted-root "$ROOT" "$C/a.txt"
has "OK:"
expect 0 "$MESHWARD" verify-bundle --staging --bundle "$BUNDLE" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" --trusted-root "$ROOT" "$DIGEST"
expect 2 "$MESHWARD" verify-bundle --bundle "$BUNDLE" --certificate-identity "$BEACON" --trusted-root "$ROOT" "$C/a.txt"
expect 2 "$MESHWARD" verify-bundle --bundle "$BUNDLE" --key "$C/managed-key-happy-path/key.pub" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" "$C/a.txt"
expect 2 "$MESHWARD" verify-bundle --bundle "$BUNDLE" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" --trusted-root "$ROOT"
expect 3 "$MESHWARD" verify-bundle --bundle "$tmp/missing.json" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" --trusted-root "$ROOT" "$C/a.txt"
expect 1 "$MESHWARD" verify-bundle --bundle "$BUNDLE" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" --trusted-root "$ROOT" "sha256:1234"
# The default trusted root comes from $MESHWARD_TRUSTED_ROOT.
expect 0 env MESHWARD_TRUSTED_ROOT="$ROOT" "$MESHWARD" verify-bundle --bundle "$BUNDLE" --certificate-identity "$BEACON" --certificate-oidc-issuer "$GHA" "$C/a.txt"
# A wrong identity fails with one line on stderr.
expect 1 "$MESHWARD" verify-bundle --bundle "$BUNDLE" --certificate-identity "https://example.com/x" --certificate-oidc-issuer "$GHA" --trusted-root "$ROOT" "$C/a.txt"
err_has "identity"
if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok; else bad "reason is not one line: $(cat "$tmp/err")"; fi

expect_summary "verify cli: "
