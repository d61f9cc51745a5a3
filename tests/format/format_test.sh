#!/usr/bin/env bash
# Every C file in the tree is as clang-format (.clang-format) would write it.
# Usage: format_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then echo "FAIL: clang-format not installed (scripts/test.sh installs it)"; exit 1; fi
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^third_party/' ||
                     find src include tests -name '*.c' -o -name '*.h')
bad=0
for f in "${files[@]}"; do
    if ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "FAIL: $f is not formatted (run: $cf -i $f)"
        bad=$((bad + 1))
    fi
done
echo "${#files[@]} files checked, $bad not formatted"
[ "$bad" -eq 0 ]
