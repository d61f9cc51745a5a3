#!/usr/bin/env bash
# Swagger UI at /api, as served and in a real browser:
#  - the vendored files match third_party/swagger-ui/SHA256SUMS and the page
#    asks for the vendored version;
#  - reservd serves each docs file byte for byte, with its Content-Type,
#    Cache-Control, and a Content-Security-Policy on the page;
#  - headless Chromium (Debian's) loads /api: operations listed, "Try it out"
#    on GET /events shows 200 (api_page.js, puppeteer-core from the npm
#    registry, locked in package-lock.json, installed with npm ci into the
#    build tree).
#   browser_test.sh SOURCE_DIR RESERVD_BIN WORK_DIR   (needs RESERVD_TEST_ADMIN_URL)
# Screenshots and logs stay in WORK_DIR/logs. Ends with "N passed, N failed".
set -uo pipefail
src=${1:?source dir}
bin=${2:?reservd binary}
work=${3:?work dir (in the build tree)}
here=$(cd "$(dirname "$0")" && pwd)
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
. "$src/scripts/lib.sh"
. "$src/tests/support/start_reservd.sh"
# Node and npm are the machine's when present (another Node.js install may
# provide them); Debian's packages otherwise.
extra=(chromium)
command -v node >/dev/null || extra+=(nodejs)
command -v npm >/dev/null || extra+=(npm)
ensure_packages "${extra[@]}"
# Under ASan the server is several times slower: wait longer there.
timeout_ms=${BROWSER_TIMEOUT_MS:-120000}

logs=$work/logs
rm -rf "$logs"
mkdir -p "$logs"
db=reservd_browser_$$
url="${admin%/*}/$db"
. "$src/tests/support/checks.sh"
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

# --- the vendored files ---------------------------------------------------------
vendor=$src/third_party/swagger-ui
check "third_party/swagger-ui matches its SHA256SUMS" \
    bash -c 'cd "$1" && sha256sum --quiet -c SHA256SUMS' _ "$vendor"
version=$(cat "$vendor/VERSION")
asked=$(grep -oE '\?v=[0-9][0-9A-Za-z.+-]*' "$src/docs/api.html" | sort -u | tr '\n' ' ')
check "docs/api.html asks for Swagger UI $version (asks: $asked)" [ "$asked" = "?v=$version " ]

# --- node modules, locked, in the build tree ---------------------------------------
node_dir=$work/node
stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
if [ "$(cat "$node_dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
    if (cd "$node_dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
        >"$logs/npm-ci.log" 2>&1; then
        echo "$stamp" >"$node_dir/.stamp"
    else
        cat "$logs/npm-ci.log"
        fail "npm ci in $node_dir"
        finish
    fi
fi

# --- a reservd with one event ---------------------------------------------------------
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null || { fail "CREATE DATABASE $db"; finish; }
start_reservd "$bin" "$url" "$logs/reservd.log" || { cat "$logs/reservd.log"; fail "reservd did not start"; finish; }
base=http://127.0.0.1:$port
curl -fsS -o /dev/null -XPOST "$base/events" -H "$auth_header" -H 'content-type: application/json' \
    -d '{"name":"Launch","date":"2026-12-31T20:00:00Z","location":"Hall","maxTickets":100}' \
    || fail "POST /events"

# --- each docs file as served ----------------------------------------------------------
# served PATH FILE TYPE CACHE: the body is FILE byte for byte, with its headers.
served() {
    local path=$1 file=$2 type=$3 cache=$4 name
    name=$(basename "$file")
    if ! curl -fsS -D "$logs/$name.headers" -o "$logs/$name.body" "$base$path"; then
        fail "GET $path"
        return
    fi
    check "GET $path is $file byte for byte" cmp -s "$logs/$name.body" "$file"
    check "GET $path: Content-Type $type" grep -qix "content-type: $type"$'\r' "$logs/$name.headers"
    check "GET $path: Cache-Control $cache" grep -qix "cache-control: $cache"$'\r' "$logs/$name.headers"
}
served /api "$src/docs/api.html" "text/html; charset=utf-8" "no-cache"
served /api/swagger-initializer.js "$src/docs/swagger-initializer.js" "text/javascript; charset=utf-8" "no-cache"
served /api/swagger-ui.css "$vendor/swagger-ui.css" "text/css; charset=utf-8" "public, max-age=86400"
served "/api/swagger-ui-bundle.js?v=$version" "$vendor/swagger-ui-bundle.js" "text/javascript; charset=utf-8" \
    "public, max-age=86400"
check "GET /api: a Content-Security-Policy without inline scripts" \
    grep -qiE "^content-security-policy: default-src 'self';" "$logs/api.html.headers"
curl -fsS -o "$logs/openapi.json" "$base/api/openapi.json" || fail "GET /api/openapi.json"
check "GET /api/openapi.json: its server URL is \"/\" (\"Try it out\" calls this server)" \
    node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
             process.exit(d.servers.length === 1 && d.servers[0].url === "/" ? 0 : 1)' <"$logs/openapi.json"

# --- the page in Chromium ----------------------------------------------------------------
chromium=/usr/lib/chromium/chromium   # the binary itself, not Debian's wrapper script
[ -x "$chromium" ] || chromium=$(command -v chromium)
if NODE_PATH=$node_dir/node_modules node "$here/api_page.js" "$base" "$logs" "$chromium" "$timeout_ms" \
    >"$logs/browser.log" 2>&1; then
    pass "headless Chromium: Swagger UI lists the operations and \"Try it out\" on GET /events shows 200"
else
    fail "headless Chromium (log: $logs/browser.log)"
fi
sed 's/^/    /' "$logs/browser.log"
grep -E '^ *(error|fatal) ' "$logs/reservd.log" | head -n 5
finish
