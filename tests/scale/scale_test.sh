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
#       and sends it nothing more, the others keep answering 201s in every
#       second of the load after the kill, every 201 any client got is in
#       the database; the instance restarted is UP in HAProxy, reserves
#       when asked directly and gets its share through HAProxy again;
#   (c) a rolling restart (SIGTERM one at a time, wait for its exit,
#       restart, wait for /readyz and for HAProxy) under load: every 201 is
#       in the database, no 5xx but 503, every request answered (the
#       instances' --drain-delay-ms: HAProxy takes each out before its
#       listener closes), every instance exits 0; the same draining
#       through HAProxy first;
#   (d) holds and waiting-list offers processed exactly once across
#       instances: 300 holds over 30 events fall due in turn, the three
#       sweepers race to expire them; each hold and offer expired once, by
#       more than one instance; the returned tickets offered down each
#       event's waiting list, each entry once, the expired offers' tickets
#       to the next entries.
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

# SIGTERM twice, all at once: the second cuts --drain-delay-ms short.
stop_instances() {
    local i
    for i in "${!pids[@]}"; do [ -n "${pids[$i]}" ] && kill "${pids[$i]}" 2>/dev/null; done
    sleep 0.2
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

# Ports: six (PgBouncer, HAProxy, its stats, three instances), a block
# derived from the cluster's port, above the kernel's ephemeral range
# (32768-60999, /proc/sys/net/ipv4/ip_local_port_range): no client socket
# takes one, and no other test picks ports there (the others take the
# kernel's ephemeral ports or random ones in 10000-30000), so a port stays
# ours while its instance restarts. Two clusters whose ports differ modulo
# 750 never share a block; a port of the block already in use (another
# checkout's cluster 750 away, anything else) is replaced by a random free
# one above the range.
port_free() { ! ss -Htln "sport = :$1" | grep -q .; }
scale_port() { # scale_port K: the block's port K (0..5)
    local p=$((61000 + (RESERVD_PG_PORT % 750) * 6 + $1))
    port_free "$p" && { echo "$p"; return; }
    echo "port $p is in use: a random one instead" >&2
    while :; do
        p=$((61000 + RANDOM % 4500))
        port_free "$p" && { echo "$p"; return; }
    done
}

# On SIGTERM each instance answers /readyz 503 for this long, still
# serving, before it closes its listener (--drain-delay-ms): longer than
# HAProxy takes to mark it down (deploy/haproxy.cfg: a check every second,
# down after two failures, the second 250 ms after the first, so at most
# 2 x inter), and a margin.
drain_delay=2500
# Instance i on ports[i] through PgBouncer.
launch_instance() {
    local i=$1 strategy=$2
    "$bin" --bind 127.0.0.1 --port "${ports[$i]}" --database-url "$pooled" --db-prepared "$prepared" \
        --reservation-strategy "$strategy" --pool-size 8 --drain-delay-ms "$drain_delay" \
        --log-level warn 2>>"$logs/reservd$i.log" &
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
server_line() { server_stat "$1" status stot; }
# server_stat I FIELD...: the named fields of server reservd<I+1> in
# HAProxy's CSV stats (its header names them: stot connections sent,
# hrsp_2xx answers 2xx, status UP/DOWN/...), space-separated.
server_stat() {
    local s="reservd$(($1 + 1))"; shift
    curl -fs "http://127.0.0.1:$stats/stats;csv" | awk -F, -v s="$s" -v want="$*" '
        NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == "reservd" && $2 == s { n = split(want, w, " "); out = ""
            for (i = 1; i <= n; i++) out = out (i > 1 ? " " : "") $(col[w[i]]); print out }'
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
    acks_query "$1" "SELECT count(*) FROM acks a LEFT JOIN reservations r
        ON r.id = a.id AND r.user_id = a.user_id AND r.event_id = $2 AND r.status = 'RESERVED'
    WHERE r.id IS NULL"
}
# acks_query ANSWERS QUERY: QUERY's result with the answers file's 201s in
# table acks (user_id, id).
acks_query() {
    awk '$2 == 201 { print $1 "," $3 }' "$1" >"$logs/acks.csv"
    psql "$direct" -XtAq -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE acks (user_id bigint, id bigint);
\copy acks FROM '$logs/acks.csv' WITH (FORMAT csv)
$2;
SQL
}
# requests of the answers file without an answer whose user holds a
# reservation for the event (each request is another user): those that
# committed unanswered
unanswered_held() {
    awk '$2 == 0 { print $1 }' "$1" >"$logs/unanswered.csv"
    psql "$direct" -XtAq -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE unanswered (user_id bigint);
\copy unanswered FROM '$logs/unanswered.csv' WITH (FORMAT csv)
SELECT count(*) FROM unanswered u JOIN reservations r
    ON r.user_id = u.user_id AND r.event_id = $2 AND r.status = 'RESERVED';
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
bouncer=$(scale_port 0) front=$(scale_port 1) stats=$(scale_port 2)
for i in 0 1 2; do ports[$i]=$(scale_port $((i + 3))); done
echo "ports: PgBouncer $bouncer, HAProxy $front (stats $stats), instances ${ports[*]}"
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
# 10 s of load through HAProxy; instance 2 SIGKILLed 3 s in. While the
# load goes on, HAProxy's answer counters of the two others are sampled
# every second; afterwards the database dates each 201 a client got (its
# reservation's reserved_at): the survivors must answer 201s in every
# second after the kill, not only once the run is over.
for i in 0 1 2; do start_instance "$i" batch || fail "batch instance $i"; done
all_up || fail "instances up for the kill test"
event=$(new_event 10000000)
steady 10 "$event" "$logs/kill.txt" & loadpid=$!
sleep 3
t_kill=$(sql "SELECT clock_timestamp()")
kill -KILL "${pids[1]}"; wait "${pids[1]}" 2>/dev/null; pids[1]=
wait_status 1 DOWN 10
check "killed instance 2: HAProxy marks it DOWN ($(server_line 1), $(sql "SELECT round(extract(epoch FROM clock_timestamp() - '$t_kill')::numeric, 2)") s after the kill)" \
    wait_status 1 DOWN 0
sent=$(server_stat 1 stot)
samples=()   # "2xx of instance 1, 2xx of instance 3" each second until the load ends
while kill -0 "$loadpid" 2>/dev/null; do
    samples+=("$(server_stat 0 hrsp_2xx),$(server_stat 2 hrsp_2xx)")
    sleep 1
done
wait "$loadpid"
after=$(server_stat 1 stot)
check "HAProxy sent the dead instance nothing after marking it down ($sent then $after connections)" test "$sent" = "$after"
# every interval between two samples: both survivors answered 2xx
growth=$(printf '%s\n' "${samples[@]}" | awk -F, 'NR > 1 { printf "+%d/+%d ", $1 - a, $2 - b; if ($1 <= a || $2 <= b) bad++ }
    { a = $1; b = $2 } END { if (NR < 3) bad++; exit bad > 0 }') && grew=y || grew=n
check "after the DOWN mark both survivors answered 2xx in each second of the load (${growth% })" test "$grew" = y
check "every 201 a client got during the kill is in the database ($(statuses "$logs/kill.txt"))" \
    test "$(missing_acks "$logs/kill.txt" "$event")" = 0
# Those in flight at the killed instance get no answer (HAProxy closes a
# keep-alive client's connection then): one at most per client connection,
# and their outcome is unknown (the kill may have come after the commit);
# HAProxy answers one whose request had reached the instance 502 instead.
zeros=$(awk '$2 == 0 || $2 == 502' "$logs/kill.txt" | wc -l)
check "during the kill: only 201s, and at most one request per client connection without an answer or 502 ($zeros, $(unanswered_held "$logs/kill.txt" "$event") unanswered of them committed)" \
    test "$(only_statuses "$logs/kill.txt" 201 0 502 && echo y)" = y -a "$zeros" -le 64
# the acknowledged reservations per second since the kill, 7 s of load left
# (whole seconds up to the last 201: the load's end is not the script's)
persec=$(acks_query "$logs/kill.txt" "SELECT string_agg(coalesce(n, 0)::text, ' ' ORDER BY s)
    FROM generate_series(0, (SELECT floor(extract(epoch FROM max(r.reserved_at) - '$t_kill'))::int - 1
                               FROM acks a JOIN reservations r ON r.id = a.id)) s
    LEFT JOIN (SELECT floor(extract(epoch FROM r.reserved_at - '$t_kill'))::int AS s, count(*) AS n
                 FROM acks a JOIN reservations r ON r.id = a.id WHERE r.reserved_at >= '$t_kill'
                GROUP BY 1) c USING (s)")
check "acknowledged 201s kept arriving in every second after the kill (per second: $persec)" \
    awk -v s="$persec" 'BEGIN { n = split(s, a, " "); if (n < 5) exit 1; for (i = 1; i <= n; i++) if (a[i] < 1) exit 1 }'
check "the counter equals the active reservations after the kill" counter_ok "$event"
# while it is down: the other two serve, and nothing but 201
event=$(new_event 10000000)
steady 3 "$event" "$logs/down.txt"
check "with one instance dead the others serve: only 201 ($(statuses "$logs/down.txt"))" \
    test "$(awk '$2 == 201' "$logs/down.txt" | wc -l)" -gt 0 -a "$(only_statuses "$logs/down.txt" 201 && echo y)" = y
check "those 201s are in the database" test "$(missing_acks "$logs/down.txt" "$event")" = 0
start_instance 1 batch && wait_status 1 UP 15
check "the restarted instance is UP again in HAProxy ($(server_line 1))" wait_status 1 UP 0
# asked directly, it reserves (user 1 on a fresh event)
event=$(new_event 10000000)
direct_id=$(curl -s -H "authorization: Bearer $RESERVD_TOKEN" -H 'content-type: application/json' \
    -d "{\"eventId\":$event,\"userId\":1}" "http://127.0.0.1:${ports[1]}/reservations" |
    sed -n 's/.*"id": *\([0-9][0-9]*\).*/\1/p')
check "the restarted instance, asked directly, reserves (reservation ${direct_id:-none} in the database)" \
    test "$(sql "SELECT count(*) FROM reservations WHERE id = ${direct_id:-0} AND event_id = $event
                 AND user_id = 1 AND status = 'RESERVED'")" = 1
read -r before before2xx <<<"$(server_stat 1 stot hrsp_2xx)"
event=$(new_event 10000000)
steady 3 "$event" "$logs/rejoin.txt"
read -r after after2xx <<<"$(server_stat 1 stot hrsp_2xx)"
check "through HAProxy the restarted instance serves again ($((after - before)) connections, $((after2xx - before2xx)) answers 2xx; $(statuses "$logs/rejoin.txt"))" \
    test "$((after - before))" -gt 100 -a "$((after2xx - before2xx))" -gt 100 -a "$(only_statuses "$logs/rejoin.txt" 201 && echo y)" = y
check "the rejoined instance's 201s are in the database" test "$(missing_acks "$logs/rejoin.txt" "$event")" = 0

# --- (c) rolling restart under load --------------------------------------------------
# set_state I drain|ready: HAProxy's stats page action for server reservd<I+1>.
set_state() {
    curl -fs -o /dev/null -d "s=reservd$(($1 + 1))&action=$2&b=reservd" "http://127.0.0.1:$stats/stats"
}
# roll NAME DRAIN SECONDS STATUS...: restart the three one at a time under
# SECONDS of load; each SIGTERMed instance has exited before it starts
# again. DRAIN=drain first takes each out of HAProxy (as an orchestrator
# would) until it has no request left, then SIGTERMs it twice (the second
# cuts its drain delay short: HAProxy sends it nothing already).
# STATUS...: the answers the clients may get (0: none).
roll() {
    local name=$1 drain=$2 seconds=$3 i n codes=""; shift 3
    local allowed="$*"
    event=$(new_event 10000000)
    steady "$seconds" "$event" "$logs/$name.txt" & loadpid=$!
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
        kill -TERM "${pids[$i]}"
        [ "$drain" = drain ] && { sleep 0.2; kill -TERM "${pids[$i]}"; }
        wait "${pids[$i]}"; codes+="$? "; pids[$i]=
        start_instance "$i" batch || fail "$name: instance $i restarts"
        [ "$drain" = drain ] && { set_state "$i" ready || fail "$name: ready instance $i"; }
        wait_status "$i" UP 15 || fail "$name: instance $i back UP in HAProxy"
    done
    wait "$loadpid"
    local f=$logs/$name.txt got; got=$(statuses "$f")
    check "$name: each instance exited 0 on SIGTERM (exit codes ${codes% })" test "${codes% }" = "0 0 0"
    check "$name: only ${allowed// /, } answers, no 5xx but 503 ($got)" only_statuses "$f" $allowed
    check "$name: every 201 is in the database" test "$(missing_acks "$f" "$event")" = 0
    check "$name: no request left unanswered ran ($(awk '$2 == 0' "$f" | wc -l) unanswered, none holds a ticket)" \
        test "$(unanswered_held "$f" "$event")" = 0
    check "$name: the counter equals the active reservations" counter_ok "$event"
    check "$name: 201s kept coming ($(awk '$2 == 201' "$f" | wc -l))" \
        test "$(awk '$2 == 201' "$f" | wc -l)" -gt 1000
}
# SIGTERM alone: /readyz answers 503 at once while the instance keeps
# serving for --drain-delay-ms (2.5 s), so HAProxy's checks mark it down
# before it closes its listener, and nothing reaches the closing listener.
# Before the delay existed reservd closed its listener at once while /readyz
# still answered 200: a connection the kernel had accepted into the closing
# listener's backlog, and HAProxy had sent a request on, was reset unread.
# That is not a connection failure to HAProxy (its connect succeeded), so
# 'retry-on conn-failure' did not re-send it, and HAProxy closed a
# keep-alive client's connection without an answer (status 0: 0 to 10 per
# run, none committed). 'retry-on empty-response' would re-send it, but
# also a POST whose instance died after committing it (the retry's 409
# would tell a user whose reservation committed that nothing happened):
# deploy/haproxy.cfg rightly stays at conn-failure. Now every request is
# answered. The load lasts the drained roll's 16 s plus the three delays.
roll roll plain $((16 + 3 * drain_delay / 1000)) 201 503
# drained first (HAProxy sends it nothing more before the SIGTERM): every
# request answered, and no 5xx but 503
roll drained drain 16 201 503

# --- (d) holds and waiting-list offers across instances ---------------------------------
# 30 events of 10 tickets, each filled by 10 holds through HAProxy, with 15
# more users on its waiting list. The holds then fall due one event every
# 100 ms (their expires_at moved), so the three sweepers (every 250 ms each,
# SKIP LOCKED on the event rows) race over 3 s of due events. Each event's
# 10 returned tickets go at once to its first 10 entries (offers of 1 s:
# offer_seconds 1); when those offers expire, their 10 tickets go to the 5
# entries left and 5 stay free. Checked: every hold and offer expired once
# (the instances' expiry counters add up to the rows), by more than one
# instance; each entry offered once, in the transaction that expired the
# tickets it got, in position order; never more held than the event has.
nev=30 per=10 wait_n=15
eval "$("$seed" --events --tickets "$per" --count "$nev" --export --database-url "$direct")"
first=$EVENT_ID last=$((EVENT_ID + nev - 1))
sql "UPDATE events SET hold_seconds = 3600, offer_seconds = 1 WHERE id BETWEEN $first AND $last" >/dev/null
check "holds: $nev events of $per tickets, consecutive ids ($first..$last)" \
    test "$(sql "SELECT count(*) FROM events WHERE id BETWEEN $first AND $last AND max_tickets = $per")" = "$nev"
holds=$((nev * per)) joins=$((nev * wait_n))
"$load" steady -c 32 -n "$holds" -d 60 --timeout 90 --method POST --path /reservations \
    --body '{"eventId":{event},"userId":{i},"hold":true}' --event "$first" --events "$nev" --user-start 1 \
    --expect-status "201=$holds" "http://127.0.0.1:$front" >"$logs/holds.txt" 2>&1
check "holds: $holds granted through HAProxy, $per on each event" \
    test "$?,$(sql "SELECT count(*) FILTER (WHERE held_tickets = $per) FROM events WHERE id BETWEEN $first AND $last")" = "0,$nev"
"$load" steady -c 32 -n "$joins" -d 60 --timeout 90 --method POST --path '/events/{event}/waitlist' \
    --body '{"userId":{i}}' --event "$first" --events "$nev" --user-start $((holds + 1)) \
    --expect-status "201=$joins" "http://127.0.0.1:$front" >"$logs/joins.txt" 2>&1
check "waiting list: $joins joined the sold-out events, $wait_n each" \
    test "$?,$(sql "SELECT count(*) FILTER (WHERE waiting_count = $wait_n) FROM events WHERE id BETWEEN $first AND $last")" = "0,$nev"
expired_counts() { # each instance's reservd_holds_expired_total
    local i
    for i in 0 1 2; do
        curl -fs -H "authorization: Bearer $RESERVD_TOKEN" "http://127.0.0.1:${ports[$i]}/metrics" |
            awk '$1 == "reservd_holds_expired_total" { v = $2 } END { printf "%d ", v }'
    done
}
counts_before=$(expired_counts)
# now(), not clock_timestamp(): one instant per event (clock_timestamp() is
# read per row, and a sweep between two rows would split an event's holds)
sql "UPDATE reservations SET expires_at = now() + (event_id - $first) * interval '100 ms'
     WHERE event_id BETWEEN $first AND $last AND status = 'HELD'" >/dev/null
# the holds, the first offers ($per an event) and the second ones (what is left of the line)
rows=$((holds + nev * per + nev * (wait_n - per < per ? wait_n - per : per)))
for n in $(seq 200); do
    [ "$(sql "SELECT count(*) FROM reservations WHERE event_id BETWEEN $first AND $last AND status = 'EXPIRED'")" = "$rows" ] &&
        [ "$(sql "SELECT count(*) FROM reservations WHERE event_id BETWEEN $first AND $last AND status = 'HELD'")" = 0 ] && break
    sleep 0.1
done
check "holds and offers: all $rows expired ($holds holds, then two rounds of offers), none held" \
    test "$(sql "SELECT count(*) FILTER (WHERE status = 'EXPIRED') || ',' || count(*) FROM reservations
                 WHERE event_id BETWEEN $first AND $last")" = "$rows,$rows"
counts_after=$(expired_counts)
split=$(paste -d' ' <(tr ' ' '\n' <<<"${counts_before% }") <(tr ' ' '\n' <<<"${counts_after% }") |
    awk '{ printf "%d ", $2 - $1 }')
echo "expired by instance 1, 2, 3: ${split% }"
check "holds and offers: each expired exactly once (the instances' counters add up to $rows: ${split% })" \
    awk -v s="$split" -v want="$rows" 'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) t += a[i]; exit t != want }'
check "the sweepers raced: at least two instances expired some (${split% })" \
    awk -v s="$split" 'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) k += a[i] > 0; exit k < 2 }'
# each entry: its rank in its event's line, its offer's reservation; each
# event: when its holds expired (t1), when its first offers did (t2)
chain_sql="WITH w AS (SELECT w.*, rank() OVER (PARTITION BY w.event_id ORDER BY w.position) AS rk,
                             r.user_id AS r_user, r.quantity AS r_qty, r.reserved_at AS r_at,
                             r.expired_at AS r_expired
                        FROM waitlist w LEFT JOIN reservations r ON r.id = w.reservation_id
                       WHERE w.event_id BETWEEN $first AND $last),
     h AS (SELECT event_id, min(expired_at) AS t1, max(expired_at) AS t1_last FROM reservations
            WHERE event_id BETWEEN $first AND $last AND user_id <= $holds GROUP BY event_id),
     o AS (SELECT event_id, min(r_expired) AS t2, max(r_expired) AS t2_last FROM w
            WHERE rk <= $per GROUP BY event_id)"
check "offers: every entry offered exactly once, its own ticket, and its offer expired" \
    test "$(sql "$chain_sql SELECT count(*) = $joins AND count(DISTINCT reservation_id) = $joins
                 AND bool_and(status = 'EXPIRED' AND r_user = user_id AND r_qty = 1 AND offered_at = r_at)
                 AND (SELECT count(*) FROM reservations WHERE event_id BETWEEN $first AND $last
                      AND user_id > $holds) = $joins FROM w")" = t
off_chain=$(sql "$chain_sql SELECT count(*) FILTER (WHERE NOT (h.t1 = h.t1_last AND o.t2 = o.t2_last AND o.t2 > h.t1
                     AND CASE WHEN w.rk <= $per THEN w.offered_at = h.t1 ELSE w.offered_at = o.t2 END))
                 FROM w JOIN h USING (event_id) JOIN o USING (event_id)")
check "offers chain: each event's $per returned tickets offered to its first $per entries when its holds expired, the first offers' to the next $((wait_n - per)) when they expired ($off_chain entries otherwise)" \
    test "$off_chain" = 0
[ "$off_chain" = 0 ] || sql "$chain_sql SELECT w.event_id, w.rk, w.offered_at, h.t1, h.t1_last, o.t2, o.t2_last
    FROM w JOIN h USING (event_id) JOIN o USING (event_id)
    WHERE NOT (h.t1 = h.t1_last AND o.t2 = o.t2_last AND o.t2 > h.t1
               AND CASE WHEN w.rk <= $per THEN w.offered_at = h.t1 ELSE w.offered_at = o.t2 END) LIMIT 5"
check "offers: never more tickets held at once than an event has (at each offer)" \
    test "$(sql "SELECT count(*) FROM reservations o WHERE o.event_id BETWEEN $first AND $last
                 AND (SELECT sum(r.quantity) FROM reservations r WHERE r.event_id = o.event_id
                      AND r.reserved_at <= o.reserved_at AND r.expired_at > o.reserved_at) > $per")" = 0
check "offers: counters equal the rows ($((nev * wait_n)) offered and expired, nothing held or waiting)" \
    test "$(sql "SELECT bool_and(held_tickets = 0 AND reserved_tickets = 0 AND waiting_count = 0
                          AND waitlist_offered = $wait_n AND waitlist_expired = $wait_n AND waitlist_fulfilled = 0)
                 FROM events WHERE id BETWEEN $first AND $last")" = t

finish
