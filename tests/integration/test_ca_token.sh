#!/usr/bin/env bash
# meshward ca token / ca artifact: join tokens and admitted artifacts in the CA store,
# through the real binary, including the inputs it must refuse.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
EXPECT_DIR=$work

D1=sha256:1111111111111111111111111111111111111111111111111111111111111111
A1=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

# --- join tokens
expect 0 "$MESHWARD" ca token --help
says "printed once"
expect 2 "$MESHWARD" ca token
expect 2 "$MESHWARD" ca token frobnicate
expect 2 "$MESHWARD" ca token create --db ca.db
expect 2 "$MESHWARD" ca token create --db ca.db --spiffe-id spiffe://example.org/a --ttl forever
expect 2 "$MESHWARD" ca token create --db ca.db --spiffe-id spiffe://example.org/a --ttl 31d
expect 1 "$MESHWARD" ca token create --db ca.db --spiffe-id https://example.org/a
says "bad_scheme"
expect 1 "$MESHWARD" ca token create --db ca.db --spiffe-id spiffe://example.org
says "workload ID"
expect 0 "$MESHWARD" ca token create --db ca.db --spiffe-id spiffe://example.org/host/db-1 --ttl 10m
tok1=$(head -n1 out)
says "shown only once"
[[ $tok1 =~ ^mwjt_[A-Za-z0-9_-]{43}$ ]] && ok || bad "token shape '$tok1'"
expect 0 "$MESHWARD" ca token create --db ca.db --spiffe-id spiffe://example.org/host/db-2
tok2=$(head -n1 out)
[ "$tok1" != "$tok2" ] && ok || bad "two equal tokens"
expect 0 "$MESHWARD" ca token list --db ca.db
says "spiffe://example.org/host/db-1"
says "unused"
lacks "${tok1#mwjt_}" out err
expect 0 "$MESHWARD" ca token list --db ca.db --json
[ "$(wc -l <out)" -eq 2 ] && ok || bad "want 2 JSON lines"
lacks "${tok2#mwjt_}" out err
# Only hashes are stored.
lacks "${tok1#mwjt_}" ca.db
[ -e ca.db-wal ] && lacks "${tok1#mwjt_}" ca.db-wal
perm=$(stat -c %a ca.db)
[ "$perm" = 600 ] && ok || bad "ca.db mode $perm"
expect 3 "$MESHWARD" ca token list --db missing/dir/ca.db
echo "this is not an sqlite database, it is just text, long enough to be read as one" >junk.db
expect 3 "$MESHWARD" ca token list --db junk.db

# --- admitted artifacts
expect 0 "$MESHWARD" ca artifact --help
expect 2 "$MESHWARD" ca artifact add --db ca.db --image-digest $D1
expect 0 "$MESHWARD" ca artifact add --db ca.db --image-digest $D1 --attestation-digest $A1 \
  --builder-id https://builder.example/v1 --source-repo git+https://github.com/acme/shop
says "admitted $D1"
expect 1 "$MESHWARD" ca artifact add --db ca.db --image-digest sha256:abc --attestation-digest $A1 \
  --builder-id https://builder.example/v1
says "hex digits"
expect 1 "$MESHWARD" ca artifact add --db ca.db --image-digest "$D1'; DROP TABLE artifact;--" \
  --attestation-digest $A1 --builder-id https://builder.example/v1
expect 1 "$MESHWARD" ca artifact add --db ca.db --image-digest $D1 --attestation-digest $A1 \
  --builder-id "not a uri"
expect 0 "$MESHWARD" ca artifact list --db ca.db
says "$D1"
says "builder https://builder.example/v1"
expect 0 "$MESHWARD" ca artifact list --db ca.db --json
says "\"attestation_digest\":\"$A1\""
expect 0 "$MESHWARD" ca artifact remove --db ca.db --image-digest $D1
expect 1 "$MESHWARD" ca artifact remove --db ca.db --image-digest $D1
says "not admitted"
expect 0 "$MESHWARD" ca artifact list --db ca.db
[ ! -s out ] && ok || bad "list not empty"

expect_summary "test_ca_token: "
