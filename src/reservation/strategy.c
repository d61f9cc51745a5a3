/* The reservation strategies behind reservation_submit(). The table at the
 * bottom is the whole seam.
 *
 *   for-update  one transaction per request, event row locked (default)
 *   batch       requests for one event granted together (batch.c)
 *   atomic      one conditional UPDATE takes the ticket (comparison point)
 *   unsafe      the original app's count-then-insert race (teaching only)
 *
 * for-update and batch queue requests per event (lane.c): one worker runs
 * an event's requests at a time, which is cheaper than queueing on the row
 * lock inside PostgreSQL (loadtest/RESULTS.md: pgbench on one hot row,
 * 3,477 tps with one client, 2,032 with sixteen). atomic and unsafe run
 * each request on its own worker and let the database sort them out, as
 * the designs they stand for would. */

#include "reservation.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db.h"
#include "lane.h"
#include "log.h"

/* One request on conn (atomic, unsafe). */
typedef enum reservation_outcome (*single_fn)(struct db_conn *conn,
                                              struct reservation_request *r);

#define HINT_STRIPES 1024

struct reservation_strategy {
    struct db_pool *pool;
    struct workers *workers;
    struct lanes *lanes;       /* for-update, batch */
    single_fn single;          /* atomic, unsafe */
    /* for-update, per stripe: the event whose last locked transaction found
     * tickets left. Only a hint to skip the committed-read check while an
     * event is selling; the locked statement decides every request. */
    _Atomic int64_t had_room[HINT_STRIPES];
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

/* Run a reservd_reserve_* statement ($1 = event, $2 = user) whose row is
 * (outcome, reservation id, reserved at ms). */
static enum reservation_outcome run_granting(struct db_conn *conn, enum db_statement stmt,
                                             struct reservation_request *r)
{
    char ev[24], user[24];
    snprintf(ev, sizeof(ev), "%lld", (long long)r->event_id);
    snprintf(user, sizeof(user), "%lld", (long long)r->user_id);
    const char *params[] = {ev, user};
    PGresult *res = db_exec(conn, stmt, 2, params);
    enum reservation_outcome out;
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != 1)
        out = failure_outcome(res);
    else if (reservation_outcome_parse(PQgetvalue(res, 0, 0), &out) != 0)
        out = RESERVATION_UNAVAILABLE;
    else if (out == RESERVATION_RESERVED) {
        r->grant.id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        r->grant.reserved_at_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    PQclear(res);
    return out;
}

/* Committed read for the whole group: answers what cannot succeed (sold
 * out, unknown, duplicate) and leaves again = true on the rest. */
static void precheck_group(struct db_conn *conn, int64_t event_id,
                           struct reservation_request **group, int n)
{
    enum reservation_outcome fail = RESERVATION_UNAVAILABLE;
    char ev[24];
    char *users = lane_group_users(group, n);
    PGresult *res = NULL;
    if (!users)
        goto out;
    snprintf(ev, sizeof(ev), "%lld", (long long)event_id);
    const char *params[] = {ev, users};
    res = db_exec(conn, STMT_RESERVE_PRECHECK, 2, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != n) {
        fail = failure_outcome(res);
        goto out;
    }
    for (int i = 0; i < n; i++)
        group[i]->outcome = RESERVATION_UNAVAILABLE;   /* until its row says */
    for (int row = 0; row < n; row++) {
        int ord = atoi(PQgetvalue(res, row, 0));
        if (ord < 1 || ord > n)
            continue;   /* cannot happen: ord is the array position */
        struct reservation_request *r = group[ord - 1];
        const char *text = PQgetvalue(res, row, 1);
        if (strcmp(text, "available") == 0)
            r->again = true;
        else if (reservation_outcome_parse(text, &r->outcome) != 0)
            r->outcome = RESERVATION_UNAVAILABLE;
    }
    fail = RESERVATION_RESERVED;   /* every request has its own answer */
out:
    if (fail != RESERVATION_RESERVED)
        for (int i = 0; i < n; i++)
            group[i]->outcome = fail;
    PQclear(res);
    free(users);
}

/* for-update, for one event's group: the committed read answers what it
 * can; the rest run the locked statement one by one, each its own
 * transaction. Once one finds the event full, the others go back to the
 * queue and meet the committed read again (which now says sold out, or
 * available if a cancellation returned a ticket meanwhile). Once one waits
 * out the lock timeout, the others are answered busy rather than waiting
 * their turn at the same lock; so a group ends within about one lock
 * timeout, which bounds how long requests queued behind it wait. */
static void for_update_run(void *ctx, struct db_conn *conn, int64_t event_id,
                           struct reservation_request **group, int n)
{
    struct reservation_strategy *s = ctx;
    _Atomic int64_t *hint = &s->had_room[(uint64_t)event_id % HINT_STRIPES];
    if (atomic_load_explicit(hint, memory_order_relaxed) == event_id)
        for (int i = 0; i < n; i++)
            group[i]->again = true;
    else
        precheck_group(conn, event_id, group, n);

    bool busy = false;   /* a lock wait ran out: the others would wait too */
    for (int i = 0; i < n; i++) {
        struct reservation_request *r = group[i];
        if (!r->again)
            continue;
        r->again = false;
        if (busy || lane_request_expired(r)) {
            r->outcome = RESERVATION_BUSY;
            continue;
        }
        r->outcome = run_granting(conn, STMT_RESERVE_FOR_UPDATE, r);
        if (r->outcome == RESERVATION_BUSY) {
            busy = true;
        } else if (r->outcome == RESERVATION_RESERVED) {
            atomic_store_explicit(hint, event_id, memory_order_relaxed);
        } else if (r->outcome == RESERVATION_SOLD_OUT ||
                   r->outcome == RESERVATION_EVENT_NOT_FOUND) {
            atomic_store_explicit(hint, 0, memory_order_relaxed);
            break;   /* the rest (again = true) go back to the queue */
        }
    }
}

static enum reservation_outcome atomic_single(struct db_conn *conn,
                                              struct reservation_request *r)
{
    return run_granting(conn, STMT_RESERVE_ATOMIC, r);
}

/* The original app's logic: count, then insert, with no lock in between.
 * Two requests that count at once both insert; that is the oversell this
 * strategy exists to show. The counter column is left alone (its CHECK
 * would refuse the oversell); the active rows tell the truth. */
static enum reservation_outcome unsafe_single(struct db_conn *conn,
                                              struct reservation_request *r)
{
    char ev[24], user[24];
    snprintf(ev, sizeof(ev), "%lld", (long long)r->event_id);
    snprintf(user, sizeof(user), "%lld", (long long)r->user_id);
    const char *params[] = {ev, user};
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
        r->grant.id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        r->grant.reserved_at_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        out = RESERVATION_RESERVED;
    }
    if (db_command(conn, "COMMIT") != 0)
        out = RESERVATION_UNAVAILABLE;
done:
    PQclear(res);   /* the pool rolls back anything left open */
    return out;
}

/* A worker job: one request of a single_fn strategy. */
static void run_single(struct work *work)
{
    struct reservation_request *r =
        (struct reservation_request *)((char *)work - offsetof(struct reservation_request, work));
    struct reservation_strategy *s = r->strategy;
    struct db_conn *conn;
    int rc = db_pool_acquire(s->pool, &r->deadline, &conn);
    if (rc == DB_OK) {
        r->outcome = s->single(conn, r);
        db_pool_release(s->pool, conn);
    } else {
        r->outcome = rc == DB_BUSY ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
    }
    r->done(r);
}

static const struct {
    const char *name;
    lane_run_fn group;         /* run per event group, or */
    single_fn single;          /* run per request */
} strategies[] = {
    {"for-update", for_update_run, NULL},
    {"batch", batch_run, NULL},
    {"atomic", NULL, atomic_single},
    {"unsafe", NULL, unsafe_single},
};

int reservation_strategy_create(const struct reservation_options *opts, struct db_pool *pool,
                                struct workers *workers, struct reservation_strategy **out,
                                char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
        if (strcmp(opts->strategy, strategies[i].name) != 0)
            continue;
        struct reservation_strategy *s = calloc(1, sizeof(*s));
        if (!s) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->pool = pool;
        s->workers = workers;
        s->single = strategies[i].single;
        /* Only batch waits for a group to fill: for-update runs its
         * requests one by one anyway. */
        int wait_us = strategies[i].group == batch_run ? opts->batch_wait_us : 0;
        if (strategies[i].group &&
            lanes_create(pool, workers, opts->batch_max, wait_us, strategies[i].group, s,
                         &s->lanes) != 0) {
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
    lanes_destroy(s->lanes);
    free(s);
}

void reservation_submit(struct reservation_strategy *s, struct reservation_request *r)
{
    r->strategy = s;
    if (s->lanes) {
        lanes_submit(s->lanes, r);
        return;
    }
    r->work.run = run_single;
    workers_submit(s->workers, &r->work);
}
