#!/usr/bin/env bash
# Checks the Dockerfile's build without a Docker engine:
#   tests/docker/build_test.sh [SRC_DIR]      (default: the repository root)
# 1. copies SRC_DIR to a temp dir as the build context (honouring .dockerignore,
#    approximately: no `!` exceptions),
# 2. runs the build stage's `RUN cmake ...` instruction there (the temp dir
#    stands for the stage's WORKDIR),
# 3. checks that the directory the runtime stage copies (`COPY --from=build`)
#    holds reservd, reservd-seed and reservd-load, that `reservd --help`
#    exits 0, and that every shared library they need comes from a package the
#    runtime stage installs (or libc6),
# 4. runs `docker compose config -q` (or docker-compose) on docker-compose.yml,
#    and checks how the shell's variables reach the services (one password for
#    both, no DATABASE_URL leaking in); skipped if neither is installed.
# Needs the build packages installed on this machine (Debian 12).
# Ends with "N passed, N failed[, N skipped]"; exits 1 if anything failed.
set -uo pipefail
# Run with the PATH a normal user has: /usr/sbin and /sbin are root's (the
# suite must pass as a normal user, and root must not hide a tool from there).
PATH=$(tr ':' '\n' <<<"$PATH" | grep -Ev '(^|/)sbin/?$' | paste -sd: -)
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd) || exit 2
dockerfile=$src/Dockerfile
passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
skip() { skipped=$((skipped + 1)); echo "skip - $*"; }
finish() {
    echo "$passed passed, $failed failed$([ "$skipped" -gt 0 ] && echo ", $skipped skipped")"
    [ "$failed" -eq 0 ]
    exit
}

# --- parse the Dockerfile -----------------------------------------------------
# Instructions one per line: continuation lines joined, comments dropped.
instructions() {
    awk '
        /^[ \t]*#/ { next }
        { line = cur $0; cur = "" }
        line ~ /\\[ \t]*$/ { sub(/\\[ \t]*$/, "", line); cur = line " "; next }
        line ~ /[^ \t]/ { print line }
    ' "$dockerfile"
}
build_stage="" workdir="/" build_cmd="" copy_from="" runtime_pkgs=""
stage="" final_stage_runs=""
while IFS= read -r line; do
    read -r instr rest <<<"$line"
    case "${instr^^}" in
        FROM)
            stage=$(sed -nE 's/.*[[:space:]][Aa][Ss][[:space:]]+([^[:space:]]+).*/\1/p' <<<"$rest")
            [ -z "$build_stage" ] && build_stage=$stage
            [ -n "$stage" ] || stage="(final)"
            final_stage_runs=""
            ;;
        WORKDIR) [ "$stage" = "$build_stage" ] && workdir=$rest ;;
        RUN)
            if [ "$stage" = "$build_stage" ] && [[ $rest == cmake* ]]; then build_cmd=$rest; fi
            [ "$stage" != "$build_stage" ] && final_stage_runs+=" $rest"
            ;;
        COPY)
            if [[ $rest =~ --from=${build_stage}[[:space:]]+([^[:space:]]+)[[:space:]]+ ]]; then
                copy_from=${BASH_REMATCH[1]}
            fi
            ;;
    esac
done < <(instructions)
# Runtime packages: the words after `apt-get install ... ` in the final stage, up to `&&`.
runtime_pkgs=$(sed -nE 's/.*apt-get install[^&]*-y (--no-install-recommends )?([^&]*)&&.*/\2/p' <<<"$final_stage_runs" | xargs)

if [ -n "$build_cmd" ]; then pass "Dockerfile: build stage '$build_stage' has a RUN cmake instruction"; else
    fail "Dockerfile: no 'RUN cmake ...' in the build stage"; finish; fi
case "$copy_from" in
    "${workdir%/}"/*) rel=${copy_from#"${workdir%/}"/}; rel=${rel%/}; pass "Dockerfile: runtime stage copies $copy_from (WORKDIR $workdir)" ;;
    *) fail "Dockerfile: COPY --from=$build_stage source '$copy_from' is not under WORKDIR $workdir"; finish ;;
esac

# --- build in a copy of the context --------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
excludes=(--exclude=./.data --exclude=./.git)
if [ -f "$src/.dockerignore" ]; then
    while IFS= read -r pat; do
        pat=${pat%%[[:space:]]}
        case "$pat" in '' | '#'*) continue ;; '!'*) echo "note: .dockerignore exception '$pat' not applied" ;; esac
        pat=${pat#/}; pat=${pat#./}
        if [[ $pat == '**/'* ]]; then excludes+=("--no-anchored" "--exclude=${pat#'**/'}" "--anchored")
        else excludes+=("--exclude=./$pat"); fi
    done <"$src/.dockerignore"
fi
if tar -C "$src" --anchored "${excludes[@]}" -cf - . | tar -C "$tmp" -xf -; then
    pass "copied the build context ($(find "$tmp" -type f | wc -l) files)"
else
    fail "could not copy $src"; finish
fi

log=$tmp/.build.log
echo "running in the context copy: $build_cmd"
if (cd "$tmp" && bash -euo pipefail -c "$build_cmd") >"$log" 2>&1; then
    pass "build command succeeded"
else
    fail "build command failed; last lines of its output:"
    tail -n 30 "$log" | sed 's/^/    /'
fi

bin=$tmp/$rel
for b in reservd reservd-seed reservd-load; do
    if [ -x "$bin/$b" ]; then pass "$rel/$b exists"; else fail "$rel/$b missing"; fi
done
if [ -x "$bin/reservd" ]; then
    if timeout 10 "$bin/reservd" --help >"$tmp/.help" 2>&1; then pass "reservd --help exits 0"
    else fail "reservd --help exited $?: $(head -c 300 "$tmp/.help")"; fi
else
    fail "reservd --help (no binary)"
fi

# Every NEEDED library must come from libc6 or a package the runtime stage installs.
# The package owning a library file (merged /usr: dpkg may know either spelling).
owner() {
    local p c
    [ -n "$1" ] || return 0
    for p in "$1" "$(readlink -f "$1")"; do
        for c in "$p" "${p#/usr}" "/usr$p"; do
            dpkg -S "$c" 2>/dev/null | head -n1 | cut -d: -f1 | grep . && return 0
        done
    done
}
bins=$(find "$bin" -maxdepth 1 -type f -perm -u+x 2>/dev/null)
if [ -n "$bins" ] && [ -n "$runtime_pkgs" ] && command -v dpkg >/dev/null && command -v readelf >/dev/null &&
    command -v ldd >/dev/null; then
    missing="" unresolved=""
    for f in $bins; do
        # where the dynamic loader finds each library ("name => path (address)")
        resolved=$(ldd "$f" 2>/dev/null)
        for lib in $(readelf -d "$f" 2>/dev/null | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'); do
            path=$(awk -v l="$lib" '$1 == l && $2 == "=>" && $3 ~ /^\// { print $3; exit }' <<<"$resolved")
            if [ -z "$path" ]; then unresolved+=" $(basename "$f"):$lib"; continue; fi
            pkg=$(owner "$path")
            case " libc6 $runtime_pkgs " in *" ${pkg:-?} "*) ;; *) missing+=" $(basename "$f"):$lib(${pkg:-no package owns $path})" ;; esac
        done
    done
    # A library this machine cannot locate says nothing about the Dockerfile.
    if [ -n "$unresolved" ]; then fail "ldd could not locate on this machine:$unresolved (not a Dockerfile problem)"
    elif [ -z "$missing" ]; then pass "runtime packages ($runtime_pkgs) provide every needed library"
    else fail "libraries not provided by the runtime packages:$missing"; fi
else
    skip "runtime library check (no binaries, runtime package list, dpkg, readelf or ldd)"
fi

# --- docker-compose.yml ---------------------------------------------------------
compose=()
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then compose=(docker compose)
elif command -v docker-compose >/dev/null; then compose=(docker-compose); fi
if [ ${#compose[@]} -eq 0 ]; then
    skip "compose config: neither 'docker compose' nor docker-compose is installed"
elif out=$("${compose[@]}" -f "$src/docker-compose.yml" config -q 2>&1); then
    pass "${compose[*]} config -q accepts docker-compose.yml"
    # The value of an environment line ("KEY: value") of the resolved file,
    # under the given shell environment (env -i: nothing else leaks in).
    setting() { # KEY VAR=VALUE...
        local key=$1; shift
        env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$@" "${compose[@]}" -f "$src/docker-compose.yml" config 2>/dev/null |
            sed -nE "s/^ +$key: '?([^']*)'?\$/\1/p"
    }
    got=$(setting PGPASSWORD POSTGRES_PASSWORD=secret | sort -u)
    want=$(setting POSTGRES_PASSWORD POSTGRES_PASSWORD=secret | sort -u)
    if [ "$got" = secret ] && [ "$want" = secret ]; then pass "compose: POSTGRES_PASSWORD=secret reaches both the database and reservd"
    else fail "compose: POSTGRES_PASSWORD=secret gives the database '$want' and reservd '$got'"; fi
    got=$(setting DATABASE_URL DATABASE_URL=postgresql://postgres@127.0.0.1:25432/reservd)
    if [ "$got" = postgresql://postgres@db:5432/postgres ]; then pass "compose: a DATABASE_URL exported in the shell does not leak into the container"
    else fail "compose: with DATABASE_URL exported in the shell the container gets '$got'"; fi
    got=$(setting DATABASE_URL RESERVD_DOCKER_DATABASE_URL=postgresql://app@pg.internal:5432/app)
    if [ "$got" = postgresql://app@pg.internal:5432/app ]; then pass "compose: RESERVD_DOCKER_DATABASE_URL picks reservd's database"
    else fail "compose: RESERVD_DOCKER_DATABASE_URL gives '$got'"; fi
else
    fail "${compose[*]} config -q: $out"
fi
finish
