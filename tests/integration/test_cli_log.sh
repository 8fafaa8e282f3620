#!/usr/bin/env bash
# meshward log: the command line over a real log directory, including the
# ways it must refuse: wrong key, tampered tiles, a forked history, bad input.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
EXPECT_DIR=$work

o=meshward.test/cli
expect 0 "$MESHWARD" log keygen --name $o --out k
expect 0 "$MESHWARD" log keygen --name other.test/log --out k2
expect 0 "$MESHWARD" log --help
says "tlog-tiles"
expect 2 "$MESHWARD" log
expect 2 "$MESHWARD" log frobnicate
expect 2 "$MESHWARD" log verify
expect 2 "$MESHWARD" log append log --key k/log.key
expect 2 "$MESHWARD" log append log --key k/log.key --origin $o --batch 0
expect 2 "$MESHWARD" log prove log notanumber --pub k/log.pub
expect 2 "$MESHWARD" log keygen --name "has space" --out k3 --bogus
expect 1 "$MESHWARD" log keygen --name "has space" --out k3
says "key name"

seq 1 300 | sed 's/^/e/' >in
expect 0 "$MESHWARD" log append log --key k/log.key --origin $o --batch 7 in
cp log/checkpoint cp300
seq 301 310 | sed 's/^/e/' | "$MESHWARD" log append log --key k/log.key --origin $o >/dev/null
expect 0 "$MESHWARD" log verify log --pub k/log.pub --since cp300
says "size 300 is a prefix"
expect 0 "$MESHWARD" log prove log 299 --pub k/log.pub
says '"e300"'
expect 3 "$MESHWARD" log prove log 310 --pub k/log.pub
says "not in a log of 310"

# The wrong key, the wrong origin, a readable private key.
expect 1 "$MESHWARD" log verify log --pub k2/log.pub
says "no signature by a trusted key"
expect 1 "$MESHWARD" log append log --key k/log.key --origin other.test/log in
says "is for log"
chmod 640 k/log.key
expect 3 "$MESHWARD" log append log --key k/log.key --origin $o in
says "chmod 600"
chmod 600 k/log.key

# A forked history: a second log with the same key but other entries.
seq 1 300 | sed 's/^/f/' | "$MESHWARD" log append fork --key k/log.key --origin $o >/dev/null
expect 1 "$MESHWARD" log verify log --pub k/log.pub --since fork/checkpoint
says "not a prefix"

# Tampering: one byte of an entry bundle, then a level-1 tile.
cp -r log log2
printf 'X' | dd of=log/tile/entries/000 bs=1 seek=3 conv=notrunc status=none
expect 1 "$MESHWARD" log verify log --pub k/log.pub
says "does not match its hash"
printf 'X' | dd of=log2/tile/1/000.p/1 bs=1 seek=0 conv=notrunc status=none
expect 1 "$MESHWARD" log verify log2 --pub k/log.pub
says "does not match the tiles below it"
# A truncated checkpoint.
head -c 20 log2/checkpoint >log2/cp && mv log2/cp log2/checkpoint
expect 1 "$MESHWARD" log verify log2 --pub k/log.pub
expect 3 "$MESHWARD" log verify nowhere --pub k/log.pub

expect_summary
