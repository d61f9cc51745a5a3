#!/usr/bin/env bash
# The scripts as a newcomer meets them, with stand-ins for apt, dpkg, sudo
# and id where the real ones would change the machine:
#  - the private cluster's port: 25432 for root, one per user otherwise;
#  - package installs wait for a busy dpkg lock, and a failure shows apt's
#    own words (the tail of its log);
#  - scripts/run.sh --help and --version start no PostgreSQL, and a run with
#    nothing to rebuild prints nothing before the server's own output.
#   tests/scripts/scripts_test.sh
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
expect() { # NAME COMMAND...: passes when the command does
    local name=$1; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset RESERVD_PG_PORT RESERVD_DB DATABASE_URL

# Source scripts/lib.sh in a clean shell with stand-ins first on PATH.
# apt's and the build's log files go to $work/tmp.
mkdir -p "$work/tmp"
lib() { # SNIPPET
    PATH="$work/bin:$PATH" TMPDIR="$work/tmp" bash -c ". '$repo/scripts/lib.sh'; $1"
}
stub() { # NAME BODY
    mkdir -p "$work/bin"
    printf '#!/usr/bin/env bash\n%s\n' "$2" >"$work/bin/$1"
    chmod +x "$work/bin/$1"
}

# --- the cluster's port ---------------------------------------------------------
stub id 'if [ "$1" = -u ]; then echo "${FAKE_UID:-0}"; else exec /usr/bin/id "$@"; fi'
expect "root's cluster is on 25432" [ "$(FAKE_UID=0 lib 'echo $PG_PORT')" = 25432 ]
expect "uid 1000's cluster is on 26000" [ "$(FAKE_UID=1000 lib 'echo $PG_PORT')" = 26000 ]
expect "uid 1001's cluster is on 26001" [ "$(FAKE_UID=1001 lib 'echo $PG_PORT')" = 26001 ]
expect "RESERVD_PG_PORT overrides it" [ "$(FAKE_UID=1001 RESERVD_PG_PORT=25999 lib 'echo $PG_PORT')" = 25999 ]
expect "pg.sh db-url names RESERVD_DB on RESERVD_PG_PORT" \
    [ "$(RESERVD_PG_PORT=25999 RESERVD_DB=mine "$repo/scripts/pg.sh" db-url)" = postgresql://postgres@127.0.0.1:25999/mine ]
expect "pg.sh db-url defaults to the database reservd" \
    [ "$(RESERVD_PG_PORT=25999 "$repo/scripts/pg.sh" db-url)" = postgresql://postgres@127.0.0.1:25999/reservd ]
rm -f "$work/bin/id"

# --- installing packages ---------------------------------------------------------
# apt-get stand-in: records its arguments; FAKE_APT says how it answers.
stub apt-get 'echo "$*" >>"$FAKE_APT_ARGS"
case "$FAKE_APT:$*" in
    locked:*) echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2; exit 100 ;;
    unknown:*update*) echo "Reading package lists..."; exit 0 ;;
    unknown:*) if grep -q update "$FAKE_APT_ARGS"; then echo "Setting up fakepkg"; exit 0; fi
               echo "E: Unable to locate package fakepkg" >&2; exit 100 ;;
esac'
stub dpkg-query '[ "${*: -1}" = fakepkg ] && exit 1; exec /usr/bin/dpkg-query "$@"'
stub sudo '[ "$1" = -n ] && shift; exec "$@"'   # password-less sudo, for a normal user
export FAKE_APT_ARGS=$work/apt-args
: >"$FAKE_APT_ARGS"
out=$(FAKE_APT=locked lib 'ensure_packages fakepkg' 2>&1)
rc=$?
expect "a locked dpkg: ensure_packages fails (exit $rc)" [ "$rc" -ne 0 ]
expect "apt-get waits for the dpkg lock (-o DPkg::Lock::Timeout=300)" \
    grep -q -- '-o DPkg::Lock::Timeout=300 install fakepkg' "$FAKE_APT_ARGS"
expect "the failure shows apt's own message" grep -q "Could not get lock /var/lib/dpkg/lock-frontend" <<<"$out"
expect "the failure names apt's log file" grep -qF "full output in $work/tmp/reservd-apt." <<<"$out"
expect "a locked dpkg is not retried after apt-get update" bash -c "! grep -q update '$FAKE_APT_ARGS'"
: >"$FAKE_APT_ARGS"
out=$(FAKE_APT=unknown lib 'ensure_packages fakepkg' 2>&1)
rc=$?
expect "a package unknown to stale lists: installed after apt-get update (exit $rc)" [ "$rc" = 0 ]
expect "... in the order install, update, install" \
    [ "$(awk '{ print $NF }' "$FAKE_APT_ARGS" | paste -sd' ')" = "fakepkg update fakepkg" ]
expect "... and its log is removed on success" [ "$(ls "$work/tmp" | grep -c reservd-apt)" = 1 ]   # the failed run's
# what a user without sudo is told
rm -f "$work/bin/sudo"
stub id 'if [ "$1" = -u ]; then echo 1000; else exec /usr/bin/id "$@"; fi'
stub sudo 'exit 1'
out=$(lib 'ensure_packages fakepkg' 2>&1)
expect "without sudo: the exact apt-get line to run" grep -q "run: sudo apt-get install -y fakepkg" <<<"$out"
rm -rf "$work/bin"

# --- scripts/run.sh --help ------------------------------------------------------------
port=""
for _ in 1 2 3 4 5 6 7 8 9 10; do   # a port with no cluster and no data directory
    p=$((20000 + RANDOM % 5000))
    d=$(RESERVD_PG_PORT=$p lib pg_datadir)
    ss -ltn 2>/dev/null | grep -q ":$p " || [ -e "$d" ] || { port=$p; break; }
done
[ -n "$port" ] || bad "no free port for the run.sh checks"
datadir=$(RESERVD_PG_PORT=$port lib pg_datadir)
(cd "$repo" && RESERVD_PG_PORT=$port timeout 600 scripts/run.sh --help) >"$work/help1" 2>"$work/help1.err"
rc=$?
expect "scripts/run.sh --help exits 0" [ "$rc" = 0 ]
expect "scripts/run.sh --help prints reservd's usage" grep -q '^usage: .*reservd \[options\]' "$work/help1"
expect "scripts/run.sh --help starts no PostgreSQL (no $datadir)" [ ! -e "$datadir" ]
expect "scripts/run.sh --help starts no PostgreSQL (nothing on :$port)" bash -c "! ss -ltn | grep -q ':$port '"
(cd "$repo" && RESERVD_PG_PORT=$port timeout 600 scripts/run.sh --help) >"$work/help2" 2>"$work/help2.err"
expect "a second run with nothing to rebuild prints nothing on stderr" [ ! -s "$work/help2.err" ]
[ -s "$work/help2.err" ] && sed 's/^/    /' "$work/help2.err" | head -n 20
expect "... and its tree is configured without the tests" \
    grep -qx 'RESERVD_BUILD_TESTS:BOOL=OFF' "$repo/build/release/CMakeCache.txt"
version=$(cd "$repo" && RESERVD_PG_PORT=$port scripts/run.sh --version 2>&1)
expect "scripts/run.sh --version prints only the version ($version)" grep -qxE 'reservd [0-9]+\.[0-9]+\.[0-9]+' <<<"$version"
expect "scripts/run.sh --version starts no PostgreSQL" [ ! -e "$datadir" ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
