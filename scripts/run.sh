#!/usr/bin/env bash
# Build and run reservd in the foreground on :3001 (SERVICE_PORT).
# Without DATABASE_URL it starts a private PostgreSQL cluster under .data/
# and serves its database $RESERVD_DB (default reservd); it prints that URL.
# Extra arguments go to reservd (see: scripts/run.sh --help); --help,
# --version and --list-strategies start no database. It makes an admin token
# under .data/ on the first run and prints where it is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_packages
# Only what running and load-testing need: no test binaries, and no
# output at all when nothing changed.
dir=$(build_tree Release OFF quiet reservd reservd-seed reservd-load)
for arg in "$@"; do
    case "$arg" in -h | --help | --version | --list-strategies) exec "$dir/reservd" "$@" ;; esac
done
if [ -z "${DATABASE_URL:-}" ]; then
    pg_start
    pg_ensure_db "$PG_DB"
    DATABASE_URL=$(pg_db_url)
    export DATABASE_URL
    log "DATABASE_URL=$DATABASE_URL (in another shell: export DATABASE_URL=\$(scripts/pg.sh db-url);" \
        "empty it: scripts/pg.sh reset)"
else
    log "using the DATABASE_URL of the environment"
fi
# An admin token of this checkout's own, made on the first run (reservd
# reads it from RESERVD_ADMIN_TOKEN_FILE; --admin-token-file overrides).
token_file=${RESERVD_ADMIN_TOKEN_FILE:-$REPO_ROOT/.data/admin-token}
if [ ! -s "$token_file" ]; then
    mkdir -p "$(dirname "$token_file")"
    (umask 077 && printf 'rsv_admin_%s\n' \
        "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" >"$token_file")
    log "made an admin token in $token_file"
fi
export RESERVD_ADMIN_TOKEN_FILE=$token_file
log "admin token: $token_file (curl -H \"authorization: Bearer \$(cat $token_file)\" ...)"
exec "$dir/reservd" "$@"
