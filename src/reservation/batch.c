/* Group commit: the requests for one event that arrived while its previous
 * transaction ran are granted together in the next one (one row lock, one
 * INSERT, one counter update, one WAL flush). The lane (lane.c) forms the
 * groups; STMT_RESERVE_BATCH (src/db/queries.c) answers each request as
 * the per-request path would have at that point. */

#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

static const struct timespec *earliest_deadline(struct reservation_request **group, int n)
{
    const struct timespec *t = &group[0]->deadline;
    for (int i = 1; i < n; i++) {
        const struct timespec *d = &group[i]->deadline;
        if (d->tv_sec < t->tv_sec || (d->tv_sec == t->tv_sec && d->tv_nsec < t->tv_nsec))
            t = d;
    }
    return t;
}

bool batch_grant(struct db_pool *pool, struct db_conn *conn,
                 struct reservation_request **undecided, int m, int *left)
{
    enum reservation_outcome fail = RESERVATION_UNAVAILABLE;
    bool conflict = false;
    char budget[DB_LOCK_BUDGET_SIZE];
    *left = 0;
    for (int i = 0; i < m; i++) {
        undecided[i]->again = false;
        undecided[i]->outcome = RESERVATION_UNAVAILABLE;   /* until its row says */
    }
    db_lock_budget(pool, earliest_deadline(undecided, m), budget);
    PGresult *res = lane_group_exec(conn, STMT_RESERVE_BATCH, undecided[0]->event_id,
                                    undecided, m, budget);
    if (!res) {
        /* the statement may have committed before the connection died */
        for (int i = 0; i < m; i++)
            undecided[i]->unknown = true;
        log_error("batch reservation: connection lost or out of memory");
        goto out;
    }
    if (db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != m) {
        if (db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT)
            fail = RESERVATION_BUSY;
        else
            log_error("batch reservation failed: %s", PQresultErrorMessage(res));
        goto out;
    }
    for (int row = 0; row < m; row++) {
        struct reservation_request *r = lane_group_row(res, row, undecided, m);
        if (!r)
            continue;   /* cannot happen: ord is the array position */
        const char *text = PQgetvalue(res, row, 1);
        if (strcmp(text, "conflict") == 0) {
            r->outcome = RESERVATION_ALREADY_RESERVED;   /* another writer's, committed */
            conflict = true;
        } else if (reservation_outcome_parse(text, &r->outcome) != 0) {
            r->outcome = RESERVATION_UNAVAILABLE;
        }
        if (r->outcome == RESERVATION_RESERVED) {
            r->grant.id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            r->grant.reserved_at_ms = strtoll(PQgetvalue(res, row, 3), NULL, 10);
        }
        if (!PQgetisnull(res, row, 4))
            *left = atoi(PQgetvalue(res, row, 4));
    }
    /* A conflicting row's ticket was not spent, so a sold_out after it may
     * be wrong: those go round again and meet a fresh committed read. */
    if (conflict)
        for (int i = 0; i < m; i++)
            if (undecided[i]->outcome == RESERVATION_SOLD_OUT)
                undecided[i]->again = true;
    fail = RESERVATION_RESERVED;   /* every request has its own answer */
    log_debug("batch: event %lld, %d requests", (long long)undecided[0]->event_id, m);
out:
    if (fail != RESERVATION_RESERVED)
        for (int i = 0; i < m; i++)
            undecided[i]->outcome = fail;
    PQclear(res);
    return fail == RESERVATION_BUSY;
}
