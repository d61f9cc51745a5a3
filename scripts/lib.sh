# Shared helpers for the scripts in this folder. Sourced, not run.
# Everything here is idempotent: running a script twice does no harm.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEB_PACKAGES="build-essential cmake pkg-config libmicrohttpd-dev libpq-dev libjansson-dev libcmocka-dev libjwt-dev libssl-dev openssl postgresql postgresql-contrib curl"
# The private cluster's port: 25432 for root (CI), 26000 + uid % 1000 for
# anyone else, so that two people on one machine never share a cluster by
# accident; RESERVD_PG_PORT overrides. All below the kernel's ephemeral
# range (32768-60999), so that thousands of load-test client sockets can
# never have taken it first.
default_pg_port() {
    local uid; uid=$(id -u)
    if [ "$uid" -eq 0 ]; then echo 25432; else echo $((26000 + uid % 1000)); fi
}
PG_PORT=${RESERVD_PG_PORT:-$(default_pg_port)}
# The database scripts/run.sh serves on that cluster.
PG_DB=${RESERVD_DB:-reservd}
# How long apt waits for another apt/dpkg to let go of its lock, seconds.
APT_LOCK_TIMEOUT=${RESERVD_APT_LOCK_TIMEOUT:-300}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt-get install as root (or through sudo, given as "$1" = sudo): waits
# for a busy dpkg lock instead of failing, keeps apt's output in a log
# file and shows its tail when it fails. Updates the lists only when the
# first try did not find a package (no lists yet, or stale ones).
apt_install() {
    local sudo=() apt_log
    [ "${1:-}" = sudo ] && { sudo=(sudo); shift; }
    apt_log=$(mktemp "${TMPDIR:-/tmp}/reservd-apt.XXXXXX.log") || die "mktemp failed"
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
               -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT")
    log "installing: $* (waits up to ${APT_LOCK_TIMEOUT}s for the dpkg lock; log: $apt_log)"
    if "${apt[@]}" install "$@" >>"$apt_log" 2>&1 ||
        { grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch' "$apt_log" &&
            "${apt[@]}" update >>"$apt_log" 2>&1 && "${apt[@]}" install "$@" >>"$apt_log" 2>&1; }; then
        rm -f "$apt_log"
        return 0
    fi
    log "apt-get failed; the last lines of $apt_log:"
    tail -n 15 "$apt_log" | sed 's/^/    /' >&2
    die "${sudo[*]:+sudo }apt-get install $* failed (full output in $apt_log)"
}

# Install the Debian packages we need, or say exactly what to run.
ensure_packages() {
    local missing=() p
    for p in $DEB_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [ "$(id -u)" -eq 0 ]; then
        apt_install "${missing[@]}"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        apt_install sudo "${missing[@]}"
    else
        die "missing packages; run: sudo apt-get install -y ${missing[*]}"
    fi
}

# cmake configure + build into build/<type>; prints the build dir. The
# build's output goes to stderr, or, with quiet=quiet, to a log file that
# is shown only when the build fails (and one line when it did any work).
# targets: what to build (default: everything, tests included).
build_tree() {
    local type=${1:-RelWithDebInfo} sanitize=${2:-OFF} quiet=${3:-} targets=()
    [ $# -gt 3 ] && targets=(--target "${@:4}")
    local dir="$REPO_ROOT/build/${type,,}" tests=ON
    [ "$sanitize" = ON ] && dir="$REPO_ROOT/build/sanitize"
    [ ${#targets[@]} -gt 0 ] && tests=OFF
    cmake -S "$REPO_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DRESERVD_SANITIZE="$sanitize" \
        -DRESERVD_BUILD_TESTS="$tests" >/dev/null || die "cmake configure failed"
    if [ "$quiet" != quiet ]; then
        cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >&2 || die "build failed"
    else
        local out; out=$(mktemp "${TMPDIR:-/tmp}/reservd-build.XXXXXX.log") || die "mktemp failed"
        if ! cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >"$out" 2>&1; then
            tail -n 40 "$out" >&2
            rm -f "$out"
            die "build failed (in $dir)"
        fi
        grep -qE '(Building|Linking) ' "$out" && log "built ${targets[*]:1} in ${dir#"$REPO_ROOT"/}"
        rm -f "$out"
    fi
    printf '%s\n' "$dir"
}

# The private PostgreSQL cluster lives under .data/ (ignored by git).
# PostgreSQL refuses to run as root, so as root we run it as 'postgres'
# in a folder that user owns.
pg_bindir() { pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1; }

pg_as() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_datadir() {
    local base="$REPO_ROOT/.data"
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$REPO_ROOT" 2>/dev/null; then
        # the checkout is not reachable by 'postgres' (e.g. under /root)
        base="/var/tmp/reservd-$(printf '%s' "$REPO_ROOT" | md5sum | cut -c1-12)"
    fi
    printf '%s/pg%s\n' "$base" "$PG_PORT"
}

pg_admin_url() { printf 'postgresql://postgres@127.0.0.1:%s/postgres\n' "$PG_PORT"; }
# The URL of database $1 (default: the one scripts/run.sh serves).
pg_db_url() { printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "$PG_PORT" "${1:-$PG_DB}"; }

pg_start() {
    local bin data other
    bin=$(pg_bindir); data=$(pg_datadir)
    if ! pg_as "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 &&
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
        # another checkout's (or another user's) cluster already serves this port
        other=$(psql "$(pg_admin_url)" -XtAc "SHOW data_directory" 2>/dev/null || echo "unknown")
        log "PostgreSQL already answers on 127.0.0.1:$PG_PORT: the cluster in $other, not this" \
            "checkout's ($data); using it. Set RESERVD_PG_PORT to another port for one of your own."
        return 0
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown -R postgres: "$(dirname "$data")"
        log "initdb $data"
        pg_as "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null \
            || die "initdb failed"
        cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$data'
max_connections = 200
CONF
    fi
    if pg_as "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        return 0
    fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    pg_as "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
        || { tail -n 20 "$data/server.log" >&2; die "pg_ctl start failed"; }
}

pg_stop() {
    local data; data=$(pg_datadir)
    [ -f "$data/PG_VERSION" ] || return 0
    pg_as "$(pg_bindir)/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
}

# Create database $1 on the private cluster if it does not exist.
pg_ensure_db() {
    local db=$1 admin; admin=$(pg_admin_url)
    if [ "$(psql "$admin" -XtAv db="$db" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" != 1 ]; then
        psql "$admin" -Xqv db="$db" <<<'CREATE DATABASE :"db"' >/dev/null || die "cannot create database $db"
    fi
}

# Drop database $1 and create it empty (reservd migrates it when it starts).
# Refuses while anything is connected to it, e.g. a running scripts/run.sh.
pg_reset_db() {
    local db=$1 admin; admin=$(pg_admin_url)
    psql "$admin" -Xqv ON_ERROR_STOP=1 -v db="$db" <<<'DROP DATABASE IF EXISTS :"db"' >/dev/null 2>&1 \
        || die "cannot drop database $db: stop what is connected to it (scripts/run.sh?) first"
    psql "$admin" -Xqv ON_ERROR_STOP=1 -v db="$db" <<<'CREATE DATABASE :"db"' >/dev/null \
        || die "cannot create database $db"
}

# --- PgBouncer and HAProxy for several instances (tests/scale, loadtest/bench) --
# Both run unprivileged (as 'postgres' when root, like the cluster), from
# deploy/pgbouncer.ini and deploy/haproxy.cfg, with every file they write in
# DIR (made here; owned by whoever runs them). Debian's packages only: the
# distribution's services are never touched.
SCALE_PACKAGES="pgbouncer haproxy"
# Debian puts both in /usr/sbin, which a normal user's PATH may lack.
scale_bin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

scale_dir() {
    mkdir -p "$1" || die "cannot create $1"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$1"
    return 0
}

# pgbouncer_start DIR PORT DB [POOL]: PgBouncer on 127.0.0.1:PORT in
# transaction mode with deploy/pgbouncer.ini's pool settings (POOL: another
# default_pool_size), serving database DB of the private cluster under the
# same name (no passwords: auth_type any, the cluster trusts loopback), with
# deploy/pgbouncer.ini's connect_query (keep the two equal).
# Returns once it accepts connections.
pgbouncer_start() {
    local dir i port=$2 db=$3 pool=${4:-}
    scale_dir "$1"
    dir=$(cd "$1" && pwd)
    # deploy/pgbouncer.ini ends in its [pgbouncer] section: the lines after
    # the include override it (a second [pgbouncer] header would not: 1.18
    # then dropped the included settings)
    pg_as tee "$dir/pgbouncer.ini" >/dev/null <<INI
[databases]
$db = host=127.0.0.1 port=$PG_PORT dbname=$db user=postgres connect_query='SET lock_timeout = 5000; SET enable_seqscan = off; SET jit = off'
[pgbouncer]
%include $REPO_ROOT/deploy/pgbouncer.ini
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
auth_file =
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
${pool:+default_pool_size = $pool}
INI
    pg_as "$(scale_bin pgbouncer)" -d -q "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; return 1; }
    for i in $(seq 100); do
        "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" -d "$db" && return 0
        sleep 0.1
    done
    log "PgBouncer did not answer on 127.0.0.1:$port"; cat "$dir/pgbouncer.log" >&2
    return 1
}

# haproxy_start DIR PORT STATS_PORT BACKEND_PORT...: HAProxy on 127.0.0.1:PORT
# in front of reservd on 127.0.0.1:BACKEND_PORT (up to three), with its CSV
# stats on 127.0.0.1:STATS_PORT/stats;csv. HAPROXY_MAXCONN: its connection
# limit (two descriptors each; default 9000, for a 20,000 descriptor limit).
haproxy_start() {
    local dir i port=$2 stats=$3
    scale_dir "$1"
    dir=$(cd "$1" && pwd)
    shift 3
    local env=(HAPROXY_BIND="127.0.0.1:$port" HAPROXY_STATS_BIND="127.0.0.1:$stats"
               HAPROXY_MAXCONN="${HAPROXY_MAXCONN:-9000}" HAPROXY_PIDFILE="$dir/haproxy.pid")
    for i in 1 2 3; do
        env+=("RESERVD_$i=127.0.0.1:${!i:-1}")   # port 1: nothing listens, the server stays down
    done
    pg_as env "${env[@]}" "$(scale_bin haproxy)" -D -f "$REPO_ROOT/deploy/haproxy.cfg" \
        >"$dir/haproxy.out" 2>&1 || { cat "$dir/haproxy.out" >&2; return 1; }
    for i in $(seq 100); do
        curl -fs "http://127.0.0.1:$stats/stats;csv" >/dev/null && return 0
        sleep 0.1
    done
    log "HAProxy did not answer on 127.0.0.1:$stats"; return 1
}

# Stop what pgbouncer_start or haproxy_start started in DIR (by its pid file).
scale_stop() {
    local f pid
    for f in "$1/pgbouncer.pid" "$1/haproxy.pid"; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$f" 2>/dev/null || pg_as rm -f "$f"
    done
}
