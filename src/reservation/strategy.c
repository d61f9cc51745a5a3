/* The reservation strategies behind reservation_create(). Each one is a
 * function with the same signature; the table below is the whole seam.
 *
 *   for-update  one transaction per request, event row locked (default)
 *   atomic      one conditional UPDATE takes the ticket (comparison point)
 *   batch       requests for one event granted together (batch.c)
 *   unsafe      the original app's count-then-insert race (teaching only)
 */

#include "reservation.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db.h"
#include "log.h"

typedef enum reservation_outcome (*reserve_fn)(struct reservation_strategy *s, int64_t event_id,
                                               int64_t user_id, const struct timespec *deadline,
                                               struct reservation_grant *grant);

/* for-update lets one transaction per event run at a time from this
 * process: waiting here is cheaper than queueing on the row lock inside
 * PostgreSQL (loadtest/RESULTS.md: pgbench on one hot row, 3,477 tps with
 * one client, 2,032 with sixteen). Events share stripes by hash. */
#define GATE_STRIPES 1024

struct reservation_strategy {
    reserve_fn reserve;
    struct db_pool *pool;
    struct batcher *batcher;   /* batch only */
    pthread_mutex_t gate[GATE_STRIPES];
    /* Per stripe: the event whose last locked transaction found tickets
     * left. Only a hint to skip the committed-read check while an event is
     * selling; the locked statement decides every request. */
    _Atomic int64_t had_room[GATE_STRIPES];
};

int reservation_outcome_parse(const char *text, enum reservation_outcome *out)
{
    static const struct {
        const char *text;
        enum reservation_outcome outcome;
    } names[] = {
        {"reserved", RESERVATION_RESERVED},
        {"event_not_found", RESERVATION_EVENT_NOT_FOUND},
        {"user_not_found", RESERVATION_USER_NOT_FOUND},
        {"already_reserved", RESERVATION_ALREADY_RESERVED},
        {"sold_out", RESERVATION_SOLD_OUT},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(text, names[i].text) == 0) {
            *out = names[i].outcome;
            return 0;
        }
    return -1;
}

/* Outcome of a failed query: busy when a configured wait ran out. */
static enum reservation_outcome failure_outcome(const PGresult *res)
{
    if (res && db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT)
        return RESERVATION_BUSY;
    if (res && db_result_classify(res) == DB_RESULT_UNIQUE_VIOLATION)
        return RESERVATION_ALREADY_RESERVED;   /* the index backs the check */
    log_error("reservation failed: %s", res ? PQresultErrorMessage(res) : "connection lost");
    return RESERVATION_UNAVAILABLE;
}

static enum reservation_outcome acquire_outcome(int rc)
{
    return rc == DB_BUSY ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
}

/* Turns the single row of a reservation statement into an outcome. */
typedef enum reservation_outcome (*decide_fn)(const PGresult *res, void *ctx);

/* Run stmt($1 = event, $2 = user) on a pooled connection; one round trip. */
static enum reservation_outcome run_statement(struct reservation_strategy *s,
                                              enum db_statement stmt, int64_t event_id,
                                              int64_t user_id, const struct timespec *deadline,
                                              decide_fn decide, void *ctx)
{
    char ev[24], user[24];
    snprintf(ev, sizeof(ev), "%lld", (long long)event_id);
    snprintf(user, sizeof(user), "%lld", (long long)user_id);
    struct db_conn *conn;
    int rc = db_pool_acquire(s->pool, deadline, &conn);
    if (rc != DB_OK)
        return acquire_outcome(rc);
    const char *params[] = {ev, user};
    PGresult *res = db_exec(conn, stmt, 2, params);
    enum reservation_outcome out;
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != 1)
        out = failure_outcome(res);
    else
        out = decide(res, ctx);
    PQclear(res);
    db_pool_release(s->pool, conn);
    return out;
}

/* Row of a reservd_reserve_* function: outcome, reservation id, at_ms. */
static enum reservation_outcome decide_granted(const PGresult *res, void *ctx)
{
    struct reservation_grant *grant = ctx;
    enum reservation_outcome out;
    if (reservation_outcome_parse(PQgetvalue(res, 0, 0), &out) != 0)
        return RESERVATION_UNAVAILABLE;
    if (out == RESERVATION_RESERVED) {
        grant->id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        grant->reserved_at_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    return out;
}

/* Row of the precheck: a final outcome, or "available" (the locked
 * transaction must decide), reported through ctx. */
static enum reservation_outcome decide_precheck(const PGresult *res, void *ctx)
{
    bool *available = ctx;
    enum reservation_outcome out;
    *available = strcmp(PQgetvalue(res, 0, 0), "available") == 0;
    if (*available || reservation_outcome_parse(PQgetvalue(res, 0, 0), &out) != 0)
        return RESERVATION_UNAVAILABLE;
    return out;
}

/* for-update: a committed read answers what cannot succeed (sold out,
 * unknown, duplicate) without the gate or the row lock; the rest run the
 * locked transaction, one per event at a time. */
static enum reservation_outcome reserve_for_update(struct reservation_strategy *s,
                                                   int64_t event_id, int64_t user_id,
                                                   const struct timespec *deadline,
                                                   struct reservation_grant *grant)
{
    size_t stripe = (uint64_t)event_id % GATE_STRIPES;
    enum reservation_outcome out;
    if (atomic_load_explicit(&s->had_room[stripe], memory_order_relaxed) != event_id) {
        bool available = false;
        out = run_statement(s, STMT_RESERVE_PRECHECK, event_id, user_id, deadline,
                            decide_precheck, &available);
        if (!available)
            return out;
    }
    if (pthread_mutex_clocklock(&s->gate[stripe], CLOCK_MONOTONIC, deadline) != 0)
        return RESERVATION_BUSY;
    out = run_statement(s, STMT_RESERVE_FOR_UPDATE, event_id, user_id, deadline, decide_granted,
                        grant);
    if (out == RESERVATION_RESERVED)
        atomic_store_explicit(&s->had_room[stripe], event_id, memory_order_relaxed);
    else if (out == RESERVATION_SOLD_OUT || out == RESERVATION_EVENT_NOT_FOUND)
        atomic_store_explicit(&s->had_room[stripe], 0, memory_order_relaxed);
    pthread_mutex_unlock(&s->gate[stripe]);
    return out;
}

static enum reservation_outcome reserve_atomic(struct reservation_strategy *s, int64_t event_id,
                                               int64_t user_id, const struct timespec *deadline,
                                               struct reservation_grant *grant)
{
    return run_statement(s, STMT_RESERVE_ATOMIC, event_id, user_id, deadline, decide_granted,
                         grant);
}

static enum reservation_outcome reserve_batch(struct reservation_strategy *s, int64_t event_id,
                                              int64_t user_id, const struct timespec *deadline,
                                              struct reservation_grant *grant)
{
    return batcher_reserve(s->batcher, event_id, user_id, deadline, grant);
}

/* The original app's logic: count, then insert, with no lock in between.
 * Two requests that count at once both insert; that is the oversell this
 * strategy exists to show. The counter column is left alone (its CHECK
 * would refuse the oversell); the active rows tell the truth. */
static enum reservation_outcome reserve_unsafe(struct reservation_strategy *s, int64_t event_id,
                                               int64_t user_id, const struct timespec *deadline,
                                               struct reservation_grant *grant)
{
    char ev[24], user[24];
    snprintf(ev, sizeof(ev), "%lld", (long long)event_id);
    snprintf(user, sizeof(user), "%lld", (long long)user_id);
    const char *params[] = {ev, user};
    struct db_conn *conn;
    int rc = db_pool_acquire(s->pool, deadline, &conn);
    if (rc != DB_OK)
        return acquire_outcome(rc);
    enum reservation_outcome out = RESERVATION_UNAVAILABLE;
    PGresult *res = NULL;
    if (db_command(conn, "BEGIN") != 0)
        goto done;
    res = db_exec(conn, STMT_UNSAFE_CHECK, 2, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK) {
        out = failure_outcome(res);
        goto done;
    }
    if (PQgetisnull(res, 0, 0))
        out = RESERVATION_EVENT_NOT_FOUND;
    else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
        out = RESERVATION_USER_NOT_FOUND;
    else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0)
        out = RESERVATION_ALREADY_RESERVED;
    else if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) >= strtoll(PQgetvalue(res, 0, 0), NULL, 10))
        out = RESERVATION_SOLD_OUT;
    else {
        PQclear(res);
        res = db_exec(conn, STMT_UNSAFE_INSERT, 2, params);
        if (!res || db_result_classify(res) != DB_RESULT_OK) {
            out = failure_outcome(res);
            goto done;
        }
        grant->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        grant->reserved_at_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        out = RESERVATION_RESERVED;
    }
    if (db_command(conn, "COMMIT") != 0)
        out = RESERVATION_UNAVAILABLE;
done:
    PQclear(res);
    db_pool_release(s->pool, conn);   /* rolls back anything left open */
    return out;
}

static const struct {
    const char *name;
    reserve_fn reserve;
} strategies[] = {
    {"for-update", reserve_for_update},
    {"batch", reserve_batch},
    {"atomic", reserve_atomic},
    {"unsafe", reserve_unsafe},
};

int reservation_strategy_create(const struct reservation_options *opts, struct db_pool *pool,
                                struct reservation_strategy **out, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
        if (strcmp(opts->strategy, strategies[i].name) != 0)
            continue;
        struct reservation_strategy *s = calloc(1, sizeof(*s));
        if (!s) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int g = 0; g < GATE_STRIPES; g++)
            pthread_mutex_init(&s->gate[g], NULL);
        s->reserve = strategies[i].reserve;
        s->pool = pool;
        if (s->reserve == reserve_batch &&
            batcher_create(pool, opts->batch_max, opts->batch_wait_us, &s->batcher) != 0) {
            free(s);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *out = s;
        return 0;
    }
    snprintf(err, errlen, "unknown reservation strategy '%s'", opts->strategy);
    return -1;
}

void reservation_strategy_destroy(struct reservation_strategy *s)
{
    if (!s)
        return;
    batcher_destroy(s->batcher);
    for (int g = 0; g < GATE_STRIPES; g++)
        pthread_mutex_destroy(&s->gate[g]);
    free(s);
}

enum reservation_outcome reservation_create(struct reservation_strategy *s, int64_t event_id,
                                            int64_t user_id, const struct timespec *deadline,
                                            struct reservation_grant *grant)
{
    return s->reserve(s, event_id, user_id, deadline, grant);
}
