/* batch: group commit. The requests for one event that arrived while its
 * previous transaction ran are granted together in the next one (one row
 * lock, one INSERT, one counter update, one WAL flush). The lane (lane.c)
 * forms the groups; STMT_RESERVE_BATCH (sql/statements/reserve_batch.sql) answers each
 * request as the per-request path would have at that point. */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy.h"

/* "{h1,NULL,h2}": each request's text field at off (SHA-256 hex or NULL,
 * so nothing to quote). Caller frees; NULL when out of memory. */
static char *text_array(struct reservation_request *const *group, int n, size_t off)
{
    size_t cap = (size_t)n * 66 + 3, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[len++] = '{';
    for (int i = 0; i < n; i++) {
        const char *v = *(const char *const *)((const char *)group[i] + off);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", v ? v : "NULL");
    }
    snprintf(out + len, cap - len, "}");
    return out;
}

/* STMT_RESERVE_BATCH for the group: users, lock budget, and each request's
 * Idempotency-Key record ($4, $5, $6), written in the group's transaction. */
static PGresult *batch_exec(struct db_conn *conn, struct reservation_request *const *group, int n,
                            const char *budget)
{
    size_t cap = (size_t)n * 21 + 3, len = 0;
    char *users = malloc(cap), ev[24];
    char *keys = text_array(group, n, offsetof(struct reservation_request, idem_key));
    char *prints = text_array(group, n, offsetof(struct reservation_request, idem_fingerprint));
    const char *ttl = NULL;
    PGresult *res = NULL;
    if (users && keys && prints) {
        users[len++] = '{';
        for (int i = 0; i < n; i++) {
            len += (size_t)snprintf(users + len, cap - len, "%s%lld", i ? "," : "",
                                    (long long)group[i]->user_id);
            ttl = ttl ? ttl : group[i]->idem_ttl;
        }
        snprintf(users + len, cap - len, "}");
        snprintf(ev, sizeof(ev), "%lld", (long long)group[0]->event_id);
        const char *params[] = { ev, users, budget, keys, prints, ttl };
        res = db_exec(conn, STMT_RESERVE_BATCH, 6, params);
    }
    free(users);
    free(keys);
    free(prints);
    return res;
}

/* Grant undecided[0..m) in one locked transaction whose lock wait the
 * earliest deadline caps. Requests whose outcome the connection's death
 * hid are UNKNOWN; sold_out answers that another writer's conflict may
 * have made wrong go back to the queue (PENDING). True when the row lock
 * wait ran out (then all are answered busy). */
static bool batch_grant(struct reservation_strategy *s, struct db_conn *conn,
                        struct reservation_request **undecided, int m, int *left)
{
    enum reservation_outcome fail = RESERVATION_UNAVAILABLE;
    bool conflict = false;
    char budget[DB_LOCK_BUDGET_SIZE];
    *left = 0;
    for (int i = 0; i < m; i++)
        undecided[i]->outcome = RESERVATION_UNAVAILABLE; /* until its row says */
    db_lock_budget(s->pool, earliest_deadline(undecided, m), budget);
    PGresult *res = batch_exec(conn, undecided, m, budget);
    if (!res) {
        /* the statement may have committed before the connection died */
        fail = RESERVATION_UNKNOWN;
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
        struct grant_row g;
        struct reservation_request *r = NULL;
        if (grant_row_decode(STMT_RESERVE_BATCH, res, row, &g) == 0)
            r = group_row(g.ord, undecided, m);
        if (!r)
            continue; /* cannot happen: ord is the array position */
        if (strcmp(g.outcome, "conflict") == 0) {
            r->outcome = RESERVATION_ALREADY_RESERVED; /* another writer's, committed */
            conflict = true;
        } else {
            r->outcome = decide_granted(&g, r);
        }
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
    return fail == RESERVATION_BUSY;
}

/* The whole group in one statement. */
void batch_run(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
               struct reservation_request **group, int n)
{
    locked_group(s, conn, event_id, group, n, batch_grant, n, false);
}
