#ifndef RESERVD_LANE_H
#define RESERVD_LANE_H

/* Per-event request queues (private to src/reservation/). */

#include <libpq-fe.h>

#include "db.h"
#include "reservation.h"

struct db_conn;
struct lanes;

/* Handle one group of requests for one event, in arrival order, on conn.
 * Each request comes with again = false; the function sets its outcome,
 * or leaves again = true to put it back at the head of the event's queue
 * for the next group. It must answer at least one request. */
typedef void (*lane_run_fn)(void *ctx, struct db_conn *conn, int64_t event_id,
                            struct reservation_request **group, int n);

/* group_max: most requests per group; wait_us: how long a group on an idle
 * event waits to fill (0: not at all). 0, or -1 out of memory. */
int lanes_create(struct db_pool *pool, struct workers *workers, int group_max, int wait_us,
                 lane_run_fn run, void *ctx, struct lanes **out);
/* NULL-safe; every submitted request must have been answered. */
void lanes_destroy(struct lanes *l);
/* Queue r behind its event's earlier requests. Never blocks on the
 * database; r->done() runs on a worker (or at once, here, when out of
 * memory). */
void lanes_submit(struct lanes *l, struct reservation_request *r);

/* Whether r's deadline has passed. */
bool lane_request_expired(const struct reservation_request *r);

/* Run stmt($1 = event, $2 = the group's user ids as an array, in order,
 * and $3 = third unless it is NULL). The result (caller PQclear()s it) or
 * NULL when out of memory or the connection failed. Its rows start with
 * ord, the 1-based position. */
PGresult *lane_group_exec(struct db_conn *conn, enum db_statement stmt, int64_t event_id,
                          struct reservation_request *const *group, int n, const char *third);
/* The request a row of that result answers, or NULL if its ord is off. */
struct reservation_request *lane_group_row(const PGresult *res, int row,
                                           struct reservation_request *const *group, int n);

#endif
