#!/usr/bin/env bash
# Replay every fuzz corpus, then fuzz each harness for a few seconds.
#   scripts/fuzz.sh BUILD_DIR [SECONDS]
# Crashes found are written to BUILD_DIR/fuzz-artifacts/ and fail the run.
set -euo pipefail
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [SECONDS]}
seconds=${2:-${MW_FUZZ_SECONDS:-10}}
root=$(cd "$(dirname "$0")/.." && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

harnesses=$(cd "$root/fuzz" && ls fuzz_*.c 2>/dev/null | sed 's/\.c$//')
if [ -z "$harnesses" ]; then
  echo "fuzz: no harnesses in fuzz/"
  exit 1
fi

passed=0
failed=0
for h in $harnesses; do
  bin="$build/$h"
  corpus="$root/fuzz/corpus/$h"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $h was not built ($bin missing)"
    failed=$((failed + 1))
    continue
  fi
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "fuzz: $h has no seed corpus in fuzz/corpus/$h"
    failed=$((failed + 1))
    continue
  fi
  # Work on a copy so new inputs do not land in the repository.
  work=$(mktemp -d)
  cp "$corpus"/* "$work"/
  log="$build/fuzz-$h.log"
  nseeds=$(ls "$corpus" | wc -l)
  if ! "$bin" -runs=0 "$corpus" >"$log" 2>&1; then
    echo "fuzz: $h FAILED replaying its $nseeds-file corpus (see $log)"
    tail -30 "$log"
    failed=$((failed + 1))
    rm -rf "$work"
    continue
  fi
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/$h-" "$work" >>"$log" 2>&1; then
    echo "fuzz: $h FAILED while fuzzing (see $log and $artifacts)"
    tail -30 "$log"
    failed=$((failed + 1))
    rm -rf "$work"
    continue
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+|#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | grep -Eo '[0-9]+' | head -1)
  [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  echo "fuzz: $h ok: replayed $nseeds seeds, ${execs:-?} executions in ${seconds}s"
  passed=$((passed + 1))
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
