#!/usr/bin/env bash
# Crash safety of the tiled log: an entry is acknowledged only once it is
# durable. Each round starts `meshward log append` on a stream of entries,
# kills it with SIGKILL at a random moment, and then checks that the log
# verifies, that every acknowledged entry is in it with the right content,
# and that appending resumes cleanly.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_expect.sh
. "$(dirname "$0")/lib_expect.sh"
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$MESHWARD" log keygen --name meshward.test/crash --out keys >/dev/null
origin=meshward.test/crash
rounds=${MW_CRASH_ROUNDS:-6}

for round in $(seq 1 "$rounds"); do
  before=0
  if [ -f log/checkpoint ]; then
    before=$(sed -n 2p log/checkpoint)
  fi
  # A bounded stream: at most 200000 entries, and the writer dies long before.
  seq 0 199999 | sed "s/^/round$round entry /" >"in.$round"
  "$MESHWARD" log append log --key keys/log.key --origin "$origin" --batch $((round * 3)) \
    "in.$round" >"acks.$round" 2>"err.$round" &
  pid=$!
  # Kill between 0.2 and 1.1 s in, mid-burst.
  sleep "0.$((2 + RANDOM % 9))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true

  nacks=$(grep -c '^ack ' "acks.$round" || true)
  if [ "$nacks" -eq 0 ]; then
    bad "round $round: nothing was acknowledged before the kill (stderr: $(cat "err.$round"))"
    continue
  fi
  if ! "$MESHWARD" log verify log --pub keys/log.pub >"verify.$round" 2>&1; then
    bad "round $round: log does not verify after SIGKILL: $(cat "verify.$round")"
    continue
  fi
  ok
  size=$(sed -n 2p log/checkpoint)
  last=$(tail -1 "acks.$round" | cut -d' ' -f2)
  if [ "$size" -gt "$last" ]; then ok; else bad "round $round: acked index $last but log size is $size"; fi
  # The acknowledged entries are the ones we sent, in order: check the first,
  # the last and one in the middle of this round.
  mid=$(( (before + last) / 2 ))
  for idx in "$before" "$mid" "$last"; do
    want="round$round entry $((idx - before))"
    got=$("$MESHWARD" log prove log "$idx" --pub keys/log.pub --json | sed -E 's/.*"entry":"([^"]*)".*/\1/')
    if [ "$got" = "$want" ]; then ok; else bad "round $round: entry $idx is '$got', want '$want'"; fi
  done
  echo "round $round: killed after $nacks acknowledgements; log has $size entries and verifies"
done

# After all that, the writer still opens the log and appends to it.
printf 'after the crashes\n' | "$MESHWARD" log append log --key keys/log.key --origin "$origin" >final.ack
if "$MESHWARD" log verify log --pub keys/log.pub >/dev/null; then ok; else bad "final verify"; fi

expect_summary
