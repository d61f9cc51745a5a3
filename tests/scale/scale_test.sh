#!/usr/bin/env bash
# Several instances on real engines (issue 15), all on loopback: the private
# PostgreSQL cluster, PgBouncer in transaction mode (deploy/pgbouncer.ini),
# HAProxy (deploy/haproxy.cfg), three reservd with --db-prepared off through
# PgBouncer. Checks, each against the database:
#   (a) a spike through HAProxy, 100 tickets, SCALE_SPIKE requests at once
#       (default 4000: HAProxy holds two descriptors a connection under a
#       20,000 hard limit), for each safe strategy: exactly 100 x 201, the
#       rest 409, the counter equals the active reservations;
#   (b) one instance SIGKILLed under reservation load: HAProxy marks it down
#       and sends it nothing more, every 201 any client got is in the
#       database, the others keep serving, the instance restarted rejoins;
#   (c) a rolling restart (SIGTERM one at a time, restart, wait for /readyz
#       and for HAProxy) under load: every 201 is in the database, no 5xx
#       but 503, every instance exits 0;
#   (d) holds and waiting-list offers processed exactly once across
#       instances: a marked place, for when issue 13 lands.
#   scale_test.sh REPO_ROOT RESERVD_BIN RESERVD_LOAD_BIN RESERVD_SEED_BIN
# Needs RESERVD_TEST_ADMIN_URL (scripts/test.sh) and Debian's pgbouncer and
# haproxy (scripts/test.sh installs them). Environment: SCALE_SPIKE (4000),
# SCALE_DB_PREPARED (off; "on" shows why off exists: PgBouncer hands the
# statements prepared on one server connection to the next client).
set -uo pipefail
root=$(cd "${1:?repository root}" && pwd)
bin=${2:?reservd binary} load=${3:?reservd-load binary} seed=${4:?reservd-seed binary}
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
spike=${SCALE_SPIKE:-4000} prepared=${SCALE_DB_PREPARED:-off}
# the cluster scripts/test.sh started: lib.sh's helpers need its port
hostport=${admin#*@}; hostport=${hostport%%/*}
export RESERVD_PG_PORT=${hostport##*:}
. "$root/scripts/lib.sh"
. "$root/tests/support/checks.sh"
for tool in pgbouncer haproxy; do
    [ -x "$(scale_bin "$tool")" ] || { echo "FAIL - $tool is not installed (scripts/test.sh installs it)"; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# access control stays on (--auth token): the instances share one admin
# token, which reservd-load sends
RESERVD_ADMIN_TOKENS="rsv_admin_scale_$$_${RANDOM}${RANDOM}${RANDOM}"
export RESERVD_ADMIN_TOKENS RESERVD_TOKEN=$RESERVD_ADMIN_TOKENS

db=reservd_scale_$$
direct="${admin%/*}/$db"
work=$(dirname "$(pg_datadir)")/scale-$$   # reachable by 'postgres' when root
logs=$(mktemp -d)
declare -a ports=() pids=()

stop_instances() {
    local i
    for i in "${!pids[@]}"; do
        [ -n "${pids[$i]}" ] && kill "${pids[$i]}" 2>/dev/null && wait "${pids[$i]}" 2>/dev/null
        pids[$i]=
    done
}
cleanup() {
    stop_instances
    scale_stop "$work"
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work" 2>/dev/null || pg_as rm -rf "$work"
    if [ -n "${SCALE_KEEP:-}" ]; then cp -r "$logs/." "$SCALE_KEEP/"; fi
    rm -rf "$logs"
}
trap cleanup EXIT
sql() { psql "$direct" -XtAqc "$1"; }

free_port() { # a port nothing listens on, below the ephemeral range
    local p
    while :; do
        p=$((10000 + RANDOM % 20000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# Instance i on ports[i] through PgBouncer.
launch_instance() {
    local i=$1 strategy=$2
    "$bin" --bind 127.0.0.1 --port "${ports[$i]}" --database-url "$pooled" --db-prepared "$prepared" \
        --reservation-strategy "$strategy" --pool-size 8 --log-level warn 2>>"$logs/reservd$i.log" &
    pids[$i]=$!
}
# 0 once instance i's /readyz answers 200.
await_instance() {
    local i=$1 n
    for n in $(seq 300); do
        curl -fs "http://127.0.0.1:${ports[$i]}/readyz" >/dev/null && return 0
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "instance $i did not become ready:"; tail -n 5 "$logs/reservd$i.log"
    return 1
}
start_instance() { launch_instance "$@" && await_instance "$1"; }

# HAProxy's view: "status stot" of server reservd<i+1>.
server_line() {
    curl -fs "http://127.0.0.1:$stats/stats;csv" |
        awk -F, -v s="reservd$(($1 + 1))" '$1 == "reservd" && $2 == s { print $18, $8 }'
}
# Wait up to $3 seconds for server $1's status to start with $2 (UP, DOWN).
wait_status() {
    local n
    for n in $(seq 0 $(($3 * 10))); do
        [[ $(server_line "$1") == "$2"* ]] && return 0
        [ "$n" -lt $(($3 * 10)) ] && sleep 0.1
    done
    return 1
}
all_up() { local i; for i in 0 1 2; do wait_status "$i" UP 15 || return 1; done; }

# The answers file's 201s that are not an active reservation of that user
# for event $2 (reservd-load --answers: "<user> <status> <reservation id>").
missing_acks() {
    local file=$1 event=$2
    awk '$2 == 201 { print $1 "," $3 }' "$file" >"$logs/acks.csv"
    psql "$direct" -XtAq -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE acks (user_id bigint, id bigint);
\copy acks FROM '$logs/acks.csv' WITH (FORMAT csv)
SELECT count(*) FROM acks a LEFT JOIN reservations r
    ON r.id = a.id AND r.user_id = a.user_id AND r.event_id = $event AND r.status = 'RESERVED'
WHERE r.id IS NULL;
SQL
}
counter_ok() { # the event's counter equals its active reservations
    [ "$(sql "SELECT e.reserved_tickets = (SELECT count(*) FROM reservations r WHERE r.event_id = e.id
              AND r.status = 'RESERVED') FROM events e WHERE e.id = $1")" = t ]
}
statuses() { # "201:N 409:N ..." of an answers file
    awk '{ n[$2]++ } END { for (s in n) printf "%s:%d ", s, n[s] }' "$1"
}
only_statuses() { # every status in the answers file is one of $2.. (0 = no answer)
    local file=$1; shift
    awk -v ok=" $* " '{ if (index(ok, " " $2 " ") == 0) bad++ } END { exit bad > 0 }' "$file"
}
new_event() { "$seed" --events --tickets "$1" --count 1 --database-url "$direct"; }
# steady SECONDS EVENT ANSWERS: 64 keep-alive clients through HAProxy, each
# request a different user (users 1.., at most all of them)
steady() {
    "$load" steady -c 64 -d "$1" -n "$nusers" --user-start 1 --event "$2" --scenario reserve \
        --request-timeout 20 --timeout $(($1 + 40)) --answers "$3" --json "http://127.0.0.1:$front" \
        >"$3.json" 2>"$3.err"
}

# --- the engines -----------------------------------------------------------------
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null || exit 1
bouncer=$(free_port) front=$(free_port) stats=$(free_port)
for i in 0 1 2; do ports[$i]=$(free_port); done
pooled="postgresql://postgres@127.0.0.1:$bouncer/$db"
check "PgBouncer starts from deploy/pgbouncer.ini, unprivileged" pgbouncer_start "$work" "$bouncer" "$db"
mode=$(psql "postgresql://postgres@127.0.0.1:$bouncer/pgbouncer" -XtAc "SHOW CONFIG" | awk -F'|' '$1 == "pool_mode" { print $2 }')
check "PgBouncer pools by transaction (pool_mode $mode)" test "$mode" = transaction
if [ "$(id -u)" -eq 0 ]; then
    owner=$(ps -o user= -p "$(cat "$work/pgbouncer.pid")")
    check "PgBouncer runs as $owner, not root" test "$owner" != root
fi
check "HAProxy starts from deploy/haproxy.cfg" haproxy_start "$work" "$front" "$stats" "${ports[@]}"
[ "$failed" -eq 0 ] || finish

# Three instances start at once on the empty database: the migrations run
# through PgBouncer, under their transaction-scoped lock.
for i in 0 1 2; do launch_instance "$i" for-update; done
ready=0
for i in 0 1 2; do await_instance "$i" && ready=$((ready + 1)); done
check "three instances migrate one empty database at once through PgBouncer ($ready ready)" test "$ready" = 3
check "the migrations were applied once each" \
    test "$(sql "SELECT count(*) = count(DISTINCT version) FROM schema_migrations")" = t
stop_instances
nusers=$((spike > 300000 ? spike : 300000))
"$seed" --count "$nusers" --database-url "$direct" >/dev/null || { fail "reservd-seed"; finish; }

# --- (a) the spike, per safe strategy ----------------------------------------------
for strategy in for-update batch atomic; do
    ok=1
    for i in 0 1 2; do start_instance "$i" "$strategy" || ok=0; done
    all_up || ok=0
    check "$strategy: three instances up behind HAProxy" test "$ok" = 1
    before=$(for i in 0 1 2; do server_line "$i" | cut -d' ' -f2; done)
    event=$(new_event 100)
    "$load" spike -n "$spike" --user-start 1 --event "$event" --scenario reserve --timeout 60 \
        --request-timeout 30 --answers "$logs/spike.txt" "http://127.0.0.1:$front" >"$logs/spike.out" 2>&1
    got=$(statuses "$logs/spike.txt")
    check "$strategy: $spike at once through HAProxy: 100 x 201, $((spike - 100)) x 409 ($got)" \
        test "$(awk '$2 == 201' "$logs/spike.txt" | wc -l),$(awk '$2 == 409' "$logs/spike.txt" | wc -l)" = "100,$((spike - 100))"
    check "$strategy: the counter is 100 and equals the active reservations" \
        test "$(sql "SELECT reserved_tickets FROM events WHERE id = $event")" = 100 -a "$(counter_ok "$event" && echo y)" = y
    check "$strategy: every 201 is that user's reservation in the database" test "$(missing_acks "$logs/spike.txt" "$event")" = 0
    after=$(for i in 0 1 2; do server_line "$i" | cut -d' ' -f2; done)
    share=$(paste -d' ' <(echo "$before") <(echo "$after") | awk '{ printf "%d ", $2 - $1 }')
    check "$strategy: HAProxy sent every instance a share (${share% })" \
        awk -v s="$share" 'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) if (a[i] < 1) exit 1 }'
    stop_instances
done

# --- (b) SIGKILL one instance under load ---------------------------------------------
for i in 0 1 2; do start_instance "$i" batch || fail "batch instance $i"; done
all_up || fail "instances up for the kill test"
event=$(new_event 10000000)
steady 8 "$event" "$logs/kill.txt" & loadpid=$!
sleep 3
kill -KILL "${pids[1]}"; wait "${pids[1]}" 2>/dev/null; pids[1]=
wait_status 1 DOWN 10
check "killed instance 2: HAProxy marks it DOWN ($(server_line 1))" wait_status 1 DOWN 0
sent=$(server_line 1 | cut -d' ' -f2)
wait "$loadpid"
after=$(server_line 1 | cut -d' ' -f2)
check "HAProxy sent the dead instance nothing after marking it down ($sent then $after connections)" test "$sent" = "$after"
check "every 201 a client got during the kill is in the database ($(statuses "$logs/kill.txt"))" \
    test "$(missing_acks "$logs/kill.txt" "$event")" = 0
check "the counter equals the active reservations after the kill" counter_ok "$event"
# while it is down: the other two serve, and nothing but 201
event=$(new_event 10000000)
steady 3 "$event" "$logs/down.txt"
check "with one instance dead the others serve: only 201 ($(statuses "$logs/down.txt"))" \
    test "$(awk '$2 == 201' "$logs/down.txt" | wc -l)" -gt 0 -a "$(only_statuses "$logs/down.txt" 201 && echo y)" = y
check "those 201s are in the database" test "$(missing_acks "$logs/down.txt" "$event")" = 0
start_instance 1 batch && wait_status 1 UP 15
check "the restarted instance is UP again in HAProxy ($(server_line 1))" wait_status 1 UP 0
before=$(server_line 1 | cut -d' ' -f2)
event=$(new_event 10000000)
steady 3 "$event" "$logs/rejoin.txt"
after=$(server_line 1 | cut -d' ' -f2)
check "the restarted instance serves again ($((after - before)) requests; $(statuses "$logs/rejoin.txt"))" \
    test "$after" -gt "$before" -a "$(only_statuses "$logs/rejoin.txt" 201 && echo y)" = y
check "the rejoined instance's 201s are in the database" test "$(missing_acks "$logs/rejoin.txt" "$event")" = 0

# --- (c) rolling restart under load --------------------------------------------------
# set_state I drain|ready: HAProxy's stats page action for server reservd<I+1>.
set_state() {
    curl -fs -o /dev/null -d "s=reservd$(($1 + 1))&action=$2&b=reservd" "http://127.0.0.1:$stats/stats"
}
# requests of the answers file without an answer whose user holds a
# reservation for the event: each must be 0 when nothing ran them
unanswered_held() {
    awk '$2 == 0 { print $1 }' "$1" >"$logs/unanswered.csv"
    psql "$direct" -XtAq -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE unanswered (user_id bigint);
\copy unanswered FROM '$logs/unanswered.csv' WITH (FORMAT csv)
SELECT count(*) FROM unanswered u JOIN reservations r
    ON r.user_id = u.user_id AND r.event_id = $2 AND r.status = 'RESERVED';
SQL
}
# roll NAME DRAIN: restart the three one at a time under load; DRAIN=drain
# first takes each out of HAProxy (as an orchestrator would) until it has no
# request left, then SIGTERMs it.
roll() {
    local name=$1 drain=$2 i n codes=""
    event=$(new_event 10000000)
    steady 16 "$event" "$logs/$name.txt" & loadpid=$!
    sleep 2
    for i in 0 1 2; do
        if [ "$drain" = drain ]; then
            set_state "$i" drain || fail "$name: drain instance $i"
            for n in $(seq 50); do
                [ "$(curl -fs "http://127.0.0.1:$stats/stats;csv" |
                    awk -F, -v s="reservd$((i + 1))" '$1 == "reservd" && $2 == s { print $5 }')" = 0 ] && break
                sleep 0.1
            done
        fi
        kill -TERM "${pids[$i]}"; wait "${pids[$i]}"; codes+="$? "; pids[$i]=
        start_instance "$i" batch || fail "$name: instance $i restarts"
        [ "$drain" = drain ] && { set_state "$i" ready || fail "$name: ready instance $i"; }
        wait_status "$i" UP 15 || fail "$name: instance $i back UP in HAProxy"
    done
    wait "$loadpid"
    local f=$logs/$name.txt got; got=$(statuses "$f")
    check "$name: each instance exited 0 on SIGTERM (exit codes ${codes% })" test "${codes% }" = "0 0 0"
    check "$name: no 5xx but 503 ($got)" only_statuses "$f" 201 503 0
    check "$name: every 201 is in the database" test "$(missing_acks "$f" "$event")" = 0
    check "$name: no request left unanswered ran ($(awk '$2 == 0' "$f" | wc -l) unanswered, none holds a ticket)" \
        test "$(unanswered_held "$f" "$event")" = 0
    check "$name: the counter equals the active reservations" counter_ok "$event"
    check "$name: 201s kept coming ($(awk '$2 == 201' "$f" | wc -l))" \
        test "$(awk '$2 == 201' "$f" | wc -l)" -gt 1000
}
# SIGTERM alone: HAProxy learns of the restart from refused connections and
# its checks. A request whose connection reservd's closing listener reset
# before reading it gets no answer (HAProxy closes a keep-alive client's
# connection silently then, for it to retry): counted, and checked to have
# changed nothing.
roll roll plain
# drained first: every request answered
roll drained drain
check "drained: every request answered" only_statuses "$logs/drained.txt" 201 503

# --- (d) holds and waiting-list offers across instances ---------------------------------
# 300 holds through HAProxy fill an event, 100 more users join its waiting
# list; then the holds fall due at once (their expires_at moved to the past)
# and the three sweepers race to expire them and offer the tickets: every
# hold expired once (the instances' expiry counters add up to exactly 300),
# each waiting entry offered exactly one held ticket, the counters equal to
# the rows.
holds_ev=$(new_event 300)
sql "UPDATE events SET hold_seconds = 3600, offer_seconds = 3600 WHERE id = $holds_ev" >/dev/null
"$load" steady -c 32 -n 300 -d 60 --timeout 90 --method POST --path /reservations \
    --body "{\"eventId\":$holds_ev,\"userId\":{i},\"hold\":true}" --user-start 1 \
    --expect-status 201=300 "http://127.0.0.1:$front" >"$logs/holds.txt" 2>&1
check "holds: 300 granted through HAProxy" test "$?" = 0
joined=0
for u in $(seq 301 400); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $RESERVD_TOKEN" \
        -H 'content-type: application/json' -d "{\"userId\":$u}" \
        "http://127.0.0.1:$front/events/$holds_ev/waitlist")
    [ "$code" = 201 ] && joined=$((joined + 1))
done
check "waiting list: 100 joined the sold-out event" test "$joined" = 100
expired_before=0
for i in 0 1 2; do
    n=$(curl -fs -H "authorization: Bearer $RESERVD_TOKEN" "http://127.0.0.1:${ports[$i]}/metrics" |
        awk '$1 == "reservd_holds_expired_total" { print $2 }')
    expired_before=$((expired_before + ${n:-0}))
done
sql "UPDATE reservations SET expires_at = now() - interval '1 ms'
     WHERE event_id = $holds_ev AND status = 'HELD'" >/dev/null
for n in $(seq 150); do
    [ "$(sql "SELECT count(*) FROM reservations WHERE event_id = $holds_ev AND user_id <= 300
              AND status = 'HELD'")" = 0 ] && break
    sleep 0.1
done
check "holds: all 300 expired by the sweepers" \
    test "$(sql "SELECT count(*) FROM reservations WHERE event_id = $holds_ev AND user_id <= 300
                 AND status = 'EXPIRED'")" = 300
expired_after=0
for i in 0 1 2; do
    n=$(curl -fs -H "authorization: Bearer $RESERVD_TOKEN" "http://127.0.0.1:${ports[$i]}/metrics" |
        awk '$1 == "reservd_holds_expired_total" { print $2 }')
    echo "instance $i: reservd_holds_expired_total ${n:-none}"
    expired_after=$((expired_after + ${n:-0}))
done
check "holds: expired exactly once across instances (counters add up to 300)" \
    test $((expired_after - expired_before)) = 300
check "offers: each of the 100 entries offered exactly one held ticket" \
    test "$(sql "SELECT count(*) = 100 AND count(DISTINCT w.reservation_id) = 100
                        AND bool_and(r.status = 'HELD' AND r.user_id = w.user_id)
                 FROM waitlist w JOIN reservations r ON r.id = w.reservation_id
                 WHERE w.event_id = $holds_ev AND w.status = 'OFFERED'")" = t
check "offers: no entry left waiting, no second hold for anyone" \
    test "$(sql "SELECT (SELECT count(*) FROM waitlist WHERE event_id = $holds_ev AND status = 'WAITING') = 0
                 AND (SELECT count(*) FROM reservations WHERE event_id = $holds_ev AND user_id > 300) = 100")" = t
check "offers: counters equal the rows (100 held, 0 confirmed, nobody waiting)" \
    test "$(sql "SELECT held_tickets = 100 AND reserved_tickets = 0 AND waiting_count = 0
                 FROM events WHERE id = $holds_ev")" = t

finish
