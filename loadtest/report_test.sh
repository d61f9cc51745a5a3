#!/usr/bin/env bash
# loadtest/report.py on a small recorded run: the tables it builds from a
# bench results directory are exactly loadtest/testdata/RESULTS.expected.md.
#   report_test.sh SOURCE_DIR
# The input, loadtest/testdata/bench_run.json, holds every file of a results
# directory (name -> JSON object or text): run 1 is a real `bench --quick`
# run (reservd-load's JSON trimmed to the fields the report reads), runs 2
# and 3 are it with rates x0.5 and x1.1 and times x2 and x0.9 (and the
# unsafe strategy oversold 2 / 0 / 3), so every median in the expected
# report is run 1's figure and a mean or a first or last run would differ.
# The scale scenario's files (sc_*, scspike_*, scpgb_*: reservd-load JSON,
# .cpu ticks, .wal bytes, pgbench output, as bench writes them; figures after
# the committed RESULTS.md's runs) are arranged so that a median differs from
# the mean, and a median of per-run ratios from the ratio of the medians.
# After a deliberate change to the report, regenerate the expected file:
#   REPORT_TEST_UPDATE=1 report_test.sh SOURCE_DIR   (then read its diff)
set -uo pipefail
src=${1:?source dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/support/checks.sh"
expected=$src/loadtest/testdata/RESULTS.expected.md

python3 - "$src/loadtest/testdata/bench_run.json" "$work/res" <<'PY' || { fail "unpack the recorded run"; finish; }
import json, os, sys
files = json.load(open(sys.argv[1]))
os.makedirs(sys.argv[2])
for name, content in files.items():
    with open(os.path.join(sys.argv[2], name), "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
PY
if python3 "$src/loadtest/report.py" "$work/res" >"$work/RESULTS.md" 2>"$work/err"; then
    pass "report.py writes a report from the recorded run"
else
    fail "report.py: $(cat "$work/err")"
fi
if [ "${REPORT_TEST_UPDATE:-}" = 1 ]; then
    cp "$work/RESULTS.md" "$expected"
    echo "wrote $expected"
fi
if diff -u "$expected" "$work/RESULTS.md" >"$work/diff"; then
    pass "the report is the expected one, table by table"
else
    fail "the report differs from loadtest/testdata/RESULTS.expected.md:"
    head -n 60 "$work/diff"
fi
# A few cells by hand, so that the expected file is not only what the
# code printed once: medians of run 1's figures, not of all three.
row() { grep -F -- "$1" "$work/RESULTS.md" | head -n 1; }
check "hot event: req/s is run 1's 1,758 (not the mean, 1,523)" \
    grep -qF '| (b) hot event: one event, 256 connections, `POST /reservations` | 1,758 |' "$work/RESULTS.md"
check "strategy table: every listed strategy has a row, unsafe marked" \
    bash -c '[ "$(grep -cE "^\| \`(for-update|batch|atomic|unsafe)\`" "$1")" = 4 ] &&
             grep -qF "| \`unsafe\` (oversells on purpose) |" "$1"' _ "$work/RESULTS.md"
check "strategy table: unsafe oversold the worst of 2 / 0 / 3" \
    bash -c 'grep -F "| \`unsafe\` (oversells" "$1" | grep -qF "**3** (runs: 2 / 0 / 3)"' _ "$work/RESULTS.md"
check "spike ÷ livez spike: the median of the per-run ratios" \
    bash -c 'grep -F "| \`batch\` |" "$1" | grep -qE "\| 0\.58 s \| 1\.17 \|"' _ "$work/RESULTS.md"
check "pgbench: the best client count's median tps" \
    grep -qF '| 2,077 (1) |' "$work/RESULTS.md"

# "Several instances" (the scale scenario): after the Details, and alone with --scale.
check "scale: direct req/s is the median 2,833 (not the mean 2,756), then p99, then ratio" \
    grep -qF '| 1 instance, direct (`--db-prepared on`) | 2,833 | 127 ms | 1.00 | 28,924 | 20 ms | 1.00 | 0.30 s | 123 ms | 1.00 | 100 / 3,900 in every run |' "$work/RESULTS.md"
check "scale: ratio is the median of per-run ratios (0.33), not of medians (868 / 2,833 = 0.31)" \
    grep -qF '| 1 instance, direct, `--db-prepared off` | 868 | 432 ms | 0.33 | 26,237 | 18 ms | 0.93 | 0.28 s | 175 ms | 0.93 |' "$work/RESULTS.md"
check "scale: HAProxy's spike is 2.47 times direct's" \
    grep -qF '| 3 instances behind HAProxy, through PgBouncer (`off`) | 503 | 963 ms | 0.18 | 6,739 | 86 ms | 0.23 | 0.74 s | 586 ms | 2.47 |' "$work/RESULTS.md"
check "scale: --db-prepared off ÷ on per run" \
    grep -qF '`for-update` 0.33 (runs: 0.33 / 0.34 / 0.29); `batch` 0.93 (runs: 0.93 / 1.03 / 0.74).' "$work/RESULTS.md"
check "scale: pgbench µs a call (1e6 / tps), median, and the per-run time ratio" \
    grep -qF '| `reserve_for_update` (one user) | 482 | 1,205 | 2.50 | 482 / 1,205 ; 429 / 1,156 ; 531 / 1,235 |' "$work/RESULTS.md"
check "scale: each user more in a batch" \
    grep -qF 'Each user more in a batch costs 16 µs at the database ((100 users − 1 user) ÷ 99; runs: 18 / 15 / 16).' "$work/RESULTS.md"
check "scale: WAL bytes per granted reservation (.wal ÷ 201s)" \
    grep -qF '`for-update` 672 bytes (runs: 672 / 1,561 / 663); `batch` 1,064 bytes' "$work/RESULTS.md"
check "scale: CPU seconds per component (ticks ÷ 100), median, and the total" \
    grep -qF '| 1 instance through PgBouncer (`off`), `for-update` | 0.6 | 9.3 | 0.4 | – | 0.2 | 10.5 |' "$work/RESULTS.md"
check "scale: the section follows the Details" \
    bash -c '[ "$(grep -n "^## " "$1" | tail -n 2 | cut -d: -f2-)" = "$(printf "## Details\n## Several instances")" ]' _ "$work/RESULTS.md"
if python3 "$src/loadtest/report.py" --scale "$work/res" >"$work/SCALE.md" 2>"$work/err"; then
    check "--scale: the section alone, as in the full report (bench --only scale)" \
        bash -c 'sed -n "/^## Several instances/,\$p" "$1" | cmp -s - "$2"' _ "$work/RESULTS.md" "$work/SCALE.md"
else
    fail "report.py --scale: $(cat "$work/err")"
fi
rm -f "$work"/res/sc_* "$work"/res/scspike_* "$work"/res/scpgb_*
python3 "$src/loadtest/report.py" "$work/res" >"$work/NOSCALE.md" 2>"$work/err" || fail "report.py: $(cat "$work/err")"
check "without the scale files: the same report, no Several instances section" \
    bash -c 'sed "/^## Several instances/,\$d" "$1" | sed "\$d" | cmp -s - "$2"' _ "$work/RESULTS.md" "$work/NOSCALE.md"
check "without the scale files: --scale prints nothing" \
    bash -c '[ -z "$(python3 "$1" --scale "$2")" ]' _ "$src/loadtest/report.py" "$work/res"
finish
