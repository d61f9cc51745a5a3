/* batch: group commit. The requests for one event that arrived while its
 * previous transaction ran are granted together in the next one (one row
 * lock, one INSERT, one counter update, one WAL flush). The lane (lane.c)
 * forms the groups; STMT_RESERVE_BATCH (sql/statements/reserve_batch.sql) answers each
 * request as the per-request path would have at that point. */

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "../strategy.h"

/* The group's statement failed because one request's Idempotency-Key was
 * recorded by another request meanwhile (0008; the key hash is the
 * error's detail): nothing was granted. That request is answered from the
 * record, the others go round again. False if no request has that key. */
static bool key_taken(const PGresult *res, struct reservation_request **undecided, int m)
{
    const char *key = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    int taken = -1;
    for (int i = 0; key && i < m && taken < 0; i++)
        if (undecided[i]->idem_key && strcmp(undecided[i]->idem_key, key) == 0)
            taken = i;
    if (taken < 0)
        return false;
    for (int i = 0; i < m; i++)
        undecided[i]->outcome = i == taken ? RESERVATION_KEY_TAKEN : RESERVATION_PENDING;
    return true;
}

/* Grant undecided[0..m) in one locked transaction whose lock wait the
 * earliest deadline caps. Requests whose outcome the connection's death
 * hid are UNKNOWN; sold_out answers that another writer's conflict may
 * have made wrong go back to the queue (PENDING), as does the whole group
 * when one request's Idempotency-Key turns out taken (key_taken). DB_RESULT_LOCK_TIMEOUT
 * when the row lock wait ran out (then all are answered busy),
 * DB_RESULT_FAILED when the statement failed otherwise, else DB_RESULT_OK. */
static enum db_result batch_grant(struct reservation_strategy *s, struct db_conn *conn,
                                  struct reservation_request **undecided, int m, int *left)
{
    enum reservation_outcome fail = RESERVATION_UNAVAILABLE;
    bool conflict = false;
    char budget[DB_LOCK_BUDGET_SIZE];
    *left = 0;
    for (int i = 0; i < m; i++)
        undecided[i]->outcome = RESERVATION_UNAVAILABLE; /* until its row says */
    db_lock_budget(s->pool, earliest_deadline(undecided, m), budget);
    PGresult *res = group_exec(conn, STMT_RESERVE_BATCH, undecided[0]->event_id, undecided, m,
                               GROUP_ALL, budget);
    if (!res) {
        /* the statement may have committed before the connection died */
        fail = RESERVATION_UNKNOWN;
        log_error("batch reservation: connection lost or out of memory");
        goto out;
    }
    if (db_result_classify(res) == DB_RESULT_KEY_TAKEN && key_taken(res, undecided, m)) {
        fail = RESERVATION_RESERVED; /* each has its outcome */
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
        struct grant_row g;
        struct reservation_request *r = NULL;
        if (grant_row_decode(STMT_RESERVE_BATCH, res, row, &g) == 0)
            r = group_row(g.ord, undecided, m);
        if (!r)
            continue; /* cannot happen: ord is the array position */
        enum grant_word word;
        enum reservation_outcome out;
        conflict = conflict || (g.outcome && grant_word_parse(g.outcome, &word, &out) == 0 &&
                                word == GRANT_CONFLICT);
        r->outcome = decide_granted(&g, r);
        if (g.has_tickets_left)
            *left = g.tickets_left;
    }
    /* A conflicting row's ticket was not spent, so a sold_out after it may
     * be wrong: those go round again and meet a fresh committed read. */
    if (conflict)
        for (int i = 0; i < m; i++)
            if (undecided[i]->outcome == RESERVATION_SOLD_OUT)
                undecided[i]->outcome = RESERVATION_PENDING;
    fail = RESERVATION_RESERVED; /* every request has its own answer */
    log_debug("batch: event %lld, %d requests", (long long)undecided[0]->event_id, m);
out:
    if (fail != RESERVATION_RESERVED)
        for (int i = 0; i < m; i++)
            undecided[i]->outcome = fail;
    PQclear(res);
    return fail == RESERVATION_RESERVED ? DB_RESULT_OK
           : fail == RESERVATION_BUSY   ? DB_RESULT_LOCK_TIMEOUT
                                        : DB_RESULT_FAILED;
}

/* The whole group in one statement. */
void batch_run(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
               struct reservation_request **group, int n)
{
    locked_group(s, conn, event_id, group, n, batch_grant, n, false);
}
