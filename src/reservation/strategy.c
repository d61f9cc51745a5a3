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
 * 2,745 tps with one client, 1,762 with sixteen). atomic and unsafe run
 * each request on its own worker and let the database sort them out, as
 * the designs they stand for would. */

#include "reservation.h"

#include <pthread.h>
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

/* for-update sends at most this many locked statements in one pipeline:
 * enough to keep PostgreSQL busy between WAL flushes, few enough that a
 * pipeline's answers are not held back long. */
#define PIPELINE_MAX 32
#define HINT_STRIPES 1024

struct reservation_strategy {
    struct db_pool *pool;
    struct workers *workers;
    struct lanes *lanes;       /* for-update, batch */
    single_fn single;          /* atomic, unsafe */
    /* atomic, unsafe: requests waiting for one of at most single_max
     * runners (as many as reservations may hold connections), so that
     * requests stuck behind a lock park no more workers than that. */
    pthread_mutex_t single_lock;
    struct reservation_request *single_head, *single_tail;
    int single_running, single_max;
    /* for-update and batch, per stripe: the event whose last locked
     * statement saw tickets left, and how many. Only a hint, to skip the committed read
     * while an event is selling and to size the next pipeline; the locked
     * statement decides every request. */
    pthread_mutex_t hint_lock;
    struct {
        int64_t event_id;
        int left;
    } hints[HINT_STRIPES];
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

/* Row 0 of a granting statement: outcome, reservation id, reserved at ms,
 * and (when left is not NULL) the tickets left after it. */
static enum reservation_outcome decide_granted(const PGresult *res, struct reservation_request *r,
                                              int *left)
{
    enum reservation_outcome out;
    if (reservation_outcome_parse(PQgetvalue(res, 0, 0), &out) != 0)
        return RESERVATION_UNAVAILABLE;
    if (out == RESERVATION_RESERVED) {
        r->grant.id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        r->grant.reserved_at_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    if (left)
        *left = PQgetisnull(res, 0, 3) ? 0 : atoi(PQgetvalue(res, 0, 3));
    return out;
}

/* Run a reservd_reserve_* statement ($1 = event, $2 = user, $3 = lock
 * budget) on r. */
static enum reservation_outcome run_granting(struct db_conn *conn, enum db_statement stmt,
                                             struct reservation_request *r)
{
    char ev[24], user[24], budget[DB_LOCK_BUDGET_SIZE];
    snprintf(ev, sizeof(ev), "%lld", (long long)r->event_id);
    snprintf(user, sizeof(user), "%lld", (long long)r->user_id);
    db_lock_budget(r->strategy->pool, &r->deadline, budget);
    const char *params[] = {ev, user, budget};
    PGresult *res = db_exec(conn, stmt, 3, params);
    enum reservation_outcome out;
    if (!res)
        r->unknown = true;   /* it may have committed before the connection died */
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != 1)
        out = failure_outcome(res);
    else
        out = decide_granted(res, r, NULL);
    PQclear(res);
    return out;
}

/* Committed read for the whole group: answers what cannot succeed (sold
 * out, unknown, duplicate) and leaves again = true on the rest. */
static void precheck_group(struct db_conn *conn, int64_t event_id,
                           struct reservation_request **group, int n, int *left)
{
    *left = 0;
    PGresult *res = lane_group_exec(conn, STMT_RESERVE_PRECHECK, event_id, group, n, NULL);
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != n) {
        enum reservation_outcome fail = failure_outcome(res);
        for (int i = 0; i < n; i++)
            group[i]->outcome = fail;
        PQclear(res);
        return;
    }
    for (int i = 0; i < n; i++)
        group[i]->outcome = RESERVATION_UNAVAILABLE;   /* until its row says */
    for (int row = 0; row < n; row++) {
        struct reservation_request *r = lane_group_row(res, row, group, n);
        if (!r)
            continue;   /* cannot happen: ord is the array position */
        const char *text = PQgetvalue(res, row, 1);
        if (!PQgetisnull(res, row, 2))
            *left = atoi(PQgetvalue(res, row, 2));
        if (strcmp(text, "available") == 0)
            r->again = true;
        else if (reservation_outcome_parse(text, &r->outcome) != 0)
            r->outcome = RESERVATION_UNAVAILABLE;
    }
    PQclear(res);
}

static int hint_get(struct reservation_strategy *s, int64_t event_id)
{
    size_t i = (uint64_t)event_id % HINT_STRIPES;
    pthread_mutex_lock(&s->hint_lock);
    int left = s->hints[i].event_id == event_id ? s->hints[i].left : 0;
    pthread_mutex_unlock(&s->hint_lock);
    return left;
}

static void hint_set(struct reservation_strategy *s, int64_t event_id, int left)
{
    size_t i = (uint64_t)event_id % HINT_STRIPES;
    pthread_mutex_lock(&s->hint_lock);
    if (left > 0) {
        s->hints[i].event_id = event_id;
        s->hints[i].left = left;
    } else if (s->hints[i].event_id == event_id) {
        s->hints[i].event_id = 0;
    }
    pthread_mutex_unlock(&s->hint_lock);
}

/* for-update's grant: each request its own transaction, pipelined so that
 * PostgreSQL goes from one to the next with no round trip between. The
 * first waits for the row lock (as long as its deadline allows), the others
 * are NOWAIT behind it: our own statements never overlap, so a NOWAIT one
 * that meets a lock met someone else's, and goes back to the queue. A
 * statement that completed is answered from its own result even when the
 * connection died after it; the ones after it are unknown. Returns true
 * when the first waited out the lock timeout. */
static bool for_update_grant(struct db_pool *pool, struct db_conn *conn,
                             struct reservation_request **undecided, int m, int *left)
{
    enum db_statement stmts[PIPELINE_MAX] = {0};
    char ids[PIPELINE_MAX][2][24], budgets[PIPELINE_MAX][DB_LOCK_BUDGET_SIZE];
    const char *params[PIPELINE_MAX * 3] = {0};
    PGresult *results[PIPELINE_MAX];
    if (m > PIPELINE_MAX)
        m = PIPELINE_MAX;   /* the rest stay undecided: back to the queue */
    for (int j = 0; j < m; j++) {
        snprintf(ids[j][0], sizeof(ids[j][0]), "%lld", (long long)undecided[j]->event_id);
        snprintf(ids[j][1], sizeof(ids[j][1]), "%lld", (long long)undecided[j]->user_id);
        db_lock_budget(pool, &undecided[j]->deadline, budgets[j]);
        params[3 * j] = ids[j][0];
        params[3 * j + 1] = ids[j][1];
        params[3 * j + 2] = budgets[j];
        stmts[j] = j == 0 ? STMT_RESERVE_FOR_UPDATE : STMT_RESERVE_FOR_UPDATE_NOWAIT;
    }
    int done = db_exec_pipelined(conn, stmts, m, 3, params, results);
    bool busy = false;
    if (done < m)
        *left = 0;
    for (int j = 0; j < m; j++) {
        struct reservation_request *r = undecided[j];
        PGresult *res = results[j];
        r->again = false;
        if (j >= done) {
            r->outcome = RESERVATION_UNAVAILABLE;
            r->unknown = true;
            continue;
        }
        if (db_result_classify(res) == DB_RESULT_OK && PQntuples(res) == 1) {
            r->outcome = decide_granted(res, r, left);
        } else if (db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT && j > 0 && !busy) {
            r->again = true;   /* NOWAIT met someone else's lock: queue again */
        } else {
            r->outcome = failure_outcome(res);
            busy = busy || r->outcome == RESERVATION_BUSY;
        }
        PQclear(res);
    }
    return busy;
}

/* Requests whose statement may have committed before its connection died:
 * ask a fresh connection whether each user now holds a reservation for
 * the event. Holding one is the truth for the client (201 with it); holding
 * none means nothing changed (503 unavailable stays). If the database
 * cannot be asked, 503 stays too, and the reservation, if any, is findable
 * by user and event. */
static void resolve_unknown(struct db_pool *pool, struct db_conn *conn, int64_t event_id,
                            struct reservation_request **group, int n)
{
    struct reservation_request *one[1], **unknown = n > 1 ? malloc((size_t)n * sizeof(*unknown)) : one;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (group[i]->unknown && unknown)
            unknown[k++] = group[i];
    for (int i = 0; i < n; i++)
        group[i]->unknown = false;
    if (k == 0 || db_pool_reconnect(pool, conn) != 0) {
        if (unknown != one)
            free(unknown);
        return;
    }
    PGresult *res = lane_group_exec(conn, STMT_RESERVE_RESOLVE, event_id, unknown, k, NULL);
    int found = 0;
    if (res && db_result_classify(res) == DB_RESULT_OK) {
        for (int row = 0; row < PQntuples(res); row++) {
            struct reservation_request *r = lane_group_row(res, row, unknown, k);
            if (!r)
                continue;
            r->outcome = RESERVATION_RESERVED;
            r->grant.id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
            r->grant.reserved_at_ms = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            found++;
        }
    }
    log_warn("connection lost mid-commit: %d of %d requests had reserved (%s)", found, k,
             res ? "resolved" : "could not ask");
    PQclear(res);
    if (unknown != one)
        free(unknown);
}

/* The locked step of a group: grants (or refuses) undecided[0..m) and
 * updates *left. True when a lock wait ran out. */
typedef bool (*grant_fn)(struct db_pool *pool, struct db_conn *conn,
                         struct reservation_request **undecided, int m, int *left);

/* for-update and batch, for one event's group. A committed read answers
 * what cannot succeed without the lock (skipped while the event is known
 * to be selling). The rest go through the grant step, up to max of them
 * (and up to the tickets left, if max_left); whatever is still undecided
 * goes back to the queue and meets the committed read again. If a lock wait runs out, the others are
 * answered busy rather than each waiting its turn at the same lock, so a
 * group ends within about one lock timeout. */
static void locked_group(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
                         struct reservation_request **group, int n, grant_fn grant, int max,
                         bool max_left)
{
    int left = hint_get(s, event_id);
    if (left > 0)
        for (int i = 0; i < n; i++)
            group[i]->again = true;
    else
        precheck_group(conn, event_id, group, n, &left);

    struct reservation_request **undecided = malloc((size_t)n * sizeof(*undecided));
    int m = 0;
    for (int i = 0; i < n && m < max && (!max_left || m < left); i++) {
        struct reservation_request *r = group[i];
        if (!r->again)
            continue;
        if (!undecided || lane_request_expired(r)) {
            r->again = false;
            r->outcome = undecided ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
            continue;
        }
        undecided[m++] = r;
    }
    bool busy = m > 0 && grant(s->pool, conn, undecided, m, &left);
    resolve_unknown(s->pool, conn, event_id, undecided, m);
    if (busy)   /* the others would wait at the same lock: answer them now */
        for (int i = 0; i < n; i++)
            if (group[i]->again) {
                group[i]->again = false;
                group[i]->outcome = RESERVATION_BUSY;
            }
    hint_set(s, event_id, left);
    free(undecided);
}

/* for-update: at most as many statements as there were tickets left (each
 * costs a WAL flush even when it finds the event full). */
static void for_update_run(void *ctx, struct db_conn *conn, int64_t event_id,
                           struct reservation_request **group, int n)
{
    struct reservation_strategy *s = ctx;
    locked_group(s, conn, event_id, group, n, for_update_grant, PIPELINE_MAX, true);
}

/* batch: the whole group in one statement (batch.c). */
static void batch_group(void *ctx, struct db_conn *conn, int64_t event_id,
                        struct reservation_request **group, int n)
{
    struct reservation_strategy *s = ctx;
    locked_group(s, conn, event_id, group, n, batch_grant, n, false);
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

static void run_one(struct reservation_strategy *s, struct reservation_request *r)
{
    struct db_conn *conn;
    int rc = db_pool_acquire(s->pool, &r->deadline, DB_USE_RESERVATION, &conn);
    if (rc == DB_OK) {
        r->outcome = s->single(conn, r);
        if (r->unknown)
            resolve_unknown(s->pool, conn, r->event_id, &r, 1);
        db_pool_release(s->pool, conn);
    } else {
        r->outcome = rc == DB_BUSY ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
    }
    r->done(r);
}

/* A worker job for a single_fn strategy: run r, then whatever queued
 * meanwhile, until the queue is empty. */
static void run_single(struct work *work)
{
    struct reservation_request *r = container_of(work, struct reservation_request, work);
    struct reservation_strategy *s = r->strategy;
    while (r) {
        run_one(s, r);
        pthread_mutex_lock(&s->single_lock);
        r = s->single_head;
        if (r) {
            s->single_head = r->next;
            if (!s->single_head)
                s->single_tail = NULL;
        } else {
            s->single_running--;
        }
        pthread_mutex_unlock(&s->single_lock);
    }
}

static void submit_single(struct reservation_strategy *s, struct reservation_request *r)
{
    r->next = NULL;
    pthread_mutex_lock(&s->single_lock);
    bool start = s->single_running < s->single_max;
    if (start) {
        s->single_running++;
    } else if (s->single_tail) {
        s->single_tail->next = r;
        s->single_tail = r;
    } else {
        s->single_head = s->single_tail = r;
    }
    pthread_mutex_unlock(&s->single_lock);
    if (start) {
        r->work.run = run_single;
        workers_submit(s->workers, &r->work);
    }
}

static const struct {
    const char *name;
    lane_run_fn group;         /* run per event group, or */
    single_fn single;          /* run per request */
} strategies[] = {
    {"for-update", for_update_run, NULL},
    {"batch", batch_group, NULL},
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
        pthread_mutex_init(&s->hint_lock, NULL);
        pthread_mutex_init(&s->single_lock, NULL);
        s->single_max = db_pool_reserving_max(pool);
        s->pool = pool;
        s->workers = workers;
        s->single = strategies[i].single;
        /* Only batch waits for a group to fill: for-update runs its
         * requests one by one anyway. */
        int wait_us = strategies[i].group == batch_group ? opts->batch_wait_us : 0;
        if (strategies[i].group &&
            lanes_create(pool, workers, opts->batch_max, wait_us, strategies[i].group, s,
                         &s->lanes) != 0) {
            pthread_mutex_destroy(&s->hint_lock);
            pthread_mutex_destroy(&s->single_lock);
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
    pthread_mutex_destroy(&s->hint_lock);
    pthread_mutex_destroy(&s->single_lock);
    free(s);
}

void reservation_submit(struct reservation_strategy *s, struct reservation_request *r)
{
    r->strategy = s;
    if (s->lanes) {
        lanes_submit(s->lanes, r);
        return;
    }
    submit_single(s, r);
}
