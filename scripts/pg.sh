#!/usr/bin/env bash
# Manage the private PostgreSQL cluster (127.0.0.1:$RESERVD_PG_PORT, see lib.sh):
#   scripts/pg.sh start     start it (initdb on first use); prints the admin URL
#   scripts/pg.sh stop      stop it
#   scripts/pg.sh url       the admin URL (database postgres)
#   scripts/pg.sh db-url    the URL of the database scripts/run.sh serves ($RESERVD_DB, default reservd)
#   scripts/pg.sh reset     drop that database and create it empty (stop scripts/run.sh first)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in
    start)  ensure_packages; pg_start; pg_admin_url ;;
    stop)   pg_stop ;;
    url)    pg_admin_url ;;
    db-url) pg_db_url ;;
    reset)  pg_start; pg_reset_db "$PG_DB"; log "database $PG_DB is empty: $(pg_db_url)" ;;
    *) echo "usage: scripts/pg.sh start|stop|url|db-url|reset" >&2; exit 2 ;;
esac
