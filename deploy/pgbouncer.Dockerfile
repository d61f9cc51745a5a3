# PgBouncer from Debian 12's package (1.18, the version tests/scale runs),
# for docker-compose.scale.yml. It refuses to run as root: it runs as the
# package's postgres user, with deploy/pgbouncer.ini mounted and the
# userlist written from POSTGRES_PASSWORD when the container starts.
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbouncer \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres /etc/pgbouncer /var/run/postgresql
USER postgres
EXPOSE 6432
ENTRYPOINT ["sh", "-c", "printf '\"postgres\" \"%s\"\\n' \"$POSTGRES_PASSWORD\" > /etc/pgbouncer/userlist.txt && exec pgbouncer /etc/pgbouncer/pgbouncer.ini"]
