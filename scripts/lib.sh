# Shared helpers for the scripts in this folder. Sourced, not run.
# Everything here is idempotent: running a script twice does no harm.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEB_PACKAGES="build-essential cmake pkg-config libmicrohttpd-dev libpq-dev libjansson-dev libcmocka-dev postgresql postgresql-contrib curl"
# Below the kernel's ephemeral range (32768-60999), so that thousands of
# load-test client sockets can never have taken it first.
PG_PORT=${RESERVD_PG_PORT:-25432}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Install the Debian packages we need, or say exactly what to run.
ensure_packages() {
    local missing=() p
    for p in $DEB_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [ "$(id -u)" -eq 0 ]; then
        log "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # update only when a package is unknown to apt
        if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null \
                || die "apt-get install ${missing[*]} failed"
        fi
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
            || die "sudo apt-get install ${missing[*]} failed"
    else
        die "missing packages; run: sudo apt-get install -y ${missing[*]}"
    fi
}

# cmake configure + build into build/<type>; prints the build dir.
build_tree() {
    local type=${1:-RelWithDebInfo} sanitize=${2:-OFF}
    local dir="$REPO_ROOT/build/${type,,}"
    [ "$sanitize" = ON ] && dir="$REPO_ROOT/build/sanitize"
    cmake -S "$REPO_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DRESERVD_SANITIZE="$sanitize" >/dev/null \
        || die "cmake configure failed"
    cmake --build "$dir" -j"$(nproc)" >&2 || die "build failed"
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

pg_start() {
    local bin data
    bin=$(pg_bindir); data=$(pg_datadir)
    if ! pg_as "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 &&
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
        # another checkout's private cluster already serves this port
        log "PostgreSQL already answers on 127.0.0.1:$PG_PORT; using it"
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
    if [ "$(psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
        psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null || die "cannot create database $db"
    fi
}
