# syntax=docker/dockerfile:1
# reservd container image: build on debian:12, run on debian:12-slim as a non-root user.
#   docker build -t reservd .
#   docker run -p 3001:3001 -e DATABASE_URL=postgresql://user:pass@host:5432/db reservd
# tests/docker/build_test.sh runs this file's `RUN cmake ...` instruction outside Docker:
# keep the whole build (and the copy into dist/) in that one RUN, with paths relative to WORKDIR.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libmicrohttpd-dev libpq-dev libjansson-dev libjwt-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRESERVD_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" \
 && install -D -s -m 0755 build/reservd dist/bin/reservd \
 && install -D -s -m 0755 build/src/tools/seed/reservd-seed dist/bin/reservd-seed \
 && install -D -s -m 0755 build/loadtest/reservd-load dist/bin/reservd-load

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libpq5 libjansson4 libjwt0 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin reservd
COPY --from=build /src/dist/bin/ /usr/local/bin/
USER reservd:reservd
# reservd listens on 0.0.0.0:$SERVICE_PORT and connects to $DATABASE_URL (a libpq URI).
ENV SERVICE_PORT=3001
EXPOSE 3001
# No curl in the slim image: ask /livez through bash's /dev/tcp.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SERVICE_PORT:-3001} && printf 'GET /livez HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["reservd"]
