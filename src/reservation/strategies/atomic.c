/* atomic: one conditional UPDATE takes the ticket, then the insert
 * (reservd_reserve_atomic in sql/migrations/). Each request runs on its own
 * and the database sorts them out, as the design it stands for would: a
 * comparison point for the queued strategies. */

#include <stdio.h>

#include "../strategy.h"

void atomic_run(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
                struct reservation_request **group, int n)
{
    (void)n; /* always 1: not per_event */
    struct reservation_request *r = group[0];
    char ev[24], user[24], quantity[16], budget[DB_LOCK_BUDGET_SIZE];
    snprintf(ev, sizeof(ev), "%lld", (long long)event_id);
    snprintf(user, sizeof(user), "%lld", (long long)r->user_id);
    snprintf(quantity, sizeof(quantity), "%d", r->quantity);
    db_lock_budget(s->pool, &r->deadline, budget);
    const char *params[] = {
        ev,         user, budget, quantity, r->hold ? "t" : "f", r->idem_key, r->idem_fingerprint,
        r->idem_ttl
    };
    PGresult *res = db_exec(conn, STMT_RESERVE_ATOMIC, 8, params);
    struct grant_row g;
    if (!res)
        r->outcome = RESERVATION_UNKNOWN; /* it may have committed before the connection died */
    else if (db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != 1)
        r->outcome = failure_outcome(res);
    else if (grant_row_decode(STMT_RESERVE_ATOMIC, res, 0, &g) != 0)
        r->outcome = RESERVATION_UNAVAILABLE;
    else
        r->outcome = decide_granted(&g, r);
    PQclear(res);
}
