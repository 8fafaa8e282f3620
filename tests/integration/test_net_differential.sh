#!/usr/bin/env bash
# Differential test of meshward's HTTP/1.1 parser against Debian's
# libhttp-parser: builds tests/integration/net_differential.c against the
# build directory's libmeshward_core.a and runs it (see that file for the
# three lists: valid, stricter by design, invalid).
set -euo pipefail
MESHWARD=${MESHWARD:?set MESHWARD to the meshward binary in the build directory}
MW_SOURCE_DIR=${MW_SOURCE_DIR:?set MW_SOURCE_DIR to the source tree}
build=$(dirname "$MESHWARD")
lib="$build/libmeshward_core.a"
if [ ! -f "$lib" ]; then
  echo "FAIL: $lib not found"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -f /usr/include/http_parser.h ]; then
  echo "FAIL: libhttp-parser-dev is not installed"
  echo "0 passed, 1 failed"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A sanitizer build of the library needs the sanitizer runtimes at link time.
san=()
if [ "$(nm "$lib" 2>/dev/null | grep -c __asan_report || true)" -gt 0 ]; then
  san=(-fsanitize=address,undefined)
fi
cc -std=gnu11 -O1 -g -Wall -Wextra "${san[@]}" -I"$MW_SOURCE_DIR/include" \
  "$MW_SOURCE_DIR/tests/integration/net_differential.c" "$lib" \
  -lhttp_parser -lssl -lcrypto -ljansson -lyaml -lev -lsqlite3 -ldl -lm -lpthread \
  -o "$work/net_differential" >"$work/cc.log" 2>&1 || {
  tail -20 "$work/cc.log"
  echo "FAIL: could not build the differential test"
  echo "0 passed, 1 failed"
  exit 1
}
"$work/net_differential"
