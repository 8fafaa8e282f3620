#!/usr/bin/env bash
# House-style gate (STYLE.md): banned functions and clang-format drift.
# Fails with the offending lines.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0

# 1. Banned functions. The compiler also poisons them in src/ (src/base/banned.h);
#    this grep covers tests, fuzz harnesses and benchmarks too.
banned='\b(strcpy|strcat|strncpy|sprintf|vsprintf|gets|strtok|atoi|sscanf)[[:space:]]*\('
hits=$(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^src/base/banned.h$' \
       | xargs -r grep -nE "$banned" || true)
if [ -n "$hits" ]; then
  echo "check-style: banned functions (see STYLE.md; use the replacements in meshward/base.h):"
  echo "$hits"
  status=1
fi

# 2. clang-format drift on every C file in the tree.
files=$(git ls-files -co --exclude-standard -- '*.c' '*.h')
if ! command -v clang-format >/dev/null; then
  echo "check-style: clang-format is not installed (run scripts/deps.sh)"
  exit 1
fi
drift=()
for f in $files; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    drift+=("$f")
  fi
done
if [ ${#drift[@]} -gt 0 ]; then
  echo "check-style: clang-format drift in: ${drift[*]}"
  echo "check-style: fix with: clang-format -i ${drift[*]}"
  status=1
fi

n=$(echo "$files" | wc -w)
if [ $status -eq 0 ]; then
  echo "check-style: $n files clean (banned functions, clang-format)"
fi
exit $status
