#!/usr/bin/env bash
# The observability profile: Prometheus' config is valid (promtool), every
# metric the Grafana dashboard queries exists in a live reservd's /metrics
# after a little traffic, the queries parse as PromQL, and compose's
# `observability` profile has both services.
#   observability_test.sh SOURCE_DIR RESERVD_BIN     (needs RESERVD_TEST_ADMIN_URL)
set -uo pipefail
src=${1:?source dir}
bin=${2:?reservd binary}
here=$(cd "$(dirname "$0")" && pwd)
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
. "$src/scripts/lib.sh"
. "$src/tests/support/start_reservd.sh"
ensure_packages prometheus python3   # promtool

db=reservd_observability_$$
url="${admin%/*}/$db"
work=$(mktemp -d)
. "$src/tests/support/checks.sh"
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

dash=$src/deploy/grafana/reservd.json
sources=$src/deploy/grafana/provisioning/datasources/prometheus.yml

# --- Prometheus' config --------------------------------------------------------
check "promtool check config deploy/prometheus/prometheus.yml" \
    promtool check config "$src/deploy/prometheus/prometheus.yml"

# --- a live reservd with a little traffic ----------------------------------------
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
start_reservd "$bin" "$url" "$work/log" || { cat "$work/log"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
base=http://127.0.0.1:$port
post() { curl -s -o /dev/null -w '%{http_code}' -XPOST "$base$1" -H "$auth_header" -H 'content-type: application/json' -d "$2"; }
traffic=$(
    post /users '{"name":"Ada","email":"ada@example.com"}'
    post /users '{"name":"Bob","email":"bob@example.com"}'
    post /events '{"name":"Launch","date":"2026-12-31T20:00:00Z","location":"Hall","maxTickets":1}'
    post /reservations '{"eventId":1,"userId":1}'     # granted
    post /reservations '{"eventId":1,"userId":1}'     # already_reserved
    post /reservations '{"eventId":1,"userId":2}'     # sold_out
    curl -s -o /dev/null -w '%{http_code}' -XDELETE -H "$auth_header" "$base/reservations/1"
    curl -s -o /dev/null -w '%{http_code}' "$base/events?limit=5"
)
check "traffic answered 201 201 201 201 409 409 200 200 (got: $traffic)" \
    [ "$traffic" = "201201201201409409200200" ]
curl -fsS -o "$work/metrics.txt" -H "$auth_header" "$base/metrics" || fail "GET /metrics"

# --- the dashboard against /metrics -------------------------------------------
check "every metric the dashboard queries is in /metrics" \
    python3 "$here/check_dashboard.py" "$dash" "$work/metrics.txt" "$sources" --rules-out "$work/rules.yml"
check "promtool check rules: every dashboard query parses as PromQL" \
    promtool check rules "$work/rules.yml"
# The check must bite: the same dashboard with one metric misspelt fails.
sed 's/reservd_db_pool_waiting/reservd_db_pool_waitin/' "$dash" >"$work/broken.json"
if python3 "$here/check_dashboard.py" "$work/broken.json" "$work/metrics.txt" "$sources" >"$work/broken.out"; then
    fail "a misspelt metric went unnoticed"
else
    check "a misspelt metric is caught" grep -q "metric reservd_db_pool_waitin is not in" "$work/broken.out"
fi

# --- compose: the observability profile --------------------------------------------
compose=()
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then compose=(docker compose)
elif command -v docker-compose >/dev/null; then compose=(docker-compose); fi
if [ ${#compose[@]} -eq 0 ]; then
    echo "SKIP: compose profile: neither 'docker compose' nor docker-compose is installed"
else
    f=$src/docker-compose.yml
    check "${compose[*]} config -q" "${compose[@]}" -f "$f" config -q
    if "${compose[@]}" -f "$f" --profile observability config >"$work/compose.yml" 2>"$work/compose.err"; then
        services=$("${compose[@]}" -f "$f" --profile observability config --services | sort | tr '\n' ' ')
        check "profile observability has prometheus and grafana (services: $services)" \
            grep -qE 'grafana .*prometheus ' <<<"$services"
        # every file the profile mounts exists in the checkout
        mounts=$(sed -n 's#^ *- \(/[^:]*\):/etc/prometheus.*#\1#p; s#^ *- \(/[^:]*\):/etc/grafana.*#\1#p;
                          s#^ *- \(/[^:]*\):/var/lib/grafana.*#\1#p' "$work/compose.yml")
        check "the profile mounts $(wc -w <<<"$mounts") files or folders, all present" \
            bash -c '[ "$#" -ge 3 ] && for m; do [ -e "$m" ] || { echo "missing: $m"; exit 1; }; done' _ $mounts
    else
        fail "${compose[*]} --profile observability config: $(cat "$work/compose.err")"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
