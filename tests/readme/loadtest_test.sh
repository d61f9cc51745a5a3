#!/usr/bin/env bash
# The README's load-test steps, run as written: the first ```sh block of its
# "## Load testing" section, against scripts/run.sh, on a database that
# already holds other users (with gaps in their ids from failed inserts),
# events and reservations (the README's own curl examples, and more). It
# must give exactly 100 tickets (201) and 9,900 sold_out (409), twice in a
# row; then `scripts/pg.sh reset` empties the database.
#   tests/readme/loadtest_test.sh      (needs RESERVD_TEST_ADMIN_URL: scripts/test.sh sets it)
# The only change made to the README's commands: port 3001 becomes a free
# one (other servers may run on this machine). scripts/run.sh serves a
# throwaway database (RESERVD_DB) on the test cluster (RESERVD_PG_PORT).
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

# The test cluster is the scripts' private one: reuse its port.
[[ $admin =~ ^postgres(ql)?://[^@]*@127\.0\.0\.1:([0-9]+)/ ]] || { bad "RESERVD_TEST_ADMIN_URL is not a private cluster URL: $admin"; finish; }
export RESERVD_PG_PORT=${BASH_REMATCH[2]}
export RESERVD_DB=reservd_readme_$$
unset DATABASE_URL
work=$(mktemp -d)
cleanup() {
    [ -n "${pgid:-}" ] && kill -TERM -- "-$pgid" 2>/dev/null && wait "$pgid" 2>/dev/null
    psql "$admin" -Xqc "DROP DATABASE IF EXISTS $RESERVD_DB WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# A ```sh block of README.md: the first one after the line matching $1.
readme_block() {
    awk -v start="$1" '
        index($0, start) == 1 { found = 1; next }
        found && /^```sh/ { inside = 1; next }
        inside && /^```/ { exit }
        inside { print }
    ' "$repo/README.md"
}
readme_block '## Load testing' >"$work/loadtest.sh"
readme_block 'reservd is a multi-threaded' >"$work/examples.sh"
if grep -q 'reservd-load spike' "$work/loadtest.sh" && grep -q 'curl' "$work/examples.sh"; then
    ok "found the load-test block ($(wc -l <"$work/loadtest.sh") lines) and the curl examples in README.md"
else
    bad "README.md: no load-test block with 'reservd-load spike', or no curl examples"; finish
fi

# --- the server, as the README starts it ---------------------------------------
for _ in 1 2 3 4 5; do
    port=$((10000 + RANDOM % 20000))
    ss -ltn 2>/dev/null | grep -q ":$port " || break
done
# its own process group, so that the build or the server can be stopped whole
(cd "$repo" && SERVICE_PORT=$port exec setsid scripts/run.sh --log-level warn --bind 127.0.0.1) \
    >"$work/server.log" 2>&1 &
pgid=$!
live=0
for _ in $(seq 1200); do   # the first run builds build/release
    curl -fs "http://127.0.0.1:$port/livez" >/dev/null && { live=1; break; }
    kill -0 "$pgid" 2>/dev/null || break
    sleep 0.25
done
if [ "$live" = 1 ]; then ok "scripts/run.sh serves on 127.0.0.1:$port"
else bad "scripts/run.sh did not start:"; tail -n 30 "$work/server.log"; finish; fi
if grep -q "DATABASE_URL=postgresql://postgres@127.0.0.1:$RESERVD_PG_PORT/$RESERVD_DB" "$work/server.log"; then
    ok "scripts/run.sh prints the DATABASE_URL it serves"
else bad "scripts/run.sh does not print its DATABASE_URL:"; cat "$work/server.log"; fi

on_port() { sed -E "s/(localhost|127\.0\.0\.1):3001\b/\1:$port/g" "$1"; }

# --- a database that is not empty -------------------------------------------------
on_port "$work/examples.sh" | (cd "$repo" && bash -e) >"$work/examples.out" 2>&1
if [ "$(grep -o '"id"' "$work/examples.out" | wc -l)" -ge 4 ]; then ok "ran the README's curl examples"
else bad "the README's curl examples failed:"; cat "$work/examples.out"; fi
admin_auth="authorization: Bearer $(cat "$repo/.data/admin-token")"   # scripts/run.sh made it
api() { curl -s -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:$port$2" -H "$admin_auth" -H 'content-type: application/json' ${3:+-d "$3"}; }
extra=""
for i in 1 2 3; do   # a failed insert still takes an id: gaps
    extra+=" $(api POST /users '{"name":"Ada","email":"ada@example.com"}')"
    extra+=" $(api POST /users "{\"name\":\"Other $i\",\"email\":\"other$i@example.com\"}")"
done
extra+=" $(api POST /reservations '{"eventId":1,"userId":1}')"
extra+=" $(api POST /events '{"name":"Other","date":"2026-12-31T20:00:00Z","location":"Hall","maxTickets":5}')"
if [ "$extra" = " 409 201 409 201 409 201 201 201" ]; then ok "more users (with gaps), an event, a reservation:$extra"
else bad "setting up the prior state answered:$extra"; fi

# --- the README's block, twice ------------------------------------------------------
run_block() { # NAME
    on_port "$work/loadtest.sh" >"$work/run.sh"
    printf '\necho "RESULT USER_START=$USER_START USER_COUNT=$USER_COUNT EVENT_ID=$EVENT_ID"\n' >>"$work/run.sh"
    (cd "$repo" && bash -euo pipefail "$work/run.sh") >"$work/$1.out" 2>&1
    local rc=$? out; out=$(cat "$work/$1.out")
    local vars; vars=$(sed -n 's/^RESULT //p' "$work/$1.out")
    eval "$vars"
    if [ "$rc" = 0 ]; then ok "$1: the block exits 0 ($vars)"; else bad "$1: the block exited $rc:"; sed 's/^/    /' "$work/$1.out"; fi
    if grep -qE '^status +201: 100, 409: 9900$' <<<"$out"; then ok "$1: exactly 201: 100, 409: 9900"
    else bad "$1: status line: $(grep '^status' <<<"$out")"; fi
    if grep -qE '^verify: [0-9]+ passed, 0 failed$' <<<"$out"; then ok "$1: --verify passed"
    else bad "$1: --verify: $(grep '^verify' <<<"$out")"; fi
    local active
    active=$(psql "postgresql://postgres@127.0.0.1:$RESERVD_PG_PORT/$RESERVD_DB" -XtAc \
        "SELECT count(*) FROM reservations WHERE event_id = ${EVENT_ID:-0} AND status = 'RESERVED'")
    if [ "$active" = 100 ]; then ok "$1: the database holds 100 reservations for event $EVENT_ID"
    else bad "$1: the database holds '$active' reservations for event ${EVENT_ID:-?}"; fi
}
run_block "first run"
first_start=${USER_START:-}
# the ids the README used to assume (1..10000) are not the seeded ones here
if [ -n "$first_start" ] && [ "$first_start" != 1 ]; then ok "first run: the seeded users start at id $first_start, not 1"
else bad "first run: the prior state did not shift the user ids (USER_START=$first_start)"; fi
run_block "second run"

# --- reset ------------------------------------------------------------------------------
if (cd "$repo" && scripts/pg.sh reset) >"$work/reset.out" 2>&1; then bad "scripts/pg.sh reset succeeded while the server is connected"
elif grep -q "stop what is connected" "$work/reset.out"; then ok "scripts/pg.sh reset refuses while the server runs"
else bad "scripts/pg.sh reset failed without saying why: $(cat "$work/reset.out")"; fi
kill -TERM -- "-$pgid"
wait "$pgid"
rc=$?
pgid=
if [ "$rc" = 0 ]; then ok "the server exits 0 on SIGTERM"; else bad "the server exited $rc"; fi
if (cd "$repo" && scripts/pg.sh reset) >"$work/reset.out" 2>&1 &&
    [ "$(psql "$(cd "$repo" && scripts/pg.sh db-url)" -XtAc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ]; then
    ok "scripts/pg.sh reset empties the database"
else bad "scripts/pg.sh reset: $(cat "$work/reset.out")"; fi
finish
