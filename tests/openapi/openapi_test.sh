#!/usr/bin/env bash
# The API document as served: start reservd on a fresh database, fetch
# /api/openapi.json, validate it (swagger-parser) and compare its routes
# with the server's route table.
#   openapi_test.sh RESERVD_BIN DUMP_ROUTES_BIN     (needs RESERVD_TEST_ADMIN_URL)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/start_reservd.sh"
bin=${1:?reservd binary}
dump=${2:?dump_routes binary}
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
db=reservd_openapi_$$
url="${admin%/*}/$db"
work=$(mktemp -d)
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $*"; fi; }
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

psql "$admin" -qc "CREATE DATABASE $db" >/dev/null || exit 1
start_reservd "$bin" "$url" "$work/log" || { cat "$work/log"; echo "0 passed, 1 failed"; exit 1; }
check curl -fsS -o "$work/openapi.json" "http://127.0.0.1:$port/api/openapi.json"
check bash "$here/validate.sh" "$work/openapi.json"
"$dump" >"$work/routes.txt"
check node "$here/routes.js" "$work/openapi.json" "$work/routes.txt"
html_type=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$port/api")
check [ "$html_type" = "text/html; charset=utf-8" ]
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
