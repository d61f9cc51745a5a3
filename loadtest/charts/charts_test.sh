#!/usr/bin/env bash
# The bench's chart pipeline on real reservd-load output, without the
# 13-minute bench: a short spike and a /livez spike against a live reservd,
# their JSON laid out as a bench results directory, then chart_data.py and
# charts.gp. Checks reservd-load's timeline (its counts add up to the
# requests) and that every chart is a well-formed SVG with plotted data.
#   charts_test.sh SOURCE_DIR RESERVD_BIN RESERVD_LOAD_BIN   (needs RESERVD_TEST_ADMIN_URL)
set -uo pipefail
src=${1:?source dir}
bin=${2:?reservd binary}
load=${3:?reservd-load binary}
admin=${RESERVD_TEST_ADMIN_URL:?set by scripts/test.sh}
. "$src/scripts/lib.sh"
. "$src/tests/support/start_reservd.sh"
ensure_packages gnuplot-nox python3

db=reservd_charts_$$
url="${admin%/*}/$db"
work=$(mktemp -d)
. "$src/tests/support/checks.sh"
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

psql "$admin" -qc "CREATE DATABASE $db" >/dev/null || { fail "CREATE DATABASE"; finish; }
start_reservd "$bin" "$url" "$work/log" || { cat "$work/log"; fail "reservd did not start"; finish; }
base=http://127.0.0.1:$port
for i in $(seq 30); do
    curl -fsS -o /dev/null -XPOST "$base/users" -H 'content-type: application/json' \
        -d "{\"name\":\"U$i\",\"email\":\"u$i@example.com\"}" || fail "POST /users $i"
done
curl -fsS -o /dev/null -XPOST "$base/events" -H "$auth_header" -H 'content-type: application/json' \
    -d '{"name":"Charts","date":"2026-12-31T20:00:00Z","location":"Hall","maxTickets":10}' || fail "POST /events"

# --- real reservd-load output ----------------------------------------------------------
res=$work/results
mkdir -p "$res"
"$load" spike -n 30 --scenario compat --event 1 --expect-status 201=10,409=20 --json "$base" >"$res/spike.json" \
    || fail "reservd-load spike (reservations)"
"$load" spike -n 200 --scenario livez --json "$base" >"$res/livez.json" || fail "reservd-load spike (/livez)"
"$load" steady -c 4 -d 1.5 --scenario livez --json "$base" >"$res/steady.json" || fail "reservd-load steady"
# The timeline holds every request once, at 1 ms slots for a short spike and
# at doubled slots once a run outlasts 1,024 of them.
timeline_ok() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); t = d["timeline"]
total = sum(sum(t[k]) for k in ("ok", "4xx", "5xx", "transport"))
assert total == d["requests"], f"timeline holds {total} of {d['requests']} requests"
assert t["slot_ms"] == float(sys.argv[2]), f"slot_ms {t['slot_ms']}, expected {sys.argv[2]}"
assert len(d["latency_percentiles_ms"]) == 23, "23 percentiles"
ms = [m for _, m in d["latency_percentiles_ms"]]
assert ms == sorted(ms), "latency percentiles rise"
PY
}
check "reservations spike: the timeline holds all 30 requests at 1 ms slots" timeline_ok "$res/spike.json" 1
check "1.5 s steady run: the timeline holds every request at 2 ms slots" timeline_ok "$res/steady.json" 2
check "reservations spike: 10 granted in the timeline" \
    python3 -c 'import json,sys; t = json.load(open(sys.argv[1]))["timeline"]; sys.exit(sum(t["ok"]) != 10)' "$res/spike.json"

# --- a bench results directory from it: 2 runs of 2 strategies --------------------------
for r in 1 2; do
    cp "$res/spike.json" "$res/spike_r$r.json"
    cp "$res/livez.json" "$res/spikelivez_r$r.json"
    for s in for-update unsafe; do
        cp "$res/steady.json" "$res/st_${s}_r$r.json"
        cp "$res/spike.json" "$res/ov_${s}_r$r.json"
    done
    echo 10 >"$res/ov_for-update_r$r.active"
    echo $((11 + r)) >"$res/ov_unsafe_r$r.active"
    for c in 1 4; do printf 'tps = %d.5 (without initial connection time)\n' $((1000 * c)) >"$res/pgb_hot_c${c}_r$r.txt"
                     echo 0 >"$res/pgb_hot_c${c}_r$r.rc"; done
done
cat >"$res/meta.env" <<'ENV'
RUNS=2
QUICK=1
SPIKE_N=30
OVERSELL_N=30
OVERSELL_TICKETS=10
CONNS=4
STEADY_S=1.5
COMMIT=test
STRATEGIES_LIST='for-update unsafe'
CLIENTS_LIST='1 4'
BENCH_DATE='2026-01-01 00:00 UTC'
ENV
mkdir -p "$work/data" "$work/out"
if python3 "$src/loadtest/charts/chart_data.py" "$res" "$work/data" 2>"$work/chart_data.err"; then
    pass "chart_data.py reads the results"
else
    fail "chart_data.py: $(cat "$work/chart_data.err")"
fi
check "oversell table: unsafe oversold 2 and 3 tickets, for-update none" \
    grep -qx '"unsafe" 2 3 14034728' "$work/data/oversell.dat"
check "throughput table: pgbench best is the 4-client median (4000.5)" grep -qx 'pgb_best = 4000.5' "$work/data/vars.gp"
if LC_ALL=C.UTF-8 gnuplot -e "data='$work/data'; out='$work/out'" "$src/loadtest/charts/charts.gp" 2>"$work/gnuplot.err" &&
    [ ! -s "$work/gnuplot.err" ]; then
    pass "gnuplot draws the charts without a warning"
else
    fail "gnuplot: $(cat "$work/gnuplot.err")"
fi
for chart in throughput latency spike spike_strategies oversell; do
    check "$chart.svg is a well-formed SVG with plotted data" python3 - "$work/out/$chart.svg" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
paths = root.iter(ns + "path")
assert sum(1 for _ in paths) > 10, "fewer than 10 paths: nothing plotted?"
PY
done
finish
