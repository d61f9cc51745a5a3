/* reservd: start-up, signal handling and orderly shutdown. */

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "reservation.h"
#include "server.h"
#include "workers.h"

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

/* Each client connection is a descriptor; use all we may. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("cannot raise the open-file limit");
    }
}

/* A limit the descriptors can honour: leave room for the pool, the logs
 * and libmicrohttpd's own limit, which sits above ours. */
static int usable_connections(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return cfg->max_connections;
    long room = (long)rl.rlim_cur - cfg->pool_size - 64;
    while (room > 16 &&
           http_mhd_connection_limit((int)room) > (long)rl.rlim_cur - cfg->pool_size - 64)
        room -= room / 16 + 1;
    if (room < cfg->max_connections) {
        log_warn("max-connections lowered from %d to %ld by the open-file limit (%ld)",
                 cfg->max_connections, room, (long)rl.rlim_cur);
        return room > 16 ? (int)room : 16;
    }
    return cfg->max_connections;
}

/* --drain-delay-ms: not ready (/readyz 503) but serving, for delay_ms or
 * until another signal of stop arrives. */
static void leave_slowly(struct http_server *server, const sigset_t *stop, int sig, int delay_ms)
{
    http_server_leave(server);
    log_info("received %s; /readyz answers 503 for %d ms while requests are still served, then "
             "the shutdown begins (another SIGTERM or SIGINT begins it at once)",
             sig == SIGINT ? "SIGINT" : "SIGTERM", delay_ms);
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += delay_ms / 1000;
    end.tv_nsec += (long)(delay_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left_ns =
            (long long)(end.tv_sec - now.tv_sec) * 1000000000LL + (end.tv_nsec - now.tv_nsec);
        if (left_ns <= 0)
            return;
        struct timespec left = { (time_t)(left_ns / 1000000000LL), (long)(left_ns % 1000000000LL) };
        int again = sigtimedwait(stop, NULL, &left);
        if (again > 0) {
            log_info("received %s again; the shutdown begins now",
                     again == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        if (errno != EINTR && errno != EAGAIN) { /* cannot happen with a valid set */
            log_error("cannot wait for signals: %s; the shutdown begins now", strerror(errno));
            return;
        }
    }
}

static int serve(struct app *app)
{
    char err[512];
    const struct config *cfg = &app->cfg;
    struct workers *workers = NULL;
    struct http_server *server = NULL;
    int rc = -1;

    /* Signals are taken synchronously by this thread only. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        log_error("cannot set up signal handling");
        return -1;
    }

    if (db_schema_apply(cfg->database_url, cfg->db_wait_ms, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    struct db_pool_options pool_opts = {
        .conninfo = cfg->database_url,
        .size = cfg->pool_size,
        .lock_timeout_ms = cfg->lock_timeout_ms,
        .prepared = strcmp(cfg->db_prepared, "on") == 0,
    };
    struct reservation_options res_opts = {
        .strategy = cfg->strategy,
        .batch_max = cfg->batch_max,
        .batch_wait_us = cfg->batch_wait_us,
        .sweep_interval_ms = cfg->sweep_interval_ms,
    };
    if (metrics_create(app_routes, app_nroutes, &app->metrics) != 0 ||
        workers_start(cfg->workers, &workers) != 0) {
        log_error("cannot start worker threads");
        goto out;
    }
    res_opts.metrics = app->metrics;
    if (db_pool_create(&pool_opts, &app->pool, err, sizeof(err)) != 0 ||
        reservation_strategy_create(&res_opts, app->pool, workers, &app->reservations, err,
                                    sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (idempotency_create(cfg->idempotency_ttl_s, &app->idempotency) != 0 ||
        idempotency_sweeper_start(app->idempotency, app->pool) != 0) {
        log_error("cannot start the idempotency-key sweeper");
        goto out;
    }
    struct http_server_options http_opts = {
        .bind = cfg->bind,
        .port = cfg->port,
        .threads = cfg->http_threads,
        .max_connections = usable_connections(cfg),
        .connection_timeout_s = cfg->connection_timeout_s,
        .read_timeout_ms = cfg->read_timeout_ms,
        .connection_memory = cfg->connection_memory,
        .request_timeout_ms = cfg->acquire_timeout_ms,
        .routes = app_routes,
        .nroutes = app_nroutes,
        .app = app,
        .workers = workers,
        .gate = &auth_gate,
    };
    if (http_server_start(&http_opts, &server, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (auth_is_off(app->auth))
        log_warn("access control is OFF (--auth off): anyone may read every user's data and "
                 "cancel anyone's reservation; for teaching and benchmarks only");
    const struct reservation_strategy_info *strategy = reservation_strategy_find(cfg->strategy);
    if (strategy && strategy->needs_ack)
        log_warn("reservation strategy '%s' OVERSELLS tickets under concurrency; "
                 "never use it outside a demonstration",
                 strategy->name);
    struct db_target db = { "?", "?", "?", "?" };
    if (db_target_of(cfg->database_url, &db) != 0)
        log_debug("cannot parse the database URL for the start-up line");
    log_info("reservd listening on %s:%d (database %s:%s/%s, http threads %d, workers %d, pool %d, "
             "strategy %s, max connections %d)",
             cfg->bind, cfg->port, db.host, db.port, db.dbname, cfg->http_threads, cfg->workers,
             cfg->pool_size, cfg->strategy, http_opts.max_connections);

    int sig = 0;
    if (sigwait(&stop, &sig) != 0) { /* cannot happen with a valid set: stop as for SIGTERM */
        log_error("cannot wait for signals; stopping");
        sig = SIGTERM;
    }
    if (cfg->drain_delay_ms > 0)
        leave_slowly(server, &stop, sig, cfg->drain_delay_ms);
    log_info("received %s; finishing in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    if (http_server_stop(server, cfg->shutdown_grace_ms) != 0) {
        /* Requests still unfinished: exit without waiting for them (their
         * outcomes are in the database, findable by user and event). */
        log_error("exiting with requests unfinished");
        _exit(1);
    }
    idempotency_destroy(app->idempotency); /* its sweeper uses the pool */
    workers_stop(workers);
    reservation_strategy_destroy(app->reservations);
    db_pool_destroy(app->pool);
    metrics_destroy(app->metrics);
    if (rc == 0)
        log_info("reservd stopped");
    return rc;
}

/* Exit status after printing to stdout (--help, --version...): a write
 * that failed (a closed pipe, a full disk) is a failure, not a success. */
static int printed(void)
{
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

int main(int argc, char **argv)
{
    static struct app app; /* lives for the whole process; owned by main */
    char err[512];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    switch (config_load(&app.cfg, argc, argv, env_lookup, err, sizeof(err))) {
    case CONFIG_EXIT_HELP: config_usage(stdout, argv[0], (int)ncpu); return printed();
    case CONFIG_EXIT_VERSION: printf("reservd %s\n", config_version()); return printed();
    case CONFIG_EXIT_STRATEGIES: config_list_strategies(stdout); return printed();
    case CONFIG_ERROR: fprintf(stderr, "reservd: %s\n(see reservd --help)\n", err); return 2;
    case CONFIG_OK: break;
    }
    /* config_load checked both choices already */
    if (log_set_level(app.cfg.log_level) != 0 || log_set_format(app.cfg.log_format) != 0) {
        fprintf(stderr, "reservd: unknown log level or format\n");
        return 2;
    }
    /* Tokens and keys are read before anything opens: a bad one is a bad setting. */
    if (auth_create(&app.cfg, app_routes, app_nroutes, &app.auth, err, sizeof(err)) != 0) {
        fprintf(stderr, "reservd: %s\n", err);
        return 2;
    }
    /* glibc gives each busy thread its own arena; with dozens of workers
     * that doubles peak RSS under a spike (measured 120 MB vs 57 MB for
     * 10,000 connections). Two arenas are plenty for this workload. */
    if (mallopt(M_ARENA_MAX, 2) != 1) /* AddressSanitizer's allocator has no arenas */
        log_debug("cannot limit malloc arenas; peak memory may be higher");
    raise_fd_limit();
    int rc = serve(&app) == 0 ? 0 : 1;
    auth_destroy(app.auth);
    return rc;
}
