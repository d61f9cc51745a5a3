# Sourced by the shell tests: start reservd on a free loopback port.
#   start_reservd BIN DATABASE_URL LOG_FILE [EXTRA_ARG...]
# Sets $port and $pid and returns 0 once /readyz answers (a pooled
# connection works); returns 1 (no server left running) when it never does.
# A random port may have been taken meanwhile: up to five are tried, all
# below the kernel's ephemeral range.
# It also exports an admin token of the test's own: RESERVD_ADMIN_TOKENS for
# the server, RESERVD_TOKEN for reservd-load, and $auth_header for curl -H.
start_reservd() {
    local bin=$1 url=$2 log=$3 try i
    shift 3
    if [ -z "${RESERVD_ADMIN_TOKENS:-}" ]; then
        RESERVD_ADMIN_TOKENS="rsv_admin_shell_$$_${RANDOM}${RANDOM}${RANDOM}"
        export RESERVD_ADMIN_TOKENS RESERVD_TOKEN=$RESERVD_ADMIN_TOKENS
    fi
    auth_header="authorization: Bearer ${RESERVD_ADMIN_TOKENS%%,*}"
    for try in 1 2 3 4 5; do
        port=$((10000 + RANDOM % 20000))
        "$bin" --bind 127.0.0.1 --port "$port" --database-url "$url" --log-level warn "$@" 2>"$log" &
        pid=$!
        for i in $(seq 600); do
            curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
    done
    return 1
}
