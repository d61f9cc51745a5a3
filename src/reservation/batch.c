/* Group commit: the requests for one event that arrived while its previous
 * transaction ran are granted together in the next one (one row lock, one
 * INSERT, one counter update, one WAL flush). The lane (lane.c) forms the
 * groups; STMT_RESERVE_BATCH (src/db/queries.c) answers each request as
 * the per-request path would have at that point. */

#include "batch.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"

bool batch_grant(struct db_conn *conn, struct reservation_request **todo, int m, int *left)
{
    enum reservation_outcome fail = RESERVATION_UNAVAILABLE;
    char ev[24];
    char *users = lane_group_users(todo, m);
    PGresult *res = NULL;
    *left = 0;
    for (int i = 0; i < m; i++) {
        todo[i]->again = false;
        todo[i]->outcome = RESERVATION_UNAVAILABLE;   /* until its row says */
    }
    if (!users)
        goto out;
    snprintf(ev, sizeof(ev), "%lld", (long long)todo[0]->event_id);
    const char *params[] = {ev, users};
    res = db_exec(conn, STMT_RESERVE_BATCH, 2, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != m) {
        if (res && db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT)
            fail = RESERVATION_BUSY;
        else
            log_error("batch reservation failed: %s",
                      res ? PQresultErrorMessage(res) : "connection lost");
        goto out;
    }
    for (int row = 0; row < m; row++) {
        int ord = atoi(PQgetvalue(res, row, 0));
        if (ord < 1 || ord > m)
            continue;   /* cannot happen: ord is the array position */
        struct reservation_request *r = todo[ord - 1];
        if (reservation_outcome_parse(PQgetvalue(res, row, 1), &r->outcome) != 0)
            r->outcome = RESERVATION_UNAVAILABLE;
        if (r->outcome == RESERVATION_RESERVED) {
            r->grant.id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            r->grant.reserved_at_ms = strtoll(PQgetvalue(res, row, 3), NULL, 10);
        }
        if (!PQgetisnull(res, row, 4))
            *left = atoi(PQgetvalue(res, row, 4));
    }
    fail = RESERVATION_RESERVED;   /* every request has its own answer */
    log_debug("batch: event %lld, %d requests", (long long)todo[0]->event_id, m);
out:
    if (fail != RESERVATION_RESERVED)
        for (int i = 0; i < m; i++)
            todo[i]->outcome = fail;
    PQclear(res);
    free(users);
    return fail == RESERVATION_BUSY;
}
