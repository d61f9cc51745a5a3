#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang, fuzz each for a
# bounded time from a copy of its committed seed corpus, then run every
# committed corpus input once as a regression check (ctest -L fuzz).
#   scripts/fuzz.sh [SECONDS]    seconds per target (default $FUZZ_SECONDS, else 30);
#                                0 only builds and runs the regression
# Exits non-zero if any target crashed, printing the input that did it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-${FUZZ_SECONDS:-30}}
[[ $secs =~ ^[0-9]+$ ]] || die "usage: scripts/fuzz.sh [SECONDS]"
# clang alone leaves libFuzzer and the sanitizer runtimes out: in Debian 12
# they are in libclang-rt-14-dev, which clang only recommends.
ensure_packages clang libclang-rt-14-dev

dir=$REPO_ROOT/build/fuzz
seeds=$REPO_ROOT/tests/fuzz/corpus
cmake -S "$REPO_ROOT" -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRESERVD_FUZZ=ON -DRESERVD_BUILD_TESTS=OFF >/dev/null || die "cmake configure failed"
cmake --build "$dir" --target fuzz_targets -j2 >&2 || die "build failed"

# The last status line, "#N DONE cov: C ft: F corp: n/size ... exec/s: E rss: R".
summary() {
    grep -E '^#[0-9]+.*cov:' "$1" | tail -n1 | awk '{
        for (i = 1; i < NF; i++) v[$i] = $(i + 1)
        printf "%s runs, cov %s, ft %s, corpus %s, %s exec/s, rss %s\n",
               substr($1, 2), v["cov:"], v["ft:"], v["corp:"], v["exec/s:"], v["rss:"] }'
}

mkdir -p "$dir/logs"
failed=()
for corpus in "$seeds"/*/; do
    t=$(basename "$corpus")
    bin=$dir/tests/fuzz/fuzz_$t
    [ -x "$bin" ] || die "no fuzz target for tests/fuzz/corpus/$t"
    ((secs > 0)) || continue   # libFuzzer reads -max_total_time=0 as "no limit"
    work=$dir/corpus/$t art=$dir/artifacts/$t log=$dir/logs/$t.log
    mkdir -p "$work" "$art" "$(dirname "$log")"
    cp -f "$corpus"* "$work"/
    opts=(-max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
          -artifact_prefix="$art/")
    [ -f "$REPO_ROOT/tests/fuzz/$t.dict" ] && opts+=(-dict="$REPO_ROOT/tests/fuzz/$t.dict")
    log "fuzzing $t for ${secs}s"
    if "$bin" "${opts[@]}" "$work" >"$log" 2>&1; then
        log "$t: $(summary "$log")"
    else
        grep -E 'property failed|ERROR:|SUMMARY:' "$log" | head -n5 >&2 || true
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        log "$t: CRASH, input: ${crash:-none written} (log: $log)"
        failed+=("$t")
    fi
done

log "regression: every committed corpus input once"
if ! (cd "$dir" && ctest -L fuzz --output-on-failure >"$dir/logs/regression.log" 2>&1); then
    # name the committed file: run the failing target's inputs one by one
    for t in $(sed -n 's/.*fuzz_corpus_\([a-z_]*\) .*Failed.*/\1/p' "$dir/logs/regression.log" | sort -u); do
        for f in "$seeds/$t"/*; do
            out=$("$dir/tests/fuzz/fuzz_$t" -artifact_prefix="$dir/artifacts/$t/" "$f" 2>&1) && continue
            log "regression: $t fails on $f"
            grep -E 'property failed|ERROR:' <<<"$out" | head -n2 >&2 || true
        done
        failed+=("$t (corpus)")
    done
    ((${#failed[@]})) || failed+=("regression (see $dir/logs/regression.log)")
fi

if ((${#failed[@]})); then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "all fuzz targets passed"
