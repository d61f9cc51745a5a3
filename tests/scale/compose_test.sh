#!/usr/bin/env bash
# The scale deployment's files, without a Docker engine:
#   compose_test.sh REPO_ROOT
# docker-compose.scale.yml is accepted by `docker-compose config` and wires
# what deploy/ expects (three replicas through PgBouncer with --db-prepared
# off, HAProxy on 3001 with deploy/haproxy.cfg, PgBouncer with
# deploy/pgbouncer.ini); HAProxy accepts deploy/haproxy.cfg and its servers
# are the compose services. Ends with "N passed, N failed".
set -uo pipefail
root=$(cd "${1:?repository root}" && pwd)
. "$root/tests/support/checks.sh"
cd "$root" || exit 2
compose=$(command -v docker-compose || true)
if [ -z "$compose" ]; then fail "docker-compose is not installed (scripts/test.sh installs it)"; finish; fi
resolved=$(mktemp)
trap 'rm -f "$resolved"' EXIT
check "docker-compose config accepts docker-compose.scale.yml" \
    env -u SERVICE_PORT -u POSTGRES_PASSWORD "$compose" -f docker-compose.scale.yml config -q
env -u SERVICE_PORT -u POSTGRES_PASSWORD "$compose" -f docker-compose.scale.yml config >"$resolved" 2>/dev/null
while read -r verdict what; do
    if [ "$verdict" = ok ]; then pass "$what"; else fail "$what"; fi
done < <(python3 - "$resolved" <<'PY'
import sys, yaml
try:
    services = yaml.safe_load(open(sys.argv[1]))["services"]
except Exception as e:
    print("FAIL the resolved compose file does not parse:", e); sys.exit()
def say(ok, what): print("ok" if ok else "FAIL", what)
def source(v): # long or short volume syntax
    return v.get("source", "") if isinstance(v, dict) else str(v).split(":")[0]
def published(p): # long or short port syntax: "host:container" pairs
    if isinstance(p, dict):
        return (str(p.get("published")), str(p.get("target")))
    parts = str(p).split("/")[0].split(":")
    return (parts[-2] if len(parts) > 1 else "", parts[-1])
for name in ("reservd1", "reservd2", "reservd3"):
    env = (services.get(name) or {}).get("environment") or {}
    say(env.get("RESERVD_DB_PREPARED") == "off", f"{name}: RESERVD_DB_PREPARED=off")
    say(str(env.get("RESERVD_DRAIN_DELAY_MS", "0")).isdigit() and int(env.get("RESERVD_DRAIN_DELAY_MS", "0")) > 2000,
        f"{name}: RESERVD_DRAIN_DELAY_MS above HAProxy's 2 s to mark it down ({env.get('RESERVD_DRAIN_DELAY_MS')})")
    say(str(env.get("DATABASE_URL", "")).startswith("postgresql://postgres@pgbouncer:6432/"),
        f"{name}: DATABASE_URL is PgBouncer ({env.get('DATABASE_URL')})")
    say(env.get("PGPASSWORD") == "daphne", f"{name}: PGPASSWORD from POSTGRES_PASSWORD (default daphne)")
hap = services.get("haproxy") or {}
say(("3001", "3001") in [published(p) for p in hap.get("ports", [])],
    "haproxy publishes 3001")
say(any(source(v).endswith("/deploy/haproxy.cfg") for v in hap.get("volumes", [])),
    "haproxy mounts deploy/haproxy.cfg")
bouncer = services.get("pgbouncer") or {}
say(any(source(v).endswith("/deploy/pgbouncer.ini") for v in bouncer.get("volumes", [])),
    "pgbouncer mounts deploy/pgbouncer.ini")
say((bouncer.get("environment") or {}).get("POSTGRES_PASSWORD") ==
    ((services.get("db") or {}).get("environment") or {}).get("POSTGRES_PASSWORD"),
    "pgbouncer and the database get one password")
PY
)
hap=$(command -v haproxy || echo /usr/sbin/haproxy)
if [ -x "$hap" ]; then
    # the compose names do not resolve here: HAProxy starts them down (a warning)
    check "haproxy -c accepts deploy/haproxy.cfg" "$hap" -c -q -f deploy/haproxy.cfg
    servers=$(awk '$1 == "server" { print $2 "=" $3 }' deploy/haproxy.cfg | tr '\n' ' ')
    check "HAProxy's servers default to the compose services ($servers)" \
        test "$servers" = 'reservd1="${RESERVD_1-reservd1:3001}" reservd2="${RESERVD_2-reservd2:3001}" reservd3="${RESERVD_3-reservd3:3001}" '
else
    fail "haproxy is not installed (scripts/test.sh installs it)"
fi
check "deploy/pgbouncer.ini pools by transaction" grep -qx 'pool_mode = transaction' deploy/pgbouncer.ini
check "deploy/pgbouncer.ini ends in its [pgbouncer] section (tests/scale overrides it there)" \
    test "$(grep -E '^\[' deploy/pgbouncer.ini | tail -n1)" = "[pgbouncer]"
finish
