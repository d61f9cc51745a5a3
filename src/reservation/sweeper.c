/* The sweeper: a thread that writes the expiry of overdue holds (status
 * EXPIRED, expired_at) soon after they fall due, so that the table tells
 * the truth without a client's help. Clients never depend on it: every
 * locked path expires its event's overdue holds first, and reads leave
 * them out (sql/migrations/0003). reservd_sweep locks each event row with
 * SKIP LOCKED, so several instances (or a request holding the row) never
 * wait on one another and never expire one hold twice. Only
 * transaction-scoped state: each sweep is one statement. */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "strategy.h"

/* One sweep's bounds: events per statement, holds per event, statements
 * in a row while more are due. Small enough that a sweep holds no event
 * for long; a backlog drains at up to 100 x 1,000 holds a statement. */
#define SWEEP_EVENTS "100"
#define SWEEP_HOLDS  "1000"
#define SWEEP_ROUNDS 10
/* How long a sweep may wait for a pooled connection. */
#define SWEEP_ACQUIRE_MS 1000

struct sweeper {
    struct db_pool *pool;
    struct metrics *metrics;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    bool stop;
};

static struct timespec after_ms(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* One statement; true when more may be due. */
static bool sweep_once(struct sweeper *sw, struct db_conn *conn)
{
    const char *params[] = { SWEEP_EVENTS, SWEEP_HOLDS };
    PGresult *res = db_exec(conn, STMT_SWEEP, 2, params);
    struct sweep_row row;
    bool more = false;
    if (res && db_result_classify(res) == DB_RESULT_OK && sweep_row_decode(res, 0, &row) == 0) {
        metrics_count_holds_expired(sw->metrics, row.expired);
        if (row.expired > 0)
            log_debug("sweeper: %d holds expired", row.expired);
        more = row.more;
    } else {
        log_warn("sweeper: %s", res ? PQresultErrorMessage(res) : "connection lost");
    }
    PQclear(res);
    return more;
}

static void sweep(struct sweeper *sw)
{
    struct timespec deadline = after_ms(SWEEP_ACQUIRE_MS);
    struct db_conn *conn;
    if (db_pool_acquire(sw->pool, &deadline, DB_USE_ANY, &conn) != DB_OK)
        return; /* the database is away or busy: next time */
    for (int round = 0; round < SWEEP_ROUNDS && sweep_once(sw, conn); round++)
        ;
    db_pool_release(sw->pool, conn);
}

static void *sweeper_main(void *arg)
{
    struct sweeper *sw = arg;
    pthread_mutex_lock(&sw->lock);
    while (!sw->stop) {
        pthread_mutex_unlock(&sw->lock);
        sweep(sw);
        pthread_mutex_lock(&sw->lock);
        struct timespec next = after_ms(sw->interval_ms);
        while (!sw->stop && pthread_cond_timedwait(&sw->wake, &sw->lock, &next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&sw->lock);
    return NULL;
}

int sweeper_start(struct db_pool *pool, struct metrics *metrics, int interval_ms,
                  struct sweeper **out)
{
    struct sweeper *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return -1;
    sw->pool = pool;
    sw->metrics = metrics;
    sw->interval_ms = interval_ms;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sw->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&sw->lock, NULL);
    if (pthread_create(&sw->thread, NULL, sweeper_main, sw) != 0) {
        pthread_cond_destroy(&sw->wake);
        pthread_mutex_destroy(&sw->lock);
        free(sw);
        return -1;
    }
    *out = sw;
    return 0;
}

void sweeper_stop(struct sweeper *sw)
{
    if (!sw)
        return;
    pthread_mutex_lock(&sw->lock);
    sw->stop = true;
    pthread_cond_signal(&sw->wake);
    pthread_mutex_unlock(&sw->lock);
    pthread_join(sw->thread, NULL);
    pthread_cond_destroy(&sw->wake);
    pthread_mutex_destroy(&sw->lock);
    free(sw);
}
