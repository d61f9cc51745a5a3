#!/usr/bin/env bash
# Validate an OpenAPI document with swagger-parser plus the project's conventions.
#   tests/openapi/validate.sh docs/openapi.json
#   tests/openapi/validate.sh http://127.0.0.1:3001/api/openapi.json
# Installs the locked dependencies (npm ci) on first use. Prints one summary
# line; exits non-zero on any error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:?usage: $0 FILE_OR_URL}

if [ ! -d "$here/node_modules/@apidevtools/swagger-parser" ]; then
    log=$(mktemp)
    if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "openapi: FAILED: npm ci in $here"
        exit 1
    fi
    rm -f "$log"
fi

case "$src" in
    http://* | https://*)
        tmp=$(mktemp --suffix=.json)
        trap 'rm -f "$tmp"' EXIT
        if ! curl -fsS --max-time 30 -o "$tmp" "$src"; then
            echo "openapi: FAILED: could not fetch $src"
            exit 1
        fi
        file=$tmp
        ;;
    *) file=$src ;;
esac

node "$here/validate.js" "$file" | sed "s|$file|$src|"
exit "${PIPESTATUS[0]}"
