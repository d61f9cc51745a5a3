/* A fixed-size libpq connection pool.
 *
 * Slots are handed out from a stack under one mutex; connecting and
 * querying happen outside it. A slot's connection is opened lazily and
 * replaced when it breaks, so the server keeps serving across PostgreSQL
 * restarts: the request that finds the database gone gets 503, the next
 * one reconnects.
 *
 * With prepared off, nothing is kept in a server session between
 * transactions (no prepared statement, no SET), so the pool also works
 * through PgBouncer's transaction pooling, which hands each transaction
 * whichever server connection is free. */

#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct db_conn {
    PGconn *pg;
    bool broken;
    bool reserving; /* held for a reservation (counts in reserving) */
    bool prepared;  /* the pool's db_pool_options.prepared */
};

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t available;
    char *conninfo;
    char session_sql[128]; /* settings for each new connection */
    int size;
    int lock_timeout_ms;
    bool prepared;
    struct db_conn *slots;
    struct db_conn **free; /* stack of idle slots */
    int nfree;
    int waiting;
    /* Reservations may hold at most reserving_max connections, so that a
     * locked event cannot take the whole pool from every other route. */
    pthread_cond_t reserving_available;
    int reserving, reserving_max, reserving_waiting;
    uint64_t connects;
};

static bool deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* The name each statement is prepared under on every connection. */
static void statement_name(enum db_statement stmt, char name[static 16])
{
    snprintf(name, 16, "s%d", (int)stmt);
}

static int prepare_all(PGconn *pg, const char *session_sql)
{
    PGresult *res = PQexec(pg, session_sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    for (int i = 0; ok && i < STMT_COUNT; i++) {
        char name[16];
        statement_name((enum db_statement)i, name);
        res = PQprepare(pg, name, db_statement_sql((enum db_statement)i), 0, NULL);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            log_error("prepare %s failed: %s", name, PQresultErrorMessage(res));
        PQclear(res);
    }
    return ok ? 0 : -1;
}

/* Open the slot's connection. Called without the pool lock. */
static int slot_connect(struct db_pool *pool, struct db_conn *c)
{
    PQfinish(c->pg);
    c->pg = db_connect(pool->conninfo);
    c->broken = false;
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        log_warn("database connection failed: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }
    if (pool->prepared && prepare_all(c->pg, pool->session_sql) != 0) {
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }
    pthread_mutex_lock(&pool->lock);
    uint64_t n = pool->connects++;
    pthread_mutex_unlock(&pool->lock);
    if (n >= (uint64_t)pool->size)
        log_info("database connection re-established");
    return 0;
}

int db_pool_create(const struct db_pool_options *opts, struct db_pool **out, char *err,
                   size_t errlen)
{
    struct db_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pool->size = opts->size;
    pool->lock_timeout_ms = opts->lock_timeout_ms;
    pool->prepared = opts->prepared;
    /* a quarter of the pool (at least one connection) stays for the rest */
    pool->reserving_max = opts->size - (opts->size / 4 > 1 ? opts->size / 4 : 1);
    if (pool->reserving_max < 1)
        pool->reserving_max = 1;
    pool->conninfo = strdup(opts->conninfo);
    pool->slots = calloc((size_t)opts->size, sizeof(*pool->slots));
    pool->free = calloc((size_t)opts->size, sizeof(*pool->free));
    /* Generic plans: every statement here has its plan shape fixed by
     * design (index probes per user for the array statements), and custom
     * plans were re-planned on every call: 0.4-0.8 ms of planning for the
     * batch statement, longer than running it for one user. A generic
     * plan is made once, maybe while a table is empty; with sequential
     * scans off it still takes the index when the table has grown
     * (sql/migrations/0010 does the same for the functions). No JIT: a
     * statement with no index to use is then costed far past
     * jit_above_cost and would be compiled on every execution (0012). */
    snprintf(pool->session_sql, sizeof(pool->session_sql),
             "SET lock_timeout = %d; SET plan_cache_mode = force_generic_plan; "
             "SET enable_seqscan = off; SET jit = off",
             opts->lock_timeout_ms);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int failed = !pool->conninfo || !pool->slots || !pool->free ||
                 pthread_mutex_init(&pool->lock, NULL) != 0 ||
                 pthread_cond_init(&pool->available, &attr) != 0 ||
                 pthread_cond_init(&pool->reserving_available, &attr) != 0;
    pthread_condattr_destroy(&attr);
    if (failed) {
        free(pool->conninfo);
        free(pool->slots);
        free(pool->free);
        free(pool);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = pool->size - 1; i >= 0; i--) {
        pool->slots[i].prepared = pool->prepared;
        pool->free[pool->nfree++] = &pool->slots[i];
    }
    /* One connection now, so a bad DATABASE_URL stops the start. */
    if (slot_connect(pool, &pool->slots[0]) != 0) {
        snprintf(err, errlen, "cannot open a pooled connection to DATABASE_URL");
        db_pool_destroy(pool);
        return -1;
    }
    *out = pool;
    return 0;
}

void db_pool_destroy(struct db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->size; i++)
        PQfinish(pool->slots[i].pg);
    pthread_cond_destroy(&pool->available);
    pthread_cond_destroy(&pool->reserving_available);
    pthread_mutex_destroy(&pool->lock);
    free(pool->slots);
    free(pool->free);
    free(pool->conninfo);
    free(pool);
}

static bool can_take(const struct db_pool *pool, enum db_use use)
{
    return pool->nfree > 0 && (use != DB_USE_RESERVATION || pool->reserving < pool->reserving_max);
}

enum db_status db_pool_acquire(struct db_pool *pool, const struct timespec *deadline,
                               enum db_use use, struct db_conn **out)
{
    /* A request past its deadline gets no connection: its client has been
     * (or is about to be) told busy. */
    if (deadline_passed(deadline))
        return DB_BUSY;
    bool reserving = use == DB_USE_RESERVATION;
    pthread_cond_t *cond = reserving ? &pool->reserving_available : &pool->available;
    int *waiting = reserving ? &pool->reserving_waiting : &pool->waiting;
    pthread_mutex_lock(&pool->lock);
    while (!can_take(pool, use)) {
        (*waiting)++;
        int rc = pthread_cond_timedwait(cond, &pool->lock, deadline);
        (*waiting)--;
        if (rc == ETIMEDOUT && !can_take(pool, use)) {
            pthread_mutex_unlock(&pool->lock);
            return DB_BUSY;
        }
    }
    struct db_conn *c = pool->free[--pool->nfree];
    c->reserving = reserving;
    pool->reserving += reserving;
    pthread_mutex_unlock(&pool->lock);

    if ((!c->pg || PQstatus(c->pg) != CONNECTION_OK) && slot_connect(pool, c) != 0) {
        db_pool_release(pool, c);
        return DB_UNAVAILABLE;
    }
    *out = c;
    return DB_OK;
}

void db_pool_release(struct db_pool *pool, struct db_conn *c)
{
    if (c->pg && !c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        /* A handler bailed out mid-transaction: never hand that on. */
        PGresult *res = PQexec(c->pg, "ROLLBACK");
        PQclear(res);
    }
    if (c->pg && (c->broken || PQstatus(c->pg) != CONNECTION_OK ||
                  PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    pthread_mutex_lock(&pool->lock);
    pool->reserving -= c->reserving;
    c->reserving = false;
    pool->free[pool->nfree++] = c;
    /* Either kind of waiter may take it; one that cannot waits again. */
    if (pool->waiting)
        pthread_cond_signal(&pool->available);
    if (pool->reserving_waiting && pool->reserving < pool->reserving_max)
        pthread_cond_signal(&pool->reserving_available);
    pthread_mutex_unlock(&pool->lock);
}

int db_pool_reconnect(struct db_pool *pool, struct db_conn *conn)
{
    return slot_connect(pool, conn);
}

int db_pool_reserving_max(const struct db_pool *pool)
{
    return pool->reserving_max;
}

void db_lock_budget(const struct db_pool *pool, const struct timespec *deadline,
                    char out[static DB_LOCK_BUDGET_SIZE])
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
                     (deadline->tv_nsec - now.tv_nsec) / 1000000;
    /* Half: lock_timeout bounds each lock wait, and a row's waiters can
     * wait twice, first for the row's tuple lock (held by the waiter ahead)
     * and then for the holder's transaction. Measured under atomic with the
     * row held: a full budget answered its last requests busy at 2x the
     * deadline (3.97 s for 2 s). */
    left /= 2;
    if (left > pool->lock_timeout_ms)
        left = pool->lock_timeout_ms;
    if (left < 1)
        left = 1; /* 0 would mean no limit at all */
    snprintf(out, DB_LOCK_BUDGET_SIZE, "%lld", left);
}

void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out)
{
    pthread_mutex_lock(&pool->lock);
    out->size = pool->size;
    out->in_use = pool->size - pool->nfree;
    out->waiting = pool->waiting + pool->reserving_waiting;
    out->reconnects =
        pool->connects > (uint64_t)pool->size ? pool->connects - (uint64_t)pool->size : 0;
    pthread_mutex_unlock(&pool->lock);
}

/* Send one statement without waiting for its result (pipeline mode):
 * by name when prepared, else its text as an unnamed statement. 0, or -1
 * when libpq could not queue it. */
static int send_statement(struct db_conn *c, enum db_statement stmt, int nparams,
                          const char *const *params)
{
    if (!c->prepared)
        return PQsendQueryParams(c->pg, db_statement_sql(stmt), nparams, NULL, params, NULL, NULL,
                                 0) == 1
                   ? 0
                   : -1;
    char name[16];
    statement_name(stmt, name);
    return PQsendQueryPrepared(c->pg, name, nparams, params, NULL, NULL, 0) == 1 ? 0 : -1;
}

static PGresult *exec_statement(struct db_conn *c, enum db_statement stmt, int nparams,
                                const char *const *params)
{
    if (!c->prepared)
        return PQexecParams(c->pg, db_statement_sql(stmt), nparams, NULL, params, NULL, NULL, 0);
    char name[16];
    statement_name(stmt, name);
    return PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
}

PGresult *db_exec(struct db_conn *c, enum db_statement stmt, int nparams, const char *const *params)
{
    PGresult *res = exec_statement(c, stmt, nparams, params);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        c->broken = true;
        PQclear(res);
        return NULL;
    }
    return res;
}

int db_exec_pipelined(struct db_conn *c, const enum db_statement *stmts, int n, int nparams,
                      const char *const *params, PGresult **results)
{
    int sent = 0, done = 0;
    for (int i = 0; i < n; i++)
        results[i] = NULL;
    if (PQenterPipelineMode(c->pg) != 1)
        goto broken;
    /* A Sync after each statement makes each its own transaction. */
    for (; sent < n; sent++) {
        if (send_statement(c, stmts[sent], nparams, params + (size_t)sent * (size_t)nparams) != 0 ||
            PQpipelineSync(c->pg) != 1)
            goto broken;
    }
    for (; done < n; done++) {
        /* the statement's result, the NULL that ends it, its Sync: only
         * the Sync says the statement's transaction is over */
        PGresult *res = PQgetResult(c->pg), *extra;
        while ((extra = PQgetResult(c->pg)) != NULL)
            PQclear(extra);
        extra = PQgetResult(c->pg);
        bool synced = extra && PQresultStatus(extra) == PGRES_PIPELINE_SYNC;
        PQclear(extra);
        if (!res || !synced) {
            PQclear(res);
            goto broken;
        }
        results[done] = res;
    }
    if (PQexitPipelineMode(c->pg) != 1)
        goto broken;
    return n;
broken:
    /* Whatever state the pipeline is in, the connection is not reused.
     * Statements that completed keep their results: they committed (or
     * failed) whatever happens to the rest. */
    log_error("pipeline failed after %d of %d statements: %s", done, n, PQerrorMessage(c->pg));
    c->broken = true;
    return done;
}

bool db_transaction_failed(const struct db_conn *c)
{
    return c->pg && PQtransactionStatus(c->pg) == PQTRANS_INERROR;
}

int db_command(struct db_conn *c, const char *sql)
{
    PGresult *res = PQexec(c->pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->broken = true;
    PQclear(res);
    return ok ? 0 : -1;
}

enum db_result db_result_classify(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return DB_RESULT_OK;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "23505") == 0)
        return DB_RESULT_UNIQUE_VIOLATION;
    if (state && (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0))
        return DB_RESULT_LOCK_TIMEOUT;
    if (state && strcmp(state, "RSK01") == 0)
        return DB_RESULT_KEY_TAKEN;
    return DB_RESULT_FAILED;
}
