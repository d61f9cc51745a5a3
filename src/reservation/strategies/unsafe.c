/* unsafe: the original app's logic, count, then insert, with no lock in
 * between. Two requests that count at once both insert; that is the
 * oversell this strategy exists to show (teaching only: it refuses to
 * start without --i-understand-unsafe-oversells). The counter column is
 * left alone (its CHECK would refuse the oversell); the active rows tell
 * the truth. It knows nothing of quantities, holds or the waiting list:
 * one final ticket per request (the handler refuses anything else). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../strategy.h"

static enum reservation_outcome count_then_insert(struct db_conn *conn,
                                                  struct reservation_request *r)
{
    char ev[24], user[24];
    snprintf(ev, sizeof(ev), "%lld", (long long)r->event_id);
    snprintf(user, sizeof(user), "%lld", (long long)r->user_id);
    const char *params[] = { ev, user };
    enum reservation_outcome out = RESERVATION_UNAVAILABLE;
    PGresult *res = NULL;
    if (db_command(conn, "BEGIN") != 0)
        goto done;
    struct unsafe_check_row c;
    struct grant_row g;
    res = db_exec(conn, STMT_UNSAFE_CHECK, 2, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK) {
        out = failure_outcome(res);
        goto done;
    }
    if (unsafe_check_row_decode(res, 0, &c) != 0)
        goto done;
    if (!c.event_found)
        out = RESERVATION_EVENT_NOT_FOUND;
    else if (!c.user_found)
        out = RESERVATION_USER_NOT_FOUND;
    else if (c.already_held)
        out = RESERVATION_ALREADY_RESERVED;
    else if (c.active >= c.max_tickets)
        out = RESERVATION_SOLD_OUT;
    else {
        PQclear(res);
        res = db_exec(conn, STMT_UNSAFE_INSERT, 2, params);
        if (!res || db_result_classify(res) != DB_RESULT_OK) {
            out = failure_outcome(res);
            goto done;
        }
        if (grant_row_decode(STMT_UNSAFE_INSERT, res, 0, &g) != 0)
            goto done; /* unavailable; the pool rolls the insert back */
        r->grant.id = g.reservation_id;
        r->grant.reserved_at_ms = g.reserved_at_ms;
        r->grant.quantity = 1;
        out = RESERVATION_RESERVED;
    }
    if (db_command(conn, "COMMIT") != 0)
        out = out == RESERVATION_RESERVED ? RESERVATION_UNKNOWN : RESERVATION_UNAVAILABLE;
done:
    PQclear(res); /* the pool rolls back anything left open */
    return out;
}

void unsafe_run(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
                struct reservation_request **group, int n)
{
    (void)s;
    (void)event_id;
    (void)n; /* always 1: not per_event */
    group[0]->outcome = count_then_insert(conn, group[0]);
}
