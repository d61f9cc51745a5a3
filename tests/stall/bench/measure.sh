#!/usr/bin/env bash
# Throughput with and without an idle crowd, for one or more reservd builds,
# interleaved so that each round measures every build under the same noise.
#   measure.sh ROUNDS NAME=RESERVD_BIN [NAME=RESERVD_BIN ...]
# Needs RESERVD_TEST_ADMIN_URL (a PostgreSQL admin URL), wrk, python3,
# reservd-seed beside reservd (RESERVD_SEED, default build/release/src/tools/seed/reservd-seed).
# Per round and build: a fresh server (batch) on a fresh database, then
#   wrk -t1 -c256 -d6s  GET /livez, and POST /reservations on a fresh event
#   the same two with IDLE (10000) keep-alive connections held open
# and the server's VmHWM. Prints one line per measurement, then medians.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:?rounds}; shift
admin=${RESERVD_TEST_ADMIN_URL:?}
seed=${RESERVD_SEED:-build/release/src/tools/seed/reservd-seed}
idle=${IDLE:-10000} dur=${DURATION:-6}
work=$(mktemp -d)
ulimit -n "$(ulimit -Hn)"
cleanup() {
    [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$admin" -qc "DROP DATABASE IF EXISTS reservd_measure WITH (FORCE)" >/dev/null 2>&1
}
trap 'cleanup; rm -rf "$work"' EXIT

wrk_rps() {   # wrk_rps PATH [LUA]: prints req/s; non-2xx answers go to stderr
    local out
    if [ -n "${2:-}" ]; then
        out=$(EVENT=$event wrk -t1 -c256 -d"${dur}s" -s "$2" "http://127.0.0.1:$port$1")
    else
        out=$(wrk -t1 -c256 -d"${dur}s" "http://127.0.0.1:$port$1")
    fi
    grep -q "Non-2xx" <<<"$out" && grep "Non-2xx\|Socket errors" <<<"$out" >&2
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}

start_server() {   # start_server BIN
    cleanup; pid=; holder=
    psql "$admin" -qc "CREATE DATABASE reservd_measure" >/dev/null
    port=$((10000 + RANDOM % 20000))
    "$1" --bind 127.0.0.1 --port "$port" --database-url "${admin%/*}/reservd_measure" \
        --log-level error --reservation-strategy batch 2>>"$work/log" &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.1; done
    "$seed" --count 400000 --database-url "${admin%/*}/reservd_measure" >/dev/null
}

new_event() { event=$("$seed" --events --tickets 10000000 --count 1 --database-url "${admin%/*}/reservd_measure"); }

for r in $(seq "$rounds"); do
    for spec in "$@"; do
        name=${spec%%=*} bin=${spec#*=}
        start_server "$bin"
        livez=$(wrk_rps /livez)
        new_event; hot=$(wrk_rps /reservations "$here/reserve.lua")
        python3 "$here/../../../loadtest/idle_holder.py" "$port" "$idle" 600 >"$work/holder" &
        holder=$!
        for _ in $(seq 600); do grep -q holding "$work/holder" && break; sleep 0.1; done
        grep -q holding "$work/holder" || echo "round $r $name: the idle crowd did not settle" >&2
        livez_idle=$(wrk_rps /livez)
        new_event; hot_idle=$(wrk_rps /reservations "$here/reserve.lua")
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
        echo "round $r $name livez $livez livez_idle $livez_idle hot $hot hot_idle $hot_idle vmhwm_kb $hwm" |
            tee -a "$work/results"
    done
done
python3 - "$work/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    name = f[2]
    kv = dict(zip(f[3::2], map(float, f[4::2])))
    rows.setdefault(name, []).append(kv)
print("medians over %d rounds" % len(next(iter(rows.values()))))
print("| build | /livez | /livez, idle crowd | ratio | hot POST | hot POST, idle crowd | ratio | VmHWM MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, rs in rows.items():
    med = lambda k: statistics.median(r[k] for r in rs)
    lr = statistics.median(r["livez_idle"] / r["livez"] for r in rs)
    hr = statistics.median(r["hot_idle"] / r["hot"] for r in rs)
    print("| %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.1f |" % (
        name, med("livez"), med("livez_idle"), lr, med("hot"), med("hot_idle"), hr,
        med("vmhwm_kb") / 1024))
EOF
