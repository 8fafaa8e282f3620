#!/usr/bin/env bash
# meshward verify image --admit and verify revoke against the admitted-artifact
# store the CA reads, with a real production SLSA v1 provenance bundle from
# sigstore-conformance (happy-path-intoto-in-dsse-v3, keyless, GitHub Actions).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
: "${MESHWARD:?set MESHWARD to the meshward binary}"
: "${MW_TESTDATA_DIR:?set MW_TESTDATA_DIR to ../shared/testdata}"
C="$MW_TESTDATA_DIR/sigstore-conformance"
ROOT="$MW_TESTDATA_DIR/sigstore/trusted_root.production.json"
BUNDLE="$C/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
KEYED="$C/managed-key-happy-path/bundle.sigstore.json"
KEY="$C/managed-key-happy-path/key.pub"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
EXPECT_DIR=$tmp
rows() { sqlite3 "$DB" "SELECT count(*) FROM artifact"; }

DIGEST="sha256:$(sha256sum "$C/a.txt" | cut -d' ' -f1)"
IMAGE="ghcr.io/acme/app@$DIGEST"
BEACON="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
GHA="https://token.actions.githubusercontent.com"
BUILDER="https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main"
# The attestation digest, computed here independently: SHA-256 of the DSSE payload as signed.
ATTESTATION="sha256:$(jq -r .dsseEnvelope.payload "$BUNDLE" | base64 -d | sha256sum | cut -d' ' -f1)"
KEY_ID=$(openssl pkey -pubin -in "$KEY" -outform DER | sha256sum | cut -d' ' -f1)
DB="$tmp/ca.db"

{
    cat <<Y
apiVersion: meshward.io/v1alpha1
kind: ImagePolicy
metadata: {name: admit}
spec:
  images:
  - glob: ghcr.io/acme/*
    signers:
    - identity: $BEACON
      issuer: $GHA
    provenance:
      builderIds: ["$BUILDER"]
  - glob: ghcr.io/strict/*
    signers:
    - identity: $BEACON
      issuer: $GHA
    provenance:
      builderIds: [https://builder.example/other]
  - glob: ghcr.io/keyed/*
    signers:
    - key: |
Y
    sed 's/^/        /' "$KEY"
} >"$tmp/policy.yaml"
V=("$MESHWARD" verify image --bundle "$BUNDLE" --policy "$tmp/policy.yaml" --trusted-root "$ROOT")

# DENY with --admit writes nothing (the store is not even created).
expect 1 "${V[@]}" "ghcr.io/strict/app@$DIGEST" --admit --db "$DB"
has "DENY ghcr.io/strict/app@$DIGEST"
has "not admitted: the verdict is DENY; nothing written to $DB"
if [ -e "$DB" ]; then bad "a denied image created the store"; else ok; fi
# ALLOW without SLSA provenance (a keyed plain signature): not admitted either.
expect 1 "$MESHWARD" verify image "ghcr.io/keyed/app@$DIGEST" --bundle "$KEYED" --policy "$tmp/policy.yaml" \
    --trusted-root "$ROOT" --admit --db "$DB"
has "ALLOW ghcr.io/keyed/app@$DIGEST"
has "key: $KEY_ID"
has "no SLSA provenance"
eq "$(rows)" 0 "rows after an image without provenance"
# Usage.
expect 2 "${V[@]}" "$IMAGE" --admit
expect 2 "${V[@]}" "$IMAGE" --db "$DB"

# ALLOW with --admit: stored, and the output says what.
expect 0 "${V[@]}" "$IMAGE" --admit --db "$DB"
has "ALLOW $IMAGE"
has "admitted to $DB:"
has "image $DIGEST"
has "attestation $ATTESTATION"
has "builder $BUILDER"
has "source https://github.com/loosebazooka/aa-test refs/heads/main"
has "signer $BEACON (issuer $GHA)"
has "policy sha256:$(sha256sum "$tmp/policy.yaml" | cut -d' ' -f1)"
has "trusted root sha256:$(sha256sum "$ROOT" | cut -d' ' -f1)"
# The row, read with SQLite itself.
eq "$(sqlite3 "$DB" "SELECT attestation_digest, builder_id, signer_identity, signer_issuer, key_id IS NULL, source_ref FROM artifact WHERE image_digest = '$DIGEST'")" \
    "$ATTESTATION|$BUILDER|$BEACON|$GHA|1|refs/heads/main" "stored row"
eq "$(sqlite3 "$DB" "SELECT value FROM meta WHERE key = 'schema'")" 2 "schema version"
# The CA's own view of the store.
expect 0 "$MESHWARD" ca artifact list --db "$DB"
has "$DIGEST  attestation $ATTESTATION  builder $BUILDER"
# --json says so too; admitting again replaces the record.
expect 0 "${V[@]}" "$IMAGE" --admit --db "$DB" --json
eq "$(jq -r '[.allowed, .admitted, .attestation_digest, .issuer, .store] | map(tostring) | join(" ")' "$tmp/out")" \
    "true true $ATTESTATION $GHA $DB" "verify image --json --admit"
eq "$(rows)" 1 "rows after admitting twice"

# Revoke by signer identity: lists the digest; the store no longer has it.
expect 0 "$MESHWARD" verify revoke --db "$DB" --identity "$BEACON" --issuer "$GHA"
out_is "$DIGEST"
err_has "revoked 1 admitted artifact matching signer $BEACON"
expect 0 "$MESHWARD" ca artifact list --db "$DB"
lacks "$DIGEST"
eq "$(rows)" 0 "rows after revocation"
# Revoking what is absent: exit 0, nothing listed, and it says nothing matched.
expect 0 "$MESHWARD" verify revoke --db "$DB" --identity "$BEACON" --issuer "$GHA"
out_is ""
err_has "nothing matched signer $BEACON"
expect 0 "$MESHWARD" verify revoke --db "$DB" --key "$KEY" --json
out_is "[]"
err_has "nothing matched key id $KEY_ID"
# The same SAN from another issuer is another signer.
expect 0 "${V[@]}" "$IMAGE" --admit --db "$DB"
expect 0 "$MESHWARD" verify revoke --db "$DB" --identity "$BEACON" --issuer https://accounts.google.com
err_has "nothing matched"
eq "$(rows)" 1 "rows after revoking another issuer"

# By attestation digest (JSON list), and by image digest.
expect 0 "$MESHWARD" verify revoke --db "$DB" --attestation-digest "$ATTESTATION" --json
eq "$(jq -r 'length, .[0]' "$tmp/out" | paste -sd' ')" "1 $DIGEST" "revoke --attestation-digest --json"
expect 0 "${V[@]}" "$IMAGE" --admit --db "$DB"
expect 0 "$MESHWARD" verify revoke --db "$DB" --digest "$DIGEST"
out_is "$DIGEST"
eq "$(rows)" 0 "rows after revoking by digest"

# A key id: stored by a keyed admission elsewhere; here it matches nothing, and is checked.
expect 0 "$MESHWARD" verify revoke --db "$DB" --key-id "$KEY_ID"
err_has "nothing matched key id $KEY_ID"
expect 1 "$MESHWARD" verify revoke --db "$DB" --key-id "${KEY_ID^^}"
err_has "lower-case hex"
expect 1 "$MESHWARD" verify revoke --db "$DB" --digest "sha256:1234"
err_has "64"
expect 1 "$MESHWARD" verify revoke --db "$DB" --identity "$BEACON" --issuer "not-a-uri"
err_has "not a URI"
# Usage: exactly one selector; an identity needs its issuer.
expect 2 "$MESHWARD" verify revoke --db "$DB"
expect 2 "$MESHWARD" verify revoke --db "$DB" --digest "$DIGEST" --key-id "$KEY_ID"
expect 2 "$MESHWARD" verify revoke --db "$DB" --identity "$BEACON"
expect 2 "$MESHWARD" verify revoke --digest "$DIGEST"
expect 2 "$MESHWARD" verify revoke --db "$DB" --digest

# A store written by schema version 1 is migrated on open; its rows stay readable and revocable.
OLD="$tmp/v1.db"
sqlite3 "$OLD" <<SQL
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE join_token(hash BLOB PRIMARY KEY CHECK(length(hash) = 32), spiffe_id TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0 CHECK(used IN (0, 1)), used_at INTEGER);
CREATE TABLE artifact(image_digest TEXT PRIMARY KEY, attestation_digest TEXT NOT NULL,
  builder_id TEXT NOT NULL, source_repo TEXT NOT NULL, admitted_at INTEGER NOT NULL);
CREATE TABLE registration(seq INTEGER PRIMARY KEY, name TEXT NOT NULL, by_k8s INTEGER NOT NULL,
  spiffe_id TEXT NOT NULL, ns TEXT NOT NULL, sa TEXT NOT NULL,
  requires_provenance INTEGER NOT NULL, max_ttl INTEGER NOT NULL);
CREATE TABLE registration_image(seq INTEGER NOT NULL REFERENCES registration(seq) ON DELETE CASCADE,
  pos INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(seq, pos));
INSERT INTO meta VALUES('schema', 1);
INSERT INTO artifact VALUES('$DIGEST', '$ATTESTATION', '$BUILDER', '', 1700000000);
SQL
expect 0 "$MESHWARD" ca artifact list --db "$OLD"
has "$DIGEST  attestation $ATTESTATION"
eq "$(sqlite3 "$OLD" "SELECT value FROM meta WHERE key = 'schema'")" 2 "migrated schema version"
expect 0 "$MESHWARD" verify revoke --db "$OLD" --identity "$BEACON" --issuer "$GHA"
err_has "nothing matched" # a version-1 row names no signer
expect 0 "$MESHWARD" verify revoke --db "$OLD" --attestation-digest "$ATTESTATION"
out_is "$DIGEST"

expect_summary "test_verify_admit: "
