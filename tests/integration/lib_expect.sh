# shellcheck shell=bash
# Checks shared by the integration tests; source it before any cd, then set EXPECT_DIR
# to the scratch folder where each command's output goes ($EXPECT_DIR/out, /err).
# Each check counts into $passed or $failed; expect_summary prints the count and
# returns non-zero when a check failed, so a script ends with it.

passed=0
failed=0
EXPECT_DIR=.

ok() { passed=$((passed + 1)); }
bad() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

# expect CODE CMD...: run CMD (stdout to out, stderr to err), want exit CODE.
expect() {
  local want=$1 rc=0
  shift
  "$@" >"$EXPECT_DIR/out" 2>"$EXPECT_DIR/err" || rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else
    bad "'$*' exited $rc, want $want; stderr: $(cat "$EXPECT_DIR/err")"
  fi
}

# expect_output NAME CODE FRAGMENT -- CMD...: CMD exits with CODE and its stdout+stderr
# (both in out) contains FRAGMENT (an empty FRAGMENT checks only the exit code).
expect_output() {
  local name=$1 want=$2 frag=$3 rc=0
  shift 4
  "$@" >"$EXPECT_DIR/out" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    bad "$name: exit $rc, want $want"
    sed 's/^/    /' "$EXPECT_DIR/out"
  elif [ -n "$frag" ] && ! grep -qF -- "$frag" "$EXPECT_DIR/out"; then
    bad "$name: output lacks \"$frag\""
    sed 's/^/    /' "$EXPECT_DIR/out"
  else
    ok
  fi
}

# says TEXT: the last command's stdout or stderr contains TEXT.
says() {
  if grep -qF -- "$1" "$EXPECT_DIR/err" "$EXPECT_DIR/out"; then ok; else
    bad "output lacks '$1': $(cat "$EXPECT_DIR/out" "$EXPECT_DIR/err")"
  fi
}
# has TEXT / err_has TEXT: the last command's stdout / stderr contains TEXT.
has() {
  if grep -qF -- "$1" "$EXPECT_DIR/out"; then ok; else
    bad "output lacks '$1': $(cat "$EXPECT_DIR/out")"
  fi
}
err_has() {
  if grep -qF -- "$1" "$EXPECT_DIR/err"; then ok; else
    bad "stderr lacks '$1': $(cat "$EXPECT_DIR/err")"
  fi
}
# lacks TEXT [FILE...]: no FILE (default: the last command's stdout) contains TEXT.
lacks() {
  local text=$1
  shift
  [ $# -gt 0 ] || set -- "$EXPECT_DIR/out"
  if grep -qF -- "$text" "$@"; then bad "'$text' found in $*"; else ok; fi
}
# out_is TEXT: the last command's stdout is exactly TEXT.
out_is() {
  if [ "$(cat "$EXPECT_DIR/out")" = "$1" ]; then ok; else
    bad "output is '$(cat "$EXPECT_DIR/out")', want '$1'"
  fi
}
# eq GOT WANT WHAT
eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: '$1', want '$2'"; fi; }

# expect_summary [PREFIX]: the last line of a test; its status is the script's.
expect_summary() {
  echo "${1:-}$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
