#!/usr/bin/env bash
# Build and run the whole test suite against a private PostgreSQL cluster.
#   scripts/test.sh              normal build
#   scripts/test.sh --sanitize   ASan + UBSan build
# Extra arguments go to ctest (e.g. -R users).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
sanitize=OFF
if [ "${1:-}" = --sanitize ]; then sanitize=ON; shift; fi
ensure_packages docker-compose clang-format $SCALE_PACKAGES   # the compose files, the C format and the scale test (tests/scale) need them
dir=$(build_tree Debug "$sanitize")
pg_start
export RESERVD_TEST_ADMIN_URL=${RESERVD_TEST_ADMIN_URL:-$(pg_admin_url)}
# each file descriptor is a client connection in the concurrency tests
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$dir"
ctest --output-on-failure --timeout 600 "$@"
