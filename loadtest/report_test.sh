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
finish
