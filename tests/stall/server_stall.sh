#!/usr/bin/env bash
# The stall test on the real server: reservd with --reservation-strategy
# batch on a fresh database, then STALL_RUNS runs of STALL_SECONDS seconds of
# STALL_CONNECTIONS keep-alive connections reserving on one hot event (a
# fresh event per run), each request limited to 4 s. Every run must see zero
# timeouts and zero transport errors (docs/libmicrohttpd-epoll-stall.md).
#   server_stall.sh RESERVD_BIN RESERVD_LOAD_BIN RESERVD_SEED_BIN   (needs RESERVD_TEST_ADMIN_URL)
# Environment: STALL_RUNS (6), STALL_SECONDS (8), STALL_CONNECTIONS (256),
# STALL_HTTP_THREADS (2), STALL_USERS (300000); extra reservd flags in
# STALL_RESERVD_ARGS.
set -uo pipefail
. "$(dirname "$0")/../support/start_reservd.sh"
bin=${1:?reservd binary}
load=${2:?reservd-load binary}
seed=${3:?reservd-seed binary}
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
runs=${STALL_RUNS:-6} secs=${STALL_SECONDS:-8} conns=${STALL_CONNECTIONS:-256}
threads=${STALL_HTTP_THREADS:-2} users=${STALL_USERS:-300000}
db=reservd_stall_$$
url="${admin%/*}/$db"
work=$(mktemp -d)
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
# each connection is a descriptor on both sides
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

psql "$admin" -qc "CREATE DATABASE $db" >/dev/null || exit 1
# shellcheck disable=SC2086
start_reservd "$bin" "$url" "$work/log" \
    --reservation-strategy batch --http-threads "$threads" ${STALL_RESERVD_ARGS:-} || { cat "$work/log"; echo "reservd did not start"; exit 1; }
# reservd has migrated the empty database: now the users
"$seed" --count "$users" --database-url "$url" >/dev/null || { echo "reservd-seed failed"; exit 1; }

failed=0
for r in $(seq "$runs"); do
    event=$("$seed" --events --tickets 10000000 --count 1 --database-url "$url") ||
        { echo "cannot create an event"; exit 1; }
    "$load" steady -c "$conns" -d "$secs" --request-timeout 4 --timeout $((secs + 30)) \
        --scenario reserve --event "$event" --user-start 1 --json \
        "http://127.0.0.1:$port" >"$work/run$r.json" 2>"$work/run$r.err"
    line=$(python3 - "$work/run$r.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
kinds = r.get("transport_error_kinds") or {}
timeouts = sum(v for k, v in kinds.items() if "timeout" in k)
print(r["requests"], r.get("responses", r["requests"] - r["transport_errors"]),
      timeouts, r["transport_errors"], json.dumps(r.get("status") or {}, separators=(",", ":")),
      json.dumps(kinds, separators=(",", ":")))
EOF
    ) || { echo "run $r: no result"; cat "$work/run$r.err"; failed=$((failed + 1)); continue; }
    read -r requests responses timeouts errors statuses kinds <<<"$line"
    verdict=ok
    if [ "$timeouts" != 0 ] || [ "$errors" != 0 ]; then verdict=FAILED; failed=$((failed + 1)); fi
    echo "run $r/$runs: $requests requests, $responses answered, $timeouts timeouts," \
        "$errors transport errors $kinds, statuses $statuses: $verdict"
    if [ "$verdict" != ok ]; then
        python3 -c 'import json, sys; print("  latency_ms", json.load(open(sys.argv[1]))["latency_ms"])' \
            "$work/run$r.json"
        echo "  reservd's log (last lines):"; tail -n 15 "$work/log" | sed 's/^/  /'
    fi
done
kill -0 "$pid" 2>/dev/null || { echo "reservd died"; cat "$work/log"; exit 1; }
echo "$runs runs, $failed failed"
[ "$failed" = 0 ]
