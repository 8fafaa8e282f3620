#!/usr/bin/env bash
# The ban on unbounded string functions (STYLE.md) must hold at two levels:
# the compiler poisons them in src/ (src/base/banned.h), and check-style.sh
# catches them anywhere in the tree. Both must refuse a real use.
set -euo pipefail
root=${MW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() { if "$@"; then passed=$((passed + 1)); else echo "FAIL: $*"; failed=$((failed + 1)); fi; }

for fn in strcpy strcat strncpy sprintf vsprintf gets strtok atoi sscanf; do
  cat >"$tmp/t.c" <<C
#include <stdarg.h>
void f(char *d, const char *s, va_list ap);
void f(char *d, const char *s, va_list ap) { (void)ap; (void)d; (void)s; (void)$fn; }
C
  if cc -c -include "$root/src/base/banned.h" "$tmp/t.c" -o "$tmp/t.o" 2>"$tmp/err"; then
    echo "FAIL: $fn compiled despite banned.h"
    failed=$((failed + 1))
  elif grep -q "poisoned" "$tmp/err"; then
    passed=$((passed + 1))
  else
    echo "FAIL: $fn rejected, but not as poisoned:"; cat "$tmp/err"
    failed=$((failed + 1))
  fi
done

# A clean file compiles with the header.
printf '#include <string.h>\nsize_t g(const char *s);\nsize_t g(const char *s) { return strlen(s); }\n' >"$tmp/ok.c"
check cc -c -include "$root/src/base/banned.h" "$tmp/ok.c" -o "$tmp/ok.o"

# check-style.sh finds a banned call in a copy of the tree.
git -C "$root" ls-files -co --exclude-standard -- 'src/base/*' 'scripts/*' '.clang-format' \
  | (cd "$root" && xargs cp --parents -t "$tmp")
(cd "$tmp" && git init -q && printf 'void h(char *d) { strcpy(d, "x"); }\n' >src/base/bad.c && git add -A >/dev/null)
if (cd "$tmp" && bash scripts/check-style.sh >"$tmp/out" 2>&1); then
  echo "FAIL: check-style.sh passed a tree with strcpy"; failed=$((failed + 1))
else
  check grep -q "src/base/bad.c:1" "$tmp/out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
