#!/usr/bin/env bash
# Build and run reservd in the foreground on :3001 (SERVICE_PORT).
# Without DATABASE_URL it starts a private PostgreSQL cluster under .data/.
# Extra arguments go to reservd (see: scripts/run.sh --help).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_packages
dir=$(build_tree Release)
if [ -z "${DATABASE_URL:-}" ]; then
    pg_start
    pg_ensure_db reservd
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/reservd"
fi
exec "$dir/reservd" "$@"
