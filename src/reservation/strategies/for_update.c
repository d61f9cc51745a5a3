/* for-update: one transaction per request, the event row locked. An
 * event's requests queue in the server (lane.c) and run as pipelines:
 * PostgreSQL goes from one transaction to the next with no round trip
 * between, which is cheaper than queueing on the row lock inside
 * PostgreSQL (loadtest/RESULTS.md: pgbench on one hot row, 2,745 tps with
 * one client, 1,762 with sixteen). */

#include <stdio.h>
#include <stdlib.h>

#include "../strategy.h"

/* At most this many locked statements in one pipeline: enough to keep
 * PostgreSQL busy between WAL flushes, few enough that a pipeline's
 * answers are not held back long. */
#define PIPELINE_MAX 32
/* reserve_for_update.sql's: event, user, lock budget, quantity, hold, nowait,
 * and the Idempotency-Key record's key hash, fingerprint and seconds. The
 * statement is a fast path of plain CTEs (the pre-purchase-flow statement's
 * cost, plus an index probe for overdue holds) that grants when nobody
 * waits, no overdue hold is in sight and the locked row has room; anything
 * else it hands to reservd_reserve within the same statement, under the
 * lock it holds, so each request is still one statement of the pipeline
 * and every answer is the function's (the argument is in the file's
 * header). The PL/pgSQL function alone cost for-update about 40% of its
 * throughput (README). */
#define NPARAMS 9

/* The first statement waits for the row lock (as long as its deadline
 * allows), the others take it NOWAIT ($6) behind it: our own statements never
 * overlap, so a NOWAIT one that meets a lock met someone else's, and goes
 * back to the queue. A statement that completed is answered from its own
 * result even when the connection died after it; the ones after it are
 * unknown. DB_RESULT_LOCK_TIMEOUT when the first waited out its lock
 * budget, DB_RESULT_FAILED when a statement failed otherwise (its request
 * has the failure's outcome), else DB_RESULT_OK. */
static enum db_result for_update_grant(struct reservation_strategy *s, struct db_conn *conn,
                                       struct reservation_request **undecided, int m, int *left)
{
    enum db_statement stmts[PIPELINE_MAX] = { 0 };
    char ids[PIPELINE_MAX][3][24], budgets[PIPELINE_MAX][DB_LOCK_BUDGET_SIZE];
    const char *params[PIPELINE_MAX * NPARAMS] = { 0 };
    PGresult *results[PIPELINE_MAX];
    if (m > PIPELINE_MAX)
        m = PIPELINE_MAX; /* the rest stay undecided: back to the queue */
    for (int j = 0; j < m; j++) {
        snprintf(ids[j][0], sizeof(ids[j][0]), "%lld", (long long)undecided[j]->event_id);
        snprintf(ids[j][1], sizeof(ids[j][1]), "%lld", (long long)undecided[j]->user_id);
        snprintf(ids[j][2], sizeof(ids[j][2]), "%d", undecided[j]->quantity);
        db_lock_budget(s->pool, &undecided[j]->deadline, budgets[j]);
        const char **p = &params[NPARAMS * j];
        p[0] = ids[j][0];
        p[1] = ids[j][1];
        p[2] = budgets[j];
        p[3] = ids[j][2];
        p[4] = undecided[j]->hold ? "t" : "f";
        p[5] = j == 0 ? "f" : "t";     /* NOWAIT behind the first */
        p[6] = undecided[j]->idem_key; /* the key's record, written with the grant */
        p[7] = undecided[j]->idem_fingerprint;
        p[8] = undecided[j]->idem_ttl;
        stmts[j] = STMT_RESERVE_FOR_UPDATE;
    }
    int done = db_exec_pipelined(conn, stmts, m, NPARAMS, params, results);
    enum db_result how = done < m ? DB_RESULT_FAILED : DB_RESULT_OK;
    if (done < m)
        *left = 0;
    for (int j = 0; j < m; j++) {
        struct reservation_request *r = undecided[j];
        PGresult *res = results[j];
        if (j >= done) {
            r->outcome = RESERVATION_UNKNOWN;
            continue;
        }
        struct grant_row g;
        if (db_result_classify(res) == DB_RESULT_OK && PQntuples(res) == 1 &&
            grant_row_decode(stmts[j], res, 0, &g) == 0) {
            r->outcome = decide_granted(&g, r);
            *left = g.has_tickets_left ? g.tickets_left : 0;
        } else if (db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT && j > 0 &&
                   how != DB_RESULT_LOCK_TIMEOUT) {
            r->outcome = RESERVATION_PENDING; /* NOWAIT met someone else's lock: queue again */
        } else {
            r->outcome = failure_outcome(res);
            if (r->outcome == RESERVATION_BUSY)
                how = DB_RESULT_LOCK_TIMEOUT;
            else if (how == DB_RESULT_OK)
                how = DB_RESULT_FAILED;
        }
        PQclear(res);
    }
    return how;
}

/* At most as many statements as there were tickets left: each costs a WAL
 * flush even when it finds the event full. */
void for_update_run(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
                    struct reservation_request **group, int n)
{
    locked_group(s, conn, event_id, group, n, for_update_grant, PIPELINE_MAX, true);
}
