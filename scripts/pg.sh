#!/usr/bin/env bash
# Manage the private PostgreSQL cluster: scripts/pg.sh start|stop|url
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in
    start) ensure_packages; pg_start; pg_admin_url ;;
    stop)  pg_stop ;;
    url)   pg_admin_url ;;
    *) echo "usage: scripts/pg.sh start|stop|url" >&2; exit 2 ;;
esac
