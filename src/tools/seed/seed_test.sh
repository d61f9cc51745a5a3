#!/usr/bin/env bash
# Integration test for reservd-seed, against throwaway databases.
#   seed_test.sh PATH/TO/reservd-seed PATH/TO/sql/migrations/0001_initial.sql
# Needs RESERVD_TEST_ADMIN_URL: a postgresql:// URL of a role that may
# create databases (scripts/test.sh sets it to the private cluster).
set -uo pipefail

SEED=${1:?usage: seed_test.sh SEED_BINARY SCHEMA_SQL}
SCHEMA=${2:?usage: seed_test.sh SEED_BINARY SCHEMA_SQL}
ADMIN=${RESERVD_TEST_ADMIN_URL:-}

die() { echo "seed_test: $*" >&2; exit 1; }
[ -n "$ADMIN" ] || die "RESERVD_TEST_ADMIN_URL is not set; export e.g." \
    "RESERVD_TEST_ADMIN_URL=postgresql://postgres@127.0.0.1:25432/postgres (scripts/test.sh does)"
case $ADMIN in postgres://* | postgresql://*) ;; *) die "RESERVD_TEST_ADMIN_URL must be a postgresql:// URL" ;; esac
command -v psql >/dev/null || die "psql not found"
[ -x "$SEED" ] || die "not an executable: $SEED"
[ -r "$SCHEMA" ] || die "cannot read $SCHEMA"

DB=reservd_seed_test_$$
DB2=reservd_seed_test_$$_b
TMP=$(mktemp -d) || die "mktemp failed"

# The admin URL with its database name replaced (query parameters kept).
db_url() {
    local scheme=${ADMIN%%://*} rest=${ADMIN#*://} query=
    case $rest in *\?*) query="?${rest#*\?}"; rest=${rest%%\?*} ;; esac
    printf '%s://%s/%s%s\n' "$scheme" "${rest%%/*}" "$1" "$query"
}
URL=$(db_url "$DB")
URL2=$(db_url "$DB2")

admin() { psql "$ADMIN" -Xq -v ON_ERROR_STOP=1 "$@"; }
q() { psql "$URL" -XqtA -v ON_ERROR_STOP=1 -c "$1"; }
q2() { psql "$URL2" -XqtA -v ON_ERROR_STOP=1 -c "$1"; }

cleanup() {
    [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
    admin -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "DROP DATABASE IF EXISTS \"$DB2\" WITH (FORCE)"
    rm -rf "$TMP"
}
trap cleanup EXIT

admin -c "CREATE DATABASE \"$DB\"" -c "CREATE DATABASE \"$DB2\"" || die "cannot create the test databases"
psql "$URL" -Xq -v ON_ERROR_STOP=1 -f "$SCHEMA" >/dev/null || die "cannot apply $SCHEMA"

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); }
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL: $*" >&2
    echo "      rc=$RC stdout=[$OUT] stderr=[$(head -c 600 "$TMP/err")]" >&2
}

# run ARGS...: sets RC and OUT (stdout); stderr is in $TMP/err.
run() {
    OUT=$(timeout 120 "$SEED" "$@" 2>"$TMP/err")
    RC=$?
}

expect_rc() { # NAME WANT
    if [ "$RC" = "$2" ]; then ok; else bad "$1: exit status $RC, want $2"; fi
}
expect_eq() { # NAME WANT GOT
    if [ "$3" = "$2" ]; then ok; else bad "$1: got [$3], want [$2]"; fi
}
expect_match() { # NAME REGEX TEXT
    if [[ $3 =~ $2 ]]; then ok; else bad "$1: [$3] does not match /$2/"; fi
}
err() { cat "$TMP/err"; }

# --- arguments -------------------------------------------------------------
run --help
expect_rc "--help" 0
expect_match "--help prints usage" "^usage: reservd-seed" "$OUT"

run
expect_rc "no arguments" 2
expect_match "no arguments prints usage" "usage: reservd-seed" "$(err)"

for args in "--bogus" "--count" "--count abc" "--count 0" "--count -5" "--count 5 extra" \
    "--count 5 --prefix a/b" "--count 5 --tickets 3" "--events" "--events --tickets 10000001" \
    "--events --tickets 3 --prefix p" "--events --tickets 3 --count 100001"; do
    # shellcheck disable=SC2086  # word splitting is the point here
    run $args --database-url "$URL"
    expect_rc "bad arguments: $args" 2
done

OUT=$(env -u DATABASE_URL timeout 60 "$SEED" --count 5 2>"$TMP/err")
RC=$?
expect_rc "no database URL" 2
expect_match "no database URL says so" "DATABASE_URL" "$(err)"

# --- database failures -----------------------------------------------------
run --count 5 --database-url "postgresql://postgres@127.0.0.1:1/nope?connect_timeout=5"
expect_rc "unreachable database" 1
expect_match "unreachable database message" "cannot connect" "$(err)"

run --count 5 --database-url "$URL2"
expect_rc "missing schema" 1
expect_match "missing schema message" 'table "users" does not exist.*start reservd' "$(err)"

run --count 5 --database-url "$URL2" --schema "$TMP/no-such-file.sql"
expect_rc "unreadable --schema" 1

run --count 5 --database-url "$URL2" --schema "$SCHEMA"
expect_rc "--schema applies the schema" 0
expect_eq "--schema then seed: users" 5 "$(q2 'SELECT count(*) FROM users')"

# --- users -----------------------------------------------------------------
run --count 5000 --database-url "$URL"
expect_rc "seed 5000" 0
expect_match "seed 5000 summary" '^seeded 5000 users \(5000 new, 0 existing\) in [0-9.]+ s, [0-9]+ rows/s$' "$OUT"
expect_eq "5000 users" 5000 "$(q 'SELECT count(*) FROM users')"
expect_eq "first user" "User1|user1@example.com" "$(q 'SELECT name, email FROM users ORDER BY id LIMIT 1')"
expect_eq "last user" "User5000|user5000@example.com" "$(q 'SELECT name, email FROM users ORDER BY id DESC LIMIT 1')"
expect_eq "users 1..5000" 5000 \
    "$(q "SELECT count(*) FROM generate_series(1, 5000) g JOIN users u ON u.email = 'user' || g || '@example.com' AND u.name = 'User' || g")"

run --count 5000 --database-url "$URL"
expect_rc "seed 5000 again" 0
expect_match "second run adds nothing" '^seeded 5000 users \(0 new, 5000 existing\)' "$OUT"
expect_eq "still 5000 users" 5000 "$(q 'SELECT count(*) FROM users')"

# Existing emails are matched case-insensitively (the lower(email) index).
q "INSERT INTO users (name, email) VALUES ('Shouty', 'USER5001@EXAMPLE.COM')" >/dev/null
run --count 5002 --database-url "$URL"
expect_rc "seed 5002 over 5001" 0
expect_match "case-insensitive conflicts" '\(1 new, 5001 existing\)' "$OUT"
expect_eq "5002 users" 5002 "$(q 'SELECT count(*) FROM users')"

OUT=$(DATABASE_URL=$URL timeout 60 "$SEED" --count 3 --prefix tester 2>"$TMP/err")
RC=$?
expect_rc "DATABASE_URL and --prefix" 0
expect_match "--prefix summary" '\(3 new, 0 existing\)' "$OUT"
expect_eq "--prefix capitalises the name" "Tester2" "$(q "SELECT name FROM users WHERE email = 'tester2@example.com'")"

# A conflicting user that commits while the seeder copies into an empty
# table: the seeder must fall back to ON CONFLICT, not fail.
q2 "DELETE FROM users" >/dev/null
psql "$URL2" -Xq -c "BEGIN" -c "INSERT INTO users (name, email) VALUES ('Early', 'User40@Example.com')" \
    -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null 2>&1 &
SLEEPER=$!
for _ in $(seq 100); do
    [ "$(q2 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(3)%'")" = 1 ] && break
    sleep 0.1
done
run --count 100 --database-url "$URL2"
wait "$SLEEPER"
SLEEPER=
expect_rc "concurrent conflicting insert" 0
expect_match "concurrent conflict counted as existing" '\(99 new, 1 existing\)' "$OUT"
expect_eq "concurrent conflict: 100 users" 100 "$(q2 'SELECT count(*) FROM users')"

# --- events ----------------------------------------------------------------
run --events --tickets 7 --database-url "$URL"
expect_rc "--events --tickets 7" 0
expect_match "--events prints one id" '^[0-9]+$' "$OUT"
if [[ $OUT =~ ^[0-9]+$ ]]; then
    expect_eq "event row" "7|0|Loadtest hall|t" "$(q "SELECT max_tickets, reserved_tickets, location,
        date BETWEEN now() + interval '29 days' AND now() + interval '31 days' FROM events WHERE id = $OUT")"
else
    bad "event row: no id to look up"
fi

run --events --tickets 3 --count 2 --event-name "Seed test" --database-url "$URL"
expect_rc "two named events" 0
expect_match "two ids, nothing else" $'^[0-9]+\n[0-9]+$' "$OUT"
if [[ $OUT =~ ^[0-9]+$'\n'[0-9]+$ ]]; then
    expect_eq "event names" "Seed test 1,Seed test 2" \
        "$(q "SELECT string_agg(name, ',' ORDER BY id) FROM events WHERE id IN (${OUT/$'\n'/,}) AND max_tickets = 3")"
else
    bad "event names: no ids to look up"
fi

run --events --tickets 3 --count 2 --event-name "Seed test" --database-url "$URL"
expect_rc "duplicate event names" 1
expect_eq "duplicate event names: no ids on stdout" "" "$OUT"
expect_match "duplicate event names: server message" "events_name_key" "$(err)"
expect_eq "no extra events" 3 "$(q 'SELECT count(*) FROM events')"

# --- --export: ids for a load test, from any starting state ------------------
# users: the seeded ones when they are one block of ids, as shell lines
q2 "DELETE FROM users" >/dev/null
q2 "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, 7)" >/dev/null   # gaps
OUT=$(timeout 60 "$SEED" --count 50 --database-url "$URL2" --export 2>"$TMP/err")
RC=$?
expect_rc "--export users" 0
expect_match "--export prints one export line" '^export USER_START=[0-9]+ USER_COUNT=50$' "$OUT"
expect_match "--export: the summary goes to stderr" '^seeded 50 users \(50 new' "$(err)"
eval "$OUT"
expect_eq "--export: USER_START is the first seeded user" "user1@example.com" \
    "$(q2 "SELECT email FROM users WHERE id = ${USER_START:-0}")"
expect_eq "--export: USER_START..+49 are the 50 seeded users" 50 \
    "$(q2 "SELECT count(*) FROM users WHERE id BETWEEN ${USER_START:-0} AND ${USER_START:-0} + 49 AND email LIKE 'user%'")"
# seeded users split by a gap, with no 80 consecutive ids anywhere: says how to get out
q2 "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, 3)" >/dev/null
run --count 80 --database-url "$URL2" --export
expect_rc "--export without 80 consecutive ids" 1
expect_match "... says to reset or use a new prefix" 'scripts/pg.sh reset.*--prefix' "$(err)"
expect_eq "... and prints no export line" "" "$OUT"
# split seeded users, but another block is long enough: that one is named
q2 "INSERT INTO users (name, email) SELECT 'Block' || g, 'block' || g || '@example.com' FROM generate_series(1, 100) g" >/dev/null
run --count 90 --database-url "$URL2" --export
expect_rc "--export with split seeded users and another block" 0
expect_match "... names another block" 'not one block' "$(err)"
eval "$OUT"
expect_eq "... of 90 existing consecutive ids" 90 \
    "$(q2 "SELECT count(*) FROM users WHERE id BETWEEN ${USER_START:-0} AND ${USER_START:-0} + 89")"
# events
run --events --tickets 100 --database-url "$URL" --export
expect_rc "--export one event" 0
expect_match "--export one event: EVENT_ID" '^export EVENT_ID=[0-9]+$' "$OUT"
eval "$OUT"
expect_eq "--export: EVENT_ID is the new 100-ticket event" "100|0" \
    "$(q "SELECT max_tickets, reserved_tickets FROM events WHERE id = ${EVENT_ID:-0}")"
run --events --tickets 5 --count 3 --database-url "$URL" --export
expect_match "--export three events: EVENT_ID and EVENT_COUNT" '^export EVENT_ID=[0-9]+ EVENT_COUNT=3$' "$OUT"

# --- progress: on a terminal only ------------------------------------------------
if command -v script >/dev/null; then
    # script(1) gives the seeder a terminal; its output is the terminal's
    TTY_OUT=$(timeout 120 script -qec "'$SEED' --count 150000 --prefix tty --database-url '$URL2'" /dev/null)
    expect_match "a terminal shows progress: rows, rate, ETA" \
        'copying [0-9]+/150000 rows \([0-9]+%\), [0-9]+ rows/s, ETA [0-9]+ s' "$TTY_OUT"
    expect_match "... then the summary" 'seeded 150000 users \(150000 new' "$TTY_OUT"
else
    bad "script(1) (bsdutils) is missing: cannot test the progress line"
fi
run --count 150000 --prefix piped --database-url "$URL2"
expect_rc "piped seeding" 0
expect_eq "piped: stderr stays quiet" "" "$(err)"

echo "seed_test: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
